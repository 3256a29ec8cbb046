package federation_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/events"
)

// messageBodies pages through a room from from in direction dir, limit events a page, until
// no end comes back, and returns the m.room.message bodies in the order received and the
// number of pages.
func messageBodies(t *testing.T, c *mautrix.Client, room id.RoomID, from string, dir mautrix.Direction, limit int) ([]string, int) {
	t.Helper()
	var out []string
	pages := 0
	for pages < 100 {
		resp, err := c.Messages(context.Background(), room, from, "", dir, nil, limit)
		if err != nil {
			t.Fatalf("messages from %q: %v", from, err)
		}
		pages++
		for _, ev := range resp.Chunk {
			if ev.Type != event.EventMessage {
				continue
			}
			var content struct {
				Body string `json:"body"`
			}
			_ = json.Unmarshal(ev.Content.VeryRaw, &content)
			out = append(out, content.Body)
		}
		if resp.End == "" || (dir == mautrix.DirectionForward && len(resp.Chunk) == 0) {
			break
		}
		from = resp.End
	}
	return out, pages
}

// A user whose server left a room and joins it again finds a gap: the history sent while no
// one of that server was in the room. The rejoin's /sync timeline is limited with a prev_batch
// inside the gap; /messages pages back through it (fetching it with /backfill, in several
// fetches) and on into the history from the first stay, in order and without duplicates;
// paging forwards walks the filled gap before the rejoin.
func TestFederationBackfillRejoinGap(t *testing.T) {
	a, b, _ := fedPair(t)
	ctx := context.Background()
	alice, bob, room := joinedPair(t, a, b)
	if _, err := alice.SendText(ctx, room, "before the gap"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the first message on b", func() bool { return contains(bodies(t, bob, room), "before the gap") })
	if _, err := bob.LeaveRoom(ctx, room); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "bob left on a", func() bool { return members(t, alice, room)[bob.UserID.String()] == "leave" })
	const missed = 25
	var want []string
	for i := range missed {
		msg := fmt.Sprintf("in the gap %d", i)
		if _, err := alice.SendText(ctx, room, msg); err != nil {
			t.Fatal(err)
		}
		want = append(want, msg)
	}
	since, err := bob.SyncRequest(ctx, 0, "", "", false, event.PresenceOnline)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.JoinRoom(ctx, room.String(), &mautrix.ReqJoinRoom{Via: []string{a.ServerName}}); err != nil {
		t.Fatalf("rejoin: %v", err)
	}

	resp, err := bob.SyncRequest(ctx, 0, since.NextBatch, "", false, event.PresenceOnline)
	if err != nil {
		t.Fatal(err)
	}
	jr, ok := resp.Rooms.Join[room]
	if !ok {
		t.Fatalf("room not in the rejoin's sync")
	}
	tl := jr.Timeline
	if !tl.Limited || len(tl.Events) == 0 || tl.Events[0].Type != event.StateMember || tl.Events[0].Sender != bob.UserID {
		t.Fatalf("rejoin timeline: limited %v, %d events, want limited and starting at bob's join", tl.Limited, len(tl.Events))
	}
	for _, ev := range tl.Events {
		if ev.Type == event.EventMessage {
			t.Fatalf("a message from before the rejoin in its timeline: %s", ev.ID)
		}
	}
	if !strings.HasPrefix(tl.PrevBatch, "g") {
		t.Fatalf("prev_batch %q does not lead into the gap", tl.PrevBatch)
	}

	back, pages := messageBodies(t, bob, room, tl.PrevBatch, mautrix.DirectionBackward, 10)
	wantFwd := append([]string{"before the gap"}, want...)
	wantBack := slices.Clone(wantFwd)
	slices.Reverse(wantBack)
	if !slices.Equal(back, wantBack) {
		t.Fatalf("paging back from prev_batch:\n got %q\nwant %q", back, wantBack)
	}
	if pages < 3 {
		t.Fatalf("%d messages came in %d pages of 10", len(back), pages)
	}

	// Forwards from the start: the first stay, then the filled gap, then the rejoin.
	fwd, _ := messageBodies(t, bob, room, "", mautrix.DirectionForward, 7)
	if !slices.Equal(fwd, wantFwd) {
		t.Fatalf("paging forwards:\n got %q\nwant %q", fwd, wantFwd)
	}

	// From the end, paging back crosses the rejoin into the gap the same way.
	all, _ := messageBodies(t, bob, room, "", mautrix.DirectionBackward, 4)
	if !slices.Equal(all, wantBack) {
		t.Fatalf("paging back from the end:\n got %q\nwant %q", all, wantBack)
	}
}

// An event pushed with more missing history than get_missing_events brings (the origin
// answers only the newest ten of thirty) is accepted with the state at the gap: the next
// incremental /sync shows the events from the gap on, limited, without the local message from
// before it, and a prev_batch inside the gap. /messages from there goes on past the gap when
// no server fills it (this peer serves no /backfill).
func TestFederationSyncTimelineGap(t *testing.T) {
	a, b, ca := fedPair(t)
	ctx := context.Background()
	alice, bob, room := joinedPair(t, a, b)
	filter, err := alice.CreateFilter(ctx, &mautrix.Filter{Room: &mautrix.RoomFilter{Timeline: &mautrix.FilterPart{Limit: 20}}})
	if err != nil {
		t.Fatal(err)
	}
	first, err := alice.SyncRequest(ctx, 0, "", filter.FilterID, false, event.PresenceOnline)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.SendText(ctx, room, "from alice"); err != nil {
		t.Fatal(err)
	}
	p := startPeer(t, b, ca)
	st := stateOf(t, alice, room)
	bobJoin := st.byKey["m.room.member|"+bob.UserID.String()]
	prev := st.latest
	var chain []*events.Built
	for i := range 30 {
		m := p.build(st.rv, room, bob.UserID, "m.room.message", nil, map[string]any{"msgtype": "m.text", "body": fmt.Sprintf("remote %d", i)}, []id.EventID{prev}, st.auth(st.pl, bobJoin))
		chain = append(chain, m)
		prev = m.ID
	}
	last := p.build(st.rv, room, bob.UserID, "m.room.message", nil, map[string]any{"msgtype": "m.text", "body": "end"}, []id.EventID{prev}, st.auth(st.pl, bobJoin))
	p.serve(append(slices.Clone(chain), last)...)
	p.mu.Lock()
	for _, m := range chain[20:] {
		p.gmeAnswer = append(p.gmeAnswer, m.JSON)
	}
	// Messages change no state: the state at the newest unfetched event is the room's.
	p.stateAt[chain[19].ID] = stateIDsResp(st.ids, st.ids)
	p.mu.Unlock()
	if errs := p.rogue.sendTxn(a, last.JSON); errs[last.ID] != "" {
		t.Fatalf("the last event was refused: %s", errs[last.ID])
	}
	waitFor(t, "the last event on a", func() bool { return contains(bodies(t, alice, room), "end") })

	resp, err := alice.SyncRequest(ctx, 0, first.NextBatch, filter.FilterID, false, event.PresenceOnline)
	if err != nil {
		t.Fatal(err)
	}
	tl := resp.Rooms.Join[room].Timeline
	var got []string
	for _, ev := range tl.Events {
		var c struct {
			Body string `json:"body"`
		}
		_ = json.Unmarshal(ev.Content.VeryRaw, &c)
		got = append(got, c.Body)
	}
	var want []string
	for i := 20; i < 30; i++ {
		want = append(want, fmt.Sprintf("remote %d", i))
	}
	want = append(want, "end")
	if !tl.Limited || !slices.Equal(got, want) {
		t.Fatalf("timeline after the gap: limited %v, bodies %q; want limited, %q", tl.Limited, got, want)
	}
	if !strings.HasPrefix(tl.PrevBatch, "g") {
		t.Fatalf("prev_batch %q does not lead into the gap", tl.PrevBatch)
	}
	back, _ := messageBodies(t, alice, room, tl.PrevBatch, mautrix.DirectionBackward, 10)
	if len(back) != 1 || back[0] != "from alice" {
		t.Fatalf("paging back past the unfilled gap: %q, want only alice's message", back)
	}
}
