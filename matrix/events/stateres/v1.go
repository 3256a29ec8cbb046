package stateres

import (
	"cmp"
	"crypto/sha1" //nolint:gosec // the algorithm orders by SHA-1 of event IDs; no security rests on it
	"encoding/hex"
	"fmt"
	"maps"
	"slices"

	"maunium.net/go/mautrix/federation/pdu"
	"maunium.net/go/mautrix/id"
)

// State resolution v1, used by room version 1 only (the spec's room version 1 page):
//
//  1. R is the union of the state maps without the conflicting events. Unlike v2, a key that
//     only some maps have is not a conflict: the maps that have it agree.
//  2. Conflicting m.room.power_levels events are sorted by ascending depth, then descending
//     SHA-1 of the event ID; the first goes into R, each next one replaces it while the auth
//     rules allow it against R, and the first refused one ends the walk.
//  3. The same for m.room.join_rules, then for each conflicted m.room.member key. The member
//     keys are all resolved against R as it stood after the join rules (none sees another's
//     outcome), so the result does not depend on the order of keys.
//  4. Every other conflicted key gets its event of greatest depth (then smallest SHA-1) that
//     the auth rules allow against R; when none is allowed, the last of that order.
//
// The auth rules are run with auth events selected from R (the event's own auth_events play no
// part) and without the rules about the auth_events list itself, as Synapse does: the servers
// still in version 1 rooms are Synapse's and Dendrite's, and they converge on its reading.

// resolveV1 runs state resolution v1 on at least two state maps.
func (r *resolver) resolveV1(sets []StateMap) (StateMap, error) {
	resolved, conflicts, err := partitionV1(sets)
	if err != nil {
		return nil, err
	}
	if len(conflicts) == 0 {
		return resolved, nil
	}
	byKey := make(map[Key][]*Event, len(conflicts))
	keyOf := map[id.EventID]Key{}
	var all []id.EventID
	for k, ids := range conflicts {
		for _, e := range ids {
			keyOf[e] = k
			all = append(all, e)
		}
	}
	slices.Sort(all)
	if err := r.checkConflicted(all, keyOf); err != nil {
		return nil, err
	}
	for _, e := range all {
		ev, err := r.g.eventByID(e)
		if err != nil {
			return nil, err
		}
		byKey[keyOf[e]] = append(byKey[keyOf[e]], ev)
	}
	keys := slices.SortedFunc(maps.Keys(byKey), func(a, b Key) int {
		return cmp.Or(cmp.Compare(a.Type, b.Type), cmp.Compare(a.StateKey, b.StateKey))
	})

	// Steps 2 and 3: power levels, then join rules, each seeing the outcome of the one before.
	for _, typ := range []string{"m.room.power_levels", "m.room.join_rules"} {
		for _, k := range keys {
			if k.Type != typ {
				continue
			}
			ev, err := r.resolveAuthKeyV1(k, byKey[k], resolved)
			if err != nil {
				return nil, err
			}
			resolved[k] = ev.ID
		}
	}
	// Step 3 for members, and step 4, each against a fixed R.
	for _, member := range []bool{true, false} {
		base := maps.Clone(resolved)
		for _, k := range keys {
			if (k.Type == "m.room.member") != member || k.Type == "m.room.power_levels" || k.Type == "m.room.join_rules" {
				continue
			}
			var ev *Event
			if member {
				ev, err = r.resolveAuthKeyV1(k, byKey[k], base)
			} else {
				ev, err = r.resolveNormalKeyV1(byKey[k], base)
			}
			if err != nil {
				return nil, err
			}
			resolved[k] = ev.ID
		}
	}
	return resolved, nil
}

// resolveAuthKeyV1 is steps 2 and 3 for one key: the events in ascending depth, descending
// SHA-1 order, each replacing the one before while the auth rules allow it.
func (r *resolver) resolveAuthKeyV1(k Key, evs []*Event, state StateMap) (*Event, error) {
	ordered := orderV1(evs)
	slices.Reverse(ordered)
	cur := ordered[0]
	st := maps.Clone(state)
	for _, ev := range ordered[1:] {
		st[k] = cur.ID
		ok, err := r.allowedV1(ev, st)
		if err != nil {
			return nil, err
		}
		if !ok {
			break
		}
		cur = ev
	}
	return cur, nil
}

// resolveNormalKeyV1 is step 4 for one key.
func (r *resolver) resolveNormalKeyV1(evs []*Event, state StateMap) (*Event, error) {
	ordered := orderV1(evs)
	for _, ev := range ordered {
		ok, err := r.allowedV1(ev, state)
		if err != nil {
			return nil, err
		}
		if ok {
			return ev, nil
		}
	}
	return ordered[len(ordered)-1], nil
}

// orderV1 sorts events by descending depth, then ascending hex SHA-1 of the event ID.
func orderV1(evs []*Event) []*Event {
	type keyed struct {
		ev   *Event
		hash string
	}
	ks := make([]keyed, len(evs))
	for i, ev := range evs {
		h := sha1.Sum([]byte(ev.ID)) //nolint:gosec // ordering only
		ks[i] = keyed{ev, hex.EncodeToString(h[:])}
	}
	slices.SortFunc(ks, func(a, b keyed) int {
		return cmp.Or(cmp.Compare(b.ev.PDU.Depth, a.ev.PDU.Depth), cmp.Compare(a.hash, b.hash))
	})
	out := make([]*Event, len(ks))
	for i, k := range ks {
		out[i] = k.ev
	}
	return out
}

// allowedV1 runs the auth rules on ev with auth events selected from state alone.
func (r *resolver) allowedV1(ev *Event, state StateMap) (bool, error) {
	selection := ev.PDU.AuthEventSelection(r.rv)
	authEvents := make([]*pdu.PDU, 0, len(selection))
	for _, k := range selection {
		sid, ok := state[Key{k.Type, k.StateKey}]
		if !ok {
			continue
		}
		se, err := r.g.eventByID(sid)
		if err != nil {
			return false, err
		}
		if se != nil && !se.Rejected {
			authEvents = append(authEvents, se.PDU)
		}
	}
	noEvents := func([]id.EventID) ([]*pdu.PDU, error) { return nil, nil } // only v12 asks
	return authorize(r.rv, ev.PDU, authEvents, noEvents, r.keyFunc()) == nil, nil
}

// partitionV1 splits the maps the v1 way: a key is conflicted only when two maps hold
// different events for it. conflicts lists each conflicted key's distinct events, sorted.
func partitionV1(sets []StateMap) (StateMap, map[Key][]id.EventID, error) {
	unconflicted := StateMap{}
	conflicts := map[Key][]id.EventID{}
	keyOf := map[id.EventID]Key{}
	for _, set := range sets {
		for k, v := range set {
			if prev, dup := keyOf[v]; dup && prev != k {
				return nil, nil, fmt.Errorf("%w: event %s is filed under two keys", ErrBadState, v)
			}
			keyOf[v] = k
			if ids, ok := conflicts[k]; ok {
				if !slices.Contains(ids, v) {
					conflicts[k] = append(ids, v)
				}
				continue
			}
			cur, ok := unconflicted[k]
			switch {
			case !ok:
				unconflicted[k] = v
			case cur != v:
				conflicts[k] = []id.EventID{cur, v}
				delete(unconflicted, k)
			}
		}
	}
	for k := range conflicts {
		slices.Sort(conflicts[k])
	}
	return unconflicted, conflicts, nil
}
