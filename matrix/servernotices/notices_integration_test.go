package servernotices_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/hearth-home/hearth/appliance/config"
	"github.com/hearth-home/hearth/appliance/testserver"
)

// End to end through a real appliance: the admin API, the notices room, the membership guard,
// /sync and the room tag.

const sendPath = "/_synapse/admin/v1/send_server_notice"

func enable(c *config.Config) {
	c.ServerNotices.SystemMXIDLocalpart = "notices"
	c.ServerNotices.SystemMXIDDisplayName = "House Notices"
	c.ServerNotices.RoomName = "Alerts"
	c.ServerNotices.RoomTopic = "Messages from the server"
}

func enc(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// want fails unless the answer has the status and (when code is set) the errcode.
func want(t *testing.T, what string, status int, body map[string]any, wantStatus int, code string) {
	t.Helper()
	if status != wantStatus || (code != "" && body["errcode"] != code) {
		t.Fatalf("%s: want %d %s, got %d %v", what, wantStatus, code, status, body)
	}
}

func notice(user, text string) map[string]any {
	return map[string]any{"user_id": user, "content": map[string]any{"msgtype": "m.text", "body": text}}
}

// send posts a notice as the admin and returns its event ID.
func send(t *testing.T, s *testserver.Server, tok string, body map[string]any, txnID string) string {
	t.Helper()
	method, path := http.MethodPost, sendPath
	if txnID != "" {
		method, path = http.MethodPut, sendPath+"/"+url.PathEscape(txnID)
	}
	st, b := s.Raw(t, method, path, tok, enc(t, body))
	want(t, "send notice", st, b, 200, "")
	ev, _ := b["event_id"].(string)
	if len(ev) < 2 || ev[0] != '$' {
		t.Fatalf("event_id %v", b)
	}
	return ev
}

// syncUntil long-polls /sync until ok accepts a response, and returns that response.
func syncUntil(t *testing.T, s *testserver.Server, tok string, ok func(map[string]any) bool) map[string]any {
	t.Helper()
	since := ""
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		q := url.Values{"timeout": {"1000"}}
		if since != "" {
			q.Set("since", since)
		}
		st, b := s.Raw(t, http.MethodGet, "/_matrix/client/v3/sync?"+q.Encode(), tok, "")
		want(t, "sync", st, b, 200, "")
		if ok(b) {
			return b
		}
		since, _ = b["next_batch"].(string)
	}
	t.Fatal("sync condition not met in time")
	return nil
}

func dig(v any, path ...string) any {
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[p]
	}
	return v
}

// invitedRoom waits for an invite from the system user and returns its room and stripped state.
func invitedRoom(t *testing.T, s *testserver.Server, tok, system string) (string, []any) {
	t.Helper()
	var room string
	var state []any
	syncUntil(t, s, tok, func(b map[string]any) bool {
		inv, _ := dig(b, "rooms", "invite").(map[string]any)
		for r, v := range inv {
			evs, _ := dig(v, "invite_state", "events").([]any)
			if len(evs) > 0 && dig(evs[0], "sender") == system {
				room, state = r, evs
				return true
			}
		}
		return false
	})
	return room, state
}

func strippedContent(state []any, typ, sk string) map[string]any {
	for _, e := range state {
		if dig(e, "type") == typ && dig(e, "state_key") == sk {
			c, _ := dig(e, "content").(map[string]any)
			return c
		}
	}
	return nil
}

func TestServerNotices(t *testing.T) {
	s := testserver.Start(t, enable)
	root := s.Register(t, "root", true)
	alice := s.Register(t, "alice", false)
	bob := s.Register(t, "bob", false)
	system := "@notices:" + s.ServerName
	aliceID := alice.UserID.String()
	tok := root.AccessToken

	// Only admins; bad bodies are 4xx with the right errcode.
	st, b := s.Raw(t, http.MethodPost, sendPath, alice.AccessToken, enc(t, notice(aliceID, "x")))
	want(t, "non-admin", st, b, 403, "M_FORBIDDEN")
	st, b = s.Raw(t, http.MethodPut, sendPath+"/t1", alice.AccessToken, enc(t, notice(aliceID, "x")))
	want(t, "non-admin PUT", st, b, 403, "M_FORBIDDEN")
	st, b = s.Raw(t, http.MethodPost, sendPath, "", enc(t, notice(aliceID, "x")))
	want(t, "anonymous", st, b, 401, "M_MISSING_TOKEN")
	for _, c := range []struct {
		what, body string
		status     int
		code       string
	}{
		{"not JSON", "{", 400, "M_NOT_JSON"},
		{"no user_id", `{"content":{"body":"x"}}`, 400, "M_MISSING_PARAM"},
		{"no content", enc(t, map[string]any{"user_id": aliceID}), 400, "M_MISSING_PARAM"},
		{"content not an object", enc(t, map[string]any{"user_id": aliceID, "content": "hi"}), 400, "M_BAD_JSON"},
		{"user_id not a string", `{"user_id":5,"content":{}}`, 400, "M_BAD_JSON"},
		{"bad user ID", enc(t, notice("alice", "x")), 400, "M_INVALID_PARAM"},
		{"remote user", enc(t, notice("@alice:elsewhere.example", "x")), 400, "M_INVALID_PARAM"},
		{"unknown user", enc(t, notice("@nobody:"+s.ServerName, "x")), 404, "M_NOT_FOUND"},
		{"the system user", enc(t, notice(system, "x")), 400, "M_INVALID_PARAM"},
		{"empty type", enc(t, map[string]any{"user_id": aliceID, "type": "", "content": map[string]any{}}), 400, "M_INVALID_PARAM"},
	} {
		st, b := s.Raw(t, http.MethodPost, sendPath, tok, c.body)
		want(t, c.what, st, b, c.status, c.code)
	}

	// The first notice makes the room and invites alice: the invite comes from the system user
	// with the configured room name and the system user's profile.
	first := send(t, s, tok, notice(aliceID, "the disk is nearly full"), "")
	room, state := invitedRoom(t, s, alice.AccessToken, system)
	if n := strippedContent(state, "m.room.name", ""); n["name"] != "Alerts" {
		t.Fatalf("room name in invite state: %v", state)
	}
	if c := strippedContent(state, "m.room.member", aliceID); c["membership"] != "invite" {
		t.Fatalf("invite in invite state: %v", state)
	}
	st, b = s.Raw(t, http.MethodGet, "/_matrix/client/v3/profile/"+url.PathEscape(system), alice.AccessToken, "")
	want(t, "system profile", st, b, 200, "")
	if b["displayname"] != "House Notices" {
		t.Fatalf("system profile %v", b)
	}

	// Restrictions: the invite cannot be rejected, nobody else gets in, the system user cannot
	// be invited anywhere.
	st, b = s.Raw(t, http.MethodPost, "/_matrix/client/v3/rooms/"+url.PathEscape(room)+"/leave", alice.AccessToken, "{}")
	want(t, "reject the invite", st, b, 403, "M_CANNOT_LEAVE_SERVER_NOTICE_ROOM")
	st, b = s.Raw(t, http.MethodPost, "/_matrix/client/v3/rooms/"+url.PathEscape(room)+"/join", bob.AccessToken, "{}")
	want(t, "bob joins", st, b, 403, "M_FORBIDDEN")
	own := map[string]any{}
	st, own = s.Raw(t, http.MethodPost, "/_matrix/client/v3/createRoom", alice.AccessToken, "{}")
	want(t, "create own room", st, own, 200, "")
	st, b = s.Raw(t, http.MethodPost, "/_matrix/client/v3/rooms/"+url.PathEscape(own["room_id"].(string))+"/invite", alice.AccessToken, enc(t, map[string]any{"user_id": system}))
	want(t, "invite the system user", st, b, 403, "M_FORBIDDEN")

	// Alice joins, reads the notice, finds the tag; she can neither speak nor invite.
	st, b = s.Raw(t, http.MethodPost, "/_matrix/client/v3/rooms/"+url.PathEscape(room)+"/join", alice.AccessToken, "{}")
	want(t, "alice joins", st, b, 200, "")
	syncUntil(t, s, alice.AccessToken, func(b map[string]any) bool {
		evs, _ := dig(b, "rooms", "join", room, "timeline", "events").([]any)
		for _, e := range evs {
			if dig(e, "event_id") == first && dig(e, "sender") == system && dig(e, "content", "body") == "the disk is nearly full" {
				return true
			}
		}
		return false
	})
	st, b = s.Raw(t, http.MethodGet, "/_matrix/client/v3/user/"+url.PathEscape(aliceID)+"/rooms/"+url.PathEscape(room)+"/tags", alice.AccessToken, "")
	want(t, "tags", st, b, 200, "")
	if dig(b, "tags", "m.server_notice") == nil {
		t.Fatalf("tags %v", b)
	}
	st, b = s.Raw(t, http.MethodPut, "/_matrix/client/v3/rooms/"+url.PathEscape(room)+"/send/m.room.message/m1", alice.AccessToken, `{"msgtype":"m.text","body":"hi"}`)
	want(t, "alice speaks", st, b, 403, "M_FORBIDDEN")
	st, b = s.Raw(t, http.MethodPost, "/_matrix/client/v3/rooms/"+url.PathEscape(room)+"/invite", alice.AccessToken, enc(t, map[string]any{"user_id": bob.UserID.String()}))
	want(t, "alice invites bob", st, b, 403, "M_FORBIDDEN")

	// Once joined she may leave; the next notice invites her back into the same room.
	st, b = s.Raw(t, http.MethodPost, "/_matrix/client/v3/rooms/"+url.PathEscape(room)+"/leave", alice.AccessToken, "{}")
	want(t, "leave after joining", st, b, 200, "")
	send(t, s, tok, notice(aliceID, "second"), "")
	if again, _ := invitedRoom(t, s, alice.AccessToken, system); again != room {
		t.Fatalf("second notice went to %s, want %s", again, room)
	}

	// The PUT form is idempotent per admin device and transaction ID.
	e1 := send(t, s, tok, notice(aliceID, "once"), "txn-1")
	e2 := send(t, s, tok, notice(aliceID, "once"), "txn-1")
	e3 := send(t, s, tok, notice(aliceID, "twice"), "txn-2")
	if e1 != e2 || e1 == e3 {
		t.Fatalf("transaction IDs: %s %s %s", e1, e2, e3)
	}

	// Bob's room is another room; after a restart both are found again (nothing in memory).
	bobFirst := send(t, s, tok, notice(bob.UserID.String(), "hello bob"), "")
	bobRoom, _ := invitedRoom(t, s, bob.AccessToken, system)
	if bobRoom == room {
		t.Fatal("bob's notices share alice's room")
	}
	s2 := s.Restart(t)
	send(t, s2, tok, notice(aliceID, "after restart"), "")
	send(t, s2, tok, notice(bob.UserID.String(), "after restart"), "")
	if e := send(t, s2, tok, notice(aliceID, "once"), "txn-1"); e != e1 {
		t.Fatalf("transaction after restart: %s, want %s", e, e1)
	}
	st, b = s2.Raw(t, http.MethodGet, "/_synapse/admin/v1/rooms", tok, "")
	want(t, "room list", st, b, 200, "")
	notices := 0
	for _, r := range b["rooms"].([]any) {
		if dig(r, "creator") == system {
			notices++
			if dig(r, "name") != "Alerts" || dig(r, "federatable") != false || dig(r, "join_rules") != "invite" {
				t.Fatalf("notices room %v", r)
			}
		}
	}
	if notices != 2 {
		t.Fatalf("%d notices rooms after restart, want 2: %v", notices, b["rooms"])
	}
	_ = bobFirst

	// Deactivating a user with a pending notices invite works: the server rejects it for them.
	st, b = s2.Raw(t, http.MethodPost, "/_synapse/admin/v1/deactivate/"+url.PathEscape(bob.UserID.String()), tok, "{}")
	want(t, "deactivate bob", st, b, 200, "")
}

func TestServerNoticesDisabled(t *testing.T) {
	s := testserver.Start(t)
	root := s.Register(t, "root", true)
	alice := s.Register(t, "alice", false)
	st, b := s.Raw(t, http.MethodPost, sendPath, root.AccessToken, enc(t, notice(alice.UserID.String(), "x")))
	want(t, "disabled", st, b, 400, "M_UNKNOWN")
	// With notices off there is no system user to protect: leaving and inviting are as usual.
	st, b = s.Raw(t, http.MethodPost, "/_matrix/client/v3/createRoom", alice.AccessToken, "{}")
	want(t, "create", st, b, 200, "")
}
