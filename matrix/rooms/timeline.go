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
	"github.com/hearth-home/hearth/matrix/merr"
	"github.com/hearth-home/hearth/matrix/store"
)

// A pagination token names a boundary "after stream position P": paging backwards from it
// returns events at positions <= P, forwards returns positions > P. Room tokens are "t<P>";
// sync tokens "s<P>_<typing>" are accepted too, since clients page from a sync's next_batch.

// Token formats a room pagination token.
func Token(pos uint64) string { return "t" + strconv.FormatUint(pos, 10) }

// ParseToken reads a room or sync token as a stream position. A token inside a gap
// (backfill_gap.go) reads as the position just before the gap event.
func ParseToken(tok string) (uint64, error) {
	if gap, _, ok, err := parseGapToken(tok); ok || err != nil {
		return gap - 1, err
	}
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

	exhausted bool   // paged backwards past the oldest known event (backfill.go)
	openGap   uint64 // paging back stopped at the gap before this timeline event (backfill_gap.go)
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
	beforeTok, afterTok, err := s.contextTokens(target) // context_order.go
	if err != nil {
		return nil, err
	}
	bp, err := s.Messages(ctx, MessagesRequest{User: user, RoomID: roomID, From: beforeTok, Backwards: true, Limit: max(before, 1), Filter: f})
	if err != nil {
		return nil, err
	}
	ap, err := s.Messages(ctx, MessagesRequest{User: user, RoomID: roomID, From: afterTok, Limit: max(after, 1), Filter: f})
	if err != nil {
		return nil, err
	}
	if before > 0 {
		res.Before = bp.Events
	}
	if after > 0 {
		res.After = ap.Events
	}
	// With no events asked for on a side, its token is the boundary at the event itself (the
	// page fetched one event only to learn whether there is anything there).
	res.Start = bp.End
	if res.Start == "" || before == 0 {
		res.Start = beforeTok
	}
	res.End = ap.End
	if res.End == "" || after == 0 {
		res.End = afterTok
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
