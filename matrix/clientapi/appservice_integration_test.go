package clientapi_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	mas "maunium.net/go/mautrix/appservice"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/appliance/config"
	"github.com/hearth-home/hearth/appliance/testserver"
)

// Application services, tested against mautrix-go's appservice package running on loopback
// as a real application service: registration YAML, as_token auth and masquerading,
// exclusive namespaces, ordered transactions with retries that survive a restart, /ping and
// user queries.

type testAS struct {
	as       *mas.AppService
	ln       net.Listener
	srv      *http.Server
	fail     atomic.Int32 // transactions to refuse with a 500 before accepting again
	mu       sync.Mutex
	txnIDs   []string // every transaction ID received, accepted or not
	bodies   []string // m.room.message bodies in arrival order (accepted transactions only)
	queried  []string
	register func(u id.UserID) bool
}

type asQuery struct{ t *testAS }

func (q asQuery) QueryAlias(id.RoomAlias) bool { return false }
func (q asQuery) QueryUser(u id.UserID) bool {
	q.t.mu.Lock()
	q.t.queried = append(q.t.queried, u.String())
	q.t.mu.Unlock()
	return q.t.register != nil && q.t.register(u)
}

// startAS listens on loopback and writes the registration into a fresh appservice_dir.
func startAS(t *testing.T, serverName string) (*testAS, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	reg := fmt.Sprintf(`id: bridge
url: http://%s
as_token: as-secret-token
hs_token: hs-secret-token
sender_localpart: bridgebot
rate_limited: false
namespaces:
  users:
    - exclusive: true
      regex: '@bridge_.*:%s'
  aliases:
    - exclusive: true
      regex: '#bridge_.*:%s'
  rooms: []
protocols: [bridgeproto]
`, ln.Addr(), strings.ReplaceAll(serverName, ".", `\.`), strings.ReplaceAll(serverName, ".", `\.`))
	if err := os.WriteFile(filepath.Join(dir, "bridge.yaml"), []byte(reg), 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := mas.LoadRegistration(filepath.Join(dir, "bridge.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	ta := &testAS{ln: ln}
	as := mas.Create()
	as.Registration = r
	as.HomeserverDomain = serverName
	as.QueryHandler = asQuery{ta}
	ta.as = as
	// The transaction handler is mautrix's; the wrapper only injects failures and records IDs.
	ta.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if strings.HasPrefix(req.URL.Path, "/_matrix/app/v1/transactions/") {
			ta.mu.Lock()
			ta.txnIDs = append(ta.txnIDs, strings.TrimPrefix(req.URL.Path, "/_matrix/app/v1/transactions/"))
			ta.mu.Unlock()
			if ta.fail.Load() > 0 {
				ta.fail.Add(-1)
				http.Error(w, `{"errcode":"M_UNKNOWN","error":"down"}`, 500)
				return
			}
		}
		as.Router.ServeHTTP(w, req)
	})}
	go func() { _ = ta.srv.Serve(ln) }()
	t.Cleanup(func() { _ = ta.srv.Close() })
	go func() {
		for ev := range as.Events {
			if ev.Type == event.EventMessage {
				ta.mu.Lock()
				ta.bodies = append(ta.bodies, ev.Content.AsMessage().Body)
				ta.mu.Unlock()
			}
		}
	}()
	return ta, dir
}

func (ta *testAS) waitBodies(t *testing.T, want ...string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		ta.mu.Lock()
		got := fmt.Sprint(ta.bodies)
		ta.mu.Unlock()
		if got == fmt.Sprint(want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("appservice received %s, want %v", got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestAppServices(t *testing.T) {
	const serverName = "hearth.test"
	ta, dir := startAS(t, serverName)
	s := testserver.Start(t, func(c *config.Config) { c.ServerName = serverName; c.AppServiceDir = dir })
	if err := ta.as.SetHomeserverURL(s.URL); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	alice := s.Register(t, "alice", false)

	// The sender exists and the as_token authenticates as it.
	bot := ta.as.BotIntent()
	if who, err := bot.Whoami(ctx); err != nil || who.UserID != id.UserID("@bridgebot:"+serverName) {
		t.Fatalf("whoami %v %v", who, err)
	}
	// Ping: the homeserver calls the service's /ping.
	if resp, err := bot.AppservicePing(ctx, "bridge", "ping-1"); err != nil || resp == nil {
		t.Fatalf("ping %v %v", resp, err)
	}
	_, err := bot.AppservicePing(ctx, "other", "")
	cs3WantErr(t, err, 403, "M_FORBIDDEN")
	cs3Do(t, s, http.MethodPost, "/_matrix/client/v1/appservice/bridge/ping", alice.AccessToken, map[string]any{}).want(t, 403, "M_FORBIDDEN")

	// Registering namespace users: the service may, nobody else may.
	ghost := ta.as.Intent(id.UserID("@bridge_alice:" + serverName))
	if err := ghost.EnsureRegistered(ctx); err != nil {
		t.Fatalf("register ghost: %v", err)
	}
	cs3Do(t, s, http.MethodPost, "/_matrix/client/v3/register", "", map[string]any{"username": "bridge_bob", "password": "pw", "auth": map[string]any{"type": "m.login.dummy"}}).want(t, 400, "M_EXCLUSIVE")
	cs3Do(t, s, http.MethodPost, "/_matrix/client/v3/register", "as-secret-token", map[string]any{"type": "m.login.application_service", "username": "notours"}).want(t, 400, "M_EXCLUSIVE")
	cs3Do(t, s, http.MethodPost, "/_matrix/client/v3/register", "wrong", map[string]any{"type": "m.login.application_service", "username": "bridge_x"}).want(t, 401, "M_UNKNOWN_TOKEN")

	// Masquerading: inside the namespace and registered only.
	if who := cs3Do(t, s, http.MethodGet, "/_matrix/client/v3/account/whoami?user_id="+cs3Esc(ghost.UserID.String()), "as-secret-token", nil).ok(t); who["user_id"] != ghost.UserID.String() {
		t.Fatalf("masquerade %v", who)
	}
	cs3Do(t, s, http.MethodGet, "/_matrix/client/v3/account/whoami?user_id="+cs3Esc(alice.UserID.String()), "as-secret-token", nil).want(t, 400, "M_EXCLUSIVE")
	cs3Do(t, s, http.MethodGet, "/_matrix/client/v3/account/whoami?user_id="+cs3Esc("@bridge_nobody:"+serverName), "as-secret-token", nil).want(t, 403, "M_FORBIDDEN")

	// The ghost makes a room and talks; alice joins and talks: the service gets all of it in order
	// (the room has a namespace member).
	room, err := ghost.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "public_chat"})
	if err != nil {
		t.Fatalf("create room: %v", err)
	}
	if _, err := ghost.SendText(ctx, room.RoomID, "one"); err != nil {
		t.Fatal(err)
	}
	cs3R(alice.JoinRoomByID(cs3Ctx, room.RoomID)).must(t)
	for _, b := range []string{"two", "three"} {
		cs3R(alice.SendText(cs3Ctx, room.RoomID, b)).must(t)
	}
	// A room without namespace users is of no interest.
	other := cs3CreateRoom(t, s, alice, map[string]any{})
	cs3R(alice.SendText(cs3Ctx, other, "private")).must(t)
	ta.waitBodies(t, "one", "two", "three")

	// Exclusive aliases: only the service may claim them.
	aliasPath := "/_matrix/client/v3/directory/room/" + cs3Esc("#bridge_room:"+serverName)
	cs3Do(t, s, http.MethodPut, aliasPath, alice.AccessToken, map[string]any{"room_id": room.RoomID}).want(t, 400, "M_EXCLUSIVE")
	cs3Do(t, s, http.MethodPut, aliasPath+"?user_id="+cs3Esc(ghost.UserID.String()), "as-secret-token", map[string]any{"room_id": room.RoomID}).ok(t)
	cs3Do(t, s, http.MethodPut, "/_matrix/client/v3/directory/room/"+cs3Esc("#free:"+serverName), alice.AccessToken, map[string]any{"room_id": room.RoomID}).ok(t)

	// Failures are retried with the same transaction ID, and nothing is reordered.
	ta.mu.Lock()
	before := len(ta.txnIDs)
	ta.mu.Unlock()
	ta.fail.Store(2)
	cs3R(alice.SendText(cs3Ctx, room.RoomID, "four")).must(t)
	cs3R(alice.SendText(cs3Ctx, room.RoomID, "five")).must(t)
	ta.waitBodies(t, "one", "two", "three", "four", "five")
	ta.mu.Lock()
	ids := ta.txnIDs[before:]
	ta.mu.Unlock()
	if len(ids) < 3 || ids[0] != ids[1] || ids[1] != ids[2] {
		t.Fatalf("retried transaction IDs %v", ids)
	}

	// User query: the profile of an unknown namespace user asks the service, which creates it.
	ta.register = func(u id.UserID) bool {
		in := ta.as.Intent(u)
		if err := in.EnsureRegistered(ctx); err != nil {
			return false
		}
		return in.SetDisplayName(ctx, "Queried") == nil
	}
	p := cs3Do(t, s, http.MethodGet, "/_matrix/client/v3/profile/"+cs3Esc("@bridge_query:"+serverName), alice.AccessToken, nil).ok(t)
	if p["displayname"] != "Queried" {
		t.Fatalf("queried profile %v", p)
	}
	cs3Do(t, s, http.MethodGet, "/_matrix/client/v3/profile/"+cs3Esc("@bridge_nope_"+"x:"+serverName), alice.AccessToken, nil)
	ta.mu.Lock()
	queried := fmt.Sprint(ta.queried)
	ta.mu.Unlock()
	if !strings.Contains(queried, "@bridge_query:"+serverName) {
		t.Fatalf("queries %v", queried)
	}

	// The position is persisted: events sent while the service is down arrive after a restart.
	ta.fail.Store(1 << 30)
	cs3R(alice.SendText(cs3Ctx, room.RoomID, "six")).must(t)
	time.Sleep(100 * time.Millisecond)
	cfg := s.Config
	s.Stop()
	ta.fail.Store(0)
	s2 := testserver.StartConfig(t, cfg)
	ta.waitBodies(t, "one", "two", "three", "four", "five", "six")
	cs3Do(t, s2, http.MethodPut, "/_matrix/client/v3/rooms/"+cs3Esc(room.RoomID.String())+"/send/m.room.message/after", alice.AccessToken, map[string]any{"msgtype": "m.text", "body": "seven"}).ok(t)
	ta.waitBodies(t, "one", "two", "three", "four", "five", "six", "seven")
}
