package rooms

import (
	"context"
	"errors"

	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/merr"
	"github.com/hearth-home/hearth/matrix/store"
)

// The client walk of a space tree (GET /v1/rooms/{roomId}/hierarchy). A room this server is in
// is described from its own state; any other room is asked of the servers in the via of the
// link that led to it (federation /hierarchy, one level: the room, its children's summaries
// and the children the remote server would not describe). As in Synapse, a remote answer's
// child summaries are reused when the walk reaches those children, unless a child is a space
// whose own children are still wanted, which costs one more request.

// maxHierarchyFetches bounds the remote /hierarchy requests of one client walk: each may wait
// on a slow server, and one client request must not hold a handler for minutes.
const maxHierarchyFetches = 32

// walkEntry is a room waiting on the walk's stack.
type walkEntry struct {
	roomID string
	via    []string
	depth  int
	remote *HierarchyRoom // the room as a parent's remote answer described it, if it did
}

// spaceWalk is the state of one client walk.
type spaceWalk struct {
	s             *Service
	user          id.UserID
	root          string
	suggestedOnly bool
	maxDepth      int
	fetches       int
}

// Hierarchy walks the space tree under root for a local user, depth-first (a space's
// children follow it, each subtree before the next sibling), each room once, and returns the
// rooms the user may see (joined or invited; or public, knockable, world-readable, or
// restricted to a room the user is in). Rooms the user may not see are left out with their
// subtrees; so are rooms no server would describe. The root must be known here and visible to
// the user, else 403 M_FORBIDDEN.
//
// Pages are stateless: the token is the number of rooms already returned plus the walk's
// parameters, and the next page walks again and skips them (remote answers come from the
// federation client's short cache then). The token refuses a change of suggested_only or
// max_depth (400 M_INVALID_PARAM) as the spec requires.
func (s *Service) Hierarchy(ctx context.Context, req HierarchyRequest) (*HierarchyPage, error) {
	limit := req.Limit
	if limit <= 0 {
		limit = DefaultHierarchyLimit
	}
	limit = min(limit, MaxHierarchyLimit)
	depth := req.MaxDepth
	if depth < 0 {
		depth = DefaultHierarchyDepth
	}
	depth = min(depth, MaxHierarchyDepth)
	skip := 0
	if req.From != "" {
		n, err := parseHierarchyToken(req.From, req.Root, req.SuggestedOnly, depth)
		if err != nil {
			return nil, err
		}
		skip = n
	}
	w := &spaceWalk{s: s, user: req.User, root: req.Root.String(), suggestedOnly: req.SuggestedOnly, maxDepth: depth}
	page := &HierarchyPage{Rooms: []*HierarchyRoom{}}
	stack := []walkEntry{{roomID: w.root}}
	seen := map[string]bool{}
	emitted := 0
	for len(stack) > 0 && len(seen) < maxHierarchyWalk {
		e := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[e.roomID] {
			continue // loops are possible, though the spec forbids them
		}
		seen[e.roomID] = true
		hr, children, err := w.room(ctx, e)
		if err != nil {
			return nil, err
		}
		if hr == nil {
			if e.roomID == w.root {
				return nil, merr.Forbidden("you are not allowed to view room %s", req.Root)
			}
			continue
		}
		if emitted >= skip {
			if len(page.Rooms) == limit {
				page.NextBatch = hierarchyToken(emitted, req.Root, req.SuggestedOnly, depth)
				return page, nil
			}
			page.Rooms = append(page.Rooms, hr)
		}
		emitted++
		if e.depth >= depth {
			continue
		}
		// Push in reverse so the first child is walked next.
		for i := len(children) - 1; i >= 0; i-- {
			if !seen[children[i].roomID] {
				stack = append(stack, children[i])
			}
		}
	}
	return page, nil
}

// room describes one room of the walk for the user and lists its children to walk; a nil
// room means the user may not see it or nobody could describe it.
func (w *spaceWalk) room(ctx context.Context, e walkEntry) (*HierarchyRoom, []walkEntry, error) {
	hr, kids, local, err := w.localRoom(e)
	if err != nil || local || e.roomID == w.root {
		return hr, kids, err
	}
	hr, remoteKids, inaccessible := w.remoteRoom(ctx, e)
	if hr == nil {
		return nil, nil, nil
	}
	var visible bool
	err = w.s.st.View(func(txn *store.Txn) error {
		membership := ""
		nid, err := txn.RoomNID(e.roomID)
		switch {
		case err == nil:
			m, err := txn.GetMembership(w.user.String(), nid)
			if err != nil {
				return err
			}
			membership = m.Membership
		case !errors.Is(err, store.ErrNotFound):
			return err
		}
		visible, err = summaryVisible(txn, hr.Summary, w.user, membership)
		return err
	})
	if err != nil || !visible {
		return nil, nil, err
	}
	// A copy: the answer may be shared through the federation client's cache.
	out := &HierarchyRoom{Summary: hr.Summary, ChildrenState: []ChildState{}}
	if hr.Summary.RoomType != "m.space" {
		return out, nil, nil // only spaces have children, as for local rooms
	}
	var links []child
	for _, cs := range hr.ChildrenState {
		ch, ok := parseChild(cs)
		if !ok || (w.suggestedOnly && !ch.suggested) || inaccessible[ch.StateKey] {
			continue
		}
		links = append(links, ch)
	}
	sortChildren(links)
	for _, ch := range links {
		out.ChildrenState = append(out.ChildrenState, ch.ChildState)
	}
	return out, w.entries(links, e.depth+1, remoteKids), nil
}

// localRoom describes a room from this server's state. local is false when the server is not
// in the room (its state here may be stale or absent): the walk then asks another server. The
// root counts as local whenever it is known, since the walk has no via to ask with.
func (w *spaceWalk) localRoom(e walkEntry) (hr *HierarchyRoom, kids []walkEntry, local bool, err error) {
	err = w.s.st.View(func(txn *store.Txn) error {
		nid, err := txn.RoomNID(e.roomID)
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
		if e.roomID != w.root {
			v, err := newServerViewer(txn, nid, w.s.server)
			if err != nil || !v.now.joined {
				return err
			}
		}
		local = true
		room, links, err := w.s.hierarchyRoom(txn, nid, w.suggestedOnly)
		if err != nil {
			return err
		}
		ok, err := w.s.userMaySeeInHierarchy(txn, room.Summary, w.user, nid)
		if err != nil || !ok {
			return err
		}
		hr, kids = room, w.entries(links, e.depth+1, nil)
		return nil
	})
	return hr, kids, local, err
}

// remoteRoom describes a room this server is not in: from a parent's remote answer when that
// is enough (not a space, or a space at the depth limit), else from the room's own remote
// answer. Failures leave the room out; the walk goes on.
func (w *spaceWalk) remoteRoom(ctx context.Context, e walkEntry) (*HierarchyRoom, map[string]*HierarchyRoom, map[string]bool) {
	if e.remote != nil && (e.remote.Summary.RoomType != "m.space" || e.depth >= w.maxDepth) {
		return e.remote, nil, nil
	}
	if w.s.hierFetch == nil || len(e.via) == 0 || w.fetches >= maxHierarchyFetches || ctx.Err() != nil {
		return nil, nil, nil
	}
	w.fetches++
	rh, err := w.s.hierFetch(ctx, e.via, id.RoomID(e.roomID), w.suggestedOnly)
	if err != nil {
		w.s.log.Debug("remote hierarchy unavailable", "room_id", e.roomID, "via", e.via, "err", err)
		return nil, nil, nil
	}
	kids := make(map[string]*HierarchyRoom, len(rh.Children))
	for _, c := range rh.Children {
		kids[c.Summary.RoomID] = c
	}
	inaccessible := make(map[string]bool, len(rh.Inaccessible))
	for _, r := range rh.Inaccessible {
		inaccessible[r] = true
	}
	return rh.Room, kids, inaccessible
}

// entries turns child links into stack entries, with the summaries a remote answer gave.
func (w *spaceWalk) entries(links []child, depth int, remote map[string]*HierarchyRoom) []walkEntry {
	out := make([]walkEntry, 0, len(links))
	for _, l := range links {
		out = append(out, walkEntry{roomID: l.StateKey, via: l.via, depth: depth, remote: remote[l.StateKey]})
	}
	return out
}
