package rooms

import (
	"context"
	"errors"
	"slices"
	"sort"

	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/merr"
	"github.com/hearth-home/hearth/matrix/store"
)

// Read side of the federation API: events, state and auth chains as a remote server may see
// them. Every function checks the server ACL and the history visibility for the requesting
// server; errors are merr errors with the spec's codes (403 M_FORBIDDEN, 404 M_NOT_FOUND).

// maxAuthChain bounds an auth-chain walk; a household room's chain is far smaller.
const maxAuthChain = 50000

// FedState is the state before an event and the auth chain of that state.
type FedState struct {
	State     []*Event
	AuthChain []*Event
}

// fedRoom opens a room for a remote server: unknown room 404, ACL-denied server 403.
func (s *Service) fedRoom(txn *store.Txn, roomID id.RoomID, server string) (uint64, *ServerViewer, error) {
	nid, err := txn.RoomNID(roomID.String())
	if errors.Is(err, store.ErrNotFound) {
		return 0, nil, merr.NotFound("room %s is not known here", roomID)
	}
	if err != nil {
		return 0, nil, err
	}
	if err := s.checkACL(txn, nid, server); err != nil {
		return 0, nil, err
	}
	v, err := newServerViewer(txn, nid, server)
	if err != nil {
		return 0, nil, err
	}
	return nid, v, nil
}

// eventByID loads a stored, non-rejected event; 404 M_NOT_FOUND when unknown.
func eventByID(txn *store.Txn, eventID string) (*Event, error) {
	pos, err := txn.EventPos(eventID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, merr.NotFound("event %s is not known here", eventID)
	}
	if err != nil {
		return nil, err
	}
	ev, err := loadEvent(txn, pos, "")
	if err != nil {
		return nil, err
	}
	if ev.Rec.Flags&store.FlagRejected != 0 {
		return nil, merr.NotFound("event %s is not known here", eventID)
	}
	return ev, nil
}

// roomEvent loads an event of room nid that v may see: 404 if it is not in the room, 403 if
// the server may not see it.
func roomEvent(txn *store.Txn, v *ServerViewer, nid uint64, eventID string) (*Event, error) {
	ev, err := eventByID(txn, eventID)
	if err != nil {
		return nil, err
	}
	if ev.Rec.Room != nid {
		return nil, merr.NotFound("event %s is not in this room", eventID)
	}
	ok, err := v.CanSee(ev)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, merr.Forbidden("server %s may not see event %s", v.server, eventID)
	}
	return ev, nil
}

// FedEvent returns one event for server (GET /event): the room's ACL and history visibility
// apply as for the room-scoped endpoints.
func (s *Service) FedEvent(ctx context.Context, server string, eventID id.EventID) (*Event, error) {
	var out *Event
	err := s.st.View(func(txn *store.Txn) error {
		ev, err := eventByID(txn, eventID.String())
		if err != nil {
			return err
		}
		_, v, err := s.fedRoom(txn, id.RoomID(ev.RoomID), server)
		if err != nil {
			return err
		}
		out, err = roomEvent(txn, v, ev.Rec.Room, eventID.String())
		return err
	})
	return out, err
}

// FedStateAt returns the room state before eventID (the state the event was authorised
// against) and its auth chain, for server (GET /state and /state_ids).
func (s *Service) FedStateAt(ctx context.Context, server string, roomID id.RoomID, eventID id.EventID) (*FedState, error) {
	out := &FedState{}
	err := s.st.View(func(txn *store.Txn) error {
		nid, v, err := s.fedRoom(txn, roomID, server)
		if err != nil {
			return err
		}
		ev, err := roomEvent(txn, v, nid, eventID.String())
		if err != nil {
			return err
		}
		if ev.Rec.Flags&store.FlagOutlier != 0 {
			// Known without its place in the graph: there is no state before it to give.
			return merr.NotFound("the state at event %s is not known here", eventID)
		}
		m, err := StateMap(txn, ev.Rec.Snapshot, roomID.String())
		if err != nil {
			return err
		}
		for _, e := range m {
			out.State = append(out.State, e)
		}
		sortByPos(out.State)
		out.AuthChain, err = s.authChain(txn, nid, out.State, false)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// FedEventAuth returns the auth chain of one event for server (GET /event_auth).
func (s *Service) FedEventAuth(ctx context.Context, server string, roomID id.RoomID, eventID id.EventID) ([]*Event, error) {
	var out []*Event
	err := s.st.View(func(txn *store.Txn) error {
		nid, v, err := s.fedRoom(txn, roomID, server)
		if err != nil {
			return err
		}
		ev, err := roomEvent(txn, v, nid, eventID.String())
		if err != nil {
			return err
		}
		out, err = s.authChain(txn, nid, []*Event{ev}, true)
		return err
	})
	return out, err
}

// authChain walks auth_events from the given events, transitively. The starting events are
// not part of the result unless another event names them. From room version 12 the create
// event is named by the room ID instead of auth_events; it is added so that the receiver has
// it. With excludeStart the start events are never returned (one event's own chain).
func (s *Service) authChain(txn *store.Txn, nid uint64, from []*Event, excludeStart bool) ([]*Event, error) {
	seen := map[string]bool{}
	start := map[string]bool{}
	var queue []string
	for _, e := range from {
		start[e.Rec.ID] = true
		queue = append(queue, e.Lite.AuthEvents...)
	}
	rec, err := txn.Room(nid)
	if err != nil {
		return nil, err
	}
	if roomIDNamesCreate(rec.Version) {
		create, err := s.currentStateEvent(txn, nid, "m.room.create", "")
		if err != nil {
			return nil, err
		}
		if create != nil {
			queue = append(queue, create.ID)
		}
	}
	var out []*Event
	for len(queue) > 0 {
		eid := queue[0]
		queue = queue[1:]
		if seen[eid] || (excludeStart && start[eid]) {
			continue
		}
		seen[eid] = true
		if len(seen) > maxAuthChain {
			return nil, merr.Internal("auth chain exceeds %d events", maxAuthChain)
		}
		ev, err := eventByID(txn, eid)
		if errors.Is(err, store.ErrNotFound) || merrNotFound(err) {
			continue // an auth event we never received: the receiver asks someone else
		}
		if err != nil {
			return nil, err
		}
		out = append(out, ev)
		queue = append(queue, ev.Lite.AuthEvents...)
	}
	sortByPos(out)
	return out, nil
}

// roomIDNamesCreate reports whether the room version derives the room ID from the create
// event, which then is no longer listed in auth_events (room version 12 and later).
func roomIDNamesCreate(v string) bool {
	switch v {
	case "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11":
		return false
	}
	return true
}

func merrNotFound(err error) bool {
	me, ok := merr.As(err)
	return ok && me.Code == "M_NOT_FOUND"
}

func sortByPos(evs []*Event) {
	sort.Slice(evs, func(i, j int) bool { return evs[i].Pos < evs[j].Pos })
}

// JoinedServers lists the servers with a joined member in the room, this server first when
// it is one, then the others in name order (GET /query/directory's servers).
func (s *Service) JoinedServers(ctx context.Context, roomID id.RoomID) ([]string, error) {
	var out []string
	err := s.st.View(func(txn *store.Txn) error {
		nid, err := txn.RoomNID(roomID.String())
		if err != nil {
			return err
		}
		out, err = s.joinedServers(txn, nid)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, merr.NotFound("room %s is not known here", roomID)
	}
	return out, err
}

// serversEntry is the joined-server list of a room at one current-state snapshot.
type serversEntry struct {
	snapshot uint64
	servers  []string
}

// joinedServers computes a room's joined servers from its current state. Every local message
// fans out to these servers, and the walk reads every member event (10,000 in a big room), so
// the answer is kept per room until the current state changes (a new snapshot NID). A copy is
// returned: callers may reuse the slice.
func (s *Service) joinedServers(txn *store.Txn, nid uint64) ([]string, error) {
	rec, err := txn.Room(nid)
	if err != nil {
		return nil, err
	}
	s.serversMu.Lock()
	e, ok := s.servers[nid]
	s.serversMu.Unlock()
	if ok && e.snapshot == rec.Snapshot {
		return slices.Clone(e.servers), nil
	}
	set := map[string]bool{}
	err = txn.AllCurrentState(nid, func(sk, pos uint64) (bool, error) {
		typ, key, err := txn.StateKeyOf(sk)
		if err != nil || typ != "m.room.member" {
			return err == nil, err
		}
		ev, err := loadEvent(txn, pos, rec.ID)
		if err != nil {
			return false, err
		}
		if ev.Lite.Membership() == "join" {
			set[serverOf(key)] = true
		}
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	out := []string{}
	if set[s.server] {
		out = append(out, s.server)
		delete(set, s.server)
	}
	rest := make([]string, 0, len(set))
	for srv := range set {
		rest = append(rest, srv)
	}
	sort.Strings(rest)
	out = append(out, rest...)
	s.serversMu.Lock()
	if s.servers == nil {
		s.servers = map[uint64]serversEntry{}
	}
	s.servers[nid] = serversEntry{snapshot: rec.Snapshot, servers: out}
	s.serversMu.Unlock()
	return slices.Clone(out), nil
}
