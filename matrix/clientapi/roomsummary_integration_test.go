package clientapi_test

import (
	"net/http"
	"testing"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/appliance/testserver"
)

// The room summary: GET /_matrix/client/v1/room_summary/{roomIdOrAlias} and MSC3266's
// unstable paths.

func summaryPath(roomOrAlias string) string {
	return "/_matrix/client/v1/room_summary/" + cs3Esc(roomOrAlias)
}

func TestRoomSummary(t *testing.T) {
	s := testserver.Start(t)
	alice := s.Register(t, "alice", false)
	bob := s.Register(t, "bob", false)
	carol := s.Register(t, "carol", false)

	public := cs3CreateRoom(t, s, alice, map[string]any{"preset": "public_chat", "room_alias_name": "lounge", "name": "Lounge", "topic": "Sofas",
		"creation_content": map[string]any{"type": "m.space"}, "room_version": "11"})
	cs3SetState(t, alice, public, "m.room.avatar", "", map[string]any{"url": "mxc://example.org/sofa"})
	cs3SetState(t, alice, public, "m.room.encryption", "", map[string]any{"algorithm": "m.megolm.v1.aes-sha2"})
	cs3R(bob.JoinRoomByID(cs3Ctx, public)).must(t)

	t.Run("public room without a token", func(t *testing.T) {
		for _, p := range []string{
			summaryPath(public.String()),
			summaryPath("#lounge:" + s.ServerName),
			"/_matrix/client/unstable/im.nheko.summary/summary/" + cs3Esc(public.String()),
			"/_matrix/client/unstable/im.nheko.summary/rooms/" + cs3Esc(public.String()) + "/summary",
		} {
			m := cs3Do(t, s, http.MethodGet, p, "", nil).ok(t)
			want := map[string]any{"room_id": public.String(), "name": "Lounge", "topic": "Sofas", "canonical_alias": "#lounge:" + s.ServerName,
				"avatar_url": "mxc://example.org/sofa", "num_joined_members": float64(2), "join_rule": "public", "world_readable": false,
				"guest_can_join": false, "room_type": "m.space", "room_version": "11", "encryption": "m.megolm.v1.aes-sha2"}
			for k, v := range want {
				if m[k] != v {
					t.Errorf("%s: %s = %v, want %v", p, k, m[k], v)
				}
			}
			if _, ok := m["membership"]; ok {
				t.Errorf("%s: unauthenticated answer has a membership: %v", p, m)
			}
		}
	})

	t.Run("membership of the caller", func(t *testing.T) {
		if m := cs3Do(t, s, http.MethodGet, summaryPath(public.String()), bob.AccessToken, nil).ok(t); m["membership"] != "join" {
			t.Errorf("bob's membership %v", m["membership"])
		}
		if m := cs3Do(t, s, http.MethodGet, summaryPath(public.String()), carol.AccessToken, nil).ok(t); m["membership"] != "leave" {
			t.Errorf("carol's membership %v", m["membership"])
		}
		sum := cs3R(bob.GetRoomSummary(cs3Ctx, public.String())).must(t)
		if sum.Name != "Lounge" || sum.Membership != "join" || sum.RoomType != "m.space" {
			t.Errorf("mautrix summary %+v", sum)
		}
	})

	private := cs3CreateRoom(t, s, alice, map[string]any{"preset": "private_chat", "name": "Secret"})
	cs3R(alice.InviteUser(cs3Ctx, private, &mautrix.ReqInviteUser{UserID: bob.UserID})).must(t)
	t.Run("private room", func(t *testing.T) {
		cs3Do(t, s, http.MethodGet, summaryPath(private.String()), "", nil).want(t, 404, "M_NOT_FOUND")
		cs3Do(t, s, http.MethodGet, summaryPath(private.String()), carol.AccessToken, nil).want(t, 404, "M_NOT_FOUND")
		if m := cs3Do(t, s, http.MethodGet, summaryPath(private.String()), bob.AccessToken, nil).ok(t); m["membership"] != "invite" || m["name"] != "Secret" || m["join_rule"] != "invite" {
			t.Errorf("invitee's summary %v", m)
		}
		if m := cs3Do(t, s, http.MethodGet, summaryPath(private.String()), alice.AccessToken, nil).ok(t); m["membership"] != "join" {
			t.Errorf("member's summary %v", m)
		}
	})

	t.Run("world-readable, knockable and restricted rooms", func(t *testing.T) {
		readable := cs3CreateRoom(t, s, alice, map[string]any{"preset": "private_chat",
			"initial_state": []map[string]any{{"type": "m.room.history_visibility", "state_key": "", "content": map[string]any{"history_visibility": "world_readable"}}}})
		if m := cs3Do(t, s, http.MethodGet, summaryPath(readable.String()), "", nil).ok(t); m["world_readable"] != true {
			t.Errorf("world-readable summary %v", m)
		}
		knock := knockRoomWith(t, s, alice, "", "knock", nil)
		if m := cs3Do(t, s, http.MethodGet, summaryPath(knock.String()), carol.AccessToken, nil).ok(t); m["join_rule"] != "knock" {
			t.Errorf("knock room summary %v", m)
		}
		restricted := knockRoomWith(t, s, alice, "", "restricted", []id.RoomID{public})
		m := cs3Do(t, s, http.MethodGet, summaryPath(restricted.String()), bob.AccessToken, nil).ok(t)
		if ids, _ := m["allowed_room_ids"].([]any); m["join_rule"] != "restricted" || len(ids) != 1 || ids[0] != public.String() {
			t.Errorf("restricted room summary for a member of the allowed room: %v", m)
		}
		cs3Do(t, s, http.MethodGet, summaryPath(restricted.String()), carol.AccessToken, nil).want(t, 404, "M_NOT_FOUND")
		cs3Do(t, s, http.MethodGet, summaryPath(restricted.String()), "", nil).want(t, 404, "M_NOT_FOUND")
	})

	for _, tc := range []struct {
		name   string
		token  string
		target string
		status int
		code   string
	}{
		{"unknown room", alice.AccessToken, "!nowhere:" + s.ServerName, 404, "M_NOT_FOUND"},
		{"unknown alias", alice.AccessToken, "#nowhere:" + s.ServerName, 404, "M_NOT_FOUND"},
		{"neither ID nor alias", alice.AccessToken, "nowhere", 400, "M_INVALID_PARAM"},
		{"bad token", "not-a-token", public.String(), 401, "M_UNKNOWN_TOKEN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cs3Do(t, s, http.MethodGet, summaryPath(tc.target), tc.token, nil).want(t, tc.status, tc.code)
		})
	}
}
