package federation

import (
	"context"
	"encoding/json"
	"slices"

	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/appliance/bus"
	"github.com/hearth-home/hearth/matrix/change"
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

// Watch sends this server's own events to the other servers in their rooms as they commit.
// Events from other servers are not forwarded (their origin sends them), except the joins and
// leaves this server accepted through send_* (acceptMembership queues those itself).
func (s *Service) Watch(b *bus.Bus[change.Change]) func() {
	sub := b.SubscribeQueue(4096)
	done, stop := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			var c change.Change
			select {
			case <-stop:
				return
			case c = <-sub.C():
			}
			if sub.Lagged() {
				s.log.Warn("federation fan-out lagged behind the bus; some events wait for the next one to be pulled")
			}
			if c.Kind != change.Event || c.Federated || id.UserID(c.Sender).Homeserver() != s.server {
				continue
			}
			s.sendLocal(c)
		}
	}()
	return func() { b.Unsubscribe(sub); close(stop); <-done }
}

func (s *Service) sendLocal(c change.Change) {
	ctx := context.Background()
	raw, err := s.rooms.EventJSON(ctx, id.EventID(c.EventID))
	if err != nil {
		s.log.Warn("fan out: load event", "event_id", c.EventID, "err", err)
		return
	}
	// An invitee's server got the invite through /invite already; when it is in the room it
	// also needs it in the room's DAG, so it is not skipped here.
	var skip []string
	extra := []string{}
	if c.EventType == "m.room.member" && c.StateKey != nil && (c.Membership == "leave" || c.Membership == "ban") {
		// A kicked or banned remote user's server is no longer in the joined set; it must
		// still learn of it.
		extra = append(extra, id.UserID(*c.StateKey).Homeserver())
	}
	if err := s.fanOut(ctx, id.RoomID(c.RoomID), raw, skip...); err != nil {
		s.log.Warn("fan out", "event_id", c.EventID, "err", err)
	}
	for _, srv := range extra {
		if srv != s.server && s.queue != nil {
			if err := s.queue.QueuePDU(ctx, []string{srv}, raw); err != nil {
				s.log.Warn("fan out", "event_id", c.EventID, "err", err)
			}
		}
	}
}
