package rooms

import (
	"context"
	"errors"
	"sort"
	"strconv"

	"maunium.net/go/mautrix/federation/pdu"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/events"
	"github.com/hearth-home/hearth/matrix/merr"
	"github.com/hearth-home/hearth/matrix/store"
)

// History older than a room's timeline here (a room joined over federation starts at our join)
// is fetched with /backfill when a client pages back past the start, and kept in a backfill
// order beside the timeline: sequence 1 is the event just before the timeline's first, and
// sequences grow into the past. Pagination tokens in that region are "b<seq>".
//
// A backfilled event is shown with the state before the timeline's first event: fetching the
// state at every old event (/state_ids per event) would cost a request each, and that state
// decides history visibility, which clients see the same way Synapse shows it for joined users.

// Backfiller fetches up to limit events older than from from another server, verifies them
// and stores them: with StoreBackfilled when gap is 0 (history older than the timeline), else
// with StoreGapFill into the gap before the timeline event at position gap (backfill_gap.go).
// Set by the federation layer.
type Backfiller func(ctx context.Context, roomID id.RoomID, from []id.EventID, limit int, gap uint64) error

// SetBackfiller installs history fetching.
func (s *Service) SetBackfiller(b Backfiller) { s.backfiller = b }

func backfillToken(seq uint64) string { return "b" + strconv.FormatUint(seq, 10) }

// backfillPoint returns the events to backfill from: the prev events of the oldest event in
// order. ok is false when there is nothing older to fetch.
func (s *Service) backfillPoint(roomID id.RoomID) (from []id.EventID, ok bool, err error) {
	err = s.st.View(func(txn *store.Txn) error {
		nid, err := txn.RoomNID(roomID.String())
		if err != nil {
			return err
		}
		rec, err := txn.Room(nid)
		if err != nil || rec.BackfillDone || rec.Stub {
			return err
		}
		oldest := uint64(0)
		if rec.BackfillSeq > 0 {
			err = txn.Backfilled(nid, rec.BackfillSeq, false, func(_, pos uint64) (bool, error) {
				oldest = pos
				return false, nil
			})
		} else {
			oldest, err = txn.FirstTimeline(nid)
		}
		if err != nil || oldest == 0 {
			return err
		}
		ev, err := txn.Event(oldest)
		if err != nil {
			return err
		}
		l, err := events.ParseLite(ev.PDU)
		if err != nil {
			return err
		}
		if l.Type == "m.room.create" || len(l.PrevEvents) == 0 {
			return nil
		}
		for _, p := range l.PrevEvents {
			from = append(from, id.EventID(p))
		}
		ok = true
		return nil
	})
	return from, ok, err
}

// fetchHistory runs the backfiller once for a room, when there is anything older to fetch.
func (s *Service) fetchHistory(ctx context.Context, roomID id.RoomID, limit int) bool {
	if s.backfiller == nil {
		return false
	}
	from, ok, err := s.backfillPoint(roomID)
	if err != nil || !ok {
		return false
	}
	if err := s.backfiller(ctx, roomID, from, limit, 0); err != nil {
		s.log.Info("backfill failed", "room_id", roomID, "err", err)
		return false
	}
	return true
}

// StoreBackfilled appends fetched history to a room's backfill order, newest first. Events
// already stored as outliers (state from the join) join the order; events already in the
// timeline are skipped. Each new event must pass the auth rules with its own auth events.
func (s *Service) StoreBackfilled(ctx context.Context, roomID id.RoomID, evs []Remote, getKey pdu.GetKeyFunc) error {
	nid, err := s.roomNID(roomID)
	if err != nil {
		return err
	}
	unlock := s.lock(nid)
	defer unlock()
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].PDU.Depth > evs[j].PDU.Depth })
	return s.st.Update(func(txn *store.Txn) error {
		r, err := loadRoom(txn, nid)
		if err != nil {
			return err
		}
		first, err := txn.FirstTimeline(nid)
		if err != nil {
			return err
		}
		if first == 0 {
			return merr.NotFound("room %s has no timeline to extend", roomID)
		}
		firstRec, err := txn.Event(first)
		if err != nil {
			return err
		}
		base := firstRec.Snapshot
		get := s.getEvents(txn)
		added := 0
		for _, ev := range evs {
			if ev.PDU.RoomID != roomID && !(ev.PDU.Type == "m.room.create" && createOf(roomID, ev.ID)) {
				continue
			}
			pos, ok, err := s.placeBackfilled(txn, r, nid, base, ev, get, getKey)
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
			r.rec.BackfillSeq++
			if err := txn.PutBackfill(nid, r.rec.BackfillSeq, pos); err != nil {
				return err
			}
			added++
			if ev.PDU.Type == "m.room.create" {
				r.rec.BackfillDone = true
			}
		}
		if added == 0 {
			r.rec.BackfillDone = true
		}
		return txn.PutRoom(nid, r.rec)
	})
}

// createOf reports whether eventID is the create event a v12 room ID is derived from (such a
// create event carries no room_id).
func createOf(roomID id.RoomID, eventID id.EventID) bool {
	return len(roomID) > 1 && len(eventID) > 1 && roomID[1:] == id.RoomID(eventID[1:])
}

// placeBackfilled stores one fetched history event under base, the state of the order it
// joins (the room's backfill order or a gap's): an outlier already here joins it, a new event
// must pass the auth rules with its own auth events. ok is false for an event left out (in the
// timeline or an order already, rejected, or failing auth).
func (s *Service) placeBackfilled(txn *store.Txn, r *room, nid, base uint64, ev Remote, get func([]id.EventID) ([]*pdu.PDU, error), getKey pdu.GetKeyFunc) (uint64, bool, error) {
	pos, err := txn.EventPos(ev.ID.String())
	switch {
	case err == nil:
		rec, err := txn.Event(pos)
		if err != nil {
			return 0, false, err
		}
		if rec.Flags&store.FlagOutlier == 0 || rec.Flags&store.FlagRejected != 0 {
			return 0, false, nil
		}
		rec.Flags = rec.Flags&^store.FlagOutlier | store.FlagBackfilled
		rec.Snapshot, rec.After = base, base
		return pos, true, txn.ReplaceEvent(pos, rec)
	case errors.Is(err, store.ErrNotFound):
		if err := events.AuthorizeEvent(id.RoomVersion(r.rec.Version), ev.PDU, nil, get, getKey); err != nil {
			s.log.Info("backfilled event fails auth", "event_id", ev.ID, "err", err)
			return 0, false, nil
		}
		if pos, err = txn.AllocPos(store.KindEvent); err != nil {
			return 0, false, err
		}
		rec := &store.EventRecord{Room: nid, Snapshot: base, After: base, ID: ev.ID.String(), PDU: ev.JSON, Flags: store.FlagBackfilled}
		return pos, true, txn.PutEvent(pos, rec)
	default:
		return 0, false, err
	}
}
