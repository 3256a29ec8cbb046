package delayed

import (
	"sort"
	"time"
)

// idle is how long the loop sleeps with nothing scheduled; a schedule or restart nudges it.
const idle = time.Hour

// run sends each delayed event when it is due. One goroutine does all timed sends, in order of
// due time, so events due together reach the room in the order they were meant for.
func (s *Service) run() {
	defer s.wg.Done()
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		next := s.sendDue()
		wait := idle
		if !next.IsZero() {
			wait = max(next.Sub(s.now()), 0)
		}
		t.Reset(wait)
		select {
		case <-s.ctx.Done():
			return
		case <-s.wake:
			if !t.Stop() {
				select {
				case <-t.C:
				default:
				}
			}
		case <-t.C:
		}
	}
}

// sendDue sends every event that is due and returns when the next one is (zero when none).
func (s *Service) sendDue() time.Time {
	now := s.now()
	s.mu.Lock()
	var due []*Record
	var next time.Time
	for _, r := range s.pending {
		if d := r.Due(); !d.After(now) {
			due = append(due, r)
		} else if next.IsZero() || d.Before(next) {
			next = d
		}
	}
	for _, r := range due {
		// Claimed: no cancel or restart can race the send; still listed until sent.
		delete(s.pending, r.DelayID)
		s.sending[r.DelayID] = r
	}
	s.mu.Unlock()
	sort.Slice(due, func(i, j int) bool {
		if due[i].DueMS() != due[j].DueMS() {
			return due[i].DueMS() < due[j].DueMS()
		}
		return due[i].DelayID < due[j].DelayID
	})
	for i, r := range due {
		if s.ctx.Err() != nil {
			// Shutting down: what is left stays in the store and goes out at the next start.
			for _, rest := range due[i:] {
				s.unclaim(rest)
			}
			return time.Time{}
		}
		if err := s.deliver(s.ctx, r); err != nil {
			if s.ctx.Err() != nil {
				s.unclaim(r)
				continue
			}
			// MSC4140: a timed send that fails is not retried; the user can see it gone.
			s.log.Warn("delayed event not sent", "delay_id", r.DelayID, "room", r.RoomID, "type", r.Type, "err", err)
		}
		if err := s.finish(r); err != nil {
			s.log.Error("delayed events", "err", err)
		}
	}
	if len(due) > 0 {
		// Sends take time; anything that fell due meanwhile is picked up at once.
		return s.now()
	}
	return next
}
