package fedapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/events"
	"github.com/hearth-home/hearth/matrix/rooms"
)

// sendAt appends a message with a chosen origin_server_ts, as an application service's ?ts.
func (e *env) sendAt(t testing.TB, room id.RoomID, sender id.UserID, body string, ts int64) id.EventID {
	t.Helper()
	b, _ := json.Marshal(map[string]any{"msgtype": "m.text", "body": body})
	a, err := e.rooms.Send(bg, room, events.Template{Type: "m.room.message", Sender: sender, Content: b}, rooms.SendOpts{TS: ts})
	if err != nil {
		t.Fatalf("send %s: %v", body, err)
	}
	return a.EventID
}

func TestFedTimestampToEvent(t *testing.T) {
	e := newEnv(t)
	alice := e.user(t, "alice")
	room := e.createRoom(t, rooms.CreateRequest{Creator: alice, Preset: "public_chat"})
	e.join(t, room, "@bob:remote.test")
	// Timestamps out of stream order: the later sends are backdated (an application service
	// importing history), two of them to the same millisecond.
	const old = 1_641_168_000_000 // 2022-01-03
	late := e.sendAt(t, room, alice, "late", old+5000)
	first := e.sendAt(t, room, alice, "same 1", old)
	second := e.sendAt(t, room, alice, "same 2", old)
	earliest := e.sendAt(t, room, alice, "earliest", old-5000)

	lookup := func(ts int64, dir string) resp {
		t.Helper()
		return e.get(t, "remote.test", fmt.Sprintf("/v1/timestamp_to_event/%s?ts=%d&dir=%s", esc(room.String()), ts, dir))
	}
	for _, c := range []struct {
		name string
		ts   int64
		dir  string
		want id.EventID
	}{
		{"same ts backwards: topologically last", old, "b", second},
		{"same ts forwards: topologically first", old, "f", first},
		{"between backwards", old + 4000, "b", second},
		{"between forwards", old + 1, "f", late},
		{"before everything forwards", old - 6000, "f", earliest},
		{"exact backwards", old - 5000, "b", earliest},
	} {
		m := lookup(c.ts, c.dir).ok(t)
		if m["event_id"] != c.want.String() {
			t.Errorf("%s: got %v, want %s", c.name, m["event_id"], c.want)
		}
		if _, ok := m["origin_server_ts"].(float64); !ok {
			t.Errorf("%s: no origin_server_ts in %v", c.name, m)
		}
	}
	// Nothing before the earliest event; an unknown room; bad parameters.
	lookup(old-6000, "b").fail(t, http.StatusNotFound, "M_NOT_FOUND")
	e.get(t, "remote.test", "/v1/timestamp_to_event/"+esc("!nowhere:hearth.test")+"?ts=1&dir=f").fail(t, http.StatusNotFound, "M_NOT_FOUND")
	lookup(old, "x").fail(t, http.StatusBadRequest, "M_INVALID_PARAM")
	e.get(t, "remote.test", "/v1/timestamp_to_event/"+esc(room.String())+"?dir=f").fail(t, http.StatusBadRequest, "M_MISSING_PARAM")
	e.get(t, "remote.test", "/v1/timestamp_to_event/"+esc(room.String())+"?ts=abc&dir=f").fail(t, http.StatusBadRequest, "M_INVALID_PARAM")
	// A server with nobody in a room that is not world-readable sees none of its events.
	private := e.createRoom(t, rooms.CreateRequest{Creator: alice, Preset: "private_chat"})
	e.sendAt(t, private, alice, "secret", old)
	e.get(t, "other.test", fmt.Sprintf("/v1/timestamp_to_event/%s?ts=%d&dir=f", esc(private.String()), old-1)).fail(t, http.StatusNotFound, "M_NOT_FOUND")

	// Events sent after a lookup are found by the next one (the index catches up).
	newer := e.sendAt(t, room, alice, "newer", old+9000)
	if m := lookup(old+8000, "f").ok(t); m["event_id"] != newer.String() {
		t.Errorf("after a new event: got %v, want %s", m["event_id"], newer)
	}
}
