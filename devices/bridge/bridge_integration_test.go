package bridge_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/appliance/config"
	"github.com/hearth-home/hearth/devices"
	"github.com/hearth-home/hearth/devices/bridge"
)

func ptr[T any](v T) *T { return &v }

// TestBridgeRoomsStateAndCommands runs the whole Matrix side against a real appliance: the
// space and area rooms, virtual users with display names, state events, readings with the
// threshold, text and structured commands with threaded replies, and the permission rules.
func TestBridgeRoomsStateAndCommands(t *testing.T) {
	h := startHouse(t)
	ctx := context.Background()
	alice := h.user(t, "alice", true)
	bob := h.user(t, "bob", false)

	ad := newFakeAdapter("test")
	if err := h.a.Devices().Add(ad); err != nil {
		t.Fatal(err)
	}
	sink := ad.waitSink(t)
	sink.Upsert(devices.Device{ID: "test:ceiling", Name: "Kitchen ceiling", Kind: devices.Light, Adapter: "test", Area: "Kitchen", Caps: devices.Caps{Brightness: true}})
	sink.Report("test:ceiling", devices.State{Available: true, On: ptr(false), Brightness: ptr(10)})
	sink.Upsert(devices.Device{ID: "test:temp", Name: "Kitchen temperature", Kind: devices.Sensor, Adapter: "test", Area: "Kitchen", Unit: "°C", DeviceClass: "temperature"})
	sink.Report("test:temp", devices.State{Available: true, Value: ptr(21.0)})
	sink.Upsert(devices.Device{ID: "test:drone", Name: "Tello", Kind: devices.Drone, Adapter: "test"})
	sink.Report("test:drone", devices.State{Available: true})

	br := h.a.DeviceBridge()
	var kitchen, home id.RoomID
	eventually(t, "area rooms", func() bool {
		kitchen, home = br.AreaRoom("kitchen"), br.AreaRoom("")
		return kitchen != "" && home != ""
	})
	join(t, alice, kitchen)
	join(t, alice, home)

	// The space lists the area rooms as children.
	var child map[string]any
	if err := alice.StateEvent(ctx, br.Space(), event.StateSpaceChild, kitchen.String(), &child); err == nil {
		t.Log("space child readable by alice")
	}
	// Each device is a member with its name, and has a state event.
	ceilingUser := id.NewUserID(bridge.PuppetLocalpart("test:ceiling"), h.server)
	eventually(t, "ceiling state event", func() bool {
		st := deviceState(t, alice, kitchen, "test:ceiling")
		if st == nil {
			return false
		}
		s, _ := st["state"].(map[string]any)
		return s != nil && s["brightness"] == float64(10) && st["user_id"] == ceilingUser.String()
	})
	eventually(t, "ceiling member with display name", func() bool {
		m, err := alice.JoinedMembers(ctx, kitchen)
		if err != nil {
			return false
		}
		mem, ok := m.Joined[ceilingUser]
		return ok && mem.DisplayName == "Kitchen ceiling"
	})
	if deviceState(t, alice, home, "test:drone") == nil {
		eventually(t, "drone in the Home room", func() bool { return deviceState(t, alice, home, "test:drone") != nil })
	}

	// A text command in the room reaches the adapter and is answered in a thread.
	cmdEvt := sendText(t, alice, kitchen, "Kitchen Ceiling 50%")
	body, result := waitReply(t, alice, kitchen, cmdEvt)
	if !contains(body, "✓") || result["ok"] != true {
		t.Fatalf("reply %q %v", body, result)
	}
	if c := ad.commands(); len(c) != 1 || c[0].ID != "test:ceiling" || c[0].Cmd.Brightness == nil || *c[0].Cmd.Brightness != 50 {
		t.Fatalf("commands %+v", c)
	}
	// The adapter's report updates the state event and posts a reading.
	sink.Report("test:ceiling", devices.State{Available: true, On: ptr(true), Brightness: ptr(50)})
	eventually(t, "state 50%", func() bool {
		s, _ := deviceState(t, alice, kitchen, "test:ceiling")["state"].(map[string]any)
		return s != nil && s["brightness"] == float64(50) && s["on"] == true
	})
	eventually(t, "reading notice", func() bool { return len(notices(t, alice, kitchen, "test:ceiling")) == 1 })

	// An impossible command gets a clear error, and nothing is sent.
	errEvt := sendText(t, alice, kitchen, "kitchen temperature on")
	if body, _ := waitReply(t, alice, kitchen, errEvt); !contains(body, "sensor") {
		t.Fatalf("error reply %q", body)
	}

	// The structured command event.
	resp, err := alice.SendMessageEvent(ctx, kitchen, event.Type{Type: bridge.CommandType, Class: event.MessageEventType},
		map[string]any{"device": "test:ceiling", "set": map[string]any{"on": false}})
	if err != nil {
		t.Fatal(err)
	}
	if _, result := waitReply(t, alice, kitchen, resp.EventID); result["ok"] != true {
		t.Fatalf("structured result %v", result)
	}
	if c := ad.commands(); len(c) != 2 || c[1].Cmd.On == nil || *c[1].Cmd.On {
		t.Fatalf("commands %+v", c)
	}

	// Bob, at power level 0, is refused.
	if _, err := alice.InviteUser(ctx, kitchen, &mautrix.ReqInviteUser{UserID: bob.UserID}); err != nil {
		t.Fatal(err)
	}
	join(t, bob, kitchen)
	bobEvt := sendText(t, bob, kitchen, "kitchen ceiling on")
	if body, result := waitReply(t, alice, kitchen, bobEvt); !contains(body, "power level 50") || result["ok"] != false {
		t.Fatalf("bob's reply %q %v", body, result)
	}
	// A remote user is refused whatever their power level. Without federation no remote
	// user can join, so the event is handed to the bridge directly (export_test.go), as a
	// transaction would deliver it.
	remote := &event.Event{ID: "$remote1", RoomID: kitchen, Sender: "@eve:elsewhere.example", Type: event.EventMessage,
		Content: event.Content{VeryRaw: json.RawMessage(`{"msgtype":"m.text","body":"kitchen ceiling on"}`),
			Parsed: &event.MessageEventContent{MsgType: event.MsgText, Body: "kitchen ceiling on"}}}
	br.HandleEvent(ctx, remote)
	if c := ad.commands(); len(c) != 2 {
		t.Fatalf("refused users' commands reached the adapter: %+v", c)
	}
	refusal := false
	eventually(t, "remote refusal", func() bool {
		resp, err := alice.Messages(ctx, kitchen, "", "", mautrix.DirectionBackward, nil, 30)
		if err != nil {
			return false
		}
		for _, e := range resp.Chunk {
			if contains(string(e.Content.VeryRaw), "only users of this server") {
				refusal = true
			}
		}
		return refusal
	})

	// Drone takeoff waits for "confirm".
	takeoff := sendText(t, alice, home, "drone takeoff")
	if body, _ := waitReply(t, alice, home, takeoff); !contains(body, "confirm") {
		t.Fatalf("takeoff reply %q", body)
	}
	if c := ad.commands(); len(c) != 2 {
		t.Fatalf("takeoff ran before confirmation: %+v", c)
	}
	conf := sendText(t, alice, home, "confirm")
	if body, _ := waitReply(t, alice, home, conf); !contains(body, "takeoff") {
		t.Fatalf("confirm reply %q", body)
	}
	if c := ad.commands(); len(c) != 3 || c[2].Cmd.Action != "takeoff!" || c[2].ID != "test:drone" {
		t.Fatalf("commands %+v", c)
	}

	// An adapter may ask for confirmation itself (the drone adapter does for risky actions).
	flip := sendText(t, alice, home, "!drone flip")
	if body, _ := waitReply(t, alice, home, flip); !contains(body, "Flip the drone?") {
		t.Fatalf("flip reply %q", body)
	}
	waitReply(t, alice, home, sendText(t, alice, home, "yes"))
	if c := ad.commands(); len(c) != 4 || c[3].Cmd.Action != "flip!" {
		t.Fatalf("commands %+v", c)
	}

	// help and status answer anyone.
	if body, _ := waitReply(t, alice, kitchen, sendText(t, bob, kitchen, "status")); !contains(body, "Kitchen temperature: 21 °C") {
		t.Fatalf("status %q", body)
	}
}

// TestBridgeReadingThresholdAndCoalescing: readings below the delta are not posted; a burst
// within the interval becomes one post carrying the latest value.
func TestBridgeReadingThresholdAndCoalescing(t *testing.T) {
	h := startHouse(t, func(c *config.Config) {
		c.Devices.MinInterval, c.Devices.MinDelta, c.Devices.StateInterval = time.Second, 0.5, 2*time.Second
	})
	alice := h.user(t, "alice", true)
	ad := newFakeAdapter("test")
	if err := h.a.Devices().Add(ad); err != nil {
		t.Fatal(err)
	}
	sink := ad.waitSink(t)
	sink.Upsert(devices.Device{ID: "test:t", Name: "Hall temperature", Kind: devices.Sensor, Area: "Hall", Unit: "°C"})
	sink.Report("test:t", devices.State{Available: true, Value: ptr(20.0)})
	br := h.a.DeviceBridge()
	var hall id.RoomID
	eventually(t, "hall room", func() bool { hall = br.AreaRoom("hall"); return hall != "" })
	join(t, alice, hall)
	eventually(t, "initial state", func() bool { return deviceState(t, alice, hall, "test:t") != nil })

	time.Sleep(1100 * time.Millisecond)                                     // the interval since the first post is over
	sink.Report("test:t", devices.State{Available: true, Value: ptr(20.3)}) // below the delta
	time.Sleep(300 * time.Millisecond)
	if n := notices(t, alice, hall, "test:t"); len(n) != 0 {
		t.Fatalf("a change below the delta was posted: %v", n)
	}
	// A burst: 50 reports within 250 ms, each far above the delta.
	for i := range 50 {
		sink.Report("test:t", devices.State{Available: true, Value: ptr(25.0 + float64(i))})
		time.Sleep(5 * time.Millisecond)
	}
	eventually(t, "the burst's last value", func() bool {
		n := notices(t, alice, hall, "test:t")
		if len(n) == 0 {
			return false
		}
		r := n[len(n)-1]["org.hearth.device.reading"].(map[string]any)
		return r["state"].(map[string]any)["value"] == float64(74)
	})
	time.Sleep(1200 * time.Millisecond)
	if n := notices(t, alice, hall, "test:t"); len(n) > 2 {
		t.Fatalf("the burst made %d posts, want at most 2 (one at once, one after the interval)", len(n))
	}
	// The state event takes the sensor's number within the state interval.
	eventually(t, "state event with the last value", func() bool {
		s, _ := deviceState(t, alice, hall, "test:t")["state"].(map[string]any)
		return s != nil && s["value"] == float64(74)
	})
}
