package rooms

import (
	"context"
	"encoding/json"
	"errors"
	"slices"

	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/ignore"
	"github.com/hearth-home/hearth/matrix/merr"
	"github.com/hearth-home/hearth/matrix/store"
)

// The read side of relations: GET /relations (spec: relations.yaml) and GET /threads
// (threads_list.yaml). Pagination tokens are the room tokens of /messages (a boundary "after
// position P"), so /messages' start and /sync's next_batch are accepted as the spec asks.

// RecursionDepth is how many levels of relations /relations?recurse=true follows (the spec
// asks for at least 3).
const RecursionDepth = 3

// recursionMax bounds the descendants one recursive request collects.
const recursionMax = 2000

// RelationsRequest is a parsed /relations query.
type RelationsRequest struct {
	User      id.UserID
	RoomID    id.RoomID
	EventID   id.EventID
	RelType   string // empty: every rel_type
	EventType string // empty: every event type
	From, To  string
	Backwards bool
	Limit     int
	Recurse   bool
}

// RelationsPage is a /relations answer; the events are in the order asked for.
type RelationsPage struct {
	Events    []*Event
	NextBatch string
	PrevBatch string
}

// Relations pages through the children of an event the user may see (404 otherwise), with
// the same visibility rules as /messages and without ignored users' events.
func (s *Service) Relations(ctx context.Context, req RelationsRequest) (*RelationsPage, error) {
	if req.Limit <= 0 {
		req.Limit = 10
	}
	req.Limit = min(req.Limit, 100)
	parent, err := s.EventForUser(ctx, req.User, req.RoomID, req.EventID)
	if err != nil {
		return nil, err
	}
	page := &RelationsPage{Events: []*Event{}, PrevBatch: req.From}
	err = s.st.View(func(txn *store.Txn) error {
		viewer, err := NewViewer(txn, parent.Rec.Room, req.User.String())
		if err != nil {
			return err
		}
		ign, err := ignore.Load(txn, req.User.String())
		if err != nil {
			return err
		}
		var from, to uint64
		if req.From != "" {
			if from, err = ParseToken(req.From); err != nil {
				return err
			}
		} else if req.Backwards {
			from = s.st.Stream().Watermark()
		}
		hasTo := req.To != ""
		if hasTo {
			if to, err = ParseToken(req.To); err != nil {
				return err
			}
		}
		if req.Backwards && from == 0 {
			return nil // nothing lies at or below position 0
		}
		// inRange says whether a position is inside the page's bounds; past reports that
		// it is beyond the far end (so an ordered scan can stop).
		inRange := func(pos uint64) (in, past bool) {
			if req.Backwards {
				if hasTo && pos <= to {
					return false, true
				}
				return pos <= from, false
			}
			if hasTo && pos > to {
				return false, true
			}
			return pos > from, false
		}
		accept := func(r store.Relation) (*Event, error) {
			if req.EventType != "" && r.Type != req.EventType {
				return nil, nil
			}
			ev, err := loadEvent(txn, r.Pos, parent.RoomID)
			if err != nil {
				return nil, err
			}
			if ign.Hides(ev.Lite.Sender, ev.Lite.StateKey != nil) {
				return nil, nil
			}
			ok, err := viewer.CanSee(ev)
			if err != nil || !ok {
				return nil, err
			}
			return ev, nil
		}
		var got []*Event
		if req.Recurse {
			got, err = s.recursiveRelations(txn, parent, req, inRange, accept)
		} else {
			got, err = s.directRelations(txn, parent, req, from, inRange, accept)
		}
		if err != nil {
			return err
		}
		slices.SortFunc(got, func(a, b *Event) int {
			if req.Backwards {
				return cmpPos(b.Pos, a.Pos)
			}
			return cmpPos(a.Pos, b.Pos)
		})
		if len(got) > req.Limit {
			got = got[:req.Limit]
			last := got[len(got)-1].Pos
			if req.Backwards {
				page.NextBatch = Token(last - 1)
			} else {
				page.NextBatch = Token(last)
			}
		}
		page.Events = got
		return nil
	})
	if err != nil {
		return nil, err
	}
	return page, nil
}

func cmpPos(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// directRelations collects up to limit+1 accepted children per rel_type in the page's order;
// the merged first limit+1 of those are the page (no rel_type can contribute more).
func (s *Service) directRelations(txn *store.Txn, parent *Event, req RelationsRequest, from uint64, inRange func(uint64) (bool, bool), accept func(store.Relation) (*Event, error)) ([]*Event, error) {
	types := []string{req.RelType}
	if req.RelType == "" {
		var err error
		if types, err = txn.RelationTypes(parent.Rec.Room, parent.Rec.ID); err != nil {
			return nil, err
		}
	}
	start := from
	if !req.Backwards {
		start = from + 1
	}
	var out []*Event
	for _, rt := range types {
		n := 0
		err := txn.Relations(parent.Rec.Room, parent.Rec.ID, rt, start, req.Backwards, func(r store.Relation) (bool, error) {
			in, past := inRange(r.Pos)
			if past {
				return false, nil
			}
			if !in {
				return true, nil
			}
			ev, err := accept(r)
			if err != nil {
				return false, err
			}
			if ev != nil {
				out = append(out, ev)
				n++
			}
			return n <= req.Limit, nil
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// recursiveRelations follows relations of relations up to RecursionDepth levels; rel_type and
// event type filters apply to every level's events, as in Synapse.
func (s *Service) recursiveRelations(txn *store.Txn, parent *Event, req RelationsRequest, inRange func(uint64) (bool, bool), accept func(store.Relation) (*Event, error)) ([]*Event, error) {
	var found []store.Relation
	seen := map[string]bool{parent.Rec.ID: true}
	frontier := []string{parent.Rec.ID}
	for depth := 1; depth <= RecursionDepth && len(frontier) > 0 && len(found) < recursionMax; depth++ {
		var next []string
		for _, p := range frontier {
			types, err := txn.RelationTypes(parent.Rec.Room, p)
			if err != nil {
				return nil, err
			}
			for _, rt := range types {
				err := txn.Relations(parent.Rec.Room, p, rt, 0, false, func(r store.Relation) (bool, error) {
					rec, err := txn.Event(r.Pos)
					if err != nil {
						return false, err
					}
					if seen[rec.ID] {
						return true, nil
					}
					seen[rec.ID] = true
					next = append(next, rec.ID)
					found = append(found, r)
					return len(found) < recursionMax, nil
				})
				if err != nil {
					return nil, err
				}
			}
		}
		frontier = next
	}
	slices.SortFunc(found, func(a, b store.Relation) int {
		if req.Backwards {
			return cmpPos(b.Pos, a.Pos)
		}
		return cmpPos(a.Pos, b.Pos)
	})
	var out []*Event
	for _, r := range found {
		if req.RelType != "" && r.RelType != req.RelType {
			continue
		}
		in, past := inRange(r.Pos)
		if past {
			break
		}
		if !in {
			continue
		}
		ev, err := accept(r)
		if err != nil {
			return nil, err
		}
		if ev != nil {
			out = append(out, ev)
			if len(out) > req.Limit {
				break
			}
		}
	}
	return out, nil
}

// ThreadsRequest is a parsed /threads query.
type ThreadsRequest struct {
	User         id.UserID
	RoomID       id.RoomID
	Participated bool // include=participated
	From         string
	Limit        int
}

// ThreadsPage is a /threads answer: thread roots, most recent activity first.
type ThreadsPage struct {
	Events    []*Event
	NextBatch string
}

// Threads lists the thread roots of a room the user may see. Roots sent by ignored users are
// returned redacted (spec), as a client aggregating locally would show them.
func (s *Service) Threads(ctx context.Context, req ThreadsRequest) (*ThreadsPage, error) {
	if req.Limit <= 0 {
		req.Limit = 5
	}
	req.Limit = min(req.Limit, 100)
	page := &ThreadsPage{Events: []*Event{}}
	err := s.st.View(func(txn *store.Txn) error {
		nid, err := txn.RoomNID(req.RoomID.String())
		if errors.Is(err, store.ErrNotFound) {
			return merr.Forbidden("you are not allowed to view this room")
		}
		if err != nil {
			return err
		}
		viewer, err := NewViewer(txn, nid, req.User.String())
		if err != nil {
			return err
		}
		if viewer.current == "ban" {
			return merr.Forbidden("you are not allowed to view this room")
		}
		if viewer.current == "" {
			if ok, err := s.worldReadable(txn, nid); err != nil || !ok {
				if err != nil {
					return err
				}
				return merr.Forbidden("you are not allowed to view this room")
			}
		}
		ign, err := ignore.Load(txn, req.User.String())
		if err != nil {
			return err
		}
		var before uint64
		if req.From != "" {
			if before, err = ParseToken(req.From); err != nil {
				return err
			}
			if before == 0 {
				return nil
			}
		}
		var latestOf []uint64
		var processed uint64 // latest position of the last thread looked at
		scanned, capped := 0, false
		err = txn.Threads(nid, before, func(latest uint64, root string) (bool, error) {
			scanned++
			if scanned > req.Limit*50 {
				capped = true // bound the work of one request; the client pages on
				return false, nil
			}
			processed = latest
			pos, err := txn.EventPos(root)
			if errors.Is(err, store.ErrNotFound) {
				return true, nil
			}
			if err != nil {
				return false, err
			}
			ev, err := loadEvent(txn, pos, req.RoomID.String())
			if err != nil {
				return false, err
			}
			if ev.Rec.Room != nid {
				return true, nil
			}
			if ok, err := viewer.CanSee(ev); err != nil || !ok {
				return err == nil, err
			}
			if req.Participated && ev.Lite.Sender != req.User.String() {
				n, err := txn.ThreadParticipation(nid, root, req.User.String())
				if err != nil {
					return false, err
				}
				if n == 0 {
					return true, nil
				}
			}
			if ign.Has(ev.Lite.Sender) {
				ev = redactedCopy(ev)
			}
			page.Events = append(page.Events, ev)
			latestOf = append(latestOf, latest)
			return len(page.Events) <= req.Limit, nil
		})
		if err != nil {
			return err
		}
		if len(page.Events) > req.Limit {
			page.Events = page.Events[:req.Limit]
			page.NextBatch = Token(latestOf[req.Limit-1] - 1)
		} else if capped && processed > 0 {
			page.NextBatch = Token(processed - 1)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return page, nil
}

// redactedCopy is e with its content emptied, for a thread root from an ignored user.
func redactedCopy(e *Event) *Event {
	l := *e.Lite
	l.Content = json.RawMessage("{}")
	cp := *e
	cp.Lite = &l
	return &cp
}
