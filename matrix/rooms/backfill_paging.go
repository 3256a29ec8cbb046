package rooms

import (
	"context"
	"errors"

	"github.com/hearth-home/hearth/matrix/ignore"
	"github.com/hearth-home/hearth/matrix/merr"
	"github.com/hearth-home/hearth/matrix/store"
)

// /messages walks three orders of one room's history: the timeline (stream order), the gaps in
// it (backfill_gap.go) and the history older than it (backfill.go). Paging backwards from a
// gap event enters its gap; an open gap with nothing more stored stops the walk there, and
// Messages fetches that history and walks again.

// maxFetchRounds bounds the fetches one /messages request makes from other servers.
const maxFetchRounds = 4

// Messages pages through a room's timeline as the user is allowed to see it. Paging back into
// a gap or past the oldest event known here fetches that history from another server first.
// When a gap cannot be filled (no server answers), the walk goes past it rather than stop.
func (s *Service) Messages(ctx context.Context, req MessagesRequest) (*Page, error) {
	if req.Limit <= 0 {
		req.Limit = 10
	}
	if req.Limit > 1000 {
		req.Limit = 1000
	}
	passGaps := false
	fetch := max(req.Limit, 10)
	page, err := s.messages(ctx, req, passGaps)
	for round := 0; err == nil && len(page.Events) < req.Limit && round < maxFetchRounds; round++ {
		switch {
		case page.openGap != 0:
			if !s.fillGap(ctx, req.RoomID, page.openGap, fetch) {
				passGaps = true
			}
		case page.exhausted:
			if !s.fetchHistory(ctx, req.RoomID, fetch) {
				return page, nil
			}
		default:
			return page, nil
		}
		page, err = s.messages(ctx, req, passGaps)
	}
	return page, err
}

// cursor is a parsed pagination boundary: in the timeline after position pos ('t'), in the
// gap before the event at pos after its event seq ('g'), or in the backfill order ('b').
type cursor struct {
	kind byte
	pos  uint64
	seq  uint64
}

func parseCursor(tok string) (cursor, error) {
	if gap, seq, ok, err := parseGapToken(tok); ok || err != nil {
		return cursor{kind: 'g', pos: gap, seq: seq}, err
	}
	if ok, seq, err := parseHistoryToken(tok); ok || err != nil {
		return cursor{kind: 'b', seq: seq}, err
	}
	p, err := ParseToken(tok)
	return cursor{kind: 't', pos: p}, err
}

// pager is one walk of a /messages request inside a read transaction.
type pager struct {
	txn      *store.Txn
	nid      uint64
	req      MessagesRequest
	viewer   *Viewer
	ign      ignore.Set
	passGaps bool
	hasTo    bool
	to       uint64

	page    *Page
	last    string // token after the last event visited
	scanned int
	stopped bool // the limit (or the to token) ended the walk
}

// visit adds one event when the user may see it and it passes the filter, and reports whether
// the walk goes on.
func (w *pager) visit(ev *Event, tok string) (bool, error) {
	w.scanned++
	w.last = tok
	ok, err := w.viewer.CanSee(ev)
	if err != nil {
		return false, err
	}
	if ok && !w.ign.Hides(ev.Lite.Sender, ev.Lite.StateKey != nil) && w.req.Filter.Match(w.req.RoomID.String(), ev.Lite.Type, ev.Lite.Sender, ev.Lite.Content) {
		w.page.Events = append(w.page.Events, ev)
	}
	// Bound the work of one request even when a filter matches nothing.
	more := len(w.page.Events) < w.req.Limit && w.scanned < w.req.Limit*50
	w.stopped = !more
	return more, nil
}

func (w *pager) load(pos uint64) (*Event, error) {
	return loadEvent(w.txn, pos, w.req.RoomID.String())
}

func isGap(ev *Event) bool { return ev.Rec.Flags&store.FlagGap != 0 }

// back walks towards the past from c.
func (w *pager) back(c cursor) error {
	for {
		switch c.kind {
		case 'g':
			more := true
			err := w.txn.GapFilled(w.nid, c.pos, c.seq+1, false, func(seq, pos uint64) (bool, error) {
				ev, err := w.load(pos)
				if err != nil {
					return false, err
				}
				more, err = w.visit(ev, gapToken(c.pos, seq))
				return more, err
			})
			if err != nil || !more {
				return err
			}
			if !w.passGaps {
				from, err := gapFrontier(w.txn, w.nid, c.pos)
				if err != nil {
					return err
				}
				if len(from) > 0 {
					w.page.openGap = c.pos
					return nil
				}
			}
			c = cursor{kind: 't', pos: c.pos - 1}
		case 't':
			more := true
			var next *cursor
			err := w.txn.Timeline(w.nid, c.pos+1, true, func(pos uint64) (bool, error) {
				if w.hasTo && pos <= w.to {
					w.last, w.stopped, more = Token(w.to), true, false
					return false, nil
				}
				ev, err := w.load(pos)
				if err != nil {
					return false, err
				}
				if !isGap(ev) {
					more, err = w.visit(ev, Token(pos-1))
					return more, err
				}
				if more, err = w.visit(ev, gapToken(pos, 0)); err != nil || !more {
					return false, err
				}
				next = &cursor{kind: 'g', pos: pos}
				return false, nil
			})
			if err != nil || !more {
				return err
			}
			if next != nil {
				c = *next
				continue
			}
			if w.hasTo {
				return nil // the to token bounds the walk within the timeline
			}
			c = cursor{kind: 'b'}
		default:
			more := true
			err := w.txn.Backfilled(w.nid, c.seq+1, false, func(seq, pos uint64) (bool, error) {
				ev, err := w.load(pos)
				if err != nil {
					return false, err
				}
				more, err = w.visit(ev, backfillToken(seq))
				return more, err
			})
			if err == nil && more {
				w.page.exhausted = true // paged back past everything known here
			}
			return err
		}
	}
}

// forward walks towards the present from c.
func (w *pager) forward(c cursor) error {
	inGap := uint64(0) // a gap event whose gap this walk started in
	switch c.kind {
	case 'b':
		if c.seq > 0 {
			more := true
			err := w.txn.Backfilled(w.nid, c.seq, true, func(seq, pos uint64) (bool, error) {
				ev, err := w.load(pos)
				if err != nil {
					return false, err
				}
				more, err = w.visit(ev, backfillToken(seq-1))
				return more, err
			})
			if err != nil || !more {
				return err
			}
		}
		c = cursor{kind: 't'}
	case 'g':
		if more, err := w.gapForward(c.pos, c.seq); err != nil || !more {
			return err
		}
		inGap = c.pos
		c = cursor{kind: 't', pos: c.pos - 1}
	}
	return w.txn.Timeline(w.nid, c.pos+1, false, func(pos uint64) (bool, error) {
		if w.hasTo && pos > w.to {
			w.last, w.stopped = Token(w.to), true
			return false, nil
		}
		ev, err := w.load(pos)
		if err != nil {
			return false, err
		}
		if isGap(ev) && pos != inGap {
			g, err := w.txn.Gap(w.nid, pos)
			if err != nil {
				return false, err
			}
			if g != nil && g.Seq > 0 {
				if more, err := w.gapForward(pos, g.Seq); err != nil || !more {
					return false, err
				}
			}
		}
		return w.visit(ev, Token(pos))
	})
}

// gapForward walks the gap before the event at gap from its event seq towards the gap event.
func (w *pager) gapForward(gap, seq uint64) (bool, error) {
	more := true
	if seq == 0 {
		return true, nil
	}
	err := w.txn.GapFilled(w.nid, gap, seq, true, func(s, pos uint64) (bool, error) {
		ev, err := w.load(pos)
		if err != nil {
			return false, err
		}
		more, err = w.visit(ev, gapToken(gap, s-1))
		return more, err
	})
	return more, err
}

func (s *Service) messages(_ context.Context, req MessagesRequest, passGaps bool) (*Page, error) {
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
		start := cursor{kind: 't'}
		if req.From != "" {
			if start, err = parseCursor(req.From); err != nil {
				return err
			}
		} else if req.Backwards {
			start.pos = s.st.Stream().Watermark()
		}
		w := &pager{txn: txn, nid: nid, req: req, viewer: viewer, passGaps: passGaps, page: page}
		// A to token inside a gap or the backfill order is not a timeline bound: such a walk
		// runs to the limit.
		if req.To != "" && req.To[0] != 'b' && req.To[0] != 'g' {
			if w.to, err = ParseToken(req.To); err != nil {
				return err
			}
			w.hasTo = true
		}
		if w.ign, err = ignore.Load(txn, req.User.String()); err != nil { // ignored users' events are hidden
			return err
		}
		page.Start = req.From
		if page.Start == "" {
			page.Start = Token(start.pos)
		}
		w.last = page.Start
		if req.Backwards {
			err = w.back(start)
		} else {
			err = w.forward(start)
		}
		if err != nil {
			return err
		}
		if w.last != page.Start || len(page.Events) > 0 {
			page.End = w.last
		}
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
