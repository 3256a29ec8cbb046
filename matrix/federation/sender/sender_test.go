package sender

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// metricValue reads a gauge or counter.
func metricValue(c prometheus.Metric) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return -1
	}
	if m.Gauge != nil {
		return m.Gauge.GetValue()
	}
	return m.Counter.GetValue()
}

func seq(prefix string, from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, prefix+strconv.Itoa(i))
	}
	return out
}

// A backlog is cut into transactions of at most 50 PDUs and 100 EDUs, each a prefix of what
// is left, so queue order survives the cut.
func TestBatchLimits(t *testing.T) {
	h := newHarness(t)
	r := newRemote(t, h.key)
	s := h.sender(t, h.client(t, r), nil)
	var pdus [][]byte
	for _, n := range seq("", 0, 120) {
		pdus = append(pdus, testPDU(n))
	}
	var edus []EDU
	for _, n := range seq("", 0, 150) {
		edus = append(edus, testEDU(n))
	}
	if err := s.Enqueue([]string{r.name}, pdus, edus); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.QueueLen(r.name); n != 270 {
		t.Fatalf("queue length %d, want 270", n)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "backlog delivered", 10*time.Second, func() bool { return len(r.appliedItems()) == 270 })
	_, applied := r.snapshot()
	var shape []string
	for _, a := range applied {
		if len(a.Req.PDUs) > MaxPDUs || len(a.Req.EDUs) > MaxEDUs {
			t.Errorf("transaction %s has %d PDUs and %d EDUs", a.TxnID, len(a.Req.PDUs), len(a.Req.EDUs))
		}
		shape = append(shape, fmt.Sprintf("%d/%d", len(a.Req.PDUs), len(a.Req.EDUs)))
	}
	if got := strings.Join(shape, " "); got != "50/0 50/0 20/100 0/50" {
		t.Errorf("transaction shapes %q, want %q", got, "50/0 50/0 20/100 0/50")
	}
	want := append(seq("p", 0, 120), seq("e", 0, 150)...)
	if got := r.appliedItems(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("delivery order differs:\n got %v\nwant %v", got, want)
	}
	waitFor(t, "queue emptied", 5*time.Second, func() bool { n, _ := s.QueueLen(r.name); return n == 0 })
}

// Items enqueued one by one while the worker is busy arrive in enqueue order, per destination.
func TestOrderPerDestination(t *testing.T) {
	h := newHarness(t)
	a, b := newRemote(t, h.key), newRemote(t, h.key)
	s := h.sender(t, h.client(t, a), nil)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	var wantA, wantB []string
	for i := 0; i < 60; i++ {
		n := strconv.Itoa(i)
		switch i % 3 {
		case 0:
			if err := s.Enqueue([]string{a.name, b.name}, [][]byte{testPDU(n)}, nil); err != nil {
				t.Fatal(err)
			}
			wantA, wantB = append(wantA, "p"+n), append(wantB, "p"+n)
		case 1:
			if err := s.Enqueue([]string{a.name}, nil, []EDU{testEDU(n)}); err != nil {
				t.Fatal(err)
			}
			wantA = append(wantA, "e"+n)
		case 2:
			if err := s.Enqueue([]string{b.name}, [][]byte{testPDU(n)}, []EDU{testEDU(n)}); err != nil {
				t.Fatal(err)
			}
			wantB = append(wantB, "p"+n, "e"+n)
		}
	}
	waitFor(t, "both delivered", 10*time.Second, func() bool {
		return len(a.appliedItems()) == len(wantA) && len(b.appliedItems()) == len(wantB)
	})
	checkOrder(t, "a", a, wantA)
	checkOrder(t, "b", b, wantB)
}

// checkOrder asserts enqueue order as a transaction can express it: PDUs among themselves and
// EDUs among themselves (a transaction keeps them in separate arrays), and every item of a
// transaction enqueued before every item of the next one.
func checkOrder(t *testing.T, name string, r *remote, want []string) {
	t.Helper()
	index := map[string]int{}
	var wantP, wantE []string
	for i, w := range want {
		index[w] = i
		if w[0] == 'p' {
			wantP = append(wantP, w)
		} else {
			wantE = append(wantE, w)
		}
	}
	var gotP, gotE []string
	for _, it := range r.appliedItems() {
		if it[0] == 'p' {
			gotP = append(gotP, it)
		} else {
			gotE = append(gotE, it)
		}
	}
	if strings.Join(gotP, ",") != strings.Join(wantP, ",") || strings.Join(gotE, ",") != strings.Join(wantE, ",") {
		t.Errorf("destination %s order:\n got %v %v\nwant %v %v", name, gotP, gotE, wantP, wantE)
	}
	_, applied := r.snapshot()
	prevMax := -1
	for _, rec := range applied {
		lo, hi := len(want), -1
		for _, p := range rec.Req.PDUs {
			lo, hi = min(lo, index["p"+pduN(p)]), max(hi, index["p"+pduN(p)])
		}
		for _, e := range rec.Req.EDUs {
			lo, hi = min(lo, index["e"+eduN(e)]), max(hi, index["e"+eduN(e)])
		}
		if lo <= prevMax {
			t.Errorf("destination %s: transaction %s carries an item enqueued before one of the previous transaction", name, rec.TxnID)
		}
		prevMax = hi
	}
}

// A failed transaction is retried under the same ID with byte-identical content, then
// dequeued after the 200; the remote applies it once.
func TestRetryReusesTransaction(t *testing.T) {
	h := newHarness(t)
	r := newRemote(t, h.key)
	r.set(func(r *remote) { r.failNext = 3 })
	s := h.sender(t, h.client(t, r), nil)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	if err := s.Enqueue([]string{r.name}, [][]byte{testPDU("1"), testPDU("2")}, []EDU{testEDU("3"), testTyping("4")}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "delivery", 5*time.Second, func() bool { return len(r.appliedItems()) == 4 })
	attempts, applied := r.snapshot()
	if len(attempts) != 4 || len(applied) != 1 {
		t.Fatalf("%d attempts, %d applied; want 4 and 1", len(attempts), len(applied))
	}
	for _, a := range attempts[1:] {
		if a.TxnID != attempts[0].TxnID {
			t.Errorf("retry used txn ID %s, first attempt %s", a.TxnID, attempts[0].TxnID)
		}
		if !bytes.Equal(a.Body, attempts[0].Body) {
			t.Errorf("retry body differs:\n%s\n%s", a.Body, attempts[0].Body)
		}
	}
	if got := strings.Join(r.appliedItems(), ","); got != "p1,p2,e3,e4" {
		t.Errorf("applied %s", got)
	}
	waitFor(t, "queue emptied", 5*time.Second, func() bool { n, _ := s.QueueLen(r.name); return n == 0 })
}

// While a destination is down the sender backs off (the gaps between attempts grow), then
// delivers once it is back; the backing-off gauge follows.
func TestBackoffThenDelivery(t *testing.T) {
	h := newHarness(t)
	r := newRemote(t, h.key)
	r.set(func(r *remote) { r.failAll = true })
	reg := prometheus.NewRegistry()
	s := h.sender(t, h.client(t, r), func(o *Options) {
		o.Registry = reg
		o.BackoffBase, o.BackoffMax = 20*time.Millisecond, 160*time.Millisecond
	})
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	if err := s.Enqueue([]string{r.name}, [][]byte{testPDU("1")}, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "six attempts", 10*time.Second, func() bool { a, _ := r.snapshot(); return len(a) >= 6 })
	// Retry k waits base*2^(k-1) capped at the maximum, jittered within its upper half, so the
	// gap before it is at least half that (timers never fire early): 10, 20, 40, 80, 80 ms.
	attempts, _ := r.snapshot()
	for k := 1; k < 6; k++ {
		floor := min(20*time.Millisecond<<(k-1), 160*time.Millisecond) / 2
		if gap := attempts[k].At.Sub(attempts[k-1].At); gap < floor {
			t.Errorf("gap before retry %d is %v, want >= %v", k, gap, floor)
		}
	}
	if v := metricValue(s.m.backingOff); v != 1 {
		t.Errorf("backing-off gauge %v while failing, want 1", v)
	}
	r.set(func(r *remote) { r.failAll = false })
	waitFor(t, "delivery after recovery", 5*time.Second, func() bool { return len(r.appliedItems()) == 1 })
	waitFor(t, "gauges settle", 5*time.Second, func() bool {
		return metricValue(s.m.backingOff) == 0 && metricValue(s.m.depth) == 0
	})
	if v := metricValue(s.m.failed); v < 6 {
		t.Errorf("failure counter %v, want >= 6", v)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, mf := range mfs {
		if mf.GetName() == "hearth_federation_transactions_sent_total" {
			found = mf.GetMetric()[0].GetCounter().GetValue() == 1
		}
	}
	if !found {
		t.Error("hearth_federation_transactions_sent_total is not 1 on the given registry")
	}
}

// The retry delay doubles up to the cap and is jittered within the upper half.
func TestBackoffDelays(t *testing.T) {
	s := &Sender{o: Options{BackoffBase: 10 * time.Millisecond, BackoffMax: 80 * time.Millisecond}}
	for n := 1; n <= 8; n++ {
		d := min(10*time.Millisecond<<(n-1), 80*time.Millisecond)
		seen := map[time.Duration]bool{}
		for i := 0; i < 200; i++ {
			got := s.backoff(n)
			if got < d/2 || got > d {
				t.Fatalf("backoff(%d) = %v, want in [%v, %v]", n, got, d/2, d)
			}
			seen[got] = true
		}
		if len(seen) < 50 {
			t.Errorf("backoff(%d) took only %d distinct values in 200 draws: no jitter", n, len(seen))
		}
	}
}

// MarkAlive cuts a long backoff short.
func TestMarkAliveRetriesNow(t *testing.T) {
	h := newHarness(t)
	r := newRemote(t, h.key)
	r.set(func(r *remote) { r.failNext = 1 })
	s := h.sender(t, h.client(t, r), func(o *Options) { o.BackoffBase, o.BackoffMax = time.Hour, time.Hour })
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	if err := s.QueuePDU(context.Background(), []string{r.name}, testPDU("1")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "first (failed) attempt", 5*time.Second, func() bool { a, _ := r.snapshot(); return len(a) == 1 })
	waitFor(t, "backoff", 5*time.Second, func() bool { return metricValue(s.m.backingOff) == 1 })
	time.Sleep(50 * time.Millisecond)
	if a, _ := r.snapshot(); len(a) != 1 {
		t.Fatalf("%d attempts during a one-hour backoff", len(a))
	}
	s.MarkAlive(r.name)
	waitFor(t, "delivery after MarkAlive", 5*time.Second, func() bool { return len(r.appliedItems()) == 1 })
}

// Per-PDU errors in a 200 answer are final: the queue is emptied, nothing is resent.
func TestPDUErrorsNotRetried(t *testing.T) {
	h := newHarness(t)
	r := newRemote(t, h.key)
	r.set(func(r *remote) { r.rejectN = map[string]bool{"2": true} })
	s := h.sender(t, h.client(t, r), nil)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	if err := s.Enqueue([]string{r.name}, [][]byte{testPDU("1"), testPDU("2")}, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "queue emptied", 5*time.Second, func() bool { n, _ := s.QueueLen(r.name); return n == 0 && len(r.appliedItems()) == 2 })
	time.Sleep(100 * time.Millisecond)
	if a, _ := r.snapshot(); len(a) != 1 {
		t.Errorf("%d attempts, want 1", len(a))
	}
}

// A queue left non-empty by a stopped process is delivered after restart, exactly once: the
// in-flight transaction keeps its ID, so a remote that had applied it (its 200 was lost)
// answers from its cache, and the rest follows.
func TestRestartDeliversExactlyOnce(t *testing.T) {
	h := newHarness(t)
	r := newRemote(t, h.key)
	// The first transaction is applied but its answer is lost; then the remote is down.
	r.set(func(r *remote) { r.loseAck = 1; r.failNext = 0 })
	s := h.sender(t, h.client(t, r), func(o *Options) { o.BackoffBase, o.BackoffMax = time.Hour, time.Hour })
	var pdus [][]byte
	for _, n := range seq("", 0, 70) {
		pdus = append(pdus, testPDU(n))
	}
	if err := s.Enqueue([]string{r.name}, pdus, []EDU{testEDU("x")}); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "first attempt", 5*time.Second, func() bool { a, _ := r.snapshot(); return len(a) == 1 })
	waitFor(t, "backoff", 5*time.Second, func() bool { return metricValue(s.m.backingOff) == 1 })
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	firstID := func() string { a, _ := r.snapshot(); return a[0].TxnID }()

	h.reopen()
	s2 := h.sender(t, h.client(t, r), nil)
	if n, _ := s2.QueueLen(r.name); n != 71 {
		t.Fatalf("queue after restart holds %d entries, want 71", n)
	}
	if v := metricValue(s2.m.depth); v != 71 {
		t.Errorf("depth gauge after restart %v, want 71", v)
	}
	if err := s2.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "queue emptied", 10*time.Second, func() bool { n, _ := s2.QueueLen(r.name); return n == 0 })
	waitFor(t, "depth gauge at 0", 5*time.Second, func() bool { return metricValue(s2.m.depth) == 0 })
	attempts, applied := r.snapshot()
	if attempts[1].TxnID != firstID {
		t.Errorf("first send after restart used txn %s, want the in-flight %s", attempts[1].TxnID, firstID)
	}
	counts := map[string]int{}
	for _, it := range r.appliedItems() {
		counts[it]++
	}
	for _, it := range append(seq("p", 0, 70), "ex") {
		if counts[it] != 1 {
			t.Errorf("%s applied %d times", it, counts[it])
		}
	}
	if len(applied) != 2 {
		t.Errorf("%d distinct transactions applied, want 2 (50 PDUs, then 20 PDUs + 1 EDU)", len(applied))
	}
}

// One destination that never answers does not hold up another; Close cancels the hung send
// after the grace period and its items stay queued.
func TestSlowDestinationDoesNotBlock(t *testing.T) {
	h := newHarness(t)
	slow, fast := newRemote(t, h.key), newRemote(t, h.key)
	hang := make(chan struct{})
	defer close(hang)
	slow.set(func(r *remote) { r.block = hang })
	s := h.sender(t, h.client(t, slow), func(o *Options) { o.CloseGrace = 100 * time.Millisecond })
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		if err := s.Enqueue([]string{slow.name, fast.name}, [][]byte{testPDU(strconv.Itoa(i))}, nil); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "fast destination served", 20*time.Second, func() bool { return len(fast.appliedItems()) == 5 })
	waitFor(t, "the slow send to arrive", 20*time.Second, func() bool { a, _ := slow.snapshot(); return len(a) == 1 })
	if n := len(slow.appliedItems()); n != 0 {
		t.Errorf("slow destination applied %d items while hung", n)
	}
	start := time.Now()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Close took %v with a hung send", d)
	}
	if n, _ := s.QueueLen(slow.name); n != 5 {
		t.Errorf("slow queue holds %d after Close, want 5", n)
	}
}

// Typing and presence are not written to the store: after a restart only the persistent
// items go out. A failing destination drops new ephemeral EDUs.
func TestEphemeralNotPersisted(t *testing.T) {
	h := newHarness(t)
	r := newRemote(t, h.key)
	s := h.sender(t, h.client(t, r), nil)
	if err := s.Enqueue([]string{r.name}, nil, []EDU{testTyping("t1"), testEDU("r1")}); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.QueueLen(r.name); n != 1 {
		t.Fatalf("store holds %d entries, want 1 (the typing EDU must stay in memory)", n)
	}
	_ = s.Close()
	h.reopen()
	s2 := h.sender(t, h.client(t, r), func(o *Options) { o.BackoffBase, o.BackoffMax = time.Hour, time.Hour })
	if err := s2.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "persistent EDU delivered", 5*time.Second, func() bool { return len(r.appliedItems()) == 1 })
	if got := strings.Join(r.appliedItems(), ","); got != "er1" {
		t.Errorf("after restart the remote got %s, want only er1", got)
	}

	// Ephemeral EDUs while the destination works go out; while it fails they are dropped.
	if err := s2.Enqueue([]string{r.name}, nil, []EDU{testTyping("t2")}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "typing delivered", 5*time.Second, func() bool { return len(r.appliedItems()) == 2 })
	r.set(func(r *remote) { r.failAll = true })
	if err := s2.Enqueue([]string{r.name}, nil, []EDU{testEDU("r2")}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "backoff", 5*time.Second, func() bool { return metricValue(s2.m.backingOff) == 1 })
	if err := s2.Enqueue([]string{r.name}, nil, []EDU{testTyping("t3")}); err != nil {
		t.Fatal(err)
	}
	if v := metricValue(s2.m.ephemeralDropped); v != 1 {
		t.Errorf("ephemeral dropped %v, want 1", v)
	}
	r.set(func(r *remote) { r.failAll = false })
	s2.MarkAlive(r.name)
	waitFor(t, "receipt delivered", 5*time.Second, func() bool { return len(r.appliedItems()) == 3 })
	if got := strings.Join(r.appliedItems(), ","); got != "er1,et2,er2" {
		t.Errorf("remote got %s, want er1,et2,er2", got)
	}
}

func senderGoroutines() int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	return strings.Count(string(buf), "sender.(*Sender).run(")
}

// Close waits for every worker, including one in backoff and one in a hung send.
func TestCloseLeavesNoGoroutines(t *testing.T) {
	h := newHarness(t)
	ok, down, hung := newRemote(t, h.key), newRemote(t, h.key), newRemote(t, h.key)
	down.set(func(r *remote) { r.failAll = true })
	hang := make(chan struct{})
	defer close(hang)
	hung.set(func(r *remote) { r.block = hang })
	c := h.client(t, ok)
	before := runtime.NumGoroutine()
	s := h.sender(t, c, func(o *Options) {
		o.CloseGrace = 50 * time.Millisecond
		o.BackoffBase = time.Hour
		o.BackoffMax = time.Hour
	})
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	// ok's queue gets a long backlog so its worker is likely busy at Close.
	for i := 0; i < 20; i++ {
		if err := s.Enqueue([]string{ok.name, down.name, hung.name}, [][]byte{testPDU(strconv.Itoa(i))}, nil); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "workers busy", 5*time.Second, func() bool {
		a, _ := down.snapshot()
		b, _ := hung.snapshot()
		return len(a) > 0 && len(b) > 0
	})
	if n := senderGoroutines(); n < 2 {
		t.Fatalf("%d worker goroutines before Close, want >= 2", n)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Close has waited for every worker's Done; the goroutines themselves finish returning
	// just after it.
	waitFor(t, "worker goroutines gone", time.Second, func() bool { return senderGoroutines() == 0 })
	if err := s.Enqueue([]string{ok.name}, [][]byte{testPDU("late")}, nil); err != ErrClosed {
		t.Errorf("Enqueue after Close: %v, want ErrClosed", err)
	}
	closeIdle(c)
	deadline := time.Now().Add(3 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if runtime.NumGoroutine() > before {
		buf := make([]byte, 1<<20)
		t.Errorf("%d goroutines, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
	}
}

// Bad input is refused before anything is written.
func TestEnqueueRejectsBadInput(t *testing.T) {
	h := newHarness(t)
	r := newRemote(t, h.key)
	s := h.sender(t, h.client(t, r), nil)
	cases := []struct {
		name  string
		dests []string
		pdus  [][]byte
		edus  []EDU
	}{
		{"PDU not an object", []string{r.name}, [][]byte{[]byte(`[1]`)}, nil},
		{"PDU not JSON", []string{r.name}, [][]byte{[]byte(`{"a":`)}, nil},
		{"EDU without type", []string{r.name}, nil, []EDU{{Content: []byte(`{}`)}}},
		{"EDU content not an object", []string{r.name}, nil, []EDU{{Type: "m.x", Content: []byte(`"s"`)}}},
		{"destination with NUL", []string{"a\x00b"}, [][]byte{testPDU("1")}, nil},
		{"destination with slash", []string{"a/b"}, [][]byte{testPDU("1")}, nil},
	}
	for _, c := range cases {
		if err := s.Enqueue(c.dests, c.pdus, c.edus); err == nil {
			t.Errorf("%s: accepted", c.name)
		}
	}
	// Our own name and duplicates are skipped, not errors.
	if err := s.Enqueue([]string{origin, r.name, r.name}, [][]byte{testPDU("1")}, nil); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.QueueLen(r.name); n != 1 {
		t.Errorf("queue holds %d, want 1", n)
	}
	if n, _ := s.QueueLen(origin); n != 0 {
		t.Errorf("own server queued %d", n)
	}
}

// Many destinations draining the same shared PDUs at once (their dequeues all update the same
// reference counts) each get everything once, in order, and the store ends empty.
func TestSharedPDUsManyDestinations(t *testing.T) {
	h := newHarness(t)
	var rs []*remote
	var names []string
	for i := 0; i < 8; i++ {
		r := newRemote(t, h.key)
		rs = append(rs, r)
		names = append(names, r.name)
	}
	s := h.sender(t, h.client(t, rs[0]), nil)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 30; i++ {
		if err := s.Enqueue(names, [][]byte{testPDU(strconv.Itoa(i))}, nil); err != nil {
			t.Fatal(err)
		}
	}
	want := strings.Join(seq("p", 0, 30), ",")
	for _, r := range rs {
		waitFor(t, "delivery to "+r.name, 10*time.Second, func() bool { return len(r.appliedItems()) >= 30 })
		if got := strings.Join(r.appliedItems(), ","); got != want {
			t.Errorf("%s got %s", r.name, got)
		}
	}
	waitFor(t, "queues empty", 5*time.Second, func() bool { return metricValue(s.m.depth) == 0 })
	for _, n := range names {
		if q, _ := s.QueueLen(n); q != 0 {
			t.Errorf("%s still holds %d", n, q)
		}
	}
}
