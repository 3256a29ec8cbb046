package sync

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"time"

	"github.com/hearth-home/hearth/matrix/accounts"
	"github.com/hearth-home/hearth/matrix/clientapi"
	"github.com/hearth-home/hearth/matrix/events"
	"github.com/hearth-home/hearth/matrix/filter"
	"github.com/hearth-home/hearth/matrix/ignore"
	"github.com/hearth-home/hearth/matrix/store"
)

// slidingResponse is the body of a Simplified Sliding Sync response.
type slidingResponse struct {
	TxnID      string                     `json:"txn_id,omitempty"`
	Pos        string                     `json:"pos"`
	Lists      map[string]slidingListResp `json:"lists"`
	Rooms      map[string]*slidingRoom    `json:"rooms"`
	Extensions map[string]any             `json:"extensions"`
}

type slidingListResp struct {
	Count int `json:"count"`
}

// slidingRoom is one room of a response. Omitted fields are unchanged unless Initial is set.
type slidingRoom struct {
	Name             *string                `json:"name,omitempty"`
	Avatar           json.RawMessage        `json:"avatar,omitempty"` // a URL, or null once removed
	Heroes           []hero                 `json:"heroes,omitempty"`
	Initial          bool                   `json:"initial,omitempty"`
	ExpandedTimeline bool                   `json:"expanded_timeline,omitempty"`
	UnstableExpanded bool                   `json:"unstable_expanded_timeline,omitempty"`
	IsDM             *bool                  `json:"is_dm,omitempty"`
	InviteState      []events.StrippedState `json:"invite_state,omitempty"`
	RequiredState    []*events.ClientEvent  `json:"required_state,omitempty"`
	Timeline         []*events.ClientEvent  `json:"timeline,omitempty"`
	PrevBatch        string                 `json:"prev_batch,omitempty"`
	Limited          bool                   `json:"limited,omitempty"`
	NumLive          *int                   `json:"num_live,omitempty"`
	BumpStamp        uint64                 `json:"bump_stamp,omitempty"`
	JoinedCount      *int                   `json:"joined_count,omitempty"`
	InvitedCount     *int                   `json:"invited_count,omitempty"`
	Notifications    *int                   `json:"notification_count,omitempty"`
	Highlights       *int                   `json:"highlight_count,omitempty"`
	Membership       string                 `json:"membership,omitempty"`
	Lists            []string               `json:"lists,omitempty"`
}

// SlidingSync implements clientapi.SlidingSyncer: MSC4186, Simplified Sliding Sync.
func (s *Service) SlidingSync(ctx context.Context, sess *accounts.Session, q clientapi.SlidingQuery, body []byte) (any, error) {
	req, err := parseSlidingRequest(body)
	if err != nil {
		return nil, err
	}
	pos := q.Pos
	if pos == "" {
		pos = req.req.Pos
	}
	timeout := q.Timeout
	if !q.TimeoutSet && req.req.Timeout != nil && *req.req.Timeout > 0 {
		timeout = time.Duration(*req.req.Timeout) * time.Millisecond
	}
	if q.MaxTimeout > 0 {
		timeout = min(timeout, q.MaxTimeout)
	}
	key := connKey{user: sess.User.String(), device: sess.Device, conn: req.req.ConnID}
	var base *connState
	if pos != "" {
		if base, err = s.sliding.acquire(key, pos, time.Now()); err != nil {
			return nil, err
		}
	}
	deadline := time.Now().Add(timeout)
	var wake *slidingWake // what the empty builds of this long-poll have read (sliding_wake.go)
	for {
		ch := s.n.channel(sess.User.String())
		resp, next, news, saw, err := s.slidingBuild(sess, req, base, wake)
		if err != nil {
			return nil, err
		}
		wait := time.Until(deadline)
		if base == nil || news || wait <= 0 {
			next.gen = s.sliding.nextGen()
			resp.Pos = next.token()
			s.sliding.store(key, next, base == nil, time.Now())
			return resp, nil
		}
		stopped, err := s.park(ctx, ch, wait)
		if err != nil {
			return nil, err
		}
		if stopped {
			deadline = time.Now() // answer what we have
		}
		// The build found nothing in (base.upto, next.upto]: the next one reads only what
		// arrives after it, yet answers as a build of the whole window would.
		wake = saw
	}
}

// slidingRoomRef is one room of the user's server-side list, or a subscribed room.
type slidingRoomRef struct {
	nid  uint64
	rec  *store.RoomRecord
	m    store.Membership
	bump uint64

	// selection: the combined room config of every list range and subscription matching it
	selected bool
	limit    int
	specs    []*stateSpec
	lists    []string
	sub      bool

	// filter attributes, loaded on demand
	attrs *roomAttrs
}

type roomAttrs struct {
	encrypted bool
	roomType  *string
	tags      map[string]bool
}

// slidingPass is one build.
type slidingPass struct {
	*pass
	sess    *accounts.Session
	req     *parsedSliding
	base    *connState
	next    *connState
	dm      map[string]bool
	spaces  map[string]map[string]bool
	refs    []*slidingRoomRef
	chosen  []*slidingRoomRef // selected(), once lists and subscriptions are applied
	byNID   map[uint64]*slidingRoomRef
	byID    map[string]*slidingRoomRef
	resp    *slidingResponse
	news    bool
	initial bool // no pos: a new connection

	wake *slidingWake // nil, or how far earlier empty builds of this long-poll read
	saw  *slidingWake // what this build reads, for the next one if it finds nothing
}

// slidingBuild builds one response from base (nil: a new connection). wake, from an earlier
// empty build of the same long-poll, lets it skip reading what that build already read; the
// returned slidingWake records this build's reads for the next wake-up.
func (s *Service) slidingBuild(sess *accounts.Session, req *parsedSliding, base *connState, wake *slidingWake) (*slidingResponse, *connState, bool, *slidingWake, error) {
	w := s.st.Stream().Watermark()
	sp := &slidingPass{
		wake:    wake,
		saw:     newSlidingWake(),
		pass:    &pass{s: s, user: sess.User.String(), device: sess.Device, upto: w, f: &filter.Filter{}, now: time.Now().UnixMilli()},
		sess:    sess,
		req:     req,
		base:    base,
		initial: base == nil,
		byNID:   map[uint64]*slidingRoomRef{},
		byID:    map[string]*slidingRoomRef{},
		resp:    &slidingResponse{TxnID: req.req.TxnID, Lists: map[string]slidingListResp{}, Rooms: map[string]*slidingRoom{}, Extensions: map[string]any{}},
	}
	if base == nil {
		base = &connState{rooms: map[uint64]roomSeen{}, subs: map[string]roomConfig{}, lists: map[string]int{}}
		sp.base = base
	}
	sp.next = &connState{upto: w, typing: s.typing.current(), rooms: base.rooms, subs: maps.Clone(base.subs), lists: map[string]int{}, ext: req.mergeExt(base.ext)}
	for _, r := range req.req.UnsubscribeRooms {
		delete(sp.next.subs, r)
	}
	maps.Copy(sp.next.subs, req.subs)
	for old := range sp.next.subs {
		// Bounded: older subscriptions make room (Element X resends its own every time).
		if len(sp.next.subs) <= slidingMaxSubscriptions {
			break
		}
		if _, ok := req.subs[old]; !ok {
			delete(sp.next.subs, old)
		}
	}
	var updates map[uint64]roomSeen
	err := s.st.View(func(txn *store.Txn) error {
		sp.txn = txn
		var err error
		if sp.ignored, err = ignore.Load(txn, sp.user); err != nil {
			return err
		}
		if err := sp.loadDM(); err != nil {
			return err
		}
		if err := sp.loadRooms(); err != nil {
			return err
		}
		if err := sp.selectLists(); err != nil {
			return err
		}
		if err := sp.selectSubscriptions(); err != nil {
			return err
		}
		if updates, err = sp.renderRooms(); err != nil {
			return err
		}
		if err := sp.extensions(); err != nil {
			return err
		}
		return sp.err // a rendering failure (clientEvents)
	})
	if err != nil {
		return nil, nil, false, nil, err
	}
	sp.saw.floor = w
	if len(updates) > 0 {
		sp.next.rooms = maps.Clone(base.rooms)
		maps.Copy(sp.next.rooms, updates)
	}
	for name, l := range sp.resp.Lists {
		sp.next.lists[name] = l.Count
		if old, ok := base.lists[name]; !ok || old != l.Count {
			sp.news = true
		}
	}
	return sp.resp, sp.next, sp.news || len(sp.resp.Rooms) > 0, sp.saw, nil
}

// loadDM reads m.direct: the rooms the user marked as direct chats.
func (sp *slidingPass) loadDM() error {
	sp.dm = map[string]bool{}
	rec, err := sp.txn.AccountData(sp.user, 0, "m.direct")
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	var direct map[string][]string
	if json.Unmarshal(rec.Content, &direct) != nil {
		return nil
	}
	for _, rs := range direct {
		for _, r := range rs {
			sp.dm[r] = true
		}
	}
	return nil
}

// loadRooms builds the server-side list: every room the user is joined to, invited to, knocked
// on, was removed from, or left after the connection had seen it; newest bump first.
func (sp *slidingPass) loadRooms() error {
	err := sp.txn.Memberships(sp.user, func(m store.Membership) (bool, error) {
		if m.Pos > sp.upto {
			return true, nil // committed after our watermark
		}
		if gone, err := sp.txn.Forgotten(sp.user, m.Room); err != nil || gone {
			return err == nil, err
		}
		if m.Membership == "invite" {
			if hide, err := sp.hidesInvite(m); err != nil || hide {
				return err == nil, err
			}
		}
		ref, err := sp.ref(m)
		if err != nil {
			return false, err
		}
		listed := true
		if m.Membership == "leave" {
			_, seen := sp.base.rooms[m.Room]
			listed = seen
			if !seen {
				ev, err := sp.txn.Event(m.Pos)
				if err != nil {
					return false, err
				}
				var l struct {
					Sender string `json:"sender"`
				}
				_ = json.Unmarshal(ev.PDU, &l)
				listed = l.Sender != sp.user // kicked: the user may not know yet
			}
		}
		if listed {
			sp.refs = append(sp.refs, ref)
		}
		return true, nil
	})
	if err != nil {
		return err
	}
	slices.SortFunc(sp.refs, func(a, b *slidingRoomRef) int {
		if c := cmp.Compare(b.bump, a.bump); c != 0 {
			return c
		}
		return cmp.Compare(b.nid, a.nid)
	})
	return nil
}

// ref loads one room of the user.
func (sp *slidingPass) ref(m store.Membership) (*slidingRoomRef, error) {
	if r := sp.byNID[m.Room]; r != nil {
		return r, nil
	}
	rec, err := sp.txn.Room(m.Room)
	if err != nil {
		return nil, err
	}
	r := &slidingRoomRef{nid: m.Room, rec: rec, m: m, bump: m.Pos}
	if m.Membership == "join" {
		if r.bump, err = sp.s.sliding.cache.bump(sp.txn, m.Room, rec.Latest, sp.upto, m.Pos); err != nil {
			return nil, err
		}
	}
	sp.byNID[m.Room] = r
	sp.byID[rec.ID] = r
	return r, nil
}

func (r *slidingRoomRef) choose(c roomConfig, list string) {
	r.selected = true
	r.limit = max(r.limit, c.limit)
	if c.state != nil && !slices.Contains(r.specs, c.state) {
		r.specs = append(r.specs, c.state)
	}
	if list != "" {
		r.lists = append(r.lists, list)
	}
}

func (sp *slidingPass) selectLists() error {
	for _, l := range sp.req.lists {
		var filtered []*slidingRoomRef
		for _, r := range sp.refs {
			ok, err := sp.matchFilters(r, l.filters)
			if err != nil {
				return err
			}
			if ok {
				filtered = append(filtered, r)
			}
		}
		sp.resp.Lists[l.name] = slidingListResp{Count: len(filtered)}
		if l.ranges == nil {
			for _, r := range filtered {
				r.choose(l.config, l.name)
			}
			continue
		}
		for _, rg := range l.ranges {
			for i := rg[0]; i <= rg[1] && i < len(filtered); i++ {
				if !slices.Contains(filtered[i].lists, l.name) {
					filtered[i].choose(l.config, l.name)
				}
			}
		}
	}
	return nil
}

// selectSubscriptions adds the subscribed rooms the user may see: any room with a membership
// record (joined, invited, knocked, left or banned) that the user did not forget.
func (sp *slidingPass) selectSubscriptions() error {
	for roomID, c := range sp.next.subs {
		r := sp.byID[roomID]
		if r == nil {
			nid, err := sp.txn.RoomNID(roomID)
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			m, err := sp.txn.GetMembership(sp.user, nid)
			if errors.Is(err, store.ErrNotFound) || (err == nil && (m.Membership == "" || m.Pos > sp.upto)) {
				continue
			}
			if err != nil {
				return err
			}
			if gone, err := sp.txn.Forgotten(sp.user, nid); err != nil || gone {
				if err != nil {
					return err
				}
				continue
			}
			if m.Membership == "invite" {
				if hide, err := sp.hidesInvite(m); err != nil || hide {
					if err != nil {
						return err
					}
					continue
				}
			}
			if r, err = sp.ref(m); err != nil {
				return err
			}
		}
		r.sub = true
		r.choose(c, "")
	}
	return nil
}

// selected lists the rooms to consider for the response, newest first.
func (sp *slidingPass) selected() []*slidingRoomRef {
	if sp.chosen != nil {
		return sp.chosen
	}
	out := []*slidingRoomRef{}
	for _, r := range sp.byNID {
		if r.selected {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b *slidingRoomRef) int {
		if c := cmp.Compare(b.bump, a.bump); c != 0 {
			return c
		}
		return cmp.Compare(b.nid, a.nid)
	})
	sp.chosen = out
	return out
}

func (sp *slidingPass) renderRooms() (map[uint64]roomSeen, error) {
	updates := map[uint64]roomSeen{}
	for _, r := range sp.selected() {
		room, seen, err := sp.renderRoom(r)
		if err != nil {
			return nil, err
		}
		if room != nil {
			sp.resp.Rooms[r.rec.ID] = room
		}
		if prev := sp.base.rooms[r.nid]; room != nil || seen != prev {
			updates[r.nid] = seen
		}
	}
	return updates, nil
}
