package hue

import (
	"sync"
	"testing"
	"time"

	"github.com/hearth-home/hearth/devices"
)

// recSink records what an adapter announces, merging reports the way a registry would.
type recSink struct {
	mu      sync.Mutex
	devs    map[string]devices.Device
	states  map[string]devices.State
	reports map[string]int
	removed []string
}

func newRecSink() *recSink {
	return &recSink{devs: map[string]devices.Device{}, states: map[string]devices.State{}, reports: map[string]int{}}
}

func (s *recSink) Upsert(d devices.Device) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.devs[d.ID] = d
}

func (s *recSink) Remove(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.devs, id)
	delete(s.states, id)
	s.removed = append(s.removed, id)
}

func (s *recSink) Report(id string, st devices.State) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := s.states[id]
	cur.Available, cur.LastSeen = st.Available, st.LastSeen
	if st.On != nil {
		cur.On = st.On
	}
	if st.Brightness != nil {
		cur.Brightness = st.Brightness
	}
	if st.ColorTemp != nil {
		cur.ColorTemp = st.ColorTemp
	}
	if st.Color != nil {
		cur.Color = st.Color
	}
	s.states[id] = cur
	s.reports[id]++
}

func (s *recSink) device(id string) (devices.Device, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.devs[id]
	return d, ok
}

func (s *recSink) state(id string) devices.State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.states[id]
}

// waitFor polls cond until it holds or five seconds pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func ptrEq[T comparable](p *T, v T) bool { return p != nil && *p == v }
