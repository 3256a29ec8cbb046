package rooms

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"

	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/events"
	"github.com/hearth-home/hearth/matrix/filter"
	"github.com/hearth-home/hearth/matrix/ignore"
	"github.com/hearth-home/hearth/matrix/merr"
	"github.com/hearth-home/hearth/matrix/store"
)

// A pagination token names a boundary "after stream position P": paging backwards from it
// returns events at positions <= P, forwards returns positions > P. Room tokens are "t<P>";
// sync tokens "s<P>_<typing>" are accepted too, since clients page from a sync's next_batch.

// Token formats a room pagination token.
func Token(pos uint64) string { return "t" + strconv.FormatUint(pos, 10) }

// ParseToken reads a room or sync token.
func ParseToken(tok string) (uint64, error) {
	if len(tok) < 2 || (tok[0] != 't' && tok[0] != 's') {
		return 0, merr.InvalidParam("invalid pagination token %q", tok)
	}
	num := tok[1:]
	if tok[0] == 's' {
		num, _, _ = strings.Cut(num, "_")
	}
	p, err := strconv.ParseUint(num, 10, 64)
	if err != nil {
		return 0, merr.InvalidParam("invalid pagination token %q", tok)
	}
	return p, nil
}

// Page is a /messages answer.
type Page struct {
	Events []*Event
	Start  string
	End    string // empty when there is nothing further
	State  []*Event

	exhausted bool // paged backwards past the oldest known event (backfill.go)
}

// MessagesRequest is a parsed /messages query.
type MessagesRequest struct {
	User      id.UserID
	RoomID    id.RoomID
	From      string // empty: the end (backwards) or the start (forwards) of the timeline
	To        string
	Backwards bool
	Limit     int
	Filter    *filter.RoomEventFilter
}

// Messages pages through a room's timeline as the user is allowed to see it. Paging back past
// the oldest event known here fetches older history from another server first, when the room
// has any (backfill.go).
func (s *Service) Messages(ctx context.Context, req MessagesRequest) (*Page, error) {
	page, err := s.messages(ctx, req)
	if err != nil || !page.exhausted || len(page.Events) >= req.Limit {
		return page, err
	}
	if !s.fetchHistory(ctx, req.RoomID, max(req.Limit, 10)) {
		return page, nil
	}
	return s.messages(ctx, req)
}

func (s *Service) messages(ctx context.Context, req MessagesRequest) (*Page, error) {
	if req.Limit <= 0 {
		req.Limit = 10
	}
	if req.Limit > 1000 {
		req.Limit = 1000
	}
	page := &Page{Events: []*Event{}}
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
		if viewer.current == "leave" || viewer.current == "ban" {
			if gone, err := txn.Forgotten(req.User.String(), nid); err != nil {
				return err
			} else if gone {
				return merr.Forbidden("you have forgotten this room")
			}
		}
		if viewer.current == "" {
			if ok, err := s.worldReadable(txn, nid); err != nil || !ok {
				if err != nil {
					return err
				}
				return merr.Forbidden("you are not allowed to view this room")
			}
		}
		var from, fromSeq uint64
		inHistory := false // the From token is in the backfill order (backfill.go)
		if req.From != "" {
			if inHistory, fromSeq, err = parseHistoryToken(req.From); err != nil {
				return err
			} else if !inHistory {
				if from, err = ParseToken(req.From); err != nil {
					return err
				}
			}
		} else if req.Backwards {
			from = s.st.Stream().Watermark()
		}
		var to uint64
		hasTo := req.To != "" && req.To[0] != 'b'
		if hasTo {
			if to, err = ParseToken(req.To); err != nil {
				return err
			}
		}
		ign, err := ignore.Load(txn, req.User.String()) // ignored users' events are hidden
		if err != nil {
			return err
		}
		page.Start = req.From
		if page.Start == "" {
			page.Start = Token(from)
		}
		last := page.Start
		scanned := 0
		stopped := false
		visit := func(pos uint64, tok string) (bool, error) {
			scanned++
			ev, err := loadEvent(txn, pos, req.RoomID.String())
			if err != nil {
				return false, err
			}
			last = tok
			ok, err := viewer.CanSee(ev)
			if err != nil {
				return false, err
			}
			if ok && !ign.Hides(ev.Lite.Sender, ev.Lite.StateKey != nil) && req.Filter.Match(req.RoomID.String(), ev.Lite.Type, ev.Lite.Sender, ev.Lite.Content) {
				page.Events = append(page.Events, ev)
			}
			// Bound the work of one request even when a filter matches nothing.
			more := len(page.Events) < req.Limit && scanned < req.Limit*50
			stopped = !more
			return more, nil
		}
		timeline := func(start uint64) error {
			return txn.Timeline(nid, start, req.Backwards, func(pos uint64) (bool, error) {
				if hasTo && ((req.Backwards && pos <= to) || (!req.Backwards && pos > to)) {
					last, stopped = Token(to), true
					return false, nil
				}
				tok := Token(pos)
				if req.Backwards {
					tok = Token(pos - 1)
				}
				return visit(pos, tok)
			})
		}
		history := func(seq uint64, descending bool) error {
			return txn.Backfilled(nid, seq, descending, func(seq, pos uint64) (bool, error) {
				tok := backfillToken(seq)
				if descending {
					tok = backfillToken(seq - 1)
				}
				return visit(pos, tok)
			})
		}
		switch {
		case req.Backwards && !inHistory:
			if err := timeline(from + 1); err != nil {
				return err
			}
			if !stopped && !hasTo {
				err = history(1, false)
			}
		case req.Backwards:
			err = history(fromSeq+1, false)
		case inHistory:
			if fromSeq > 0 {
				err = history(fromSeq, true)
			}
			if err == nil && !stopped {
				err = timeline(1)
			}
		default:
			err = timeline(from + 1)
		}
		if err != nil {
			return err
		}
		if last != page.Start || len(page.Events) > 0 {
			page.End = last
		}
		// Paging back past everything known: the caller may fetch older history.
		page.exhausted = req.Backwards && !stopped && !hasTo
		if req.Filter != nil && req.Filter.LazyLoadMembers {
			page.State, err = membersFor(txn, nid, req.RoomID.String(), page.Events)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return page, nil
}

// membersFor returns the current member events of the senders of evs (lazy loading).
func membersFor(txn *store.Txn, room uint64, roomID string, evs []*Event) ([]*Event, error) {
	seen := map[string]bool{}
	var out []*Event
	for _, e := range evs {
		if seen[e.Lite.Sender] {
			continue
		}
		seen[e.Lite.Sender] = true
		sk, err := txn.StateKeyNID("m.room.member", e.Lite.Sender, false)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		pos, err := snapshotLookup(txn, e.Rec.After, sk)
		if err != nil || pos == 0 {
			if err != nil {
				return nil, err
			}
			continue
		}
		m, err := loadEvent(txn, pos, roomID)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

func (s *Service) worldReadable(txn *store.Txn, nid uint64) (bool, error) {
	rec, err := s.currentStateEvent(txn, nid, "m.room.history_visibility", "")
	if err != nil || rec == nil {
		return false, err
	}
	l, err := events.ParseLite(rec.PDU)
	if err != nil {
		return false, err
	}
	var c struct {
		HistoryVisibility string `json:"history_visibility"`
	}
	_ = json.Unmarshal(l.Content, &c)
	return c.HistoryVisibility == "world_readable", nil
}

// ContextResult is a /context answer.
type ContextResult struct {
	Before []*Event
	Event  *Event
	After  []*Event
	Start  string
	End    string
	State  []*Event
}

// Context returns events around one event.
func (s *Service) Context(ctx context.Context, user id.UserID, roomID id.RoomID, eventID id.EventID, limit int, f *filter.RoomEventFilter) (*ContextResult, error) {
	if limit < 0 {
		limit = 0
	}
	if limit > 100 {
		limit = 100
	}
	target, err := s.EventForUser(ctx, user, roomID, eventID)
	if err != nil {
		return nil, err
	}
	res := &ContextResult{Event: target, Before: []*Event{}, After: []*Event{}}
	before := limit / 2
	after := limit - before
	bp, err := s.Messages(ctx, MessagesRequest{User: user, RoomID: roomID, From: Token(target.Pos - 1), Backwards: true, Limit: max(before, 1), Filter: f})
	if err != nil {
		return nil, err
	}
	ap, err := s.Messages(ctx, MessagesRequest{User: user, RoomID: roomID, From: Token(target.Pos), Limit: max(after, 1), Filter: f})
	if err != nil {
		return nil, err
	}
	if before > 0 {
		res.Before = bp.Events
	}
	if after > 0 {
		res.After = ap.Events
	}
	res.Start = bp.End
	if res.Start == "" {
		res.Start = Token(target.Pos - 1)
	}
	res.End = ap.End
	if res.End == "" {
		res.End = Token(target.Pos)
	}
	err = s.st.View(func(txn *store.Txn) error {
		if f != nil && f.LazyLoadMembers {
			all := append(append(append([]*Event{}, res.Before...), target), res.After...)
			res.State, err = membersFor(txn, target.Rec.Room, roomID.String(), all)
			return err
		}
		m, err := StateMap(txn, target.Rec.Snapshot, roomID.String())
		for _, e := range m {
			res.State = append(res.State, e)
		}
		return err
	})
	return res, err
}

// EventForUser loads one event if the user may see it (M_NOT_FOUND otherwise, so that the
// existence of hidden events does not leak).
func (s *Service) EventForUser(ctx context.Context, user id.UserID, roomID id.RoomID, eventID id.EventID) (*Event, error) {
	var out *Event
	err := s.st.View(func(txn *store.Txn) error {
		pos, err := txn.EventPos(eventID.String())
		if errors.Is(err, store.ErrNotFound) {
			return merr.NotFound("event not found")
		}
		if err != nil {
			return err
		}
		ev, err := loadEvent(txn, pos, "")
		if err != nil {
			return err
		}
		if ev.RoomID != roomID.String() || ev.Rec.Flags&store.FlagRejected != 0 {
			return merr.NotFound("event not found")
		}
		viewer, err := NewViewer(txn, ev.Rec.Room, user.String())
		if err != nil {
			return err
		}
		ok, err := viewer.CanSee(ev)
		if err != nil {
			return err
		}
		if !ok {
			return merr.NotFound("event not found")
		}
		out = ev
		return nil
	})
	return out, err
}

// MembersAt returns the member events of the given users in a state snapshot (lazy loading).
func MembersAt(txn *store.Txn, snapshot uint64, roomID string, users []string) ([]*Event, error) {
	var out []*Event
	for _, u := range users {
		sk, err := txn.StateKeyNID("m.room.member", u, false)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		pos, err := snapshotLookup(txn, snapshot, sk)
		if err != nil {
			return nil, err
		}
		if pos == 0 {
			continue
		}
		m, err := loadEvent(txn, pos, roomID)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

// parseHistoryToken reads a "b<seq>" token of the backfill order.
func parseHistoryToken(tok string) (bool, uint64, error) {
	if len(tok) < 2 || tok[0] != 'b' {
		return false, 0, nil
	}
	n, err := strconv.ParseUint(tok[1:], 10, 64)
	if err != nil {
		return false, 0, merr.InvalidParam("invalid pagination token %q", tok)
	}
	return true, n, nil
}
