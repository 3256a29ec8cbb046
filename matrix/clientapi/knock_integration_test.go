package clientapi_test

import (
	"net/http"
	"testing"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/appliance/testserver"
)

// Knocking (POST /knock/{roomIdOrAlias}, the knock section of /sync) and restricted joins
// (join_authorised_via_users_server).

func knockPath(roomOrAlias string) string {
	return "/_matrix/client/v3/knock/" + cs3Esc(roomOrAlias)
}

// syncRaw is an initial /sync as a generic object.
func syncRaw(t *testing.T, s *testserver.Server, cli *mautrix.Client) map[string]any {
	t.Helper()
	return cs3Do(t, s, http.MethodGet, "/_matrix/client/v3/sync?timeout=0", cli.AccessToken, nil).ok(t)
}

// syncSection returns rooms.<section>.<roomID> of a sync body, or nil.
func syncSection(body map[string]any, section string, roomID id.RoomID) map[string]any {
	rooms, _ := body["rooms"].(map[string]any)
	sec, _ := rooms[section].(map[string]any)
	r, _ := sec[roomID.String()].(map[string]any)
	return r
}

func knockRoomWith(t *testing.T, s *testserver.Server, alice *mautrix.Client, version, rule string, allow []id.RoomID) id.RoomID {
	t.Helper()
	jr := map[string]any{"join_rule": rule}
	if allow != nil {
		var a []map[string]any
		for _, r := range allow {
			a = append(a, map[string]any{"type": "m.room_membership", "room_id": r})
		}
		jr["allow"] = a
	}
	body := map[string]any{"preset": "private_chat", "initial_state": []map[string]any{{"type": "m.room.join_rules", "state_key": "", "content": jr}}}
	if version != "" {
		body["room_version"] = version
	}
	return cs3CreateRoom(t, s, alice, body)
}

func TestKnockInviteAndJoin(t *testing.T) {
	for _, version := range []string{"7", "11", "12"} {
		t.Run("v"+version, func(t *testing.T) {
			s := testserver.Start(t)
			alice := s.Register(t, "alice", false)
			bob := s.Register(t, "bob", false)
			room := knockRoomWith(t, s, alice, version, "knock", nil)

			resp := cs3R(bob.KnockRoom(cs3Ctx, room.String(), &mautrix.ReqKnockRoom{Reason: "let me in"})).must(t)
			if resp.RoomID != room {
				t.Fatalf("knock answered room %s", resp.RoomID)
			}
			// The room sees the knock.
			m := cs3State(t, alice, room, "m.room.member", bob.UserID.String())
			if m["membership"] != "knock" || m["reason"] != "let me in" {
				t.Fatalf("knock event content %v", m)
			}
			members := cs3Do(t, s, http.MethodGet, "/_matrix/client/v3/rooms/"+cs3Esc(room.String())+"/members?membership=knock", alice.AccessToken, nil).ok(t)
			if chunk := members["chunk"].([]any); len(chunk) != 1 {
				t.Fatalf("knocking members %v", chunk)
			}
			// The knocker's sync has the room under knock, with knock_state.
			body := syncRaw(t, s, bob)
			kr := syncSection(body, "knock", room)
			if kr == nil {
				t.Fatalf("room missing from rooms.knock: %v", body["rooms"])
			}
			ks, _ := kr["knock_state"].(map[string]any)
			evs, _ := ks["events"].([]any)
			var sawKnock, sawJoinRules bool
			for _, e := range evs {
				ev := e.(map[string]any)
				c := ev["content"].(map[string]any)
				switch ev["type"] {
				case "m.room.member":
					sawKnock = ev["state_key"] == bob.UserID.String() && c["membership"] == "knock"
				case "m.room.join_rules":
					sawJoinRules = c["join_rule"] == "knock"
				}
			}
			if !sawKnock || !sawJoinRules {
				t.Fatalf("knock_state lacks the knock or the join rules: %v", kr)
			}
			if syncSection(body, "invite", room) != nil || syncSection(body, "join", room) != nil {
				t.Fatalf("knocked room also listed elsewhere: %v", body["rooms"])
			}
			// mautrix reads the same section.
			typed := cs3R(bob.SyncRequest(cs3Ctx, 0, "", "", false, "")).must(t)
			if _, ok := typed.Rooms.Knock[room]; !ok {
				t.Fatalf("mautrix sees no knocked room")
			}

			// Accepted: invited, then joined.
			cs3R(alice.InviteUser(cs3Ctx, room, &mautrix.ReqInviteUser{UserID: bob.UserID})).must(t)
			body = syncRaw(t, s, bob)
			if syncSection(body, "invite", room) == nil || syncSection(body, "knock", room) != nil {
				t.Fatalf("after the invite: %v", body["rooms"])
			}
			cs3R(bob.JoinRoomByID(cs3Ctx, room)).must(t)
			if m := cs3State(t, alice, room, "m.room.member", bob.UserID.String()); m["membership"] != "join" {
				t.Fatalf("bob's membership %v", m)
			}
		})
	}
}

func TestKnockRefusedAndWithdrawn(t *testing.T) {
	s := testserver.Start(t)
	alice := s.Register(t, "alice", false)
	bob := s.Register(t, "bob", false)
	carol := s.Register(t, "carol", false)
	room := knockRoomWith(t, s, alice, "", "knock", nil)

	// Refused: the knock is kicked; the knocker sees the room as left.
	cs3R(bob.KnockRoom(cs3Ctx, room.String(), nil)).must(t)
	before := syncRaw(t, s, bob)["next_batch"].(string)
	cs3R(alice.KickUser(cs3Ctx, room, &mautrix.ReqKickUser{UserID: bob.UserID, Reason: "no"})).must(t)
	if m := cs3State(t, alice, room, "m.room.member", bob.UserID.String()); m["membership"] != "leave" {
		t.Fatalf("after refusal: %v", m)
	}
	inc := cs3Do(t, s, http.MethodGet, "/_matrix/client/v3/sync?timeout=0&since="+before, bob.AccessToken, nil).ok(t)
	if syncSection(inc, "leave", room) == nil {
		t.Fatalf("refused knock not in rooms.leave: %v", inc["rooms"])
	}
	// Knocking again after a refusal is allowed.
	cs3R(bob.KnockRoom(cs3Ctx, room.String(), nil)).must(t)

	// Withdrawn: the knocker leaves.
	cs3R(carol.KnockRoom(cs3Ctx, room.String(), nil)).must(t)
	cs3R(carol.LeaveRoom(cs3Ctx, room)).must(t)
	if m := cs3State(t, alice, room, "m.room.member", carol.UserID.String()); m["membership"] != "leave" {
		t.Fatalf("after withdrawal: %v", m)
	}
}

func TestKnockErrors(t *testing.T) {
	s := testserver.Start(t)
	alice := s.Register(t, "alice", false)
	bob := s.Register(t, "bob", false)
	knock := knockRoomWith(t, s, alice, "", "knock", nil)
	invite := cs3CreateRoom(t, s, alice, map[string]any{"preset": "private_chat"})
	public := cs3CreateRoom(t, s, alice, map[string]any{"preset": "public_chat", "room_alias_name": "open"})
	banned := knockRoomWith(t, s, alice, "", "knock", nil)
	cs3R(alice.BanUser(cs3Ctx, banned, &mautrix.ReqBanUser{UserID: bob.UserID})).must(t)
	cs3R(alice.InviteUser(cs3Ctx, knock, &mautrix.ReqInviteUser{UserID: bob.UserID})).must(t)
	tooOld := knockRoomWith(t, s, alice, "6", "knock", nil) // knocking arrived in v7

	for _, tc := range []struct {
		name   string
		token  string
		target string
		body   any
		status int
		code   string
	}{
		{"invite-only room", bob.AccessToken, invite.String(), nil, 403, "M_FORBIDDEN"},
		{"public room", bob.AccessToken, public.String(), nil, 403, "M_FORBIDDEN"},
		{"public room by alias", bob.AccessToken, "#open:" + s.ServerName, nil, 403, "M_FORBIDDEN"},
		{"already joined", alice.AccessToken, knock.String(), nil, 403, "M_FORBIDDEN"},
		{"already invited", bob.AccessToken, knock.String(), nil, 403, "M_FORBIDDEN"},
		{"banned", bob.AccessToken, banned.String(), nil, 403, "M_FORBIDDEN"},
		{"room version without knocking", bob.AccessToken, tooOld.String(), nil, 403, "M_FORBIDDEN"},
		{"unknown room", bob.AccessToken, "!nowhere:" + s.ServerName, nil, 404, "M_NOT_FOUND"},
		{"unknown alias", bob.AccessToken, "#nowhere:" + s.ServerName, nil, 404, "M_NOT_FOUND"},
		{"neither ID nor alias", bob.AccessToken, "nowhere", nil, 400, "M_INVALID_PARAM"},
		{"reason not a string", bob.AccessToken, knock.String(), map[string]any{"reason": 5}, 400, "M_BAD_JSON"},
		{"no token", "", knock.String(), nil, 401, "M_MISSING_TOKEN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cs3Do(t, s, http.MethodPost, knockPath(tc.target), tc.token, tc.body).want(t, tc.status, tc.code)
		})
	}
}

func TestRestrictedJoins(t *testing.T) {
	s := testserver.Start(t)
	alice := s.Register(t, "alice", false)
	bob := s.Register(t, "bob", false)
	carol := s.Register(t, "carol", false)
	dave := s.Register(t, "dave", false)
	space := cs3CreateRoom(t, s, alice, map[string]any{"preset": "public_chat", "creation_content": map[string]any{"type": "m.space"}})
	cs3R(bob.JoinRoomByID(cs3Ctx, space)).must(t)

	for _, version := range []string{"10", "11", "12"} {
		t.Run("restricted v"+version, func(t *testing.T) {
			room := knockRoomWith(t, s, alice, version, "restricted", []id.RoomID{space})
			// A member of the allowed room joins, authorised by a local member who may invite.
			cs3R(bob.JoinRoomByID(cs3Ctx, room)).must(t)
			m := cs3State(t, alice, room, "m.room.member", bob.UserID.String())
			if m["membership"] != "join" || m["join_authorised_via_users_server"] != alice.UserID.String() {
				t.Fatalf("bob's join %v", m)
			}
			// Someone outside the allowed room may not.
			_, err := carol.JoinRoomByID(cs3Ctx, room)
			cs3WantErr(t, err, http.StatusForbidden, "M_FORBIDDEN")
			// An invite lets them in without an authoriser.
			cs3R(alice.InviteUser(cs3Ctx, room, &mautrix.ReqInviteUser{UserID: carol.UserID})).must(t)
			cs3R(carol.JoinRoomByID(cs3Ctx, room)).must(t)
			if m := cs3State(t, alice, room, "m.room.member", carol.UserID.String()); m["membership"] != "join" || m["join_authorised_via_users_server"] != nil {
				t.Fatalf("carol's join %v", m)
			}
			// Knocking is not allowed by a restricted rule.
			_, err = dave.KnockRoom(cs3Ctx, room.String(), nil)
			cs3WantErr(t, err, http.StatusForbidden, "M_FORBIDDEN")
			// A profile change of a joined member needs no authoriser either.
			cs3R(bob.JoinRoomByID(cs3Ctx, room)).must(t)
		})
	}

	t.Run("knock_restricted", func(t *testing.T) {
		room := knockRoomWith(t, s, alice, "", "knock_restricted", []id.RoomID{space})
		cs3R(bob.JoinRoomByID(cs3Ctx, room)).must(t)
		if m := cs3State(t, alice, room, "m.room.member", bob.UserID.String()); m["join_authorised_via_users_server"] != alice.UserID.String() {
			t.Fatalf("bob's join %v", m)
		}
		_, err := dave.JoinRoomByID(cs3Ctx, room)
		cs3WantErr(t, err, http.StatusForbidden, "M_FORBIDDEN")
		cs3R(dave.KnockRoom(cs3Ctx, room.String(), &mautrix.ReqKnockRoom{Reason: "hi"})).must(t)
		if m := cs3State(t, alice, room, "m.room.member", dave.UserID.String()); m["membership"] != "knock" {
			t.Fatalf("dave's knock %v", m)
		}
	})

	t.Run("no local member may invite", func(t *testing.T) {
		room := knockRoomWith(t, s, alice, "11", "restricted", []id.RoomID{space})
		pl := cs3State(t, alice, room, "m.room.power_levels", "")
		pl["invite"] = 100 // and alice steps down to 90: nobody may invite
		pl["users"].(map[string]any)[alice.UserID.String()] = 90
		cs3SetState(t, alice, room, "m.room.power_levels", "", pl)
		_, err := bob.JoinRoomByID(cs3Ctx, room)
		cs3WantErr(t, err, http.StatusForbidden, "M_FORBIDDEN")
	})
}
