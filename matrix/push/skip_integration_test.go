package push_test

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"maunium.net/go/mautrix"

	"github.com/hearth-home/hearth/appliance/config"
	"github.com/hearth-home/hearth/appliance/testserver"
)

// Users held exclusively by an application service get no push evaluation (as in Synapse),
// while the other members of the same room still get their notifications and counts.
func TestAppServiceUsersAreNotEvaluated(t *testing.T) {
	const serverName = "hearth.test"
	dir := t.TempDir()
	reg := `id: bridge
url: null
as_token: as-secret-token
hs_token: hs-secret-token
sender_localpart: bridgebot
rate_limited: false
namespaces:
  users:
    - exclusive: true
      regex: '@bridge_.*:hearth\.test'
`
	if err := os.WriteFile(filepath.Join(dir, "bridge.yaml"), []byte(reg), 0o600); err != nil {
		t.Fatal(err)
	}
	s := testserver.Start(t, func(c *config.Config) { c.ServerName = serverName; c.AppServiceDir = dir })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	alice := s.Register(t, "alice", false)
	bob := s.Register(t, "bob", false)
	room, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "public_chat"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.JoinRoomByID(ctx, room.RoomID); err != nil {
		t.Fatal(err)
	}
	const ghost = "@bridge_x:" + serverName
	if st, body := s.Raw(t, "POST", "/_matrix/client/v3/register", "as-secret-token",
		`{"type":"m.login.application_service","username":"bridge_x"}`); st != 200 {
		t.Fatalf("register the ghost: %d %v", st, body)
	}
	as := func(path string) string { return path + "?user_id=" + url.QueryEscape(ghost) }
	if st, body := s.Raw(t, "POST", as("/_matrix/client/v3/join/"+url.PathEscape(room.RoomID.String())), "as-secret-token", `{}`); st != 200 {
		t.Fatalf("ghost joins: %d %v", st, body)
	}
	// The bot (the registration's sender) is exclusive too.
	if st, body := s.Raw(t, "POST", "/_matrix/client/v3/join/"+url.PathEscape(room.RoomID.String()), "as-secret-token", `{}`); st != 200 {
		t.Fatalf("bot joins: %d %v", st, body)
	}
	if _, err := alice.SendText(ctx, room.RoomID, "hello everyone"); err != nil {
		t.Fatal(err)
	}
	count := func(token, path string) int {
		st, body := s.Raw(t, "GET", path, token, "")
		if st != 200 {
			t.Fatalf("GET %s: %d %v", path, st, body)
		}
		n, _ := body["notifications"].([]any)
		return len(n)
	}
	deadline := time.Now().Add(10 * time.Second)
	for count(bob.AccessToken, "/_matrix/client/v3/notifications") != 1 {
		if time.Now().After(deadline) {
			t.Fatal("bob never got the message's notification")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Every recipient of an event is evaluated in the same pass, so bob's notification means
	// the ghost's and the bot's turn is over too.
	if n := count("as-secret-token", as("/_matrix/client/v3/notifications")); n != 0 {
		t.Fatalf("the ghost has %d notifications", n)
	}
	if n := count("as-secret-token", "/_matrix/client/v3/notifications"); n != 0 {
		t.Fatalf("the bot has %d notifications", n)
	}
}
