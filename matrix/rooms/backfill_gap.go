package rooms

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"maunium.net/go/mautrix/federation/pdu"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/events"
	"github.com/hearth-home/hearth/matrix/merr"
	"github.com/hearth-home/hearth/matrix/store"
)

// Gaps in the middle of a timeline. A timeline event stored without all of its prev events (a
// re-join builds on history this server never received; an incoming event may reference more
// missing events than get_missing_events fetches) is flagged store.FlagGap. /sync stops its
// timeline there, limited, with a prev_batch at the gap; /messages paging back into the gap
// fetches the missing history with /backfill and keeps it in the gap's own order
// (store.GapFilled), shown between the gap event and the timeline before it, with the state
// before the gap event (as backfill.go does for history older than the timeline).
//
// Tokens inside a gap are "g<gap event position>_<seq>": the boundary between the gap's events
// seq and seq+1 (seq 0: between the gap event and its newest filled event). A "t<P>" boundary
// lies below the gap of the timeline event after P: paging forwards from it walks that gap's
// events before the event itself.

// gapToken formats a pagination token inside the gap before the event at gap.
func gapToken(gap, seq uint64) string {
	return "g" + strconv.FormatUint(gap, 10) + "_" + strconv.FormatUint(seq, 10)
}

// parseGapToken reads a "g<pos>_<seq>" token; ok is false for other kinds of token.
func parseGapToken(tok string) (gap, seq uint64, ok bool, err error) {
	if len(tok) < 2 || tok[0] != 'g' {
		return 0, 0, false, nil
	}
	a, b, found := strings.Cut(tok[1:], "_")
	gap, err1 := strconv.ParseUint(a, 10, 64)
	seq, err2 := strconv.ParseUint(b, 10, 64)
	if !found || err1 != nil || err2 != nil || gap == 0 {
		return 0, 0, false, merr.InvalidParam("invalid pagination token %q", tok)
	}
	return gap, seq, true, nil
}

// TokenBefore is the pagination token just before a timeline event, as /sync's prev_batch:
// inside its gap when history is missing before it.
func TokenBefore(ev *Event) string {
	if ev.Rec.Flags&store.FlagGap != 0 {
		return gapToken(ev.Pos, 0)
	}
	return Token(ev.Pos - 1)
}

// ValidPaginationToken checks the syntax of any room pagination token (t, s, b or g).
func ValidPaginationToken(tok string) error {
	if _, _, ok, err := parseGapToken(tok); ok || err != nil {
		return err
	}
	if ok, _, err := parseHistoryToken(tok); ok || err != nil {
		return err
	}
	_, err := ParseToken(tok)
	return err
}

// knownInDAG reports whether an event has its place in the room's history here: stored and
// not an outlier. Rejected events count as known, so that they are never fetched again.
func knownInDAG(txn *store.Txn, eventID string) (bool, error) {
	pos, err := txn.EventPos(eventID)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	rec, err := txn.Event(pos)
	if err != nil {
		return false, err
	}
	return rec.Flags&store.FlagOutlier == 0 || rec.Flags&store.FlagRejected != 0, nil
}

// unknownOf returns the events of ids (deduplicated) that are not known in the DAG here.
func unknownOf(txn *store.Txn, ids []string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for _, e := range ids {
		if seen[e] {
			continue
		}
		seen[e] = true
		known, err := knownInDAG(txn, e)
		if err != nil {
			return nil, err
		}
		if !known {
			out = append(out, e)
		}
	}
	return out, nil
}

// flagGap marks a timeline event about to be stored as a gap when some of its prev events are
// not known here. Called where an event may enter the timeline without them: a re-join
// (remote_join.go) and an event accepted with the state another server gave (remote.go).
func flagGap(txn *store.Txn, rec *store.EventRecord, p *pdu.PDU) error {
	prev := make([]string, len(p.PrevEvents))
	for i, e := range p.PrevEvents {
		prev[i] = e.String()
	}
	missing, err := unknownOf(txn, prev)
	if err != nil {
		return fmt.Errorf("gap check of %s: %w", rec.ID, err)
	}
	if len(missing) > 0 {
		rec.Flags |= store.FlagGap
	}
	return nil
}

// flagRejoinGap flags a join made through another server as a gap when the room has a
// timeline here from an earlier stay: the history in between was never received. A first
// join is not a gap; history before it is the backfill order's (backfill.go).
func flagRejoinGap(txn *store.Txn, room uint64, rec *store.EventRecord, p *pdu.PDU) error {
	first, err := txn.FirstTimeline(room)
	if err != nil || first == 0 {
		return err
	}
	return flagGap(txn, rec, p)
}

// gapFrontier returns the events to fetch the history of the gap before the event at gap from;
// none when the gap is closed.
func gapFrontier(txn *store.Txn, room, gap uint64) ([]string, error) {
	g, err := txn.Gap(room, gap)
	if err != nil {
		return nil, err
	}
	if g != nil && g.Closed {
		return nil, nil
	}
	cand := []string(nil)
	if g != nil {
		cand = g.Frontier
	} else {
		rec, err := txn.Event(gap)
		if errors.Is(err, store.ErrNotFound) {
			return nil, nil // a token naming no event: nothing to fetch
		}
		if err != nil {
			return nil, fmt.Errorf("gap event %d: %w", gap, err)
		}
		if rec.Room != room || rec.Flags&store.FlagGap == 0 {
			return nil, nil
		}
		l, err := events.ParseLite(rec.PDU)
		if err != nil {
			return nil, err
		}
		cand = l.PrevEvents
	}
	return unknownOf(txn, cand)
}

// fillGap runs the backfiller once for the gap before the event at gap. It reports whether
// anything was stored (the gap may have been closed instead).
func (s *Service) fillGap(ctx context.Context, roomID id.RoomID, gap uint64, limit int) bool {
	if s.backfiller == nil {
		return false
	}
	var from []id.EventID
	err := s.st.View(func(txn *store.Txn) error {
		nid, err := txn.RoomNID(roomID.String())
		if err != nil {
			return err
		}
		f, err := gapFrontier(txn, nid, gap)
		for _, e := range f {
			from = append(from, id.EventID(e))
		}
		return err
	})
	if err != nil || len(from) == 0 {
		return false
	}
	if err := s.backfiller(ctx, roomID, from, limit, gap); err != nil {
		s.log.Info("backfill into a gap failed", "room_id", roomID, "gap", gap, "err", err)
		return false
	}
	return true
}

// StoreGapFill appends fetched history to the order of the gap before the timeline event at
// position gap, newest first. Events already in the timeline or another order are skipped;
// outliers (state from a join) join the order; new events must pass the auth rules with their
// own auth events. The gap closes once no prev event of its history is missing here, at the
// room's create event, or when a fetch brought nothing new.
func (s *Service) StoreGapFill(ctx context.Context, roomID id.RoomID, gap uint64, evs []Remote, getKey pdu.GetKeyFunc) error {
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
		gapRec, err := txn.Event(gap)
		if err != nil {
			return fmt.Errorf("gap event %d: %w", gap, err)
		}
		if gapRec.Room != nid || gapRec.Flags&store.FlagGap == 0 {
			return merr.NotFound("no gap before event %s in room %s", gapRec.ID, roomID)
		}
		g, err := txn.Gap(nid, gap)
		if err != nil {
			return err
		}
		if g == nil {
			l, err := events.ParseLite(gapRec.PDU)
			if err != nil {
				return err
			}
			g = &store.GapRecord{Frontier: l.PrevEvents}
		}
		base := gapRec.Snapshot
		get := s.getEvents(txn)
		cand := append([]string{}, g.Frontier...)
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
			g.Seq++
			if err := txn.PutGapFill(nid, gap, g.Seq, pos); err != nil {
				return err
			}
			added++
			for _, p := range ev.PDU.PrevEvents {
				cand = append(cand, p.String())
			}
			if ev.PDU.Type == "m.room.create" {
				g.Closed = true
			}
		}
		if g.Frontier, err = unknownOf(txn, cand); err != nil {
			return err
		}
		if added == 0 || len(g.Frontier) == 0 {
			g.Closed = true
		}
		if g.Closed {
			g.Frontier = nil
		}
		return txn.PutGap(nid, gap, g)
	})
}
