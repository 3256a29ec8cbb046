package rooms

import (
	"slices"
	"testing"

	"maunium.net/go/mautrix/id"
)

func TestParseRemoteHierarchy(t *testing.T) {
	const body = `{
	  "room": {"room_id": "!space:remote", "name": "Space", "room_type": "m.space", "num_joined_members": 3,
	    "world_readable": true, "guest_can_join": false,
	    "children_state": [
	      {"type": "m.space.child", "state_key": "!b:remote", "sender": "@u:remote", "origin_server_ts": 2, "content": {"via": ["remote"], "order": "b"}},
	      {"type": "m.space.child", "state_key": "!a:remote", "sender": "@u:remote", "origin_server_ts": 1, "content": {"via": ["remote"], "suggested": true}},
	      {"type": "m.space.child", "state_key": "!gone:remote", "sender": "@u:remote", "origin_server_ts": 3, "content": {}},
	      {"type": "m.room.name", "state_key": "", "sender": "@u:remote", "origin_server_ts": 3, "content": {"via": ["remote"]}},
	      {"type": "m.space.child", "state_key": "!bad:remote", "content": {"via": [5]}},
	      "not an event"
	    ]},
	  "children": [
	    {"room_id": "!a:remote", "join_rule": "restricted", "allowed_room_ids": ["!space:remote"], "num_joined_members": 1, "world_readable": false, "guest_can_join": false},
	    {"room_id": "!b:remote", "num_joined_members": 1, "world_readable": false, "guest_can_join": false},
	    {"room_id": "no sigil"},
	    {"room_id": "!typed:remote", "num_joined_members": "many"}
	  ],
	  "inaccessible_children": ["!c:remote", 7, "nope"]
	}`
	h, err := ParseRemoteHierarchy([]byte(body), "!space:remote")
	if err != nil {
		t.Fatal(err)
	}
	if h.Room.Summary.Name != "Space" || h.Room.Summary.RoomType != "m.space" || !h.Room.Summary.WorldReadable || h.Room.Summary.JoinRule != "public" {
		t.Errorf("room summary %+v (a chunk without join_rule is public)", h.Room.Summary)
	}
	var links []string
	for _, c := range h.Room.ChildrenState {
		links = append(links, c.StateKey)
	}
	if want := []string{"!b:remote", "!a:remote"}; !slices.Equal(links, want) {
		t.Errorf("valid child links %v, want %v", links, want)
	}
	var kids []string
	for _, c := range h.Children {
		kids = append(kids, c.Summary.RoomID)
	}
	if want := []string{"!a:remote", "!b:remote"}; !slices.Equal(kids, want) {
		t.Errorf("children %v, want %v (malformed ones dropped)", kids, want)
	}
	if a := h.Children[0].Summary; a.JoinRule != "restricted" || !slices.Equal(a.AllowedRoomIDs, []string{"!space:remote"}) {
		t.Errorf("restricted child %+v", a)
	}
	if !slices.Equal(h.Inaccessible, []string{"!c:remote"}) {
		t.Errorf("inaccessible %v", h.Inaccessible)
	}

	// The answer must describe the room asked for, and be a JSON object with a room.
	for _, bad := range []string{`{"room": {"room_id": "!other:remote"}}`, `{"children": []}`, `[]`, `nope`, `{"room": {"room_id": 5}}`} {
		if _, err := ParseRemoteHierarchy([]byte(bad), id.RoomID("!space:remote")); err == nil {
			t.Errorf("accepted %s", bad)
		}
	}
}

func TestParseChildOrder(t *testing.T) {
	mk := func(key, content string, ts int64) child {
		c, ok := parseChild(ChildState{Type: "m.space.child", StateKey: key, Content: []byte(content), OriginServerTS: ts})
		if !ok {
			t.Fatalf("child %s %s refused", key, content)
		}
		return c
	}
	cs := []child{
		mk("!d:x", `{"via":["x"]}`, 1),
		mk("!c:x", `{"via":["x"],"order":"\u0001bad"}`, 1), // invalid order: as if none
		mk("!b:x", `{"via":["x"],"order":"b"}`, 9),
		mk("!a:x", `{"via":["x"],"order":"a"}`, 9),
		mk("!e:x", `{"via":["x"]}`, 0),
	}
	sortChildren(cs)
	var got []string
	for _, c := range cs {
		got = append(got, c.StateKey)
	}
	if want := []string{"!a:x", "!b:x", "!e:x", "!c:x", "!d:x"}; !slices.Equal(got, want) {
		t.Errorf("order %v, want %v", got, want)
	}
	if c := mk("!v:x", `{"via":["x","y"],"suggested":true}`, 0); !slices.Equal(c.via, []string{"x", "y"}) || !c.suggested {
		t.Errorf("via/suggested %+v", c)
	}
	for _, bad := range []string{`{}`, `{"via":[]}`, `{"via":[""]}`, `{"via":"x"}`, `not json`} {
		if _, ok := parseChild(ChildState{Type: "m.space.child", StateKey: "!z:x", Content: []byte(bad)}); ok {
			t.Errorf("accepted content %s", bad)
		}
	}
	if _, ok := parseChild(ChildState{Type: "m.space.child", StateKey: "#alias:x", Content: []byte(`{"via":["x"]}`)}); ok {
		t.Error("accepted a state key that is not a room ID")
	}
}
