package rooms

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"maunium.net/go/mautrix/federation/pdu"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/events"
	"github.com/hearth-home/hearth/matrix/merr"
	"github.com/hearth-home/hearth/matrix/store"
)

// The state before and after events received from other servers: resolution of prev events'
// states, snapshots, and state reported by another server (/state_ids). Receive (remote.go)
// calls these.

// stateBefore is the state before an event: its single prev event's state after, or the
// resolution of all of its prev events' states. Prev events in reported (ReceiveOpts.PrevStates)
// take their state after from there.
func (s *Service) stateBefore(ctx context.Context, txn *store.Txn, r *room, p *pdu.PDU, reported map[id.EventID][]id.EventID) (uint64, map[uint64]uint64, error) {
	sets := make([]uint64, 0, len(p.PrevEvents))
	for _, pe := range p.PrevEvents {
		if st, ok := reported[pe]; ok {
			nid, err := reportedStateAfter(txn, pe, st)
			if err != nil {
				return 0, nil, err
			}
			if !slices.Contains(sets, nid) {
				sets = append(sets, nid)
			}
			continue
		}
		pos, err := txn.EventPos(pe.String())
		if err != nil {
			return 0, nil, fmt.Errorf("prev event %s: %w", pe, err)
		}
		rec, err := txn.Event(pos)
		if err != nil {
			return 0, nil, err
		}
		if rec.Room != r.nid {
			return 0, nil, merr.BadJSON("prev event %s is in another room", pe)
		}
		if !slices.Contains(sets, rec.After) {
			sets = append(sets, rec.After)
		}
	}
	if len(sets) == 1 {
		m, err := loadSnapshot(txn, sets[0])
		return sets[0], m, err
	}
	return s.resolveSnapshots(ctx, txn, r, sets)
}

// resolveSnapshots runs state resolution over snapshots and stores the result as a snapshot.
func (s *Service) resolveSnapshots(ctx context.Context, txn *store.Txn, r *room, nids []uint64) (uint64, map[uint64]uint64, error) {
	if s.resolve == nil {
		return 0, nil, errors.New("state resolution is not configured")
	}
	var sets []ResolvedState
	var base map[uint64]uint64
	for _, n := range nids {
		m, err := loadSnapshot(txn, n)
		if err != nil {
			return 0, nil, err
		}
		if base == nil {
			base = m
		}
		sm, err := toStateMap(txn, m)
		if err != nil {
			return 0, nil, err
		}
		sets = append(sets, sm)
	}
	res, err := s.resolve(ctx, id.RoomVersion(r.rec.Version), sets, s.getEvents(txn))
	if err != nil {
		return 0, nil, fmt.Errorf("resolve state: %w", err)
	}
	out := make(map[uint64]uint64, len(res))
	for k, e := range res {
		sk, err := txn.StateKeyNID(k.Type, k.StateKey, true)
		if err != nil {
			return 0, nil, err
		}
		pos, err := txn.EventPos(e.String())
		if err != nil {
			return 0, nil, fmt.Errorf("resolved event %s: %w", e, err)
		}
		out[sk] = pos
	}
	nid, err := s.snapshotFor(txn, nids[0], base, out)
	return nid, out, err
}

func toStateMap(txn *store.Txn, m map[uint64]uint64) (ResolvedState, error) {
	out := make(ResolvedState, len(m))
	for sk, pos := range m {
		typ, key, err := txn.StateKeyOf(sk)
		if err != nil {
			return nil, err
		}
		rec, err := txn.Event(pos)
		if err != nil {
			return nil, err
		}
		out[pdu.StateKey{Type: typ, StateKey: key}] = id.EventID(rec.ID)
	}
	return out, nil
}

// snapshotFor stores state `to` as a snapshot, as a delta on base when that is small.
func (s *Service) snapshotFor(txn *store.Txn, base uint64, baseMap, to map[uint64]uint64) (uint64, error) {
	delta := map[uint64]uint64{}
	for k, v := range to {
		if baseMap[k] != v {
			delta[k] = v
		}
	}
	for k := range baseMap {
		if _, ok := to[k]; !ok {
			delta[k] = 0
		}
	}
	if len(delta) == 0 && base != 0 {
		return base, nil
	}
	if base != 0 && len(delta) < 64 {
		parent, err := txn.GetSnapshot(base)
		if err != nil {
			return 0, err
		}
		if parent.Depth+1 < fullSnapshotEvery {
			return txn.PutSnapshot(&store.Snapshot{Parent: base, Depth: parent.Depth + 1, Entries: delta})
		}
	}
	return txn.PutSnapshot(&store.Snapshot{Entries: to})
}

// authorizeAgainst runs the auth rules with auth events chosen from a state map rather than the
// event's own auth_events (steps 5 and 6 of the checks on receipt).

func maps1(m map[uint64]uint64, k, v uint64) map[uint64]uint64 {
	out := make(map[uint64]uint64, len(m)+1)
	for a, b := range m {
		out[a] = b
	}
	out[k] = v
	return out
}

func membershipOf(p *pdu.PDU) string {
	if p.Type != "m.room.member" {
		return ""
	}
	l := events.Lite{Content: p.Content}
	return l.Membership()
}

// stateFromIDs stores a state map given as event IDs as a full snapshot.
func stateFromIDs(txn *store.Txn, ids []id.EventID) (uint64, map[uint64]uint64, error) {
	full := make(map[uint64]uint64, len(ids))
	for _, e := range ids {
		pos, err := txn.EventPos(e.String())
		if err != nil {
			return 0, nil, fmt.Errorf("state event %s: %w", e, err)
		}
		rec, err := txn.Event(pos)
		if err != nil {
			return 0, nil, err
		}
		if rec.Flags&store.FlagRejected != 0 {
			continue
		}
		p, err := events.Parse(rec.PDU)
		if err != nil {
			return 0, nil, err
		}
		if p.StateKey == nil {
			return 0, nil, merr.BadJSON("state event %s has no state_key", e)
		}
		sk, err := txn.StateKeyNID(p.Type, *p.StateKey, true)
		if err != nil {
			return 0, nil, err
		}
		full[sk] = pos
	}
	nid, err := txn.PutSnapshot(&store.Snapshot{Entries: full})
	return nid, full, err
}

// reportedStateAfter stores the state after prev event pe, given the state before it as another
// server reported it: that state with pe laid over it when pe is an accepted state event.
func reportedStateAfter(txn *store.Txn, pe id.EventID, stateBefore []id.EventID) (uint64, error) {
	nid, full, err := stateFromIDs(txn, stateBefore)
	if err != nil {
		return 0, fmt.Errorf("state before prev event %s: %w", pe, err)
	}
	pos, err := txn.EventPos(pe.String())
	if errors.Is(err, store.ErrNotFound) {
		return 0, &MissingEventsError{Prev: []id.EventID{pe}}
	}
	if err != nil {
		return 0, err
	}
	rec, err := txn.Event(pos)
	if err != nil {
		return 0, err
	}
	if rec.Flags&store.FlagRejected != 0 {
		return nid, nil
	}
	p, err := events.Parse(rec.PDU)
	if err != nil {
		return 0, fmt.Errorf("prev event %s: %w", pe, err)
	}
	if p.StateKey == nil {
		return nid, nil
	}
	sk, err := txn.StateKeyNID(p.Type, *p.StateKey, true)
	if err != nil {
		return 0, err
	}
	return txn.PutSnapshot(&store.Snapshot{Entries: maps1(full, sk, pos)})
}
