package sync_test

import (
	"net/url"
	"testing"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/appliance/testserver"
)

// rawSync runs /sync with query q and returns the joined room's section.
func rawSync(t *testing.T, srv *testserver.Server, cli *mautrix.Client, q url.Values, room id.RoomID) (map[string]any, string) {
	t.Helper()
	st, body := srv.Raw(t, "GET", "/_matrix/client/v3/sync?"+q.Encode(), cli.AccessToken, "")
	if st != 200 {
		t.Fatalf("sync: %d %v", st, body)
	}
	rooms, _ := body["rooms"].(map[string]any)
	join, _ := rooms["join"].(map[string]any)
	jr, _ := join[room.String()].(map[string]any)
	return jr, body["next_batch"].(string)
}

// stateKeys lists "type|state_key" of a section's events.
func stateKeys(section any) map[string]map[string]any {
	out := map[string]map[string]any{}
	m, _ := section.(map[string]any)
	evs, _ := m["events"].([]any)
	for _, e := range evs {
		ev := e.(map[string]any)
		sk, _ := ev["state_key"].(string)
		out[ev["type"].(string)+"|"+sk] = ev
	}
	return out
}

// use_state_after (spec v1.16): state as of the end of the timeline in state_after, no state;
// state events of the timeline are repeated there; lazy loading gives the senders' members.
func TestUseStateAfter(t *testing.T) {
	srv, alice, bob, room := setupPair(t)
	if _, err := alice.SendStateEvent(ctx(t), room, event.StateTopic, "", map[string]any{"topic": "first"}); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.SendText(ctx(t), room, "hello"); err != nil {
		t.Fatal(err)
	}

	// Without the flag: state, no state_after.
	jr, _ := rawSync(t, srv, bob, url.Values{}, room)
	if _, ok := jr["state_after"]; ok {
		t.Fatalf("state_after without use_state_after: %v", jr)
	}
	if _, ok := jr["state"]; !ok {
		t.Fatalf("no state without use_state_after: %v", jr)
	}

	// Initial sync with the flag: the topic (also in the timeline) is in state_after.
	jr, since := rawSync(t, srv, bob, url.Values{"use_state_after": {"true"}}, room)
	if _, ok := jr["state"]; ok {
		t.Fatalf("state present with use_state_after: %v", jr)
	}
	sa := stateKeys(jr["state_after"])
	if c, _ := sa["m.room.topic|"]["content"].(map[string]any); c["topic"] != "first" {
		t.Fatalf("state_after topic %v (keys %v)", sa["m.room.topic|"], sa)
	}
	for _, k := range []string{"m.room.create|", "m.room.member|" + alice.UserID.String(), "m.room.member|" + bob.UserID.String()} {
		if sa[k] == nil {
			t.Fatalf("initial state_after lacks %s: %v", k, sa)
		}
	}

	// Incremental: a topic change and a message; state_after holds just the new topic.
	if _, err := alice.SendStateEvent(ctx(t), room, event.StateTopic, "", map[string]any{"topic": "second"}); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.SendText(ctx(t), room, "again"); err != nil {
		t.Fatal(err)
	}
	jr, since2 := rawSync(t, srv, bob, url.Values{"use_state_after": {"true"}, "since": {since}}, room)
	sa = stateKeys(jr["state_after"])
	if len(sa) != 1 || sa["m.room.topic|"] == nil {
		t.Fatalf("incremental state_after %v", sa)
	}
	if c, _ := sa["m.room.topic|"]["content"].(map[string]any); c["topic"] != "second" {
		t.Fatalf("incremental topic %v", sa["m.room.topic|"])
	}
	// A message only: state_after present and empty.
	if _, err := alice.SendText(ctx(t), room, "plain"); err != nil {
		t.Fatal(err)
	}
	jr, _ = rawSync(t, srv, bob, url.Values{"use_state_after": {"true"}, "since": {since2}}, room)
	if sa, ok := jr["state_after"].(map[string]any); !ok || len(sa["events"].([]any)) != 0 {
		t.Fatalf("message-only state_after %v", jr["state_after"])
	}

	// Lazy loading: only the members of the timeline's senders (and the user), as of the end.
	carol := srv.Register(t, "carol", false)
	if _, err := carol.JoinRoomByID(ctx(t), room); err != nil {
		t.Fatal(err)
	}
	filter := `{"room":{"timeline":{"limit":1},"state":{"lazy_load_members":true}}}`
	if _, err := alice.SendText(ctx(t), room, "last"); err != nil {
		t.Fatal(err)
	}
	jr, _ = rawSync(t, srv, bob, url.Values{"use_state_after": {"true"}, "filter": {filter}}, room)
	sa = stateKeys(jr["state_after"])
	if sa["m.room.member|"+alice.UserID.String()] == nil || sa["m.room.member|"+bob.UserID.String()] == nil {
		t.Fatalf("lazy state_after lacks the sender or the user: %v", sa)
	}
	if sa["m.room.member|"+carol.UserID.String()] != nil {
		t.Fatalf("lazy state_after has a member who sent nothing in the timeline: %v", sa)
	}
}
