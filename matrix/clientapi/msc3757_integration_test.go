package clientapi_test

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/appliance/testserver"
	"github.com/hearth-home/hearth/matrix/events"
)

// MSC3757 (owned state events) rooms on two real federating Hearth servers: the version is
// advertised as unstable, created, joined over federation (make_join's ver list, the base
// version's event format), and the owned-state rule holds on both servers: the owner and those
// with more power may write a key, others get 403 M_FORBIDDEN, and a key that only looks like a
// user ID is a 400 M_BAD_JSON.
func TestOwnedStateRoomEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two federating servers; not in -short")
	}
	ca := testserver.NewCA(t)
	a := testserver.Start(t, testserver.Federated(t, ca))
	b := testserver.Start(t, testserver.Federated(t, ca))
	ctx := context.Background()
	alice := a.Register(t, "alice", false)
	carol := a.Register(t, "carol", false)
	bob := b.Register(t, "bob", false)

	caps := cs3Do(t, a, "GET", "/_matrix/client/v3/capabilities", alice.AccessToken, nil).ok(t)
	avail, _ := rxDig(caps, "capabilities", "m.room_versions", "available").(map[string]any)
	for _, rv := range []id.RoomVersion{events.RoomVMSC3757v10, events.RoomVMSC3757v11} {
		if avail[string(rv)] != "unstable" {
			t.Fatalf("version %s advertised as %v, want unstable", rv, avail[string(rv)])
		}
	}
	if avail["10"] != "stable" {
		t.Fatalf("version 10 advertised as %v", avail["10"])
	}

	created := cs3Do(t, a, "POST", "/_matrix/client/v3/createRoom", alice.AccessToken, map[string]any{
		"room_version": string(events.RoomVMSC3757v10),
		"preset":       "public_chat",
		"power_level_content_override": map[string]any{
			"events": map[string]int{"com.example.test": 0},
		},
	}).ok(t)
	room := id.RoomID(created["room_id"].(string))
	if !strings.HasSuffix(room.String(), ":"+a.ServerName) {
		t.Fatalf("room ID %s is not a version 10 style ID", room)
	}
	if _, err := carol.JoinRoom(ctx, room.String(), nil); err != nil {
		t.Fatalf("carol joins: %v", err)
	}
	if _, err := bob.JoinRoom(ctx, room.String(), &mautrix.ReqJoinRoom{Via: []string{a.ServerName}}); err != nil {
		t.Fatalf("bob joins over federation: %v", err)
	}
	v2WaitFor(t, "alice's server to see bob join", func() bool { return v2Member(ctx, alice, room, bob.UserID) == "join" })

	put := func(s *testserver.Server, c *mautrix.Client, key string) cs3Resp {
		return cs3Do(t, s, "PUT", "/_matrix/client/v3/rooms/"+url.PathEscape(room.String())+"/state/com.example.test/"+url.PathEscape(key), c.AccessToken, map[string]any{"who": c.UserID.String()})
	}
	// Separator and sigil characters inside the suffix, as MatrixRTC device keys may have.
	suffix := "_state_key_suffix:!@#$"
	put(a, carol, carol.UserID.String()+suffix).ok(t)
	put(a, alice, carol.UserID.String()).ok(t)
	put(a, alice, carol.UserID.String()+suffix).ok(t)
	put(a, alice, "@notinroom:elsewhere.test").ok(t)
	put(a, carol, alice.UserID.String()+suffix).want(t, 403, "M_FORBIDDEN")
	put(a, carol, bob.UserID.String()).want(t, 403, "M_FORBIDDEN")
	// Without the "_" the suffix runs into the port of the test server's name
	// ("localhost:PORTstate"): no valid user ID, so malformed. The same localpart on another
	// server is another user, whom carol may not outrank.
	put(a, carol, carol.UserID.String()+suffix[1:]).want(t, 400, "M_BAD_JSON")
	put(a, carol, "@carol:elsewhere.test"+suffix).want(t, 403, "M_FORBIDDEN")
	put(a, carol, "@prefix_"+carol.UserID.String()+suffix).want(t, 403, "M_FORBIDDEN")
	put(a, alice, "@oops").want(t, 400, "M_BAD_JSON")
	put(a, alice, alice.UserID.String()+"@x_y").want(t, 400, "M_BAD_JSON")

	// The remote member writes its own suffixed key; the event reaches alice's server, which
	// authorises it with the same rule.
	bobKey := bob.UserID.String() + "_BOBDEVICE"
	put(b, bob, bobKey).ok(t)
	v2WaitFor(t, "bob's owned state on a", func() bool {
		r := cs3Do(t, a, "GET", "/_matrix/client/v3/rooms/"+url.PathEscape(room.String())+"/state/com.example.test/"+url.PathEscape(bobKey), alice.AccessToken, nil)
		return r.status == 200
	})
	put(b, bob, carol.UserID.String()+suffix).want(t, 403, "M_FORBIDDEN")
	// Alice, with more power than bob, overwrites bob's key; bob's server accepts it.
	put(a, alice, bobKey).ok(t)
	v2WaitFor(t, "alice's write of bob's key on b", func() bool {
		r := cs3Do(t, b, "GET", "/_matrix/client/v3/rooms/"+url.PathEscape(room.String())+"/state/com.example.test/"+url.PathEscape(bobKey), bob.AccessToken, nil)
		return r.status == 200 && rxDig(r.body, "who") == alice.UserID.String()
	})

	// A version 10 room keeps the old rule.
	plain := cs3Do(t, a, "POST", "/_matrix/client/v3/createRoom", alice.AccessToken, map[string]any{"room_version": "10", "preset": "public_chat"}).ok(t)
	path := "/_matrix/client/v3/rooms/" + url.PathEscape(plain["room_id"].(string)) + "/state/com.example.test/"
	cs3Do(t, a, "PUT", path+url.PathEscape(alice.UserID.String()+"_x"), alice.AccessToken, map[string]any{}).want(t, 403, "M_FORBIDDEN")
	cs3Do(t, a, "PUT", path+url.PathEscape("@oops"), alice.AccessToken, map[string]any{}).want(t, 403, "M_FORBIDDEN")
}
