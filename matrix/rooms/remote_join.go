package rooms

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sort"

	"maunium.net/go/mautrix/federation/pdu"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/change"
	"github.com/hearth-home/hearth/matrix/events"
	"github.com/hearth-home/hearth/matrix/merr"
	"github.com/hearth-home/hearth/matrix/store"
)

// outlierBatch bounds how many outliers one transaction writes: a large room's send_join answer
// would otherwise exceed Badger's transaction size limit and be held in memory at once.
const outlierBatch = 256

// ensureRoom returns the NID of a room, creating a stub record for a room we are about to join
// or have been invited to over federation.
func (s *Service) ensureRoom(roomID id.RoomID, rv id.RoomVersion) (uint64, error) {
	var nid uint64
	err := s.st.Update(func(txn *store.Txn) error {
		var err error
		nid, err = txn.RoomNID(roomID.String())
		if err == nil {
			return nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		nid, err = txn.CreateRoom(&store.RoomRecord{ID: roomID.String(), Version: string(rv), Stub: true})
		return err
	})
	return nid, err
}

// StoreOutliers stores events known without their place in the DAG (an auth chain, the state a
// join answer carried, auth events fetched for a new event). Each must pass the auth rules with
// its own auth events, which are therefore stored first (events are ordered by auth
// dependencies); failures are kept as rejected. Already known events are skipped.
func (s *Service) StoreOutliers(ctx context.Context, roomID id.RoomID, rv id.RoomVersion, evs []Remote, getKey pdu.GetKeyFunc) error {
	nid, err := s.ensureRoom(roomID, rv)
	if err != nil {
		return err
	}
	ordered := authOrder(evs)
	for start := 0; start < len(ordered); start += outlierBatch {
		end := min(start+outlierBatch, len(ordered))
		err := s.st.Update(func(txn *store.Txn) error {
			get := s.getEvents(txn)
			for _, ev := range ordered[start:end] {
				if err := ctx.Err(); err != nil {
					return err
				}
				if _, err := txn.EventPos(ev.ID.String()); err == nil {
					continue
				}
				if ev.PDU.RoomID != "" && ev.PDU.RoomID != roomID {
					return merr.BadJSON("event %s is in room %s, not %s", ev.ID, ev.PDU.RoomID, roomID)
				}
				flags := store.FlagOutlier
				if err := events.AuthorizeEvent(rv, ev.PDU, nil, get, getKey); err != nil {
					s.log.Info("rejected outlier", "event_id", ev.ID, "room_id", roomID, "err", err)
					flags |= store.FlagRejected
				}
				pos, err := txn.AllocPos(store.KindEvent)
				if err != nil {
					return err
				}
				if err := txn.PutEvent(pos, &store.EventRecord{Room: nid, ID: ev.ID.String(), PDU: ev.JSON, Flags: flags}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("store outliers: %w", err)
		}
	}
	return nil
}

// authOrder sorts events so that each comes after the events it names in auth_events (when
// they are in the list), breaking ties by depth: a topological order of the auth DAG.
func authOrder(evs []Remote) []Remote {
	byID := make(map[id.EventID]int, len(evs))
	for i, e := range evs {
		byID[e.ID] = i
	}
	idx := make([]int, len(evs))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return evs[idx[a]].PDU.Depth < evs[idx[b]].PDU.Depth })
	done := make([]bool, len(evs))
	out := make([]Remote, 0, len(evs))
	var visit func(i int, depth int)
	visit = func(i int, depth int) {
		if done[i] || depth > len(evs) {
			return
		}
		done[i] = true
		for _, a := range evs[i].PDU.AuthEvents {
			if j, ok := byID[a]; ok {
				visit(j, depth+1)
			}
		}
		out = append(out, evs[i])
	}
	for _, i := range idx {
		visit(i, 0)
	}
	return out
}

// ImportJoin completes a join over federation: the room's state as the resident server sent it
// (already stored as outliers with StoreOutliers, together with the auth chain) becomes the state
// before our join event, which becomes the room's only forward extremity.
func (s *Service) ImportJoin(ctx context.Context, roomID id.RoomID, state []id.EventID, join Remote, getKey pdu.GetKeyFunc) (*Appended, error) {
	nid, err := s.roomNID(roomID)
	if err != nil {
		return nil, err
	}
	unlock := s.lock(nid)
	defer unlock()
	full, err := s.stageJoinState(ctx, nid, state)
	if err != nil {
		return nil, err
	}
	var out *Appended
	err = s.st.Update(func(txn *store.Txn) error {
		r, err := loadRoom(txn, nid)
		if err != nil {
			return err
		}
		rv := id.RoomVersion(r.rec.Version)
		before, err := txn.PutSnapshot(&store.Snapshot{Entries: full})
		if err != nil {
			return err
		}
		get := s.getEvents(txn)
		if err := events.AuthorizeEvent(rv, join.PDU, nil, get, getKey); err != nil {
			return merr.Forbidden("the join event fails the auth rules: %v", err)
		}
		if err := s.authorizeAgainst(txn, rv, join.PDU, full, get, getKey); err != nil {
			return merr.Forbidden("the join event fails against the room state: %v", err)
		}
		// Earlier events of this room known here (an invite we were sent, a previous stay)
		// are no longer extremities: the join builds on the resident server's DAG.
		r.rec.Stub, r.rec.InviteState = false, nil
		r.rec.Snapshot = 0
		// A room we were in before keeps stale current state: the resident server's state
		// replaces it whole.
		var stale []uint64
		if err := txn.AllCurrentState(nid, func(sk, _ uint64) (bool, error) {
			if _, ok := full[sk]; !ok {
				stale = append(stale, sk)
			}
			return true, nil
		}); err != nil {
			return err
		}
		for _, sk := range stale {
			if err := txn.DelCurrentState(nid, sk); err != nil {
				return err
			}
		}
		if err := s.setCurrentFrom(txn, r, before, full); err != nil { // rows staged above
			return err
		}
		pos, err := txn.AllocPos(store.KindEvent)
		if err != nil {
			return err
		}
		sk, err := txn.StateKeyNID(join.PDU.Type, *join.PDU.StateKey, true)
		if err != nil {
			return err
		}
		after, err := s.snapshotFor(txn, before, full, maps1(full, sk, pos))
		if err != nil {
			return err
		}
		rec := &store.EventRecord{Room: nid, Snapshot: before, After: after, ID: join.ID.String(), PDU: join.JSON, Flags: store.FlagViaFederation}
		if _, err := txn.EventPos(join.ID.String()); err == nil {
			return merr.BadJSON("join event %s is already known", join.ID)
		}
		if err := flagRejoinGap(txn, nid, rec, join.PDU); err != nil { // backfill_gap.go
			return err
		}
		if err := txn.PutEvent(pos, rec); err != nil {
			return err
		}
		if err := s.setCurrent(txn, r, after); err != nil {
			return err
		}
		r.rec.Extremities = []string{join.ID.String()}
		r.rec.Depth = join.PDU.Depth
		r.rec.Latest = pos
		txn.Notify(pos, change.Change{Pos: pos, Kind: change.Event, Room: nid, RoomID: r.rec.ID, EventID: join.ID.String(), EventType: join.PDU.Type, StateKey: join.PDU.StateKey, Sender: join.PDU.Sender.String(), Membership: "join"})
		out = &Appended{EventID: join.ID, Pos: pos}
		return txn.PutRoom(nid, r.rec)
	})
	return out, err
}

// setCurrentFrom completes installing a whole state map as current state of a room that had
// none: stageJoinState wrote the current-state rows; the memberships of local users follow
// here, in the transaction that makes the room joined.
func (s *Service) setCurrentFrom(txn *store.Txn, r *room, nid uint64, full map[uint64]uint64) error {
	for sk, pos := range full {
		if err := s.syncMembership(txn, r, sk, pos); err != nil {
			return err
		}
	}
	r.rec.Snapshot = nid
	return nil
}

// importStateBatch bounds the state events one transaction of stageJoinState handles: a large
// room's state (10,000 members) in one transaction exceeds Badger's transaction size limit
// (15% of the 8 MiB memtable), and would be held in memory whole until commit.
const importStateBatch = 1000

// stageJoinState maps the state a join answer carried (stored outliers) to state-key NIDs,
// creating those not seen before, and writes them as the room's current-state rows, a batch of
// transactions at a time. Rejected events are left out, as the auth rules say. The room stays a
// stub until ImportJoin's last transaction, so rows staged by a join that then fails are never
// read as a joined room's state; a later join overwrites them.
func (s *Service) stageJoinState(ctx context.Context, nid uint64, ids []id.EventID) (map[uint64]uint64, error) {
	full := make(map[uint64]uint64, len(ids))
	for start := 0; start < len(ids); start += importStateBatch {
		chunk := ids[start:min(start+importStateBatch, len(ids))]
		// The store retries a transaction that conflicts (two joins creating the same
		// state-key NID); rows of a failed attempt must not reach full, or it would name
		// state-key NIDs that were never committed.
		var rows map[uint64]uint64
		err := s.st.Update(func(txn *store.Txn) error {
			rows = make(map[uint64]uint64, len(chunk))
			for _, e := range chunk {
				if err := ctx.Err(); err != nil {
					return err
				}
				pos, err := txn.EventPos(e.String())
				if err != nil {
					return fmt.Errorf("state event %s: %w", e, err)
				}
				rec, err := txn.Event(pos)
				if err != nil {
					return err
				}
				if rec.Flags&store.FlagRejected != 0 {
					continue
				}
				typ, key, err := stateKeyOf(rec.PDU)
				if err != nil {
					return merr.BadJSON("state event %s: %v", e, err)
				}
				sk, err := txn.StateKeyNID(typ, key, true)
				if err != nil {
					return err
				}
				if err := txn.SetCurrentState(nid, sk, pos); err != nil {
					return err
				}
				rows[sk] = pos
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("stage join state: %w", err)
		}
		maps.Copy(full, rows)
	}
	return full, nil
}

// stateKeyOf reads the type and state key of a stored event.
func stateKeyOf(raw []byte) (string, string, error) {
	l, err := events.ParseLite(raw)
	if err != nil {
		return "", "", err
	}
	if l.StateKey == nil {
		return "", "", errors.New("no state_key")
	}
	return l.Type, *l.StateKey, nil
}
