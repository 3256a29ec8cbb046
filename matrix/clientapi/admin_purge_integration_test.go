package clientapi_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/appliance/testserver"
)

// POST /_synapse/admin/v1/purge_history and its status.

// purgeTimeline pages /messages backwards to the start and returns every event's body (or
// type, for events without a body) from newest to oldest.
func purgeTimeline(t *testing.T, s *testserver.Server, token, room string) []string {
	t.Helper()
	var out []string
	from := ""
	for range 50 {
		path := "/_matrix/client/v3/rooms/" + cs3Esc(room) + "/messages?dir=b&limit=7"
		if from != "" {
			path += "&from=" + from
		}
		m := cs3Do(t, s, http.MethodGet, path, token, nil).ok(t)
		for _, e := range m["chunk"].([]any) {
			ev := e.(map[string]any)
			if b, ok := ev["content"].(map[string]any)["body"].(string); ok {
				out = append(out, b)
			} else {
				out = append(out, ev["type"].(string))
			}
		}
		end, _ := m["end"].(string)
		if end == "" {
			return out
		}
		from = end
	}
	t.Fatal("/messages never reached the start")
	return nil
}

func purgeSend(t *testing.T, s *testserver.Server, token, room, body string) string {
	t.Helper()
	m := cs3Do(t, s, http.MethodPut, fmt.Sprintf("/_matrix/client/v3/rooms/%s/send/m.room.message/%d", cs3Esc(room), time.Now().UnixNano()), token,
		map[string]any{"msgtype": "m.text", "body": body}).ok(t)
	return m["event_id"].(string)
}

func purgeSearchCount(t *testing.T, s *testserver.Server, token, term string) int64 {
	t.Helper()
	m := cs3Do(t, s, http.MethodPost, "/_matrix/client/v3/search", token, map[string]any{"search_categories": map[string]any{"room_events": map[string]any{"search_term": term}}}).ok(t)
	return cs3Num(m["search_categories"].(map[string]any)["room_events"].(map[string]any), "count")
}

func TestAdminPurgeHistory(t *testing.T) {
	s := testserver.Start(t)
	root := s.Register(t, "root", true)
	alice := s.Register(t, "alice", false)
	tok := root.AccessToken
	room := cs3CreateRoom(t, s, alice, map[string]any{"name": "Purge me"}).String()
	var old []string
	for i := range 12 {
		old = append(old, purgeSend(t, s, alice.AccessToken, room, fmt.Sprintf("zebra old message %d", i)))
		if i == 5 { // a state event in the middle of the purged range stays
			cs3SetState(t, alice, id.RoomID(room), "m.room.topic", "", map[string]any{"topic": "striped"})
		}
	}
	cut := purgeSend(t, s, alice.AccessToken, room, "cut here")
	for i := range 3 {
		purgeSend(t, s, alice.AccessToken, room, fmt.Sprintf("new message %d", i))
	}
	if n := purgeSearchCount(t, s, alice.AccessToken, "zebra"); n != 12 {
		t.Fatalf("search before purge: %d", n)
	}
	purge := "/_synapse/admin/v1/purge_history/" + cs3Esc(room)
	status := func(pid string) string {
		return cs3Do(t, s, http.MethodGet, "/_synapse/admin/v1/purge_history_status/"+pid, tok, nil).ok(t)["status"].(string)
	}

	// Refusals.
	cs3Do(t, s, http.MethodPost, purge, alice.AccessToken, map[string]any{"purge_up_to_event_id": cut}).want(t, 403, "M_FORBIDDEN")
	cs3Do(t, s, http.MethodPost, purge, tok, map[string]any{}).want(t, 400, "M_MISSING_PARAM")
	cs3Do(t, s, http.MethodPost, purge, tok, map[string]any{"purge_up_to_ts": "yesterday"}).want(t, 400, "M_BAD_JSON")
	cs3Do(t, s, http.MethodPost, purge, tok, map[string]any{"purge_up_to_event_id": "$nope"}).want(t, 404, "M_NOT_FOUND")
	cs3Do(t, s, http.MethodPost, "/_synapse/admin/v1/purge_history/"+cs3Esc("!nope:"+s.ServerName), tok, map[string]any{"purge_up_to_ts": 1}).want(t, 404, "M_NOT_FOUND")
	cs3Do(t, s, http.MethodGet, "/_synapse/admin/v1/purge_history_status/unknown", tok, nil).want(t, 404, "M_NOT_FOUND")
	cs3Do(t, s, http.MethodGet, "/_synapse/admin/v1/purge_history_status/unknown", alice.AccessToken, nil).want(t, 403, "M_FORBIDDEN")

	// Without delete_local_events, local users' events are kept.
	pid := cs3Do(t, s, http.MethodPost, purge, tok, map[string]any{"purge_up_to_event_id": cut}).ok(t)["purge_id"].(string)
	if status(pid) != "complete" || len(purgeTimeline(t, s, alice.AccessToken, room)) < 16 {
		t.Fatal("local events purged without delete_local_events")
	}

	// The real purge, with the event in the path.
	pid = cs3Do(t, s, http.MethodPost, purge+"/"+cs3Esc(cut), tok, map[string]any{"delete_local_events": true}).ok(t)["purge_id"].(string)
	if st := status(pid); st != "complete" {
		t.Fatalf("status %s", st)
	}
	tl := purgeTimeline(t, s, alice.AccessToken, room)
	joined := strings.Join(tl, "|")
	if strings.Contains(joined, "zebra") {
		t.Fatalf("purged messages still served: %v", tl)
	}
	for _, want := range []string{"new message 2", "cut here", "m.room.topic", "m.room.name", "m.room.create", "m.room.member"} {
		if !strings.Contains(joined, want) {
			t.Fatalf("%s missing after purge: %v", want, tl)
		}
	}
	cs3Do(t, s, http.MethodGet, "/_matrix/client/v3/rooms/"+cs3Esc(room)+"/event/"+cs3Esc(old[3]), alice.AccessToken, nil).want(t, 404, "M_NOT_FOUND")
	ctx := cs3Do(t, s, http.MethodGet, "/_matrix/client/v3/rooms/"+cs3Esc(room)+"/context/"+cs3Esc(cut)+"?limit=10", alice.AccessToken, nil).ok(t)
	for _, e := range ctx["events_before"].([]any) {
		if b, _ := e.(map[string]any)["content"].(map[string]any)["body"].(string); strings.Contains(b, "zebra") {
			t.Fatalf("context serves a purged event: %v", e)
		}
	}
	if len(ctx["events_after"].([]any)) != 3 {
		t.Fatalf("context after %v", ctx["events_after"])
	}
	if n := purgeSearchCount(t, s, alice.AccessToken, "zebra"); n != 0 {
		t.Fatalf("search finds %d purged events", n)
	}
	if got := cs3State(t, alice, id.RoomID(room), "m.room.topic", ""); got["topic"] != "striped" {
		t.Fatalf("state lost: %v", got)
	}

	// By timestamp: everything but state and the latest event goes; the room still works.
	last := purgeSend(t, s, alice.AccessToken, room, "the latest")
	pid = cs3Do(t, s, http.MethodPost, purge, tok, map[string]any{"delete_local_events": true, "purge_up_to_ts": time.Now().UnixMilli() + 60_000}).ok(t)["purge_id"].(string)
	if status(pid) != "complete" {
		t.Fatal("ts purge failed")
	}
	tl = purgeTimeline(t, s, alice.AccessToken, room)
	if tl[0] != "the latest" || strings.Contains(strings.Join(tl, "|"), "message") {
		t.Fatalf("after ts purge %v", tl)
	}
	cs3Do(t, s, http.MethodGet, "/_matrix/client/v3/rooms/"+cs3Esc(room)+"/event/"+cs3Esc(last), alice.AccessToken, nil).ok(t)
	purgeSend(t, s, alice.AccessToken, room, "still talking")
	if tl = purgeTimeline(t, s, alice.AccessToken, room); tl[0] != "still talking" {
		t.Fatalf("send after purge %v", tl)
	}
}
