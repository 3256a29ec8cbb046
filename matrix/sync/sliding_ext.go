package sync

import (
	"slices"
	"strconv"
	"strings"
)

// extensions fills the enabled extensions. account_data, receipts and typing cover the rooms
// the extension's lists and rooms name ("*" or absent: all lists, all subscriptions) among the
// rooms this request selected; to_device and e2ee come from the registered contributors (the
// E2EE server side), called as for /v3/sync with the window the extension's token names.
func (sp *slidingPass) extensions() error {
	ext := sp.next.ext
	if ext.accountData != nil {
		if err := sp.extAccountData(sp.scope(ext.accountData)); err != nil {
			return err
		}
	}
	if ext.receipts != nil {
		if err := sp.extReceipts(sp.scope(ext.receipts)); err != nil {
			return err
		}
	}
	if ext.typing != nil {
		sp.extTyping(sp.scope(ext.typing))
	}
	if ext.threadSubs != nil {
		if err := sp.extThreadSubs(ext.threadSubs); err != nil { // sliding_threadsubs.go
			return err
		}
	}
	if ext.toDevice || ext.e2ee {
		return sp.extE2EE(ext)
	}
	return nil
}

// scope lists the selected rooms an extension covers.
func (sp *slidingPass) scope(sc *extScope) []*slidingRoomRef {
	lists, subs := sc.lists, sc.rooms
	if lists == nil {
		lists = []string{"*"}
	}
	if subs == nil {
		subs = []string{"*"}
	}
	var out []*slidingRoomRef
	for _, r := range sp.selected() {
		in := false
		for _, l := range lists {
			in = in || (l == "*" && len(r.lists) > 0) || slices.Contains(r.lists, l)
		}
		for _, id := range subs {
			in = in || (r.sub && (id == "*" || id == r.rec.ID))
		}
		if in {
			out = append(out, r)
		}
	}
	return out
}

// newToConn reports whether the connection has never sent the room before this response.
func (sp *slidingPass) newToConn(nid uint64) bool {
	if sp.initial {
		return true
	}
	_, ok := sp.base.rooms[nid]
	return !ok
}

func (sp *slidingPass) extAccountData(scope []*slidingRoomRef) error {
	since := sp.base.upto
	if sp.initial {
		since = 0
	}
	relevant := map[uint64]*slidingRoomRef{}
	fresh := map[uint64]bool{}
	for _, r := range scope {
		relevant[r.nid] = r
		if sp.newToConn(r.nid) && since > 0 {
			fresh[r.nid] = true
		}
	}
	global := []any{}
	perRoom := map[string][]any{}
	add := func(room uint64, typ string) {
		rec, err := sp.txn.AccountData(sp.user, room, typ)
		if err != nil {
			return
		}
		ev := accountDataEvent{Type: typ, Content: rec.Content}
		if room == 0 {
			global = append(global, ev)
			return
		}
		id := relevant[room].rec.ID
		perRoom[id] = append(perRoom[id], ev)
	}
	changes, err := sp.txn.AccountDataSince(sp.user, sp.accountDataSince(since, scope), sp.upto) // sliding_wake.go
	if err != nil {
		return err
	}
	for _, c := range changes {
		if c.Room == 0 || (relevant[c.Room] != nil && !fresh[c.Room]) {
			add(c.Room, c.Type)
		}
	}
	if len(fresh) > 0 {
		// Rooms new to the connection get all their account data (tags, read markers).
		all, err := sp.txn.AccountDataSince(sp.user, 0, sp.upto)
		if err != nil {
			return err
		}
		for _, c := range all {
			if fresh[c.Room] {
				add(c.Room, c.Type)
			}
		}
	}
	if len(global) == 0 && len(perRoom) == 0 {
		return nil
	}
	sp.news = true
	sp.resp.Extensions["account_data"] = map[string]any{"global": global, "rooms": perRoom}
	return nil
}

func (sp *slidingPass) extReceipts(scope []*slidingRoomRef) error {
	out := map[string]any{}
	for _, r := range scope {
		if r.m.Membership != "join" {
			continue
		}
		lower := sp.base.upto
		if sp.newToConn(r.nid) {
			lower = 0
		}
		ev, err := sp.receipts(r.nid, sp.receiptsSince(r.nid, lower)) // sliding_wake.go
		if err != nil {
			return err
		}
		if ev != nil {
			out[r.rec.ID] = ev
		}
	}
	if len(out) > 0 {
		sp.news = true
		sp.resp.Extensions["receipts"] = map[string]any{"rooms": out}
	}
	return nil
}

func (sp *slidingPass) extTyping(scope []*slidingRoomRef) {
	out := map[string]any{}
	for _, r := range scope {
		if r.m.Membership != "join" {
			continue
		}
		if users, ok := sp.s.typing.since(r.nid, sp.base.typing, sp.newToConn(r.nid)); ok {
			out[r.rec.ID] = map[string]any{"type": "m.typing", "content": map[string]any{"user_ids": users}}
		}
	}
	if len(out) > 0 {
		sp.news = true
		sp.resp.Extensions["typing"] = map[string]any{"rooms": out}
	}
}

// parseStreamToken reads a to-device since token: a position, or a /v3/sync token.
func parseStreamToken(s string) (uint64, bool) {
	if s == "" {
		return 0, false
	}
	if strings.HasPrefix(s, "s") {
		t, err := parseToken(s)
		return t.pos, err == nil
	}
	n, err := strconv.ParseUint(s, 10, 64)
	return n, err == nil
}

// extE2EE runs the contributors. The to_device window starts at the extension's since token
// (its next_batch is the response's stream position; that call acknowledges what the since
// token covers); the e2ee window (device lists) starts where the connection's previous response
// ended, and is "initial" for a new connection.
//
// One call serves both when to_device is on: device-list changes over a window that starts
// earlier are a superset, which clients accept. Otherwise the e2ee window gets a call of its
// own with NoAck, since its start says nothing about which to-device messages arrived.
func (sp *slidingPass) extE2EE(ext extConfig) error {
	e2eeWin := Window{Since: sp.base.upto, Upto: sp.upto, Initial: sp.initial, NoAck: true}
	if sp.initial {
		e2eeWin.Since = 0
	}
	e2eeWin.Since = min(e2eeWin.Since, sp.upto)
	var forE2EE *Response
	if ext.toDevice {
		since, ok := parseStreamToken(sp.req.toDeviceSince())
		win := Window{Since: min(since, sp.upto), Upto: sp.upto, Initial: !ok}
		reuse := !(ok && win.Since > e2eeWin.Since && !e2eeWin.Initial)
		if ok {
			win.Since = sp.streamSince(win.Since) // sliding_wake.go
		}
		r, err := sp.contribute(win)
		if err != nil {
			return err
		}
		if len(r.ToDevice.Events) > 0 {
			sp.news = true
		}
		sp.resp.Extensions["to_device"] = map[string]any{"next_batch": strconv.FormatUint(sp.upto, 10), "events": r.ToDevice.Events}
		if reuse {
			forE2EE = r
		}
	}
	if !ext.e2ee {
		return nil
	}
	if forE2EE == nil {
		var err error
		if !e2eeWin.Initial {
			e2eeWin.Since = sp.streamSince(e2eeWin.Since) // sliding_wake.go
		}
		if forE2EE, err = sp.contribute(e2eeWin); err != nil {
			return err
		}
	}
	e := map[string]any{"device_one_time_keys_count": forE2EE.OTKCount}
	if len(forE2EE.DeviceLists.Changed) > 0 || len(forE2EE.DeviceLists.Left) > 0 {
		sp.news = true
		e["device_lists"] = forE2EE.DeviceLists
	}
	if forE2EE.FallbackKeys != nil {
		e["device_unused_fallback_key_types"] = forE2EE.FallbackKeys
	}
	sp.resp.Extensions["e2ee"] = e
	return nil
}

// contribute runs every registered contributor on a scratch /v3/sync response.
func (sp *slidingPass) contribute(w Window) (*Response, error) {
	r := newResponse()
	for _, c := range sp.s.contributors {
		if err := c.Contribute(sp.txn, sp.sess, w, r); err != nil {
			return nil, err
		}
	}
	return r, nil
}
