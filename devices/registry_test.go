package devices

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testAdapter announces what the test tells it to and records commands.
type testAdapter struct {
	name  string
	devs  []Device
	runs  atomic.Int32
	fail  atomic.Bool // Run returns at once with an error
	sinkC chan Sink

	mu   sync.Mutex
	cmds []string
}

func (a *testAdapter) Name() string { return a.name }

func (a *testAdapter) Run(ctx context.Context, sink Sink) error {
	a.runs.Add(1)
	if a.fail.Load() {
		return errors.New("cannot connect")
	}
	for _, d := range a.devs {
		sink.Upsert(d)
		sink.Report(d.ID, State{Available: true})
	}
	if a.sinkC != nil {
		a.sinkC <- sink
	}
	<-ctx.Done()
	return nil
}

func (a *testAdapter) Command(_ context.Context, id string, c Command) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	on := "nil"
	if c.On != nil && *c.On {
		on = "on"
	} else if c.On != nil {
		on = "off"
	}
	a.cmds = append(a.cmds, id+"="+on)
	return nil
}

func ptr[T any](v T) *T { return &v }

func TestRegistryMergeAndCoalesce(t *testing.T) {
	r := NewRegistry(nil)
	sub := r.Subscribe()
	defer sub.Close()
	r.Upsert(Device{ID: "t:lamp", Name: "Lamp", Kind: Light})
	r.Report("t:lamp", State{Available: true, On: ptr(true), Brightness: ptr(40)})
	for i := range 100 { // a chatty device: one pending change, latest state
		r.Report("t:lamp", State{Available: true, Brightness: ptr(i)})
	}
	r.Report("t:unknown", State{Available: true, On: ptr(true)})
	select {
	case <-sub.Wait():
	default:
		t.Fatal("subscriber not woken")
	}
	got := sub.Take()
	if len(got) != 1 || got[0].ID != "t:lamp" || !got[0].Upserted || !got[0].Reported {
		t.Fatalf("changes = %+v", got)
	}
	e, ok := r.Get("t:lamp")
	if !ok || e.State.On == nil || !*e.State.On || *e.State.Brightness != 99 {
		t.Fatalf("merged state = %+v", e.State)
	}
	if _, ok := r.Get("t:unknown"); ok {
		t.Fatal("a report created a device")
	}
	// The same value again is not a change; LastSeen alone is not either.
	r.Report("t:lamp", State{Available: true, Brightness: ptr(99)})
	if got := sub.Take(); len(got) != 0 {
		t.Fatalf("unchanged report produced %+v", got)
	}
	// Readings merge key by key.
	r.Report("t:lamp", State{Available: true, Readings: map[string]float64{"a": 1}})
	r.Report("t:lamp", State{Available: true, Readings: map[string]float64{"b": 2}})
	e, _ = r.Get("t:lamp")
	if e.State.Readings["a"] != 1 || e.State.Readings["b"] != 2 {
		t.Fatalf("readings = %v", e.State.Readings)
	}
	// The returned state is a copy.
	*e.State.Brightness = 5
	if e2, _ := r.Get("t:lamp"); *e2.State.Brightness != 99 {
		t.Fatal("Get returned shared state")
	}
	r.Remove("t:lamp")
	got = sub.Take()
	if len(got) != 1 || !got[0].Removed || got[0].Reported {
		t.Fatalf("remove = %+v", got)
	}
	if len(r.List()) != 0 {
		t.Fatal("removed device listed")
	}
}

func TestRegistrySubscribeSeesExisting(t *testing.T) {
	r := NewRegistry(nil)
	r.Upsert(Device{ID: "t:b", Kind: Switch})
	r.Upsert(Device{ID: "t:a", Kind: Switch})
	sub := r.Subscribe()
	got := sub.Take()
	if len(got) != 2 || got[0].ID != "t:a" || got[1].ID != "t:b" || !got[0].Upserted {
		t.Fatalf("initial = %+v", got)
	}
}

func TestRegistryRunRoutesAndRestarts(t *testing.T) {
	r := NewRegistry(nil)
	r.MinBackoff, r.MaxBackoff = 10*time.Millisecond, 20*time.Millisecond
	// The adapter named "mqtt" announces a "z2m:" device: commands follow the owner, not the prefix.
	a := &testAdapter{name: "mqtt", devs: []Device{{ID: "z2m:lamp", Kind: Light}}, sinkC: make(chan Sink, 4)}
	b := &testAdapter{name: "flaky"}
	b.fail.Store(true)
	if err := r.Add(a); err != nil {
		t.Fatal(err)
	}
	if err := r.Add(b); err != nil {
		t.Fatal(err)
	}
	if err := r.Add(&testAdapter{name: "mqtt"}); err == nil {
		t.Fatal("duplicate adapter accepted")
	}
	if err := r.Add(&testAdapter{name: "a:b"}); err == nil {
		t.Fatal("adapter name with ':' accepted")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	<-a.sinkC
	if err := r.Command(ctx, "z2m:lamp", Command{On: ptr(true)}); err != nil {
		t.Fatal(err)
	}
	if err := r.Command(ctx, "z2m:nope", Command{}); !errors.Is(err, ErrUnknownDevice) {
		t.Fatalf("unknown device: %v", err)
	}
	a.mu.Lock()
	if len(a.cmds) != 1 || a.cmds[0] != "z2m:lamp=on" {
		t.Fatalf("commands = %v", a.cmds)
	}
	a.mu.Unlock()
	deadline := time.Now().Add(5 * time.Second)
	for b.runs.Load() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("failing adapter ran %d times", b.runs.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if a.runs.Load() != 1 {
		t.Fatalf("healthy adapter restarted: %d runs", a.runs.Load())
	}
}

func TestRegistryMarksUnavailableWhenAdapterStops(t *testing.T) {
	r := NewRegistry(nil)
	r.MinBackoff, r.MaxBackoff = time.Hour, time.Hour // no second run during the test
	a := &stoppingAdapter{}
	if err := r.Add(a); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.Run(ctx)
	deadline := time.Now().Add(5 * time.Second)
	for {
		e, ok := r.Get("stop:x")
		if ok && !e.State.Available {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("device still %+v", e)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// stoppingAdapter announces one device and then panics, as a broken adapter might.
type stoppingAdapter struct{}

func (stoppingAdapter) Name() string { return "stop" }
func (stoppingAdapter) Run(_ context.Context, sink Sink) error {
	sink.Upsert(Device{ID: "stop:x", Kind: Switch})
	sink.Report("stop:x", State{Available: true})
	panic("adapter bug")
}
func (stoppingAdapter) Command(context.Context, string, Command) error { return nil }
