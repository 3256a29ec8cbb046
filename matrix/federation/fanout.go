package federation

import (
	"context"
	"encoding/json"
	"slices"
	"time"

	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/appliance/bus"
	"github.com/hearth-home/hearth/matrix/change"
	"github.com/hearth-home/hearth/matrix/rooms"
)

// fanOut queues an event for every server with a joined member in the room except this one and
// those in skip.
func (s *Service) fanOut(ctx context.Context, roomID id.RoomID, pdu json.RawMessage, skip ...string) error {
	servers, err := s.rooms.JoinedServers(ctx, roomID)
	if err != nil {
		return err
	}
	dests := servers[:0]
	for _, srv := range servers {
		if srv != s.server && !slices.Contains(skip, srv) {
			dests = append(dests, srv)
		}
	}
	if len(dests) == 0 || s.queue == nil {
		return nil
	}
	return s.queue.QueuePDU(ctx, dests, pdu)
}

// Watch sends this server's own events to the other servers in their rooms. It is a worker over
// the store, not over the bus: it reads events after a persisted position (OutgoingFrom) and
// records the position only after the events are in the persistent queues, so an event
// committed just before a crash or shutdown still goes out after the restart. The bus only
// wakes it. Events from other servers are not forwarded (their origin sends them), except the
// joins and leaves this server accepted through send_* (acceptMembership queues those itself).
func (s *Service) Watch(b *bus.Bus[change.Change]) func() {
	sub := b.SubscribeQueue(64)
	done, stop := make(chan struct{}), make(chan struct{})
	pos, ok, err := s.rooms.FanoutPos()
	if err != nil || !ok {
		// First start (or an unreadable position): begin at the present.
		pos = s.rooms.Watermark()
		if err := s.rooms.SetFanoutPos(pos); err != nil {
			s.log.Warn("fan out: record start", "err", err)
		}
	}
	go func() {
		defer close(done)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		saved, lastSave := pos, time.Now()
		save := func(force bool) {
			// Positions with nothing queued need not be durable at once (rescanning them
			// after a crash queues nothing), so they are written at most every 30 s: a home
			// server without peers would otherwise pay a second durable write per event.
			if pos == saved || (!force && time.Since(lastSave) < 30*time.Second) {
				return
			}
			if err := s.rooms.SetFanoutPos(pos); err != nil {
				s.log.Warn("fan out: record position", "err", err)
				return
			}
			saved, lastSave = pos, time.Now()
		}
		for {
			var queued bool
			pos, queued = s.fanOutFrom(pos)
			save(queued)
			select {
			case <-stop:
				pos, _ = s.fanOutFrom(pos) // what committed before shutdown still goes
				save(true)
				return
			case <-sub.C():
			case <-tick.C:
			}
		}
	}()
	return func() { b.Unsubscribe(sub); close(stop); <-done }
}

// fanOutFrom queues every local event after pos and returns the new position and whether
// anything was queued (the position must then be recorded before the events could be lost).
func (s *Service) fanOutFrom(pos uint64) (uint64, bool) {
	queued := false
	for {
		out, last, err := s.rooms.OutgoingFrom(pos, 100)
		if err != nil {
			s.log.Warn("fan out: read events", "err", err)
			return pos, queued
		}
		for _, o := range out {
			if s.sendLocal(o) {
				queued = true
			}
		}
		if last == pos || len(out) < 100 {
			return last, queued
		}
		pos = last
	}
}

// sendLocal queues one of our events for the servers in its room, reporting whether it went to
// any. A kicked or banned remote user's server is no longer in the joined set but must still
// learn of it; an invitee's server already has an invite through /invite, and gets it again
// here when it is in the room, since it then needs it in the room's DAG.
func (s *Service) sendLocal(c rooms.Outgoing) bool {
	if s.queue == nil {
		return false
	}
	ctx := context.Background()
	dests, err := s.rooms.JoinedServers(ctx, c.RoomID)
	if err != nil {
		s.log.Warn("fan out", "pos", c.Pos, "err", err)
		return false
	}
	if c.Type == "m.room.member" && c.StateKey != nil && (c.Membership == "leave" || c.Membership == "ban") {
		if srv := id.UserID(*c.StateKey).Homeserver(); !slices.Contains(dests, srv) {
			dests = append(dests, srv)
		}
	}
	dests = slices.DeleteFunc(dests, func(d string) bool { return d == s.server })
	if len(dests) == 0 {
		return false
	}
	if err := s.queue.QueuePDU(ctx, dests, c.PDU); err != nil {
		s.log.Warn("fan out", "pos", c.Pos, "err", err)
		return false
	}
	return true
}
