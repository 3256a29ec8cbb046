package federation_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/appliance/testserver"
)

// Interop with Dendrite v0.13.8 on loopback: a real Dendrite monolith (SQLite, its HTTPS
// federation listener with a certificate from the test CA) and a real Hearth appliance join each
// other's rooms and exchange messages, each side read through its own client API. One Dendrite
// and one Hearth serve all subtests, each in its own rooms, to keep the run short.

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
		created, err := dana.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "public_chat", Name: "Dendrite lounge", RoomAliasName: "lounge"})
		if err != nil {
			t.Fatalf("dendrite createRoom: %v", err)
		}
		room := created.RoomID
		if _, err := dana.SendText(ctx, room, "before alice"); err != nil {
			t.Fatal(err)
		}
		// By alias: Hearth asks Dendrite's directory over federation, then joins through it.
		joined, err := alice.JoinRoom(ctx, "#lounge:"+d.ServerName, nil)
		if err != nil {
			t.Fatalf("hearth joins dendrite room by alias: %v", err)
		}
		if joined.RoomID != room {
			t.Fatalf("alias resolved to %s, want %s", joined.RoomID, room)
		}
		var name event.RoomNameEventContent
		if err := alice.StateEvent(ctx, room, event.StateRoomName, "", &name); err != nil || name.Name != "Dendrite lounge" {
			t.Fatalf("room name on hearth: %q, %v", name.Name, err)
		}
		waitFor(t, "dendrite to see alice join", func() bool { return members(t, dana, room)[alice.UserID.String()] == "join" })
		// History from before the join comes to Hearth by backfill from Dendrite.
		waitFor(t, "dendrite's earlier message on hearth", func() bool { return contains(bodies(t, alice, room), "before alice") })
		dChatBothWays(t, room, alice, dana)
	})

	// Dendrite v0.13.8 knows room versions up to 11 (and cannot parse v12's room IDs); Hearth's
	// default is 12, so these rooms name one Dendrite can join.
	for _, rv := range []id.RoomVersion{id.RoomV10, id.RoomV11} {
		t.Run("DendriteJoinsHearthRoom/v"+string(rv), func(t *testing.T) {
			alias := "kitchen" + string(rv)
			created, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "public_chat", Name: "Hearth kitchen", RoomVersion: rv, RoomAliasName: alias, Visibility: "public"})
			if err != nil {
				t.Fatalf("hearth createRoom: %v", err)
			}
			room := created.RoomID
			if _, err := alice.SendText(ctx, room, "before dana"); err != nil {
				t.Fatal(err)
			}
			// Dendrite reads Hearth's alias directory and published room list over federation.
			full := id.RoomAlias("#" + alias + ":" + h.ServerName)
			if r, err := dana.ResolveAlias(ctx, full); err != nil || r.RoomID != room {
				t.Fatalf("dendrite resolves hearth alias: %+v, %v", r, err)
			}
			pub, err := dana.PublicRooms(ctx, &mautrix.ReqPublicRooms{Server: h.ServerName})
			if err != nil {
				t.Fatalf("dendrite lists hearth's public rooms: %v", err)
			}
			listed := false
			for _, r := range pub.Chunk {
				listed = listed || r.RoomID == room
			}
			if !listed {
				t.Fatalf("hearth's public room %s missing from the list dendrite got: %+v", room, pub.Chunk)
			}
			if _, err := dana.JoinRoom(ctx, full.String(), nil); err != nil {
				t.Fatalf("dendrite joins hearth room: %v", err)
			}
			var name event.RoomNameEventContent
			if err := dana.StateEvent(ctx, room, event.StateRoomName, "", &name); err != nil || name.Name != "Hearth kitchen" {
				t.Fatalf("room name on dendrite: %q, %v", name.Name, err)
			}
			waitFor(t, "hearth to see dana join", func() bool { return members(t, alice, room)[dana.UserID.String()] == "join" })
			// Dendrite backfills the history from before its join from Hearth.
			waitFor(t, "hearth's earlier message on dendrite", func() bool { return contains(bodies(t, dana, room), "before dana") })
			dChatBothWays(t, room, alice, dana)
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
		waitFor(t, "dana's invite in dendrite sync", func() bool { return dInvited(t, dana, room) })
		if _, err := dana.JoinRoomByID(ctx, room); err != nil {
			t.Fatalf("dendrite user joins after invite: %v", err)
		}
		waitFor(t, "hearth to see dana join", func() bool { return members(t, alice, room)[dana.UserID.String()] == "join" })
		dChatBothWays(t, room, alice, dana)
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
		waitFor(t, "alice's invite in hearth sync", func() bool { return dInvited(t, alice, room) })
		if _, err := alice.JoinRoomByID(ctx, room); err != nil {
			t.Fatalf("hearth user joins after invite: %v", err)
		}
		waitFor(t, "dendrite to see alice join", func() bool { return members(t, dana, room)[alice.UserID.String()] == "join" })
		dChatBothWays(t, room, alice, dana)
	})

	t.Run("HearthRejectsDendriteInvite", func(t *testing.T) {
		created, err := dana.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "private_chat", Invite: []id.UserID{alice.UserID}})
		if err != nil {
			t.Fatal(err)
		}
		room := created.RoomID
		waitFor(t, "alice's invite in hearth sync", func() bool { return dInvited(t, alice, room) })
		if _, err := alice.LeaveRoom(ctx, room); err != nil {
			t.Fatalf("reject dendrite invite: %v", err)
		}
		waitFor(t, "dendrite to see the rejection", func() bool { return members(t, dana, room)[alice.UserID.String()] == "leave" })
	})

	t.Run("EphemeralAndModeration", func(t *testing.T) {
		room := dHearthRoomWithDana(t, alice, dana, h.ServerName)
		aliceSince, danaSince := dSyncSince(t, alice, ""), dSyncSince(t, dana, "")
		if aliceSince == nil || danaSince == nil {
			t.Fatal("initial sync failed")
		}

		// Typing both ways (m.typing EDUs).
		if _, err := dana.UserTyping(ctx, room, true, 20*time.Second); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "dana typing on hearth", func() bool { return dTypingIn(t, alice, aliceSince.NextBatch, room, dana.UserID) })
		if _, err := alice.UserTyping(ctx, room, true, 20*time.Second); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "alice typing on dendrite", func() bool { return dTypingIn(t, dana, danaSince.NextBatch, room, alice.UserID) })

		// Read receipts both ways (m.receipt EDUs).
		fromAlice, err := alice.SendText(ctx, room, "read me, dana")
		if err != nil {
			t.Fatal(err)
		}
		fromDana, err := dana.SendText(ctx, room, "read me, alice")
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, "alice's message on dendrite", func() bool { return contains(bodies(t, dana, room), "read me, dana") })
		waitFor(t, "dana's message on hearth", func() bool { return contains(bodies(t, alice, room), "read me, alice") })
		if err := dana.MarkRead(ctx, room, fromAlice.EventID); err != nil {
			t.Fatal(err)
		}
		if err := alice.MarkRead(ctx, room, fromDana.EventID); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "dana's receipt on hearth", func() bool {
			return dReadReceiptIn(t, alice, aliceSince.NextBatch, room, fromAlice.EventID, dana.UserID)
		})
		waitFor(t, "alice's receipt on dendrite", func() bool {
			return dReadReceiptIn(t, dana, danaSince.NextBatch, room, fromDana.EventID, alice.UserID)
		})

		// Dendrite's redaction of its own message reaches Hearth.
		if _, err := dana.RedactEvent(ctx, room, fromDana.EventID); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the redaction on hearth", func() bool { return !contains(bodies(t, alice, room), "read me, alice") })

		// Hearth raises Dana's power level; Dendrite accepts it and Dana may then set the topic.
		var pl event.PowerLevelsEventContent
		if err := alice.StateEvent(ctx, room, event.StatePowerLevels, "", &pl); err != nil {
			t.Fatal(err)
		}
		pl.SetUserLevel(dana.UserID, 50)
		if _, err := alice.SendStateEvent(ctx, room, event.StatePowerLevels, "", &pl); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "dana's new power level on dendrite", func() bool {
			var got event.PowerLevelsEventContent
			return dana.StateEvent(ctx, room, event.StatePowerLevels, "", &got) == nil && got.GetUserLevel(dana.UserID) == 50
		})
		if _, err := dana.SendStateEvent(ctx, room, event.StateTopic, "", &event.TopicEventContent{Topic: "set on dendrite"}); err != nil {
			t.Fatalf("dana sets the topic: %v", err)
		}
		waitFor(t, "the topic on hearth", func() bool {
			var tp event.TopicEventContent
			return alice.StateEvent(ctx, room, event.StateTopic, "", &tp) == nil && tp.Topic == "set on dendrite"
		})

		// A kick by Hearth reaches the kicked user's server, which is no longer in the room.
		if _, err := alice.KickUser(ctx, room, &mautrix.ReqKickUser{UserID: dana.UserID, Reason: "bye"}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "dendrite to see dana kicked", func() bool { return members(t, dana, room)[dana.UserID.String()] == "leave" })
	})

	t.Run("LeaveAndRejoinDendriteRoom", func(t *testing.T) {
		created, err := dana.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "public_chat"})
		if err != nil {
			t.Fatal(err)
		}
		room := created.RoomID
		via := &mautrix.ReqJoinRoom{Via: []string{d.ServerName}}
		if _, err := alice.JoinRoom(ctx, room.String(), via); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "dendrite to see alice join", func() bool { return members(t, dana, room)[alice.UserID.String()] == "join" })
		if _, err := alice.LeaveRoom(ctx, room); err != nil {
			t.Fatalf("hearth user leaves dendrite room: %v", err)
		}
		waitFor(t, "dendrite to see alice leave", func() bool { return members(t, dana, room)[alice.UserID.String()] == "leave" })
		if _, err := alice.JoinRoom(ctx, room.String(), via); err != nil {
			t.Fatalf("hearth user rejoins: %v", err)
		}
		waitFor(t, "dendrite to see alice rejoin", func() bool { return members(t, dana, room)[alice.UserID.String()] == "join" })
		dChatBothWays(t, room, alice, dana)
	})

	// Older room versions both ways: different event ID formats (v3 hashes, v4+ URL-safe
	// hashes), redaction and auth rules. Hearth does not serve v1 and v2.
	for _, rv := range []id.RoomVersion{"5", "6", "9"} {
		t.Run("OlderRoomVersion/v"+string(rv), func(t *testing.T) {
			onDendrite, err := dana.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "public_chat", RoomVersion: rv})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := alice.JoinRoom(ctx, onDendrite.RoomID.String(), &mautrix.ReqJoinRoom{Via: []string{d.ServerName}}); err != nil {
				t.Fatalf("hearth joins dendrite v%s room: %v", rv, err)
			}
			dChatBothWays(t, onDendrite.RoomID, alice, dana)
			onHearth, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "public_chat", RoomVersion: rv})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := dana.JoinRoom(ctx, onHearth.RoomID.String(), &mautrix.ReqJoinRoom{Via: []string{h.ServerName}}); err != nil {
				t.Fatalf("dendrite joins hearth v%s room: %v", rv, err)
			}
			dChatBothWays(t, onHearth.RoomID, alice, dana)
		})
	}

	t.Run("DendriteFetchesHearthMedia", func(t *testing.T) {
		content := []byte("a photo from the hearth")
		up, err := alice.UploadBytes(ctx, content, "text/plain")
		if err != nil {
			t.Fatal(err)
		}
		// Dendrite v0.13.8 fetches over federation with the unauthenticated
		// /_matrix/media/v3/download, whichever client endpoint asked.
		for _, path := range []string{"/_matrix/client/v1/media/download/", "/_matrix/media/v3/download/"} {
			status, body := dGet(t, d.URL+path+up.ContentURI.Homeserver+"/"+up.ContentURI.FileID, dana.AccessToken)
			if status != http.StatusOK || !bytes.Equal(body, content) {
				t.Fatalf("dendrite %s of hearth media: %d %q", path, status, body)
			}
		}
	})

	t.Run("HearthFetchesDendriteMedia", func(t *testing.T) {
		content := []byte("a photo from the den")
		up, err := dana.UploadBytes(ctx, content, "text/plain")
		if err != nil {
			t.Fatal(err)
		}
		// Dendrite v0.13.8 predates the authenticated federation media endpoint, so Hearth has
		// to fall back to the legacy download on Dendrite's federation listener.
		status, body := dGet(t, h.URL+"/_matrix/client/v1/media/download/"+up.ContentURI.Homeserver+"/"+up.ContentURI.FileID, alice.AccessToken)
		if status != http.StatusOK || !bytes.Equal(body, content) {
			t.Fatalf("hearth download of dendrite media: %d %q", status, body)
		}
	})

	t.Run("ProfilesAcross", func(t *testing.T) {
		if err := alice.SetDisplayName(ctx, "Alice of the Hearth"); err != nil {
			t.Fatal(err)
		}
		if err := dana.SetDisplayName(ctx, "Dana of the Den"); err != nil {
			t.Fatal(err)
		}
		// Each server answers for its users through GET /_matrix/federation/v1/query/profile.
		if p, err := dana.GetProfile(ctx, alice.UserID); err != nil || p.DisplayName != "Alice of the Hearth" {
			t.Fatalf("dendrite reads hearth profile: %+v, %v", p, err)
		}
		if p, err := alice.GetProfile(ctx, dana.UserID); err != nil || p.DisplayName != "Dana of the Den" {
			t.Fatalf("hearth reads dendrite profile: %+v, %v", p, err)
		}
	})

	t.Run("DeviceKeysQueryAcross", func(t *testing.T) {
		for _, q := range []struct {
			from *mautrix.Client
			of   id.UserID
		}{{alice, dana.UserID}, {dana, alice.UserID}} {
			resp, err := q.from.QueryKeys(ctx, &mautrix.ReqQueryKeys{DeviceKeys: mautrix.DeviceKeysRequest{q.of: {}}})
			if err != nil {
				t.Fatalf("%s queries keys of %s: %v", q.from.UserID, q.of, err)
			}
			if len(resp.Failures) > 0 {
				t.Fatalf("%s queries keys of %s: failures %v", q.from.UserID, q.of, resp.Failures)
			}
			if _, ok := resp.DeviceKeys[q.of]; !ok {
				t.Fatalf("%s queries keys of %s: no entry for the user in %+v", q.from.UserID, q.of, resp.DeviceKeys)
			}
		}
	})

	// Both sides change the room name and talk at once, so the room DAG forks and each server
	// resolves the conflicting state itself (state resolution v2): both must end on the same name
	// and hold every message.
	for _, host := range []string{"hearth", "dendrite"} {
		t.Run("ConcurrentStateConverges/"+host, func(t *testing.T) {
			var room id.RoomID
			owner, other := alice, dana
			if host == "hearth" {
				room = dHearthRoomWithDana(t, alice, dana, h.ServerName)
			} else {
				owner, other = dana, alice
				created, err := dana.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "public_chat"})
				if err != nil {
					t.Fatal(err)
				}
				room = created.RoomID
				if _, err := alice.JoinRoom(ctx, room.String(), &mautrix.ReqJoinRoom{Via: []string{d.ServerName}}); err != nil {
					t.Fatal(err)
				}
			}
			var pl event.PowerLevelsEventContent
			if err := owner.StateEvent(ctx, room, event.StatePowerLevels, "", &pl); err != nil {
				t.Fatal(err)
			}
			pl.SetUserLevel(other.UserID, 100)
			if _, err := owner.SendStateEvent(ctx, room, event.StatePowerLevels, "", &pl); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the raised power level on the other server", func() bool {
				var got event.PowerLevelsEventContent
				return other.StateEvent(ctx, room, event.StatePowerLevels, "", &got) == nil && got.GetUserLevel(other.UserID) == 100
			})
			const rounds = 6
			var wg sync.WaitGroup
			errs := make(chan error, 2*2*rounds)
			for _, c := range []*mautrix.Client{alice, dana} {
				wg.Add(1)
				go func(c *mautrix.Client) {
					defer wg.Done()
					for i := range rounds {
						name := &event.RoomNameEventContent{Name: fmt.Sprintf("%s %d", c.UserID.Homeserver(), i)}
						if _, err := c.SendStateEvent(ctx, room, event.StateRoomName, "", name); err != nil {
							errs <- err
						}
						if _, err := c.SendText(ctx, room, fmt.Sprintf("%s says %d", c.UserID, i)); err != nil {
							errs <- err
						}
					}
				}(c)
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatalf("concurrent send: %v", err)
			}
			waitFor(t, "every message on both servers", func() bool {
				onH, onD := bodies(t, alice, room), bodies(t, dana, room)
				for i := range rounds {
					for _, u := range []id.UserID{alice.UserID, dana.UserID} {
						m := fmt.Sprintf("%s says %d", u, i)
						if !contains(onH, m) || !contains(onD, m) {
							return false
						}
					}
				}
				return true
			})
			var onH, onD event.RoomNameEventContent
			waitFor(t, "both servers to resolve the same room name", func() bool {
				return alice.StateEvent(ctx, room, event.StateRoomName, "", &onH) == nil &&
					dana.StateEvent(ctx, room, event.StateRoomName, "", &onD) == nil && onH.Name == onD.Name
			})
		})
	}

	// Last, because it restarts Hearth: what Dendrite sends while Hearth is down arrives after
	// Hearth comes back (Dendrite's queue retries; Hearth's next transaction marks it alive).
	t.Run("HearthCatchesUpAfterRestart", func(t *testing.T) {
		room := dHearthRoomWithDana(t, alice, dana, h.ServerName)
		h.Stop()
		for _, m := range []string{"while down 1", "while down 2", "while down 3"} {
			if _, err := dana.SendText(ctx, room, m); err != nil {
				t.Fatal(err)
			}
		}
		h.Restart(t) // same addresses and data; stopped at the end of this subtest
		if _, err := alice.SendText(ctx, room, "back up"); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "hearth's message after restart on dendrite", func() bool { return contains(bodies(t, dana, room), "back up") })
		waitFor(t, "what dendrite sent while hearth was down", func() bool {
			got := bodies(t, alice, room)
			return contains(got, "while down 1") && contains(got, "while down 2") && contains(got, "while down 3")
		})
	})
}

// dHearthRoomWithDana makes a v10 public room on Hearth and has the Dendrite user join it.
func dHearthRoomWithDana(t *testing.T, alice, dana *mautrix.Client, hearthName string) id.RoomID {
	t.Helper()
	ctx := context.Background()
	created, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "public_chat", RoomVersion: id.RoomV10})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dana.JoinRoom(ctx, created.RoomID.String(), &mautrix.ReqJoinRoom{Via: []string{hearthName}}); err != nil {
		t.Fatalf("dendrite joins hearth room: %v", err)
	}
	waitFor(t, "hearth to see dana join", func() bool { return members(t, alice, created.RoomID)[dana.UserID.String()] == "join" })
	return created.RoomID
}

// dInvited reports whether the room is among the client's invites in an initial /sync.
func dInvited(t *testing.T, c *mautrix.Client, room id.RoomID) bool {
	resp := dSyncSince(t, c, "")
	if resp == nil {
		return false
	}
	_, ok := resp.Rooms.Invite[room]
	return ok
}

// dChatBothWays sends one message from each side and waits for each to show up in the other
// server's /messages.
func dChatBothWays(t *testing.T, room id.RoomID, hearth, dendrite *mautrix.Client) {
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
