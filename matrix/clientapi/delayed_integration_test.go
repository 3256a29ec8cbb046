package clientapi_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/appliance/config"
	"github.com/hearth-home/hearth/appliance/testserver"
)

// Delayed events (MSC4140, unstable org.matrix.msc4140): scheduling through /send and /state,
// the list, the unauthenticated cancel/restart/send, errors, the per-user limit, cancellation
// by someone else's state, and survival across a restart.

const dlyType = "com.example.delayed"

func dlyBase() string { return "/_matrix/client/unstable/org.matrix.msc4140/delayed_events" }

func dlySendPath(room id.RoomID, txn, delay string) string {
	return "/_matrix/client/v3/rooms/" + cs3Esc(room.String()) + "/send/" + dlyType + "/" + txn + "?org.matrix.msc4140.delay=" + delay
}

func dlyStatePath(room id.RoomID, sk string) string {
	return "/_matrix/client/v3/rooms/" + cs3Esc(room.String()) + "/state/" + dlyType + "/" + sk
}

// dlyRoom makes a public room where anyone joined may send dlyType, and joins others to it.
func dlyRoom(t *testing.T, s *testserver.Server, owner *mautrix.Client, others ...*mautrix.Client) id.RoomID {
	t.Helper()
	room := cs3CreateRoom(t, s, owner, map[string]any{"preset": "public_chat",
		"power_level_content_override": map[string]any{"events": map[string]any{dlyType: 0}}})
	for _, o := range others {
		cs3R(o.JoinRoomByID(cs3Ctx, room)).must(t)
	}
	return room
}

// dlyList returns the user's scheduled delayed events.
func dlyList(t *testing.T, s *testserver.Server, cli *mautrix.Client) []map[string]any {
	t.Helper()
	body := cs3Do(t, s, http.MethodGet, dlyBase(), cli.AccessToken, nil).ok(t)
	raw, ok := body["delayed_events"].([]any)
	if !ok {
		t.Fatalf("no delayed_events list in %v", body)
	}
	out := make([]map[string]any, 0, len(raw))
	for _, r := range raw {
		out = append(out, r.(map[string]any))
	}
	return out
}

// dlyWait polls cond every 25 ms for up to timeout.
func dlyWait(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// dlyStateStatus reads a state event and returns the status and content.
func dlyStateStatus(t *testing.T, s *testserver.Server, cli *mautrix.Client, room id.RoomID, sk string) (int, map[string]any) {
	t.Helper()
	r := cs3Do(t, s, http.MethodGet, dlyStatePath(room, sk), cli.AccessToken, nil)
	return r.status, r.body
}

func dlySchedule(t *testing.T, s *testserver.Server, cli *mautrix.Client, path string, content map[string]any) string {
	t.Helper()
	body := cs3Do(t, s, http.MethodPut, path, cli.AccessToken, content).ok(t)
	delayID, _ := body["delay_id"].(string)
	if delayID == "" || body["event_id"] != nil {
		t.Fatalf("want only a delay_id, got %v", body)
	}
	return delayID
}

func TestDelayedMessageEvents(t *testing.T) {
	s := testserver.Start(t)
	alice := s.Register(t, "alice", false)
	bob := s.Register(t, "bob", false)
	room := dlyRoom(t, s, alice, bob)

	vers := cs3Do(t, s, http.MethodGet, "/_matrix/client/versions", "", nil).ok(t)
	if uf, _ := vers["unstable_features"].(map[string]any); uf["org.matrix.msc4140"] != true {
		t.Fatalf("org.matrix.msc4140 not advertised: %v", vers["unstable_features"])
	}
	cs3Do(t, s, http.MethodGet, dlyBase(), "", nil).want(t, http.StatusUnauthorized, "M_MISSING_TOKEN")
	if got := dlyList(t, s, alice); len(got) != 0 {
		t.Fatalf("fresh user has delayed events: %v", got)
	}

	// Three messages due in order; a retry of each transaction (without a body) gets its ID.
	// The delays leave room for a slow (race-detector, loaded) machine to list all three first.
	var ids []string
	for i, d := range []string{"1500", "1550", "1600"} {
		txn := fmt.Sprint("dtxn", i)
		delayID := dlySchedule(t, s, alice, dlySendPath(room, txn, d), map[string]any{"count": i + 1})
		again := cs3Do(t, s, http.MethodPut, dlySendPath(room, txn, d), alice.AccessToken, nil).ok(t)
		if again["delay_id"] != delayID {
			t.Fatalf("retried transaction: want %s, got %v", delayID, again)
		}
		ids = append(ids, delayID)
	}
	list := dlyList(t, s, alice)
	if len(list) != 3 {
		t.Fatalf("want 3 scheduled, got %v", list)
	}
	for i, e := range list { // soonest due first
		c, _ := e["content"].(map[string]any)
		if e["delay_id"] != ids[i] || e["room_id"] != room.String() || e["type"] != dlyType || cs3Num(c, "count") != int64(i+1) {
			t.Errorf("entry %d: %v", i, e)
		}
		if _, isState := e["state_key"]; isState || cs3Num(e, "running_since") <= 0 {
			t.Errorf("entry %d: want no state_key and a running_since: %v", i, e)
		}
	}
	if d := cs3Num(list[0], "delay"); d != 1500 {
		t.Errorf("delay: want 1500, got %d", d)
	}
	if got := dlyList(t, s, bob); len(got) != 0 {
		t.Fatalf("bob sees alice's delayed events: %v", got)
	}
	dlyWait(t, "the delayed messages to be sent", 5*time.Second, func() bool { return len(dlyList(t, s, alice)) == 0 })
	msgs := cs3R(alice.Messages(cs3Ctx, room, "", "", mautrix.DirectionBackward, nil, 10)).must(t)
	var counts []int64
	for i := len(msgs.Chunk) - 1; i >= 0; i-- {
		if ev := msgs.Chunk[i]; ev.Type.Type == dlyType {
			if ev.Sender != alice.UserID {
				t.Errorf("sender: %s", ev.Sender)
			}
			counts = append(counts, int64(ev.Content.Raw["count"].(float64)))
		}
	}
	if fmt.Sprint(counts) != "[1 2 3]" {
		t.Fatalf("want the three messages in due order, got %v", counts)
	}
	// Once sent, the ID is gone and a retried transaction still names it (no second event).
	cs3Do(t, s, http.MethodPost, dlyBase()+"/"+ids[0]+"/cancel", "", map[string]any{}).want(t, http.StatusNotFound, "M_NOT_FOUND")
	again := cs3Do(t, s, http.MethodPut, dlySendPath(room, "dtxn0", "1500"), alice.AccessToken, nil).ok(t)
	if again["delay_id"] != ids[0] {
		t.Fatalf("retry after sending: %v", again)
	}
}

func TestDelayedStateEventsManage(t *testing.T) {
	s := testserver.Start(t)
	alice := s.Register(t, "alice", false)
	room := dlyRoom(t, s, alice)

	// send: at once, unauthenticated (the delay ID is the credential).
	id1 := dlySchedule(t, s, alice, dlyStatePath(room, "now")+"?org.matrix.msc4140.delay=600000", map[string]any{"setter": "on_send"})
	list := dlyList(t, s, alice)
	if len(list) != 1 || list[0]["state_key"] != "now" || cs3Num(list[0], "delay") != 600000 {
		t.Fatalf("want the state event listed with its state key, got %v", list)
	}
	if st, _ := dlyStateStatus(t, s, alice, room, "now"); st != http.StatusNotFound {
		t.Fatalf("state present before sending: %d", st)
	}
	cs3Do(t, s, http.MethodPost, dlyBase()+"/"+id1+"/send", "", map[string]any{}).ok(t)
	if st, body := dlyStateStatus(t, s, alice, room, "now"); st != http.StatusOK || body["setter"] != "on_send" {
		t.Fatalf("after send: %d %v", st, body)
	}
	if got := dlyList(t, s, alice); len(got) != 0 {
		t.Fatalf("sent event still listed: %v", got)
	}

	// cancel (action in the body, the earlier form): never sent.
	id2 := dlySchedule(t, s, alice, dlyStatePath(room, "never")+"?org.matrix.msc4140.delay=300", map[string]any{"setter": "none"})
	cs3Do(t, s, http.MethodPost, dlyBase()+"/"+id2, "", map[string]any{"action": "cancel"}).ok(t)
	cs3Do(t, s, http.MethodPost, dlyBase()+"/"+id2+"/cancel", "", map[string]any{}).want(t, http.StatusNotFound, "M_NOT_FOUND")
	time.Sleep(500 * time.Millisecond)
	if st, _ := dlyStateStatus(t, s, alice, room, "never"); st != http.StatusNotFound {
		t.Fatalf("cancelled event was sent: %d", st)
	}

	// restart: the delay runs again from the restart.
	id3 := dlySchedule(t, s, alice, dlyStatePath(room, "restarted")+"?org.matrix.msc4140.delay=800", map[string]any{"setter": "on_timeout"})
	before := cs3Num(dlyList(t, s, alice)[0], "running_since")
	time.Sleep(500 * time.Millisecond)
	cs3Do(t, s, http.MethodPost, dlyBase()+"/"+id3+"/restart", "", map[string]any{}).ok(t)
	if after := cs3Num(dlyList(t, s, alice)[0], "running_since"); after < before+400 {
		t.Fatalf("running_since not moved by restart: %d -> %d", before, after)
	}
	time.Sleep(500 * time.Millisecond) // 1000 ms after scheduling: due without the restart
	if st, _ := dlyStateStatus(t, s, alice, room, "restarted"); st != http.StatusNotFound {
		t.Fatalf("restarted event sent at its first due time: %d", st)
	}
	dlyWait(t, "the restarted event", 5*time.Second, func() bool {
		st, body := dlyStateStatus(t, s, alice, room, "restarted")
		return st == http.StatusOK && body["setter"] == "on_timeout"
	})
	if got := dlyList(t, s, alice); len(got) != 0 {
		t.Fatalf("sent event still listed: %v", got)
	}
}

func TestDelayedEventsErrors(t *testing.T) {
	s := testserver.Start(t, func(c *config.Config) {
		c.DelayedEvents.MaxDelay = time.Minute
		c.DelayedEvents.MaxPerUser = 2
	})
	alice := s.Register(t, "alice", false)
	bob := s.Register(t, "bob", false)
	room := dlyRoom(t, s, alice)
	put := func(cli *mautrix.Client, path string) cs3Resp {
		return cs3Do(t, s, http.MethodPut, path, cli.AccessToken, map[string]any{})
	}
	put(alice, dlySendPath(room, "e1", "abc")).want(t, http.StatusBadRequest, "M_INVALID_PARAM")
	put(alice, dlySendPath(room, "e2", "0")).want(t, http.StatusBadRequest, "M_INVALID_PARAM")
	put(alice, dlySendPath(room, "e3", "-5")).want(t, http.StatusBadRequest, "M_INVALID_PARAM")
	tooLong := put(alice, dlySendPath(room, "e4", "60001"))
	tooLong.want(t, http.StatusBadRequest, "M_UNKNOWN")
	if tooLong.body["org.matrix.msc4140.errcode"] != "M_MAX_DELAY_EXCEEDED" || cs3Num(tooLong.body, "org.matrix.msc4140.max_delay") != 60000 {
		t.Fatalf("max delay error: %v", tooLong.body)
	}
	put(alice, dlyStatePath(room, "x")+"?org.matrix.msc4140.delay=70000").want(t, http.StatusBadRequest, "M_UNKNOWN")
	put(bob, dlySendPath(room, "e5", "1000")).want(t, http.StatusForbidden, "M_FORBIDDEN") // not joined
	cs3Do(t, s, http.MethodPut, dlySendPath(room, "e6", "1000"), alice.AccessToken, "[1]").want(t, http.StatusBadRequest, "M_BAD_JSON")

	cs3Do(t, s, http.MethodPost, dlyBase()+"/abc", "", map[string]any{}).want(t, http.StatusBadRequest, "M_MISSING_PARAM")
	cs3Do(t, s, http.MethodPost, dlyBase()+"/abc", "", map[string]any{"action": "oops"}).want(t, http.StatusBadRequest, "M_INVALID_PARAM")
	cs3Do(t, s, http.MethodPost, dlyBase()+"/abc", "", map[string]any{"action": 3}).want(t, http.StatusBadRequest, "M_INVALID_PARAM")
	cs3Do(t, s, http.MethodPost, dlyBase()+"/abc", "", "{nope").want(t, http.StatusBadRequest, "M_NOT_JSON")
	cs3Do(t, s, http.MethodPost, dlyBase()+"/abc/oops", "", map[string]any{}).want(t, http.StatusNotFound, "M_UNRECOGNIZED")
	for _, action := range []string{"cancel", "restart", "send"} {
		cs3Do(t, s, http.MethodPost, dlyBase()+"/abc/"+action, "", map[string]any{}).want(t, http.StatusNotFound, "M_NOT_FOUND")
		cs3Do(t, s, http.MethodPost, dlyBase()+"/abc", "", map[string]any{"action": action}).want(t, http.StatusNotFound, "M_NOT_FOUND")
	}

	// The per-user limit: a third scheduled event is refused with when to retry.
	put(alice, dlySendPath(room, "l1", "50000")).ok(t)
	put(alice, dlySendPath(room, "l2", "50000")).ok(t)
	over := put(alice, dlySendPath(room, "l3", "50000"))
	over.want(t, http.StatusTooManyRequests, "M_LIMIT_EXCEEDED")
	if ra := cs3Num(over.body, "retry_after_ms"); ra < 40000 || ra > 50000 {
		t.Fatalf("retry_after_ms: %d", ra)
	}
	// A retried transaction is not a new event and still answers.
	put(alice, dlySendPath(room, "l1", "50000")).ok(t)

	// A failed explicit send keeps the event scheduled: alice is no longer in the room.
	cs3R(alice.LeaveRoom(cs3Ctx, room)).must(t)
	ids := dlyList(t, s, alice)
	r := cs3Do(t, s, http.MethodPost, dlyBase()+"/"+ids[0]["delay_id"].(string)+"/send", "", map[string]any{})
	if r.status != http.StatusForbidden {
		t.Fatalf("send by a user who left: want 403, got %d %v", r.status, r.body)
	}
	if got := dlyList(t, s, alice); len(got) != 2 {
		t.Fatalf("failed send descheduled the event: %v", got)
	}
}

func TestDelayedStateCancelledByOthers(t *testing.T) {
	s := testserver.Start(t)
	alice := s.Register(t, "alice", false)
	bob := s.Register(t, "bob", false)
	room := dlyRoom(t, s, alice, bob)

	dlySchedule(t, s, alice, dlyStatePath(room, "call")+"?org.matrix.msc4140.delay=60000", map[string]any{"left": true})
	other := dlySchedule(t, s, alice, dlyStatePath(room, "other")+"?org.matrix.msc4140.delay=60000", map[string]any{"left": true})
	// Alice's own update of the key keeps her delayed event.
	cs3Do(t, s, http.MethodPut, dlyStatePath(room, "call"), alice.AccessToken, map[string]any{"joined": true}).ok(t)
	time.Sleep(200 * time.Millisecond)
	if got := dlyList(t, s, alice); len(got) != 2 {
		t.Fatalf("own state event cancelled the delayed one: %v", got)
	}
	// Bob's state event on the same key overwrites it: the delayed one is cancelled; the
	// delayed event on another key stays.
	cs3Do(t, s, http.MethodPut, dlyStatePath(room, "call"), bob.AccessToken, map[string]any{"ended": true}).ok(t)
	dlyWait(t, "the overwritten delayed event to be cancelled", 5*time.Second, func() bool {
		l := dlyList(t, s, alice)
		return len(l) == 1 && l[0]["delay_id"] == other
	})
}

func TestDelayedEventsSurviveRestart(t *testing.T) {
	s := testserver.Start(t)
	alice := s.Register(t, "alice", false)
	room := dlyRoom(t, s, alice)
	dlySchedule(t, s, alice, dlyStatePath(room, "soon")+"?org.matrix.msc4140.delay=400", map[string]any{"n": 1})
	scheduled := time.Now()
	later := dlySchedule(t, s, alice, dlyStatePath(room, "later")+"?org.matrix.msc4140.delay=6000", map[string]any{"n": 2})
	s.Stop()
	time.Sleep(600 * time.Millisecond) // "soon" falls due while the server is down

	s2 := testserver.StartConfig(t, s.Config)
	// The token and the schedule are in the store.
	alice2, err := mautrix.NewClient(s2.URL, alice.UserID, alice.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	dlyWait(t, "the overdue event after restart", 5*time.Second, func() bool {
		st, body := dlyStateStatus(t, s2, alice2, room, "soon")
		return st == http.StatusOK && cs3Num(body, "n") == 1
	})
	// Unless this machine was too slow to restart within the delay, "later" is still waiting.
	if l := dlyList(t, s2, alice2); time.Since(scheduled) < 5*time.Second && (len(l) != 1 || l[0]["delay_id"] != later) {
		t.Fatalf("after restart want only %s scheduled, got %v", later, l)
	}
	if st, _ := dlyStateStatus(t, s2, alice2, room, "later"); time.Since(scheduled) < 5*time.Second && st != http.StatusNotFound {
		t.Fatalf("later event sent early: %d", st)
	}
	dlyWait(t, "the later event after restart", 10*time.Second, func() bool {
		st, _ := dlyStateStatus(t, s2, alice2, room, "later")
		return st == http.StatusOK
	})
	if l := dlyList(t, s2, alice2); len(l) != 0 {
		t.Fatalf("still scheduled: %v", l)
	}
}
