package clientapi_test

import (
	"net/http"
	"net/url"
	"slices"
	"testing"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/appliance/testserver"
)

// GET /_matrix/client/v1/rooms/{roomId}/hierarchy through the running appliance.

func hierarchyIDs(t *testing.T, m map[string]any) []string {
	t.Helper()
	var out []string
	for _, r := range m["rooms"].([]any) {
		room := r.(map[string]any)
		if _, ok := room["children_state"].([]any); !ok {
			t.Errorf("room %v has no children_state array", room["room_id"])
		}
		out = append(out, room["room_id"].(string))
	}
	return out
}

func TestSpaceHierarchy(t *testing.T) {
	s := testserver.Start(t)
	alice := s.Register(t, "alice", false)
	bob := s.Register(t, "bob", false)
	space := func(name string) map[string]any {
		return map[string]any{"preset": "public_chat", "name": name, "creation_content": map[string]any{"type": "m.space"}}
	}
	root := cs3CreateRoom(t, s, alice, space("Home"))
	lounge := cs3CreateRoom(t, s, alice, map[string]any{"preset": "public_chat", "name": "Lounge"})
	sub := cs3CreateRoom(t, s, alice, space("Upstairs"))
	attic := cs3CreateRoom(t, s, alice, map[string]any{"preset": "public_chat", "name": "Attic"})
	private := cs3CreateRoom(t, s, alice, map[string]any{"preset": "private_chat", "name": "Study"})
	via := []string{s.ServerName}
	cs3SetState(t, alice, root, "m.space.child", lounge.String(), map[string]any{"via": via, "order": "a", "suggested": true})
	cs3SetState(t, alice, root, "m.space.child", sub.String(), map[string]any{"via": via, "order": "b"})
	cs3SetState(t, alice, root, "m.space.child", private.String(), map[string]any{"via": via, "order": "c"})
	cs3SetState(t, alice, root, "m.space.child", "!gone:"+s.ServerName, map[string]any{})
	cs3SetState(t, alice, sub, "m.space.child", attic.String(), map[string]any{"via": via})
	cs3SetState(t, alice, sub, "m.space.child", root.String(), map[string]any{"via": via}) // a loop
	// A child link in an ordinary room (not a space) is ignored: the cellar never shows.
	cellar := cs3CreateRoom(t, s, alice, map[string]any{"preset": "public_chat", "name": "Cellar"})
	cs3SetState(t, alice, lounge, "m.space.child", cellar.String(), map[string]any{"via": via})

	path := func(room id.RoomID, q url.Values) string {
		p := "/_matrix/client/v1/rooms/" + cs3Esc(room.String()) + "/hierarchy"
		if len(q) > 0 {
			p += "?" + q.Encode()
		}
		return p
	}
	get := func(cli *mautrix.Client, room id.RoomID, q url.Values) map[string]any {
		t.Helper()
		return cs3Do(t, s, http.MethodGet, path(room, q), cli.AccessToken, nil).ok(t)
	}

	// Depth first: a subspace's rooms come before the next sibling; each room once despite the
	// loop; bob does not see the private room.
	all := []string{root.String(), lounge.String(), sub.String(), attic.String()}
	if got := hierarchyIDs(t, get(bob, root, nil)); !slices.Equal(got, all) {
		t.Errorf("bob's hierarchy %v, want %v", got, all)
	}
	// alice, through the mautrix client, also sees her private room.
	h := cs3R(alice.Hierarchy(cs3Ctx, root, &mautrix.ReqHierarchy{})).must(t)
	var got []string
	for _, r := range h.Rooms {
		got = append(got, r.RoomID.String())
	}
	if want := append(slices.Clone(all), private.String()); !slices.Equal(got, want) {
		t.Errorf("alice's hierarchy %v, want %v", got, want)
	}
	if r0 := h.Rooms[0]; r0.RoomType != "m.space" || r0.Name != "Home" || len(r0.ChildrenState) != 3 || r0.NumJoinedMembers != 1 {
		t.Errorf("root entry %+v", r0)
	}

	// Pages of one room each add up to the whole walk.
	var paged []string
	q := url.Values{"limit": {"1"}}
	for i := 0; i < 10; i++ {
		m := get(bob, root, q)
		ids := hierarchyIDs(t, m)
		if len(ids) != 1 {
			t.Fatalf("page %d has %d rooms", i, len(ids))
		}
		paged = append(paged, ids...)
		nb, _ := m["next_batch"].(string)
		if nb == "" {
			break
		}
		q.Set("from", nb)
	}
	if !slices.Equal(paged, all) {
		t.Errorf("paged walk %v, want %v", paged, all)
	}
	first := get(bob, root, url.Values{"limit": {"1"}})
	nb := first["next_batch"].(string)
	cs3Do(t, s, http.MethodGet, path(root, url.Values{"from": {nb}, "suggested_only": {"true"}}), bob.AccessToken, nil).want(t, http.StatusBadRequest, "M_INVALID_PARAM")
	cs3Do(t, s, http.MethodGet, path(root, url.Values{"from": {nb}, "max_depth": {"1"}}), bob.AccessToken, nil).want(t, http.StatusBadRequest, "M_INVALID_PARAM")
	cs3Do(t, s, http.MethodGet, path(root, url.Values{"from": {"garbage"}}), bob.AccessToken, nil).want(t, http.StatusBadRequest, "M_INVALID_PARAM")

	// max_depth and suggested_only.
	if got := hierarchyIDs(t, get(bob, root, url.Values{"max_depth": {"0"}})); !slices.Equal(got, []string{root.String()}) {
		t.Errorf("max_depth 0: %v", got)
	}
	if got := hierarchyIDs(t, get(bob, root, url.Values{"max_depth": {"1"}})); !slices.Equal(got, []string{root.String(), lounge.String(), sub.String()}) {
		t.Errorf("max_depth 1: %v", got)
	}
	m := get(bob, root, url.Values{"suggested_only": {"true"}})
	if got := hierarchyIDs(t, m); !slices.Equal(got, []string{root.String(), lounge.String()}) {
		t.Errorf("suggested_only: %v", got)
	}

	// A root bob may not see is forbidden, as is an unknown one; an invite opens it.
	cs3Do(t, s, http.MethodGet, path(private, nil), bob.AccessToken, nil).want(t, http.StatusForbidden, "M_FORBIDDEN")
	cs3Do(t, s, http.MethodGet, path("!nope:"+id.RoomID(s.ServerName), nil), bob.AccessToken, nil).want(t, http.StatusForbidden, "M_FORBIDDEN")
	cs3R(alice.InviteUser(cs3Ctx, private, &mautrix.ReqInviteUser{UserID: bob.UserID})).must(t)
	if got := hierarchyIDs(t, get(bob, private, nil)); !slices.Equal(got, []string{private.String()}) {
		t.Errorf("invited bob: %v", got)
	}

	// Bad parameters and no token.
	for _, bad := range []url.Values{{"limit": {"0"}}, {"limit": {"x"}}, {"max_depth": {"-1"}}, {"suggested_only": {"yes"}}} {
		cs3Do(t, s, http.MethodGet, path(root, bad), bob.AccessToken, nil).want(t, http.StatusBadRequest, "M_INVALID_PARAM")
	}
	cs3Do(t, s, http.MethodGet, "/_matrix/client/v1/rooms/notaroom/hierarchy", bob.AccessToken, nil).want(t, http.StatusBadRequest, "M_INVALID_PARAM")
	cs3Do(t, s, http.MethodGet, path(root, nil), "", nil).want(t, http.StatusUnauthorized, "M_MISSING_TOKEN")
}
