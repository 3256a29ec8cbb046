package clientapi_test

import (
	"fmt"
	"net/http"
	"testing"

	"maunium.net/go/mautrix"

	"github.com/hearth-home/hearth/appliance/testserver"
)

// The published room list with filters and pagination together (the basics are in
// rooms_integration_test.go).

func TestPublicRoomsFilterAndPagination(t *testing.T) {
	s := testserver.Start(t)
	alice := s.Register(t, "alice", false)
	bob := s.Register(t, "bob", false)
	for i := range 5 {
		cs3CreateRoom(t, s, alice, map[string]any{"visibility": "public", "name": fmt.Sprintf("Garden %d", i), "topic": "Plants"})
	}
	cs3CreateRoom(t, s, alice, map[string]any{"visibility": "public", "name": "Garage", "room_alias_name": "tools", "creation_content": map[string]any{"type": "org.example.workshop"}})
	cs3CreateRoom(t, s, alice, map[string]any{"visibility": "private", "name": "Garden shed"})
	post := func(body map[string]any) map[string]any {
		t.Helper()
		return cs3Do(t, s, http.MethodPost, "/_matrix/client/v3/publicRooms", bob.AccessToken, body).ok(t)
	}
	names := func(m map[string]any) []string {
		var out []string
		for _, c := range m["chunk"].([]any) {
			out = append(out, c.(map[string]any)["name"].(string))
		}
		return out
	}

	// Pages of two through the five gardens, with the filter on every page.
	filter := map[string]any{"generic_search_term": "GARDEN"}
	seen := map[string]bool{}
	body := map[string]any{"limit": 2, "filter": filter}
	for page := 0; ; page++ {
		m := post(body)
		if cs3Num(m, "total_room_count_estimate") != 5 {
			t.Fatalf("page %d total %v", page, m["total_room_count_estimate"])
		}
		for _, n := range names(m) {
			if seen[n] {
				t.Fatalf("%s twice", n)
			}
			seen[n] = true
		}
		if (page == 0) != (m["prev_batch"] == nil) {
			t.Fatalf("page %d prev_batch %v", page, m["prev_batch"])
		}
		next, ok := m["next_batch"].(string)
		if !ok {
			if page != 2 {
				t.Fatalf("ran out after page %d", page)
			}
			break
		}
		body = map[string]any{"limit": 2, "filter": filter, "since": next}
	}
	if len(seen) != 5 || seen["Garden shed"] {
		t.Fatalf("gardens seen %v", seen)
	}

	// Topic and alias match too; custom room types filter.
	if m := post(map[string]any{"filter": map[string]any{"generic_search_term": "plants"}}); len(m["chunk"].([]any)) != 5 {
		t.Fatalf("topic search %v", names(m))
	}
	if m := post(map[string]any{"filter": map[string]any{"generic_search_term": "#tools:"}}); len(m["chunk"].([]any)) != 1 {
		t.Fatalf("alias search %v", names(m))
	}
	if m := post(map[string]any{"filter": map[string]any{"room_types": []any{"org.example.workshop"}}}); len(names(m)) != 1 || names(m)[0] != "Garage" {
		t.Fatalf("room_types %v", names(m))
	}
	if m := post(map[string]any{"filter": map[string]any{"room_types": []any{nil}, "generic_search_term": "gar"}}); len(names(m)) != 5 {
		t.Fatalf("untyped rooms matching gar: %v", names(m))
	}
	if m := post(map[string]any{"filter": map[string]any{"room_types": []any{}}}); len(names(m)) != 6 {
		t.Fatalf("an empty room_types list filters nothing: %v", names(m))
	}
	// Past the end: an empty page that can go back.
	if m := post(map[string]any{"since": "n50"}); len(m["chunk"].([]any)) != 0 || m["next_batch"] != nil || m["prev_batch"] == nil {
		t.Fatalf("past the end %v", m)
	}
	// Decoded by mautrix's types.
	var pr mautrix.RespPublicRooms
	cs3R(bob.MakeRequest(cs3Ctx, http.MethodPost, bob.BuildClientURL("v3", "publicRooms"), map[string]any{"limit": 3, "filter": map[string]any{"generic_search_term": "garden"}}, &pr)).must(t)
	if len(pr.Chunk) != 3 || pr.NextBatch == "" || pr.TotalRoomCountEstimate != 5 {
		t.Fatalf("mautrix page %+v", pr)
	}

	cs3Do(t, s, http.MethodGet, "/_matrix/client/v3/publicRooms?limit=-1", "", nil).want(t, 400, "M_INVALID_PARAM")
	cs3Do(t, s, http.MethodGet, "/_matrix/client/v3/publicRooms?limit=many", "", nil).want(t, 400, "M_INVALID_PARAM")
	cs3Do(t, s, http.MethodPost, "/_matrix/client/v3/publicRooms", bob.AccessToken, map[string]any{"limit": -1}).want(t, 400, "M_INVALID_PARAM")
	cs3Do(t, s, http.MethodPost, "/_matrix/client/v3/publicRooms", bob.AccessToken, map[string]any{"filter": map[string]any{"generic_search_term": 5}}).want(t, 400, "M_BAD_JSON")
	cs3Do(t, s, http.MethodPost, "/_matrix/client/v3/publicRooms", bob.AccessToken, map[string]any{"since": "x1"}).want(t, 400, "M_INVALID_PARAM")
}

func TestPublicRoomsFollowUpgrades(t *testing.T) {
	s := testserver.Start(t)
	alice := s.Register(t, "alice", false)
	old := cs3CreateRoom(t, s, alice, map[string]any{"visibility": "public", "name": "Hall", "room_version": "11"})
	newID := upgradeRoom(t, s, alice, old, map[string]any{"new_version": "12"})
	m := cs3Do(t, s, http.MethodGet, "/_matrix/client/v3/publicRooms", "", nil).ok(t)
	ch := m["chunk"].([]any)
	if len(ch) != 1 || ch[0].(map[string]any)["room_id"] != newID.String() || ch[0].(map[string]any)["name"] != "Hall" {
		t.Fatalf("directory after the upgrade: %v", m)
	}
}
