package sync

import (
	"cmp"
	"slices"

	"github.com/hearth-home/hearth/matrix/events"
	"github.com/hearth-home/hearth/matrix/rooms"
)

// use_state_after (spec v1.16, MSC4222): the room's state is reported as of the END of the
// timeline, in `state_after`, and `state` is omitted. Clients then take state only from
// state_after and never from timeline events, which removes the ambiguity of a state event in
// the timeline that lost state resolution (the timeline shows it, the state does not hold it).

// snapAfter is the state snapshot after the room's newest event at or before pos (0 when the
// room has no event there).
func (p *pass) snapAfter(nid, pos uint64) (uint64, error) {
	var snap uint64
	err := p.txn.Timeline(nid, pos+1, true, func(ep uint64) (bool, error) {
		rec, err := p.txn.Event(ep)
		if err != nil {
			return false, err
		}
		snap = rec.After
		return false, nil
	})
	return snap, err
}

// stateAfterEvents is the state_after section of a room: everything as of end (the state
// snapshot after the timeline's last event) when whole is set (initial or full-state sync, a
// new join, a limited left room), else what changed between since and end. The state filter
// and lazy loading of members apply; unlike `state`, events that are also in the timeline are
// kept, since clients do not take state from the timeline in this mode.
func (p *pass) stateAfterEvents(nid uint64, roomID string, end uint64, tl []*rooms.Event, whole, newJoin bool) ([]*events.ClientEvent, error) {
	if !whole && len(tl) == 0 {
		return []*events.ClientEvent{}, nil // nothing happened in the room: no state changed
	}
	endPos, err := rooms.SnapshotPositions(p.txn, end)
	if err != nil {
		return nil, err
	}
	var before map[uint64]uint64
	if !whole {
		if before, err = p.stateAt(nid, p.since); err != nil {
			return nil, err
		}
	}
	sf := p.stateFilter()
	lazy := sf != nil && sf.LazyLoadMembers
	var out []*rooms.Event
	for sk, pos := range endPos {
		if before != nil && before[sk] == pos {
			continue
		}
		e, err := rooms.LoadEvent(p.txn, pos, roomID)
		if err != nil {
			return nil, err
		}
		if !sf.Match(roomID, e.Lite.Type, e.Lite.Sender, nil) || (lazy && e.Lite.Type == "m.room.member") {
			continue
		}
		out = append(out, e)
	}
	if lazy {
		// The members who sent timeline events (and the user on a new join), as of the end.
		need := map[string]bool{}
		for _, e := range tl {
			need[e.Lite.Sender] = true
		}
		if newJoin {
			need[p.user] = true
		}
		var users []string
		for u := range need {
			users = append(users, u)
		}
		slices.Sort(users)
		members, err := rooms.MembersAt(p.txn, end, roomID, users)
		if err != nil {
			return nil, err
		}
		out = append(out, members...)
	}
	slices.SortFunc(out, func(a, b *rooms.Event) int { return cmp.Compare(a.Pos, b.Pos) })
	return p.clientEvents(out), nil
}
