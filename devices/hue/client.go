package hue

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// ErrUnauthorized is returned when the bridge refuses the application key (it was deleted in
// the Hue app, or belongs to another bridge): pair again.
var ErrUnauthorized = errors.New("hue: bridge refused the application key")

// requestTimeout bounds one resource request; the event stream has no such bound.
const requestTimeout = 10 * time.Second

// maxResponse bounds a resource listing; a large installation is well under 1 MiB.
const maxResponse = 8 << 20

// client talks CLIP v2 to one bridge.
type client struct {
	base string // "https://host[:port]"
	key  string
	http *http.Client
}

// baseURL turns a configured address ("192.168.1.20", "bridge.lan:443" or a full https URL)
// into the URL prefix requests are made against.
func baseURL(addr string) (string, error) {
	a := strings.TrimRight(strings.TrimSpace(addr), "/")
	a = strings.TrimPrefix(a, "https://")
	if a == "" || strings.Contains(a, "/") || strings.Contains(a, "://") {
		return "", fmt.Errorf("hue: bad bridge address %q", addr)
	}
	return "https://" + a, nil
}

// newHTTPClient builds an HTTP client for the bridge. HTTP/2 is attempted because the bridge
// supports it and the event stream and commands can then share one connection; pings detect a
// dead stream that TCP alone would leave hanging.
func newHTTPClient(tc *tls.Config) *http.Client {
	dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		DialContext:         dialer.DialContext,
		TLSClientConfig:     tc,
		ForceAttemptHTTP2:   true,
		TLSHandshakeTimeout: 5 * time.Second,
		MaxIdleConns:        4,
		IdleConnTimeout:     90 * time.Second,
		HTTP2: &http.HTTP2Config{
			SendPingTimeout: 30 * time.Second,
			PingTimeout:     10 * time.Second,
		},
	}
	return &http.Client{Transport: tr}
}

// get fetches a resource listing and decodes its data into out.
func (c *client) get(ctx context.Context, path string, out any) error {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	return c.do(ctx, http.MethodGet, path, nil, out)
}

// put sends a resource update.
func (c *client) put(ctx context.Context, path string, body any) error {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	return c.do(ctx, http.MethodPut, path, body, nil)
}

func (c *client) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("hue: encode %s %s: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return fmt.Errorf("hue: build %s %s: %w", method, path, err)
	}
	req.Header.Set("hue-application-key", c.key)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("hue: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return fmt.Errorf("hue: read %s %s: %w", method, path, err)
	}
	if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
		return fmt.Errorf("%w (%s %s: %s)", ErrUnauthorized, method, path, resp.Status)
	}
	var env envelope
	if err := json.Unmarshal(raw, &env); err != nil {
		return fmt.Errorf("hue: %s %s: %s: decode: %w", method, path, resp.Status, err)
	}
	if resp.StatusCode >= 300 || len(env.Errors) > 0 {
		msgs := make([]string, 0, len(env.Errors))
		for _, e := range env.Errors {
			msgs = append(msgs, e.Description)
		}
		return fmt.Errorf("hue: %s %s: %s: %s", method, path, resp.Status, strings.Join(msgs, "; "))
	}
	if out != nil {
		if err := json.Unmarshal(env.Data, out); err != nil {
			return fmt.Errorf("hue: %s %s: decode data: %w", method, path, err)
		}
	}
	return nil
}

// permanent reports whether err means retrying cannot help until the user acts.
func permanent(err error) bool {
	return errors.Is(err, ErrCertMismatch) || errors.Is(err, ErrUnauthorized)
}
