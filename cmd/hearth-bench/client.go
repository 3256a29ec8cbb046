package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sort"
	"sync"
	"time"
)

// client is the one Matrix client-server API client that drives both servers: plain net/http
// and JSON, no retries, so every error the server returns is counted.
type client struct {
	base string
	hc   *http.Client
	errs *errorLog
}

func newClient(base string, errs *errorLog) *client {
	tr := &http.Transport{
		Proxy:               nil, // loopback only: never a proxy from the environment
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConns:        512,
		MaxIdleConnsPerHost: 512,
		IdleConnTimeout:     90 * time.Second,
	}
	return &client{base: base, hc: &http.Client{Transport: tr}, errs: errs}
}

// apiError is a non-2xx answer.
type apiError struct {
	Method, Path string
	Status       int
	Body         string
}

func (e *apiError) Error() string {
	return fmt.Sprintf("%s %s: %d %s", e.Method, e.Path, e.Status, e.Body)
}

// do sends one request and decodes a 2xx JSON answer into out (when non-nil). endpoint is the
// path template used to group errors ("PUT /rooms/{roomId}/send/...").
func (c *client) do(ctx context.Context, endpoint, method, path, token string, body, out any) error {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, r)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if ctx.Err() == nil {
			c.errs.add(endpoint, 0, err.Error())
		}
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		if ctx.Err() == nil {
			c.errs.add(endpoint, resp.StatusCode, "reading body: "+err.Error())
		}
		return err
	}
	if resp.StatusCode/100 != 2 {
		e := &apiError{Method: method, Path: path, Status: resp.StatusCode, Body: truncate(string(data), 300)}
		c.errs.add(endpoint, resp.StatusCode, e.Body)
		return e
	}
	if raw, ok := out.(*[]byte); ok {
		*raw = data
		return nil
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			c.errs.add(endpoint, resp.StatusCode, "bad JSON: "+err.Error())
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
	}
	return nil
}

// session is a logged-in user.
type session struct {
	UserID, Token, Device string
	Localpart             string
}

// register creates a user with Synapse-compatible shared-secret registration, which both
// servers implement, and returns its session.
func (c *client) register(ctx context.Context, secret, localpart, password string) (*session, error) {
	var n struct {
		Nonce string `json:"nonce"`
	}
	if err := c.do(ctx, "GET /_synapse/admin/v1/register", http.MethodGet, "/_synapse/admin/v1/register", "", nil, &n); err != nil {
		return nil, err
	}
	mac := hmac.New(sha1.New, []byte(secret))
	mac.Write([]byte(n.Nonce + "\x00" + localpart + "\x00" + password + "\x00notadmin"))
	req := map[string]any{
		"nonce": n.Nonce, "username": localpart, "password": password, "admin": false,
		"mac": hex.EncodeToString(mac.Sum(nil)),
	}
	var r struct {
		UserID      string `json:"user_id"`
		AccessToken string `json:"access_token"`
		DeviceID    string `json:"device_id"`
	}
	if err := c.do(ctx, "POST /_synapse/admin/v1/register", http.MethodPost, "/_synapse/admin/v1/register", "", req, &r); err != nil {
		return nil, err
	}
	if r.AccessToken == "" {
		// Some servers only create the account: log in.
		return c.login(ctx, localpart, password)
	}
	return &session{UserID: r.UserID, Token: r.AccessToken, Device: r.DeviceID, Localpart: localpart}, nil
}

func (c *client) login(ctx context.Context, localpart, password string) (*session, error) {
	var r struct {
		UserID      string `json:"user_id"`
		AccessToken string `json:"access_token"`
		DeviceID    string `json:"device_id"`
	}
	err := c.do(ctx, "POST /login", http.MethodPost, "/_matrix/client/v3/login", "", map[string]any{
		"type":       "m.login.password",
		"identifier": map[string]any{"type": "m.id.user", "user": localpart},
		"password":   password,
	}, &r)
	if err != nil {
		return nil, err
	}
	return &session{UserID: r.UserID, Token: r.AccessToken, Device: r.DeviceID, Localpart: localpart}, nil
}

func (c *client) whoami(ctx context.Context, s *session) error {
	return c.do(ctx, "GET /account/whoami", http.MethodGet, "/_matrix/client/v3/account/whoami", s.Token, nil, nil)
}

func (c *client) createRoom(ctx context.Context, s *session, name string) (string, error) {
	var r struct {
		RoomID string `json:"room_id"`
	}
	err := c.do(ctx, "POST /createRoom", http.MethodPost, "/_matrix/client/v3/createRoom", s.Token,
		map[string]any{"preset": "public_chat", "name": name, "visibility": "private"}, &r)
	if err == nil && r.RoomID == "" {
		err = fmt.Errorf("createRoom: no room_id")
	}
	return r.RoomID, err
}

func (c *client) join(ctx context.Context, s *session, roomID string) error {
	return c.do(ctx, "POST /join/{roomId}", http.MethodPost, "/_matrix/client/v3/join/"+url.PathEscape(roomID), s.Token, map[string]any{}, nil)
}

// send posts an m.room.message and returns its event ID.
func (c *client) send(ctx context.Context, s *session, roomID, txnID string, content map[string]any) (string, error) {
	var r struct {
		EventID string `json:"event_id"`
	}
	path := "/_matrix/client/v3/rooms/" + url.PathEscape(roomID) + "/send/m.room.message/" + url.PathEscape(txnID)
	err := c.do(ctx, "PUT /rooms/{roomId}/send/m.room.message/{txnId}", http.MethodPut, path, s.Token, content, &r)
	if err == nil && r.EventID == "" {
		err = fmt.Errorf("send: no event_id")
	}
	return r.EventID, err
}

func (c *client) getEvent(ctx context.Context, s *session, roomID, eventID string, out any) error {
	path := "/_matrix/client/v3/rooms/" + url.PathEscape(roomID) + "/event/" + url.PathEscape(eventID)
	return c.do(ctx, "GET /rooms/{roomId}/event/{eventId}", http.MethodGet, path, s.Token, nil, out)
}

// syncResponse is the part of a /sync answer the harness reads.
type syncResponse struct {
	NextBatch string `json:"next_batch"`
	Rooms     struct {
		Join map[string]struct {
			Timeline struct {
				Events []struct {
					EventID string         `json:"event_id"`
					Type    string         `json:"type"`
					Content map[string]any `json:"content"`
				} `json:"events"`
				Limited bool `json:"limited"`
			} `json:"timeline"`
		} `json:"join"`
	} `json:"rooms"`
}

// sync runs one /sync; filter is inline filter JSON (empty for none). It returns the answer's
// size in bytes as well.
func (c *client) sync(ctx context.Context, s *session, since, filter string, timeout time.Duration, out *syncResponse) error {
	q := url.Values{}
	if since != "" {
		q.Set("since", since)
	}
	if filter != "" {
		q.Set("filter", filter)
	}
	q.Set("timeout", fmt.Sprint(timeout.Milliseconds()))
	return c.do(ctx, "GET /sync", http.MethodGet, "/_matrix/client/v3/sync?"+q.Encode(), s.Token, nil, out)
}

// messagesPage is one page of /messages.
type messagesPage struct {
	Chunk []struct {
		EventID string         `json:"event_id"`
		Type    string         `json:"type"`
		Content map[string]any `json:"content"`
	} `json:"chunk"`
	End string `json:"end"`
}

func (c *client) messages(ctx context.Context, s *session, roomID, from string, limit int, out *messagesPage) error {
	q := url.Values{"dir": {"b"}, "limit": {fmt.Sprint(limit)}}
	if from != "" {
		q.Set("from", from)
	}
	path := "/_matrix/client/v3/rooms/" + url.PathEscape(roomID) + "/messages?" + q.Encode()
	return c.do(ctx, "GET /rooms/{roomId}/messages", http.MethodGet, path, s.Token, nil, out)
}

// errorLog counts failed requests per endpoint and status and keeps one example of each.
type errorLog struct {
	mu sync.Mutex
	m  map[string]*errorEntry
}

type errorEntry struct {
	Endpoint string `json:"endpoint"`
	Status   int    `json:"status"` // 0: transport error
	Count    int    `json:"count"`
	Example  string `json:"example"`
}

func newErrorLog() *errorLog { return &errorLog{m: map[string]*errorEntry{}} }

func (l *errorLog) add(endpoint string, status int, example string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := fmt.Sprintf("%s|%d", endpoint, status)
	e := l.m[k]
	if e == nil {
		e = &errorEntry{Endpoint: endpoint, Status: status, Example: example}
		l.m[k] = e
	}
	e.Count++
}

func (l *errorLog) list() []errorEntry {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]errorEntry, 0, len(l.m))
	for _, e := range l.m {
		out = append(out, *e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Count > out[j].Count })
	return out
}

func (l *errorLog) total() int {
	n := 0
	for _, e := range l.list() {
		n += e.Count
	}
	return n
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
