package sync

import (
	"fmt"
	"runtime"
	"testing"
	"time"
)

func fakeClock(t *presenceTracker) *time.Time {
	now := time.Unix(1_700_000_000, 0)
	t.now = func() time.Time { return now }
	return &now
}

func TestPresenceTrackerTransitions(t *testing.T) {
	tr := newPresenceTracker(10)
	clock := fakeClock(tr)
	msg := "lunch"
	if !tr.set("@a:x", presOnline, nil) || tr.current() != 1 {
		t.Fatal("first PUT is a change")
	}
	if tr.set("@a:x", presOnline, nil) {
		t.Fatal("same state again is no change")
	}
	if !tr.set("@a:x", presOnline, &msg) {
		t.Fatal("a new status message is a change")
	}
	// PUT unavailable pins the state: a sync's default online does not override it...
	tr.set("@a:x", presUnavailable, &msg)
	if tr.syncStart("@a:x", presOnline) {
		t.Fatal("pinned unavailable overridden by a sync")
	}
	tr.syncEnd("@a:x")
	// ...but set_presence=unavailable/online from PUT do.
	tr.set("@a:x", presOnline, &msg)
	if !tr.syncStart("@a:x", presUnavailable) {
		t.Fatal("set_presence=unavailable is a change")
	}
	// While a sync runs the user never times out.
	*clock = clock.Add(time.Hour)
	if len(tr.sweep()) != 0 {
		t.Fatal("timed out during a sync")
	}
	tr.syncEnd("@a:x")
	*clock = clock.Add(presenceTimeout - time.Second)
	if len(tr.sweep()) != 0 {
		t.Fatal("timed out too early")
	}
	*clock = clock.Add(2 * time.Second)
	if ch := tr.sweep(); len(ch) != 1 || ch[0] != "@a:x" {
		t.Fatalf("timeout: %v", ch)
	}
	e, _ := tr.get("@a:x")
	if e.state != presOffline || !e.hasMsg || e.statusMsg != "lunch" {
		t.Fatalf("after timeout: %+v", e)
	}
	// Offline entries with a message are kept; without one they are forgotten.
	tr.set("@b:x", presOffline, nil)
	*clock = clock.Add(2 * presenceForget)
	tr.sweep()
	if _, ok := tr.get("@b:x"); ok {
		t.Fatal("old offline entry without a message kept")
	}
	if _, ok := tr.get("@a:x"); !ok {
		t.Fatal("offline entry with a status message dropped")
	}
	// changedSince.
	s0 := tr.current()
	tr.syncStart("@c:x", presOnline)
	if ch := tr.changedSince(s0, tr.current()); len(ch) != 1 || ch[0].user != "@c:x" {
		t.Fatalf("changedSince: %+v", ch)
	}
	if ch := tr.changedSince(tr.current(), tr.current()); ch != nil {
		t.Fatalf("nothing new: %+v", ch)
	}
	st := func() *presenceEntry { e, _ := tr.get("@c:x"); return &e }().status(clock.UnixMilli() + 1000)
	if st.Presence != "online" || st.CurrentlyActive == nil || !*st.CurrentlyActive || *st.LastActiveAgo != 1000 {
		t.Fatalf("status: %+v", st)
	}
}

func TestPresenceTrackerBounded(t *testing.T) {
	tr := newPresenceTracker(2)
	fakeClock(tr)
	tr.set("@a:x", presOnline, nil)
	tr.set("@b:x", presOffline, nil)
	if !tr.set("@c:x", presOnline, nil) {
		t.Fatal("a full table evicts an offline entry")
	}
	if _, ok := tr.get("@b:x"); ok {
		t.Fatal("the offline entry should have gone")
	}
	if tr.set("@d:x", presOnline, nil) || tr.syncStart("@d:x", presOnline) {
		t.Fatal("a table full of online users takes no more")
	}
	if len(tr.users) != 2 {
		t.Fatalf("table grew to %d", len(tr.users))
	}
}

func TestPresenceChangeLog(t *testing.T) {
	tr := newPresenceTracker(100)
	fakeClock(tr)
	for i := range 10 {
		tr.set(fmt.Sprintf("@u%d:x", i), presOnline, nil)
	}
	tr.set("@u0:x", presUnavailable, nil) // serial 11: u0 counts once, with its latest state
	if ch := tr.changedSince(0, tr.current()); len(ch) != 10 {
		t.Fatalf("from the log: %d changes", len(ch))
	}
	ch := tr.changedSince(5, 10)
	if len(ch) != 5 {
		t.Fatalf("(5, 10]: %+v", ch)
	}
	for _, c := range ch {
		if c.user == "@u0:x" {
			t.Fatal("u0's latest change is past upto")
		}
	}
	// A token older than the log falls back to scanning the table.
	tr.log = tr.log[5:]
	if ch := tr.changedSince(0, tr.current()); len(ch) != 10 {
		t.Fatalf("table scan: %d changes", len(ch))
	}
	// The log stays bounded.
	for i := range 3 * presenceLogMax {
		tr.set("@u1:x", uint8(1+i%2), nil)
	}
	if len(tr.log) > 2*presenceLogMax {
		t.Fatalf("log grew to %d", len(tr.log))
	}
}

// BenchmarkPresenceMemory measures the memory one tracked user costs: the entry, its map
// slot, the user ID and a short status message.
func BenchmarkPresenceMemory(b *testing.B) {
	const users = 10000
	ids := make([]string, users)
	msg := "in a meeting"
	var perUser float64
	for b.Loop() {
		for i := range ids {
			ids[i] = fmt.Sprintf("@user%05d:example.org", i) // the server holds these strings too
		}
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		tr := newPresenceTracker(presenceMaxUsers)
		for i, u := range ids {
			m := msg + fmt.Sprint(i%10)
			tr.set(u, presOnline, &m)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		perUser = float64(after.HeapAlloc-before.HeapAlloc) / users
		runtime.KeepAlive(tr)
	}
	b.ReportMetric(perUser, "B/user")
}

// BenchmarkPresenceSyncCheck measures what presence costs an incremental /sync when one of
// 10,000 tracked users changed (the scan behind changedSince).
func BenchmarkPresenceSyncCheck(b *testing.B) {
	tr := newPresenceTracker(presenceMaxUsers)
	for i := range 10000 {
		tr.set(fmt.Sprintf("@user%05d:example.org", i), presOnline, nil)
	}
	since := tr.current()
	tr.set("@user00042:example.org", presUnavailable, nil)
	for b.Loop() {
		if len(tr.changedSince(since, tr.current())) != 1 {
			b.Fatal("want one change")
		}
	}
}
