package clientapi_test

import (
	"net/http"
	"testing"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/appliance/testserver"
)

// Reporting content: POST /rooms/{roomId}/report/{eventId}, /rooms/{roomId}/report,
// /users/{userId}/report, and the admins' list of event reports.

func TestReportContent(t *testing.T) {
	s := testserver.Start(t)
	admin := s.Register(t, "admin", true)
	alice := s.Register(t, "alice", false)
	bob := s.Register(t, "bob", false)
	carol := s.Register(t, "carol", false)
	room := cs3CreateRoom(t, s, alice, map[string]any{"preset": "public_chat"})
	cs3R(bob.JoinRoomByID(cs3Ctx, room)).must(t)
	msg := cs3R(alice.SendMessageEvent(cs3Ctx, room, event.EventMessage, map[string]any{"msgtype": "m.text", "body": "rude"})).must(t).EventID
	other := cs3CreateRoom(t, s, carol, map[string]any{"preset": "public_chat"})

	// A member reports an event; the admins see it.
	if err := bob.ReportEvent(cs3Ctx, room, msg, "this makes me sad"); err != nil {
		t.Fatalf("report event: %v", err)
	}
	list := cs3Do(t, s, http.MethodGet, "/_synapse/admin/v1/event_reports", admin.AccessToken, nil).ok(t)
	reports, _ := list["event_reports"].([]any)
	if len(reports) != 1 || cs3Num(list, "total") != 1 {
		t.Fatalf("event reports %v", list)
	}
	r := reports[0].(map[string]any)
	if r["event_id"] != msg.String() || r["room_id"] != room.String() || r["user_id"] != bob.UserID.String() || r["sender"] != alice.UserID.String() || r["reason"] != "this makes me sad" {
		t.Fatalf("report %v", r)
	}
	cs3Do(t, s, http.MethodGet, "/_synapse/admin/v1/event_reports", bob.AccessToken, nil).want(t, 403, "M_FORBIDDEN")

	// Rooms and users may be reported by anyone.
	if err := carol.ReportRoom(cs3Ctx, room, "spam room"); err != nil {
		t.Fatalf("report room: %v", err)
	}
	if err := carol.ReportUser(cs3Ctx, alice.UserID, ""); err != nil {
		t.Fatalf("report user: %v", err)
	}
	// A report without a body field at all is accepted (reason may be blank).
	cs3Do(t, s, http.MethodPost, "/_matrix/client/v3/rooms/"+cs3Esc(room.String())+"/report", carol.AccessToken, map[string]any{}).ok(t)

	eventPath := func(r id.RoomID, e string) string {
		return "/_matrix/client/v3/rooms/" + cs3Esc(r.String()) + "/report/" + cs3Esc(e)
	}
	for _, tc := range []struct {
		name   string
		token  string
		path   string
		body   any
		status int
		code   string
	}{
		{"event in a room the reporter is not in", carol.AccessToken, eventPath(room, msg.String()), map[string]any{"reason": "x"}, 404, "M_NOT_FOUND"},
		{"unknown event", bob.AccessToken, eventPath(room, "$nope"), map[string]any{"reason": "x"}, 404, "M_NOT_FOUND"},
		{"event of another room", carol.AccessToken, eventPath(other, msg.String()), map[string]any{"reason": "x"}, 404, "M_NOT_FOUND"},
		{"not an event ID", bob.AccessToken, eventPath(room, "nope"), map[string]any{}, 400, "M_INVALID_PARAM"},
		{"reason not a string", bob.AccessToken, eventPath(room, msg.String()), map[string]any{"reason": 1}, 400, "M_BAD_JSON"},
		{"event report without a token", "", eventPath(room, msg.String()), map[string]any{}, 401, "M_MISSING_TOKEN"},
		{"unknown room", carol.AccessToken, "/_matrix/client/v3/rooms/" + cs3Esc("!nope:"+s.ServerName) + "/report", map[string]any{"reason": "x"}, 404, "M_NOT_FOUND"},
		{"unknown user", carol.AccessToken, "/_matrix/client/v3/users/" + cs3Esc("@nobody:"+s.ServerName) + "/report", map[string]any{"reason": "x"}, 404, "M_NOT_FOUND"},
		{"remote user", carol.AccessToken, "/_matrix/client/v3/users/" + cs3Esc("@someone:elsewhere.example") + "/report", map[string]any{"reason": "x"}, 404, "M_NOT_FOUND"},
		{"not a user ID", carol.AccessToken, "/_matrix/client/v3/users/nobody/report", map[string]any{"reason": "x"}, 400, "M_INVALID_PARAM"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cs3Do(t, s, http.MethodPost, tc.path, tc.token, tc.body).want(t, tc.status, tc.code)
		})
	}

	// Once bob has left, he may no longer report the room's events.
	cs3R(bob.LeaveRoom(cs3Ctx, room)).must(t)
	cs3Do(t, s, http.MethodPost, eventPath(room, msg.String()), bob.AccessToken, map[string]any{"reason": "again"}).want(t, 404, "M_NOT_FOUND")
	list = cs3Do(t, s, http.MethodGet, "/_synapse/admin/v1/event_reports", admin.AccessToken, nil).ok(t)
	if cs3Num(list, "total") != 1 {
		t.Fatalf("refused reports were stored: %v", list)
	}
}
