package rooms

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"

	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/merr"
	"github.com/hearth-home/hearth/matrix/store"
)

// Jump to date (client GET /v1/rooms/{roomId}/timestamp_to_event, federation GET
// /v1/timestamp_to_event/{roomId}). Events are found through the store's timestamp index
// (store/tsindex.go), ordered as Synapse orders them: by origin_server_ts, then depth, then
// stream position. Forwards is the first event at or after ts, backwards the last at or
// before ts. Timestamps are the senders' claims (an application service may backdate with
// ?ts), so no order of the room says anything about them.

// tsIndexBatch bounds the events indexed per transaction: Badger's transaction size limit,
// and a bounded pause for whoever waits on the catch-up.
const tsIndexBatch = 2000

// maxTimestampScan bounds the index entries one lookup reads past events the asker may not
// see; beyond it the answer is "nothing found" rather than a walk through the whole room.
const maxTimestampScan = 1000

// TimestampResult is the event a jump to date found.
type TimestampResult struct {
	EventID        id.EventID
	OriginServerTS int64
}

// catchUpTimestamps brings the timestamp index up to the stream watermark. Concurrent
// catch-ups conflict on the mark and the store runs the loser again, which then finds the
// work done.
func (s *Service) catchUpTimestamps() error {
	upto := s.st.Stream().Watermark()
	for {
		done := false
		err := s.st.Update(func(txn *store.Txn) error {
			mark, err := txn.TSIndexMark()
			if err != nil {
				return err
			}
			if mark >= upto {
				done = true
				return nil
			}
			last, n, err := txn.IndexTimestamps(mark, upto, tsIndexBatch)
			if err != nil {
				return err
			}
			if n < tsIndexBatch {
				last, done = upto, true // nothing else below the watermark
			}
			return txn.SetTSIndexMark(last)
		})
		if err != nil {
			return fmt.Errorf("timestamp index: %w", err)
		}
		if done {
			return nil
		}
	}
}

// findAtTimestamp walks room nid's events from ts in the asked direction and returns the first
// one that is in one of the room's orders (not an outlier, rejected or soft-failed) and that
// see accepts.
func findAtTimestamp(txn *store.Txn, nid uint64, roomID string, ts int64, forwards bool, see func(*Event) (bool, error)) (*Event, error) {
	var out *Event
	scanned := 0
	err := txn.TimestampOrder(nid, ts, !forwards, func(_ int64, pos uint64) (bool, error) {
		scanned++
		if scanned > maxTimestampScan {
			return false, nil
		}
		ev, err := loadEvent(txn, pos, roomID)
		if errors.Is(err, store.ErrNotFound) {
			return true, nil // purged since it was indexed
		}
		if err != nil {
			return false, err
		}
		if ev.Rec.Room != nid || store.Hidden(ev.Rec.Flags) {
			return true, nil
		}
		ok, err := see(ev)
		if err != nil || ok {
			if ok {
				out = ev
			}
			return false, err
		}
		return true, nil
	})
	return out, err
}

// EventAtTimestamp answers a local user's jump to date. The user must be in the room or the
// room world-readable (403 M_FORBIDDEN otherwise); events the user may not see are skipped.
// When nothing is found here, or the event found forwards follows history this server does
// not have, the other servers in the room are asked (federation /timestamp_to_event) and
// their answer is used if it is closer to ts; this server then tries to backfill it so that
// /context and /messages work from there.
func (s *Service) EventAtTimestamp(ctx context.Context, user id.UserID, roomID id.RoomID, ts int64, forwards bool) (*TimestampResult, error) {
	if err := s.catchUpTimestamps(); err != nil {
		return nil, err
	}
	local, gap, err := s.localAtTimestamp(user, roomID, ts, forwards)
	if err != nil {
		return nil, err
	}
	if (local == nil || gap) && s.tsFetch != nil {
		if r := s.remoteAtTimestamp(ctx, user, roomID, ts, forwards, local); r != nil {
			return r, nil
		}
	}
	if local == nil {
		return nil, merr.NotFound("no event found in that direction from %d", ts)
	}
	return &TimestampResult{EventID: id.EventID(local.Rec.ID), OriginServerTS: local.Lite.OriginServerTS}, nil
}

// localAtTimestamp finds the event among those stored here. gap reports, looking forwards,
// that the event found has prev events this server does not hold in any order: history
// between ts and the event may be missing.
func (s *Service) localAtTimestamp(user id.UserID, roomID id.RoomID, ts int64, forwards bool) (found *Event, gap bool, err error) {
	err = s.st.View(func(txn *store.Txn) error {
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
		found, err = findAtTimestamp(txn, nid, roomID.String(), ts, forwards, viewer.CanSee)
		if err != nil || found == nil || !forwards {
			return err
		}
		gap, err = missingPrevEvents(txn, found)
		return err
	})
	return found, gap, err
}

// missingPrevEvents reports whether some prev event of ev is unknown here or only an outlier.
func missingPrevEvents(txn *store.Txn, ev *Event) (bool, error) {
	for _, p := range ev.Lite.PrevEvents {
		pos, err := txn.EventPos(p)
		if errors.Is(err, store.ErrNotFound) {
			return true, nil
		}
		if err != nil {
			return false, err
		}
		rec, err := txn.Event(pos)
		if err != nil {
			return false, err
		}
		if rec.Flags&store.FlagOutlier != 0 {
			return true, nil
		}
	}
	return false, nil
}

// FedEventAtTimestamp answers another server's jump to date from the events stored here:
// unknown room 404, a server the room's ACL denies 403, and only events the server may see.
func (s *Service) FedEventAtTimestamp(ctx context.Context, server string, roomID id.RoomID, ts int64, forwards bool) (*TimestampResult, error) {
	if err := s.catchUpTimestamps(); err != nil {
		return nil, err
	}
	var out *Event
	err := s.st.View(func(txn *store.Txn) error {
		nid, v, err := s.fedRoom(txn, roomID, server)
		if err != nil {
			return err
		}
		out, err = findAtTimestamp(txn, nid, roomID.String(), ts, forwards, v.CanSee)
		return err
	})
	if err != nil {
		return nil, err
	}
	if out == nil {
		return nil, merr.NotFound("no event found in that direction from %d", ts)
	}
	return &TimestampResult{EventID: id.EventID(out.Rec.ID), OriginServerTS: out.Lite.OriginServerTS}, nil
}

// ParseTimestampQuery reads the ts and dir query parameters of /timestamp_to_event (the client
// and the federation endpoint take the same ones).
func ParseTimestampQuery(q url.Values) (ts int64, forwards bool, err error) {
	if !q.Has("ts") {
		return 0, false, merr.MissingParam("ts is required")
	}
	ts, err = strconv.ParseInt(q.Get("ts"), 10, 64)
	if err != nil || ts < 0 {
		return 0, false, merr.InvalidParam("ts must be a timestamp in milliseconds")
	}
	switch q.Get("dir") {
	case "f":
		return ts, true, nil
	case "b":
		return ts, false, nil
	case "":
		return 0, false, merr.MissingParam("dir is required")
	default:
		return 0, false, merr.InvalidParam("dir must be f or b")
	}
}
