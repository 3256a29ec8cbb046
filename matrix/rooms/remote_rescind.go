package rooms

import (
	"context"
	"errors"
	"fmt"

	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/events"
	"github.com/hearth-home/hearth/matrix/store"
)

// Rescinded invites. A server that invited one of our users into a room this server is not in
// later sends the invitee's leave (the inviter "kicks" the invitee) through /send, since this
// server has no other way to hear of it. The room's DAG is unknown here, so the event cannot
// be authorised against its state; it is taken as an outlier, like the invite was, on
// Synapse's rule: only the user who sent the invite may withdraw it. A leave sent by anyone
// else is refused (the invitee keeps seeing the invite, as Complement's "Non-invitee user
// cannot rescind invite over federation" expects).

// ErrNotRescindable says that an event for a room this server is not in is not a rescinded
// invite this server can take.
var ErrNotRescindable = errors.New("not the withdrawal of an invite by its sender")

// AcceptRescindedInvite records ev, a leave of a local user in a room no local user is joined
// to, if it withdraws the user's pending invite: the user's membership here is that invite and
// ev's sender sent it. Otherwise it returns an error wrapping ErrNotRescindable and stores
// nothing. The caller has checked the event's signatures and hashes.
func (s *Service) AcceptRescindedInvite(ctx context.Context, ev Remote) error {
	p := ev.PDU
	if p.Type != "m.room.member" || p.StateKey == nil || membershipOf(p) != "leave" || !s.IsLocal(id.UserID(*p.StateKey)) {
		return fmt.Errorf("%w: not a leave of a user of this server", ErrNotRescindable)
	}
	target := *p.StateKey
	nid, err := s.roomNID(p.RoomID)
	if err != nil {
		return fmt.Errorf("%w: room %s is not known here", ErrNotRescindable, p.RoomID)
	}
	unlock := s.lock(nid)
	defer unlock()
	return s.st.Update(func(txn *store.Txn) error {
		r, err := loadRoom(txn, nid)
		if err != nil {
			return err
		}
		if !r.rec.Stub {
			// A room we were in before: our copy is history, and events reach it through
			// /send only while a local user is joined.
			if resident, err := s.hasLocalJoined(txn, nid); err != nil || resident {
				if err != nil {
					return err
				}
				return fmt.Errorf("%w: this server is in room %s", ErrNotRescindable, p.RoomID)
			}
		}
		m, err := txn.GetMembership(target, nid)
		if errors.Is(err, store.ErrNotFound) || (err == nil && m.Membership != "invite") {
			return fmt.Errorf("%w: %s has no pending invite to %s", ErrNotRescindable, target, p.RoomID)
		}
		if err != nil {
			return err
		}
		inv, err := txn.Event(m.Pos)
		if err != nil {
			return fmt.Errorf("invite of %s to %s: %w", target, p.RoomID, err)
		}
		l, err := events.ParseLite(inv.PDU)
		if err != nil {
			return fmt.Errorf("invite of %s to %s: %w", target, p.RoomID, err)
		}
		if l.Sender != p.Sender.String() {
			return fmt.Errorf("%w: the invite of %s was sent by %s, not %s", ErrNotRescindable, target, l.Sender, p.Sender)
		}
		return putOutlierMembership(txn, r, ev, nil)
	})
}
