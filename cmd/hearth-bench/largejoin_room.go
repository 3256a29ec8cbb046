package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// Generating the large room on the resident server through the client-server API only. Members
// are application-service users: the service registers them without passwords (shared-secret
// registration would spend a bcrypt hash on each of 10,000 users) and joins them by
// masquerading with ?user_id=, exactly as a bridge populates a room.

const ljNamespacePrefix = "lj_"

// writeBenchAppService writes a registration with no URL (the server never pushes to it) whose
// exclusive user namespace is lj_* on serverName, and returns its as_token.
func writeBenchAppService(dir, serverName string) (string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	asToken, hsToken := randomHex(16), randomHex(16)
	reg := fmt.Sprintf(`id: largejoin
url: ""
as_token: %q
hs_token: %q
sender_localpart: largejoin_bot
rate_limited: false
namespaces:
  users:
    - exclusive: true
      regex: '@%s.*:%s'
`, asToken, hsToken, ljNamespacePrefix, regexpQuote(serverName))
	return asToken, os.WriteFile(filepath.Join(dir, "largejoin.yaml"), []byte(reg), 0o600)
}

// regexpQuote escapes the dots of a server name for the namespace regex.
func regexpQuote(s string) string {
	out := make([]byte, 0, len(s)+4)
	for i := 0; i < len(s); i++ {
		if s[i] == '.' {
			out = append(out, '\\')
		}
		out = append(out, s[i])
	}
	return string(out)
}

// populateRoom registers n namespace users and joins each to roomID, with conc requests in
// flight. It logs progress and returns the first error.
func populateRoom(ctx context.Context, c *client, asToken, serverName, roomID string, n, conc int) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		next, done atomic.Int64
		firstErr   error
		once       sync.Once
		wg         sync.WaitGroup
	)
	fail := func(err error) {
		once.Do(func() { firstErr = err; cancel() })
	}
	began := time.Now()
	stopProgress := make(chan struct{})
	go func() {
		t := time.NewTicker(10 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				d := done.Load()
				logf("  %d/%d members joined (%.0f/s)", d, n, float64(d)/time.Since(began).Seconds())
			case <-stopProgress:
				return
			}
		}
	}()
	defer close(stopProgress)
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(n) || ctx.Err() != nil {
					return
				}
				lp := fmt.Sprintf("%s%05d", ljNamespacePrefix, i)
				reg := map[string]any{"type": "m.login.application_service", "username": lp, "inhibit_login": true}
				if err := c.do(ctx, "POST /register (appservice)", http.MethodPost, "/_matrix/client/v3/register", asToken, reg, nil); err != nil {
					fail(fmt.Errorf("register %s: %w", lp, err))
					return
				}
				user := "@" + lp + ":" + serverName
				path := "/_matrix/client/v3/join/" + url.PathEscape(roomID) + "?user_id=" + url.QueryEscape(user)
				if err := c.do(ctx, "POST /join/{roomId} (appservice)", http.MethodPost, path, asToken, map[string]any{}, nil); err != nil {
					fail(fmt.Errorf("join %s: %w", user, err))
					return
				}
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	logf("  %d members joined in %.1fs", n, time.Since(began).Seconds())
	return nil
}

// joinedMembers counts the joined members of a room as a server sees it.
func joinedMembers(ctx context.Context, c *client, s *session, roomID string) (int, error) {
	var r struct {
		Joined map[string]any `json:"joined"`
	}
	path := "/_matrix/client/v3/rooms/" + url.PathEscape(roomID) + "/joined_members"
	if err := c.do(ctx, "GET /rooms/{roomId}/joined_members", http.MethodGet, path, s.Token, nil, &r); err != nil {
		return 0, err
	}
	return len(r.Joined), nil
}

// createLargeRoom creates the public room to fill, in room version rv when set.
func createLargeRoom(ctx context.Context, c *client, s *session, rv string) (string, error) {
	req := map[string]any{"preset": "public_chat", "name": "large-join", "visibility": "private"}
	if rv != "" {
		req["room_version"] = rv
	}
	var r struct {
		RoomID string `json:"room_id"`
	}
	if err := c.do(ctx, "POST /createRoom", http.MethodPost, "/_matrix/client/v3/createRoom", s.Token, req, &r); err != nil {
		return "", err
	}
	if r.RoomID == "" {
		return "", fmt.Errorf("createRoom: no room_id")
	}
	return r.RoomID, nil
}
