package rooms

import (
	"context"
	"errors"
	"fmt"

	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/events"
	"github.com/hearth-home/hearth/matrix/merr"
	"github.com/hearth-home/hearth/matrix/store"
)

// loadSnapshot resolves a snapshot chain into the full state map (state-key NID -> event pos).
func loadSnapshot(txn *store.Txn, nid uint64) (map[uint64]uint64, error) {
	out := map[uint64]uint64{}
	if nid == 0 {
		return out, nil
	}
	var chain []*store.Snapshot
	for n := nid; n != 0; {
		s, err := txn.GetSnapshot(n)
		if err != nil {
			return nil, fmt.Errorf("load snapshot %d: %w", n, err)
		}
		chain = append(chain, s)
		if s.Depth == 0 {
			break
		}
		n = s.Parent
	}
	for i := len(chain) - 1; i >= 0; i-- {
		for k, v := range chain[i].Entries {
			if v == 0 {
				delete(out, k)
			} else {
				out[k] = v
			}
		}
	}
	return out, nil
}

// snapshotLookup finds one state key in a snapshot chain without resolving all of it.
func snapshotLookup(txn *store.Txn, nid, sk uint64) (uint64, error) {
	for n := nid; n != 0; {
		s, err := txn.GetSnapshot(n)
		if err != nil {
			return 0, fmt.Errorf("load snapshot %d: %w", n, err)
		}
		if v, ok := s.Entries[sk]; ok {
			return v, nil
		}
		if s.Depth == 0 {
			return 0, nil
		}
		n = s.Parent
	}
	return 0, nil
}

// Event is a stored event as the read side hands it out.
type Event struct {
	Pos    uint64
	RoomID string
	Rec    *store.EventRecord
	Lite   *events.Lite
}

// Client renders the client-format event with the unsigned block.
func (e *Event) Client(now int64) *events.ClientEvent {
	ce := e.Lite.ToClient(e.Rec.ID, e.RoomID)
	u := &events.Unsigned{}
	if now > e.Lite.OriginServerTS {
		u.Age = now - e.Lite.OriginServerTS
	}
	ce.Unsigned = u
	return ce
}

func loadEvent(txn *store.Txn, pos uint64, roomID string) (*Event, error) {
	rec, err := txn.Event(pos)
	if err != nil {
		return nil, fmt.Errorf("load event %d: %w", pos, err)
	}
	l, err := events.ParseLite(rec.PDU)
	if err != nil {
		return nil, err
	}
	if roomID == "" {
		room, err := txn.Room(rec.Room)
		if err != nil {
			return nil, err
		}
		roomID = room.ID
	}
	return &Event{Pos: pos, RoomID: roomID, Rec: rec, Lite: l}, nil
}

// LoadEvent loads the event at a stream position inside a caller's transaction.
func LoadEvent(txn *store.Txn, pos uint64, roomID string) (*Event, error) {
	return loadEvent(txn, pos, roomID)
}

// StateMap resolves a snapshot to events, keyed by (type, state_key).
func StateMap(txn *store.Txn, snapshot uint64, roomID string) (map[[2]string]*Event, error) {
	m, err := loadSnapshot(txn, snapshot)
	if err != nil {
		return nil, err
	}
	out := make(map[[2]string]*Event, len(m))
	for _, pos := range m {
		ev, err := loadEvent(txn, pos, roomID)
		if err != nil {
			return nil, err
		}
		out[[2]string{ev.Lite.Type, *ev.Lite.StateKey}] = ev
	}
	return out, nil
}

// SnapshotPositions resolves a snapshot into state-key NID -> event position.
func SnapshotPositions(txn *store.Txn, snapshot uint64) (map[uint64]uint64, error) {
	return loadSnapshot(txn, snapshot)
}

// CurrentState returns the current state event for (type, state_key) of a room, or nil.
func (s *Service) CurrentState(ctx context.Context, roomID id.RoomID, typ, sk string) (*Event, error) {
	var out *Event
	err := s.st.View(func(txn *store.Txn) error {
		nid, err := txn.RoomNID(roomID.String())
		if err != nil {
			return err
		}
		rec, err := s.currentStateEvent(txn, nid, typ, sk)
		if err != nil || rec == nil {
			return err
		}
		pos, err := txn.EventPos(rec.ID)
		if err != nil {
			return err
		}
		out, err = loadEvent(txn, pos, roomID.String())
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, merr.NotFound("room %s is not known here", roomID)
	}
	return out, err
}

// AllCurrentState returns every current state event of a room.
func (s *Service) AllCurrentState(ctx context.Context, roomID id.RoomID) ([]*Event, error) {
	var out []*Event
	err := s.st.View(func(txn *store.Txn) error {
		nid, err := txn.RoomNID(roomID.String())
		if err != nil {
			return err
		}
		return txn.AllCurrentState(nid, func(_, pos uint64) (bool, error) {
			ev, err := loadEvent(txn, pos, roomID.String())
			if err != nil {
				return false, err
			}
			out = append(out, ev)
			return true, nil
		})
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, merr.NotFound("room %s is not known here", roomID)
	}
	return out, err
}

// StateAtEvent returns the full room state after an event (for a user who has left: the state
// when they left).
func (s *Service) StateAfter(ctx context.Context, pos uint64) ([]*Event, error) {
	var out []*Event
	err := s.st.View(func(txn *store.Txn) error {
		ev, err := loadEvent(txn, pos, "")
		if err != nil {
			return err
		}
		m, err := StateMap(txn, ev.Rec.After, ev.RoomID)
		if err != nil {
			return err
		}
		for _, e := range m {
			out = append(out, e)
		}
		return nil
	})
	return out, err
}

// Membership returns a user's current membership in a room ("" if none) and the event position.
func (s *Service) Membership(ctx context.Context, roomID id.RoomID, user id.UserID) (string, uint64, error) {
	ev, err := s.CurrentState(ctx, roomID, "m.room.member", user.String())
	if err != nil || ev == nil {
		return "", 0, err
	}
	return ev.Lite.Membership(), ev.Pos, nil
}

// Version returns a room's version.
func (s *Service) Version(roomID id.RoomID) (id.RoomVersion, error) {
	var v string
	err := s.st.View(func(txn *store.Txn) error {
		nid, err := txn.RoomNID(roomID.String())
		if err != nil {
			return err
		}
		r, err := txn.Room(nid)
		if err != nil {
			return err
		}
		v = r.Version
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return "", merr.NotFound("room %s is not known here", roomID)
	}
	return id.RoomVersion(v), err
}
