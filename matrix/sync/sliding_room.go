package sync

import (
	"cmp"
	"encoding/json"
	"errors"
	"hash/fnv"
	"math"
	"slices"
	"strconv"

	"github.com/hearth-home/hearth/matrix/rooms"
	"github.com/hearth-home/hearth/matrix/store"
)

// limitAll says the client holds a room's whole history.
const limitAll = math.MaxInt32

// latestAt is the newest timeline position of a room at or below upper.
func latestAt(txn *store.Txn, nid uint64, rec *store.RoomRecord, upper uint64) (uint64, error) {
	if rec.Latest <= upper {
		return rec.Latest, nil
	}
	var out uint64
	err := txn.Timeline(nid, upper+1, true, func(pos uint64) (bool, error) {
		out = pos
		return false, nil
	})
	return out, err
}

// snapshotAt is the state snapshot just after position pos (0 before the room existed).
func snapshotAt(txn *store.Txn, nid uint64, rec *store.RoomRecord, pos uint64) (uint64, error) {
	if pos >= rec.Latest {
		return rec.Snapshot, nil
	}
	var snap uint64
	err := txn.Timeline(nid, pos+1, true, func(ep uint64) (bool, error) {
		ev, err := txn.Event(ep)
		if err != nil {
			return false, err
		}
		snap = ev.After
		return false, nil
	})
	return snap, err
}

// specsHash fingerprints a combined required_state config.
func specsHash(specs []*stateSpec) uint64 {
	hs := make([]uint64, 0, len(specs))
	for _, s := range specs {
		hs = append(hs, s.hash)
	}
	slices.Sort(hs)
	h := fnv.New64a()
	for _, v := range hs {
		h.Write([]byte(strconv.FormatUint(v, 16) + ","))
	}
	return h.Sum64()
}

// roomState is the state of one room at the upper end of a response, loaded on demand.
type roomState struct {
	sp     *slidingPass
	nid    uint64
	roomID string
	snap   uint64
	m      map[uint64]uint64 // state-key NID -> event position
}

func (rs *roomState) load() (map[uint64]uint64, error) {
	if rs.m == nil {
		m, err := rooms.SnapshotPositions(rs.sp.txn, rs.snap)
		if err != nil {
			return nil, err
		}
		rs.m = m
	}
	return rs.m, nil
}

// lookup is the event position of (typ, key) in the state, 0 when absent.
func (rs *roomState) lookup(typ, key string) (uint64, error) {
	sk, err := rs.sp.txn.StateKeyNID(typ, key, false)
	if errors.Is(err, store.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	m, err := rs.load()
	if err != nil {
		return 0, err
	}
	return m[sk], nil
}

// content reads a string field of a state event's content ("" and false when absent).
func (rs *roomState) content(typ, field string) (string, bool, error) {
	pos, err := rs.lookup(typ, "")
	if err != nil || pos == 0 {
		return "", false, err
	}
	ev, err := rooms.LoadEvent(rs.sp.txn, pos, rs.roomID)
	if err != nil {
		return "", false, err
	}
	var c map[string]any
	_ = json.Unmarshal(ev.Lite.Content, &c)
	v, ok := c[field].(string)
	return v, ok && v != "", nil
}

func (sp *slidingPass) renderRoom(r *slidingRoomRef) (*slidingRoom, roomSeen, error) {
	prev, had := sp.base.rooms[r.nid]
	switch r.m.Membership {
	case "invite", "knock":
		return sp.renderInvite(r, prev, had)
	}
	upper := sp.upto
	if r.m.Membership != "join" {
		upper = r.m.Pos // a left or banned user sees the room as it was when they went
		if had && prev.member == r.m.Membership && prev.pos >= upper {
			return nil, prev, nil
		}
		was, err := sp.previousMembership(r.m.Pos)
		if err != nil {
			return nil, prev, err
		}
		if was != "join" {
			return sp.renderOutsider(r, had)
		}
	}
	nid, roomID := r.nid, r.rec.ID
	initial := !had || (r.m.Membership == "join" && prev.member != "join")
	latest, err := latestAt(sp.txn, nid, r.rec, upper)
	if err != nil {
		return nil, prev, err
	}
	rsHash := specsHash(r.specs)
	isDM := sp.dm[roomID]
	changed := initial || latest > prev.pos || r.m.Pos > prev.pos
	expand := !initial && r.limit > prev.limit
	rsChanged := !initial && rsHash != prev.rsHash
	dmChanged := !initial && isDM != prev.isDM
	if !changed && !expand && !rsChanged && !dmChanged {
		return nil, prev, nil
	}
	out := &slidingRoom{Initial: initial, BumpStamp: r.bump, Membership: r.m.Membership, Lists: r.lists}
	seen := roomSeen{pos: upper, limit: prev.limit, rsHash: rsHash, member: r.m.Membership, isDM: isDM}

	// Timeline.
	var tl []*rooms.Event
	var limited bool
	switch {
	case initial:
		if tl, limited, err = sp.timeline(nid, roomID, 0, upper, r.limit); err != nil {
			return nil, prev, err
		}
		seen.limit = heldAfter(0, true, tl, limited)
	case expand:
		all, lim, err := sp.timeline(nid, roomID, 0, upper, r.limit)
		if err != nil {
			return nil, prev, err
		}
		older := 0
		for _, e := range all {
			if e.Pos <= prev.pos {
				older++
			}
		}
		if older > prev.limit {
			// The client lacks some of the latest r.limit events: send them all.
			tl, limited = all, lim
			out.ExpandedTimeline, out.UnstableExpanded = true, true
			seen.limit = heldAfter(0, true, tl, limited)
			break
		}
		// The client already has every older event among them: only the new ones are news.
		if tl, limited, err = sp.timeline(nid, roomID, prev.pos, upper, r.limit); err != nil {
			return nil, prev, err
		}
		seen.limit = max(r.limit, heldAfter(prev.limit, false, tl, limited))
	case latest > prev.pos:
		if tl, limited, err = sp.timeline(nid, roomID, prev.pos, upper, r.limit); err != nil {
			return nil, prev, err
		}
		seen.limit = heldAfter(prev.limit, false, tl, limited)
	}
	out.Timeline = sp.clientEvents(tl)
	out.Limited = limited
	if len(tl) > 0 {
		out.PrevBatch = rooms.TokenBefore(tl[0])
	} else if initial {
		out.PrevBatch = rooms.Token(upper)
	}
	live := 0
	if !sp.initial {
		for _, e := range tl {
			if e.Pos > sp.base.upto {
				live++
			}
		}
	}
	out.NumLive = &live

	// State at the upper end: required_state is the room's current state, not the state at the
	// start of the timeline as in /v3/sync.
	snap, err := snapshotAt(sp.txn, nid, r.rec, upper)
	if err != nil {
		return nil, prev, err
	}
	cur := &roomState{sp: sp, nid: nid, roomID: roomID, snap: snap}
	var changedKeys map[uint64]bool // state keys changed since prev (incremental only)
	if !initial {
		prevSnap, err := snapshotAt(sp.txn, nid, r.rec, prev.pos)
		if err != nil {
			return nil, prev, err
		}
		if prevSnap != snap {
			before, err := rooms.SnapshotPositions(sp.txn, prevSnap)
			if err != nil {
				return nil, prev, err
			}
			now, err := cur.load()
			if err != nil {
				return nil, prev, err
			}
			changedKeys = map[uint64]bool{}
			for sk, pos := range now {
				if before[sk] != pos {
					changedKeys[sk] = true
				}
			}
			for sk := range before {
				if _, ok := now[sk]; !ok {
					changedKeys[sk] = true
				}
			}
		}
	}
	state, flags, err := sp.requiredState(r, cur, tl, initial || rsChanged, changedKeys, limited)
	if err != nil {
		return nil, prev, err
	}
	out.RequiredState = sp.clientEvents(state)

	// Room summary fields: sent whole when initial, then only when they change.
	if initial || flags.name {
		name, _, err := cur.content("m.room.name", "name")
		if err != nil {
			return nil, prev, err
		}
		if name != "" || !initial {
			out.Name = &name
		}
	}
	if initial || flags.avatar {
		url, ok, err := cur.content("m.room.avatar", "url")
		if err != nil {
			return nil, prev, err
		}
		switch {
		case ok:
			out.Avatar, _ = json.Marshal(url)
		case !initial:
			out.Avatar = json.RawMessage("null")
		}
	}
	if initial || flags.members {
		m, err := cur.load()
		if err != nil {
			return nil, prev, err
		}
		sum, err := sp.s.sliding.cache.members(sp.txn, snap, m, roomID, nid)
		if err != nil {
			return nil, prev, err
		}
		joined, invited := sum.joined, sum.invited
		out.JoinedCount, out.InvitedCount = &joined, &invited
		if name, _, err := cur.content("m.room.name", "name"); err != nil {
			return nil, prev, err
		} else if name == "" {
			for _, h := range sum.heroes {
				if h.UserID != sp.user && len(out.Heroes) < 5 {
					out.Heroes = append(out.Heroes, h)
				}
			}
		}
	}
	if (initial && isDM) || dmChanged {
		out.IsDM = &isDM
	}
	if initial {
		zero := 0
		out.Notifications, out.Highlights = &zero, &zero
	}
	if !initial && out.quiet() {
		// Nothing the client can use (events it may not see, a timeline_limit raise it needs
		// nothing for): remember the new position without sending the room.
		return nil, seen, nil
	}
	return out, seen, nil
}

// quiet reports an incremental room update that carries nothing.
func (r *slidingRoom) quiet() bool {
	return len(r.Timeline) == 0 && !r.Limited && !r.ExpandedTimeline && len(r.RequiredState) == 0 &&
		r.Name == nil && r.Avatar == nil && r.JoinedCount == nil && r.IsDM == nil && len(r.Heroes) == 0
}

// heldAfter is how many of the room's latest events the client holds after receiving tl, given
// it held the latest `before` ones (fromStart: tl was read from the room's start, so a timeline
// without a gap is the whole history).
func heldAfter(before int, fromStart bool, tl []*rooms.Event, limited bool) int {
	switch {
	case limited:
		return len(tl)
	case fromStart || before >= limitAll-len(tl):
		return limitAll
	}
	return before + len(tl)
}

// stateFlags says which summary fields a state change touched.
type stateFlags struct {
	name, avatar, members bool
}

// requiredState collects the state events to send. full sends every matching event (a new
// room, or a changed config); otherwise only the changed keys. Lazy members are the senders of
// timeline events and, when the timeline has no gap, every membership change since the last
// response (MSC4186).
func (sp *slidingPass) requiredState(r *slidingRoomRef, cur *roomState, tl []*rooms.Event, full bool, changed map[uint64]bool, limited bool) ([]*rooms.Event, stateFlags, error) {
	var flags stateFlags
	picked := map[uint64]uint64{} // state-key NID -> position
	lazy, allMembers := false, false
	for _, s := range r.specs {
		lazy = lazy || s.lazy
		allMembers = allMembers || s.all || (s.types["m.room.member"] != nil && s.types["m.room.member"].all)
	}
	match := func(typ, key string) bool {
		for _, s := range r.specs {
			if s.match(typ, key, sp.user) {
				return true
			}
		}
		return false
	}
	if full {
		wild := false
		for _, s := range r.specs {
			wild = wild || s.wildcard()
		}
		if wild {
			m, err := cur.load()
			if err != nil {
				return nil, flags, err
			}
			for sk, pos := range m {
				typ, key, err := sp.s.sliding.cache.stateKeyOf(sp.txn, sk)
				if err != nil {
					return nil, flags, err
				}
				if match(typ, key) {
					picked[sk] = pos
				}
			}
		} else {
			for _, s := range r.specs {
				for _, tk := range s.exact(sp.user) {
					if !match(tk[0], tk[1]) { // an exclude may remove it
						continue
					}
					sk, err := sp.txn.StateKeyNID(tk[0], tk[1], false)
					if errors.Is(err, store.ErrNotFound) {
						continue
					}
					if err != nil {
						return nil, flags, err
					}
					m, err := cur.load()
					if err != nil {
						return nil, flags, err
					}
					if pos := m[sk]; pos != 0 {
						picked[sk] = pos
					}
				}
			}
		}
	}
	if len(changed) > 0 {
		m, err := cur.load()
		if err != nil {
			return nil, flags, err
		}
		for sk := range changed {
			typ, key, err := sp.s.sliding.cache.stateKeyOf(sp.txn, sk)
			if err != nil {
				return nil, flags, err
			}
			switch typ {
			case "m.room.name":
				flags.name = flags.name || key == ""
			case "m.room.avatar":
				flags.avatar = flags.avatar || key == ""
			case "m.room.member":
				flags.members = true
			}
			pos := m[sk]
			if pos == 0 {
				continue // removed by state resolution; nothing to send
			}
			if match(typ, key) || (lazy && !limited && typ == "m.room.member") {
				picked[sk] = pos
			}
		}
	}
	out := make([]*rooms.Event, 0, len(picked))
	for _, pos := range picked {
		ev, err := rooms.LoadEvent(sp.txn, pos, cur.roomID)
		if err != nil {
			return nil, flags, err
		}
		out = append(out, ev)
	}
	if lazy && !allMembers && len(tl) > 0 {
		need := map[string]bool{}
		for _, e := range tl {
			need[e.Lite.Sender] = true
		}
		for _, e := range out {
			if e.Lite.Type == "m.room.member" && e.Lite.StateKey != nil {
				delete(need, *e.Lite.StateKey)
			}
		}
		users := make([]string, 0, len(need))
		for u := range need {
			users = append(users, u)
		}
		slices.Sort(users)
		members, err := rooms.MembersAt(sp.txn, cur.snap, cur.roomID, users)
		if err != nil {
			return nil, flags, err
		}
		out = append(out, members...)
	}
	slices.SortFunc(out, func(a, b *rooms.Event) int { return cmp.Compare(a.Pos, b.Pos) })
	return out, flags, nil
}

// renderOutsider sends a rejected or withdrawn invite or knock, or a ban of a user who was not
// joined: the membership event alone, since the user never saw the room from inside.
func (sp *slidingPass) renderOutsider(r *slidingRoomRef, had bool) (*slidingRoom, roomSeen, error) {
	ev, err := rooms.LoadEvent(sp.txn, r.m.Pos, r.rec.ID)
	if err != nil {
		return nil, roomSeen{}, err
	}
	zero := 0
	out := &slidingRoom{Initial: !had, BumpStamp: r.m.Pos, Membership: r.m.Membership, Lists: r.lists, NumLive: &zero}
	out.Timeline = sp.clientEvents([]*rooms.Event{ev})
	return out, roomSeen{pos: r.m.Pos, member: r.m.Membership, limit: limitAll}, nil
}

// renderInvite sends an invite or a knock once per membership event: stripped state only.
func (sp *slidingPass) renderInvite(r *slidingRoomRef, prev roomSeen, had bool) (*slidingRoom, roomSeen, error) {
	if had && prev.member == r.m.Membership && prev.pos >= r.m.Pos {
		return nil, prev, nil
	}
	into := map[string]*InvitedRoom{}
	if err := sp.invited(into, r.m, r.rec); err != nil {
		return nil, prev, err
	}
	out := &slidingRoom{Initial: true, BumpStamp: r.m.Pos, Membership: r.m.Membership, Lists: r.lists}
	out.InviteState = into[r.rec.ID].InviteState.Events
	isDM := sp.dm[r.rec.ID]
	if ev, err := rooms.LoadEvent(sp.txn, r.m.Pos, r.rec.ID); err == nil {
		var c struct {
			IsDirect bool `json:"is_direct"`
		}
		_ = json.Unmarshal(ev.Lite.Content, &c)
		isDM = isDM || c.IsDirect
	}
	if isDM {
		out.IsDM = &isDM
	}
	return out, roomSeen{pos: r.m.Pos, member: r.m.Membership, isDM: isDM}, nil
}
