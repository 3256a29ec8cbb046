// Package testserver starts a real Hearth appliance on 127.0.0.1:0 for integration tests and
// gives them mautrix-go clients. It is test support: production code never imports it.
package testserver

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/appliance"
	"github.com/hearth-home/hearth/appliance/config"
)

// SharedSecret is the registration shared secret every test server uses.
const SharedSecret = "test-shared-secret"

// Server is a running appliance.
type Server struct {
	URL        string
	ServerName string
	DataDir    string
	Config     config.Config
	t          testing.TB
	cancel     context.CancelFunc
	done       chan error
	n          atomic.Int64
}

// Option adjusts the configuration before start.
type Option func(*config.Config)

// Start runs a server for the duration of the test.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Listen = "127.0.0.1:0"
	cfg.Registration.SharedSecret = SharedSecret
	cfg.Registration.MinPasswordLength = 0
	cfg.Limits.RateLimit = false
	for _, o := range opts {
		o(&cfg)
	}
	return StartConfig(t, cfg)
}

// StartConfig runs a server with an exact configuration.
func StartConfig(t testing.TB, cfg config.Config) *Server {
	t.Helper()
	level := slog.LevelWarn
	if os.Getenv("HEARTH_TEST_LOG") != "" {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	a, err := appliance.New(cfg, log)
	if err != nil {
		t.Fatalf("start appliance: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{URL: "http://" + a.ClientAddr(), ServerName: cfg.ServerName, DataDir: cfg.DataDir, Config: cfg, t: t, cancel: cancel, done: make(chan error, 1)}
	go func() { s.done <- a.Run(ctx) }()
	t.Cleanup(s.Stop)
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(s.URL + "/_matrix/client/versions")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("server did not become ready: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return s
}

// Stop shuts the server down (idempotent).
func (s *Server) Stop() {
	if s.cancel == nil {
		return
	}
	s.cancel()
	s.cancel = nil
	select {
	case err := <-s.done:
		if err != nil {
			s.t.Errorf("server exited with error: %v", err)
		}
	case <-time.After(15 * time.Second):
		s.t.Errorf("server did not stop in time")
	}
}

// Register creates a user through shared-secret registration and returns a logged-in client.
// An empty localpart gets a unique one.
func (s *Server) Register(t testing.TB, localpart string, admin bool) *mautrix.Client {
	t.Helper()
	if localpart == "" {
		localpart = fmt.Sprintf("user%d", s.n.Add(1))
	}
	password := "password-" + localpart
	body := s.sharedSecretBody(t, localpart, password, admin)
	var out struct {
		UserID      id.UserID   `json:"user_id"`
		AccessToken string      `json:"access_token"`
		DeviceID    id.DeviceID `json:"device_id"`
	}
	s.doJSON(t, http.MethodPost, "/_synapse/admin/v1/register", body, &out)
	cli, err := mautrix.NewClient(s.URL, out.UserID, out.AccessToken)
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	cli.DeviceID = out.DeviceID
	return cli
}

func (s *Server) sharedSecretBody(t testing.TB, user, password string, admin bool) map[string]any {
	var nonce struct {
		Nonce string `json:"nonce"`
	}
	s.doJSON(t, http.MethodGet, "/_synapse/admin/v1/register", nil, &nonce)
	mac := hmac.New(sha1.New, []byte(SharedSecret))
	role := "notadmin"
	if admin {
		role = "admin"
	}
	mac.Write([]byte(nonce.Nonce + "\x00" + user + "\x00" + password + "\x00" + role))
	return map[string]any{"nonce": nonce.Nonce, "username": user, "password": password, "admin": admin, "mac": hex.EncodeToString(mac.Sum(nil))}
}

func (s *Server) doJSON(t testing.TB, method, path string, body any, out any) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = strings.NewReader(string(b))
	}
	req, _ := http.NewRequest(method, s.URL+path, r)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: decode: %v", method, path, err)
		}
	}
}

// Raw performs an HTTP request with an optional access token and returns status and body,
// for tests of error paths that a typed client would refuse to send.
func (s *Server) Raw(t testing.TB, method, path, token string, body string) (int, map[string]any) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, s.URL+path, r)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return resp.StatusCode, m
}
