package stateres

import (
	"context"
	"fmt"

	"maunium.net/go/mautrix/id"
)

// fetchBatch bounds the IDs passed to one Fetcher call, so that the caller's decoding work
// (and memory) per call stays small whatever the size of the room.
const fetchBatch = 512

// Node load status.
const (
	statusUnknown uint8 = iota
	statusLoaded
	statusMissing
)

// graph is the part of the auth DAG one resolution has looked at. Every event gets a small
// integer; for most events only the auth links and depth are kept (enough to walk auth
// chains), and whole events are kept only for those the algorithm reads: the full conflicted
// set and the auth events consulted while sorting and authorising it.
type graph struct {
	ctx     context.Context
	fetch   Fetcher
	idx     map[id.EventID]int32
	ids     []id.EventID
	parents [][]int32
	depth   []int64
	status  []uint8
	full    map[int32]*Event
}

// newGraph makes an empty graph; hint is the expected number of events (sizing only).
func newGraph(ctx context.Context, fetch Fetcher, hint int) *graph {
	return &graph{
		ctx: ctx, fetch: fetch, idx: make(map[id.EventID]int32, hint), full: map[int32]*Event{},
		ids: make([]id.EventID, 0, hint), parents: make([][]int32, 0, hint),
		depth: make([]int64, 0, hint), status: make([]uint8, 0, hint),
	}
}

// node returns the integer for an event ID, adding it unloaded if new.
func (g *graph) node(eid id.EventID) int32 {
	if n, ok := g.idx[eid]; ok {
		return n
	}
	n := int32(len(g.ids))
	g.idx[eid] = n
	g.ids = append(g.ids, eid)
	g.parents = append(g.parents, nil)
	g.depth = append(g.depth, 0)
	g.status = append(g.status, statusUnknown)
	return n
}

// loadLinks makes sure the auth links of the nodes are known.
func (g *graph) loadLinks(nodes []int32) error {
	var want []int32
	for _, n := range nodes {
		if g.status[n] == statusUnknown {
			want = append(want, n)
		}
	}
	return g.load(want, false)
}

// loadFull makes sure the whole events of the nodes are at hand (missing ones stay nil).
func (g *graph) loadFull(nodes []int32) error {
	var want []int32
	for _, n := range nodes {
		if g.status[n] == statusMissing {
			continue
		}
		if _, ok := g.full[n]; !ok {
			want = append(want, n)
		}
	}
	return g.load(want, true)
}

// event returns a whole event loaded by loadFull, or nil.
func (g *graph) event(n int32) *Event { return g.full[n] }

// eventByID loads one whole event by ID; nil when missing.
func (g *graph) eventByID(eid id.EventID) (*Event, error) {
	n := g.node(eid)
	if err := g.loadFull([]int32{n}); err != nil {
		return nil, err
	}
	return g.event(n), nil
}

func (g *graph) load(want []int32, keep bool) error {
	seen := make(map[int32]struct{}, len(want))
	batch := make([]id.EventID, 0, min(len(want), fetchBatch))
	nodes := make([]int32, 0, cap(batch))
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := g.ctx.Err(); err != nil {
			return fmt.Errorf("stateres: %w", err)
		}
		evs, err := g.fetch(g.ctx, batch)
		if err != nil {
			return fmt.Errorf("stateres: fetch %d events: %w", len(batch), err)
		}
		if len(evs) != len(batch) {
			return fmt.Errorf("stateres: fetcher returned %d events for %d IDs", len(evs), len(batch))
		}
		for i, ev := range evs {
			n := nodes[i]
			if ev != nil && ev.ID != batch[i] {
				return fmt.Errorf("stateres: fetcher returned %s for %s", ev.ID, batch[i])
			}
			if ev == nil || ev.PDU == nil {
				g.status[n] = statusMissing
				continue
			}
			if g.status[n] == statusUnknown {
				g.depth[n] = ev.PDU.Depth
				ps := make([]int32, 0, len(ev.PDU.AuthEvents))
				for _, a := range ev.PDU.AuthEvents {
					ps = append(ps, g.node(a))
				}
				g.parents[n] = ps
				g.status[n] = statusLoaded
			}
			if keep {
				g.full[n] = ev
			}
		}
		batch, nodes = batch[:0], nodes[:0]
		return nil
	}
	for _, n := range want {
		if _, dup := seen[n]; dup {
			continue
		}
		seen[n] = struct{}{}
		batch = append(batch, g.ids[n])
		nodes = append(nodes, n)
		if len(batch) == fetchBatch {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}
