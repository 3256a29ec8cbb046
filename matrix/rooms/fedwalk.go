package rooms

import (
	"container/heap"
	"context"
	"errors"
	"sort"

	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/merr"
	"github.com/hearth-home/hearth/matrix/store"
)

// Walks of the event graph for /backfill and /get_missing_events. Both follow prev_events
// from the newest events first (a priority queue on depth, then stream position), so a limit
// cuts off the oldest part, and both leave out what the requesting server may not see.

// MaxFedWalk bounds how many events one /backfill or /get_missing_events answer carries.
const MaxFedWalk = 100

// walkScanFactor bounds the events read per event returned, when most are hidden.
const walkScanFactor = 20

// Backfill walks backwards from the given events (which are included) and returns up to limit
// events the server may see, newest first (descending depth).
func (s *Service) Backfill(ctx context.Context, server string, roomID id.RoomID, from []id.EventID, limit int) ([]*Event, error) {
	limit = min(max(limit, 0), MaxFedWalk)
	var out []*Event
	err := s.st.View(func(txn *store.Txn) error {
		nid, v, err := s.fedRoom(txn, roomID, server)
		if err != nil {
			return err
		}
		if !v.InRoom() {
			return merr.Forbidden("server %s is not in room %s", server, roomID)
		}
		w := newWalk(txn, nid)
		for _, e := range from {
			if err := w.push(e.String()); err != nil {
				return err
			}
		}
		if w.Len() == 0 && len(from) > 0 {
			return merr.NotFound("none of the events to backfill from is known in this room")
		}
		out, err = w.run(v, limit, nil, 0)
		return err
	})
	return out, err
}

// MissingEventsRequest is a parsed /get_missing_events body.
type MissingEventsRequest struct {
	Earliest []id.EventID
	Latest   []id.EventID
	Limit    int
	MinDepth int64
}

// MissingEvents walks the prev_events of the latest events, skipping the earliest ones (and
// not walking past them) and events below min_depth, and returns up to limit events the
// server may see, oldest first (ascending depth), as the receiver applies them.
func (s *Service) MissingEvents(ctx context.Context, server string, roomID id.RoomID, req MissingEventsRequest) ([]*Event, error) {
	limit := min(max(req.Limit, 0), MaxFedWalk)
	var out []*Event
	err := s.st.View(func(txn *store.Txn) error {
		nid, v, err := s.fedRoom(txn, roomID, server)
		if err != nil {
			return err
		}
		if !v.InRoom() {
			return merr.Forbidden("server %s is not in room %s", server, roomID)
		}
		w := newWalk(txn, nid)
		skip := map[string]bool{}
		for _, e := range req.Earliest {
			skip[e.String()] = true
		}
		for _, e := range req.Latest {
			// The latest events themselves are what the requester has; start at their parents.
			skip[e.String()] = true
			ev, err := eventByID(txn, e.String())
			if merrNotFound(err) {
				continue
			}
			if err != nil {
				return err
			}
			if ev.Rec.Room != nid {
				continue
			}
			for _, p := range ev.Lite.PrevEvents {
				if err := w.push(p); err != nil {
					return err
				}
			}
		}
		out, err = w.run(v, limit, skip, req.MinDepth)
		if err != nil {
			return err
		}
		sort.SliceStable(out, func(i, j int) bool {
			if out[i].Lite.Depth != out[j].Lite.Depth {
				return out[i].Lite.Depth < out[j].Lite.Depth
			}
			return out[i].Pos < out[j].Pos
		})
		return nil
	})
	return out, err
}

// walk is a newest-first traversal of one room's event graph.
type walk struct {
	txn    *store.Txn
	room   uint64
	queued map[string]bool
	q      eventHeap
}

func newWalk(txn *store.Txn, room uint64) *walk {
	return &walk{txn: txn, room: room, queued: map[string]bool{}}
}

// push queues a known event of the room; unknown events and those of other rooms are
// ignored (the requester may name events we never received).
func (w *walk) push(eventID string) error {
	if w.queued[eventID] {
		return nil
	}
	w.queued[eventID] = true
	ev, err := eventByID(w.txn, eventID)
	if merrNotFound(err) || errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if ev.Rec.Room != w.room {
		return nil
	}
	heap.Push(&w.q, ev)
	return nil
}

func (w *walk) Len() int { return w.q.Len() }

// run pops events newest first until limit visible events are collected. Events in skip are
// neither returned nor walked past; neither are events below minDepth.
func (w *walk) run(v *ServerViewer, limit int, skip map[string]bool, minDepth int64) ([]*Event, error) {
	out := []*Event{}
	budget := limit*walkScanFactor + 100
	for w.q.Len() > 0 && len(out) < limit && budget > 0 {
		budget--
		ev := heap.Pop(&w.q).(*Event)
		if skip[ev.Rec.ID] || ev.Lite.Depth < minDepth {
			continue
		}
		if ev.Rec.Flags&store.FlagOutlier != 0 {
			continue // not part of the graph as we know it (an auth or invite event)
		}
		ok, err := v.CanSee(ev)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, ev)
		}
		for _, p := range ev.Lite.PrevEvents {
			if err := w.push(p); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// eventHeap orders events by depth, then stream position, highest first.
type eventHeap []*Event

func (h eventHeap) Len() int { return len(h) }
func (h eventHeap) Less(i, j int) bool {
	if h[i].Lite.Depth != h[j].Lite.Depth {
		return h[i].Lite.Depth > h[j].Lite.Depth
	}
	return h[i].Pos > h[j].Pos
}
func (h eventHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *eventHeap) Push(x any)   { *h = append(*h, x.(*Event)) }
func (h *eventHeap) Pop() any {
	old := *h
	n := len(old)
	x := old[n-1]
	*h = old[:n-1]
	return x
}
