package bridge

import (
	"testing"
	"time"

	"github.com/hearth-home/hearth/devices"
)

func TestGateThresholdAndInterval(t *testing.T) {
	g := gate{minInterval: 10 * time.Second, minDelta: 0.5}
	t0 := time.Unix(1000, 0)
	temp := func(v float64) devices.State { return devices.State{Available: true, Value: &v} }

	// The first state is always posted.
	if post, _ := g.decide(temp(20), t0); !post {
		t.Fatal("first state not posted")
	}
	g.mark(temp(20), t0)

	// Below the delta: nothing, not even later.
	if post, wait := g.decide(temp(20.3), t0.Add(time.Minute)); post || wait != 0 {
		t.Fatalf("small change: post=%v wait=%v", post, wait)
	}
	// Drift adds up against the last posted value, not the last report.
	if post, _ := g.decide(temp(20.6), t0.Add(time.Minute)); !post {
		t.Fatal("drift of 0.6 not posted")
	}
	g.mark(temp(20.6), t0.Add(time.Minute))

	// A big change within the interval waits for the rest of it.
	post, wait := g.decide(temp(25), t0.Add(time.Minute+3*time.Second))
	if post || wait != 7*time.Second {
		t.Fatalf("within interval: post=%v wait=%v", post, wait)
	}
	if post, _ := g.decide(temp(25), t0.Add(time.Minute+10*time.Second)); !post {
		t.Fatal("not posted after the interval")
	}

	// Non-numeric changes ignore the delta (but not the interval).
	sw := gate{minInterval: time.Second, minDelta: 100}
	on, off := true, false
	sw.mark(devices.State{Available: true, On: &on}, t0)
	if post, _ := sw.decide(devices.State{Available: true, On: &off}, t0.Add(2*time.Second)); !post {
		t.Fatal("on/off change gated by delta")
	}
	if post, _ := sw.decide(devices.State{Available: false, On: &on}, t0.Add(2*time.Second)); !post {
		t.Fatal("availability change not posted")
	}
	// A new reading key is a change; a small move of an existing one is not.
	rd := gate{minInterval: 0, minDelta: 1}
	rd.mark(devices.State{Readings: map[string]float64{"battery": 80}}, t0)
	if post, _ := rd.decide(devices.State{Readings: map[string]float64{"battery": 79.5}}, t0); post {
		t.Fatal("reading below delta posted")
	}
	if post, _ := rd.decide(devices.State{Readings: map[string]float64{"battery": 80, "height": 1}}, t0); !post {
		t.Fatal("new reading key not posted")
	}
}

// TestGateFloodBound is the flood guarantee: 1,000 reports a second for a minute from one
// sensor that moves by more than the delta every time yield at most one post per interval.
func TestGateFloodBound(t *testing.T) {
	g := gate{minInterval: 5 * time.Second, minDelta: 0.1}
	t0 := time.Unix(0, 0)
	posts := 0
	for i := range 60_000 {
		now := t0.Add(time.Duration(i) * time.Millisecond)
		v := float64(i % 2 * 10)
		s := devices.State{Available: true, Value: &v}
		if post, _ := g.decide(s, now); post {
			g.mark(s, now)
			posts++
		}
	}
	if posts > 13 || posts < 11 {
		t.Fatalf("%d posts in 60 s with a 5 s interval", posts)
	}
}

// TestGateFirstPostDoesNotHoldNextChange: a discovered device's first post (it appearing, often
// before its first value) must not hold the value that follows, nor the readings of the next
// interval; from the second post on the interval applies as before.
func TestGateFirstPostDoesNotHoldNextChange(t *testing.T) {
	g := gate{minInterval: time.Second, minDelta: 0.1}
	t0 := time.Unix(1000, 0)
	appeared := devices.State{Available: true}
	if post, _ := g.decide(appeared, t0); !post {
		t.Fatal("first state not posted")
	}
	g.mark(appeared, t0)

	v := 21.0
	first := devices.State{Available: true, Value: &v}
	post, wait := g.decide(first, t0.Add(5*time.Millisecond))
	if !post || wait != 0 {
		t.Fatalf("first value after the device appeared: post=%v wait=%v, want posted at once", post, wait)
	}
	g.mark(first, t0.Add(5*time.Millisecond))

	w := 23.0
	post, wait = g.decide(devices.State{Available: true, Value: &w}, t0.Add(300*time.Millisecond))
	if post || wait != 705*time.Millisecond {
		t.Fatalf("second change within the interval: post=%v wait=%v, want held 705ms", post, wait)
	}
}
