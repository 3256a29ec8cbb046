package clientapi_test

import (
	"fmt"
	"net/http"
	"testing"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/appliance/testserver"
)

// POST /search (room_events): terms, keys, filters, ordering, pagination, context, state,
// groupings, and history visibility.

func searchBody(term string, extra map[string]any) map[string]any {
	re := map[string]any{"search_term": term}
	for k, v := range extra {
		re[k] = v
	}
	return map[string]any{"search_categories": map[string]any{"room_events": re}}
}

func searchRE(t *testing.T, s *testserver.Server, token, next string, body map[string]any) map[string]any {
	t.Helper()
	path := "/_matrix/client/v3/search"
	if next != "" {
		path += "?next_batch=" + next
	}
	out := cs3Do(t, s, http.MethodPost, path, token, body).ok(t)
	cats, _ := out["search_categories"].(map[string]any)
	re, _ := cats["room_events"].(map[string]any)
	if re == nil {
		t.Fatalf("no room_events in %v", out)
	}
	return re
}

func searchBodies(re map[string]any) []string {
	var out []string
	for _, r := range re["results"].([]any) {
		ev := r.(map[string]any)["result"].(map[string]any)
		c, _ := ev["content"].(map[string]any)
		b, _ := c["body"].(string)
		out = append(out, b)
	}
	return out
}

func TestSearchRoomEvents(t *testing.T) {
	s := testserver.Start(t)
	alice := s.Register(t, "alice", false)
	bob := s.Register(t, "bob", false)
	carol := s.Register(t, "carol", false)
	room := cs3CreateRoom(t, s, alice, map[string]any{"preset": "public_chat", "name": "Kitchen Talk", "topic": "Recipes and Ovens"})
	cs3R(bob.JoinRoomByID(cs3Ctx, room)).must(t)
	private := cs3CreateRoom(t, s, carol, map[string]any{"preset": "private_chat"})
	texts := []string{"The Quick brown fox", "a lazy dog sleeps", "FOX news about foxes", "nothing here", "Ünïcödé Straße grüßt fox"}
	var ids []string
	for _, b := range texts {
		r := cs3R(alice.SendMessageEvent(cs3Ctx, room, event.EventMessage, map[string]any{"msgtype": "m.text", "body": b})).must(t)
		ids = append(ids, r.EventID.String())
	}
	cs3R(carol.SendMessageEvent(cs3Ctx, private, event.EventMessage, map[string]any{"msgtype": "m.text", "body": "secret fox plans"})).must(t)

	// Case-insensitive, prefix terms; rank orders more occurrences first.
	re := searchRE(t, s, bob.AccessToken, "", searchBody("fox", nil))
	got := searchBodies(re)
	if len(got) != 3 || cs3Num(re, "count") != 3 {
		t.Fatalf("fox: %v (%v)", got, re)
	}
	if got[0] != "FOX news about foxes" {
		t.Fatalf("rank order %v", got)
	}
	hl := fmt.Sprint(re["highlights"])
	if hl != "[fox foxes]" {
		t.Fatalf("highlights %v", hl)
	}
	// Recent order, newest first; carol's private room never shows up.
	re = searchRE(t, s, bob.AccessToken, "", searchBody("fox", map[string]any{"order_by": "recent"}))
	if got := searchBodies(re); fmt.Sprint(got) != "[Ünïcödé Straße grüßt fox FOX news about foxes The Quick brown fox]" {
		t.Fatalf("recent %v", got)
	}
	// Unicode words, all terms must match.
	if got := searchBodies(searchRE(t, s, bob.AccessToken, "", searchBody("ÜNÏCÖDÉ straße", nil))); len(got) != 1 {
		t.Fatalf("unicode %v", got)
	}
	if got := searchBodies(searchRE(t, s, bob.AccessToken, "", searchBody("quick dog", nil))); len(got) != 0 {
		t.Fatalf("AND %v", got)
	}
	// Keys: the room name and topic are searchable.
	re = searchRE(t, s, bob.AccessToken, "", searchBody("ovens", map[string]any{"keys": []string{"content.topic"}}))
	if res := re["results"].([]any); len(res) != 1 || res[0].(map[string]any)["result"].(map[string]any)["type"] != "m.room.topic" {
		t.Fatalf("topic %v", re)
	}
	if got := searchBodies(searchRE(t, s, bob.AccessToken, "", searchBody("kitchen", map[string]any{"keys": []string{"content.body"}}))); len(got) != 0 {
		t.Fatalf("keys body only %v", got)
	}
	// Filters: senders, rooms.
	if got := searchBodies(searchRE(t, s, bob.AccessToken, "", searchBody("fox", map[string]any{"filter": map[string]any{"senders": []string{bob.UserID.String()}}}))); len(got) != 0 {
		t.Fatalf("sender filter %v", got)
	}
	if got := searchBodies(searchRE(t, s, bob.AccessToken, "", searchBody("fox", map[string]any{"filter": map[string]any{"not_rooms": []string{room.String()}}}))); len(got) != 0 {
		t.Fatalf("room filter %v", got)
	}
	// Carol sees her own room only.
	if got := searchBodies(searchRE(t, s, carol.AccessToken, "", searchBody("fox", nil))); fmt.Sprint(got) != "[secret fox plans]" {
		t.Fatalf("carol %v", got)
	}

	// Pagination with limit 1 walks all three, then stops.
	var pages []string
	next := ""
	for i := 0; i < 5; i++ {
		re := searchRE(t, s, bob.AccessToken, next, searchBody("fox", map[string]any{"order_by": "recent", "filter": map[string]any{"limit": 1}}))
		pages = append(pages, searchBodies(re)...)
		n, _ := re["next_batch"].(string)
		if n == "" {
			break
		}
		next = n
	}
	if len(pages) != 3 || pages[2] != "The Quick brown fox" {
		t.Fatalf("pages %v", pages)
	}

	// Context, profile, state and groupings.
	re = searchRE(t, s, bob.AccessToken, "", searchBody("lazy", map[string]any{
		"event_context": map[string]any{"before_limit": 1, "after_limit": 2, "include_profile": true},
		"include_state": true,
		"groupings":     map[string]any{"group_by": []any{map[string]any{"key": "room_id"}, map[string]any{"key": "sender"}}},
	}))
	res := re["results"].([]any)
	if len(res) != 1 {
		t.Fatalf("lazy %v", re)
	}
	ctx := res[0].(map[string]any)["context"].(map[string]any)
	before, after := ctx["events_before"].([]any), ctx["events_after"].([]any)
	if len(before) != 1 || len(after) != 2 || before[0].(map[string]any)["event_id"] != ids[0] || after[0].(map[string]any)["event_id"] != ids[2] {
		t.Fatalf("context %v", ctx)
	}
	if pi, _ := ctx["profile_info"].(map[string]any); pi[alice.UserID.String()] == nil {
		t.Fatalf("profile_info %v", ctx)
	}
	if st, _ := re["state"].(map[string]any); len(st[room.String()].([]any)) < 5 {
		t.Fatalf("state %v", re["state"])
	}
	groups := re["groups"].(map[string]any)
	if g := groups["room_id"].(map[string]any)[room.String()].(map[string]any); fmt.Sprint(g["results"]) != "["+ids[1]+"]" {
		t.Fatalf("groups %v", groups)
	}

	// History visibility: a message sent under "joined" before dave joined stays hidden from
	// him (the earlier "shared" ones are visible to any current member).
	cs3SetState(t, alice, room, "m.room.history_visibility", "", map[string]any{"history_visibility": "joined"})
	cs3R(alice.SendMessageEvent(cs3Ctx, room, event.EventMessage, map[string]any{"msgtype": "m.text", "body": "fox after the change"})).must(t)
	dave := s.Register(t, "dave", false)
	cs3R(dave.JoinRoomByID(cs3Ctx, room)).must(t)
	cs3R(alice.SendMessageEvent(cs3Ctx, room, event.EventMessage, map[string]any{"msgtype": "m.text", "body": "fox for dave"})).must(t)
	re = searchRE(t, s, dave.AccessToken, "", searchBody("fox", map[string]any{"order_by": "recent"}))
	if got := searchBodies(re); len(got) != 4 || got[0] != "fox for dave" || got[1] == "fox after the change" {
		t.Fatalf("dave %v", got)
	}
	if got := searchBodies(searchRE(t, s, bob.AccessToken, "", searchBody("change", nil))); len(got) != 1 {
		t.Fatalf("bob %v", got)
	}
	// Redacted events drop out.
	cs3R(alice.RedactEvent(cs3Ctx, room, id.EventID(ids[1]))).must(t)
	if got := searchBodies(searchRE(t, s, bob.AccessToken, "", searchBody("lazy", nil))); len(got) != 0 {
		t.Fatalf("redacted %v", got)
	}

	// Errors.
	for _, tc := range []struct {
		name, path, token string
		body              any
		status            int
		code              string
	}{
		{"no token", "/_matrix/client/v3/search", "", searchBody("x", nil), 401, "M_MISSING_TOKEN"},
		{"no categories", "/_matrix/client/v3/search", bob.AccessToken, map[string]any{}, 400, "M_BAD_JSON"},
		{"no term", "/_matrix/client/v3/search", bob.AccessToken, searchBody("", nil), 400, "M_BAD_JSON"},
		{"bad key", "/_matrix/client/v3/search", bob.AccessToken, searchBody("x", map[string]any{"keys": []string{"content.nope"}}), 400, "M_INVALID_PARAM"},
		{"bad order", "/_matrix/client/v3/search", bob.AccessToken, searchBody("x", map[string]any{"order_by": "size"}), 400, "M_INVALID_PARAM"},
		{"bad batch", "/_matrix/client/v3/search?next_batch=zz", bob.AccessToken, searchBody("x", nil), 400, "M_INVALID_PARAM"},
		{"bad term type", "/_matrix/client/v3/search", bob.AccessToken, map[string]any{"search_categories": map[string]any{"room_events": map[string]any{"search_term": 3}}}, 400, "M_BAD_JSON"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cs3Do(t, s, http.MethodPost, tc.path, tc.token, tc.body).want(t, tc.status, tc.code)
		})
	}
	// No room_events: an empty answer.
	out := cs3Do(t, s, http.MethodPost, "/_matrix/client/v3/search", bob.AccessToken, map[string]any{"search_categories": map[string]any{}}).ok(t)
	if fmt.Sprint(out) != "map[search_categories:map[]]" {
		t.Fatalf("empty %v", out)
	}
}

// TestSearchIndexSurvivesRestart: the index resumes from its high-water mark after a restart.
func TestSearchIndexSurvivesRestart(t *testing.T) {
	s := testserver.Start(t)
	alice := s.Register(t, "alice", false)
	room := cs3CreateRoom(t, s, alice, map[string]any{})
	cs3R(alice.SendMessageEvent(cs3Ctx, room, event.EventMessage, map[string]any{"msgtype": "m.text", "body": "before restart"})).must(t)
	if got := searchBodies(searchRE(t, s, alice.AccessToken, "", searchBody("restart", nil))); len(got) != 1 {
		t.Fatalf("before %v", got)
	}
	cfg := s.Config
	s.Stop()
	s2 := testserver.StartConfig(t, cfg)
	cs3Do(t, s2, http.MethodPut, "/_matrix/client/v3/rooms/"+cs3Esc(room.String())+"/send/m.room.message/t1", alice.AccessToken, map[string]any{"msgtype": "m.text", "body": "after restart"}).ok(t)
	if got := searchBodies(searchRE(t, s2, alice.AccessToken, "", searchBody("restart", nil))); fmt.Sprint(got) != "[after restart before restart]" {
		t.Fatalf("after %v", got)
	}
}
