package control

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"
)

// maxConns bounds concurrent control connections; the CLI uses one at a time, so anything more
// is a script gone wrong and may wait.
const maxConns = 4

// Server serves Admin on a Unix socket until its context is cancelled or Close is called.
type Server struct {
	ln    *net.UnixListener
	path  string
	inode os.FileInfo // our socket file, so Close never removes a successor's
	admin Admin
	log   *slog.Logger

	ctx       context.Context // cancelled with Serve's ctx or by Close: aborts requests in flight
	cancel    context.CancelFunc
	stopWatch func() bool
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// Serve listens on path (normally SocketPath(cfg.DataDir)) with mode 0600 and serves admin
// there in the background. A stale socket left by a crashed server is removed; if another
// server still accepts on path, Serve fails rather than steal the socket from it. Cancelling
// ctx or calling Close stops the server, waits for requests in flight and removes the socket.
func Serve(ctx context.Context, path string, admin Admin, log *slog.Logger) (*Server, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := removeStale(path); err != nil {
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	ln, inode, err := listenPrivate(path)
	if err != nil {
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	s := &Server{ln: ln, path: path, inode: inode, admin: admin, log: log}
	s.ctx, s.cancel = context.WithCancel(ctx)
	s.stopWatch = context.AfterFunc(ctx, func() { _ = s.Close() })
	s.wg.Add(1)
	go s.acceptLoop()
	log.Debug("control socket listening", "path", path)
	return s, nil
}

// Path is the socket's file name.
func (s *Server) Path() string { return s.path }

// Close stops accepting, cancels and waits for requests in flight and removes the socket file.
// It is safe to call more than once.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.stopWatch()
		s.cancel()
		s.closeErr = s.ln.Close()
		s.wg.Wait()
		// Remove only our own file: after a restart race the name may belong to a newer server.
		if fi, err := os.Lstat(s.path); err == nil && os.SameFile(fi, s.inode) {
			if err := os.Remove(s.path); err != nil && !errors.Is(err, os.ErrNotExist) {
				s.closeErr = errors.Join(s.closeErr, err)
			}
		}
	})
	return s.closeErr
}

func (s *Server) acceptLoop() {
	defer s.wg.Done()
	slots := make(chan struct{}, maxConns)
	for {
		slots <- struct{}{}
		conn, err := s.ln.Accept()
		if err != nil {
			<-slots
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: pause instead of spinning.
			s.log.Warn("control socket accept", "err", err)
			select {
			case <-s.ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		s.wg.Add(1)
		go func() {
			defer func() { <-slots; s.wg.Done() }()
			s.handle(conn)
		}()
	}
}

func (s *Server) handle(conn net.Conn) {
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(requestTimeout))
	ctx, cancel := context.WithTimeout(s.ctx, requestTimeout)
	defer cancel()

	var resp response
	req, err := readRequest(conn)
	if err == nil {
		resp.Result, err = s.dispatch(ctx, req)
	}
	if err != nil {
		resp = response{Error: err.Error()}
		s.log.Warn("control request failed", "op", req.Op, "name", req.Name, "err", err)
	} else {
		resp.OK = true
		if req.Op != opPing {
			s.log.Info("control request", "op", req.Op, "name", req.Name)
		}
	}
	if err := json.NewEncoder(conn).Encode(resp); err != nil {
		s.log.Warn("control response", "op", req.Op, "err", err)
	}
}

func readRequest(conn net.Conn) (request, error) {
	var req request
	line, err := readLine(bufio.NewReader(conn))
	if err != nil {
		return req, fmt.Errorf("read request: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	// Unknown fields mean the CLI is newer than the server; better to refuse than half-do it.
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return request{}, fmt.Errorf("bad request: %w", err)
	}
	return req, nil
}

func (s *Server) dispatch(ctx context.Context, req request) (any, error) {
	switch req.Op {
	case opPing:
		return "pong", nil
	case opUserAdd:
		userID, err := s.admin.AddUser(ctx, req.Name, req.Password, req.Admin)
		return userIDResult{UserID: userID}, err
	case opUserList:
		users, err := s.admin.ListUsers(ctx)
		if users == nil {
			users = []UserInfo{} // "[]" rather than an absent result for an empty server
		}
		return users, err
	case opUserPasswd:
		return nil, s.admin.SetPassword(ctx, req.Name, req.Password)
	case opUserDeact:
		return nil, s.admin.Deactivate(ctx, req.Name)
	case opTokenNew:
		expiry := time.Duration(req.ExpiresMS) * time.Millisecond
		token, err := s.admin.CreateToken(ctx, req.Uses, expiry)
		return tokenResult{Token: token}, err
	case opDevicesList, opDevicesForget, opDevicesPair:
		return s.dispatchDevices(ctx, req) // devices.go
	default:
		return nil, fmt.Errorf("unknown op %q", req.Op)
	}
}
