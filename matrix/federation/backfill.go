package federation

import (
	"context"

	mfed "maunium.net/go/mautrix/federation"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/merr"
	"github.com/hearth-home/hearth/matrix/rooms"
)

// backfill is the room service's Backfiller: it asks the other servers in the room, in turn,
// for history older than from, makes sure every fetched event's auth events are stored, and
// hands the events to the room's backfill order (gap 0) or to the order of the gap before the
// timeline event at position gap.
func (s *Service) backfill(ctx context.Context, roomID id.RoomID, from []id.EventID, limit int, gap uint64) error {
	rv, ok, err := s.rooms.RoomVersion(roomID)
	if err != nil {
		return err
	}
	if !ok {
		return merr.NotFound("room %s is not joined here", roomID)
	}
	servers, err := s.rooms.JoinedServers(ctx, roomID)
	if err != nil {
		return err
	}
	var lastErr error
	for _, srv := range candidates(s.server, servers) {
		resp, err := s.client.Backfill(ctx, &mfed.ReqBackfill{ServerName: srv, RoomID: roomID, Limit: limit, BackfillFrom: from})
		if err != nil {
			lastErr = remoteErr("backfill", srv, err)
			continue
		}
		evs := s.parseAll(ctx, rv, resp.PDUs)
		if err := s.ensureAuth(ctx, srv, rv, roomID, evs); err != nil {
			lastErr = err
			continue
		}
		if gap != 0 {
			return s.rooms.StoreGapFill(ctx, roomID, gap, evs, s.keys.GetKey(ctx))
		}
		return s.rooms.StoreBackfilled(ctx, roomID, evs, s.keys.GetKey(ctx))
	}
	return lastErr
}

// ensureAuth stores the auth chains of events whose auth events are neither stored nor among
// evs themselves.
func (s *Service) ensureAuth(ctx context.Context, srv string, rv id.RoomVersion, roomID id.RoomID, evs []rooms.Remote) error {
	inBatch := map[id.EventID]bool{}
	var want []id.EventID
	for _, e := range evs {
		inBatch[e.ID] = true
		want = append(want, e.PDU.AuthEvents...)
	}
	known, err := s.rooms.KnownEvents(want)
	if err != nil {
		return err
	}
	for _, e := range evs {
		for _, a := range e.PDU.AuthEvents {
			if known[a] || inBatch[a] {
				continue
			}
			chain, err := s.client.GetEventAuthChain(ctx, srv, roomID, e.ID)
			if err != nil {
				return remoteErr("event_auth", srv, err)
			}
			if err := s.rooms.StoreOutliers(ctx, roomID, rv, s.parseAll(ctx, rv, chain.AuthChain), s.keys.GetKey(ctx)); err != nil {
				return err
			}
			known, err = s.rooms.KnownEvents(want)
			if err != nil {
				return err
			}
			break
		}
	}
	return nil
}
