package sync

import (
	"bytes"
	"encoding/json"
	"hash/fnv"
	"slices"
	"strings"

	"github.com/hearth-home/hearth/matrix/merr"
)

// Limits of one Simplified Sliding Sync request (MSC4186 sets 100 lists and 100 subscriptions).
const (
	slidingMaxLists         = 100
	slidingMaxSubscriptions = 100
	slidingMaxTimelineLimit = 100
	slidingMaxRanges        = 16
	slidingMaxStateEntries  = 64
	slidingMaxNameLen       = 128
)

// slidingRequest is the body of a sliding sync request. Two generations of the wire format are
// accepted, because clients in the field speak the older one:
//
//   - what matrix-rust-sdk (Element X) and matrix-js-sdk send: "ranges", required_state as
//     [type, state_key] pairs with "$LAZY"/"$ME"/"*", filters.is_invite, pos and timeout in the
//     query string (Synapse's experimental implementation);
//   - the MSC's current text: "range", required_state as {include, exclude, lazy_members},
//     filters.is_invited, pos and timeout in the body.
type slidingRequest struct {
	ConnID            string                     `json:"conn_id"`
	TxnID             string                     `json:"txn_id"`
	Pos               string                     `json:"pos"`
	Timeout           *int64                     `json:"timeout"`
	Lists             map[string]*slidingListReq `json:"lists"`
	RoomSubscriptions map[string]*roomConfigReq  `json:"room_subscriptions"`
	UnsubscribeRooms  []string                   `json:"unsubscribe_rooms"` // matrix-js-sdk
	Extensions        map[string]json.RawMessage `json:"extensions"`
}

// roomConfigReq is the "room config" part of a list or a subscription.
type roomConfigReq struct {
	TimelineLimit *int64          `json:"timeline_limit"`
	RequiredState json.RawMessage `json:"required_state"`
}

type slidingListReq struct {
	roomConfigReq
	Ranges  [][]int64          `json:"ranges"`
	Range   []int64            `json:"range"`
	Filters *slidingFiltersReq `json:"filters"`
}

type slidingFiltersReq struct {
	IsDM         *bool     `json:"is_dm"`
	IsEncrypted  *bool     `json:"is_encrypted"`
	IsInvite     *bool     `json:"is_invite"`
	IsInvited    *bool     `json:"is_invited"`
	RoomTypes    []*string `json:"room_types"`
	NotRoomTypes []*string `json:"not_room_types"`
	Spaces       []string  `json:"spaces"`
	Tags         []string  `json:"tags"`
	NotTags      []string  `json:"not_tags"`
}

// roomConfig is a parsed room config: timeline limit and required state.
type roomConfig struct {
	limit int
	state *stateSpec
}

// slidingList is a parsed list.
type slidingList struct {
	name    string
	ranges  [][2]int // inclusive; nil means every room
	config  roomConfig
	filters *slidingFiltersReq
}

// stateSpec says which state events a room config asks for.
type stateSpec struct {
	all      bool                // every state event
	types    map[string]*typeSel // per event type
	anyType  typeSel             // state keys wanted for every event type
	lazy     bool                // lazy-loaded members
	excludes []stateEntry        // MSC shape only
	hash     uint64              // fingerprint of the request JSON
}

type typeSel struct {
	all  bool
	me   bool
	keys map[string]bool
}

type stateEntry struct {
	typ, key *string // nil matches everything
}

func (t *typeSel) match(key, user string) bool {
	return t.all || (t.me && key == user) || t.keys[key]
}

// match reports whether the spec asks for the state event (typ, key). Lazy members are not
// matched here: they depend on the timeline.
func (s *stateSpec) match(typ, key, user string) bool {
	if s == nil {
		return false
	}
	for _, e := range s.excludes {
		if (e.typ == nil || *e.typ == typ) && (e.key == nil || *e.key == key || (*e.key == "$ME" && key == user)) {
			return false
		}
	}
	if s.all || s.anyType.match(key, user) {
		return true
	}
	if t := s.types[typ]; t != nil {
		return t.match(key, user)
	}
	return false
}

// wildcard reports whether matching needs a walk over every state key (rather than lookups).
func (s *stateSpec) wildcard() bool {
	if s == nil {
		return false
	}
	if s.all || s.anyType.all || s.anyType.me || len(s.anyType.keys) > 0 {
		return true
	}
	for _, t := range s.types {
		if t.all {
			return true
		}
	}
	return false
}

// exact lists the (type, state_key) pairs the spec names exactly ($ME resolved).
func (s *stateSpec) exact(user string) [][2]string {
	if s == nil {
		return nil
	}
	var out [][2]string
	for typ, t := range s.types {
		if t.me {
			out = append(out, [2]string{typ, user})
		}
		for k := range t.keys {
			out = append(out, [2]string{typ, k})
		}
	}
	return out
}

// add records one entry; "*" is the wildcard for either part (the pair shape), and "$LAZY"
// with m.room.member asks for lazy members.
func (s *stateSpec) add(typ, key string) {
	if typ == "m.room.member" && key == "$LAZY" {
		s.lazy = true
		return
	}
	if typ == "*" && key == "*" {
		s.all = true
		return
	}
	sel := &s.anyType
	if typ != "*" {
		if s.types[typ] == nil {
			s.types[typ] = &typeSel{}
		}
		sel = s.types[typ]
	}
	switch key {
	case "*":
		sel.all = true
	case "$ME":
		sel.me = true
	case "$LAZY":
		// $LAZY only means something for members; elsewhere it matches nothing.
	default:
		if sel.keys == nil {
			sel.keys = map[string]bool{}
		}
		sel.keys[key] = true
	}
}

// parseStateSpec reads required_state in either shape. Identical JSON within one request
// yields one shared spec (Element X sends the same list for every subscription).
func parseStateSpec(raw json.RawMessage, intern map[string]*stateSpec) (*stateSpec, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		raw = json.RawMessage("[]")
	}
	if s, ok := intern[string(raw)]; ok {
		return s, nil
	}
	h := fnv.New64a()
	h.Write(raw)
	s := &stateSpec{types: map[string]*typeSel{}, hash: h.Sum64()}
	switch raw[0] {
	case '[':
		var pairs [][]string
		if err := json.Unmarshal(raw, &pairs); err != nil {
			return nil, merr.BadJSON("required_state must be a list of [type, state_key] pairs")
		}
		if len(pairs) > slidingMaxStateEntries {
			return nil, merr.InvalidParam("required_state has more than %d entries", slidingMaxStateEntries)
		}
		for _, p := range pairs {
			if len(p) != 2 {
				return nil, merr.BadJSON("required_state entries must be [type, state_key] pairs")
			}
			s.add(p[0], p[1])
		}
	case '{':
		var obj struct {
			Include []struct {
				Type     *string `json:"type"`
				StateKey *string `json:"state_key"`
			} `json:"include"`
			Exclude []struct {
				Type     *string `json:"type"`
				StateKey *string `json:"state_key"`
			} `json:"exclude"`
			LazyMembers bool `json:"lazy_members"`
		}
		if err := json.Unmarshal(raw, &obj); err != nil {
			return nil, merr.BadJSON("required_state: %v", err)
		}
		if len(obj.Include)+len(obj.Exclude) > slidingMaxStateEntries {
			return nil, merr.InvalidParam("required_state has more than %d entries", slidingMaxStateEntries)
		}
		for _, e := range obj.Include {
			typ, key := "*", "*"
			if e.Type != nil {
				typ = *e.Type
			}
			if e.StateKey != nil {
				key = *e.StateKey
			}
			s.add(typ, key)
		}
		for _, e := range obj.Exclude {
			s.excludes = append(s.excludes, stateEntry{typ: e.Type, key: e.StateKey})
		}
		s.lazy = s.lazy || obj.LazyMembers
	default:
		return nil, merr.BadJSON("required_state must be a list or an object")
	}
	intern[string(raw)] = s
	return s, nil
}

func parseRoomConfig(c *roomConfigReq, intern map[string]*stateSpec) (roomConfig, error) {
	var out roomConfig
	if c.TimelineLimit != nil {
		if *c.TimelineLimit < 0 {
			return out, merr.InvalidParam("timeline_limit must not be negative")
		}
		out.limit = int(min(*c.TimelineLimit, slidingMaxTimelineLimit))
	}
	st, err := parseStateSpec(c.RequiredState, intern)
	if err != nil {
		return out, err
	}
	out.state = st
	return out, nil
}

// parsedSliding is a validated request.
type parsedSliding struct {
	req   slidingRequest
	lists []*slidingList // sorted by name
	subs  map[string]roomConfig
	ext   extConfig
	// extSet says which extensions the request named (the others keep the connection's config).
	extSet map[string]bool
}

func parseSlidingRequest(body []byte) (*parsedSliding, error) {
	p := &parsedSliding{subs: map[string]roomConfig{}, extSet: map[string]bool{}}
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	}
	if !json.Valid(body) {
		return nil, merr.NotJSON("request body is not JSON")
	}
	if err := json.Unmarshal(body, &p.req); err != nil {
		return nil, merr.BadJSON("invalid sliding sync request: %v", err)
	}
	if len(p.req.ConnID) > slidingMaxNameLen {
		return nil, merr.InvalidParam("conn_id is too long")
	}
	if len(p.req.Lists) > slidingMaxLists {
		return nil, merr.InvalidParam("at most %d lists are allowed", slidingMaxLists)
	}
	if len(p.req.RoomSubscriptions) > slidingMaxSubscriptions {
		return nil, merr.InvalidParam("at most %d room subscriptions are allowed", slidingMaxSubscriptions)
	}
	intern := map[string]*stateSpec{}
	for name, l := range p.req.Lists {
		if l == nil {
			continue
		}
		if name == "" || len(name) > slidingMaxNameLen {
			return nil, merr.InvalidParam("list names must have 1 to %d characters", slidingMaxNameLen)
		}
		cfg, err := parseRoomConfig(&l.roomConfigReq, intern)
		if err != nil {
			return nil, err
		}
		sl := &slidingList{name: name, config: cfg, filters: l.Filters}
		ranges := l.Ranges
		if l.Range != nil {
			ranges = append(ranges, l.Range)
		}
		if len(ranges) > slidingMaxRanges {
			return nil, merr.InvalidParam("list %q has more than %d ranges", name, slidingMaxRanges)
		}
		for _, r := range ranges {
			if len(r) != 2 || r[0] < 0 || r[1] < r[0] {
				return nil, merr.InvalidParam("list %q: a range is [start, end] with 0 <= start <= end", name)
			}
			sl.ranges = append(sl.ranges, [2]int{int(min(r[0], 1<<30)), int(min(r[1], 1<<30))})
		}
		if l.Ranges != nil && len(sl.ranges) == 0 {
			sl.ranges = [][2]int{} // "ranges": [] selects no room, only the count
		}
		p.lists = append(p.lists, sl)
	}
	slices.SortFunc(p.lists, func(a, b *slidingList) int { return strings.Compare(a.name, b.name) })
	for roomID, c := range p.req.RoomSubscriptions {
		if c == nil || !strings.HasPrefix(roomID, "!") {
			continue // the MSC: rooms that cannot be seen are ignored
		}
		cfg, err := parseRoomConfig(c, intern)
		if err != nil {
			return nil, err
		}
		p.subs[roomID] = cfg
	}
	if err := p.parseExtensions(); err != nil {
		return nil, err
	}
	return p, nil
}

// extToggle is the common part of the account_data, receipts and typing extensions.
type extToggle struct {
	Enabled *bool    `json:"enabled"`
	Lists   []string `json:"lists"`
	Rooms   []string `json:"rooms"`
}

type extToDevice struct {
	Enabled *bool  `json:"enabled"`
	Since   string `json:"since"`
	Limit   int    `json:"limit"`
}

// extConfig is the connection's extension configuration (sticky: a request that leaves an
// extension out keeps its previous setting).
type extConfig struct {
	toDevice    bool
	e2ee        bool
	accountData *extScope
	receipts    *extScope
	typing      *extScope
	threadSubs  *extThreadSubs // sliding_threadsubs.go
}

// extScope limits an extension to the rooms of some lists and some subscriptions; nil fields
// mean "all".
type extScope struct {
	lists []string
	rooms []string
}

func (p *parsedSliding) parseExtensions() error {
	scope := func(name string) (*extScope, bool, error) {
		raw, ok := p.req.Extensions[name]
		if !ok {
			return nil, false, nil
		}
		var t extToggle
		if err := json.Unmarshal(raw, &t); err != nil {
			return nil, false, merr.BadJSON("extensions.%s: %v", name, err)
		}
		p.extSet[name] = true
		if t.Enabled == nil || !*t.Enabled {
			return nil, true, nil
		}
		return &extScope{lists: t.Lists, rooms: t.Rooms}, true, nil
	}
	var err error
	if p.ext.accountData, _, err = scope("account_data"); err != nil {
		return err
	}
	if p.ext.receipts, _, err = scope("receipts"); err != nil {
		return err
	}
	if p.ext.typing, _, err = scope("typing"); err != nil {
		return err
	}
	if raw, ok := p.req.Extensions["to_device"]; ok {
		var td extToDevice
		if err := json.Unmarshal(raw, &td); err != nil {
			return merr.BadJSON("extensions.to_device: %v", err)
		}
		p.extSet["to_device"] = true
		p.ext.toDevice = td.Enabled != nil && *td.Enabled
	}
	if err := p.parseThreadSubs(); err != nil { // sliding_threadsubs.go
		return err
	}
	if raw, ok := p.req.Extensions["e2ee"]; ok {
		var t extToggle
		if err := json.Unmarshal(raw, &t); err != nil {
			return merr.BadJSON("extensions.e2ee: %v", err)
		}
		p.extSet["e2ee"] = true
		p.ext.e2ee = t.Enabled != nil && *t.Enabled
	}
	return nil
}

// toDeviceSince is the to_device extension's since token ("" when absent).
func (p *parsedSliding) toDeviceSince() string {
	raw, ok := p.req.Extensions["to_device"]
	if !ok {
		return ""
	}
	var td extToDevice
	_ = json.Unmarshal(raw, &td)
	return td.Since
}

// merge applies the request's extension settings over the connection's previous ones.
func (p *parsedSliding) mergeExt(prev extConfig) extConfig {
	out := prev
	if p.extSet["to_device"] {
		out.toDevice = p.ext.toDevice
	}
	if p.extSet["e2ee"] {
		out.e2ee = p.ext.e2ee
	}
	if p.extSet["account_data"] {
		out.accountData = p.ext.accountData
	}
	if p.extSet["receipts"] {
		out.receipts = p.ext.receipts
	}
	if p.extSet["typing"] {
		out.typing = p.ext.typing
	}
	if p.extSet[threadSubsExt] {
		out.threadSubs = p.ext.threadSubs
	}
	return out
}
