package rooms

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/change"
	"github.com/hearth-home/hearth/matrix/events"
	"github.com/hearth-home/hearth/matrix/store"
)

// InviteStrippedTypes are the state events handed to an invitee with an invite (and to a
// knocker with a knock).
var inviteStrippedTypes = []string{"m.room.create", "m.room.join_rules", "m.room.name", "m.room.avatar", "m.room.canonical_alias", "m.room.encryption", "m.room.topic"}

// RemoteInviter asks a remote invitee's server to countersign an invite (federation /invite v2)
// and returns the event as that server signed it. Set by the federation layer.
type RemoteInviter func(ctx context.Context, rv id.RoomVersion, invite []byte, eventID id.EventID, stripped []events.StrippedState) ([]byte, error)

// SetRemoteInviter installs the hook used when a local user invites a user of another server.
func (s *Service) SetRemoteInviter(f RemoteInviter) { s.inviter = f }

// strippedState collects the invite_room_state of a room from its current state.
func (s *Service) strippedState(txn *store.Txn, nid uint64) ([]events.StrippedState, error) {
	out := []events.StrippedState{}
	for _, typ := range inviteStrippedTypes {
		rec, err := s.currentStateEvent(txn, nid, typ, "")
		if err != nil {
			return nil, err
		}
		if rec == nil {
			continue
		}
		l, err := events.ParseLite(rec.PDU)
		if err != nil {
			return nil, err
		}
		out = append(out, l.Stripped())
	}
	return out, nil
}

// countersignInvite runs the remote inviter for an invite of a remote user, returning the built
// event with the invitee server's signature added.
func (s *Service) countersignInvite(txn *store.Txn, r *room, b *events.Built) (*events.Built, error) {
	if s.inviter == nil || b.PDU.Type != "m.room.member" || b.PDU.StateKey == nil || s.IsLocal(id.UserID(*b.PDU.StateKey)) {
		return b, nil
	}
	if membershipOf(b.PDU) != "invite" {
		return b, nil
	}
	stripped, err := s.strippedState(txn, r.nid)
	if err != nil {
		return nil, err
	}
	rv := id.RoomVersion(r.rec.Version)
	signed, err := s.inviter(context.Background(), rv, b.JSON, b.ID, stripped)
	if err != nil {
		return nil, err
	}
	p, err := events.Parse(signed)
	if err != nil {
		return nil, fmt.Errorf("countersigned invite: %w", err)
	}
	if eid, err := events.EventID(rv, p); err != nil || eid != b.ID {
		return nil, fmt.Errorf("the invitee's server changed the invite event (%s)", eid)
	}
	return &events.Built{PDU: p, ID: b.ID, JSON: signed}, nil
}

// StoreRemoteInvite records an invite that another server sent for a local user to a room this
// server is not in: an unknown room becomes a stub holding the invite (an outlier) and the
// stripped state that came with it, and the invitee sees it in /sync. A room we were in before
// keeps its old state and gets the invite as an outlier. For a room we are in the invite also
// arrives as a normal event through /send, so nothing is stored here.
func (s *Service) StoreRemoteInvite(ctx context.Context, rv id.RoomVersion, ev Remote, stripped json.RawMessage) error {
	return s.storeOutlierMembership(rv, ev, stripped, true)
}

// StoreStubMembership records a local user's own membership event in a stub room (a rejected
// invite or a knock sent through another server), kept as an outlier; stripped, when set, is the
// room state the other server showed (knock_room_state).
func (s *Service) StoreStubMembership(ctx context.Context, rv id.RoomVersion, ev Remote, stripped json.RawMessage) error {
	return s.storeOutlierMembership(rv, ev, stripped, false)
}

// storeOutlierMembership stores a local user's membership event that came through another
// server as an outlier, points the user's membership index at it and wakes their /sync.
// unlessResident skips rooms this server is in (their events arrive through /send).
func (s *Service) storeOutlierMembership(rv id.RoomVersion, ev Remote, stripped json.RawMessage, unlessResident bool) error {
	nid, err := s.ensureRoom(ev.PDU.RoomID, rv)
	if err != nil {
		return err
	}
	unlock := s.lock(nid)
	defer unlock()
	return s.st.Update(func(txn *store.Txn) error {
		r, err := loadRoom(txn, nid)
		if err != nil {
			return err
		}
		if unlessResident && !r.rec.Stub {
			if resident, err := s.hasLocalJoined(txn, nid); err != nil || resident {
				return err
			}
		}
		return putOutlierMembership(txn, r, ev, stripped)
	})
}

// putOutlierMembership stores a local user's membership event as an outlier of room r (once),
// points the user's membership index at it and notes the change for their /sync.
func putOutlierMembership(txn *store.Txn, r *room, ev Remote, stripped json.RawMessage) error {
	target, nid := id.UserID(*ev.PDU.StateKey), r.nid
	if _, err := txn.EventPos(ev.ID.String()); err == nil {
		return nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	pos, err := txn.AllocPos(store.KindEvent)
	if err != nil {
		return err
	}
	if err := txn.PutEvent(pos, &store.EventRecord{Room: nid, ID: ev.ID.String(), PDU: ev.JSON, Flags: store.FlagOutlier}); err != nil {
		return err
	}
	if len(stripped) > 0 && r.rec.Stub {
		r.rec.InviteState = stripped
	}
	r.rec.Latest = max(r.rec.Latest, pos)
	m := membershipOf(ev.PDU)
	if err := txn.SetMembership(target.String(), nid, m, pos); err != nil {
		return err
	}
	if m == "invite" {
		if err := txn.SetForgotten(target.String(), nid, false); err != nil {
			return err
		}
	}
	txn.Notify(pos, change.Change{Pos: pos, Kind: change.Event, Room: nid, RoomID: r.rec.ID, EventID: ev.ID.String(), EventType: ev.PDU.Type, StateKey: ev.PDU.StateKey, Sender: ev.PDU.Sender.String(), Membership: m})
	return txn.PutRoom(nid, r.rec)
}

// IsStub reports whether a room is known only through an invite or knock.
func (s *Service) IsStub(roomID id.RoomID) (bool, error) {
	stub := false
	err := s.st.View(func(txn *store.Txn) error {
		nid, err := txn.RoomNID(roomID.String())
		if errors.Is(err, store.ErrNotFound) {
			stub = true
			return nil
		}
		if err != nil {
			return err
		}
		rec, err := txn.Room(nid)
		if err != nil {
			return err
		}
		stub = rec.Stub
		return nil
	})
	return stub, err
}

// StrippedState returns the stripped state an invitee or knocker may see of a room.
func (s *Service) StrippedState(ctx context.Context, roomID id.RoomID) ([]events.StrippedState, error) {
	nid, err := s.roomNID(roomID)
	if err != nil {
		return nil, err
	}
	var out []events.StrippedState
	err = s.st.View(func(txn *store.Txn) error {
		out, err = s.strippedState(txn, nid)
		return err
	})
	return out, err
}

// StubServers names the servers to reach a stub room through for user: the server of whoever
// sent the user's latest membership (the inviter). The room ID's server is the client API's
// last resort, not named here.
func (s *Service) StubServers(ctx context.Context, roomID id.RoomID, user id.UserID) ([]string, error) {
	var out []string
	err := s.st.View(func(txn *store.Txn) error {
		nid, err := txn.RoomNID(roomID.String())
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		m, err := txn.GetMembership(user.String(), nid)
		if err != nil || m.Pos == 0 {
			return err
		}
		rec, err := txn.Event(m.Pos)
		if err != nil {
			return err
		}
		l, err := events.ParseLite(rec.PDU)
		if err != nil {
			return err
		}
		out = append(out, id.UserID(l.Sender).Homeserver())
		return nil
	})
	return out, err
}
