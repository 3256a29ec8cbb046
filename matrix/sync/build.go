package sync

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"time"

	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/accounts"
	"github.com/hearth-home/hearth/matrix/events"
	"github.com/hearth-home/hearth/matrix/filter"
	"github.com/hearth-home/hearth/matrix/ignore"
	"github.com/hearth-home/hearth/matrix/rooms"
	"github.com/hearth-home/hearth/matrix/store"
)

// defaultTimelineLimit is what a sync without a filter gets per room.
const defaultTimelineLimit = 10

// strippedTypes are the state events shown with an invite.
var strippedTypes = []string{"m.room.create", "m.room.join_rules", "m.room.name", "m.room.avatar", "m.room.canonical_alias", "m.room.encryption", "m.room.topic"}

// pass carries one build's inputs.
type pass struct {
	s      *Service
	txn    *store.Txn
	user   string
	device string
	err    error // first rendering error (see clientEvents)
	// newlyVisible are users who came to share a room with the syncing user in this window;
	// their current presence is sent even if it did not change.
	newlyVisible map[string]bool
	initial      bool
	full         bool
	since        uint64
	sinceTyp     uint64
	upto         uint64
	f            *filter.Filter
	now          int64
	roomAD       map[uint64][]store.AccountDataChange
	ignored      ignore.Set // the user's ignored users (relations.go)
	stateAfter   bool       // use_state_after: state_after.go
	// threadCounter splits unread counts by thread (unread_threads.go), made once per build.
	threadCounter func(room uint64) (highlight, notification int, threads map[string][2]int, err error)
}

func (s *Service) build(ctx context.Context, sess *accounts.Session, since *token, f *filter.Filter, fullState, stateAfter bool) (*Response, error) {
	w := s.st.Stream().Watermark()
	ts := s.typing.current()
	ps := s.presenceSerial() // presence.go
	resp := newResponse()
	resp.NextBatch = token{pos: w, typing: ts, presence: ps}.String()
	resp.upto = w
	p := &pass{s: s, user: sess.User.String(), device: sess.Device, initial: since == nil, full: fullState, upto: w, f: f, now: time.Now().UnixMilli(), stateAfter: stateAfter}
	if since != nil {
		p.since, p.sinceTyp = min(since.pos, w), since.typing
		if p.sinceTyp > ts {
			p.sinceTyp = 0
		}
	}
	s.awaitCounts(w) // unread.go: before the transaction, which then sees the counts at w
	err := s.st.View(func(txn *store.Txn) error {
		p.txn = txn
		changes, err := txn.AccountDataSince(p.user, p.since, w)
		if err != nil {
			return err
		}
		if p.ignored, err = ignore.Load(txn, p.user); err != nil {
			return err
		}
		p.roomAD = map[uint64][]store.AccountDataChange{}
		for _, c := range changes {
			if c.Room != 0 {
				p.roomAD[c.Room] = append(p.roomAD[c.Room], c)
				continue
			}
			if !p.f.AccountData.Match(c.Type, "") {
				continue
			}
			rec, err := txn.AccountData(p.user, 0, c.Type)
			if err != nil {
				continue
			}
			resp.AccountData.Events = append(resp.AccountData.Events, accountDataEvent{Type: c.Type, Content: rec.Content})
		}
		err = txn.Memberships(p.user, func(m store.Membership) (bool, error) {
			return true, p.room(resp, m)
		})
		if err != nil {
			return err
		}
		if p.err != nil {
			return p.err
		}
		for _, c := range s.contributors {
			if err := c.Contribute(txn, sess, Window{Since: p.since, Upto: w, Initial: p.initial}, resp); err != nil {
				return err
			}
		}
		return s.addPresence(txn, p.user, since, ps, f, resp, p.newlyVisible) // presence.go
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

func (p *pass) roomFilter() *filter.RoomFilter {
	if p.f == nil {
		return nil
	}
	return p.f.Room
}

func (p *pass) timelineFilter() *filter.RoomEventFilter {
	if rf := p.roomFilter(); rf != nil {
		return rf.Timeline
	}
	return nil
}

func (p *pass) stateFilter() *filter.RoomEventFilter {
	if rf := p.roomFilter(); rf != nil {
		return rf.State
	}
	return nil
}

func (p *pass) room(resp *Response, m store.Membership) error {
	if m.Pos > p.upto {
		return nil // committed after our watermark; the next sync picks it up
	}
	// A forgotten room is hidden, except for the leave that happened since the last sync
	// (clients that forget right after leaving still learn of the leave).
	if gone, err := p.txn.Forgotten(p.user, m.Room); err != nil || (gone && (p.initial || m.Pos <= p.since)) {
		return err
	}
	rec, err := p.txn.Room(m.Room)
	if err != nil {
		return err
	}
	if !p.roomFilter().MatchRoom(rec.ID) {
		return nil
	}
	changed := m.Pos > p.since
	switch m.Membership {
	case "join":
		return p.joined(resp, m, rec)
	case "invite":
		if p.initial || changed {
			if hide, err := p.hidesInvite(m); err != nil || hide { // relations.go
				return err
			}
			return p.invited(resp.Rooms.Invite, m, rec)
		}
	case "knock":
		if p.initial || changed {
			ir := map[string]*InvitedRoom{}
			if err := p.invited(ir, m, rec); err != nil {
				return err
			}
			resp.Rooms.Knock[rec.ID] = &KnockedRoom{KnockState: ir[rec.ID].InviteState}
		}
	case "leave", "ban":
		include := (!p.initial && changed) || (p.initial && p.roomFilter() != nil && p.roomFilter().IncludeLeave)
		if include {
			return p.left(resp, m, rec)
		}
	}
	return nil
}

// timeline collects up to limit visible events in (lower, upper], oldest first, and reports
// whether more lay below.
func (p *pass) timeline(nid uint64, roomID string, lower, upper uint64, limit int) ([]*rooms.Event, bool, error) {
	viewer, err := rooms.NewViewer(p.txn, nid, p.user)
	if err != nil {
		return nil, false, err
	}
	tf := p.timelineFilter()
	var out []*rooms.Event
	limited := false
	// The limit counts the visible events of the window before the filter's type and sender
	// clauses (as Synapse does): the timeline then always ends at a point prev_batch can
	// resume from, and a filter that hides most events cannot make one sync scan a whole
	// room's history.
	taken, scanned := 0, 0
	err = p.txn.Timeline(nid, upper+1, true, func(pos uint64) (bool, error) {
		if pos <= lower {
			return false, nil
		}
		if taken >= limit || scanned > limit*50 {
			limited = true
			return false, nil
		}
		scanned++
		ev, err := rooms.LoadEvent(p.txn, pos, roomID)
		if err != nil {
			return false, err
		}
		// History is missing before a gap event (rooms/backfill_gap.go): the timeline stops
		// there, limited, and prev_batch (rooms.TokenBefore) leads /messages into the gap.
		gap := ev.Rec.Flags&store.FlagGap != 0
		limited = limited || gap
		ok, err := viewer.CanSee(ev)
		if err != nil || !ok {
			return err == nil && !gap, err
		}
		taken++
		if !p.ignored.Hides(ev.Lite.Sender, ev.Lite.StateKey != nil) && tf.Match(roomID, ev.Lite.Type, ev.Lite.Sender, ev.Lite.Content) {
			out = append(out, ev)
		}
		return !gap, nil
	})
	slices.Reverse(out)
	return out, limited, err
}

// stateAt is the room state (state-key NID -> position) just after position pos.
func (p *pass) stateAt(nid, pos uint64) (map[uint64]uint64, error) {
	var snap uint64
	err := p.txn.Timeline(nid, pos+1, true, func(ep uint64) (bool, error) {
		rec, err := p.txn.Event(ep)
		if err != nil {
			return false, err
		}
		snap = rec.After
		return false, nil
	})
	if err != nil {
		return nil, err
	}
	return rooms.SnapshotPositions(p.txn, snap)
}

// clientEvents renders events with the shared renderer (unsigned, aggregations, membership).
// A rendering failure is kept in p.err and fails the whole sync at the end of build.
func (p *pass) clientEvents(evs []*rooms.Event) []*events.ClientEvent {
	out, err := rooms.RenderInTxn(p.txn, rooms.Requester{User: id.UserID(p.user), Device: p.device}, evs, p.now)
	if err != nil && p.err == nil {
		p.err = err
	}
	return out
}

func (p *pass) joined(resp *Response, m store.Membership, rec *store.RoomRecord) error {
	nid, roomID := m.Room, rec.ID
	newJoin := p.initial || p.full
	if !newJoin && m.Pos > p.since {
		prev, err := p.previousMembership(m.Pos)
		if err != nil {
			return err
		}
		newJoin = prev != "join"
	}
	lower := p.since
	if newJoin {
		lower = 0
	}
	limit := p.timelineFilter().LimitOr(defaultTimelineLimit)
	var tl []*rooms.Event
	var limited bool
	if newJoin || rec.Latest > p.since { // a quiet room costs no timeline scan
		var err error
		if tl, limited, err = p.timeline(nid, roomID, lower, p.upto, limit); err != nil {
			return err
		}
	}
	jr := emptyJoined()
	jr.Timeline.Events = p.clientEvents(tl)
	jr.Timeline.Limited = limited
	if len(tl) > 0 {
		jr.Timeline.PrevBatch = rooms.TokenBefore(tl[0])
	} else {
		jr.Timeline.PrevBatch = rooms.Token(p.upto)
	}
	// State: everything up to the start of the timeline for a new join; for an incremental
	// sync with a gap, what changed between since and the start of the timeline.
	var state []*rooms.Event
	switch {
	case newJoin:
		snap := rec.Snapshot
		if len(tl) > 0 {
			snap = tl[0].Rec.Snapshot
		}
		m, err := rooms.StateMap(p.txn, snap, roomID)
		if err != nil {
			return err
		}
		for _, e := range m {
			state = append(state, e)
		}
	case limited && len(tl) > 0:
		before, err := p.stateAt(nid, p.since)
		if err != nil {
			return err
		}
		start, err := rooms.SnapshotPositions(p.txn, tl[0].Rec.Snapshot)
		if err != nil {
			return err
		}
		for sk, pos := range start {
			if before[sk] != pos {
				e, err := rooms.LoadEvent(p.txn, pos, roomID)
				if err != nil {
					return err
				}
				state = append(state, e)
			}
		}
	}
	state, err := p.filterState(nid, roomID, state, tl, newJoin)
	if err != nil {
		return err
	}
	slices.SortFunc(state, func(a, b *rooms.Event) int { return cmp.Compare(a.Pos, b.Pos) })
	jr.State.Events = p.clientEvents(state)
	if p.stateAfter { // state_after.go
		end, err := p.snapAfter(nid, p.upto)
		if err != nil {
			return err
		}
		sa, err := p.stateAfterEvents(nid, roomID, end, tl, newJoin, newJoin)
		if err != nil {
			return err
		}
		jr.StateAfter, jr.State = &StateList{Events: sa}, StateList{}
	}

	if users, ok := p.s.typing.since(nid, p.sinceTyp, newJoin); ok {
		jr.Ephemeral.Events = append(jr.Ephemeral.Events, map[string]any{"type": "m.typing", "content": map[string]any{"user_ids": users}})
	}
	if r, err := p.receipts(nid, lower); err != nil {
		return err
	} else if r != nil {
		jr.Ephemeral.Events = append(jr.Ephemeral.Events, r)
	}
	for _, c := range p.roomAD[nid] {
		rec, err := p.txn.AccountData(p.user, nid, c.Type)
		if err == nil {
			jr.AccountData.Events = append(jr.AccountData.Events, accountDataEvent{Type: c.Type, Content: rec.Content})
		}
	}
	if !p.initial {
		p.noteNewlyVisible(newJoin, state, tl)
	}
	memberChange := newJoin
	for _, e := range append(tl, state...) {
		if e.Lite.Type == "m.room.member" {
			memberChange = true
			break
		}
	}
	if memberChange {
		if err := p.summary(nid, roomID, &jr.Summary); err != nil {
			return err
		}
	}
	p.unreadCounts(nid, jr)                                                                              // unread.go
	if tf := p.timelineFilter(); tf != nil && tf.UnreadThreadNotifications && !p.threadUnread(nid, jr) { // unread_threads.go
		if jr.UnreadThread, err = p.unreadThreads(nid); err != nil { // relations.go: approximation without push
			return err
		}
	}
	if newJoin || len(jr.Timeline.Events) > 0 || len(jr.State.Events) > 0 || len(jr.Ephemeral.Events) > 0 || len(jr.AccountData.Events) > 0 {
		resp.Rooms.Join[roomID] = jr
	}
	return nil
}

// noteNewlyVisible records the members a room brought into view: everyone, when the user has
// just joined it, otherwise those whose join is in the timeline.
func (p *pass) noteNewlyVisible(newJoin bool, state, tl []*rooms.Event) {
	add := func(e *rooms.Event) {
		if e.Lite.Type == "m.room.member" && e.Lite.StateKey != nil && *e.Lite.StateKey != p.user && e.Lite.Membership() == "join" {
			if p.newlyVisible == nil {
				p.newlyVisible = map[string]bool{}
			}
			p.newlyVisible[*e.Lite.StateKey] = true
		}
	}
	if newJoin {
		for _, e := range state {
			add(e)
		}
	}
	for _, e := range tl {
		add(e)
	}
}

// previousMembership is the user's membership just before the event at pos.
func (p *pass) previousMembership(pos uint64) (string, error) {
	rec, err := p.txn.Event(pos)
	if err != nil {
		return "", err
	}
	sk, err := p.txn.StateKeyNID("m.room.member", p.user, false)
	if errors.Is(err, store.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	m, err := rooms.SnapshotPositions(p.txn, rec.Snapshot)
	if err != nil {
		return "", err
	}
	prev, ok := m[sk]
	if !ok {
		return "", nil
	}
	ev, err := rooms.LoadEvent(p.txn, prev, "-")
	if err != nil {
		return "", err
	}
	return ev.Lite.Membership(), nil
}

// filterState applies the state filter and lazy loading of members.
func (p *pass) filterState(nid uint64, roomID string, state, tl []*rooms.Event, newJoin bool) ([]*rooms.Event, error) {
	sf := p.stateFilter()
	lazy := sf != nil && sf.LazyLoadMembers
	inTimeline := map[string]bool{}
	for _, e := range tl {
		inTimeline[e.Rec.ID] = true
	}
	var out []*rooms.Event
	have := map[string]bool{}
	for _, e := range state {
		if inTimeline[e.Rec.ID] || !sf.Match(roomID, e.Lite.Type, e.Lite.Sender, nil) {
			continue
		}
		if lazy && e.Lite.Type == "m.room.member" {
			continue
		}
		out = append(out, e)
	}
	if !lazy {
		return out, nil
	}
	// Lazy loading: the members who sent timeline events, plus the syncing user on a new join.
	need := map[string]bool{}
	for _, e := range tl {
		need[e.Lite.Sender] = true
	}
	if newJoin {
		need[p.user] = true
	}
	for _, e := range tl {
		if e.Lite.Type == "m.room.member" && e.Lite.StateKey != nil {
			have[*e.Lite.StateKey] = true
		}
	}
	var users []string
	for u := range need {
		if !have[u] {
			users = append(users, u)
		}
	}
	slices.Sort(users)
	snap := uint64(0)
	if len(tl) > 0 {
		snap = tl[0].Rec.Snapshot // members as of the start of the timeline
	} else {
		rec, err := p.txn.Room(nid)
		if err != nil {
			return nil, err
		}
		snap = rec.Snapshot
	}
	members, err := rooms.MembersAt(p.txn, snap, roomID, users)
	if err != nil {
		return nil, err
	}
	return append(out, members...), nil
}

// receipts builds the m.receipt event for receipts changed in (lower, upto].
func (p *pass) receipts(nid, lower uint64) (any, error) {
	rs, err := p.txn.ReceiptsSince(nid, lower, p.upto)
	if err != nil || len(rs) == 0 {
		return nil, err
	}
	content := map[string]map[string]map[string]map[string]any{}
	for _, r := range rs {
		if r.Private && r.User != p.user {
			continue
		}
		byType := content[r.EventID]
		if byType == nil {
			byType = map[string]map[string]map[string]any{}
			content[r.EventID] = byType
		}
		byUser := byType[r.Type]
		if byUser == nil {
			byUser = map[string]map[string]any{}
			byType[r.Type] = byUser
		}
		info := map[string]any{"ts": r.TS}
		if r.Thread != "" {
			if _, clash := byUser[r.User]; clash {
				continue // an unthreaded receipt for the same event wins (MSC4102)
			}
			info["thread_id"] = r.Thread
		}
		byUser[r.User] = info
	}
	if len(content) == 0 {
		return nil, nil
	}
	return map[string]any{"type": "m.receipt", "content": content}, nil
}

// summary fills heroes and member counts from the current state.
func (p *pass) summary(nid uint64, roomID string, s *Summary) error {
	joined, invited := 0, 0
	var heroes []string
	err := p.txn.AllCurrentState(nid, func(sk, pos uint64) (bool, error) {
		typ, key, err := p.txn.StateKeyOf(sk)
		if err != nil || typ != "m.room.member" {
			return err == nil, err
		}
		ev, err := rooms.LoadEvent(p.txn, pos, roomID)
		if err != nil {
			return false, err
		}
		switch ev.Lite.Membership() {
		case "join":
			joined++
		case "invite":
			invited++
		default:
			return true, nil
		}
		if key != p.user && len(heroes) < 5 {
			heroes = append(heroes, key)
		}
		return true, nil
	})
	s.Joined, s.Invited, s.Heroes = &joined, &invited, heroes
	return err
}

func (p *pass) invited(into map[string]*InvitedRoom, m store.Membership, rec *store.RoomRecord) error {
	ir := &InvitedRoom{}
	ir.InviteState.Events = []events.StrippedState{}
	for _, typ := range strippedTypes {
		sk, err := p.txn.StateKeyNID(typ, "", false)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		pos, err := p.txn.CurrentState(m.Room, sk)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		ev, err := rooms.LoadEvent(p.txn, pos, rec.ID)
		if err != nil {
			return err
		}
		ir.InviteState.Events = append(ir.InviteState.Events, ev.Lite.Stripped())
	}
	if rec.Stub && len(rec.InviteState) > 0 {
		// A room known only through another server's invite: its state is what came with it.
		var stripped []events.StrippedState
		if err := json.Unmarshal(rec.InviteState, &stripped); err == nil {
			ir.InviteState.Events = append(ir.InviteState.Events, stripped...)
		}
	}
	ev, err := rooms.LoadEvent(p.txn, m.Pos, rec.ID)
	if err != nil {
		return err
	}
	ir.InviteState.Events = append(ir.InviteState.Events, ev.Lite.Stripped())
	into[rec.ID] = ir
	return nil
}

func (p *pass) left(resp *Response, m store.Membership, rec *store.RoomRecord) error {
	lower := p.since
	if p.initial {
		lower = 0
	}
	limit := p.timelineFilter().LimitOr(defaultTimelineLimit)
	tl, limited, err := p.timeline(m.Room, rec.ID, lower, m.Pos, limit)
	if err != nil {
		return err
	}
	lr := &LeftRoom{State: StateList{Events: []*events.ClientEvent{}}, AccountData: EventList{Events: []any{}}}
	lr.Timeline = Timeline{Events: p.clientEvents(tl), Limited: limited}
	if done, err := p.leftOutOfBand(resp, lr, m, rec, len(tl), limit); done || err != nil { // left_outlier.go
		if p.stateAfter && err == nil { // state_after.go: the state it has is as of the leave
			lr.StateAfter, lr.State = &StateList{Events: lr.State.Events}, StateList{}
		}
		return err
	}
	if len(tl) == 0 {
		// An empty timeline (limit 0): the state section carries the room as the user left
		// it, leave event included.
		ev, err := rooms.LoadEvent(p.txn, m.Pos, rec.ID)
		if err != nil {
			return err
		}
		sm, err := rooms.StateMap(p.txn, ev.Rec.After, rec.ID)
		if err != nil {
			return err
		}
		var st []*rooms.Event
		for _, e := range sm {
			st = append(st, e)
		}
		if st, err = p.filterState(m.Room, rec.ID, st, nil, true); err != nil {
			return err
		}
		lr.State.Events = p.clientEvents(st)
		lr.Timeline.PrevBatch = rooms.Token(m.Pos)
	}
	if len(tl) > 0 {
		lr.Timeline.PrevBatch = rooms.TokenBefore(tl[0])
		if p.initial || limited {
			sm, err := rooms.StateMap(p.txn, tl[0].Rec.Snapshot, rec.ID)
			if err != nil {
				return err
			}
			var st []*rooms.Event
			for _, e := range sm {
				st = append(st, e)
			}
			if st, err = p.filterState(m.Room, rec.ID, st, tl, true); err != nil {
				return err
			}
			lr.State.Events = p.clientEvents(st)
		}
	}
	if p.stateAfter { // state_after.go: the state as of the leave
		ev, err := rooms.LoadEvent(p.txn, m.Pos, rec.ID)
		if err != nil {
			return err
		}
		sa, err := p.stateAfterEvents(m.Room, rec.ID, ev.Rec.After, tl, p.initial || limited || len(tl) == 0, true)
		if err != nil {
			return err
		}
		lr.StateAfter, lr.State = &StateList{Events: sa}, StateList{}
	}
	resp.Rooms.Leave[rec.ID] = lr
	return nil
}
