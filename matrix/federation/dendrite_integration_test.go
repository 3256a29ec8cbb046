package federation_test

import (
	"context"
	"testing"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/appliance/testserver"
)

// Interop with Dendrite v0.13.8 on loopback: a real Dendrite monolith (SQLite, its HTTPS
// federation listener with a certificate from the test CA) and a real Hearth appliance join each
// other's rooms and exchange messages, each side read through its own client API.

func TestDendriteInterop(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Dendrite process; not in -short")
	}
	ca := testserver.NewCA(t)
	d := startDendrite(t, ca)
	h := testserver.Start(t, testserver.Federated(t, ca))
	ctx := context.Background()
	alice := h.Register(t, "alice", false)
	dana := d.register(t, "dana")

	t.Run("HearthJoinsDendriteRoom", func(t *testing.T) {
		created, err := dana.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "public_chat", Name: "Dendrite lounge"})
		if err != nil {
			t.Fatalf("dendrite createRoom: %v", err)
		}
		room := created.RoomID
		if _, err := dana.SendText(ctx, room, "before alice"); err != nil {
			t.Fatal(err)
		}
		if _, err := alice.JoinRoom(ctx, room.String(), &mautrix.ReqJoinRoom{Via: []string{d.ServerName}}); err != nil {
			t.Fatalf("hearth joins dendrite room: %v", err)
		}
		var name event.RoomNameEventContent
		if err := alice.StateEvent(ctx, room, event.StateRoomName, "", &name); err != nil || name.Name != "Dendrite lounge" {
			t.Fatalf("room name on hearth: %q, %v", name.Name, err)
		}
		waitFor(t, "dendrite to see alice join", func() bool { return members(t, dana, room)[alice.UserID.String()] == "join" })
		chatBothWays(t, room, alice, dana)
	})

	// Dendrite v0.13.8 knows room versions up to 11; Hearth's default is 12, so the room names one
	// Dendrite can join.
	for _, rv := range []id.RoomVersion{id.RoomV10, id.RoomV11} {
		t.Run("DendriteJoinsHearthRoom/v"+string(rv), func(t *testing.T) {
			created, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "public_chat", Name: "Hearth kitchen", RoomVersion: rv})
			if err != nil {
				t.Fatalf("hearth createRoom: %v", err)
			}
			room := created.RoomID
			if _, err := alice.SendText(ctx, room, "before dana"); err != nil {
				t.Fatal(err)
			}
			if _, err := dana.JoinRoom(ctx, room.String(), &mautrix.ReqJoinRoom{Via: []string{h.ServerName}}); err != nil {
				t.Fatalf("dendrite joins hearth room: %v", err)
			}
			var name event.RoomNameEventContent
			if err := dana.StateEvent(ctx, room, event.StateRoomName, "", &name); err != nil || name.Name != "Hearth kitchen" {
				t.Fatalf("room name on dendrite: %q, %v", name.Name, err)
			}
			waitFor(t, "hearth to see dana join", func() bool { return members(t, alice, room)[dana.UserID.String()] == "join" })
			chatBothWays(t, room, alice, dana)
		})
	}

	t.Run("HearthInvitesDendriteUser", func(t *testing.T) {
		created, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "private_chat", Name: "Family", RoomVersion: id.RoomV10})
		if err != nil {
			t.Fatal(err)
		}
		room := created.RoomID
		if _, err := alice.InviteUser(ctx, room, &mautrix.ReqInviteUser{UserID: dana.UserID}); err != nil {
			t.Fatalf("invite dendrite user: %v", err)
		}
		waitFor(t, "dana's invite in dendrite sync", func() bool {
			resp, err := dana.SyncRequest(ctx, 0, "", "", false, event.PresenceOnline)
			if err != nil {
				return false
			}
			_, ok := resp.Rooms.Invite[room]
			return ok
		})
		if _, err := dana.JoinRoomByID(ctx, room); err != nil {
			t.Fatalf("dendrite user joins after invite: %v", err)
		}
		waitFor(t, "hearth to see dana join", func() bool { return members(t, alice, room)[dana.UserID.String()] == "join" })
		chatBothWays(t, room, alice, dana)
	})

	t.Run("DendriteInvitesHearthUser", func(t *testing.T) {
		created, err := dana.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "private_chat", Name: "Dendrite den"})
		if err != nil {
			t.Fatal(err)
		}
		room := created.RoomID
		if _, err := dana.InviteUser(ctx, room, &mautrix.ReqInviteUser{UserID: alice.UserID}); err != nil {
			t.Fatalf("invite hearth user: %v", err)
		}
		waitFor(t, "alice's invite in hearth sync", func() bool {
			resp, err := alice.SyncRequest(ctx, 0, "", "", false, event.PresenceOnline)
			if err != nil {
				return false
			}
			_, ok := resp.Rooms.Invite[room]
			return ok
		})
		if _, err := alice.JoinRoomByID(ctx, room); err != nil {
			t.Fatalf("hearth user joins after invite: %v", err)
		}
		waitFor(t, "dendrite to see alice join", func() bool { return members(t, dana, room)[alice.UserID.String()] == "join" })
		chatBothWays(t, room, alice, dana)
	})
}

// chatBothWays sends one message from each side and waits for each to show up in the other
// server's /messages.
func chatBothWays(t *testing.T, room id.RoomID, hearth, dendrite *mautrix.Client) {
	t.Helper()
	ctx := context.Background()
	if _, err := dendrite.SendText(ctx, room, "hello from dendrite"); err != nil {
		t.Fatalf("dendrite send: %v", err)
	}
	waitFor(t, "dendrite's message on hearth", func() bool { return contains(bodies(t, hearth, room), "hello from dendrite") })
	if _, err := hearth.SendText(ctx, room, "hello from hearth"); err != nil {
		t.Fatalf("hearth send: %v", err)
	}
	waitFor(t, "hearth's message on dendrite", func() bool { return contains(bodies(t, dendrite, room), "hello from hearth") })
}
