package fedapi

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/accounts"
	"github.com/hearth-home/hearth/matrix/events"
	"github.com/hearth-home/hearth/matrix/keys"
	"github.com/hearth-home/hearth/matrix/media"
	"github.com/hearth-home/hearth/matrix/rooms"
	"github.com/hearth-home/hearth/matrix/store"
)

// The tests run the real domain services on a real Badger store in a temporary directory,
// the same constructors the appliance calls, and the handlers on a real HTTP server. Only the
// X-Matrix check is replaced: testOrigin takes the origin from a test header, as the
// keyring middleware takes it from the verified signature.

const (
	ourServer        = "hearth.test"
	testOriginHeader = "X-Test-Origin"
)

var bg = context.Background()

type env struct {
	st       *store.Store
	accounts *accounts.Service
	rooms    *rooms.Service
	keys     *keys.Service
	media    *media.Service
	url      string
}

func testOrigin(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if o := c.Request().Header.Get(testOriginHeader); o != "" {
			c.Set(OriginKey, o)
		}
		return next(c)
	}
}

func newEnv(t testing.TB) *env {
	t.Helper()
	dir := t.TempDir()
	level := slog.LevelWarn
	if os.Getenv("HEARTH_TEST_LOG") != "" {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	st, err := store.Open(filepath.Join(dir, "store"), store.Options{Logger: log})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{st: st}
	e.accounts = accounts.New(st, ourServer, log)
	e.rooms = rooms.New(st, events.Signer{ServerName: ourServer, KeyID: "ed25519:test", Key: priv}, e.accounts, log)
	e.keys = keys.New(st, ourServer, log)
	e.media = media.New(st, media.Options{ServerName: ourServer, DataDir: dir, MaxUploadBytes: 1 << 20}, log)
	ec := echo.New()
	ec.HideBanner, ec.HidePort = true, true
	Register(ec.Group("/_matrix/federation"), Deps{ServerName: ourServer, Version: "test", Rooms: e.rooms, Accounts: e.accounts,
		Keys: e.keys, Media: e.media, Auth: testOrigin, Log: log})
	srv := httptest.NewServer(ec)
	e.url = srv.URL
	t.Cleanup(func() {
		srv.Close()
		e.keys.Close()
		if err := st.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	return e
}

// user registers a local user.
func (e *env) user(t testing.TB, localpart string) id.UserID {
	t.Helper()
	if _, err := e.accounts.Register(bg, localpart, "password", false); err != nil {
		t.Fatalf("register %s: %v", localpart, err)
	}
	return id.NewUserID(localpart, ourServer)
}

func (e *env) createRoom(t testing.TB, req rooms.CreateRequest) id.RoomID {
	t.Helper()
	r, err := e.rooms.CreateRoom(bg, req)
	if err != nil {
		t.Fatalf("create room: %v", err)
	}
	return r
}

// send appends an event as sender (local, or a remote user standing for an event the
// federation pipeline would have accepted) and returns its ID.
func (e *env) send(t testing.TB, room id.RoomID, sender id.UserID, typ string, stateKey *string, content any) id.EventID {
	t.Helper()
	b, _ := json.Marshal(content)
	a, err := e.rooms.Send(bg, room, events.Template{Type: typ, StateKey: stateKey, Sender: sender, Content: b}, rooms.SendOpts{})
	if err != nil {
		t.Fatalf("send %s as %s: %v", typ, sender, err)
	}
	return a.EventID
}

func (e *env) msg(t testing.TB, room id.RoomID, sender id.UserID, body string) id.EventID {
	t.Helper()
	return e.send(t, room, sender, "m.room.message", nil, map[string]any{"msgtype": "m.text", "body": body})
}

func (e *env) state(t testing.TB, room id.RoomID, sender id.UserID, typ, sk string, content any) id.EventID {
	t.Helper()
	return e.send(t, room, sender, typ, &sk, content)
}

func (e *env) join(t testing.TB, room id.RoomID, user id.UserID) id.EventID {
	t.Helper()
	return e.state(t, room, user, "m.room.member", user.String(), map[string]any{"membership": "join"})
}

// resp is one HTTP answer.
type resp struct {
	status int
	header http.Header
	body   []byte
}

func (r resp) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("answer is not a JSON object: %v: %s", err, r.body)
	}
	return m
}

// ok requires a 200 JSON answer and returns it.
func (r resp) ok(t testing.TB) map[string]any {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("status %d, want 200: %s", r.status, r.body)
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	return r.json(t)
}

// fail requires a Matrix error with the status and errcode.
func (r resp) fail(t testing.TB, status int, code string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	if m := r.json(t); m["errcode"] != code {
		t.Fatalf("errcode %v, want %s: %s", m["errcode"], code, r.body)
	}
}

// do sends a request as origin ("" sends none). path is below /_matrix/federation.
func (e *env) do(t testing.TB, origin, method, path string, body any) resp {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, e.url+"/_matrix/federation"+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if origin != "" {
		req.Header.Set(testOriginHeader, origin)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return resp{status: res.StatusCode, header: res.Header, body: b}
}

func (e *env) get(t testing.TB, origin, path string) resp {
	t.Helper()
	return e.do(t, origin, http.MethodGet, path, nil)
}

func esc(s string) string { return url.PathEscape(s) }
func q(s string) string   { return url.QueryEscape(s) }

// strs reads a JSON array of strings.
func strs(t testing.TB, v any) []string {
	t.Helper()
	arr, ok := v.([]any)
	if !ok {
		t.Fatalf("%v is not an array", v)
	}
	out := make([]string, 0, len(arr))
	for _, x := range arr {
		s, ok := x.(string)
		if !ok {
			t.Fatalf("%v is not a string", x)
		}
		out = append(out, s)
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func sp(s string) *string { return &s }
