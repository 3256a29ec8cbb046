package stateres

import (
	"container/heap"
	"fmt"
	"math"
	"slices"

	"maunium.net/go/mautrix/id"
)

// fullConflictedSet returns the conflicted state set, the v2.1 conflicted state subgraph and
// the auth difference, as loaded state events sorted by event ID. Events of the auth graph
// that the store lacks, or that are not state events, cannot take part and are left out.
func (r *resolver) fullConflictedSet(sets []StateMap, conflicted []id.EventID) ([]int32, error) {
	in := map[int32]struct{}{}
	cnodes := make([]int32, len(conflicted))
	for i, eid := range conflicted {
		cnodes[i] = r.g.node(eid)
		in[cnodes[i]] = struct{}{}
	}
	diff, err := r.authDifference(sets)
	if err != nil {
		return nil, err
	}
	for _, n := range diff {
		in[n] = struct{}{}
	}
	if r.algo == algoV21 {
		sub, err := r.conflictedSubgraph(cnodes)
		if err != nil {
			return nil, err
		}
		for _, n := range sub {
			in[n] = struct{}{}
		}
	}
	all := make([]int32, 0, len(in))
	for n := range in {
		all = append(all, n)
	}
	if err := r.g.loadFull(all); err != nil {
		return nil, err
	}
	out := all[:0]
	for _, n := range all {
		if ev := r.g.event(n); ev != nil && ev.PDU.StateKey != nil {
			out = append(out, n)
		}
	}
	slices.SortFunc(out, func(a, b int32) int { return compareIDs(r.g.ids[a], r.g.ids[b]) })
	return out, nil
}

func compareIDs(a, b id.EventID) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// authDifference returns the events reachable through auth_events from at least one state set
// but not from all of them (a set reaches its own events too).
//
// Rather than building every full auth chain, it walks from all state events at once, deepest
// first, carrying a bit per state set to the auth events, and stops as soon as every event
// still waiting to be walked is reached by all sets: when auth events are shallower than the
// events citing them, as honest servers make them, nothing further down can be in the
// difference or change a walked event. Unconflicted events start with every bit set, so the
// walk usually ends a few steps below the fork. Depth is not checked by the auth rules, so a
// walked auth link that does not go down in depth switches the walk to exhaustive mode (run to
// the end, re-walking any event whose bits grow), which is exact on any graph. Depths lying in
// the part of the graph not walked are the one case the early stop trusts.
func (r *resolver) authDifference(sets []StateMap) ([]int32, error) {
	m := newMasks(len(sets))
	var start []int32
	for i, set := range sets {
		for _, eid := range set {
			n := r.g.node(eid)
			m.grow(len(r.g.ids))
			if m.empty(n) {
				start = append(start, n)
			}
			m.set(n, i)
		}
	}
	if err := r.g.loadLinks(start); err != nil {
		return nil, err
	}
	q := &depthQueue{depth: r.g.depth}
	inQueue := make([]bool, len(r.g.ids))
	nonFull := 0
	push := func(n int32) {
		for int(n) >= len(inQueue) {
			inQueue = append(inQueue, false)
		}
		inQueue[n] = true
		if !m.full(n) {
			nonFull++
		}
		q.depth = r.g.depth
		heap.Push(q, n)
	}
	for _, n := range start {
		push(n)
	}
	var level, next []int32
	exhaustive := r.exhaustiveWalk
	for q.Len() > 0 && (nonFull > 0 || exhaustive) {
		if err := r.ctx.Err(); err != nil {
			return nil, fmt.Errorf("stateres: %w", err)
		}
		q.depth = r.g.depth
		level = level[:0]
		d := r.g.depth[q.nodes[0]]
		for q.Len() > 0 && r.g.depth[q.nodes[0]] == d {
			n := heap.Pop(q).(int32)
			inQueue[n] = false
			if !m.full(n) {
				nonFull--
			}
			level = append(level, n)
		}
		next = next[:0]
		for _, n := range level {
			next = append(next, r.g.parents[n]...)
		}
		if err := r.g.loadLinks(next); err != nil {
			return nil, err
		}
		m.grow(len(r.g.ids))
		for _, n := range level {
			for _, p := range r.g.parents[n] {
				if r.g.status[p] == statusLoaded && r.g.depth[p] >= r.g.depth[n] {
					exhaustive = true
				}
				wasNew, wasFull := m.empty(p), m.full(p)
				changed := m.or(p, n)
				queued := int(p) < len(inQueue) && inQueue[p]
				switch {
				case queued && !wasFull && m.full(p):
					nonFull--
				case !queued && (wasNew || changed):
					push(p)
				}
			}
		}
	}
	var diff []int32
	for n := range r.g.ids {
		if n < m.n && !m.empty(int32(n)) && !m.full(int32(n)) {
			diff = append(diff, int32(n))
		}
	}
	return diff, nil
}

// conflictedSubgraph returns the events on auth_events paths from one conflicted event to
// another (endpoints included): those that are auth ancestors of a conflicted event and have
// a conflicted event among their own auth ancestors. Every node of such a path is an ancestor
// of its start, so walking the ancestors and then walking back down inside them finds all.
//
// An event that reaches a conflicted event is deeper than it, so the ancestor walk does not go
// on below the shallowest conflicted event, unless a walked auth link fails to go down in depth:
// then, as for the auth difference, the walk becomes exhaustive.
func (r *resolver) conflictedSubgraph(cnodes []int32) ([]int32, error) {
	if err := r.g.loadLinks(cnodes); err != nil {
		return nil, err
	}
	minDepth := int64(math.MaxInt64)
	for _, n := range cnodes {
		if r.g.status[n] == statusLoaded {
			minDepth = min(minDepth, r.g.depth[n])
		}
	}
	exhaustive := r.exhaustiveWalk
	visited := map[int32]struct{}{}
	frontier := slices.Clone(cnodes)
	for _, n := range frontier {
		visited[n] = struct{}{}
	}
	var deferred, parents []int32
	for len(frontier) > 0 {
		if err := r.ctx.Err(); err != nil {
			return nil, fmt.Errorf("stateres: %w", err)
		}
		parents = parents[:0]
		for _, n := range frontier {
			parents = append(parents, r.g.parents[n]...)
		}
		if err := r.g.loadLinks(parents); err != nil {
			return nil, err
		}
		var next []int32
		for _, n := range frontier {
			for _, p := range r.g.parents[n] {
				if !exhaustive && r.g.status[p] == statusLoaded && r.g.depth[p] >= r.g.depth[n] {
					exhaustive = true
					next = append(next, deferred...)
					deferred = nil
				}
				if _, ok := visited[p]; ok {
					continue
				}
				visited[p] = struct{}{}
				if exhaustive || r.g.depth[p] > minDepth {
					next = append(next, p)
				} else {
					deferred = append(deferred, p)
				}
			}
		}
		frontier = next
	}
	children := make(map[int32][]int32, len(visited))
	for n := range visited {
		for _, p := range r.g.parents[n] {
			children[p] = append(children[p], n)
		}
	}
	reached := map[int32]struct{}{}
	stack := slices.Clone(cnodes)
	for _, n := range stack {
		reached[n] = struct{}{}
	}
	for len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for _, c := range children[n] {
			if _, ok := reached[c]; !ok {
				reached[c] = struct{}{}
				stack = append(stack, c)
			}
		}
	}
	out := make([]int32, 0, len(reached))
	for n := range reached {
		out = append(out, n)
	}
	return out, nil
}

// masks holds one bit per state set for every node, in one flat slice.
type masks struct {
	k, w, n int
	bits    []uint64
	fullw   []uint64
}

func newMasks(k int) *masks {
	w := (k + 63) / 64
	full := make([]uint64, w)
	for i := 0; i < k; i++ {
		full[i/64] |= 1 << (i % 64)
	}
	return &masks{k: k, w: w, fullw: full}
}

func (m *masks) grow(n int) {
	if n > m.n {
		m.bits = append(m.bits, make([]uint64, (n-m.n)*m.w)...)
		m.n = n
	}
}

func (m *masks) row(n int32) []uint64 { return m.bits[int(n)*m.w : int(n+1)*m.w] }

func (m *masks) set(n int32, i int) { m.row(n)[i/64] |= 1 << (i % 64) }

func (m *masks) empty(n int32) bool {
	for _, x := range m.row(n) {
		if x != 0 {
			return false
		}
	}
	return true
}

func (m *masks) full(n int32) bool { return slices.Equal(m.row(n), m.fullw) }

// or adds src's bits to dst's and reports whether dst changed.
func (m *masks) or(dst, src int32) bool {
	d, s := m.row(dst), m.row(src)
	changed := false
	for i := range d {
		if v := d[i] | s[i]; v != d[i] {
			d[i] = v
			changed = true
		}
	}
	return changed
}

// depthQueue pops the deepest node first.
type depthQueue struct {
	nodes []int32
	depth []int64
}

func (q *depthQueue) Len() int { return len(q.nodes) }
func (q *depthQueue) Less(i, j int) bool {
	a, b := q.nodes[i], q.nodes[j]
	if q.depth[a] != q.depth[b] {
		return q.depth[a] > q.depth[b]
	}
	return a < b
}
func (q *depthQueue) Swap(i, j int) { q.nodes[i], q.nodes[j] = q.nodes[j], q.nodes[i] }
func (q *depthQueue) Push(x any)    { q.nodes = append(q.nodes, x.(int32)) }
func (q *depthQueue) Pop() any {
	n := q.nodes[len(q.nodes)-1]
	q.nodes = q.nodes[:len(q.nodes)-1]
	return n
}
