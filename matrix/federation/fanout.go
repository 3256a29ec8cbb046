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
		for {
			pos = s.fanOutFrom(pos)
			select {
			case <-stop:
				s.fanOutFrom(pos) // what committed before shutdown still goes
				return
			case <-sub.C():
			case <-tick.C:
			}
		}
	}()
	return func() { b.Unsubscribe(sub); close(stop); <-done }
}

// fanOutFrom queues every local event after pos and returns the new position.
func (s *Service) fanOutFrom(pos uint64) uint64 {
	for {
		out, last, err := s.rooms.OutgoingFrom(pos, 100)
		if err != nil {
			s.log.Warn("fan out: read events", "err", err)
			return pos
		}
		for _, o := range out {
			s.sendLocal(o)
		}
		if last == pos {
			return pos
		}
		if err := s.rooms.SetFanoutPos(last); err != nil {
			s.log.Warn("fan out: record position", "err", err)
			return pos
		}
		pos = last
		if len(out) < 100 {
			return pos
		}
	}
}

func (s *Service) sendLocal(c rooms.Outgoing) {
	ctx := context.Background()
	raw := c.PDU
	// An invitee's server got the invite through /invite already; when it is in the room it
	// also needs it in the room's DAG, so it is not skipped here.
	var skip []string
	extra := []string{}
	if c.Type == "m.room.member" && c.StateKey != nil && (c.Membership == "leave" || c.Membership == "ban") {
		// A kicked or banned remote user's server is no longer in the joined set; it must
		// still learn of it.
		extra = append(extra, id.UserID(*c.StateKey).Homeserver())
	}
	if err := s.fanOut(ctx, c.RoomID, raw, skip...); err != nil {
		s.log.Warn("fan out", "pos", c.Pos, "err", err)
	}
	for _, srv := range extra {
		if srv != s.server && s.queue != nil {
			if err := s.queue.QueuePDU(ctx, []string{srv}, raw); err != nil {
				s.log.Warn("fan out", "pos", c.Pos, "err", err)
			}
		}
	}
}
