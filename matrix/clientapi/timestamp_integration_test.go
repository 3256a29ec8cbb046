package clientapi_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/appliance/testserver"
)

// GET /_matrix/client/v1/rooms/{roomId}/timestamp_to_event.

type tsEvent struct {
	id id.EventID
	ts int64
}

func sendTimed(t *testing.T, cli *mautrix.Client, room id.RoomID, body string) tsEvent {
	t.Helper()
	time.Sleep(5 * time.Millisecond) // distinct timestamps
	resp := cs3R(cli.SendMessageEvent(cs3Ctx, room, event.EventMessage, map[string]any{"msgtype": "m.text", "body": body})).must(t)
	ev := cs3R(cli.GetEvent(cs3Ctx, room, resp.EventID)).must(t)
	return tsEvent{resp.EventID, ev.Timestamp}
}

func tsPath(room id.RoomID, q string) string {
	return "/_matrix/client/v1/rooms/" + cs3Esc(room.String()) + "/timestamp_to_event" + q
}

func TestTimestampToEvent(t *testing.T) {
	s := testserver.Start(t)
	alice := s.Register(t, "alice", false)
	bob := s.Register(t, "bob", false)
	carol := s.Register(t, "carol", false)
	room := cs3CreateRoom(t, s, alice, map[string]any{"preset": "public_chat"})
	var evs []tsEvent
	for i := range 5 {
		evs = append(evs, sendTimed(t, alice, room, fmt.Sprint("m", i)))
	}
	lookup := func(ts int64, dir mautrix.Direction) *mautrix.RespTimestampToEvent {
		t.Helper()
		return cs3R(alice.TimestampToEvent(cs3Ctx, room, time.UnixMilli(ts), dir)).must(t)
	}
	for i, e := range evs {
		for _, dir := range []mautrix.Direction{mautrix.DirectionForward, mautrix.DirectionBackward} {
			if got := lookup(e.ts, dir); got.EventID != e.id || got.Timestamp.UnixMilli() != e.ts {
				t.Errorf("exact ts of m%d dir %c: got %s", i, dir, got.EventID)
			}
		}
	}
	// Between two events: forwards finds the later, backwards the earlier.
	if evs[2].ts+1 < evs[3].ts {
		if got := lookup(evs[2].ts+1, mautrix.DirectionForward); got.EventID != evs[3].id {
			t.Errorf("forwards from between m2 and m3: %s", got.EventID)
		}
		if got := lookup(evs[2].ts+1, mautrix.DirectionBackward); got.EventID != evs[2].id {
			t.Errorf("backwards from between m2 and m3: %s", got.EventID)
		}
	}
	// Before the room: backwards finds nothing, forwards its create event.
	cs3Do(t, s, http.MethodGet, tsPath(room, "?ts=1&dir=b"), alice.AccessToken, nil).want(t, 404, "M_NOT_FOUND")
	first := cs3Do(t, s, http.MethodGet, tsPath(room, "?ts=1&dir=f"), alice.AccessToken, nil).ok(t)
	create := stateEvent(t, s, alice, room, "m.room.create")
	if first["event_id"] != create["event_id"] {
		t.Errorf("forwards from the epoch: %v, want the create event %v", first, create["event_id"])
	}
	// After the last event: forwards finds nothing, backwards the last one.
	future := time.Now().Add(time.Hour).UnixMilli()
	cs3Do(t, s, http.MethodGet, tsPath(room, fmt.Sprintf("?ts=%d&dir=f", future)), alice.AccessToken, nil).want(t, 404, "M_NOT_FOUND")
	if got := lookup(future, mautrix.DirectionBackward); got.EventID != evs[4].id {
		t.Errorf("backwards from the future: %s", got.EventID)
	}
	// The unstable MSC3030 path answers too.
	cs3Do(t, s, http.MethodGet, "/_matrix/client/unstable/org.matrix.msc3030/rooms/"+cs3Esc(room.String())+fmt.Sprintf("/timestamp_to_event?ts=%d&dir=b", evs[1].ts), alice.AccessToken, nil).ok(t)

	// History the user may not see is skipped: bob joins a members-only room late.
	private := cs3CreateRoom(t, s, alice, map[string]any{"preset": "public_chat",
		"initial_state": []map[string]any{{"type": "m.room.history_visibility", "state_key": "", "content": map[string]any{"history_visibility": "joined"}}}})
	early := sendTimed(t, alice, private, "before bob")
	time.Sleep(5 * time.Millisecond)
	cs3R(bob.JoinRoomByID(cs3Ctx, private)).must(t)
	// (The room's first state events were sent under the default "shared" and stay visible.)
	if got := cs3Do(t, s, http.MethodGet, tsPath(private, fmt.Sprintf("?ts=%d&dir=b", early.ts)), bob.AccessToken, nil).ok(t); got["event_id"] == early.id.String() {
		t.Errorf("bob found an event from before he joined, backwards")
	}
	if got := cs3R(bob.TimestampToEvent(cs3Ctx, private, time.UnixMilli(early.ts), mautrix.DirectionForward)).must(t); got.EventID == early.id {
		t.Errorf("bob found an event from before he joined")
	}

	for _, tc := range []struct {
		name   string
		token  string
		path   string
		status int
		code   string
	}{
		{"missing ts", alice.AccessToken, tsPath(room, "?dir=f"), 400, "M_MISSING_PARAM"},
		{"ts not a number", alice.AccessToken, tsPath(room, "?ts=soon&dir=f"), 400, "M_INVALID_PARAM"},
		{"missing dir", alice.AccessToken, tsPath(room, "?ts=1"), 400, "M_MISSING_PARAM"},
		{"bad dir", alice.AccessToken, tsPath(room, "?ts=1&dir=x"), 400, "M_INVALID_PARAM"},
		{"not a member", carol.AccessToken, tsPath(private, "?ts=1&dir=f"), 403, "M_FORBIDDEN"},
		{"unknown room", alice.AccessToken, tsPath(id.RoomID("!nope:"+s.ServerName), "?ts=1&dir=f"), 403, "M_FORBIDDEN"},
		{"not a room ID", alice.AccessToken, "/_matrix/client/v1/rooms/nope/timestamp_to_event?ts=1&dir=f", 400, "M_INVALID_PARAM"},
		{"no token", "", tsPath(room, "?ts=1&dir=f"), 401, "M_MISSING_TOKEN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cs3Do(t, s, http.MethodGet, tc.path, tc.token, nil).want(t, tc.status, tc.code)
		})
	}

	// A world-readable room answers non-members.
	open := cs3CreateRoom(t, s, alice, map[string]any{"preset": "public_chat",
		"initial_state": []map[string]any{{"type": "m.room.history_visibility", "state_key": "", "content": map[string]any{"history_visibility": "world_readable"}}}})
	msg := sendTimed(t, alice, open, "for everyone")
	if got := cs3R(carol.TimestampToEvent(cs3Ctx, open, time.UnixMilli(msg.ts), mautrix.DirectionBackward)).must(t); got.EventID != msg.id {
		t.Errorf("world-readable lookup: %s", got.EventID)
	}
}
