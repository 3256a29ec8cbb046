package federation_test

import (
	"context"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

// Invites to a room the invitee's server is not in, after the invite: the invitee rejects it
// (the leave goes through the inviting server and shows in the invitee's /sync), or the
// inviter withdraws it (the kick reaches the invitee's server through /send, for a room it
// only knows as a stub); a kick by anyone but the inviter is not taken.

const includeLeave = `{"room":{"include_leave":true}}`

// syncWith runs one /sync with a filter, from since ("" for an initial sync).
func syncWith(t *testing.T, c *mautrix.Client, since, filter string) *mautrix.RespSync {
	t.Helper()
	resp, err := c.SyncRequest(context.Background(), 0, since, filter, false, "")
	if err != nil {
		t.Fatalf("%s: sync: %v", c.UserID, err)
	}
	return resp
}

// leftWith reports whether a sync response shows user's leave from room in the leave section,
// in its timeline or state.
func leftWith(resp *mautrix.RespSync, room id.RoomID, user id.UserID, sender id.UserID) bool {
	lr, ok := resp.Rooms.Leave[room]
	if !ok {
		return false
	}
	for _, evs := range [][]*event.Event{lr.Timeline.Events, lr.State.Events} {
		for _, ev := range evs {
			if ev.Type == event.StateMember && ev.GetStateKey() == user.String() && ev.Sender == sender &&
				ev.Content.Raw["membership"] == "leave" {
				return true
			}
		}
	}
	return false
}

func invitedTo(resp *mautrix.RespSync, room id.RoomID) bool {
	_, ok := resp.Rooms.Invite[room]
	return ok
}

// syncUntil repeats an incremental sync from since until cond holds (20 s at most) and
// returns the last next_batch.
func syncUntil(t *testing.T, c *mautrix.Client, since, filter, what string, cond func(*mautrix.RespSync) bool) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp := syncWith(t, c, since, filter)
		if cond(resp) {
			return resp.NextBatch
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: timed out waiting for %s", c.UserID, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestFederationRejectedInviteInSync(t *testing.T) {
	a, b, _ := fedPair(t)
	ctx := context.Background()
	alice := a.Register(t, "alice", false)
	carol := b.Register(t, "carol", false)
	created, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "private_chat", Invite: []id.UserID{carol.UserID}})
	if err != nil {
		t.Fatal(err)
	}
	room := created.RoomID
	since := syncUntil(t, carol, "", "", "the invite", func(r *mautrix.RespSync) bool { return invitedTo(r, room) })
	// The inviter leaves first: the room on a keeps no joined member, and the rejection
	// still goes through a.
	if _, err := alice.LeaveRoom(ctx, room); err != nil {
		t.Fatal(err)
	}
	if _, err := carol.LeaveRoom(ctx, room); err != nil {
		t.Fatalf("reject the invite: %v", err)
	}
	resp := syncWith(t, carol, since, includeLeave)
	if !leftWith(resp, room, carol.UserID, carol.UserID) {
		t.Fatalf("carol's sync does not show her leave: %+v", resp.Rooms.Leave[room])
	}
	if invitedTo(syncWith(t, carol, "", ""), room) {
		t.Fatal("the rejected invite is still shown")
	}
}

func TestFederationRescindInvite(t *testing.T) {
	a, b, _ := fedPair(t)
	ctx := context.Background()
	alice := a.Register(t, "alice", false)
	alice2 := a.Register(t, "alice2", false)
	carol := b.Register(t, "carol", false)

	// The inviter kicks the invitee: carol's server takes the leave for its stub room.
	created, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "private_chat", Invite: []id.UserID{carol.UserID}})
	if err != nil {
		t.Fatal(err)
	}
	room := created.RoomID
	since := syncUntil(t, carol, "", "", "the invite", func(r *mautrix.RespSync) bool { return invitedTo(r, room) })
	if _, err := alice.KickUser(ctx, room, &mautrix.ReqKickUser{UserID: carol.UserID, Reason: "changed my mind"}); err != nil {
		t.Fatal(err)
	}
	syncUntil(t, carol, since, includeLeave, "the rescinded invite", func(r *mautrix.RespSync) bool {
		return leftWith(r, room, carol.UserID, alice.UserID)
	})
	if invitedTo(syncWith(t, carol, "", ""), room) {
		t.Fatal("the rescinded invite is still shown")
	}

	// Someone else than the inviter kicks the invitee: carol's server refuses it. A message
	// in a room carol is in, sent after the kick, shows that a's queue got past the kick.
	shared, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "public_chat"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := carol.JoinRoom(ctx, shared.RoomID.String(), &mautrix.ReqJoinRoom{Via: []string{a.ServerName}}); err != nil {
		t.Fatal(err)
	}
	room2, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "private_chat", Invite: []id.UserID{alice2.UserID}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice2.JoinRoomByID(ctx, room2.RoomID); err != nil {
		t.Fatal(err)
	}
	if _, err := alice2.InviteUser(ctx, room2.RoomID, &mautrix.ReqInviteUser{UserID: carol.UserID}); err != nil {
		t.Fatal(err)
	}
	since = syncUntil(t, carol, "", "", "the second invite", func(r *mautrix.RespSync) bool { return invitedTo(r, room2.RoomID) })
	if _, err := alice.KickUser(ctx, room2.RoomID, &mautrix.ReqKickUser{UserID: carol.UserID}); err != nil {
		t.Fatal(err)
	}
	marker, err := alice.SendText(ctx, shared.RoomID, "after the kick")
	if err != nil {
		t.Fatal(err)
	}
	syncUntil(t, carol, since, includeLeave, "the message after the kick", func(r *mautrix.RespSync) bool {
		if leftWith(r, room2.RoomID, carol.UserID, alice.UserID) {
			t.Fatal("a kick by someone who did not invite carol withdrew her invite")
		}
		jr, ok := r.Rooms.Join[shared.RoomID]
		if !ok {
			return false
		}
		for _, ev := range jr.Timeline.Events {
			if ev.ID == marker.EventID {
				return true
			}
		}
		return false
	})
	if !invitedTo(syncWith(t, carol, "", ""), room2.RoomID) {
		t.Fatal("carol's invite from alice2 is gone")
	}
}
