package sync_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/appliance/testserver"
)

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func mustSync(t *testing.T, cli *mautrix.Client, req mautrix.ReqSync) *mautrix.RespSync {
	t.Helper()
	resp, err := cli.FullSyncRequest(ctx(t), req)
	if err != nil {
		t.Fatalf("sync: %v", err)
	}
	return resp
}

func timelineBodies(r *mautrix.SyncJoinedRoom) []string {
	var out []string
	for _, e := range r.Timeline.Events {
		if e.Type == event.EventMessage {
			var c struct {
				Body string `json:"body"`
			}
			_ = json.Unmarshal(e.Content.VeryRaw, &c)
			out = append(out, c.Body)
		}
	}
	return out
}

func setupPair(t *testing.T) (*testserver.Server, *mautrix.Client, *mautrix.Client, id.RoomID) {
	srv := testserver.Start(t)
	alice := srv.Register(t, "alice", false)
	bob := srv.Register(t, "bob", false)
	room, err := alice.CreateRoom(ctx(t), &mautrix.ReqCreateRoom{Preset: "public_chat", Name: "chat"})
	if err != nil {
		t.Fatalf("create room: %v", err)
	}
	if _, err := bob.JoinRoomByID(ctx(t), room.RoomID); err != nil {
		t.Fatalf("join: %v", err)
	}
	return srv, alice, bob, room.RoomID
}

func TestInitialAndIncrementalSync(t *testing.T) {
	_, alice, bob, room := setupPair(t)
	if _, err := alice.SendText(ctx(t), room, "one"); err != nil {
		t.Fatal(err)
	}
	first := mustSync(t, bob, mautrix.ReqSync{})
	jr, ok := first.Rooms.Join[room]
	if !ok {
		t.Fatalf("joined room missing from initial sync: %+v", first.Rooms)
	}
	if got := timelineBodies(jr); len(got) != 1 || got[0] != "one" {
		t.Fatalf("initial timeline bodies = %v", got)
	}
	// Initial sync: the room state before the timeline includes the create event and name.
	types := map[string]bool{}
	for _, e := range append(jr.State.Events, jr.Timeline.Events...) {
		types[e.Type.Type] = true
	}
	for _, want := range []string{"m.room.create", "m.room.power_levels", "m.room.join_rules", "m.room.name"} {
		if !types[want] {
			t.Errorf("initial sync lacks %s", want)
		}
	}
	if _, err := alice.SendText(ctx(t), room, "two"); err != nil {
		t.Fatal(err)
	}
	next := mustSync(t, bob, mautrix.ReqSync{Since: first.NextBatch})
	if got := timelineBodies(next.Rooms.Join[room]); len(got) != 1 || got[0] != "two" {
		t.Fatalf("incremental timeline = %v", got)
	}
	if next.Rooms.Join[room].Timeline.Limited {
		t.Errorf("incremental sync with one new event is limited")
	}
	// Nothing new: an incremental sync with timeout 0 returns at once without the room.
	idle := mustSync(t, bob, mautrix.ReqSync{Since: next.NextBatch})
	if _, ok := idle.Rooms.Join[room]; ok {
		t.Errorf("idle sync repeats the room")
	}
}

func TestLongPollWokenByMessage(t *testing.T) {
	_, alice, bob, room := setupPair(t)
	first := mustSync(t, bob, mautrix.ReqSync{})
	type result struct {
		resp *mautrix.RespSync
		err  error
		took time.Duration
	}
	done := make(chan result, 1)
	go func() {
		start := time.Now()
		r, err := bob.FullSyncRequest(context.Background(), mautrix.ReqSync{Since: first.NextBatch, Timeout: 20000})
		done <- result{r, err, time.Since(start)}
	}()
	time.Sleep(300 * time.Millisecond)
	if _, err := alice.SendText(ctx(t), room, "wake up"); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-done:
		if r.err != nil {
			t.Fatal(r.err)
		}
		if got := timelineBodies(r.resp.Rooms.Join[room]); len(got) != 1 || got[0] != "wake up" {
			t.Fatalf("woken sync timeline = %v", got)
		}
		if r.took > 10*time.Second {
			t.Fatalf("long-poll was not woken by the message (took %v)", r.took)
		}
	case <-time.After(25 * time.Second):
		t.Fatal("long-poll never returned")
	}
}

func TestLongPollTimesOutEmpty(t *testing.T) {
	_, _, bob, room := setupPair(t)
	first := mustSync(t, bob, mautrix.ReqSync{})
	start := time.Now()
	r := mustSync(t, bob, mautrix.ReqSync{Since: first.NextBatch, Timeout: 500})
	if time.Since(start) < 400*time.Millisecond {
		t.Fatalf("long-poll returned early with nothing new")
	}
	if _, ok := r.Rooms.Join[room]; ok {
		t.Fatalf("empty long-poll returned the room")
	}
	if r.NextBatch == "" {
		t.Fatalf("no next_batch")
	}
}

func TestLimitedTimelineAndPagination(t *testing.T) {
	_, alice, bob, room := setupPair(t)
	first := mustSync(t, bob, mautrix.ReqSync{})
	for i := 0; i < 15; i++ {
		if _, err := alice.SendText(ctx(t), room, "m"+string(rune('a'+i))); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := alice.SendStateEvent(ctx(t), room, event.StateTopic, "", map[string]string{"topic": "new topic"}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		if _, err := alice.SendText(ctx(t), room, "late"); err != nil {
			t.Fatal(err)
		}
	}
	filter := `{"room":{"timeline":{"limit":3}}}`
	r := mustSync(t, bob, mautrix.ReqSync{Since: first.NextBatch, FilterID: filter})
	jr := r.Rooms.Join[room]
	if jr == nil || !jr.Timeline.Limited || len(jr.Timeline.Events) != 3 {
		t.Fatalf("want a limited timeline of 3, got %+v", jr)
	}
	// The topic changed in the gap: it must be in the state section.
	found := false
	for _, e := range jr.State.Events {
		if e.Type == event.StateTopic {
			found = true
		}
	}
	if !found {
		t.Errorf("state change in the gap missing from state section")
	}
	// Paginating back from prev_batch returns the events before the timeline, newest first.
	msgs, err := bob.Messages(ctx(t), room, jr.Timeline.PrevBatch, "", mautrix.DirectionBackward, nil, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs.Chunk) != 3 || msgs.Chunk[0].Type != event.EventMessage {
		t.Fatalf("pagination from prev_batch: %d events", len(msgs.Chunk))
	}
	if msgs.Chunk[0].Timestamp > jr.Timeline.Events[0].Timestamp {
		t.Errorf("paginated event is newer than the timeline start")
	}
}

func TestInviteAndLeaveSections(t *testing.T) {
	srv := testserver.Start(t)
	alice := srv.Register(t, "alice", false)
	bob := srv.Register(t, "bob", false)
	first := mustSync(t, bob, mautrix.ReqSync{})
	room, err := alice.CreateRoom(ctx(t), &mautrix.ReqCreateRoom{Preset: "private_chat", Name: "secret", Invite: []id.UserID{bob.UserID}})
	if err != nil {
		t.Fatal(err)
	}
	r := mustSync(t, bob, mautrix.ReqSync{Since: first.NextBatch})
	inv, ok := r.Rooms.Invite[room.RoomID]
	if !ok {
		t.Fatalf("invite missing from sync: %+v", r.Rooms)
	}
	var sawName, sawInvite bool
	for _, e := range inv.State.Events {
		sawName = sawName || e.Type == event.StateRoomName
		sawInvite = sawInvite || (e.Type == event.StateMember && e.GetStateKey() == bob.UserID.String())
	}
	if !sawName || !sawInvite {
		t.Errorf("invite_state lacks name (%v) or the invite (%v)", sawName, sawInvite)
	}
	if _, err := bob.JoinRoomByID(ctx(t), room.RoomID); err != nil {
		t.Fatal(err)
	}
	r2 := mustSync(t, bob, mautrix.ReqSync{Since: r.NextBatch})
	if _, ok := r2.Rooms.Join[room.RoomID]; !ok {
		t.Fatalf("joined room missing after join")
	}
	if _, err := alice.KickUser(ctx(t), room.RoomID, &mautrix.ReqKickUser{UserID: bob.UserID, Reason: "bye"}); err != nil {
		t.Fatal(err)
	}
	r3 := mustSync(t, bob, mautrix.ReqSync{Since: r2.NextBatch})
	lr, ok := r3.Rooms.Leave[room.RoomID]
	if !ok {
		t.Fatalf("kicked room missing from leave section: %+v", r3.Rooms)
	}
	last := lr.Timeline.Events[len(lr.Timeline.Events)-1]
	if last.Type != event.StateMember || last.GetStateKey() != bob.UserID.String() {
		t.Errorf("leave timeline does not end with the kick: %+v", last)
	}
	// After leaving, alice's messages are not delivered to bob.
	if _, err := alice.SendText(ctx(t), room.RoomID, "after"); err != nil {
		t.Fatal(err)
	}
	r4 := mustSync(t, bob, mautrix.ReqSync{Since: r3.NextBatch})
	if _, ok := r4.Rooms.Join[room.RoomID]; ok {
		t.Errorf("left room still syncs")
	}
}

func TestTypingReceiptsAccountData(t *testing.T) {
	_, alice, bob, room := setupPair(t)
	first := mustSync(t, bob, mautrix.ReqSync{})
	if _, err := alice.UserTyping(ctx(t), room, true, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	r := mustSync(t, bob, mautrix.ReqSync{Since: first.NextBatch})
	var typers []string
	for _, e := range r.Rooms.Join[room].Ephemeral.Events {
		if e.Type == event.EphemeralEventTyping {
			var c struct {
				UserIDs []string `json:"user_ids"`
			}
			_ = json.Unmarshal(e.Content.VeryRaw, &c)
			typers = c.UserIDs
		}
	}
	if len(typers) != 1 || typers[0] != alice.UserID.String() {
		t.Fatalf("typing users = %v", typers)
	}
	sent, err := alice.SendText(ctx(t), room, "read me")
	if err != nil {
		t.Fatal(err)
	}
	if err := bob.SendReceipt(ctx(t), room, sent.EventID, event.ReceiptTypeRead, nil); err != nil {
		t.Fatal(err)
	}
	if err := alice.SetAccountData(ctx(t), "org.example.test", map[string]int{"n": 1}); err != nil {
		t.Fatal(err)
	}
	ra := mustSync(t, alice, mautrix.ReqSync{})
	var sawReceipt bool
	for _, e := range ra.Rooms.Join[room].Ephemeral.Events {
		if e.Type == event.EphemeralEventReceipt {
			var c map[string]map[string]map[string]any
			_ = json.Unmarshal(e.Content.VeryRaw, &c)
			_, sawReceipt = c[sent.EventID.String()]["m.read"][bob.UserID.String()]
		}
	}
	if !sawReceipt {
		t.Errorf("bob's read receipt missing from alice's sync")
	}
	var sawAD bool
	for _, e := range ra.AccountData.Events {
		sawAD = sawAD || e.Type.Type == "org.example.test"
	}
	if !sawAD {
		t.Errorf("account data missing from sync")
	}
}

func TestLazyLoadMembers(t *testing.T) {
	srv, alice, bob, room := setupPair(t)
	carol := srv.Register(t, "carol", false)
	if _, err := carol.JoinRoomByID(ctx(t), room); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 12; i++ {
		if _, err := alice.SendText(ctx(t), room, "x"); err != nil {
			t.Fatal(err)
		}
	}
	filter := `{"room":{"state":{"lazy_load_members":true},"timeline":{"limit":5}}}`
	r := mustSync(t, bob, mautrix.ReqSync{FilterID: filter})
	members := map[string]bool{}
	for _, e := range r.Rooms.Join[room].State.Events {
		if e.Type == event.StateMember {
			members[e.GetStateKey()] = true
		}
	}
	if !members[alice.UserID.String()] || !members[bob.UserID.String()] {
		t.Errorf("lazy members lack the sender or the syncing user: %v", members)
	}
	if members[carol.UserID.String()] {
		t.Errorf("lazy loading sent a member who sent nothing in the timeline")
	}
}

func TestInitialSyncCarriesPushRules(t *testing.T) {
	srv := testserver.Start(t)
	alice := srv.Register(t, "alice", false)
	r := mustSync(t, alice, mautrix.ReqSync{})
	for _, e := range r.AccountData.Events {
		if e.Type.Type == "m.push_rules" {
			var c struct {
				Global map[string]json.RawMessage `json:"global"`
			}
			if err := json.Unmarshal(e.Content.VeryRaw, &c); err != nil || c.Global["override"] == nil || c.Global["underride"] == nil {
				t.Fatalf("m.push_rules without a global ruleset: %s", e.Content.VeryRaw)
			}
			return
		}
	}
	t.Fatal("initial sync lacks m.push_rules account data")
}
