package invitefilter_test

import (
	"context"
	"net/http"
	"net/url"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/appliance/testserver"
	"github.com/hearth-home/hearth/matrix/invitefilter"
)

// Invite permission end to end on real appliances: the client endpoints that make invites,
// federation /invite between two servers, and /sync (and sliding sync) hiding invites.

const v3 = "/_matrix/client/v3"

func setConfig(t *testing.T, c *mautrix.Client, typ string, content map[string]any) {
	t.Helper()
	if err := c.SetAccountData(context.Background(), typ, content); err != nil {
		t.Fatalf("set %s: %v", typ, err)
	}
}

func newRoom(t *testing.T, c *mautrix.Client) id.RoomID {
	t.Helper()
	r, err := c.CreateRoom(context.Background(), &mautrix.ReqCreateRoom{Preset: "private_chat"})
	if err != nil {
		t.Fatalf("create room: %v", err)
	}
	return r.RoomID
}

// invite posts /invite and returns the status and errcode.
func invite(t *testing.T, s *testserver.Server, c *mautrix.Client, room id.RoomID, who id.UserID) (int, string) {
	t.Helper()
	st, body := s.Raw(t, http.MethodPost, v3+"/rooms/"+url.PathEscape(room.String())+"/invite", c.AccessToken, `{"user_id":"`+who.String()+`"}`)
	code, _ := body["errcode"].(string)
	return st, code
}

// syncInvites is the rooms.invite object of an initial /sync, and whether the key is present.
func syncInvites(t *testing.T, s *testserver.Server, c *mautrix.Client) (map[string]any, bool) {
	t.Helper()
	st, body := s.Raw(t, http.MethodGet, v3+"/sync", c.AccessToken, "")
	if st != http.StatusOK {
		t.Fatalf("sync: %d %v", st, body)
	}
	rooms, _ := body["rooms"].(map[string]any)
	inv, ok := rooms["invite"].(map[string]any)
	_, present := rooms["invite"]
	if present && !ok {
		t.Fatalf("rooms.invite is not an object: %v", rooms["invite"])
	}
	return inv, present
}

func wantNoInvites(t *testing.T, s *testserver.Server, c *mautrix.Client) {
	t.Helper()
	if inv, present := syncInvites(t, s, c); present {
		t.Fatalf("rooms.invite present in sync of %s: %v", c.UserID, inv)
	}
}

// wantInvite waits (up to 10 s: a remote invite may reach the invitee's stream a moment after
// the inviter's answer) for the invite to show in an initial /sync.
func wantInvite(t *testing.T, s *testserver.Server, c *mautrix.Client, room id.RoomID) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		inv, _ := syncInvites(t, s, c)
		if _, ok := inv[room.String()]; ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("invite to %s missing from the sync of %s: %v", room, c.UserID, inv)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// slidingInvites lists the rooms of a sliding sync (MSC4186) list of invites.
func slidingInvites(t *testing.T, s *testserver.Server, c *mautrix.Client) map[string]any {
	t.Helper()
	st, body := s.Raw(t, http.MethodPost, "/_matrix/client/unstable/org.matrix.simplified_msc3575/sync", c.AccessToken,
		`{"lists":{"invites":{"ranges":[[0,20]],"timeline_limit":1,"filters":{"is_invite":true}}}}`)
	if st != http.StatusOK {
		t.Fatalf("sliding sync: %d %v", st, body)
	}
	rooms, _ := body["rooms"].(map[string]any)
	return rooms
}

func membership(t *testing.T, c *mautrix.Client, room id.RoomID, user id.UserID) string {
	t.Helper()
	resp, err := c.Members(context.Background(), room)
	if err != nil {
		t.Fatalf("members: %v", err)
	}
	for _, ev := range resp.Chunk {
		if ev.GetStateKey() == user.String() {
			return string(ev.Content.AsMember().Membership)
		}
	}
	return ""
}

func TestInvitePermissionBlockAllLocal(t *testing.T) {
	s := testserver.Start(t)
	alice := s.Register(t, "", false)
	bob := s.Register(t, "", false)
	carol := s.Register(t, "", false)

	// An invite stored before the block: shown now, hidden once blocked, shown again after.
	early := newRoom(t, bob)
	if st, code := invite(t, s, bob, early, alice.UserID); st != http.StatusOK {
		t.Fatalf("invite before blocking: %d %s", st, code)
	}
	wantInvite(t, s, alice, early)

	setConfig(t, alice, invitefilter.StableType, map[string]any{"default_action": "block"})
	wantNoInvites(t, s, alice)
	if rooms := slidingInvites(t, s, alice); len(rooms) != 0 {
		t.Fatalf("sliding sync shows blocked invites: %v", rooms)
	}

	// POST /invite.
	room := newRoom(t, bob)
	if st, code := invite(t, s, bob, room, alice.UserID); st != http.StatusForbidden || code != invitefilter.ErrCode {
		t.Fatalf("blocked invite: %d %s, want 403 %s", st, code, invitefilter.ErrCode)
	}
	// PUT state m.room.member with membership invite.
	st, body := s.Raw(t, http.MethodPut, v3+"/rooms/"+url.PathEscape(room.String())+"/state/m.room.member/"+url.PathEscape(alice.UserID.String()), bob.AccessToken, `{"membership":"invite"}`)
	if st != http.StatusForbidden || body["errcode"] != invitefilter.ErrCode {
		t.Fatalf("blocked invite by state PUT: %d %v", st, body)
	}
	if m := membership(t, bob, room, alice.UserID); m != "" {
		t.Fatalf("alice's membership after refused invites = %q", m)
	}
	// Other users are unaffected.
	if st, code := invite(t, s, bob, room, carol.UserID); st != http.StatusOK {
		t.Fatalf("invite of carol: %d %s", st, code)
	}

	// createRoom with alice and carol invited: the room is made, carol invited, alice not,
	// and the answer is 403 M_INVITE_BLOCKED naming the room.
	st, body = s.Raw(t, http.MethodPost, v3+"/createRoom", bob.AccessToken, `{"preset":"private_chat","invite":["`+alice.UserID.String()+`","`+carol.UserID.String()+`"]}`)
	made, _ := body["room_id"].(string)
	if st != http.StatusForbidden || body["errcode"] != invitefilter.ErrCode || made == "" {
		t.Fatalf("createRoom with a blocked invitee: %d %v", st, body)
	}
	if m := membership(t, bob, id.RoomID(made), carol.UserID); m != "invite" {
		t.Fatalf("carol's membership in the created room = %q, want invite", m)
	}
	if m := membership(t, bob, id.RoomID(made), alice.UserID); m != "" {
		t.Fatalf("alice's membership in the created room = %q, want none", m)
	}
	if m := membership(t, bob, id.RoomID(made), bob.UserID); m != "join" {
		t.Fatalf("creator's membership = %q", m)
	}
	wantNoInvites(t, s, alice)

	// Lifting the block (the event without default_action) shows the early invite again and
	// lets new invites through.
	setConfig(t, alice, invitefilter.StableType, map[string]any{})
	wantInvite(t, s, alice, early)
	if st, code := invite(t, s, bob, room, alice.UserID); st != http.StatusOK {
		t.Fatalf("invite after unblocking: %d %s", st, code)
	}
	wantInvite(t, s, alice, room)
	if _, err := alice.JoinRoomByID(context.Background(), room); err != nil {
		t.Fatalf("join after unblocking: %v", err)
	}
}

func TestInvitePermissionMSC4155Local(t *testing.T) {
	s := testserver.Start(t)
	alice := s.Register(t, "", false)
	bob := s.Register(t, "", false)
	eve := s.Register(t, "", false)
	setConfig(t, alice, invitefilter.UnstableType, map[string]any{
		"ignored_users": []string{bob.UserID.String()},
		"blocked_users": []string{"@user*"}, // every generated user, bob and eve included
		"allowed_users": nil,
	})
	// Ignored: accepted (200, the membership exists), never shown.
	r1 := newRoom(t, bob)
	if st, code := invite(t, s, bob, r1, alice.UserID); st != http.StatusOK {
		t.Fatalf("ignored invite: %d %s, want 200", st, code)
	}
	if m := membership(t, bob, r1, alice.UserID); m != "invite" {
		t.Fatalf("ignored invite not stored: %q", m)
	}
	// Blocked by the glob.
	r2 := newRoom(t, eve)
	if st, code := invite(t, s, eve, r2, alice.UserID); st != http.StatusForbidden || code != invitefilter.ErrCode {
		t.Fatalf("glob-blocked invite: %d %s", st, code)
	}
	wantNoInvites(t, s, alice)
	if rooms := slidingInvites(t, s, alice); len(rooms) != 0 {
		t.Fatalf("sliding sync shows an ignored invite: %v", rooms)
	}
	// Allowed beats both.
	setConfig(t, alice, invitefilter.UnstableType, map[string]any{
		"ignored_users": []string{bob.UserID.String()},
		"blocked_users": []string{"@user*"},
		"allowed_users": []string{bob.UserID.String(), eve.UserID.String()},
	})
	wantInvite(t, s, alice, r1) // the ignored invite was stored all along
	if st, code := invite(t, s, eve, r2, alice.UserID); st != http.StatusOK {
		t.Fatalf("allowed invite: %d %s", st, code)
	}
	wantInvite(t, s, alice, r2)
}

func TestInvitePermissionFederation(t *testing.T) {
	ca := testserver.NewCA(t)
	a := testserver.Start(t, testserver.Federated(t, ca))
	b := testserver.Start(t, testserver.Federated(t, ca))
	bob := b.Register(t, "", false)

	// Blocked by server name (both servers are localhost:PORT, so the port must be named).
	alice := a.Register(t, "", false)
	setConfig(t, alice, invitefilter.UnstableType, map[string]any{"blocked_servers": []string{b.Config.ServerName}})
	room := newRoom(t, bob)
	if st, code := invite(t, b, bob, room, alice.UserID); st != http.StatusForbidden || code != invitefilter.ErrCode {
		t.Fatalf("invite refused by the invitee's server: %d %s, want 403 %s", st, code, invitefilter.ErrCode)
	}
	if m := membership(t, bob, room, alice.UserID); m != "" {
		t.Fatalf("refused remote invite left membership %q", m)
	}
	wantNoInvites(t, a, alice)

	// The stable block refuses over federation too.
	dana := a.Register(t, "", false)
	setConfig(t, dana, invitefilter.StableType, map[string]any{"default_action": "block"})
	if st, code := invite(t, b, bob, room, dana.UserID); st != http.StatusForbidden || code != invitefilter.ErrCode {
		t.Fatalf("stable block over federation: %d %s", st, code)
	}

	// Ignored by user: bob's invite succeeds, the invitee's server stores it but /sync hides it
	// until the rule goes.
	carol := a.Register(t, "", false)
	setConfig(t, carol, invitefilter.UnstableType, map[string]any{"ignored_users": []string{bob.UserID.String()}})
	if st, code := invite(t, b, bob, room, carol.UserID); st != http.StatusOK {
		t.Fatalf("ignored remote invite: %d %s, want 200", st, code)
	}
	// frank, without rules, is invited after carol: once his invite shows, carol's (stored
	// earlier on the same server) is within the sync's reach too, so its absence means hidden.
	frank := a.Register(t, "", false)
	if st, code := invite(t, b, bob, room, frank.UserID); st != http.StatusOK {
		t.Fatalf("control invite: %d %s", st, code)
	}
	wantInvite(t, a, frank, room)
	wantNoInvites(t, a, carol)
	setConfig(t, carol, invitefilter.UnstableType, map[string]any{})
	wantInvite(t, a, carol, room)
	if _, err := carol.JoinRoom(context.Background(), room.String(), &mautrix.ReqJoinRoom{Via: []string{b.ServerName}}); err != nil {
		t.Fatalf("join after un-ignoring: %v", err)
	}

	// An allowed user on a blocked server gets through.
	erin := a.Register(t, "", false)
	setConfig(t, erin, invitefilter.UnstableType, map[string]any{
		"allowed_users":   []string{bob.UserID.String()},
		"blocked_servers": []string{"localhost*"},
	})
	if st, code := invite(t, b, bob, room, erin.UserID); st != http.StatusOK {
		t.Fatalf("allowed user on a blocked server: %d %s", st, code)
	}
	wantInvite(t, a, erin, room)
}
