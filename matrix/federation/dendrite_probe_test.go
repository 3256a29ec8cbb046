package federation_test

import (
	"context"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/appliance/testserver"
)

func softWait(t *testing.T, what string, fn func() bool) bool {
	t.Helper()
	deadline := time.Now().Add(8 * time.Second)
	for time.Now().Before(deadline) {
		if fn() {
			return true
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Errorf("PROBE FAIL: %s", what)
	return false
}

func TestDendriteProbe(t *testing.T) {
	ca := testserver.NewCA(t)
	d := startDendrite(t, ca)
	h := testserver.Start(t, testserver.Federated(t, ca))
	ctx := context.Background()
	alice := h.Register(t, "alice", false)
	dana := d.register(t, "dana")

	// Hearth room joined by Dendrite via alias.
	created, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "public_chat", Name: "Kitchen", RoomAliasName: "kitchen", RoomVersion: id.RoomV10, Visibility: "public"})
	if err != nil {
		t.Fatal(err)
	}
	room := created.RoomID
	alice.SendText(ctx, room, "before dana")
	alias := id.RoomAlias("#kitchen:" + h.ServerName)
	if r, err := dana.ResolveAlias(ctx, alias); err != nil || r.RoomID != room {
		t.Errorf("PROBE FAIL: dendrite resolve hearth alias: %v %v", r, err)
	}
	if _, err := dana.JoinRoom(ctx, alias.String(), nil); err != nil {
		t.Errorf("PROBE FAIL: join by alias: %v", err)
		dana.JoinRoom(ctx, room.String(), &mautrix.ReqJoinRoom{Via: []string{h.ServerName}})
	}
	softWait(t, "dendrite sees history before join", func() bool { return contains(bodies(t, dana, room), "before dana") })
	// Public rooms across.
	if pr, err := dana.PublicRooms(ctx, &mautrix.ReqPublicRooms{Server: h.ServerName}); err != nil || len(pr.Chunk) == 0 {
		t.Errorf("PROBE FAIL: dendrite publicRooms of hearth: %+v %v", pr, err)
	}
	// Profile across.
	alice.SetDisplayName(ctx, "Alice H")
	if p, err := dana.GetProfile(ctx, alice.UserID); err != nil || p.DisplayName != "Alice H" {
		t.Errorf("PROBE FAIL: dendrite profile of hearth user: %+v %v", p, err)
	}
	dana.SetDisplayName(ctx, "Dana D")
	if p, err := alice.GetProfile(ctx, dana.UserID); err != nil || p.DisplayName != "Dana D" {
		t.Errorf("PROBE FAIL: hearth profile of dendrite user: %+v %v", p, err)
	}
	// Displayname membership state propagated.
	softWait(t, "hearth sees dana displayname in room", func() bool {
		var m event.MemberEventContent
		err := alice.StateEvent(ctx, room, event.StateMember, dana.UserID.String(), &m)
		return err == nil && m.Displayname == "Dana D"
	})
	// Typing both ways.
	as0, _ := alice.SyncRequest(ctx, 0, "", "", false, event.PresenceOnline)
	ds0, _ := dana.SyncRequest(ctx, 0, "", "", false, event.PresenceOnline)
	dana.UserTyping(ctx, room, true, 10*time.Second)
	softWait(t, "hearth sees dana typing", func() bool {
		resp, err := alice.SyncRequest(ctx, 0, as0.NextBatch, "", false, event.PresenceOnline)
		if err != nil {
			return false
		}
		jr := resp.Rooms.Join[room]
		if jr == nil {
			return false
		}
		for _, ev := range jr.Ephemeral.Events {
			if ev.Type == event.EphemeralEventTyping {
				for _, u := range ev.Content.AsTyping().UserIDs {
					if u == dana.UserID {
						return true
					}
				}
			}
		}
		return false
	})
	alice.UserTyping(ctx, room, true, 10*time.Second)
	softWait(t, "dendrite sees alice typing", func() bool {
		resp, err := dana.SyncRequest(ctx, 0, ds0.NextBatch, "", false, event.PresenceOnline)
		if err != nil {
			return false
		}
		jr := resp.Rooms.Join[room]
		if jr == nil {
			return false
		}
		for _, ev := range jr.Ephemeral.Events {
			if ev.Type == event.EphemeralEventTyping {
				for _, u := range ev.Content.AsTyping().UserIDs {
					if u == alice.UserID {
						return true
					}
				}
			}
		}
		return false
	})
	// Messages in /sync.
	resp, _ := alice.SendText(ctx, room, "sync me")
	softWait(t, "dendrite /sync has message", func() bool {
		s, err := dana.SyncRequest(ctx, 0, "", "", false, event.PresenceOnline)
		if err != nil {
			return false
		}
		jr := s.Rooms.Join[room]
		if jr == nil {
			return false
		}
		for _, ev := range jr.Timeline.Events {
			if ev.ID == resp.EventID {
				return true
			}
		}
		return false
	})
	// Receipts.
	dana.MarkRead(ctx, room, resp.EventID)
	softWait(t, "hearth sees dana receipt", func() bool {
		s, err := alice.SyncRequest(ctx, 0, as0.NextBatch, "", false, event.PresenceOnline)
		if err != nil {
			return false
		}
		jr := s.Rooms.Join[room]
		if jr == nil {
			return false
		}
		for _, ev := range jr.Ephemeral.Events {
			if ev.Type == event.EphemeralEventReceipt {
				if _, ok := (*ev.Content.AsReceipt())[resp.EventID]; ok {
					return true
				}
			}
		}
		return false
	})
	// Redaction from dendrite of its own message.
	dr, _ := dana.SendText(ctx, room, "to redact")
	softWait(t, "hearth has to-redact", func() bool { return contains(bodies(t, alice, room), "to redact") })
	dana.RedactEvent(ctx, room, dr.EventID)
	softWait(t, "hearth redacted", func() bool { return !contains(bodies(t, alice, room), "to redact") })
	// Device keys across.
	if kr, err := alice.QueryKeys(ctx, &mautrix.ReqQueryKeys{DeviceKeys: mautrix.DeviceKeysRequest{dana.UserID: {}}}); err != nil || len(kr.Failures) > 0 {
		t.Errorf("PROBE FAIL: hearth keys/query dendrite: %+v %v", kr, err)
	} else {
		t.Logf("keys query: %+v", kr.DeviceKeys)
	}
	if kr, err := dana.QueryKeys(ctx, &mautrix.ReqQueryKeys{DeviceKeys: mautrix.DeviceKeysRequest{alice.UserID: {}}}); err != nil || len(kr.Failures) > 0 {
		t.Errorf("PROBE FAIL: dendrite keys/query hearth: %+v %v", kr, err)
	}
	// Power levels: alice promotes dana, dana changes the topic.
	var pl event.PowerLevelsEventContent
	alice.StateEvent(ctx, room, event.StatePowerLevels, "", &pl)
	pl.SetUserLevel(dana.UserID, 50)
	if _, err := alice.SendStateEvent(ctx, room, event.StatePowerLevels, "", &pl); err != nil {
		t.Errorf("PROBE FAIL: pl: %v", err)
	}
	softWait(t, "dendrite topic change", func() bool {
		_, err := dana.SendStateEvent(ctx, room, event.StateTopic, "", &event.TopicEventContent{Topic: "from dana"})
		return err == nil
	})
	softWait(t, "hearth sees topic", func() bool {
		var tp event.TopicEventContent
		return alice.StateEvent(ctx, room, event.StateTopic, "", &tp) == nil && tp.Topic == "from dana"
	})
	// Kick dana from hearth; dendrite sees.
	if _, err := alice.KickUser(ctx, room, &mautrix.ReqKickUser{UserID: dana.UserID, Reason: "bye"}); err != nil {
		t.Errorf("PROBE FAIL: kick: %v", err)
	}
	softWait(t, "dendrite sees kick", func() bool { return members(t, dana, room)[dana.UserID.String()] == "leave" })

	// Dendrite room: Hearth joins, leaves; Dendrite sees leave.
	c2, err := dana.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "public_chat", RoomAliasName: "den"})
	if err != nil {
		t.Fatal(err)
	}
	dana.SendText(ctx, c2.RoomID, "before alice")
	alias2 := id.RoomAlias("#den:" + d.ServerName)
	if _, err := alice.JoinRoom(ctx, alias2.String(), nil); err != nil {
		t.Errorf("PROBE FAIL: hearth join dendrite alias: %v", err)
		alice.JoinRoom(ctx, c2.RoomID.String(), &mautrix.ReqJoinRoom{Via: []string{d.ServerName}})
	}
	softWait(t, "hearth sees history before join", func() bool { return contains(bodies(t, alice, c2.RoomID), "before alice") })
	if pr, err := alice.PublicRooms(ctx, &mautrix.ReqPublicRooms{Server: d.ServerName}); err != nil {
		t.Errorf("PROBE FAIL: hearth publicRooms of dendrite: %+v %v", pr, err)
	}
	if _, err := alice.LeaveRoom(ctx, c2.RoomID); err != nil {
		t.Errorf("PROBE FAIL: hearth leave dendrite room: %v", err)
	}
	softWait(t, "dendrite sees alice leave", func() bool { return members(t, dana, c2.RoomID)[alice.UserID.String()] == "leave" })
	// rejoin
	if _, err := alice.JoinRoom(ctx, c2.RoomID.String(), &mautrix.ReqJoinRoom{Via: []string{d.ServerName}}); err != nil {
		t.Errorf("PROBE FAIL: hearth rejoin: %v", err)
	}
	softWait(t, "dendrite sees alice rejoin", func() bool { return members(t, dana, c2.RoomID)[alice.UserID.String()] == "join" })
	// Hearth rejects a Dendrite invite.
	c3, _ := dana.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "private_chat", Invite: []id.UserID{alice.UserID}})
	softWait(t, "alice invite", func() bool {
		s, err := alice.SyncRequest(ctx, 0, "", "", false, event.PresenceOnline)
		if err != nil {
			return false
		}
		_, ok := s.Rooms.Invite[c3.RoomID]
		return ok
	})
	if _, err := alice.LeaveRoom(ctx, c3.RoomID); err != nil {
		t.Errorf("PROBE FAIL: reject dendrite invite: %v", err)
	}
	softWait(t, "dendrite sees rejection", func() bool { return members(t, dana, c3.RoomID)[alice.UserID.String()] == "leave" })
}
