package rooms

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"maunium.net/go/mautrix/federation/eventauth"
	"maunium.net/go/mautrix/federation/pdu"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/change"
	"github.com/hearth-home/hearth/matrix/events"
	"github.com/hearth-home/hearth/matrix/merr"
	"github.com/hearth-home/hearth/matrix/store"
)

// Remote is an event from another server whose format, signatures and hashes the federation
// layer has already checked. JSON is what is stored (the redacted form when the hash was wrong).
type Remote struct {
	ID   id.EventID
	PDU  *pdu.PDU
	JSON []byte
}

// ResolvedState is room state by (type, state_key): what state resolution works on.
type ResolvedState = map[pdu.StateKey]id.EventID

// Resolver resolves forked room state (state resolution v2 / v2.1). It is injected so that this
// package holds no algorithm of its own; load returns nil for unknown events.
type Resolver func(ctx context.Context, rv id.RoomVersion, sets []ResolvedState, load func(ids []id.EventID) ([]*pdu.PDU, error)) (ResolvedState, error)

// SetResolver installs state resolution. Without it a fork (more than one prev event, or more
// than one forward extremity) cannot be accepted.
func (s *Service) SetResolver(r Resolver) { s.resolve = r }

// MissingEventsError says which events must be fetched before an event can be accepted.
type MissingEventsError struct {
	Prev []id.EventID
	Auth []id.EventID
}

func (e *MissingEventsError) Error() string {
	return fmt.Sprintf("missing %d prev and %d auth events", len(e.Prev), len(e.Auth))
}

// ReceiveOpts adjust Receive.
type ReceiveOpts struct {
	// StateBefore, when set, is the state before the event as another server reported it
	// (/state_ids), used when the event's prev events cannot be fetched. All of its events must
	// be stored (as outliers at least).
	StateBefore []id.EventID
	// PrevStates gives, for prev events that have no place in the DAG here (never seen, or
	// stored only as outliers), the state before each as another server reported it
	// (/state_ids at that prev event). The prev event itself must be stored (as an outlier at
	// least); it is laid over that state when it is an accepted state event, which makes the
	// state after it. Prev events not listed here must be in the DAG.
	PrevStates map[id.EventID][]id.EventID
}

// Received says what became of a remote event.
type Received struct {
	Pos        uint64
	Rejected   bool
	SoftFailed bool
	Known      bool // it was already stored; nothing changed
	Reason     string
}

// RoomVersion returns a known room's version; ok is false for rooms not known here and for stub
// rooms (known only through an invite).
func (s *Service) RoomVersion(roomID id.RoomID) (rv id.RoomVersion, ok bool, err error) {
	err = s.st.View(func(txn *store.Txn) error {
		nid, err := txn.RoomNID(roomID.String())
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		rec, err := txn.Room(nid)
		if err != nil {
			return err
		}
		rv, ok = id.RoomVersion(rec.Version), !rec.Stub
		return nil
	})
	return rv, ok, err
}

// KnownEvents returns the subset of ids that are stored (in any state).
func (s *Service) KnownEvents(ids []id.EventID) (map[id.EventID]bool, error) {
	out := map[id.EventID]bool{}
	err := s.st.View(func(txn *store.Txn) error {
		for _, e := range ids {
			_, err := txn.EventPos(e.String())
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			out[e] = true
		}
		return nil
	})
	return out, err
}

// Receive accepts one remote event into a room we are in, following the spec's checks on receipt
// of a PDU from step 4 on: auth against its own auth events, against the state before it
// (resolved from its prev events) and soft-fail against the current state. Rejected events are
// kept (flagged) so that they are not fetched again; soft-failed ones are stored but are neither
// shown nor built upon. All prev and auth events must be stored already, else a
// *MissingEventsError names them.
func (s *Service) Receive(ctx context.Context, ev Remote, getKey pdu.GetKeyFunc, o ReceiveOpts) (*Received, error) {
	roomID := ev.PDU.RoomID
	nid, err := s.roomNID(roomID)
	if err != nil {
		return nil, err
	}
	unlock := s.lock(nid)
	defer unlock()
	var out *Received
	err = s.st.Update(func(txn *store.Txn) error {
		if pos, err := txn.EventPos(ev.ID.String()); err == nil {
			out = &Received{Pos: pos, Known: true}
			return nil
		}
		r, err := loadRoom(txn, nid)
		if err != nil {
			return err
		}
		if r.rec.Stub {
			return merr.NotFound("room %s is not joined here", roomID)
		}
		out, err = s.receive(ctx, txn, r, ev, getKey, o)
		if err != nil {
			return err
		}
		return txn.PutRoom(r.nid, r.rec)
	})
	return out, err
}

func (s *Service) receive(ctx context.Context, txn *store.Txn, r *room, ev Remote, getKey pdu.GetKeyFunc, o ReceiveOpts) (*Received, error) {
	rv := id.RoomVersion(r.rec.Version)
	if miss, err := missing(txn, ev.PDU, o); err != nil {
		return nil, err
	} else if miss != nil {
		return nil, miss
	}
	get := s.getEvents(txn)
	// The state before is worked out even for an event that step 4 rejects: a rejected event
	// keeps it as its state after (it changes nothing), and a later event may name the
	// rejected one among its prev events.
	var before uint64
	var beforeMap map[uint64]uint64
	var err error
	if o.StateBefore != nil {
		before, beforeMap, err = stateFromIDs(txn, o.StateBefore)
	} else {
		before, beforeMap, err = s.stateBefore(ctx, txn, r, ev.PDU, o.PrevStates)
	}
	if err != nil {
		return nil, err
	}
	// Step 4: the event must pass the auth rules with its own auth events.
	if err := events.AuthorizeEvent(rv, ev.PDU, nil, get, getKey); err != nil {
		return s.keepRejected(txn, r, ev, before, fmt.Sprintf("auth events: %v", err))
	}
	// Step 5: ... and with the state before it.
	if err := s.authorizeAgainst(txn, rv, ev.PDU, beforeMap, get, getKey); err != nil {
		return s.keepRejected(txn, r, ev, before, fmt.Sprintf("state before: %v", err))
	}
	// Step 6: soft-fail against the current state, unless that is the same state.
	softFailed := false
	if r.rec.Snapshot != before {
		cur, err := loadSnapshot(txn, r.rec.Snapshot)
		if err != nil {
			return nil, err
		}
		if err := s.authorizeAgainst(txn, rv, ev.PDU, cur, get, getKey); err != nil {
			softFailed = true
		}
	}
	pos, err := txn.AllocPos(store.KindEvent)
	if err != nil {
		return nil, err
	}
	rec := &store.EventRecord{Room: r.nid, Snapshot: before, After: before, ID: ev.ID.String(), PDU: ev.JSON}
	if softFailed {
		rec.Flags |= store.FlagSoftFailed
		return &Received{Pos: pos, SoftFailed: true}, txn.PutEvent(pos, rec)
	}
	if ev.PDU.StateKey != nil {
		sk, err := txn.StateKeyNID(ev.PDU.Type, *ev.PDU.StateKey, true)
		if err != nil {
			return nil, err
		}
		after := maps1(beforeMap, sk, pos)
		if rec.After, err = s.snapshotFor(txn, before, beforeMap, after); err != nil {
			return nil, err
		}
	}
	if o.StateBefore != nil || len(o.PrevStates) > 0 { // history before it may be missing (backfill_gap.go)
		if err := flagGap(txn, rec, ev.PDU); err != nil {
			return nil, err
		}
	}
	if err := txn.PutEvent(pos, rec); err != nil {
		return nil, err
	}
	b := &events.Built{ID: ev.ID, PDU: ev.PDU, JSON: ev.JSON}
	if ev.PDU.Type == "m.room.redaction" {
		if err := s.applyRedaction(txn, r, b); err != nil {
			return nil, err
		}
	}
	if err := s.indexRelations(txn, r, b, pos); err != nil {
		return nil, err
	}
	if err := s.advance(ctx, txn, r, ev, pos, rec.After); err != nil {
		return nil, err
	}
	ch := change.Change{Pos: pos, Kind: change.Event, Room: r.nid, RoomID: r.rec.ID, EventID: ev.ID.String(), EventType: ev.PDU.Type, StateKey: ev.PDU.StateKey, Sender: ev.PDU.Sender.String(), Membership: membershipOf(ev.PDU)}
	txn.Notify(pos, ch)
	return &Received{Pos: pos}, nil
}

// advance moves the room's forward extremities and current state past a newly accepted event.
func (s *Service) advance(ctx context.Context, txn *store.Txn, r *room, ev Remote, pos, after uint64) error {
	behind, err := behindRejected(txn, ev.PDU.PrevEvents)
	if err != nil {
		return err
	}
	ext := []string{ev.ID.String()}
	for _, x := range r.rec.Extremities {
		if !slices.Contains(ev.PDU.PrevEvents, id.EventID(x)) && x != ev.ID.String() && !behind[id.EventID(x)] {
			ext = append(ext, x)
		}
	}
	newCur := after
	if len(ext) > 1 {
		sets := make([]uint64, 0, len(ext))
		for _, x := range ext {
			if x == ev.ID.String() {
				sets = append(sets, after)
				continue
			}
			p, err := txn.EventPos(x)
			if err != nil {
				return fmt.Errorf("extremity %s: %w", x, err)
			}
			xr, err := txn.Event(p)
			if err != nil {
				return err
			}
			sets = append(sets, xr.After)
		}
		var err error
		if newCur, _, err = s.resolveSnapshots(ctx, txn, r, sets); err != nil {
			return err
		}
	}
	if err := s.setCurrent(txn, r, newCur); err != nil {
		return err
	}
	r.rec.Extremities = ext
	if ev.PDU.Depth > r.rec.Depth {
		r.rec.Depth = ev.PDU.Depth
	}
	r.rec.Latest = pos
	return nil
}

// maxRejectedWalk bounds the walk of behindRejected.
const maxRejectedWalk = 100

// behindRejected lists the events that prevs reach through rejected or soft-failed events
// (which never become forward extremities). A new event building on such an event supersedes
// them as extremities although it does not name them; otherwise each rejected link in a chain
// would leave its predecessor as an extremity for good. Synapse does the same.
func behindRejected(txn *store.Txn, prevs []id.EventID) (map[id.EventID]bool, error) {
	out := map[id.EventID]bool{}
	queue := slices.Clone(prevs)
	for steps := 0; len(queue) > 0 && steps < maxRejectedWalk; steps++ {
		e := queue[0]
		queue = queue[1:]
		pos, err := txn.EventPos(e.String())
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		rec, err := txn.Event(pos)
		if err != nil {
			return nil, err
		}
		if rec.Flags&store.FlagOutlier != 0 || rec.Flags&(store.FlagRejected|store.FlagSoftFailed) == 0 {
			continue
		}
		p, err := events.Parse(rec.PDU)
		if err != nil {
			return nil, fmt.Errorf("event %s: %w", e, err)
		}
		for _, pe := range p.PrevEvents {
			if !out[pe] {
				out[pe] = true
				queue = append(queue, pe)
			}
		}
	}
	return out, nil
}

// setCurrent makes snapshot nid the room's current state, rewriting the current-state index and
// the local users' membership index where they changed.
func (s *Service) setCurrent(txn *store.Txn, r *room, nid uint64) error {
	if nid == r.rec.Snapshot {
		return nil
	}
	old, err := loadSnapshot(txn, r.rec.Snapshot)
	if err != nil {
		return err
	}
	cur, err := loadSnapshot(txn, nid)
	if err != nil {
		return err
	}
	for sk, pos := range cur {
		if old[sk] == pos {
			continue
		}
		if err := txn.SetCurrentState(r.nid, sk, pos); err != nil {
			return err
		}
		if err := s.syncMembership(txn, r, sk, pos); err != nil {
			return err
		}
	}
	for sk := range old {
		if _, ok := cur[sk]; !ok {
			if err := txn.DelCurrentState(r.nid, sk); err != nil {
				return err
			}
		}
	}
	r.rec.Snapshot = nid
	return nil
}

// syncMembership updates the per-user membership index when a local user's member event became
// current.
func (s *Service) syncMembership(txn *store.Txn, r *room, sk, pos uint64) error {
	typ, key, err := txn.StateKeyOf(sk)
	if err != nil || typ != "m.room.member" || !s.IsLocal(id.UserID(key)) {
		return err
	}
	rec, err := txn.Event(pos)
	if err != nil {
		return err
	}
	l, err := events.ParseLite(rec.PDU)
	if err != nil {
		return err
	}
	m := l.Membership()
	if err := txn.SetMembership(key, r.nid, m, pos); err != nil {
		return err
	}
	if m == "join" || m == "invite" {
		return txn.SetForgotten(key, r.nid, false)
	}
	return nil
}

func (s *Service) authorizeAgainst(txn *store.Txn, rv id.RoomVersion, p *pdu.PDU, state map[uint64]uint64, get eventauth.GetEventsFunc, getKey pdu.GetKeyFunc) error {
	auth := []*pdu.PDU{}
	for _, k := range p.AuthEventSelection(events.Base(rv)) {
		sk, err := txn.StateKeyNID(k.Type, k.StateKey, false)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		pos, ok := state[sk]
		if !ok {
			continue
		}
		rec, err := txn.Event(pos)
		if err != nil {
			return err
		}
		ap, err := events.Parse(rec.PDU)
		if err != nil {
			return err
		}
		auth = append(auth, ap)
	}
	return events.AuthorizeEvent(rv, p, auth, get, getKey)
}

// keepRejected stores an event that failed auth so that it is never fetched or checked again.
func (s *Service) keepRejected(txn *store.Txn, r *room, ev Remote, before uint64, why string) (*Received, error) {
	pos, err := txn.AllocPos(store.KindEvent)
	if err != nil {
		return nil, err
	}
	rec := &store.EventRecord{Room: r.nid, Snapshot: before, After: before, ID: ev.ID.String(), PDU: ev.JSON, Flags: store.FlagRejected}
	s.log.Info("rejected remote event", "event_id", ev.ID, "room_id", r.rec.ID, "reason", why)
	return &Received{Pos: pos, Rejected: true, Reason: why}, txn.PutEvent(pos, rec)
}

// missing lists the prev and auth events of p that are not stored. A prev event stored only as
// an outlier counts as missing: its state is not known, so the state before p cannot be
// computed from it. Prev events whose state o carries count as present.
func missing(txn *store.Txn, p *pdu.PDU, o ReceiveOpts) (*MissingEventsError, error) {
	var m MissingEventsError
	for _, e := range p.PrevEvents {
		if o.StateBefore != nil {
			break
		}
		if _, ok := o.PrevStates[e]; ok {
			continue
		}
		pos, err := txn.EventPos(e.String())
		if errors.Is(err, store.ErrNotFound) {
			m.Prev = append(m.Prev, e)
			continue
		} else if err != nil {
			return nil, err
		}
		rec, err := txn.Event(pos)
		if err != nil {
			return nil, err
		}
		if rec.Flags&store.FlagOutlier != 0 {
			m.Prev = append(m.Prev, e)
		}
	}
	for _, e := range p.AuthEvents {
		if _, err := txn.EventPos(e.String()); errors.Is(err, store.ErrNotFound) {
			m.Auth = append(m.Auth, e)
		} else if err != nil {
			return nil, err
		}
	}
	if len(m.Prev) == 0 && len(m.Auth) == 0 {
		return nil, nil
	}
	return &m, nil
}

// Extremities returns a room's forward extremities (the earliest_events of get_missing_events).
func (s *Service) Extremities(roomID id.RoomID) ([]id.EventID, error) {
	nid, err := s.roomNID(roomID)
	if err != nil {
		return nil, err
	}
	var out []id.EventID
	err = s.st.View(func(txn *store.Txn) error {
		rec, err := txn.Room(nid)
		if err != nil {
			return err
		}
		for _, e := range rec.Extremities {
			out = append(out, id.EventID(e))
		}
		return nil
	})
	return out, err
}

// CheckServerACL answers 403 M_FORBIDDEN when the room's current server ACL denies server
// (PDUs and EDUs from such a server are dropped). Unknown rooms pass: the caller decides.
func (s *Service) CheckServerACL(roomID id.RoomID, server string) error {
	return s.st.View(func(txn *store.Txn) error {
		nid, err := txn.RoomNID(roomID.String())
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		return s.checkACL(txn, nid, server)
	})
}

// hasLocalJoined reports whether a local user is joined to the room in its current state: this
// server then receives the room's events; otherwise its copy of the room is history.
func (s *Service) hasLocalJoined(txn *store.Txn, nid uint64) (bool, error) {
	servers, err := s.joinedServers(txn, nid)
	return err == nil && slices.Contains(servers, s.server), err
}

// IsResident reports whether this server is in the room: the room is known (not a stub) and a
// local user is joined, or it was created here.
func (s *Service) IsResident(roomID id.RoomID) (bool, error) {
	resident := false
	err := s.st.View(func(txn *store.Txn) error {
		nid, err := txn.RoomNID(roomID.String())
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		rec, err := txn.Room(nid)
		if err != nil || rec.Stub {
			return err
		}
		resident, err = s.hasLocalJoined(txn, nid)
		return err
	})
	return resident, err
}

// Outgoing is a local event to hand to the other servers of its room.
type Outgoing struct {
	Pos        uint64
	RoomID     id.RoomID
	PDU        json.RawMessage
	Type       string
	StateKey   *string
	Membership string
}

// OutgoingFrom lists this server's own events after position after (up to the watermark and at
// most limit), skipping what never goes out: events from other servers, outliers, rejected,
// soft-failed and backfilled events, and our joins made through another server. last is the
// position the caller may record as done.
func (s *Service) OutgoingFrom(after uint64, limit int) (out []Outgoing, last uint64, err error) {
	wm := s.st.Stream().Watermark()
	last = after
	if after >= wm {
		return nil, wm, nil
	}
	err = s.st.View(func(txn *store.Txn) error {
		scanned := 0
		return txn.EventsFrom(after+1, func(pos uint64, rec *store.EventRecord) (bool, error) {
			if pos > wm || len(out) >= limit || scanned >= limit*20 {
				return false, nil
			}
			scanned++
			last = pos
			if store.Hidden(rec.Flags) || rec.Flags&(store.FlagBackfilled|store.FlagViaFederation) != 0 {
				return true, nil
			}
			l, err := events.ParseLite(rec.PDU)
			if err != nil || !s.IsLocal(id.UserID(l.Sender)) {
				return err == nil, err
			}
			room, err := txn.Room(rec.Room)
			if err != nil {
				return false, err
			}
			o := Outgoing{Pos: pos, RoomID: id.RoomID(room.ID), PDU: rec.PDU, Type: l.Type, StateKey: l.StateKey}
			if l.Type == "m.room.member" {
				o.Membership = l.Membership()
			}
			out = append(out, o)
			return true, nil
		})
	})
	if err == nil && len(out) < limit && last < wm {
		// Nothing more stored up to the watermark: the rest are other kinds of position.
		last = wm
	}
	return out, last, err
}

// FanoutPos returns the persisted fan-out position; SetFanoutPos stores it.
func (s *Service) FanoutPos() (pos uint64, ok bool, err error) {
	err = s.st.View(func(txn *store.Txn) error {
		pos, err = txn.FanoutPos()
		return err
	})
	return pos, pos != 0, err
}

// SetFanoutPos records how far local events were handed to the federation queues.
func (s *Service) SetFanoutPos(pos uint64) error {
	return s.st.Update(func(txn *store.Txn) error { return txn.SetFanoutPos(pos) })
}

// Watermark is the stream position below which everything is committed.
func (s *Service) Watermark() uint64 { return s.st.Stream().Watermark() }
