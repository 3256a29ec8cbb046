package search

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hearth-home/hearth/matrix/events"
	"github.com/hearth-home/hearth/matrix/filter"
	"github.com/hearth-home/hearth/matrix/ignore"
	"github.com/hearth-home/hearth/matrix/merr"
	"github.com/hearth-home/hearth/matrix/rooms"
	"github.com/hearth-home/hearth/matrix/store"
)

// Bounds on one search's work and memory.
const (
	maxPostingsPerTerm = 200_000 // newest first per token
	maxScanPerPage     = 500     // candidate events checked for visibility per page
	maxLimit           = 100
	maxContext         = 20
)

// RoomEvents is the request's search_categories.room_events.
type RoomEvents struct {
	SearchTerm   string                  `json:"search_term"`
	Keys         []string                `json:"keys,omitempty"`
	Filter       *filter.RoomEventFilter `json:"filter,omitempty"`
	OrderBy      string                  `json:"order_by,omitempty"`
	EventContext *EventContext           `json:"event_context,omitempty"`
	IncludeState bool                    `json:"include_state,omitempty"`
	Groupings    *struct {
		GroupBy []struct {
			Key string `json:"key"`
		} `json:"group_by"`
	} `json:"groupings,omitempty"`
}

// EventContext asks for events around each result.
type EventContext struct {
	BeforeLimit    *int `json:"before_limit,omitempty"`
	AfterLimit     *int `json:"after_limit,omitempty"`
	IncludeProfile bool `json:"include_profile,omitempty"`
}

// Result is one search hit.
type Result struct {
	Rank    float64             `json:"rank"`
	Result  *events.ClientEvent `json:"result"`
	Context *Context            `json:"context,omitempty"`
}

// Context is the events around a hit.
type Context struct {
	Before      []*events.ClientEvent     `json:"events_before"`
	After       []*events.ClientEvent     `json:"events_after"`
	Start       string                    `json:"start,omitempty"`
	End         string                    `json:"end,omitempty"`
	ProfileInfo map[string]map[string]any `json:"profile_info,omitempty"`
}

// Group is one group of a grouping.
type Group struct {
	Results   []string `json:"results"`
	Order     int      `json:"order"`
	NextBatch string   `json:"next_batch,omitempty"`
}

// RoomEventsResult is the response's room_events.
type RoomEventsResult struct {
	Count      int                              `json:"count"`
	Highlights []string                         `json:"highlights"`
	Results    []Result                         `json:"results"`
	NextBatch  string                           `json:"next_batch,omitempty"`
	State      map[string][]*events.ClientEvent `json:"state,omitempty"`
	Groups     map[string]map[string]*Group     `json:"groups,omitempty"`
}

type cand struct {
	pos   uint64
	room  uint64
	score float64
}

func fieldOf(key string) (byte, error) {
	switch key {
	case "content.body":
		return FieldBody, nil
	case "content.name":
		return FieldName, nil
	case "content.topic":
		return FieldTopic, nil
	}
	return 0, merr.InvalidParam("unknown search key %q", key)
}

// batch token: "b<offset>_<max position>"; the max position pins the candidate set so that new
// events do not shift later pages.
func parseBatch(tok string) (offset int, maxPos uint64, err error) {
	a, b, ok := strings.Cut(strings.TrimPrefix(tok, "b"), "_")
	if !ok || !strings.HasPrefix(tok, "b") {
		return 0, 0, merr.InvalidParam("invalid next_batch token")
	}
	if offset, err = strconv.Atoi(a); err != nil || offset < 0 {
		return 0, 0, merr.InvalidParam("invalid next_batch token")
	}
	if maxPos, err = strconv.ParseUint(b, 10, 64); err != nil {
		return 0, 0, merr.InvalidParam("invalid next_batch token")
	}
	return offset, maxPos, nil
}

// Search answers a room_events search for who. nextBatch is the query's next_batch or "".
func (s *Service) Search(ctx context.Context, who rooms.Requester, q *RoomEvents, nextBatch string) (*RoomEventsResult, error) {
	if strings.TrimSpace(q.SearchTerm) == "" {
		return nil, merr.BadJSON("search_term is required")
	}
	fields := map[byte]bool{}
	keys := q.Keys
	if len(keys) == 0 {
		keys = []string{"content.body", "content.name", "content.topic"}
	}
	for _, k := range keys {
		f, err := fieldOf(k)
		if err != nil {
			return nil, err
		}
		fields[f] = true
	}
	byRank := true
	switch q.OrderBy {
	case "", "rank":
	case "recent":
		byRank = false
	default:
		return nil, merr.InvalidParam("order_by must be rank or recent")
	}
	groupBy := map[string]bool{}
	if q.Groupings != nil {
		for _, g := range q.Groupings.GroupBy {
			if g.Key != "room_id" && g.Key != "sender" {
				return nil, merr.InvalidParam("unknown group_by key %q", g.Key)
			}
			groupBy[g.Key] = true
		}
	}
	before, after := 5, 5
	if ec := q.EventContext; ec != nil {
		if ec.BeforeLimit != nil {
			before = min(max(*ec.BeforeLimit, 0), maxContext)
		}
		if ec.AfterLimit != nil {
			after = min(max(*ec.AfterLimit, 0), maxContext)
		}
	}
	limit := min(q.Filter.LimitOr(10), maxLimit)
	offset, maxPos := 0, uint64(0)
	if nextBatch != "" {
		var err error
		if offset, maxPos, err = parseBatch(nextBatch); err != nil {
			return nil, err
		}
	}
	if err := s.catchUpForSearch(); err != nil {
		return nil, err
	}
	if maxPos == 0 {
		maxPos = s.st.Stream().Watermark()
	}
	terms := uniq(Tokens(q.SearchTerm))
	res := &RoomEventsResult{Highlights: []string{}, Results: []Result{}}
	now := time.Now().UnixMilli()
	err := s.st.View(func(txn *store.Txn) error {
		// The rooms the user is joined to, after the filter's rooms/not_rooms.
		allowed := map[uint64]string{}
		if err := txn.Memberships(who.User.String(), func(m store.Membership) (bool, error) {
			if m.Membership != "join" {
				return true, nil
			}
			r, err := txn.Room(m.Room)
			if err != nil {
				return false, err
			}
			if q.Filter.MatchRoom(r.ID) {
				allowed[m.Room] = r.ID
			}
			return true, nil
		}); err != nil {
			return err
		}
		if len(allowed) == 0 || len(terms) == 0 {
			return nil
		}
		cands, err := s.candidates(txn, terms, allowed, fields, maxPos)
		if err != nil {
			return err
		}
		res.Count = len(cands)
		if byRank {
			sort.Slice(cands, func(i, j int) bool {
				if cands[i].score != cands[j].score {
					return cands[i].score > cands[j].score
				}
				return cands[i].pos > cands[j].pos
			})
		} else {
			sort.Slice(cands, func(i, j int) bool { return cands[i].pos > cands[j].pos })
		}
		ign, err := ignore.Load(txn, who.User.String())
		if err != nil {
			return err
		}
		viewers := map[uint64]*rooms.Viewer{}
		var hits []*rooms.Event
		var ranks []float64
		i, scanned := offset, 0
		for ; i < len(cands) && len(hits) < limit && scanned < maxScanPerPage; i++ {
			c := cands[i]
			scanned++
			ev, err := rooms.LoadEvent(txn, c.pos, allowed[c.room])
			if err != nil {
				return err
			}
			if ev.Rec.Flags&(store.FlagRejected|store.FlagRedacted) != 0 {
				continue
			}
			v := viewers[c.room]
			if v == nil {
				if v, err = rooms.NewViewer(txn, c.room, who.User.String()); err != nil {
					return err
				}
				viewers[c.room] = v
			}
			ok, err := v.CanSee(ev)
			if err != nil {
				return err
			}
			if !ok || ign.Hides(ev.Lite.Sender, ev.Lite.StateKey != nil) || !q.Filter.Match(ev.RoomID, ev.Lite.Type, ev.Lite.Sender, ev.Lite.Content) {
				continue
			}
			hits = append(hits, ev)
			ranks = append(ranks, c.score)
		}
		// A full page always carries next_batch (as Synapse does): the client learns there
		// are no more results from the next, empty, page.
		if i < len(cands) || len(hits) >= limit {
			res.NextBatch = fmt.Sprintf("b%d_%d", i, maxPos)
		}
		rendered, err := rooms.RenderInTxn(txn, who, hits, now)
		if err != nil {
			return err
		}
		hl := map[string]bool{}
		for k, ev := range hits {
			r := Result{Rank: ranks[k], Result: rendered[k]}
			if q.EventContext != nil {
				if r.Context, err = s.context(txn, who, viewers[ev.Rec.Room], ev, before, after, q.EventContext.IncludeProfile, now); err != nil {
					return err
				}
			}
			res.Results = append(res.Results, r)
			for _, t := range Tokens(textOf(ev)) {
				for _, term := range terms {
					if strings.HasPrefix(t, term) {
						hl[t] = true
					}
				}
			}
		}
		for _, t := range terms {
			hl[t] = true
		}
		for t := range hl {
			res.Highlights = append(res.Highlights, t)
		}
		sort.Strings(res.Highlights)
		if q.IncludeState {
			if res.State, err = stateOf(txn, who, hits, now); err != nil {
				return err
			}
		}
		if len(groupBy) > 0 {
			res.Groups = groups(hits, groupBy)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// candidates intersects the postings of every term (each also matching as a prefix).
func (s *Service) candidates(txn *store.Txn, terms []string, allowed map[uint64]string, fields map[byte]bool, maxPos uint64) ([]cand, error) {
	var acc map[uint64]cand
	for _, term := range terms {
		next := map[uint64]cand{}
		n := 0
		err := txn.Postings(term, true, func(p store.Posting) (bool, error) {
			n++
			if n > maxPostingsPerTerm {
				return false, nil
			}
			if p.Pos > maxPos || !fields[p.Field] {
				return true, nil
			}
			if _, ok := allowed[p.Room]; !ok {
				return true, nil
			}
			c, seen := next[p.Pos]
			if !seen {
				c = cand{pos: p.Pos, room: p.Room}
				if acc != nil {
					prev, ok := acc[p.Pos]
					if !ok {
						return true, nil
					}
					c.score = prev.score
				}
			}
			w := float64(p.Count)
			if p.Token != term {
				w /= 2
			}
			c.score += w
			next[p.Pos] = c
			return true, nil
		})
		if err != nil {
			return nil, err
		}
		acc = next
		if len(acc) == 0 {
			break
		}
	}
	out := make([]cand, 0, len(acc))
	for _, c := range acc {
		out = append(out, c)
	}
	return out, nil
}

func (s *Service) context(txn *store.Txn, who rooms.Requester, v *rooms.Viewer, ev *rooms.Event, before, after int, profile bool, now int64) (*Context, error) {
	var bev, aev []*rooms.Event
	collect := func(from uint64, back bool, n int, out *[]*rooms.Event) error {
		if n == 0 {
			return nil
		}
		scanned := 0
		return txn.Timeline(ev.Rec.Room, from, back, func(pos uint64) (bool, error) {
			scanned++
			e, err := rooms.LoadEvent(txn, pos, ev.RoomID)
			if err != nil {
				return false, err
			}
			if !store.Hidden(e.Rec.Flags) {
				if ok, err := v.CanSee(e); err != nil {
					return false, err
				} else if ok {
					*out = append(*out, e)
				}
			}
			return len(*out) < n && scanned < n*20, nil
		})
	}
	if err := collect(ev.Pos, true, before, &bev); err != nil {
		return nil, err
	}
	if err := collect(ev.Pos+1, false, after, &aev); err != nil {
		return nil, err
	}
	c := &Context{Start: rooms.Token(ev.Pos - 1), End: rooms.Token(ev.Pos)}
	if len(bev) > 0 {
		c.Start = rooms.Token(bev[len(bev)-1].Pos - 1)
	}
	if len(aev) > 0 {
		c.End = rooms.Token(aev[len(aev)-1].Pos)
	}
	var err error
	if c.Before, err = rooms.RenderInTxn(txn, who, bev, now); err != nil {
		return nil, err
	}
	if c.After, err = rooms.RenderInTxn(txn, who, aev, now); err != nil {
		return nil, err
	}
	if profile {
		senders := map[string]bool{ev.Lite.Sender: true}
		for _, e := range append(append([]*rooms.Event{}, bev...), aev...) {
			senders[e.Lite.Sender] = true
		}
		list := make([]string, 0, len(senders))
		for u := range senders {
			list = append(list, u)
		}
		members, err := rooms.MembersAt(txn, ev.Rec.Snapshot, ev.RoomID, list)
		if err != nil {
			return nil, err
		}
		c.ProfileInfo = map[string]map[string]any{}
		for _, m := range members {
			var mc struct {
				DisplayName *string `json:"displayname"`
				AvatarURL   *string `json:"avatar_url"`
			}
			_ = json.Unmarshal(m.Lite.Content, &mc)
			p := map[string]any{}
			if mc.DisplayName != nil {
				p["displayname"] = *mc.DisplayName
			}
			if mc.AvatarURL != nil {
				p["avatar_url"] = *mc.AvatarURL
			}
			c.ProfileInfo[*m.Lite.StateKey] = p
		}
	}
	return c, nil
}

func stateOf(txn *store.Txn, who rooms.Requester, hits []*rooms.Event, now int64) (map[string][]*events.ClientEvent, error) {
	out := map[string][]*events.ClientEvent{}
	for _, h := range hits {
		if _, done := out[h.RoomID]; done {
			continue
		}
		r, err := txn.Room(h.Rec.Room)
		if err != nil {
			return nil, err
		}
		m, err := rooms.StateMap(txn, r.Snapshot, h.RoomID)
		if err != nil {
			return nil, err
		}
		list := make([]*rooms.Event, 0, len(m))
		for _, e := range m {
			list = append(list, e)
		}
		sort.Slice(list, func(i, j int) bool { return list[i].Pos < list[j].Pos })
		if out[h.RoomID], err = rooms.RenderInTxn(txn, who, list, now); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func groups(hits []*rooms.Event, by map[string]bool) map[string]map[string]*Group {
	out := map[string]map[string]*Group{}
	for key := range by {
		g := map[string]*Group{}
		for _, h := range hits {
			v := h.RoomID
			if key == "sender" {
				v = h.Lite.Sender
			}
			if g[v] == nil {
				g[v] = &Group{Results: []string{}, Order: len(g) + 1}
			}
			g[v].Results = append(g[v].Results, h.Rec.ID)
		}
		out[key] = g
	}
	return out
}

func textOf(ev *rooms.Event) string {
	var c struct {
		Body  string `json:"body"`
		Name  string `json:"name"`
		Topic string `json:"topic"`
	}
	_ = json.Unmarshal(ev.Lite.Content, &c)
	return c.Body + " " + c.Name + " " + c.Topic
}

func uniq(in []string) []string {
	seen := map[string]bool{}
	out := in[:0]
	for _, t := range in {
		if !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	return out
}
