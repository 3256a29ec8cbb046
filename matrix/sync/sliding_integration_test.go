package sync_test

// Simplified Sliding Sync (MSC4186) against a real server, replaying the requests Element X
// sends at start-up. The fixtures are the request bodies matrix-rust-sdk builds (its
// RoomListService, EncryptionSyncService and NotificationClient, as pinned by their own
// integration tests): the client sends pos and timeout in the query string, lists with
// "ranges", required_state as [type, state_key] pairs, and the full request every time.

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/appliance/testserver"
)

const slidingPath = "/_matrix/client/unstable/org.matrix.simplified_msc3575/sync"

// elementXRequiredState is RoomListService's DEFAULT_REQUIRED_STATE.
const elementXRequiredState = `[
	["m.room.name", ""],
	["m.room.encryption", ""],
	["m.room.member", "$LAZY"],
	["m.room.member", "$ME"],
	["m.room.topic", ""],
	["m.room.avatar", ""],
	["m.room.canonical_alias", ""],
	["m.room.power_levels", ""],
	["org.matrix.msc3401.call.member", "*"],
	["m.room.join_rules", ""],
	["m.room.tombstone", ""],
	["m.room.create", ""],
	["m.room.history_visibility", ""],
	["io.element.functional_members", ""],
	["m.space.parent", "*"],
	["m.space.child", "*"],
	["org.matrix.msc3672.beacon_info", "*"]
]`

// elementXRoomList is RoomListService's request: the "all_rooms" list, first in selective mode
// with [[0,19]] and timeout=0, then growing by 100 ([[0,99]]) with timeout=0 until the list is
// fully loaded, then long-polling with timeout=30000. %s is the ranges.
const elementXRoomList = `{
	"conn_id": "room-list",
	"lists": {
		"all_rooms": {
			"ranges": %s,
			"required_state": ` + elementXRequiredState + `,
			"filters": {},
			"timeline_limit": 1
		}
	},
	%s
	"extensions": {
		"account_data": {"enabled": true},
		"receipts": {"enabled": true, "rooms": ["*"]},
		"typing": {"enabled": true}
	}
}`

// elementXSubscription is RoomListService::subscribe_to_rooms: the default required state plus
// m.room.pinned_events, with timeline_limit 20 (the room the user opens). %s is the room ID.
const elementXSubscription = `"room_subscriptions": {
	%q: {
		"required_state": [
			["m.room.name", ""], ["m.room.encryption", ""], ["m.room.member", "$LAZY"],
			["m.room.member", "$ME"], ["m.room.topic", ""], ["m.room.avatar", ""],
			["m.room.canonical_alias", ""], ["m.room.power_levels", ""],
			["org.matrix.msc3401.call.member", "*"], ["m.room.join_rules", ""],
			["m.room.tombstone", ""], ["m.room.create", ""], ["m.room.history_visibility", ""],
			["io.element.functional_members", ""], ["m.space.parent", "*"], ["m.space.child", "*"],
			["org.matrix.msc3672.beacon_info", "*"], ["m.room.pinned_events", ""]
		],
		"timeline_limit": 20
	}
},`

// elementXEncryption is EncryptionSyncService's request (conn "encryption"): no lists, only the
// to_device and e2ee extensions; to_device.since is the previous next_batch. %s is the since.
const elementXEncryption = `{
	"conn_id": "encryption",
	"extensions": {
		"to_device": {"enabled": true %s},
		"e2ee": {"enabled": true}
	}
}`

// elementXNotifications is NotificationClient's request (conn "notifications"): an "invites"
// list plus a subscription to the room of the push notification. %s is that room.
const elementXNotifications = `{
	"conn_id": "notifications",
	"lists": {
		"invites": {
			"ranges": [[0, 16]],
			"required_state": [
				["m.room.encryption", ""], ["m.room.member", "$LAZY"], ["m.room.member", "$ME"],
				["m.room.canonical_alias", ""], ["m.room.name", ""], ["m.room.avatar", ""],
				["m.room.power_levels", ""], ["m.room.join_rules", ""],
				["org.matrix.msc3401.call.member", "*"], ["m.room.create", ""],
				["io.element.functional_members", ""]
			],
			"filters": {"is_invite": true},
			"timeline_limit": 8
		}
	},
	"room_subscriptions": {
		%q: {
			"required_state": [
				["m.room.encryption", ""], ["m.room.member", "$LAZY"], ["m.room.member", "$ME"],
				["m.room.canonical_alias", ""], ["m.room.name", ""], ["m.room.avatar", ""],
				["m.room.power_levels", ""], ["m.room.join_rules", ""],
				["org.matrix.msc3401.call.member", "*"], ["m.room.create", ""],
				["io.element.functional_members", ""]
			],
			"timeline_limit": 16
		}
	},
	"extensions": {"account_data": {"enabled": true}}
}`

type ssEvent struct {
	Type     string         `json:"type"`
	StateKey *string        `json:"state_key"`
	Sender   string         `json:"sender"`
	EventID  string         `json:"event_id"`
	Content  map[string]any `json:"content"`
}

type ssRoom struct {
	Name          *string   `json:"name"`
	Initial       bool      `json:"initial"`
	BumpStamp     uint64    `json:"bump_stamp"`
	Timeline      []ssEvent `json:"timeline"`
	RequiredState []ssEvent `json:"required_state"`
	NumLive       *int      `json:"num_live"`
	Limited       bool      `json:"limited"`
	PrevBatch     string    `json:"prev_batch"`
	JoinedCount   *int      `json:"joined_count"`
	InvitedCount  *int      `json:"invited_count"`
	Heroes        []struct {
		UserID string `json:"user_id"`
	} `json:"heroes"`
	InviteState []ssEvent `json:"invite_state"`
	Expanded    bool      `json:"expanded_timeline"`
	IsDM        *bool     `json:"is_dm"`
}

type ssResponse struct {
	Pos   string `json:"pos"`
	TxnID string `json:"txn_id"`
	Lists map[string]struct {
		Count int `json:"count"`
	} `json:"lists"`
	Rooms      map[string]ssRoom          `json:"rooms"`
	Extensions map[string]json.RawMessage `json:"extensions"`
	Errcode    string                     `json:"errcode"`
}

// slide sends one sliding sync request the way matrix-rust-sdk does (pos and timeout in the
// query string) and returns the status and decoded body.
func slide(t *testing.T, srv *testserver.Server, token, pos string, timeoutMS int, body string) (int, ssResponse) {
	t.Helper()
	q := url.Values{}
	if pos != "" {
		q.Set("pos", pos)
	}
	if timeoutMS >= 0 {
		q.Set("timeout", fmt.Sprint(timeoutMS))
	}
	req, _ := http.NewRequestWithContext(ctx(t), http.MethodPost, srv.URL+slidingPath+"?"+q.Encode(), strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("sliding sync: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out ssResponse
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("sliding sync: decode %q: %v", b, err)
	}
	if resp.StatusCode == http.StatusOK && out.Pos == "" {
		t.Fatalf("sliding sync response without pos: %s", b)
	}
	return resp.StatusCode, out
}

func mustSlide(t *testing.T, srv *testserver.Server, token, pos string, timeoutMS int, body string) ssResponse {
	t.Helper()
	code, r := slide(t, srv, token, pos, timeoutMS, body)
	if code != http.StatusOK {
		t.Fatalf("sliding sync: HTTP %d %s", code, r.Errcode)
	}
	return r
}

func roomList(ranges string, extra string) string {
	return fmt.Sprintf(elementXRoomList, ranges, extra)
}

func bodies(evs []ssEvent) []string {
	var out []string
	for _, e := range evs {
		if e.Type == "m.room.message" {
			b, _ := e.Content["body"].(string)
			out = append(out, b)
		}
	}
	return out
}

func hasState(evs []ssEvent, typ, key string) bool {
	for _, e := range evs {
		if e.Type == typ && e.StateKey != nil && *e.StateKey == key {
			return true
		}
	}
	return false
}

// byBump lists the response's rooms newest first, as Element X's recency sorter does.
func byBump(r ssResponse) []string {
	ids := make([]string, 0, len(r.Rooms))
	for id := range r.Rooms {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b string) int { return int(r.Rooms[b].BumpStamp) - int(r.Rooms[a].BumpStamp) })
	return ids
}

func send(t *testing.T, cli *mautrix.Client, room id.RoomID, body string) id.EventID {
	t.Helper()
	r, err := cli.SendText(ctx(t), room, body)
	if err != nil {
		t.Fatalf("send %q: %v", body, err)
	}
	return r.EventID
}

// slidingFamily is alice with a DM with bob and three named rooms, "A" then "B" then "C" last
// active; the DM is the oldest.
func slidingFamily(t *testing.T) (srv *testserver.Server, alice, bob *mautrix.Client, dm id.RoomID, named []id.RoomID) {
	srv = testserver.Start(t)
	alice = srv.Register(t, "alice", false)
	bob = srv.Register(t, "bob", false)
	r, err := alice.CreateRoom(ctx(t), &mautrix.ReqCreateRoom{Preset: "trusted_private_chat", IsDirect: true, Invite: []id.UserID{bob.UserID}})
	if err != nil {
		t.Fatal(err)
	}
	dm = r.RoomID
	if _, err := bob.JoinRoomByID(ctx(t), dm); err != nil {
		t.Fatal(err)
	}
	if err := alice.SetAccountData(ctx(t), "m.direct", map[string][]id.RoomID{bob.UserID.String(): {dm}}); err != nil {
		t.Fatal(err)
	}
	send(t, bob, dm, "hi alice")
	for _, name := range []string{"A", "B", "C"} {
		r, err := alice.CreateRoom(ctx(t), &mautrix.ReqCreateRoom{Preset: "private_chat", Name: "Room " + name})
		if err != nil {
			t.Fatal(err)
		}
		named = append(named, r.RoomID)
	}
	for i, room := range named {
		send(t, alice, room, fmt.Sprintf("first in %c", 'A'+i))
		send(t, alice, room, fmt.Sprintf("last in %c", 'A'+i))
	}
	return srv, alice, bob, dm, named
}

func TestSlidingSyncElementXRoomList(t *testing.T) {
	srv, alice, bob, dm, named := slidingFamily(t)
	roomA, roomB, roomC := named[0], named[1], named[2]

	// 1. RoomListService, state Init -> SettingUp: no pos, timeout=0, ranges [[0,19]].
	first := mustSlide(t, srv, alice.AccessToken, "", 0, roomList(`[[0, 19]]`, ""))
	if got := first.Lists["all_rooms"].Count; got != 4 {
		t.Fatalf("all_rooms count = %d, want 4", got)
	}
	if len(first.Rooms) != 4 {
		t.Fatalf("first response has %d rooms, want 4", len(first.Rooms))
	}
	want := []string{roomC.String(), roomB.String(), roomA.String(), dm.String()}
	if got := byBump(first); !slices.Equal(got, want) {
		t.Fatalf("rooms by bump_stamp = %v, want %v (most recent first)", got, want)
	}
	for i, room := range named {
		r := first.Rooms[room.String()]
		if !r.Initial {
			t.Errorf("room %c: initial not set", 'A'+i)
		}
		if r.Name == nil || *r.Name != fmt.Sprintf("Room %c", 'A'+i) {
			t.Errorf("room %c: name = %v", 'A'+i, r.Name)
		}
		// timeline_limit 1: the last message only, with a gap before it.
		if got := bodies(r.Timeline); len(r.Timeline) != 1 || len(got) != 1 || got[0] != fmt.Sprintf("last in %c", 'A'+i) {
			t.Errorf("room %c: timeline = %v, want the last message only", 'A'+i, got)
		}
		if !r.Limited || r.PrevBatch == "" {
			t.Errorf("room %c: limited=%v prev_batch=%q, want a gap and a token", 'A'+i, r.Limited, r.PrevBatch)
		}
		if r.NumLive == nil || *r.NumLive != 0 {
			t.Errorf("room %c: num_live = %v, want 0 on a new connection", 'A'+i, r.NumLive)
		}
		if r.JoinedCount == nil || *r.JoinedCount != 1 {
			t.Errorf("room %c: joined_count = %v, want 1", 'A'+i, r.JoinedCount)
		}
		for _, st := range [][2]string{{"m.room.create", ""}, {"m.room.name", ""}, {"m.room.power_levels", ""}, {"m.room.join_rules", ""}, {"m.room.history_visibility", ""}, {"m.room.member", alice.UserID.String()}} {
			if !hasState(r.RequiredState, st[0], st[1]) {
				t.Errorf("room %c: required_state lacks %v", 'A'+i, st)
			}
		}
		if hasState(r.RequiredState, "m.room.guest_access", "") {
			t.Errorf("room %c: required_state has m.room.guest_access, which was not asked for", 'A'+i)
		}
	}
	d := first.Rooms[dm.String()]
	if d.Name != nil {
		t.Errorf("DM has name %q, want none (clients name it from the heroes)", *d.Name)
	}
	if len(d.Heroes) != 1 || d.Heroes[0].UserID != bob.UserID.String() {
		t.Errorf("DM heroes = %+v, want bob", d.Heroes)
	}
	if d.IsDM == nil || !*d.IsDM {
		t.Errorf("DM is_dm = %v, want true (m.direct)", d.IsDM)
	}
	if d.JoinedCount == nil || *d.JoinedCount != 2 {
		t.Errorf("DM joined_count = %v, want 2", d.JoinedCount)
	}
	// $LAZY: the sender of the timeline event (bob) has his member event; $ME: alice's.
	if !hasState(d.RequiredState, "m.room.member", bob.UserID.String()) || !hasState(d.RequiredState, "m.room.member", alice.UserID.String()) {
		t.Errorf("DM required_state lacks the lazy member (bob) or $ME: %+v", d.RequiredState)
	}
	var ad struct {
		Global []struct {
			Type string `json:"type"`
		} `json:"global"`
	}
	if err := json.Unmarshal(first.Extensions["account_data"], &ad); err != nil || !slices.ContainsFunc(ad.Global, func(e struct {
		Type string `json:"type"`
	}) bool {
		return e.Type == "m.direct"
	}) {
		t.Errorf("account_data extension lacks m.direct: %s (%v)", first.Extensions["account_data"], err)
	}

	// 2. SettingUp -> Running: growing mode, ranges [[0,99]], timeout=0. Nothing new.
	second := mustSlide(t, srv, alice.AccessToken, first.Pos, 0, roomList(`[[0, 99]]`, ""))
	if len(second.Rooms) != 0 || second.Lists["all_rooms"].Count != 4 {
		t.Fatalf("second response: %d rooms, count %d; want no rooms, count 4", len(second.Rooms), second.Lists["all_rooms"].Count)
	}
	// A retried request (same pos, the response got lost) answers again.
	if again := mustSlide(t, srv, alice.AccessToken, first.Pos, 0, roomList(`[[0, 99]]`, "")); again.Pos == "" {
		t.Fatal("retry with the same pos failed")
	}

	// 3. Running, fully loaded: long-poll with timeout=30000. A message in the oldest named
	// room wakes it, and that room alone comes down with the new event.
	type result struct {
		r   ssResponse
		at  time.Time
		err string
	}
	done := make(chan result, 1)
	go func() {
		code, r := slide(t, srv, alice.AccessToken, second.Pos, 30000, roomList(`[[0, 3]]`, ""))
		res := result{r: r, at: time.Now()}
		if code != http.StatusOK {
			res.err = fmt.Sprintf("HTTP %d %s", code, r.Errcode)
		}
		done <- res
	}()
	time.Sleep(300 * time.Millisecond)
	sentAt := time.Now()
	newEvent := send(t, bob, dm, "are you there?")
	var third ssResponse
	select {
	case res := <-done:
		if res.err != "" {
			t.Fatal(res.err)
		}
		if res.at.Before(sentAt) {
			t.Fatalf("long-poll returned before the message was sent: %+v", res.r)
		}
		third = res.r
	case <-time.After(15 * time.Second):
		t.Fatal("long-poll was not woken by a new message")
	}
	if len(third.Rooms) != 1 {
		t.Fatalf("woken response has rooms %v, want only the DM", byBump(third))
	}
	r := third.Rooms[dm.String()]
	if r.Initial || len(r.Timeline) != 1 || r.Timeline[0].EventID != newEvent.String() {
		t.Fatalf("DM update: initial=%v timeline=%+v, want the new event only", r.Initial, r.Timeline)
	}
	if r.NumLive == nil || *r.NumLive != 1 {
		t.Errorf("DM num_live = %v, want 1", r.NumLive)
	}
	if r.BumpStamp <= first.Rooms[roomC.String()].BumpStamp {
		t.Errorf("DM bump_stamp %d not above room C's %d after a new message", r.BumpStamp, first.Rooms[roomC.String()].BumpStamp)
	}
	// Unchanged fields are not resent; the sender's member event is ($LAZY: members of the
	// timeline's senders come with the timeline).
	if r.Name != nil || r.JoinedCount != nil || len(r.RequiredState) != 1 || !hasState(r.RequiredState, "m.room.member", bob.UserID.String()) {
		t.Errorf("DM update: name=%v joined_count=%v required_state=%+v, want only bob's member event", r.Name, r.JoinedCount, r.RequiredState)
	}

	// The server list is in recency order: a new connection asking for the top room only
	// gets the DM now.
	top := mustSlide(t, srv, alice.AccessToken, "", 0, strings.Replace(roomList(`[[0, 0]]`, ""), `"room-list"`, `"top"`, 1))
	if len(top.Rooms) != 1 || top.Lists["all_rooms"].Count != 4 {
		t.Fatalf("top-1 list: rooms %v count %d", byBump(top), top.Lists["all_rooms"].Count)
	}
	if _, ok := top.Rooms[dm.String()]; !ok {
		t.Fatalf("top-1 list is %v, want the DM (newest message)", byBump(top))
	}

	// 4. The user opens room B: a subscription with timeline_limit 20. The room comes back at
	// once with its history (expanded timeline) and the larger required state.
	sub := mustSlide(t, srv, alice.AccessToken, third.Pos, 30000, roomList(`[[0, 3]]`, fmt.Sprintf(elementXSubscription, roomB)))
	rb, ok := sub.Rooms[roomB.String()]
	if !ok {
		t.Fatalf("subscribed room missing: %v", byBump(sub))
	}
	if !rb.Expanded || rb.Limited {
		t.Errorf("subscription: expanded_timeline=%v limited=%v, want the whole (short) history", rb.Expanded, rb.Limited)
	}
	if got := bodies(rb.Timeline); !slices.Equal(got, []string{"first in B", "last in B"}) {
		t.Errorf("subscription timeline bodies = %v", got)
	}
	if rb.Timeline[0].Type != "m.room.create" {
		t.Errorf("subscription timeline starts with %s, want the room's start (m.room.create)", rb.Timeline[0].Type)
	}
	if !hasState(rb.RequiredState, "m.room.create", "") {
		t.Errorf("subscription required_state lacks m.room.create")
	}
	// A message in the subscribed room comes with the subscription's config.
	send(t, alice, roomB, "while open")
	upd := mustSlide(t, srv, alice.AccessToken, sub.Pos, 10000, roomList(`[[0, 3]]`, fmt.Sprintf(elementXSubscription, roomB)))
	if got := bodies(upd.Rooms[roomB.String()].Timeline); !slices.Equal(got, []string{"while open"}) {
		t.Errorf("update of the open room = %v", got)
	}

	// 5. An unknown pos, or another user's, is M_UNKNOWN_POS: the client starts over.
	for _, tc := range []struct {
		token, pos string
	}{
		{alice.AccessToken, "12_999999"},
		{alice.AccessToken, "garbage"},
		{bob.AccessToken, upd.Pos},
	} {
		code, r := slide(t, srv, tc.token, tc.pos, 0, roomList(`[[0, 19]]`, ""))
		if code != http.StatusBadRequest || r.Errcode != "M_UNKNOWN_POS" {
			t.Errorf("pos %q: HTTP %d %s, want 400 M_UNKNOWN_POS", tc.pos, code, r.Errcode)
		}
	}
	// A pos older than the one acknowledged since is gone too.
	if code, r := slide(t, srv, alice.AccessToken, first.Pos, 0, roomList(`[[0, 19]]`, "")); code != http.StatusBadRequest || r.Errcode != "M_UNKNOWN_POS" {
		t.Errorf("superseded pos: HTTP %d %s, want 400 M_UNKNOWN_POS", code, r.Errcode)
	}
}

func TestSlidingSyncExtensionsWake(t *testing.T) {
	srv, alice, bob, dm, named := slidingFamily(t)
	first := mustSlide(t, srv, alice.AccessToken, "", 0, roomList(`[[0, 19]]`, ""))

	// Typing in the DM wakes alice's room-list connection (typing extension, all rooms).
	done := make(chan ssResponse, 1)
	go func() { done <- mustSlide(t, srv, alice.AccessToken, first.Pos, 30000, roomList(`[[0, 19]]`, "")) }()
	time.Sleep(300 * time.Millisecond)
	if _, err := bob.UserTyping(ctx(t), dm, true, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	var r ssResponse
	select {
	case r = <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("typing did not wake the long-poll")
	}
	var typing struct {
		Rooms map[string]struct {
			Content struct {
				UserIDs []string `json:"user_ids"`
			} `json:"content"`
		} `json:"rooms"`
	}
	if err := json.Unmarshal(r.Extensions["typing"], &typing); err != nil || !slices.Equal(typing.Rooms[dm.String()].Content.UserIDs, []string{bob.UserID.String()}) {
		t.Fatalf("typing extension = %s (%v), want bob typing in the DM", r.Extensions["typing"], err)
	}

	// A read receipt and a room tag come down through the receipts and account_data extensions.
	ev := send(t, bob, dm, "read me")
	mid := mustSlide(t, srv, alice.AccessToken, r.Pos, 0, roomList(`[[0, 19]]`, ""))
	if err := alice.SendReceipt(ctx(t), dm, ev, event.ReceiptTypeRead, nil); err != nil {
		t.Fatal(err)
	}
	if err := alice.AddTag(ctx(t), named[0], "m.favourite", 0.5); err != nil {
		t.Fatal(err)
	}
	got := mustSlide(t, srv, alice.AccessToken, mid.Pos, 10000, roomList(`[[0, 19]]`, ""))
	if !strings.Contains(string(got.Extensions["receipts"]), ev.String()) {
		t.Errorf("receipts extension = %s, want alice's receipt of %s", got.Extensions["receipts"], ev)
	}
	if !strings.Contains(string(got.Extensions["account_data"]), "m.favourite") || !strings.Contains(string(got.Extensions["account_data"]), named[0].String()) {
		t.Errorf("account_data extension = %s, want the m.tag of room A", got.Extensions["account_data"])
	}
}

func TestSlidingSyncEncryptionAndNotifications(t *testing.T) {
	srv, alice, bob, dm, _ := slidingFamily(t)

	// EncryptionSyncService: conn "encryption", to_device + e2ee, no lists.
	enc := mustSlide(t, srv, alice.AccessToken, "", -1, fmt.Sprintf(elementXEncryption, ""))
	if len(enc.Rooms) != 0 || len(enc.Lists) != 0 {
		t.Fatalf("encryption connection got rooms %v lists %v", byBump(enc), enc.Lists)
	}
	var td struct {
		NextBatch string `json:"next_batch"`
	}
	if err := json.Unmarshal(enc.Extensions["to_device"], &td); err != nil || td.NextBatch == "" {
		t.Fatalf("to_device extension = %s (%v), want a next_batch", enc.Extensions["to_device"], err)
	}
	if _, ok := enc.Extensions["e2ee"]; !ok {
		t.Fatalf("e2ee extension missing: %v", enc.Extensions)
	}
	// Nothing happens: the long-poll times out and answers with the same to-device token.
	start := time.Now()
	idle := mustSlide(t, srv, alice.AccessToken, enc.Pos, 1000, fmt.Sprintf(elementXEncryption, `, "since": "`+td.NextBatch+`"`))
	if waited := time.Since(start); waited < 900*time.Millisecond {
		t.Errorf("idle long-poll answered after %v, want about the 1 s timeout", waited)
	}
	// Bob's messages in shared rooms do not concern a connection without lists.
	if len(idle.Rooms) != 0 {
		t.Errorf("encryption connection got rooms")
	}
	// A to-device message (if this server already delivers them through /v3/sync) wakes the
	// connection and is delivered once.
	if toDeviceWorks(t, srv, bob, alice) {
		type toDevice struct {
			NextBatch string            `json:"next_batch"`
			Events    []json.RawMessage `json:"events"`
		}
		r := mustSlide(t, srv, alice.AccessToken, idle.Pos, 10000, fmt.Sprintf(elementXEncryption, `, "since": "`+td.NextBatch+`"`))
		var got toDevice
		_ = json.Unmarshal(r.Extensions["to_device"], &got)
		if len(got.Events) != 1 || got.NextBatch == "" {
			t.Fatalf("to_device extension = %s, want bob's message", r.Extensions["to_device"])
		}
		// The next request acknowledges it (since = next_batch); a new message wakes the
		// long-poll and comes alone.
		done := make(chan ssResponse, 1)
		go func() {
			done <- mustSlide(t, srv, alice.AccessToken, r.Pos, 30000, fmt.Sprintf(elementXEncryption, `, "since": "`+got.NextBatch+`"`))
		}()
		time.Sleep(300 * time.Millisecond)
		body := fmt.Sprintf(`{"messages": {%q: {%q: {"second": true}}}}`, alice.UserID, alice.DeviceID)
		if code, _ := srv.Raw(t, http.MethodPut, "/_matrix/client/v3/sendToDevice/org.example.test/txn2", bob.AccessToken, body); code != http.StatusOK {
			t.Fatalf("sendToDevice: HTTP %d", code)
		}
		select {
		case r := <-done:
			var next toDevice
			_ = json.Unmarshal(r.Extensions["to_device"], &next)
			if len(next.Events) != 1 || !strings.Contains(string(next.Events[0]), "second") {
				t.Errorf("woken to_device = %s, want only the second message", r.Extensions["to_device"])
			}
		case <-time.After(15 * time.Second):
			t.Fatal("a to-device message did not wake the encryption connection")
		}
	}

	// NotificationClient: bob invites alice to a new room; the "invites" list (is_invite) has it
	// with the stripped state, and the subscription to the DM (the pushed room) has its events.
	inv, err := bob.CreateRoom(ctx(t), &mautrix.ReqCreateRoom{Preset: "private_chat", Name: "Party", Invite: []id.UserID{alice.UserID}})
	if err != nil {
		t.Fatal(err)
	}
	pushed := send(t, bob, dm, "push me")
	n := mustSlide(t, srv, alice.AccessToken, "", 1000, fmt.Sprintf(elementXNotifications, dm))
	if n.Lists["invites"].Count != 1 {
		t.Fatalf("invites count = %d, want 1", n.Lists["invites"].Count)
	}
	ir, ok := n.Rooms[inv.RoomID.String()]
	if !ok || !ir.Initial {
		t.Fatalf("invited room missing from the invites list: %v", byBump(n))
	}
	if !hasState(ir.InviteState, "m.room.member", alice.UserID.String()) || !hasState(ir.InviteState, "m.room.name", "") {
		t.Errorf("invite_state lacks the invite or the name: %+v", ir.InviteState)
	}
	d, ok := n.Rooms[dm.String()]
	if !ok || !slices.ContainsFunc(d.Timeline, func(e ssEvent) bool { return e.EventID == pushed.String() }) {
		t.Fatalf("subscribed (pushed) room lacks the pushed event: %+v", d.Timeline)
	}
	if !hasState(d.RequiredState, "m.room.power_levels", "") {
		t.Errorf("pushed room lacks m.room.power_levels (needed for the push context)")
	}
}

// toDeviceWorks sends a to-device message from one client to another's device and reports
// whether /v3/sync delivers it (the E2EE server side may not be wired in yet).
func toDeviceWorks(t *testing.T, srv *testserver.Server, from, to *mautrix.Client) bool {
	t.Helper()
	body := fmt.Sprintf(`{"messages": {%q: {%q: {"hello": "sliding"}}}}`, to.UserID, to.DeviceID)
	code, _ := srv.Raw(t, http.MethodPut, "/_matrix/client/v3/sendToDevice/org.example.test/txn1", from.AccessToken, body)
	if code != http.StatusOK {
		t.Logf("to-device not available here (HTTP %d): skipping that part", code)
		return false
	}
	resp, err := to.FullSyncRequest(ctx(t), mautrix.ReqSync{})
	if err != nil || len(resp.ToDevice.Events) == 0 {
		t.Logf("/v3/sync does not deliver to-device messages yet (%v): skipping that part", err)
		return false
	}
	return true
}

func TestSlidingSyncRequestShapes(t *testing.T) {
	srv := testserver.Start(t)
	alice := srv.Register(t, "alice", false)
	created, err := alice.CreateRoom(ctx(t), &mautrix.ReqCreateRoom{Name: "Kitchen"})
	if err != nil {
		t.Fatal(err)
	}
	room := created.RoomID
	send(t, alice, room, "hello")

	// /versions advertises the feature.
	code, v := srv.Raw(t, http.MethodGet, "/_matrix/client/versions", "", "")
	if uf, _ := v["unstable_features"].(map[string]any); code != 200 || uf["org.matrix.simplified_msc3575"] != true {
		t.Errorf("/versions unstable_features = %v", v["unstable_features"])
	}

	// The MSC's current shape: range, required_state object, pos and timeout in the body.
	body := `{"conn_id": "new", "txn_id": "t1", "lists": {"l": {"range": [0, 9], "timeline_limit": 3,
		"required_state": {"include": [{"type": "m.room.name", "state_key": ""}], "lazy_members": true},
		"filters": {"is_invited": false, "is_encrypted": false, "not_room_types": ["m.space"]}}}}`
	r := mustSlide(t, srv, alice.AccessToken, "", -1, body)
	kr, ok := r.Rooms[room.String()]
	if !ok || r.TxnID != "t1" || r.Lists["l"].Count != 1 {
		t.Fatalf("MSC-shaped request: rooms %v txn_id %q lists %v", byBump(r), r.TxnID, r.Lists)
	}
	if !hasState(kr.RequiredState, "m.room.name", "") || !hasState(kr.RequiredState, "m.room.member", alice.UserID.String()) || hasState(kr.RequiredState, "m.room.create", "") {
		t.Errorf("required_state = %+v, want the name and the lazy member only", kr.RequiredState)
	}
	if len(kr.Timeline) != 3 {
		t.Errorf("timeline has %d events, want timeline_limit 3", len(kr.Timeline))
	}
	// Filters that exclude the room: encrypted only, spaces only, invites only.
	for _, f := range []string{`{"is_encrypted": true}`, `{"room_types": ["m.space"]}`, `{"is_invite": true}`, `{"is_dm": true}`, `{"spaces": ["!nowhere:localhost"]}`} {
		r := mustSlide(t, srv, alice.AccessToken, "", 0, `{"lists": {"f": {"ranges": [[0, 9]], "timeline_limit": 1, "filters": `+f+`}}}`)
		if r.Lists["f"].Count != 0 || len(r.Rooms) != 0 {
			t.Errorf("filter %s: count %d rooms %d, want none", f, r.Lists["f"].Count, len(r.Rooms))
		}
	}
	// Wildcards: everything.
	r = mustSlide(t, srv, alice.AccessToken, "", 0, `{"lists": {"all": {"ranges": [[0, 0]], "timeline_limit": 0, "required_state": [["*", "*"]]}}}`)
	if all := r.Rooms[room.String()]; len(all.Timeline) != 0 || !hasState(all.RequiredState, "m.room.create", "") || !hasState(all.RequiredState, "m.room.power_levels", "") {
		t.Errorf("[*,*] with timeline_limit 0: timeline %d, state %+v", len(all.Timeline), all.RequiredState)
	}

	// Bad requests.
	for _, tc := range []struct {
		body, code string
	}{
		{`[1, 2]`, "M_BAD_JSON"},
		{`{"lists": {"l": {"ranges": [[5, 1]], "timeline_limit": 1}}}`, "M_INVALID_PARAM"},
		{`{"lists": {"l": {"ranges": [[0, 1]], "timeline_limit": -1}}}`, "M_INVALID_PARAM"},
		{`{"lists": {"l": {"ranges": [[0, 1]], "timeline_limit": 1, "required_state": [["m.room.name"]]}}}`, "M_BAD_JSON"},
		{`{"lists": {"l": {"ranges": "all"}}}`, "M_BAD_JSON"},
	} {
		code, r := slide(t, srv, alice.AccessToken, "", 0, tc.body)
		if code != http.StatusBadRequest || r.Errcode != tc.code {
			t.Errorf("%s: HTTP %d %s, want 400 %s", tc.body, code, r.Errcode, tc.code)
		}
	}
	var many strings.Builder
	many.WriteString(`{"lists": {`)
	for i := range 101 {
		if i > 0 {
			many.WriteString(",")
		}
		fmt.Fprintf(&many, `"l%d": {"ranges": [[0, 1]], "timeline_limit": 1}`, i)
	}
	many.WriteString(`}}`)
	if code, r := slide(t, srv, alice.AccessToken, "", 0, many.String()); code != http.StatusBadRequest || r.Errcode != "M_INVALID_PARAM" {
		t.Errorf("101 lists: HTTP %d %s, want 400 M_INVALID_PARAM", code, r.Errcode)
	}
	if code, _ := slide(t, srv, "", "", 0, `{}`); code != http.StatusUnauthorized {
		t.Errorf("no token: HTTP %d, want 401", code)
	}
}

func TestSlidingSyncMembershipChanges(t *testing.T) {
	srv := testserver.Start(t)
	alice := srv.Register(t, "alice", false)
	bob := srv.Register(t, "bob", false)
	list := roomList(`[[0, 19]]`, "")
	r0 := mustSlide(t, srv, alice.AccessToken, "", 0, list)
	if r0.Lists["all_rooms"].Count != 0 {
		t.Fatalf("count %d for a user without rooms", r0.Lists["all_rooms"].Count)
	}

	// An invite wakes the long-poll and comes as stripped state.
	done := make(chan ssResponse, 1)
	go func() { done <- mustSlide(t, srv, alice.AccessToken, r0.Pos, 30000, list) }()
	time.Sleep(300 * time.Millisecond)
	party, err := bob.CreateRoom(ctx(t), &mautrix.ReqCreateRoom{Preset: "private_chat", Name: "Party", Invite: []id.UserID{alice.UserID}})
	if err != nil {
		t.Fatal(err)
	}
	var r1 ssResponse
	select {
	case r1 = <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("an invite did not wake the long-poll")
	}
	inv := r1.Rooms[party.RoomID.String()]
	if !inv.Initial || !hasState(inv.InviteState, "m.room.member", alice.UserID.String()) || len(inv.Timeline) != 0 || len(inv.RequiredState) != 0 {
		t.Fatalf("invite = %+v, want stripped state only", inv)
	}

	// Rejecting it: the room comes back with the leave event only (alice never saw inside).
	send(t, bob, party.RoomID, "secret plans")
	if _, err := alice.LeaveRoom(ctx(t), party.RoomID); err != nil {
		t.Fatal(err)
	}
	r2 := mustSlide(t, srv, alice.AccessToken, r1.Pos, 10000, list)
	rej, ok := r2.Rooms[party.RoomID.String()]
	if !ok || len(rej.Timeline) != 1 || rej.Timeline[0].Type != "m.room.member" || rej.Timeline[0].Content["membership"] != "leave" || len(rej.RequiredState) != 0 {
		t.Fatalf("rejected invite = %+v, want the leave event alone", rej)
	}

	// Joined, then kicked: the kick arrives in the timeline and the room stays listed.
	kicky, err := bob.CreateRoom(ctx(t), &mautrix.ReqCreateRoom{Preset: "public_chat", Name: "Kicky"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.JoinRoomByID(ctx(t), kicky.RoomID); err != nil {
		t.Fatal(err)
	}
	r3 := mustSlide(t, srv, alice.AccessToken, r2.Pos, 10000, list)
	joined := r3.Rooms[kicky.RoomID.String()]
	if !joined.Initial || joined.Name == nil || *joined.Name != "Kicky" {
		t.Fatalf("joined room = %+v, want an initial room named Kicky", joined)
	}
	if _, err := bob.KickUser(ctx(t), kicky.RoomID, &mautrix.ReqKickUser{UserID: alice.UserID, Reason: "test"}); err != nil {
		t.Fatal(err)
	}
	r4 := mustSlide(t, srv, alice.AccessToken, r3.Pos, 10000, list)
	k := r4.Rooms[kicky.RoomID.String()]
	if len(k.Timeline) == 0 || k.Timeline[len(k.Timeline)-1].Content["membership"] != "leave" || k.Timeline[len(k.Timeline)-1].Sender != bob.UserID.String() {
		t.Fatalf("kick = %+v, want bob's kick last in the timeline", k.Timeline)
	}
	// Bob talks on; alice, kicked, hears nothing more of it.
	send(t, bob, kicky.RoomID, "after the kick")
	r5 := mustSlide(t, srv, alice.AccessToken, r4.Pos, 1000, list)
	if _, ok := r5.Rooms[kicky.RoomID.String()]; ok {
		t.Errorf("events after the kick reached alice: %+v", r5.Rooms[kicky.RoomID.String()])
	}
	if r5.Lists["all_rooms"].Count != 2 {
		t.Errorf("count = %d, want 2 (the kicked room and the rejected invite stay listed)", r5.Lists["all_rooms"].Count)
	}
}
