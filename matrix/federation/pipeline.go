package federation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	mfed "maunium.net/go/mautrix/federation"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/events"
	"github.com/hearth-home/hearth/matrix/merr"
	"github.com/hearth-home/hearth/matrix/rooms"
)

// gapLimit bounds how many missing events one pushed event may pull in through
// get_missing_events.
const gapLimit = 20

// HandlePDU runs one PDU of a /send transaction from origin through the checks on receipt:
// format, signatures and hash (the keyring), then missing auth and prev events fetched from the
// origin, then auth and soft-fail (the room service). The error is what the /send answer reports
// for this PDU; it never fails the transaction as a whole.
func (s *Service) HandlePDU(ctx context.Context, origin string, raw json.RawMessage) (id.EventID, error) {
	var head struct {
		RoomID id.RoomID `json:"room_id"`
	}
	if err := json.Unmarshal(raw, &head); err != nil || head.RoomID == "" {
		return "", merr.BadJSON("PDU without a room_id")
	}
	rv, ok, err := s.rooms.RoomVersion(head.RoomID)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", merr.NotFound("this server is not in room %s", head.RoomID)
	}
	if err := s.rooms.CheckServerACL(head.RoomID, origin); err != nil {
		return "", err
	}
	ev, err := s.parse(ctx, rv, raw)
	if err != nil {
		// Report the failure under the event's ID when it has one, as the /send answer
		// is keyed by event ID.
		if p, perr := events.Parse(raw); perr == nil {
			if eid, ierr := events.EventID(rv, p); ierr == nil {
				return eid, err
			}
		}
		return "", err
	}
	return ev.ID, s.accept(ctx, origin, rv, ev, 0)
}

// accept stores one verified event from origin: at depth 0 an event origin pushed to us (or
// handed back, as a countersigned join), deeper an event pulled through get_missing_events.
func (s *Service) accept(ctx context.Context, origin string, rv id.RoomVersion, ev rooms.Remote, depth int) error {
	if depth > 0 {
		return s.acceptPulled(ctx, origin, rv, ev)
	}
	return s.acceptPushed(ctx, origin, rv, ev)
}

// acceptPushed stores an event the origin pushed to us (/send). Unknown prev events are asked
// for with get_missing_events and accepted oldest first (acceptPulled); if the gap is still
// open after that, the event is dropped without an error, as Synapse does: a pushed event
// could become the room's only forward extremity, and its state would then be taken on trust.
// Auth events still unknown come last, from /event_auth.
func (s *Service) acceptPushed(ctx context.Context, origin string, rv id.RoomVersion, ev rooms.Remote) error {
	getKey := s.keys.GetKey(ctx)
	res, err := s.rooms.Receive(ctx, ev, getKey, rooms.ReceiveOpts{})
	var miss *rooms.MissingEventsError
	if errors.As(err, &miss) && len(miss.Prev) > 0 {
		s.fillGap(ctx, origin, rv, ev)
		res, err = s.rooms.Receive(ctx, ev, getKey, rooms.ReceiveOpts{})
		if errors.As(err, &miss) && len(miss.Prev) > 0 {
			// Dropped, but not reported as an error in the /send answer: the PDU itself
			// is sound, only its history could not be had, and the origin can do nothing
			// about that answer (Synapse, which handles PDUs after answering, never reports
			// it either; Complement's senders treat any error as a failure). A later event
			// that names it brings it back through get_missing_events.
			s.log.Info("remote event dropped: prev events missing and not fetchable", "origin", origin, "event_id", ev.ID, "err", err)
			return nil
		}
	}
	return s.finish(ctx, origin, rv, ev, rooms.ReceiveOpts{}, res, err)
}

// acceptPulled stores an event that get_missing_events returned. Its own prev events, when
// unknown, are not chased further back: the state after each is asked for instead (/state_ids
// at that prev event), which closes the gap whatever its width.
func (s *Service) acceptPulled(ctx context.Context, origin string, rv id.RoomVersion, ev rooms.Remote) error {
	getKey := s.keys.GetKey(ctx)
	opts := rooms.ReceiveOpts{}
	res, err := s.rooms.Receive(ctx, ev, getKey, opts)
	var miss *rooms.MissingEventsError
	if errors.As(err, &miss) && len(miss.Prev) > 0 {
		opts.PrevStates = make(map[id.EventID][]id.EventID, len(miss.Prev))
		for _, pe := range miss.Prev {
			state, serr := s.fetchStateAt(ctx, origin, rv, ev.PDU.RoomID, pe)
			if serr != nil {
				return fmt.Errorf("event %s: state at prev event %s: %w", ev.ID, pe, serr)
			}
			opts.PrevStates[pe] = state
		}
		res, err = s.rooms.Receive(ctx, ev, getKey, opts)
	}
	return s.finish(ctx, origin, rv, ev, opts, res, err)
}

// finish fetches auth events that are still unknown once the prev events are settled, then
// reports the outcome.
func (s *Service) finish(ctx context.Context, origin string, rv id.RoomVersion, ev rooms.Remote, opts rooms.ReceiveOpts, res *rooms.Received, err error) error {
	var miss *rooms.MissingEventsError
	if errors.As(err, &miss) && len(miss.Auth) > 0 && len(miss.Prev) == 0 {
		if aerr := s.fetchAuthChain(ctx, origin, rv, ev); aerr != nil {
			return aerr
		}
		res, err = s.rooms.Receive(ctx, ev, s.keys.GetKey(ctx), opts)
	}
	if errors.As(err, &miss) {
		return fmt.Errorf("event %s: %w", ev.ID, err)
	}
	return s.outcome(ev, res, err)
}

func (s *Service) outcome(ev rooms.Remote, res *rooms.Received, err error) error {
	if err != nil {
		return err
	}
	if res.Rejected {
		return merr.Forbidden("event %s rejected: %s", ev.ID, res.Reason)
	}
	return nil
}

// fetchAuthChain stores an event's auth chain as outliers.
func (s *Service) fetchAuthChain(ctx context.Context, origin string, rv id.RoomVersion, ev rooms.Remote) error {
	resp, err := s.client.GetEventAuthChain(ctx, origin, ev.PDU.RoomID, ev.ID)
	if err != nil {
		return fmt.Errorf("fetch auth chain of %s from %s: %w", ev.ID, origin, err)
	}
	chain := s.parseAll(ctx, rv, resp.AuthChain)
	return s.rooms.StoreOutliers(ctx, ev.PDU.RoomID, rv, chain, s.keys.GetKey(ctx))
}

// fillGap asks the origin for the events between our forward extremities (earliest_events)
// and the pushed event ev (latest_events) and accepts them oldest first. Failures are logged:
// the caller then drops ev.
func (s *Service) fillGap(ctx context.Context, origin string, rv id.RoomVersion, ev rooms.Remote) {
	ext, err := s.rooms.Extremities(ev.PDU.RoomID)
	if err != nil {
		s.log.Warn("extremities", "room_id", ev.PDU.RoomID, "err", err)
		return
	}
	resp, err := s.client.GetMissingEvents(ctx, &mfed.ReqGetMissingEvents{
		ServerName: origin, RoomID: ev.PDU.RoomID, EarliestEvents: ext, LatestEvents: []id.EventID{ev.ID}, Limit: gapLimit,
	})
	if err != nil {
		s.log.Info("get_missing_events failed", "origin", origin, "event_id", ev.ID, "err", err)
		return
	}
	got := s.parseAll(ctx, rv, resp.Events)
	sort.SliceStable(got, func(i, j int) bool { return got[i].PDU.Depth < got[j].PDU.Depth })
	for _, g := range got {
		if g.PDU.RoomID != ev.PDU.RoomID || g.ID == ev.ID {
			continue
		}
		if err := s.accept(ctx, origin, rv, g, 1); err != nil {
			s.log.Info("missing event not accepted", "event_id", g.ID, "err", err)
		}
	}
}

// fetchStateAt asks the origin for the state before event at (/state_ids), fetches what of it,
// of its auth chain and of the event itself is unknown here, stores those as outliers and
// returns the state's event IDs. Any event that cannot be fetched fails the whole: state with
// holes in it could let through what the full state forbids.
func (s *Service) fetchStateAt(ctx context.Context, origin string, rv id.RoomVersion, roomID id.RoomID, at id.EventID) ([]id.EventID, error) {
	ids, err := s.client.GetStateIDs(ctx, origin, roomID, at)
	if err != nil {
		return nil, fmt.Errorf("state_ids from %s: %w", origin, err)
	}
	want := append(append(append([]id.EventID{}, ids.AuthChain...), ids.PDUs...), at)
	known, err := s.rooms.KnownEvents(want)
	if err != nil {
		return nil, err
	}
	var fetched []rooms.Remote
	seen := make(map[id.EventID]bool, len(want))
	for _, e := range want {
		if known[e] || seen[e] {
			continue
		}
		seen[e] = true
		resp, err := s.client.GetEvent(ctx, origin, e)
		if err != nil {
			return nil, fmt.Errorf("fetch %s: %w", e, err)
		}
		found := false
		for _, g := range s.parseAll(ctx, rv, resp.PDUs) {
			if g.ID == e && g.PDU.RoomID == roomID {
				fetched = append(fetched, g)
				found = true
			}
		}
		if !found {
			return nil, fmt.Errorf("fetch %s: %s did not return a valid copy", e, origin)
		}
	}
	if err := s.rooms.StoreOutliers(ctx, roomID, rv, fetched, s.keys.GetKey(ctx)); err != nil {
		return nil, err
	}
	return ids.PDUs, nil
}
