package rooms

import (
	"context"
	"encoding/json"
	"errors"

	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/merr"
	"github.com/hearth-home/hearth/matrix/store"
)

// EventAtTimestamp answers /timestamp_to_event: the room's event closest to ts in the given
// direction (forwards: the first event at or after ts; backwards: the last event at or before
// ts), among the events the user may see. The timeline is in stream order, in which a server's
// own events carry non-decreasing timestamps, so a binary search over stream positions finds
// the boundary in O(log n) reads; the walk from there skips events the user may not see.
func (s *Service) EventAtTimestamp(ctx context.Context, user id.UserID, roomID id.RoomID, ts int64, forwards bool) (*Event, error) {
	var out *Event
	err := s.st.View(func(txn *store.Txn) error {
		nid, err := txn.RoomNID(roomID.String())
		if errors.Is(err, store.ErrNotFound) {
			return merr.Forbidden("you are not allowed to view this room")
		}
		if err != nil {
			return err
		}
		viewer, err := NewViewer(txn, nid, user.String())
		if err != nil {
			return err
		}
		if viewer.current == "" {
			if ok, err := s.worldReadable(txn, nid); err != nil || !ok {
				if err != nil {
					return err
				}
				return merr.Forbidden("you are not allowed to view this room")
			}
		}
		upto := s.st.Stream().Watermark()
		// firstAt is the first timeline position >= p (and <= upto) and its timestamp.
		firstAt := func(p uint64) (uint64, int64, bool, error) {
			var pos uint64
			err := txn.Timeline(nid, p, false, func(q uint64) (bool, error) {
				pos = q
				return false, nil
			})
			if err != nil || pos == 0 || pos > upto {
				return 0, 0, false, err
			}
			t, err := eventTS(txn, pos)
			return pos, t, true, err
		}
		// Smallest p whose first event is at or after ts (forwards) / after ts (backwards),
		// or has no event at all.
		lo, hi := uint64(0), upto+1
		for lo < hi {
			mid := lo + (hi-lo)/2
			_, t, ok, err := firstAt(mid)
			if err != nil {
				return err
			}
			if !ok || t > ts || (forwards && t == ts) {
				hi = mid
			} else {
				lo = mid + 1
			}
		}
		// Walk from the boundary in the asked direction to the first visible event.
		found := errors.New("found")
		scanned := 0
		visit := func(pos uint64) (bool, error) {
			if pos > upto {
				return false, nil
			}
			scanned++
			ev, err := loadEvent(txn, pos, roomID.String())
			if err != nil {
				return false, err
			}
			ok, err := viewer.CanSee(ev)
			if err != nil {
				return false, err
			}
			if ok {
				out = ev
				return false, found
			}
			return scanned < 1000, nil
		}
		err = txn.Timeline(nid, lo, !forwards, visit)
		if err != nil && !errors.Is(err, found) {
			return err
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if out == nil {
		return nil, merr.NotFound("no event found in that direction from %d", ts)
	}
	return out, nil
}

func eventTS(txn *store.Txn, pos uint64) (int64, error) {
	rec, err := txn.Event(pos)
	if err != nil {
		return 0, err
	}
	var p struct {
		TS int64 `json:"origin_server_ts"`
	}
	_ = json.Unmarshal(rec.PDU, &p)
	return p.TS, nil
}
