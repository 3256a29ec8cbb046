package stateres

import (
	"container/heap"
	"math"
	"slices"

	"maunium.net/go/mautrix/id"
)

// sortPowerEvents is step 1: the power events of the full conflicted set, plus the events of the
// full conflicted set reached from them through auth_events, in reverse topological power
// ordering. inPower marks the events picked.
func (r *resolver) sortPowerEvents(full []int32) ([]int32, map[int32]bool, error) {
	inFull := make(map[int32]bool, len(full))
	for _, n := range full {
		inFull[n] = true
	}
	inPower := map[int32]bool{}
	var stack []int32
	for _, n := range full {
		if isPowerEvent(r.g.event(n)) {
			inPower[n] = true
			stack = append(stack, n)
		}
	}
	for len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for _, p := range r.g.parents[n] {
			if inFull[p] && !inPower[p] {
				inPower[p] = true
				stack = append(stack, p)
			}
		}
	}
	nodes := make([]int32, 0, len(inPower))
	for _, n := range full { // full is sorted, so nodes is too
		if inPower[n] {
			nodes = append(nodes, n)
		}
	}
	if err := r.prefetchAuth(nodes); err != nil {
		return nil, nil, err
	}
	keys := make(map[int32]orderKey, len(nodes))
	for _, n := range nodes {
		ev := r.g.event(n)
		pl, err := r.senderPower(ev)
		if err != nil {
			return nil, nil, err
		}
		// Greater power sorts first; MinInt64 has no negation, and no one is below it anyway.
		primary := int64(math.MaxInt64)
		if pl != math.MinInt64 {
			primary = -pl
		}
		keys[n] = orderKey{primary: primary, ts: ev.PDU.OriginServerTS, id: ev.ID}
	}
	return kahn(nodes, r.g.parents, inPower, keys), inPower, nil
}

// orderKey is the tie-break of both orderings: smaller primary first, then older
// origin_server_ts, then smaller event ID.
type orderKey struct {
	primary int64
	ts      int64
	id      id.EventID
}

func (a orderKey) less(b orderKey) bool {
	if a.primary != b.primary {
		return a.primary < b.primary
	}
	if a.ts != b.ts {
		return a.ts < b.ts
	}
	return a.id < b.id
}

// kahn sorts nodes topologically along auth links (auth events first), always taking the
// smallest ready node by key. Events in an auth cycle (impossible with hashed event IDs, but a
// store may hold anything) come last, in key order, rather than being dropped.
func kahn(nodes []int32, parents [][]int32, in map[int32]bool, keys map[int32]orderKey) []int32 {
	indeg := make(map[int32]int, len(nodes))
	children := make(map[int32][]int32, len(nodes))
	for _, n := range nodes {
		seen := map[int32]bool{}
		for _, p := range parents[n] {
			if in[p] && !seen[p] && p != n {
				seen[p] = true
				indeg[n]++
				children[p] = append(children[p], n)
			}
		}
	}
	q := &keyQueue{keys: keys}
	for _, n := range nodes {
		if indeg[n] == 0 {
			q.nodes = append(q.nodes, n)
		}
	}
	heap.Init(q)
	out := make([]int32, 0, len(nodes))
	done := make(map[int32]bool, len(nodes))
	for q.Len() > 0 {
		n := heap.Pop(q).(int32)
		out = append(out, n)
		done[n] = true
		for _, c := range children[n] {
			indeg[c]--
			if indeg[c] == 0 {
				heap.Push(q, c)
			}
		}
	}
	if len(out) < len(nodes) {
		var rest []int32
		for _, n := range nodes {
			if !done[n] {
				rest = append(rest, n)
			}
		}
		slices.SortFunc(rest, func(a, b int32) int { return cmpKeys(keys[a], keys[b]) })
		out = append(out, rest...)
	}
	return out
}

func cmpKeys(a, b orderKey) int {
	switch {
	case a.less(b):
		return -1
	case b.less(a):
		return 1
	}
	return 0
}

type keyQueue struct {
	nodes []int32
	keys  map[int32]orderKey
}

func (q *keyQueue) Len() int           { return len(q.nodes) }
func (q *keyQueue) Less(i, j int) bool { return q.keys[q.nodes[i]].less(q.keys[q.nodes[j]]) }
func (q *keyQueue) Swap(i, j int)      { q.nodes[i], q.nodes[j] = q.nodes[j], q.nodes[i] }
func (q *keyQueue) Push(x any)         { q.nodes = append(q.nodes, x.(int32)) }
func (q *keyQueue) Pop() any {
	n := q.nodes[len(q.nodes)-1]
	q.nodes = q.nodes[:len(q.nodes)-1]
	return n
}

// mainlineSort is step 3: the remaining events by mainline position against the power levels
// of the partially resolved state (older base first), then origin_server_ts, then event ID.
func (r *resolver) mainlineSort(rest []int32, partial StateMap) ([]int32, error) {
	if len(rest) == 0 {
		return nil, nil
	}
	ml := &mainline{r: r, idx: map[id.EventID]int64{}, memo: map[id.EventID]int64{}, done: true}
	if plID, ok := partial[Key{typePowerLevels, ""}]; ok {
		p0, err := r.g.eventByID(plID)
		if err != nil {
			return nil, err
		}
		if p0 != nil {
			ml.idx[p0.ID], ml.tip, ml.next, ml.done = 0, p0, 1, false
		}
	}
	if err := r.prefetchAuth(rest); err != nil {
		return nil, err
	}
	keys := make(map[int32]orderKey, len(rest))
	for _, n := range rest {
		ev := r.g.event(n)
		e1, err := r.powerAuth(ev)
		if err != nil {
			return nil, err
		}
		pos, err := ml.position(e1)
		if err != nil {
			return nil, err
		}
		// A greater position sorts first; "not on the mainline" is the greatest of all.
		keys[n] = orderKey{primary: -pos, ts: ev.PDU.OriginServerTS, id: ev.ID}
	}
	out := slices.Clone(rest)
	slices.SortFunc(out, func(a, b int32) int { return cmpKeys(keys[a], keys[b]) })
	return out, nil
}

// notOnMainline is the spec's ∞ position.
const notOnMainline = math.MaxInt64

// mainline is the chain of power levels events from the resolved one down to the first, loaded
// only as far as some event needs it: a room's power levels history can be long, while the
// events being sorted usually cite one of the newest.
//
// Every power levels event names at most one parent (the power levels event among its auth
// events), so these chains form a tree and two of them, once they meet, run together to the
// root. An event's mainline position is therefore the index of the meeting point of its chain
// and the mainline, which a walk up both chains in turn finds without loading either past it.
type mainline struct {
	r    *resolver
	idx  map[id.EventID]int64 // loaded part of the mainline
	tip  *Event               // its last loaded event
	next int64
	done bool // reached the end of the mainline
	// memo keeps, for power levels events known to be off the mainline, the position of the
	// chain below them.
	memo map[id.EventID]int64
}

// extend loads one more mainline event and returns it, or nil at the end.
func (m *mainline) extend() (*Event, error) {
	if m.done {
		return nil, nil
	}
	p, err := m.r.powerAuth(m.tip)
	if err != nil {
		return nil, err
	}
	if p == nil {
		m.done = true
		return nil, nil
	}
	if _, loop := m.idx[p.ID]; loop {
		m.done = true // a cycle: nothing new below
		return nil, nil
	}
	m.idx[p.ID] = m.next
	m.next++
	m.tip = p
	return p, nil
}

// position returns the mainline position of an event whose chain starts at e1 (its power
// levels auth event, nil for none).
func (m *mainline) position(e1 *Event) (int64, error) {
	if len(m.idx) == 0 {
		return notOnMainline, nil // no power levels resolved: nothing to meet
	}
	var walked []id.EventID // chain events seen so far, all off the loaded mainline
	seen := map[id.EventID]int{}
	cur := e1
	pos := int64(notOnMainline)
	offAt := -1 // walked[:offAt] are known to be off the mainline when the answer is found
	for {
		if cur != nil {
			if p, ok := m.idx[cur.ID]; ok {
				pos, offAt = p, len(walked)
				break
			}
			if p, ok := m.memo[cur.ID]; ok {
				pos, offAt = p, len(walked)
				break
			}
			if _, loop := seen[cur.ID]; loop {
				cur = nil
			} else {
				seen[cur.ID] = len(walked)
				walked = append(walked, cur.ID)
				next, err := m.r.powerAuth(cur)
				if err != nil {
					return 0, err
				}
				cur = next
			}
		}
		if !m.done {
			y, err := m.extend()
			if err != nil {
				return 0, err
			}
			if y != nil {
				if i, ok := seen[y.ID]; ok {
					// The chains meet at y: it and what follows it are on the mainline.
					pos, offAt = m.idx[y.ID], i
					break
				}
			}
		}
		if cur == nil && m.done {
			offAt = len(walked)
			break
		}
	}
	for _, eid := range walked[:offAt] {
		m.memo[eid] = pos
	}
	return pos, nil
}

// powerAuth returns the m.room.power_levels event among ev's auth events, or nil.
func (r *resolver) powerAuth(ev *Event) (*Event, error) {
	for _, a := range ev.PDU.AuthEvents {
		ae, err := r.g.eventByID(a)
		if err != nil {
			return nil, err
		}
		if ae != nil && ae.PDU.Type == typePowerLevels && ae.PDU.StateKey != nil && *ae.PDU.StateKey == "" {
			return ae, nil
		}
	}
	return nil, nil
}

// prefetchAuth loads the auth events of the nodes in batches, so the per-event lookups that
// follow hit the cache.
func (r *resolver) prefetchAuth(nodes []int32) error {
	var want []int32
	for _, n := range nodes {
		want = append(want, r.g.parents[n]...)
	}
	return r.g.loadFull(want)
}
