package rooms

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/events"
	"github.com/hearth-home/hearth/matrix/merr"
	"github.com/hearth-home/hearth/matrix/store"
)

// Purging history (the admin API's purge_history): non-state timeline events before a point
// are deleted together with their relation and search-index entries. State events stay,
// since snapshots, auth chains and the current state refer to them; so do the room's latest
// event and forward extremities, which the next event will name as prev_events. /messages
// keeps working because it walks the timeline index, which simply no longer holds the
// purged positions.

// purgeBatch bounds the events deleted in one write transaction: each event costs about ten
// key writes, and Badger refuses transactions past its size limit.
const purgeBatch = 200

// PurgeRequest says what to purge.
type PurgeRequest struct {
	RoomID id.RoomID
	// Exactly one of UpToEventID and UpToTS names the point: events strictly before the
	// event, or with origin_server_ts before UpToTS (unix milliseconds).
	UpToEventID string
	UpToTS      int64
	// DeleteLocal also deletes events sent by local users (Synapse keeps them by default,
	// since they may be the only copy anywhere).
	DeleteLocal bool
	// Tokens returns the search-index tokens an event may have been indexed under, so that its
	// postings can be removed (the search package owns tokenizing; nil skips this).
	Tokens func(rec *store.EventRecord) []string
}

// PurgeHistory deletes the room's history before the point and returns how many events went.
func (s *Service) PurgeHistory(ctx context.Context, req PurgeRequest) (int, error) {
	var nid, cut uint64
	err := s.st.View(func(txn *store.Txn) error {
		var err error
		if nid, err = txn.RoomNID(req.RoomID.String()); errors.Is(err, store.ErrNotFound) {
			return merr.NotFound("room not found")
		} else if err != nil {
			return err
		}
		if req.UpToEventID == "" {
			cut = ^uint64(0) // bounded by the timestamp instead
			return nil
		}
		pos, err := txn.EventPos(req.UpToEventID)
		if errors.Is(err, store.ErrNotFound) {
			return merr.NotFound("event %s not found", req.UpToEventID)
		} else if err != nil {
			return err
		}
		rec, err := txn.Event(pos)
		if err != nil {
			return err
		}
		if rec.Room != nid {
			return merr.InvalidParam("event %s is not in room %s", req.UpToEventID, req.RoomID)
		}
		cut = pos
		return nil
	})
	if err != nil {
		return 0, err
	}
	purged := 0
	var from uint64
	for {
		if err := ctx.Err(); err != nil {
			return purged, err
		}
		n, next, done, err := s.purgeBatch(nid, from, cut, req)
		purged += n
		if err != nil {
			return purged, fmt.Errorf("purge %s: %w", req.RoomID, err)
		}
		if done {
			return purged, nil
		}
		from = next
	}
}

// purgeBatch deletes up to purgeBatch events from the timeline position from onwards, under
// the room lock so that no event is appended (or redacted) half-way through. It returns where
// the next batch starts and whether the purge point was reached.
func (s *Service) purgeBatch(nid, from, cut uint64, req PurgeRequest) (n int, next uint64, done bool, err error) {
	unlock := s.lock(nid)
	defer unlock()
	err = s.st.Update(func(txn *store.Txn) error {
		n, done = 0, true
		room, err := txn.Room(nid)
		if err != nil {
			return err
		}
		keep := map[string]bool{}
		for _, x := range room.Extremities {
			keep[x] = true
		}
		// Collect first, delete after: the walk must not see its own deletions.
		var victims []uint64
		scanned := 0
		err = txn.Timeline(nid, from, false, func(pos uint64) (bool, error) {
			if pos >= cut || pos >= room.Latest {
				return false, nil
			}
			if len(victims) == purgeBatch || scanned == purgeBatch*20 {
				next, done = pos, false
				return false, nil
			}
			scanned++
			rec, err := txn.Event(pos)
			if errors.Is(err, store.ErrNotFound) {
				return true, nil
			}
			if err != nil {
				return false, err
			}
			l, err := events.ParseLite(rec.PDU)
			if err != nil {
				return true, nil // unreadable: leave it for a person to look at
			}
			if req.UpToEventID == "" && l.OriginServerTS >= req.UpToTS {
				return false, nil
			}
			if l.StateKey != nil || keep[rec.ID] || (!req.DeleteLocal && s.isLocalSender(l.Sender)) {
				return true, nil
			}
			victims = append(victims, pos)
			return true, nil
		})
		if err != nil {
			return err
		}
		for _, pos := range victims {
			if err := purgeEvent(txn, nid, pos, req.Tokens); err != nil {
				return err
			}
		}
		n = len(victims)
		return nil
	})
	return n, next, done, err
}

func (s *Service) isLocalSender(sender string) bool {
	_, server, ok := strings.Cut(sender, ":")
	return ok && server == s.server
}

// purgeEvent deletes one event and what indexes it: its relation to a parent (and its share
// of a thread summary), the thread it was the root of, and its search postings.
func purgeEvent(txn *store.Txn, nid, pos uint64, tokens func(*store.EventRecord) []string) error {
	rec, err := txn.Event(pos)
	if err != nil {
		return err
	}
	rel, err := txn.DeleteRelation(pos)
	if err != nil {
		return err
	}
	if rel != nil && rel.RelType == RelThread {
		if err := unthread(txn, rel); err != nil {
			return err
		}
	}
	if th, err := txn.Thread(nid, rec.ID); err == nil {
		if err := txn.DeleteThread(nid, rec.ID, th.Latest); err != nil {
			return err
		}
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if tokens != nil {
		for _, tok := range tokens(rec) {
			if err := txn.DeletePosting(tok, pos); err != nil {
				return err
			}
		}
	}
	return txn.DeleteEvent(pos, rec)
}
