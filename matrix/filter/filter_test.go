package filter

import (
	"encoding/json"
	"testing"
)

func TestEventFilterMatch(t *testing.T) {
	f := &EventFilter{Types: []string{"m.room.*", "org.x"}, NotTypes: []string{"m.room.member"}, NotSenders: []string{"@spam:x"}}
	cases := []struct {
		typ, sender string
		want        bool
	}{
		{"m.room.message", "@a:x", true},
		{"org.x", "@a:x", true},
		{"m.room.member", "@a:x", false},
		{"m.reaction", "@a:x", false},
		{"m.room.message", "@spam:x", false},
	}
	for _, c := range cases {
		if got := f.Match(c.typ, c.sender); got != c.want {
			t.Errorf("Match(%s, %s) = %v, want %v", c.typ, c.sender, got, c.want)
		}
	}
	var nilF *EventFilter
	if !nilF.Match("anything", "@a:x") {
		t.Error("nil filter must match everything")
	}
}

func TestEmptyTypesMatchesNothing(t *testing.T) {
	var f RoomEventFilter
	if err := json.Unmarshal([]byte(`{"types":[]}`), &f); err != nil {
		t.Fatal(err)
	}
	if f.Match("!r:x", "m.room.message", "@a:x", nil) {
		t.Error("an empty types list must match no event")
	}
}

func TestContainsURLAndRooms(t *testing.T) {
	yes := true
	f := &RoomEventFilter{ContainsURL: &yes, NotRooms: []string{"!no:x"}}
	if f.Match("!r:x", "m.room.message", "@a:x", json.RawMessage(`{"body":"hi"}`)) {
		t.Error("contains_url=true matched an event without url")
	}
	if !f.Match("!r:x", "m.room.message", "@a:x", json.RawMessage(`{"url":"mxc://x/y"}`)) {
		t.Error("contains_url=true rejected an event with url")
	}
	if f.Match("!no:x", "m.room.message", "@a:x", json.RawMessage(`{"url":"mxc://x/y"}`)) {
		t.Error("not_rooms ignored")
	}
}

func TestParseRejectsBadShapes(t *testing.T) {
	for _, in := range []string{`{"room":{"timeline":{"limit":"ten"}}}`, `{"event_format":"weird"}`, `[1,2]`} {
		if _, err := Parse([]byte(in)); err == nil {
			t.Errorf("Parse(%s) accepted a bad filter", in)
		}
	}
	f, err := Parse([]byte(`{"room":{"timeline":{"limit":3},"state":{"lazy_load_members":true}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if f.Room.Timeline.LimitOr(10) != 3 || !f.Room.State.LazyLoadMembers {
		t.Errorf("parsed filter lost fields: %+v", f.Room)
	}
}

func TestParseRejectsBadIdentifiers(t *testing.T) {
	for _, in := range []string{
		`{"room":{"timeline":{"rooms":["not_a_room_id"]}}}`,
		`{"room":{"not_rooms":["nope"]}}`,
		`{"room":{"state":{"senders":["bob"]}}}`,
		`{"presence":{"not_senders":["x"]}}`,
	} {
		if _, err := Parse([]byte(in)); err == nil {
			t.Errorf("Parse(%s) accepted a bad identifier", in)
		}
	}
	if _, err := Parse([]byte(`{"room":{"rooms":["!a:x"],"timeline":{"senders":["@b:x"]}}}`)); err != nil {
		t.Errorf("valid identifiers rejected: %v", err)
	}
}

// MSC3874: rel_types keeps only related events of those types, not_rel_types drops them.
func TestRelTypes(t *testing.T) {
	plain := json.RawMessage(`{"body":"hi"}`)
	thread := json.RawMessage(`{"body":"t","m.relates_to":{"rel_type":"m.thread","event_id":"$a"}}`)
	ref := json.RawMessage(`{"body":"r","m.relates_to":{"rel_type":"m.reference","event_id":"$a"}}`)
	f, err := Parse([]byte(`{"room":{"timeline":{"org.matrix.msc3874.rel_types":["m.thread"]}}}`))
	if err != nil {
		t.Fatal(err)
	}
	tl := f.Room.Timeline
	for c, want := range map[string]bool{string(plain): false, string(thread): true, string(ref): false} {
		if got := tl.Match("!r:x", "m.room.message", "@a:x", json.RawMessage(c)); got != want {
			t.Errorf("rel_types [m.thread] on %s: %v, want %v", c, got, want)
		}
	}
	not := &RoomEventFilter{NotRelTypes: []string{"m.thread"}}
	for c, want := range map[string]bool{string(plain): true, string(thread): false, string(ref): true} {
		if got := not.Match("!r:x", "m.room.message", "@a:x", json.RawMessage(c)); got != want {
			t.Errorf("not_rel_types [m.thread] on %s: %v, want %v", c, got, want)
		}
	}
}
