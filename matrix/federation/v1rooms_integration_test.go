package federation_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/appliance/testserver"
)

// Room versions 1 and 2 over federation: a real Dendrite v0.13.8 creates rooms of those
// versions (whose events carry server-chosen IDs and [id, hashes] references) and a real Hearth
// joins them, exchanges messages and changes the topic from each side.

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
		})
	}

	// Hearth creates rooms of these versions too, and Dendrite joins them through Hearth's
	// make_join/send_join, which answer in the v1 format.
	for _, rv := range []id.RoomVersion{id.RoomV1, id.RoomV2} {
		t.Run("DendriteJoinsHearth/v"+string(rv), func(t *testing.T) {
			created, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "public_chat", Name: "Hearth old " + string(rv), RoomVersion: rv})
			if err != nil {
				t.Fatalf("hearth createRoom v%s: %v", rv, err)
			}
			room := created.RoomID
			if _, err := dana.JoinRoom(ctx, room.String(), &mautrix.ReqJoinRoom{Via: []string{h.ServerName}}); err != nil {
				t.Fatalf("dendrite joins hearth v%s room: %v", rv, err)
			}
			var name event.RoomNameEventContent
			if err := dana.StateEvent(ctx, room, event.StateRoomName, "", &name); err != nil || name.Name != "Hearth old "+string(rv) {
				t.Fatalf("room name on dendrite: %q, %v", name.Name, err)
			}
			waitFor(t, "hearth to see dana join", func() bool { return members(t, alice, room)[dana.UserID.String()] == "join" })
			if jid := memberEventID(t, alice, room, dana.UserID); !strings.HasSuffix(jid.String(), ":"+d.ServerName) {
				t.Fatalf("dana's join on hearth has ID %s, want a v1 ID of %s", jid, d.ServerName)
			}
			dChatBothWays(t, room, alice, dana)
		})
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
