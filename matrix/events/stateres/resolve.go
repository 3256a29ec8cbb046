package stateres

import (
	"context"
	"errors"
	"fmt"
	"maps"

	"maunium.net/go/mautrix/federation/pdu"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/events"
)

// Key names one piece of room state.
type Key struct{ Type, StateKey string }

// StateMap is a room state: one event per key.
type StateMap map[Key]id.EventID

// Event is an event as the caller's store knows it. Rejected marks an event that failed the
// checks on receipt; state resolution never uses such an event to authorise another.
type Event struct {
	ID       id.EventID
	PDU      *pdu.PDU
	Rejected bool
}

// Fetcher loads events by ID. It returns one entry per requested ID, in order, with nil for an
// event the store does not have. An error aborts the resolution.
type Fetcher func(ctx context.Context, ids []id.EventID) ([]*Event, error)

// Options carries the optional callbacks of a resolution.
type Options struct {
	// Keys looks up server signing keys. The auth rules of restricted joins (v8+) check that a
	// join naming join_authorised_via_users_server is signed by that user's server; without
	// Keys such a join cannot be re-authorised and loses in resolution. Pass the keyring's
	// cached lookup; it is called only for those joins.
	Keys pdu.GetKeyFunc
}

var (
	// ErrUnsupportedVersion is returned for room versions this package cannot resolve.
	ErrUnsupportedVersion = errors.New("stateres: unsupported room version")
	// ErrMissingEvent is returned when an event of the conflicted state set cannot be fetched.
	ErrMissingEvent = errors.New("stateres: conflicted state event not found")
	// ErrBadState is returned for state maps whose entries are not state events of their key.
	ErrBadState = errors.New("stateres: malformed state map")
)

// algorithm selects between the two variants of state resolution v2.
type algorithm int

const (
	algoV2 algorithm = iota
	algoV21
	algoV1 // room version 1 (v1.go)
)

func algorithmFor(rv id.RoomVersion) (algorithm, error) {
	rv = events.Base(rv) // an experimental version resolves as its base (events/msc3757.go)
	if !rv.IsKnown() || rv == id.RoomV0 {
		return 0, fmt.Errorf("%w: %q", ErrUnsupportedVersion, rv)
	}
	if rv == id.RoomV1 {
		return algoV1, nil
	}
	switch rv.StateResVersion() {
	case id.StateResV2:
		return algoV2, nil
	case id.StateResV2_1:
		return algoV21, nil
	default:
		return 0, fmt.Errorf("%w: %q", ErrUnsupportedVersion, rv)
	}
}

// Resolve merges state maps into one, per the state resolution algorithm of room version rv
// (v1 for version 1, v2 for versions 2 to 11, v2.1 for 12). The result does not depend on the order of sets.
// Errors: ErrUnsupportedVersion, ErrMissingEvent (a conflicted event the Fetcher lacks),
// ErrBadState (an entry that is not a state event of its key), or the Fetcher's or ctx's error
// wrapped. A missing event deeper in the auth graph is not an error: it takes no part.
func Resolve(ctx context.Context, rv id.RoomVersion, sets []StateMap, fetch Fetcher) (StateMap, error) {
	return ResolveWith(ctx, rv, sets, fetch, Options{})
}

// ResolveWith is Resolve with optional callbacks.
func ResolveWith(ctx context.Context, rv id.RoomVersion, sets []StateMap, fetch Fetcher, opts Options) (StateMap, error) {
	algo, err := algorithmFor(rv)
	if err != nil {
		return nil, err
	}
	if fetch == nil {
		return nil, errors.New("stateres: nil fetcher")
	}
	switch len(sets) {
	case 0:
		return StateMap{}, nil
	case 1:
		return maps.Clone(sets[0]), nil
	}
	if algo == algoV1 {
		r := &resolver{ctx: ctx, rv: rv, algo: algo, keys: opts.Keys, g: newGraph(ctx, fetch, 64)}
		return r.resolveV1(sets)
	}
	unconflicted, conflicted, keyOf, err := partition(sets)
	if err != nil {
		return nil, err
	}
	if len(conflicted) == 0 {
		return unconflicted, nil
	}
	hint := 0
	for _, s := range sets {
		hint = max(hint, len(s))
	}
	r := &resolver{ctx: ctx, rv: rv, algo: algo, keys: opts.Keys, g: newGraph(ctx, fetch, hint+2*len(conflicted))}
	return r.resolve(sets, unconflicted, conflicted, keyOf)
}

// resolver holds the state of one Resolve call: the event graph and cache, nothing global.
type resolver struct {
	ctx  context.Context
	rv   id.RoomVersion
	algo algorithm
	keys pdu.GetKeyFunc
	g    *graph
	// exhaustiveWalk makes the auth difference and subgraph walks run to the end even on
	// consistent depths (tests compare both modes against the definitions).
	exhaustiveWalk bool
}

func (r *resolver) resolve(sets []StateMap, unconflicted StateMap, conflicted []id.EventID, keyOf map[id.EventID]Key) (StateMap, error) {
	if err := r.checkConflicted(conflicted, keyOf); err != nil {
		return nil, err
	}
	full, err := r.fullConflictedSet(sets, conflicted)
	if err != nil {
		return nil, err
	}

	// Step 1: power events of the full conflicted set and their auth ancestors inside it.
	powerSorted, inPower, err := r.sortPowerEvents(full)
	if err != nil {
		return nil, err
	}

	// Step 2: iterative auth checks; v2 starts from the unconflicted state, v2.1 from nothing,
	// so that an unconflicted event later than a conflicted one cannot veto it (MSC4297).
	partial := StateMap{}
	if r.algo == algoV2 {
		partial = maps.Clone(unconflicted)
	}
	if err := r.iterativeAuth(partial, powerSorted); err != nil {
		return nil, err
	}

	// Step 3: the other events, by mainline of the partially resolved power levels.
	var rest []int32
	for _, n := range full {
		if !inPower[n] {
			rest = append(rest, n)
		}
	}
	restSorted, err := r.mainlineSort(rest, partial)
	if err != nil {
		return nil, err
	}

	// Step 4: iterative auth checks on top of the partial state.
	if err := r.iterativeAuth(partial, restSorted); err != nil {
		return nil, err
	}

	// Step 5: the unconflicted state map wins.
	maps.Copy(partial, unconflicted)
	return partial, nil
}

// checkConflicted loads the conflicted events (they are needed whole, and kept) and refuses
// entries that are missing or are not state events of the key they are filed under.
func (r *resolver) checkConflicted(conflicted []id.EventID, keyOf map[id.EventID]Key) error {
	nodes := make([]int32, len(conflicted))
	for i, eid := range conflicted {
		nodes[i] = r.g.node(eid)
	}
	if err := r.g.loadFull(nodes); err != nil {
		return err
	}
	for _, n := range nodes {
		ev := r.g.event(n)
		if ev == nil {
			return fmt.Errorf("%w: %s", ErrMissingEvent, r.g.ids[n])
		}
		if ev.PDU.StateKey == nil {
			return fmt.Errorf("%w: %s is not a state event", ErrBadState, r.g.ids[n])
		}
		if k := keyOf[r.g.ids[n]]; k != (Key{ev.PDU.Type, *ev.PDU.StateKey}) {
			return fmt.Errorf("%w: %s is filed under (%s, %q) but is (%s, %q)", ErrBadState, r.g.ids[n], k.Type, k.StateKey, ev.PDU.Type, *ev.PDU.StateKey)
		}
	}
	return nil
}
