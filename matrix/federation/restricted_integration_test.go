package federation_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/appliance/testserver"
)

// A user of another server joins a restricted room through membership of the allowed room: the
// resident server names one of its users as the authoriser and countersigns the join.
func TestFederationRestrictedJoin(t *testing.T) {
	a, b, _ := fedPair(t)
	ctx := context.Background()
	alice := a.Register(t, "alice", false)
	bob := b.Register(t, "bob", false)
	allowed, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "public_chat", RoomVersion: "10"})
	if err != nil {
		t.Fatal(err)
	}
	room, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "public_chat", RoomVersion: "10", InitialState: []*event.Event{{Type: event.StateJoinRules, Content: event.Content{Raw: map[string]any{"join_rule": "restricted", "allow": []any{map[string]any{"type": "m.room_membership", "room_id": allowed.RoomID, "via": []string{a.ServerName}}}}}}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.JoinRoom(ctx, room.RoomID.String(), &mautrix.ReqJoinRoom{Via: []string{a.ServerName}}); err == nil {
		t.Fatal("joined a restricted room without being in the allowed room")
	}
	if _, err := bob.JoinRoom(ctx, allowed.RoomID.String(), &mautrix.ReqJoinRoom{Via: []string{a.ServerName}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "bob in the allowed room on a", func() bool { return members(t, alice, allowed.RoomID)[bob.UserID.String()] == "join" })
	if _, err := bob.JoinRoom(ctx, room.RoomID.String(), &mautrix.ReqJoinRoom{Via: []string{a.ServerName}}); err != nil {
		t.Fatalf("restricted join through the allowed room: %v", err)
	}
	sk := bob.UserID.String()
	if _, err := bob.SendStateEvent(ctx, room.RoomID, event.StateMember, sk, map[string]any{"membership": "join", "displayname": "Bobby", "join_authorised_via_users_server": "unused"}); err != nil {
		t.Fatalf("profile change in the restricted room: %v", err)
	}
}

// restrictedRoom makes an allowed room and a room (version 10, public_chat) restricted to its
// members, both created by creator on srv.
func restrictedRoom(t *testing.T, creator *mautrix.Client, srv string) (allowed, room id.RoomID) {
	t.Helper()
	ctx := context.Background()
	a, err := creator.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "public_chat", RoomVersion: "10"})
	if err != nil {
		t.Fatal(err)
	}
	rule := map[string]any{"join_rule": "restricted", "allow": []any{map[string]any{"type": "m.room_membership", "room_id": a.RoomID, "via": []string{srv}}}}
	r, err := creator.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "public_chat", RoomVersion: "10", InitialState: []*event.Event{{Type: event.StateJoinRules, Content: event.Content{Raw: rule}}}})
	if err != nil {
		t.Fatal(err)
	}
	return a.RoomID, r.RoomID
}

// joinVia joins room through servers (in order) and returns the Matrix error, if any.
func joinVia(c *mautrix.Client, room id.RoomID, servers ...string) error {
	_, err := c.JoinRoom(context.Background(), room.String(), &mautrix.ReqJoinRoom{Via: servers})
	return err
}

// wantErr checks that err is a Matrix error answer with this status and errcode.
func wantErr(t *testing.T, what string, err error, status int, code string) {
	t.Helper()
	var he mautrix.HTTPError
	if !errors.As(err, &he) || he.Response == nil || he.RespError == nil {
		t.Fatalf("%s: want %d %s, got %v", what, status, code, err)
	}
	if he.Response.StatusCode != status || he.RespError.ErrCode != code {
		t.Fatalf("%s: want %d %s, got %d %s (%s)", what, status, code, he.Response.StatusCode, he.RespError.ErrCode, he.RespError.Err)
	}
}

// authorisedVia reads join_authorised_via_users_server of user's membership in room as c sees it.
func authorisedVia(t *testing.T, c *mautrix.Client, room id.RoomID, user id.UserID) string {
	t.Helper()
	var m struct {
		Membership string `json:"membership"`
		Via        string `json:"join_authorised_via_users_server"`
	}
	if err := c.StateEvent(context.Background(), room, event.StateMember, user.String(), &m); err != nil {
		t.Fatalf("member event of %s: %v", user, err)
	}
	if m.Membership != "join" {
		t.Fatalf("%s is %q in %s, not joined", user, m.Membership, room)
	}
	return m.Via
}

// setPowerLevels replaces a room's power levels.
func setPowerLevels(t *testing.T, c *mautrix.Client, room id.RoomID, pl map[string]any) {
	t.Helper()
	if _, err := c.SendStateEvent(context.Background(), room, event.StatePowerLevels, "", pl); err != nil {
		t.Fatalf("power levels: %v", err)
	}
}

// usersLevels reads the users map of a room's power levels as c sees them.
func usersLevels(t *testing.T, c *mautrix.Client, room id.RoomID) map[string]int {
	t.Helper()
	var pl struct {
		Users map[string]int `json:"users"`
	}
	if err := c.StateEvent(context.Background(), room, event.StatePowerLevels, "", &pl); err != nil {
		t.Logf("power levels: %v", err)
	}
	return pl.Users
}

// A resident server that cannot authorise a restricted join answers make_join with 400 and a
// reason (no member who may invite: M_UNABLE_TO_GRANT_JOIN; not in the allowed room any more:
// M_UNABLE_TO_AUTHORISE_JOIN), and the joining server goes on to the next server it was given.
// Only the servers the client names are tried: the room ID's server is no fallback.
func TestFederationRestrictedJoinFailOver(t *testing.T) {
	ca := testserver.NewCA(t)
	a := testserver.Start(t, testserver.Federated(t, ca))
	b := testserver.Start(t, testserver.Federated(t, ca))
	c := testserver.Start(t, testserver.Federated(t, ca))
	alice, bob, carol := a.Register(t, "alice", false), b.Register(t, "bob", false), c.Register(t, "carol", false)
	allowed, room := restrictedRoom(t, alice, a.ServerName)
	setPowerLevels(t, alice, room, map[string]any{"invite": 100, "users": map[string]any{alice.UserID.String(): 100}})

	for _, r := range []id.RoomID{allowed, room} {
		if err := joinVia(bob, r, a.ServerName); err != nil {
			t.Fatalf("bob joins %s: %v", r, err)
		}
	}
	if err := joinVia(carol, allowed, a.ServerName); err != nil {
		t.Fatalf("carol joins the allowed room: %v", err)
	}
	waitFor(t, "b to see carol in the allowed room", func() bool { return members(t, bob, allowed)[carol.UserID.String()] == "join" })

	wantErr(t, "join through a server without inviters", joinVia(carol, room, b.ServerName), http.StatusBadRequest, "M_UNABLE_TO_GRANT_JOIN")
	if err := joinVia(carol, room, b.ServerName, a.ServerName); err != nil {
		t.Fatalf("join failing over to a: %v", err)
	}
	waitFor(t, "b to see carol join", func() bool { return members(t, bob, room)[carol.UserID.String()] == "join" })
	if via := authorisedVia(t, bob, room, carol.UserID); via != alice.UserID.String() {
		t.Fatalf("carol's join authorised by %q, want %s", via, alice.UserID)
	}

	// bob may now invite, but b leaves the allowed room: its view of carol's membership there
	// is stale, so b can no longer vouch for her.
	setPowerLevels(t, alice, room, map[string]any{"invite": 100, "users": map[string]any{alice.UserID.String(): 100, bob.UserID.String(): 100}})
	waitFor(t, "b to see bob's power", func() bool { return usersLevels(t, bob, room)[bob.UserID.String()] == 100 })
	if _, err := carol.LeaveRoom(context.Background(), room); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "b to see carol leave", func() bool { return members(t, bob, room)[carol.UserID.String()] == "leave" })
	if _, err := bob.LeaveRoom(context.Background(), allowed); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "join through a server outside the allowed room", joinVia(carol, room, b.ServerName), http.StatusBadRequest, "M_UNABLE_TO_AUTHORISE_JOIN")
	if err := joinVia(carol, room, b.ServerName, a.ServerName); err != nil {
		t.Fatalf("second join failing over to a: %v", err)
	}
	waitFor(t, "b to see carol rejoin", func() bool { return members(t, bob, room)[carol.UserID.String()] == "join" })
	if via := authorisedVia(t, bob, room, carol.UserID); via != alice.UserID.String() {
		t.Fatalf("carol's second join authorised by %q, want %s", via, alice.UserID)
	}
}

// A server in a restricted room whose own members may not invite joins a local user through a
// server of the room whose members may (a remote join into a room it is already in), and joins
// locally again once its own member gains that power. A public room's default power levels keep
// invites to moderators.
func TestFederationRestrictedJoinLocalUser(t *testing.T) {
	a, b, _ := fedPair(t)
	ctx := context.Background()
	charlie := b.Register(t, "charlie", false)
	allowed, room := restrictedRoom(t, charlie, b.ServerName)
	alice, bob, dave := a.Register(t, "alice", false), a.Register(t, "bob", false), a.Register(t, "dave", false)
	if _, err := charlie.InviteUser(ctx, room, &mautrix.ReqInviteUser{UserID: alice.UserID}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "alice's invite", func() bool { return joinVia(alice, room, b.ServerName) == nil })
	_, err := alice.InviteUser(ctx, room, &mautrix.ReqInviteUser{UserID: dave.UserID})
	wantErr(t, "invite by a member without invite power", err, http.StatusForbidden, "M_FORBIDDEN")

	// a is in neither the allowed room nor has it an inviter: b decides, and refuses.
	wantErr(t, "join without the allowed room", joinVia(bob, room, a.ServerName), http.StatusForbidden, "M_FORBIDDEN")
	if err := joinVia(bob, allowed, b.ServerName); err != nil {
		t.Fatalf("bob joins the allowed room: %v", err)
	}
	if err := joinVia(bob, room, a.ServerName); err != nil {
		t.Fatalf("join authorised through b: %v", err)
	}
	if via := authorisedVia(t, bob, room, bob.UserID); via != charlie.UserID.String() {
		t.Fatalf("bob's join authorised by %q, want %s", via, charlie.UserID)
	}
	waitFor(t, "b to see bob join", func() bool { return members(t, charlie, room)[bob.UserID.String()] == "join" })
	if _, err := bob.SendText(ctx, room, "hello from a"); err != nil {
		t.Fatalf("bob sends after the join: %v", err)
	}
	waitFor(t, "b to get bob's message", func() bool { return contains(bodies(t, charlie, room), "hello from a") })

	// Everyone may invite now, and b leaves: a authorises the next join itself.
	setPowerLevels(t, charlie, room, map[string]any{"invite": 0, "users": map[string]any{charlie.UserID.String(): 100}})
	if _, err := charlie.LeaveRoom(ctx, room); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a to see charlie leave", func() bool { return members(t, alice, room)[charlie.UserID.String()] == "leave" })
	if _, err := bob.LeaveRoom(ctx, room); err != nil {
		t.Fatal(err)
	}
	if err := joinVia(bob, room, a.ServerName); err != nil {
		t.Fatalf("local rejoin: %v", err)
	}
	if via := authorisedVia(t, bob, room, bob.UserID); !strings.HasSuffix(via, ":"+a.ServerName) {
		t.Fatalf("bob's rejoin authorised by %q, want a user of %s", via, a.ServerName)
	}
}
