package rooms

import (
	"context"
	"errors"
	"strings"

	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/store"
)

// Jump to date on other servers: used when the room's history here cannot answer (we joined
// after the time asked for, or the event found borders history we never fetched).

// TimestampFetcher asks the other servers in a room, in turn, for their event closest to ts
// (federation /timestamp_to_event). Set by the federation layer.
type TimestampFetcher func(ctx context.Context, roomID id.RoomID, ts int64, forwards bool) (*TimestampResult, error)

// SetTimestampFetcher installs the remote part of jump to date. Call before serving.
func (s *Service) SetTimestampFetcher(f TimestampFetcher) { s.tsFetch = f }

// Backfill rounds and page size used to bring a remote answer into the backfill order.
const (
	tsBackfillRounds = 10
	tsBackfillLimit  = 100
)

// remoteAtTimestamp asks other servers and returns their answer when it is closer to ts than
// local (which may be nil), after trying to backfill it. An event that arrives here but that
// the user may not see is not returned; one that cannot be fetched is returned as the remote
// server named it, as the spec allows (the client's /context then fails, not the lookup).
func (s *Service) remoteAtTimestamp(ctx context.Context, user id.UserID, roomID id.RoomID, ts int64, forwards bool, local *Event) *TimestampResult {
	r, err := s.tsFetch(ctx, roomID, ts, forwards)
	if err != nil {
		s.log.Debug("remote timestamp_to_event", "room_id", roomID, "err", err)
		return nil
	}
	if !strings.HasPrefix(r.EventID.String(), "$") || (forwards && r.OriginServerTS < ts) || (!forwards && r.OriginServerTS > ts) {
		s.log.Info("remote timestamp_to_event answer ignored", "room_id", roomID, "event_id", r.EventID, "ts", r.OriginServerTS)
		return nil
	}
	if local != nil && distance(r.OriginServerTS, ts) >= distance(local.Lite.OriginServerTS, ts) {
		return nil
	}
	stored, visible := s.backfillUntil(ctx, user, roomID, r.EventID)
	if stored && !visible {
		return nil
	}
	if stored {
		// Our copy's timestamp is the one the event is signed with.
		_ = s.st.View(func(txn *store.Txn) error {
			ev, err := eventByID(txn, r.EventID.String())
			if err == nil {
				r.OriginServerTS = ev.Lite.OriginServerTS
			}
			return nil
		})
	}
	return r
}

func distance(a, b int64) int64 {
	if a > b {
		return a - b
	}
	return b - a
}

// backfillUntil pages history back from other servers until eventID is in one of the room's
// orders here, a bounded number of rounds. stored reports that it is; visible that the user
// may see it.
func (s *Service) backfillUntil(ctx context.Context, user id.UserID, roomID id.RoomID, eventID id.EventID) (stored, visible bool) {
	for round := 0; ; round++ {
		var err error
		err = s.st.View(func(txn *store.Txn) error {
			pos, err := txn.EventPos(eventID.String())
			if err != nil {
				return err
			}
			ev, err := loadEvent(txn, pos, roomID.String())
			if err != nil || store.Hidden(ev.Rec.Flags) || ev.RoomID != roomID.String() {
				return errors.Join(err, store.ErrNotFound)
			}
			stored = true
			v, err := NewViewer(txn, ev.Rec.Room, user.String())
			if err != nil {
				return err
			}
			visible, err = v.CanSee(ev)
			return err
		})
		if err == nil || stored || round == tsBackfillRounds || ctx.Err() != nil {
			return stored, visible
		}
		if !s.fetchHistory(ctx, roomID, tsBackfillLimit) {
			return false, false
		}
	}
}
