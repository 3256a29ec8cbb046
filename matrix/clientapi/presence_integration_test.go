package clientapi_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/appliance/config"
	"github.com/hearth-home/hearth/appliance/testserver"
)

// Presence: off by default (PUT accepted and ignored, GET offline, nothing in /sync); on with
// the `presence` switch: set/get, visibility to users sharing a room, /sync delivery and
// wake-ups, set_presence.

func presPath(u id.UserID) string {
	return "/_matrix/client/v3/presence/" + rxEsc(u.String()) + "/status"
}

func presPut(t *testing.T, s *testserver.Server, cli *mautrix.Client, body any) (int, map[string]any) {
	t.Helper()
	return rxDo(t, s, http.MethodPut, presPath(cli.UserID), cli.AccessToken, body)
}

// presenceIn finds user's m.presence content in a sync answer.
func presenceIn(sync map[string]any, user id.UserID) map[string]any {
	evs, _ := rxDig(sync, "presence", "events").([]any)
	var out map[string]any
	for _, ev := range evs {
		if rxDig(ev, "type") == "m.presence" && rxDig(ev, "sender") == user.String() {
			out, _ = rxDig(ev, "content").(map[string]any)
		}
	}
	return out
}

func TestPresenceSwitchedOff(t *testing.T) {
	s := testserver.Start(t)
	alice := s.Register(t, "alice", false)
	bob := s.Register(t, "bob", false)
	rxRoom(t, alice, bob)
	since := rxSync(t, s, bob, url.Values{})["next_batch"].(string)

	if st, b := presPut(t, s, alice, map[string]any{"presence": "online", "status_msg": "here"}); st != 200 {
		t.Fatalf("PUT: %d %v", st, b)
	}
	st, b := presPut(t, s, alice, map[string]any{"presence": "busy"})
	rxWant(t, "bad presence while off", st, b, 400, "M_INVALID_PARAM")
	for _, cli := range []*mautrix.Client{alice, bob} {
		m := rxOK(t, s, http.MethodGet, presPath(alice.UserID), cli.AccessToken, nil)
		if m["presence"] != "offline" || m["status_msg"] != nil {
			t.Fatalf("GET while off: %v", m)
		}
	}
	m := rxSync(t, s, bob, url.Values{"since": {since}})
	if evs, _ := rxDig(m, "presence", "events").([]any); len(evs) != 0 {
		t.Fatalf("presence in sync while off: %v", evs)
	}
	if m := rxSync(t, s, alice, url.Values{"set_presence": {"unavailable"}}); presenceIn(m, alice.UserID) != nil {
		t.Fatal("set_presence while off")
	}
	st, b = rxDo(t, s, http.MethodGet, "/_matrix/client/v3/sync?set_presence=away", alice.AccessToken, nil)
	rxWant(t, "bad set_presence", st, b, 400, "M_INVALID_PARAM")
}

func TestPresenceSwitchedOn(t *testing.T) {
	s := testserver.Start(t, func(c *config.Config) { c.Presence = true })
	alice := s.Register(t, "alice", false)
	bob := s.Register(t, "bob", false)
	carol := s.Register(t, "carol", false)
	rxRoom(t, alice, bob)

	// Nothing known yet: offline.
	if m := rxOK(t, s, http.MethodGet, presPath(alice.UserID), bob.AccessToken, nil); m["presence"] != "offline" {
		t.Fatalf("initial GET %v", m)
	}
	bobSince := rxSync(t, s, bob, url.Values{"set_presence": {"offline"}})["next_batch"].(string)

	if st, b := presPut(t, s, alice, map[string]any{"presence": "online", "status_msg": "Testing"}); st != 200 {
		t.Fatalf("PUT: %d %v", st, b)
	}
	for _, cli := range []*mautrix.Client{alice, bob} {
		m := rxOK(t, s, http.MethodGet, presPath(alice.UserID), cli.AccessToken, nil)
		if m["presence"] != "online" || m["status_msg"] != "Testing" || m["currently_active"] != true {
			t.Fatalf("GET by %s: %v", cli.UserID, m)
		}
		if ago, ok := m["last_active_ago"].(float64); !ok || ago < 0 || ago > 10000 {
			t.Fatalf("last_active_ago %v", m["last_active_ago"])
		}
	}

	// Errors.
	st, b := rxDo(t, s, http.MethodGet, presPath(alice.UserID), carol.AccessToken, nil)
	rxWant(t, "no shared room", st, b, 403, "M_FORBIDDEN")
	st, b = rxDo(t, s, http.MethodGet, presPath(id.UserID("@nobody:"+s.ServerName)), alice.AccessToken, nil)
	rxWant(t, "unknown user", st, b, 404, "M_NOT_FOUND")
	st, b = rxDo(t, s, http.MethodGet, "/_matrix/client/v3/presence/nobody/status", alice.AccessToken, nil)
	rxWant(t, "not a user ID", st, b, 400, "M_INVALID_PARAM")
	st, b = rxDo(t, s, http.MethodPut, presPath(bob.UserID), alice.AccessToken, map[string]any{"presence": "online"})
	rxWant(t, "PUT for someone else", st, b, 403, "M_FORBIDDEN")
	st, b = presPut(t, s, alice, map[string]any{"presence": "busy"})
	rxWant(t, "bad presence", st, b, 400, "M_INVALID_PARAM")
	st, b = presPut(t, s, alice, map[string]any{"status_msg": "no state"})
	rxWant(t, "missing presence", st, b, 400, "M_BAD_JSON")
	st, b = presPut(t, s, alice, map[string]any{"presence": "online", "status_msg": 5})
	rxWant(t, "status_msg not a string", st, b, 400, "M_BAD_JSON")
	st, b = presPut(t, s, alice, map[string]any{"presence": "online", "status_msg": strings.Repeat("x", 2000)})
	rxWant(t, "status_msg too long", st, b, 400, "M_INVALID_PARAM")
	st, b = rxDo(t, s, http.MethodGet, "/_matrix/client/v3/sync?set_presence=away", alice.AccessToken, nil)
	rxWant(t, "bad set_presence", st, b, 400, "M_INVALID_PARAM")
	st, b = rxDo(t, s, http.MethodGet, presPath(alice.UserID), "", nil)
	rxWant(t, "no token", st, b, 401, "M_MISSING_TOKEN")

	// /sync: bob shares a room with alice and hears of her; carol does not.
	m := rxSync(t, s, bob, url.Values{"since": {bobSince}, "set_presence": {"offline"}})
	if p := presenceIn(m, alice.UserID); p["presence"] != "online" || p["status_msg"] != "Testing" {
		t.Fatalf("bob's incremental sync: %v", m["presence"])
	}
	bobSince = m["next_batch"].(string)
	if parts := strings.Split(bobSince, "_"); len(parts) != 3 {
		t.Fatalf("sync token %q has no presence part", bobSince)
	}
	if p := presenceIn(rxSync(t, s, bob, url.Values{}), alice.UserID); p == nil {
		t.Fatal("bob's initial sync lacks alice's presence")
	}
	if p := presenceIn(rxSync(t, s, carol, url.Values{}), alice.UserID); p != nil {
		t.Fatalf("carol shares no room with alice: %v", p)
	}
	// Nothing new: nothing sent.
	if p := presenceIn(rxSync(t, s, bob, url.Values{"since": {bobSince}, "set_presence": {"offline"}}), alice.UserID); p != nil {
		t.Fatalf("unchanged presence re-sent: %v", p)
	}

	// set_presence on /sync; the status message stays.
	rxSync(t, s, alice, url.Values{"set_presence": {"unavailable"}})
	m = rxSync(t, s, bob, url.Values{"since": {bobSince}, "set_presence": {"offline"}})
	if p := presenceIn(m, alice.UserID); p["presence"] != "unavailable" || p["status_msg"] != "Testing" {
		t.Fatalf("after set_presence=unavailable: %v", m["presence"])
	}
	bobSince = m["next_batch"].(string)

	// A change wakes a waiting sync.
	type result struct {
		m   map[string]any
		dur time.Duration
	}
	done := make(chan result, 1)
	go func() {
		start := time.Now()
		_, m := rxDo(t, s, http.MethodGet, "/_matrix/client/v3/sync?set_presence=offline&timeout=20000&since="+url.QueryEscape(bobSince), bob.AccessToken, nil)
		done <- result{m, time.Since(start)}
	}()
	time.Sleep(300 * time.Millisecond)
	if st, b := presPut(t, s, alice, map[string]any{"presence": "online", "status_msg": "back"}); st != 200 {
		t.Fatalf("PUT: %d %v", st, b)
	}
	select {
	case r := <-done:
		if p := presenceIn(r.m, alice.UserID); p["presence"] != "online" || p["status_msg"] != "back" {
			t.Fatalf("woken sync: %v", r.m["presence"])
		}
		if r.dur > 10*time.Second {
			t.Fatalf("the presence change did not wake the sync (%s)", r.dur)
		}
	case <-time.After(25 * time.Second):
		t.Fatal("waiting sync never returned")
	}

	// A token without the presence part (from before presence existed) still works.
	pos := strings.Split(strings.TrimPrefix(bobSince, "s"), "_")[0]
	if p := presenceIn(rxSync(t, s, bob, url.Values{"since": {"s" + pos + "_0"}, "set_presence": {"offline"}}), alice.UserID); p == nil {
		t.Fatal("two-part token: presence since serial 0 should be sent")
	}
	// The presence filter applies.
	f := `{"presence":{"not_senders":["` + alice.UserID.String() + `"]}}`
	if p := presenceIn(rxSync(t, s, bob, url.Values{"filter": {f}}), alice.UserID); p != nil {
		t.Fatalf("filtered presence sent: %v", p)
	}
	// Ignored users' presence is not sent.
	if err := bob.SetAccountData(rxCtx(t), "m.ignored_user_list", map[string]any{"ignored_users": map[string]any{alice.UserID.String(): map[string]any{}}}); err != nil {
		t.Fatal(err)
	}
	if p := presenceIn(rxSync(t, s, bob, url.Values{}), alice.UserID); p != nil {
		t.Fatalf("ignored user's presence sent: %v", p)
	}
	// Clearing the status message: omitted status_msg.
	presPut(t, s, alice, map[string]any{"presence": "online"})
	if m := rxOK(t, s, http.MethodGet, presPath(alice.UserID), alice.AccessToken, nil); m["status_msg"] != nil {
		t.Fatalf("status_msg not cleared: %v", m)
	}
}
