package store

import (
	"sync"
)

// Note is something a committed transaction wants announced, tagged with the stream position it
// was written at. The store does not look inside Value.
type Note struct {
	Pos   uint64
	Value any
}

// Stream hands out global stream positions and keeps the watermark.
//
// Ordering contract: positions are allocated in increasing order; a position is "done" once its
// transaction has committed or failed. The watermark is the highest position p such that every
// position <= p is done. Notes are handed to the sink strictly in position order and only once the
// watermark has passed them, so a consumer that reads up to the watermark after a note has seen
// everything the note announces and everything before it.
type Stream struct {
	mu        sync.Mutex
	next      uint64            // next position to allocate
	watermark uint64            // every position <= watermark is done
	done      map[uint64][]Note // finished positions above the watermark, with their notes
	sink      func([]Note)
	deliverMu sync.Mutex // keeps deliveries in order across goroutines
	changed   chan struct{}
}

func newStream(last uint64) *Stream {
	return &Stream{next: last + 1, watermark: last, done: map[uint64][]Note{}, changed: make(chan struct{})}
}

// SetSink sets the function that receives notes once they are visible. Call before serving.
func (s *Stream) SetSink(fn func([]Note)) {
	s.mu.Lock()
	s.sink = fn
	s.mu.Unlock()
}

// Alloc reserves the next stream position.
func (s *Stream) Alloc() uint64 {
	s.mu.Lock()
	p := s.next
	s.next++
	s.mu.Unlock()
	return p
}

// Watermark returns the highest position below which everything has committed.
func (s *Stream) Watermark() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.watermark
}

// Changed returns a channel closed the next time the watermark moves.
func (s *Stream) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

// finish marks positions done, attaching notes to the first of them.
func (s *Stream) finish(positions []uint64, notes []Note) {
	if len(positions) == 0 {
		return
	}
	s.deliverMu.Lock()
	defer s.deliverMu.Unlock()
	s.mu.Lock()
	byPos := map[uint64][]Note{}
	for _, n := range notes {
		byPos[n.Pos] = append(byPos[n.Pos], n)
	}
	for _, p := range positions {
		s.done[p] = byPos[p]
	}
	var out []Note
	moved := false
	for {
		ns, ok := s.done[s.watermark+1]
		if !ok {
			break
		}
		delete(s.done, s.watermark+1)
		s.watermark++
		moved = true
		out = append(out, ns...)
	}
	if moved {
		close(s.changed)
		s.changed = make(chan struct{})
	}
	sink := s.sink
	s.mu.Unlock()
	if sink != nil && len(out) > 0 {
		sink(out)
	}
}
