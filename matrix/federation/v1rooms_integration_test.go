package federation_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/appliance/testserver"
)

// Room versions 1 and 2 over federation: a real Dendrite v0.13.8 creates rooms of those
// versions (whose events carry server-chosen IDs and [id, hashes] references) and a real Hearth
// joins them, exchanges messages and changes the topic from each side; then a fork (Dendrite's
// user leaves and rejoins while Hearth changes state) is resolved on both sides.

func TestDendriteV1Rooms(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Dendrite process; not in -short")
	}
	ca := testserver.NewCA(t)
	d := startDendrite(t, ca)
	h := testserver.Start(t, testserver.Federated(t, ca))
	ctx := context.Background()
	alice := h.Register(t, "alice", false)
	dana := d.register(t, "dana")

	for _, rv := range []id.RoomVersion{id.RoomV1, id.RoomV2} {
		t.Run("v"+string(rv), func(t *testing.T) {
			created, err := dana.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "public_chat", Name: "Old room " + string(rv), RoomVersion: rv})
			if err != nil {
				t.Fatalf("dendrite createRoom v%s: %v", rv, err)
			}
			room := created.RoomID
			if _, err := dana.SendText(ctx, room, "before alice"); err != nil {
				t.Fatal(err)
			}
			if _, err := alice.JoinRoom(ctx, room.String(), &mautrix.ReqJoinRoom{Via: []string{d.ServerName}}); err != nil {
				t.Fatalf("hearth joins dendrite v%s room: %v", rv, err)
			}
			var create event.CreateEventContent
			if err := alice.StateEvent(ctx, room, event.StateCreate, "", &create); err != nil {
				t.Fatalf("create event on hearth: %v", err)
			}
			if string(create.RoomVersion) != string(rv) {
				t.Fatalf("room version on hearth %q, want %q", create.RoomVersion, rv)
			}
			var name event.RoomNameEventContent
			if err := alice.StateEvent(ctx, room, event.StateRoomName, "", &name); err != nil || name.Name != "Old room "+string(rv) {
				t.Fatalf("room name on hearth: %q, %v", name.Name, err)
			}
			waitFor(t, "dendrite to see alice join", func() bool { return members(t, dana, room)[alice.UserID.String()] == "join" })
			// Hearth's own join is a v1-format event: the ID is one of Hearth's.
			if jid := memberEventID(t, dana, room, alice.UserID); !strings.HasSuffix(jid.String(), ":"+h.ServerName) {
				t.Fatalf("alice's join on dendrite has ID %s, want a v1 ID of %s", jid, h.ServerName)
			}
			dChatBothWays(t, room, alice, dana)

			// A state change from each side.
			if _, err := dana.SendStateEvent(ctx, room, event.StateTopic, "", &event.TopicEventContent{Topic: "from dendrite"}); err != nil {
				t.Fatalf("dendrite sets topic: %v", err)
			}
			waitFor(t, "dendrite's topic on hearth", func() bool { return topicOf(alice, room) == "from dendrite" })
			// public_chat lets only moderators set state: Dendrite's user promotes alice, which
			// Hearth must accept as the authority for its own event.
			var pl event.PowerLevelsEventContent
			if err := dana.StateEvent(ctx, room, event.StatePowerLevels, "", &pl); err != nil {
				t.Fatalf("power levels on dendrite: %v", err)
			}
			pl.SetUserLevel(alice.UserID, 50)
			if _, err := dana.SendStateEvent(ctx, room, event.StatePowerLevels, "", &pl); err != nil {
				t.Fatalf("dendrite promotes alice: %v", err)
			}
			waitFor(t, "alice's power level on hearth", func() bool {
				var hp event.PowerLevelsEventContent
				return alice.StateEvent(ctx, room, event.StatePowerLevels, "", &hp) == nil && hp.GetUserLevel(alice.UserID) == 50
			})
			resp, err := alice.SendStateEvent(ctx, room, event.StateTopic, "", &event.TopicEventContent{Topic: "from hearth"})
			if err != nil {
				t.Fatalf("hearth sets topic: %v", err)
			}
			if !strings.HasSuffix(resp.EventID.String(), ":"+h.ServerName) {
				t.Fatalf("hearth's topic event ID %s is not a v1 ID of %s", resp.EventID, h.ServerName)
			}
			waitFor(t, "hearth's topic on dendrite", func() bool { return topicOf(dana, room) == "from hearth" })
			// Dendrite accepted the event under the ID Hearth gave it.
			ev, err := dana.GetEvent(ctx, room, resp.EventID)
			if err != nil {
				t.Fatalf("dendrite fetches hearth's topic event %s: %v", resp.EventID, err)
			}
			if ev.Sender != alice.UserID || ev.Type != event.StateTopic {
				t.Fatalf("dendrite has %s as %s from %s", resp.EventID, ev.Type, ev.Sender)
			}

			// A fork: Dendrite's user leaves, Hearth changes the topic meanwhile, and Dendrite
			// (the room's home) rejoins on its own stale state. Hearth must resolve the fork and
			// serve Dendrite the missing v1 events when they are referenced.
			if _, err := dana.LeaveRoom(ctx, room); err != nil {
				t.Fatalf("dendrite leaves: %v", err)
			}
			waitFor(t, "hearth to see dana leave", func() bool { return members(t, alice, room)[dana.UserID.String()] == "leave" })
			// State Dendrite cannot have heard of while its user was out.
			if _, err := alice.SendStateEvent(ctx, room, event.StateTopic, "", &event.TopicEventContent{Topic: "while dana was away"}); err != nil {
				t.Fatalf("hearth sets topic alone: %v", err)
			}
			if _, err := dana.JoinRoom(ctx, room.String(), &mautrix.ReqJoinRoom{Via: []string{h.ServerName}}); err != nil {
				t.Fatalf("dendrite rejoins: %v", err)
			}
			waitFor(t, "hearth to see dana rejoin", func() bool { return members(t, alice, room)[dana.UserID.String()] == "join" })
			if jid := memberEventID(t, alice, room, dana.UserID); !strings.HasSuffix(jid.String(), ":"+d.ServerName) {
				t.Fatalf("dana's rejoin on hearth has ID %s, want a v1 ID of %s", jid, d.ServerName)
			}
			if _, err := alice.SendText(ctx, room, "welcome back"); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "hearth's message on dendrite after the rejoin", func() bool { return contains(bodies(t, dana, room), "welcome back") })
			waitFor(t, "the topic set during the fork on dendrite", func() bool { return topicOf(dana, room) == "while dana was away" })
			if got := topicOf(alice, room); got != "while dana was away" {
				t.Fatalf("hearth's topic after resolving the fork: %q", got)
			}
			if _, err := dana.SendText(ctx, room, "glad to be back"); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "dendrite's message on hearth after the rejoin", func() bool { return contains(bodies(t, alice, room), "glad to be back") })
		})
	}

	// Hearth joins rooms of these versions but does not create them.
	_, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{RoomVersion: id.RoomV1})
	var he mautrix.HTTPError
	if !errors.As(err, &he) || he.RespError == nil || he.RespError.ErrCode != "M_UNSUPPORTED_ROOM_VERSION" {
		t.Fatalf("hearth createRoom v1: want M_UNSUPPORTED_ROOM_VERSION, got %v", err)
	}
}

// topicOf reads the room topic through c's client API ("" when unset or unreadable).
func topicOf(c *mautrix.Client, room id.RoomID) string {
	var topic event.TopicEventContent
	if err := c.StateEvent(context.Background(), room, event.StateTopic, "", &topic); err != nil {
		return ""
	}
	return topic.Topic
}

// memberEventID is the ID of user's current member event as c's server has it.
func memberEventID(t *testing.T, c *mautrix.Client, room id.RoomID, user id.UserID) id.EventID {
	t.Helper()
	state, err := c.State(context.Background(), room)
	if err != nil {
		t.Fatalf("room state: %v", err)
	}
	ev := state[event.StateMember][user.String()]
	if ev == nil {
		raw, _ := json.Marshal(state[event.StateMember])
		t.Fatalf("no member event of %s in %s: %s", user, room, raw)
	}
	return ev.ID
}
