package federation_test

import (
	"context"
	"encoding/json"
	"slices"
	"testing"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/events"
)

// An event is rejected when one of its auth events is rejected, also when that auth event
// reaches us only as an outlier through /event_auth; an event that merely follows a rejected
// one (prev_events) is judged on the state before the rejected one and accepted. The room's
// forward extremities do not keep the event the rejected one built on.
func TestPipelineRejectedAuthEventsAndPrevs(t *testing.T) {
	for _, rv := range []id.RoomVersion{id.RoomV10, id.RoomV12} {
		t.Run("v"+string(rv), func(t *testing.T) {
			a, b, ca := fedPair(t)
			ctx := context.Background()
			alice := a.Register(t, "", false)
			bob := b.Register(t, "", false)
			created, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "public_chat", RoomVersion: rv})
			if err != nil {
				t.Fatal(err)
			}
			room := created.RoomID
			if _, err := bob.JoinRoom(ctx, room.String(), &mautrix.ReqJoinRoom{Via: []string{a.ServerName}}); err != nil {
				t.Fatalf("remote join: %v", err)
			}
			waitFor(t, "bob joined on a", func() bool { return members(t, alice, room)[bob.UserID.String()] == "join" })
			p := startPeer(t, b, ca)
			st := stateOf(t, alice, room)
			bobJoin := st.byKey["m.room.member|"+bob.UserID.String()]
			empty, bobKey := "", bob.UserID.String()

			// R: bob (power 0) gives himself power 100. Rejected.
			r := p.build(st.rv, room, bob.UserID, "m.room.power_levels", &empty,
				map[string]any{"users": map[string]int{alice.UserID.String(): 100, bobKey: 100}},
				[]id.EventID{st.latest}, st.auth(st.pl, bobJoin))
			if errs := p.rogue.sendTxn(a, r.JSON); errs[r.ID] == "" {
				t.Fatal("a power-level grab was accepted")
			}
			// O: a member event of bob's that names R among its auth events. Never sent: a
			// learns of it from /event_auth only.
			o := p.build(st.rv, room, bob.UserID, "m.room.member", &bobKey,
				map[string]any{"membership": "join", "displayname": "outlier"},
				[]id.EventID{st.latest}, st.auth(r.ID, st.joinRules, bobJoin))
			// X names O as bob's membership: rejected because O is.
			x := p.build(st.rv, room, bob.UserID, "m.room.message", nil,
				map[string]any{"msgtype": "m.text", "body": "on a rejected auth event"},
				[]id.EventID{st.latest}, st.auth(st.pl, o.ID))
			p.mu.Lock()
			p.authChains[x.ID] = []json.RawMessage{r.JSON, o.JSON}
			p.mu.Unlock()
			if errs := p.rogue.sendTxn(a, x.JSON); errs[x.ID] == "" {
				t.Fatal("an event with a rejected auth event was accepted")
			}
			// Y follows X with sound auth events: accepted.
			y := p.build(st.rv, room, bob.UserID, "m.room.message", nil,
				map[string]any{"msgtype": "m.text", "body": "after the rejected one"},
				[]id.EventID{x.ID}, st.auth(st.pl, bobJoin))
			if errs := p.rogue.sendTxn(a, y.JSON); errs[y.ID] != "" {
				t.Fatalf("an event following a rejected one was refused: %s", errs[y.ID])
			}
			waitFor(t, "Y on a", func() bool { return contains(bodies(t, alice, room), "after the rejected one") })
			if contains(bodies(t, alice, room), "on a rejected auth event") {
				t.Fatal("the event with a rejected auth event is in the timeline")
			}
			for name, e := range map[string]id.EventID{"R": r.ID, "O": o.ID, "X": x.ID} {
				if !eventMissing(t, alice, room, e) {
					t.Errorf("rejected event %s (%s) is served to clients", name, e)
				}
			}
			var member event.MemberEventContent
			if err := alice.StateEvent(ctx, room, event.StateMember, bobKey, &member); err != nil {
				t.Fatal(err)
			}
			if member.Displayname == "outlier" {
				t.Fatal("the rejected outlier became bob's membership")
			}

			// Y is the only forward extremity: the event before X is not one any more.
			if _, err := alice.SendText(ctx, room, "alice after Y"); err != nil {
				t.Fatal(err)
			}
			var prevs []id.EventID
			waitFor(t, "alice's event at the peer", func() bool {
				var ok bool
				prevs, ok = p.receivedWithBody("alice after Y")
				return ok
			})
			if !slices.Equal(prevs, []id.EventID{y.ID}) {
				t.Fatalf("alice's event has prev_events %v, want only Y %s", prevs, y.ID)
			}
		})
	}
}

// A pushed event with unknown prev events makes a ask get_missing_events for exactly that event
// (latest_events) back to its forward extremities (earliest_events). An event returned there
// whose own prev event is unknown takes its state from /state_ids at that prev event, never at
// itself or at the pushed event. When that state cannot be fetched whole, neither the pulled nor
// the pushed event is accepted (the pushed one is dropped without an error in the /send
// answer), and a later event with known prevs still is.
func TestPipelinePulledEventsTakeStateAtTheirPrev(t *testing.T) {
	a, b, ca := fedPair(t)
	ctx := context.Background()
	alice, bob, room := joinedPair(t, a, b)
	p := startPeer(t, b, ca)
	st := stateOf(t, alice, room)
	bobKey := bob.UserID.String()
	bobJoin := st.byKey["m.room.member|"+bobKey]
	displayname := func() string {
		var m event.MemberEventContent
		if err := alice.StateEvent(ctx, room, event.StateMember, bobKey, &m); err != nil {
			t.Fatal(err)
		}
		return m.Displayname
	}
	msg := func(body string, prev, member id.EventID) *events.Built {
		return p.build(st.rv, room, bob.UserID, "m.room.message", nil, map[string]any{"msgtype": "m.text", "body": body}, []id.EventID{prev}, st.auth(st.pl, member))
	}

	// P1 (bob renames himself) <- P2 <- P3; a gets P3 pushed, P2 from get_missing_events and
	// P1 only through /event, as the state after it is needed.
	p1 := p.build(st.rv, room, bob.UserID, "m.room.member", &bobKey, map[string]any{"membership": "join", "displayname": "Bobby"},
		[]id.EventID{st.latest}, st.auth(st.pl, st.joinRules, bobJoin))
	p2 := msg("two", p1.ID, p1.ID)
	p3 := msg("three", p2.ID, p1.ID)
	p.serve(p1, p2, p3)
	p.mu.Lock()
	p.gmeAnswer = []json.RawMessage{p2.JSON}
	p.stateAt[p1.ID] = stateIDsResp(st.ids, st.ids)
	p.mu.Unlock()
	if errs := p.rogue.sendTxn(a, p3.JSON); errs[p3.ID] != "" {
		t.Fatalf("P3 refused: %s", errs[p3.ID])
	}
	waitFor(t, "P2 and P3 on a", func() bool {
		got := bodies(t, alice, room)
		return contains(got, "two") && contains(got, "three")
	})
	if got := displayname(); got != "Bobby" {
		t.Fatalf("bob's displayname is %q; the state after P1 should hold", got)
	}
	gme, stateReqs := p.requests()
	if len(gme) != 1 || !slices.Equal(gme[0].LatestEvents, []id.EventID{p3.ID}) || !slices.Equal(gme[0].EarliestEvents, []id.EventID{st.latest}) {
		t.Fatalf("get_missing_events requests %+v, want one with latest [%s] earliest [%s]", gme, p3.ID, st.latest)
	}
	if !slices.Equal(stateReqs, []id.EventID{p1.ID}) {
		t.Fatalf("state_ids asked at %v, want only P1 %s", stateReqs, p1.ID)
	}

	// Q1 (renames bob again) <- Q2 <- Q3, but /event does not know Q1: the state after it
	// cannot be had, so Q2 and Q3 are not accepted and bob keeps his name.
	q1 := p.build(st.rv, room, bob.UserID, "m.room.member", &bobKey, map[string]any{"membership": "join", "displayname": "Mallory"},
		[]id.EventID{p3.ID}, st.auth(st.pl, st.joinRules, p1.ID))
	q2 := msg("q two", q1.ID, q1.ID)
	q3 := msg("q three", q2.ID, q1.ID)
	p.serve(q2, q3)
	withP1 := append(slices.DeleteFunc(slices.Clone(st.ids), func(e id.EventID) bool { return e == bobJoin }), p1.ID)
	p.mu.Lock()
	p.gmeAnswer = []json.RawMessage{q2.JSON}
	p.stateAt[q1.ID] = stateIDsResp(withP1, withP1)
	p.mu.Unlock()
	// Q3 is dropped without an error in the /send answer (only its history was at fault).
	if errs := p.rogue.sendTxn(a, q3.JSON); errs[q3.ID] != "" {
		t.Fatalf("Q3 was answered with an error: %s", errs[q3.ID])
	}
	for name, e := range map[string]id.EventID{"Q2": q2.ID, "Q3": q3.ID} {
		if !eventMissing(t, alice, room, e) {
			t.Errorf("%s (%s), whose state could not be fetched, is served to clients", name, e)
		}
	}
	gme, stateReqs = p.requests()
	// P1 never entered the DAG here, so the event before it stays a forward extremity beside P3.
	if len(gme) != 2 || !slices.Equal(gme[1].LatestEvents, []id.EventID{q3.ID}) || !slices.Contains(gme[1].EarliestEvents, p3.ID) {
		t.Fatalf("second get_missing_events %+v, want latest [%s] and %s among earliest", gme, q3.ID, p3.ID)
	}
	if !slices.Equal(stateReqs, []id.EventID{p1.ID, q1.ID}) {
		t.Fatalf("state_ids asked at %v, want P1 then Q1", stateReqs)
	}

	// A sentinel on P3 is accepted; Q2 and Q3 never show and bob is still Bobby.
	s := msg("sentinel", p3.ID, p1.ID)
	if errs := p.rogue.sendTxn(a, s.JSON); errs[s.ID] != "" {
		t.Fatalf("sentinel refused: %s", errs[s.ID])
	}
	waitFor(t, "the sentinel on a", func() bool { return contains(bodies(t, alice, room), "sentinel") })
	if got := bodies(t, alice, room); contains(got, "q two") || contains(got, "q three") {
		t.Fatalf("events without fetchable state are shown: %v", got)
	}
	if got := displayname(); got != "Bobby" {
		t.Fatalf("bob's displayname is %q after the unfetchable Q1", got)
	}
}
