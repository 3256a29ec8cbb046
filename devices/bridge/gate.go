package bridge

import (
	"math"
	"time"

	"github.com/hearth-home/hearth/devices"
)

// gate decides when a device's state is worth posting, so a chatty sensor cannot flood a
// room. A change is significant when anything but a sensor number changed (on/off, detected,
// availability, brightness, colour ...) or a sensor number (Value, a Readings entry) moved by at
// least minDelta from what was last posted. A significant change is posted at once if the last
// post is minInterval old, otherwise when that interval is over (the caller re-runs the gate
// then, with the latest state, so several changes in between become one post). Comparing with
// the last posted value, not the last reported one, means a slow drift is posted once it has
// added up to minDelta.
type gate struct {
	minInterval time.Duration
	minDelta    float64

	posted bool
	lastAt time.Time
	last   devices.State
}

// decide says whether s should be posted now; if not but it will be later, wait is how long
// until then (0 means the change is not significant and nothing needs to happen).
func (g *gate) decide(s devices.State, now time.Time) (post bool, wait time.Duration) {
	if g.posted && !g.significant(s) {
		return false, 0
	}
	if !g.posted || now.Sub(g.lastAt) >= g.minInterval {
		return true, 0
	}
	return false, g.lastAt.Add(g.minInterval).Sub(now)
}

// mark records a post of s at now.
//
// The device's first post does not start the interval: it is the device appearing (its state
// event, no reading notice), and a discovered device usually reports its first value a few
// milliseconds after its configuration. Starting the clock there held that value back for
// minInterval, and its late post restarted the clock, holding the device's next readings too
// (the 100-500 ms spikes of issue 7). The flood bound is unchanged but for that one post: from the second post on, at
// most one post per interval.
func (g *gate) mark(s devices.State, now time.Time) {
	if g.posted {
		g.lastAt = now
	}
	g.posted, g.last = true, s.Clone()
}

func (g *gate) significant(s devices.State) bool {
	l := g.last
	if l.Available != s.Available || !eqPtr(l.On, s.On) || !eqPtr(l.Detected, s.Detected) ||
		!eqPtr(l.Brightness, s.Brightness) || !eqPtr(l.ColorTemp, s.ColorTemp) || !eqPtr(l.Color, s.Color) {
		return true
	}
	if (l.Value == nil) != (s.Value == nil) || (s.Value != nil && g.moved(*l.Value, *s.Value)) {
		return true
	}
	for k, v := range s.Readings {
		old, ok := l.Readings[k]
		if !ok || g.moved(old, v) {
			return true
		}
	}
	return false
}

func (g *gate) moved(a, b float64) bool { return math.Abs(a-b) >= g.minDelta && a != b }

func eqPtr[T comparable](a, b *T) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}
