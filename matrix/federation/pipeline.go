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

// gapLimit bounds how many missing events one incoming event may pull in through
// get_missing_events before the state at the gap is fetched instead.
const gapLimit = 20

// maxFetchDepth bounds recursion when fetched events have gaps of their own.
const maxFetchDepth = 2

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

// accept stores one verified event, fetching what it depends on first: a gap before it through
// get_missing_events, then (gap still open) the state before it through /state_ids, and last any
// auth events still unknown through /event_auth. The order is Synapse's, which peers expect.
func (s *Service) accept(ctx context.Context, origin string, rv id.RoomVersion, ev rooms.Remote, depth int) error {
	getKey := s.keys.GetKey(ctx)
	opts := rooms.ReceiveOpts{}
	res, err := s.rooms.Receive(ctx, ev, getKey, opts)
	var miss *rooms.MissingEventsError
	if !errors.As(err, &miss) {
		return s.outcome(ev, res, err)
	}
	if depth > maxFetchDepth {
		return fmt.Errorf("event %s: %w", ev.ID, err)
	}
	if len(miss.Prev) > 0 {
		usable := s.fillGap(ctx, origin, rv, ev, depth)
		res, err = s.rooms.Receive(ctx, ev, getKey, opts)
		if errors.As(err, &miss) && len(miss.Prev) > 0 && depth == 0 && usable == 0 {
			// The origin pushed an event whose history it cannot (or will not) give us in a
			// usable form: drop it, as Synapse does, rather than build on state we would have
			// to take on trust. A later event will try again.
			return fmt.Errorf("event %s: prev events missing and not fetchable: %w", ev.ID, err)
		}
		if errors.As(err, &miss) && len(miss.Prev) > 0 {
			// The gap is too wide (or the origin would not fill it): take the state before
			// the event from the origin instead, as the spec allows.
			state, serr := s.fetchStateBefore(ctx, origin, rv, ev)
			if serr != nil {
				return fmt.Errorf("event %s: state at the gap: %w", ev.ID, serr)
			}
			opts.StateBefore = state
			res, err = s.rooms.Receive(ctx, ev, getKey, opts)
		}
	}
	if errors.As(err, &miss) && len(miss.Auth) > 0 && len(miss.Prev) == 0 {
		if aerr := s.fetchAuthChain(ctx, origin, rv, ev); aerr != nil {
			return aerr
		}
		res, err = s.rooms.Receive(ctx, ev, getKey, opts)
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

// fillGap asks the origin for the events between our forward extremities and ev and accepts
// them oldest first, returning how many valid events it got. Failures are logged: the caller
// falls back to the state at the gap.
func (s *Service) fillGap(ctx context.Context, origin string, rv id.RoomVersion, ev rooms.Remote, depth int) int {
	ext, err := s.rooms.Extremities(ev.PDU.RoomID)
	if err != nil {
		s.log.Warn("extremities", "room_id", ev.PDU.RoomID, "err", err)
		return 0
	}
	resp, err := s.client.GetMissingEvents(ctx, &mfed.ReqGetMissingEvents{
		ServerName: origin, RoomID: ev.PDU.RoomID, EarliestEvents: ext, LatestEvents: []id.EventID{ev.ID}, Limit: gapLimit,
	})
	if err != nil {
		s.log.Info("get_missing_events failed", "origin", origin, "event_id", ev.ID, "err", err)
		return 0
	}
	got := s.parseAll(ctx, rv, resp.Events)
	sort.SliceStable(got, func(i, j int) bool { return got[i].PDU.Depth < got[j].PDU.Depth })
	usable := 0
	for _, g := range got {
		if g.PDU.RoomID != ev.PDU.RoomID {
			continue
		}
		usable++
		if err := s.accept(ctx, origin, rv, g, depth+1); err != nil {
			s.log.Info("missing event not accepted", "event_id", g.ID, "err", err)
		}
	}
	return usable
}

// fetchStateBefore asks the origin for the state before ev (/state_ids), fetches the events of
// it we lack and stores them as outliers.
func (s *Service) fetchStateBefore(ctx context.Context, origin string, rv id.RoomVersion, ev rooms.Remote) ([]id.EventID, error) {
	ids, err := s.client.GetStateIDs(ctx, origin, ev.PDU.RoomID, ev.ID)
	if err != nil {
		return nil, err
	}
	want := append(append([]id.EventID{}, ids.AuthChain...), ids.PDUs...)
	known, err := s.rooms.KnownEvents(want)
	if err != nil {
		return nil, err
	}
	var fetched []rooms.Remote
	for _, e := range want {
		if known[e] {
			continue
		}
		resp, err := s.client.GetEvent(ctx, origin, e)
		if err != nil {
			return nil, fmt.Errorf("fetch %s: %w", e, err)
		}
		for _, g := range s.parseAll(ctx, rv, resp.PDUs) {
			if g.ID == e {
				fetched = append(fetched, g)
			}
		}
	}
	if err := s.rooms.StoreOutliers(ctx, ev.PDU.RoomID, rv, fetched, s.keys.GetKey(ctx)); err != nil {
		return nil, err
	}
	return ids.PDUs, nil
}
