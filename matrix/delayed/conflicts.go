package delayed

import (
	"github.com/hearth-home/hearth/appliance/bus"
	"github.com/hearth-home/hearth/matrix/change"
)

// Watch cancels pending delayed state events that a later state event from another user
// overwrites (room, type and state key alike): sending the delayed one afterwards would undo a
// newer decision, as when someone else ends a call the delayed event would mark as left. The
// user's own later state events do not cancel: MatrixRTC clients update their membership and
// keep the delayed "leave" scheduled. Changes lost to a lagging queue leave the delayed event
// scheduled, which is the behaviour without this rule.
func (s *Service) Watch(b *bus.Bus[change.Change]) {
	sub := b.SubscribeQueue(256)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer b.Unsubscribe(sub)
		for {
			select {
			case <-s.ctx.Done():
				return
			case c := <-sub.C():
				if c.Kind == change.Event && c.StateKey != nil {
					s.cancelOverwritten(c)
				}
			}
		}
	}()
}

// cancelOverwritten cancels the delayed state events c overwrites.
func (s *Service) cancelOverwritten(c change.Change) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.pending {
		if r.StateKey == nil || r.RoomID != c.RoomID || r.Type != c.EventType || *r.StateKey != *c.StateKey {
			continue
		}
		if r.User == c.Sender || c.Pos <= r.Pos {
			continue
		}
		if err := s.removeLocked(r); err != nil {
			s.log.Error("delayed events: cancel overwritten", "delay_id", r.DelayID, "err", err)
			continue
		}
		s.log.Debug("delayed state event cancelled by a later state event", "delay_id", r.DelayID, "event_id", c.EventID)
	}
}
