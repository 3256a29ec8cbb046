package fedapi

import (
	"net/http"
	"slices"
	"testing"

	"github.com/hearth-home/hearth/matrix/rooms"
)

func TestFedHierarchy(t *testing.T) {
	e := newEnv(t)
	alice := e.user(t, "alice")
	space := e.createRoom(t, rooms.CreateRequest{Creator: alice, Preset: "public_chat", Name: sp("Home"), CreationContent: map[string]any{"type": "m.space"}})
	open := e.createRoom(t, rooms.CreateRequest{Creator: alice, Preset: "public_chat", Name: sp("Open")})
	closed := e.createRoom(t, rooms.CreateRequest{Creator: alice, Preset: "private_chat", Name: sp("Closed")})
	shared := e.createRoom(t, rooms.CreateRequest{Creator: alice, Preset: "private_chat", Name: sp("Shared with remote")})
	e.send(t, shared, alice, "m.room.member", sp("@bob:remote.test"), map[string]any{"membership": "invite"})
	restricted := e.createRoom(t, rooms.CreateRequest{Creator: alice, Preset: "private_chat", Name: sp("Restricted")})
	e.state(t, restricted, alice, "m.room.join_rules", "", map[string]any{"join_rule": "restricted",
		"allow": []any{map[string]any{"type": "m.room_membership", "room_id": open.String()}}})
	via := []string{ourServer}
	e.state(t, space, alice, "m.space.child", open.String(), map[string]any{"via": via, "suggested": true, "order": "a"})
	e.state(t, space, alice, "m.space.child", closed.String(), map[string]any{"via": via, "order": "b"})
	e.state(t, space, alice, "m.space.child", shared.String(), map[string]any{"via": via, "order": "c"})
	e.state(t, space, alice, "m.space.child", restricted.String(), map[string]any{"via": via, "order": "d"})
	e.state(t, space, alice, "m.space.child", "!elsewhere:remote.test", map[string]any{"via": []string{"remote.test"}})
	e.state(t, space, alice, "m.space.child", "!removed:hearth.test", map[string]any{}) // no via: not a child

	path := "/v1/hierarchy/" + esc(space.String())
	m := e.get(t, "remote.test", path).ok(t)
	room, _ := m["room"].(map[string]any)
	if room["room_id"] != space.String() || room["room_type"] != "m.space" || room["name"] != "Home" {
		t.Errorf("room %v", room)
	}
	var cs []string
	for _, c := range room["children_state"].([]any) {
		ev := c.(map[string]any)
		if ev["type"] != "m.space.child" || ev["origin_server_ts"] == nil || ev["sender"] != alice.String() {
			t.Errorf("child state %v", ev)
		}
		cs = append(cs, ev["state_key"].(string))
	}
	// Ordered by order key, then timestamp; the link without via is gone.
	if want := []string{open.String(), closed.String(), shared.String(), restricted.String(), "!elsewhere:remote.test"}; !slices.Equal(cs, want) {
		t.Errorf("children_state %v, want %v", cs, want)
	}
	var kids []string
	for _, c := range m["children"].([]any) {
		kids = append(kids, c.(map[string]any)["room_id"].(string))
	}
	// remote.test has an invited user in "shared"; it has nobody in "open" (the allowed room),
	// so the restricted room is inaccessible. The remote room is not described.
	if want := []string{open.String(), shared.String()}; !slices.Equal(kids, want) {
		t.Errorf("children %v, want %v", kids, want)
	}
	if inacc := strs(t, m["inaccessible_children"]); !slices.Equal(inacc, []string{closed.String(), restricted.String()}) {
		t.Errorf("inaccessible_children %v", inacc)
	}

	// Once remote.test has a user in the allowed room, the restricted room is accessible and
	// carries its allowed_room_ids.
	e.join(t, open, "@bob:remote.test")
	m = e.get(t, "remote.test", path).ok(t)
	found := false
	for _, c := range m["children"].([]any) {
		if ch := c.(map[string]any); ch["room_id"] == restricted.String() {
			found = true
			if ids := strs(t, ch["allowed_room_ids"]); !slices.Equal(ids, []string{open.String()}) || ch["join_rule"] != "restricted" {
				t.Errorf("restricted child %v", ch)
			}
		}
	}
	if !found {
		t.Errorf("restricted room missing once remote.test is in the allowed room: %v", m["children"])
	}

	// suggested_only keeps the suggested link only.
	m = e.get(t, "remote.test", path+"?suggested_only=true").ok(t)
	if cs := m["room"].(map[string]any)["children_state"].([]any); len(cs) != 1 || cs[0].(map[string]any)["state_key"] != open.String() {
		t.Errorf("suggested_only children_state %v", cs)
	}

	e.get(t, "remote.test", "/v1/hierarchy/"+esc(closed.String())).fail(t, http.StatusNotFound, "M_NOT_FOUND")
	e.get(t, "remote.test", "/v1/hierarchy/"+esc("!nope:hearth.test")).fail(t, http.StatusNotFound, "M_NOT_FOUND")
	e.get(t, "remote.test", path+"?suggested_only=maybe").fail(t, http.StatusBadRequest, "M_INVALID_PARAM")
	e.get(t, "remote.test", "/v1/hierarchy/space").fail(t, http.StatusBadRequest, "M_INVALID_PARAM")

	// A server the space's ACL denies learns nothing of it.
	e.state(t, space, alice, "m.room.server_acl", "", map[string]any{"allow": []string{"*"}, "deny": []string{"remote.test"}})
	e.get(t, "remote.test", path).fail(t, http.StatusNotFound, "M_NOT_FOUND")
	e.get(t, "other.test", path).ok(t)
}
