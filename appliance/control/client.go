package control

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"syscall"
	"time"
)

// client is Admin spoken over the control socket, one connection per call.
type client struct {
	path string
}

// Dial checks that a server answers on the control socket at path and returns an Admin that
// talks to it, so the CLI runs the same code whether the server is up or not. When nothing
// listens there the error wraps ErrNotRunning; any other error (permission denied, a server
// that does not answer) means the caller must not fall back to opening the store itself.
func Dial(path string) (Admin, error) {
	c := &client{path: path}
	ctx, cancel := context.WithTimeout(context.Background(), dialTimeout)
	defer cancel()
	var pong string
	if err := c.call(ctx, request{Op: opPing}, &pong); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *client) AddUser(ctx context.Context, name, password string, admin bool) (string, error) {
	var res userIDResult
	err := c.call(ctx, request{Op: opUserAdd, Name: name, Password: password, Admin: admin}, &res)
	return res.UserID, err
}

func (c *client) ListUsers(ctx context.Context) ([]UserInfo, error) {
	var users []UserInfo
	err := c.call(ctx, request{Op: opUserList}, &users)
	return users, err
}

func (c *client) SetPassword(ctx context.Context, name, password string) error {
	return c.call(ctx, request{Op: opUserPasswd, Name: name, Password: password}, nil)
}

func (c *client) Deactivate(ctx context.Context, name string) error {
	return c.call(ctx, request{Op: opUserDeact, Name: name}, nil)
}

func (c *client) CreateToken(ctx context.Context, usesAllowed int, expiry time.Duration) (string, error) {
	var res tokenResult
	req := request{Op: opTokenNew, Uses: usesAllowed, ExpiresMS: expiry.Milliseconds()}
	err := c.call(ctx, req, &res)
	return res.Token, err
}

// call sends req and decodes a successful result into out (if not nil). A failure reported by
// the server comes back as an error with the server's message.
func (c *client) call(ctx context.Context, req request, out any) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", c.path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED) {
			return fmt.Errorf("%w: %w", ErrNotRunning, err)
		}
		return fmt.Errorf("control socket: %w", err)
	}
	defer conn.Close()
	deadline := time.Now().Add(requestTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = conn.SetDeadline(deadline)
	// A cancelled ctx unblocks the read at once instead of waiting for the deadline.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	line, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("control %s: %w", req.Op, err)
	}
	if _, err := conn.Write(append(line, '\n')); err != nil {
		return fmt.Errorf("control %s: send: %w", req.Op, ctxErr(ctx, err))
	}
	respLine, err := readLine(bufio.NewReader(conn))
	if err != nil {
		return fmt.Errorf("control %s: receive: %w", req.Op, ctxErr(ctx, err))
	}
	var resp struct {
		OK     bool            `json:"ok"`
		Result json.RawMessage `json:"result"`
		Error  string          `json:"error"`
	}
	if err := json.Unmarshal(respLine, &resp); err != nil {
		return fmt.Errorf("control %s: bad response: %w", req.Op, err)
	}
	if !resp.OK {
		if resp.Error == "" {
			return fmt.Errorf("control %s: failed without a reason", req.Op)
		}
		return errors.New(resp.Error)
	}
	if out != nil && len(resp.Result) > 0 {
		if err := json.Unmarshal(resp.Result, out); err != nil {
			return fmt.Errorf("control %s: bad result: %w", req.Op, err)
		}
	}
	return nil
}

// ctxErr prefers the context's reason over the deadline error that cancelling provoked. The
// connection deadline can fire a moment before ctx notices its own, hence the clock check.
// Otherwise it drops net.OpError's addresses: the peer's is the name the server bound in its
// private directory (see listenPrivate), which no longer exists and would only confuse.
func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
		return context.DeadlineExceeded
	}
	if opErr, ok := errors.AsType[*net.OpError](err); ok {
		return opErr.Err
	}
	return err
}
