package sync_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

// longPoll starts a /sync long-poll and returns the channel its answer arrives on.
func longPoll(cli *mautrix.Client, req mautrix.ReqSync) <-chan *mautrix.RespSync {
	out := make(chan *mautrix.RespSync, 1)
	go func() {
		r, err := cli.FullSyncRequest(context.Background(), req)
		if err != nil {
			r = nil
		}
		out <- r
	}()
	return out
}

func await(t *testing.T, ch <-chan *mautrix.RespSync) *mautrix.RespSync {
	t.Helper()
	select {
	case r := <-ch:
		if r == nil {
			t.Fatal("long-poll failed")
		}
		return r
	case <-time.After(25 * time.Second):
		t.Fatal("long-poll never returned")
	}
	return nil
}

// A parked /sync woken by changes its filter drops looks only at what arrived after its last
// look (service.go), and still answers exactly as a sync over the whole window would: the
// event it waits for, the to-device message that arrives after empty wake-ups (delivered once,
// then acknowledged), and nothing lost for a client that reads the same window unfiltered.
func TestParkedSyncWokenByFilteredChanges(t *testing.T) {
	_, alice, bob, quiet := setupPair(t)
	busy, err := alice.CreateRoom(ctx(t), &mautrix.ReqCreateRoom{Preset: "public_chat", Name: "busy"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.JoinRoomByID(ctx(t), busy.RoomID); err != nil {
		t.Fatal(err)
	}
	first := mustSync(t, bob, mautrix.ReqSync{})
	onlyQuiet := fmt.Sprintf(`{"room":{"rooms":[%q]}}`, quiet)

	ch := longPoll(bob, mautrix.ReqSync{Since: first.NextBatch, Timeout: 20000, FilterID: onlyQuiet})
	time.Sleep(300 * time.Millisecond)
	for i := range 5 { // each wakes bob's long-poll and builds nothing
		if _, err := alice.SendText(ctx(t), busy.RoomID, fmt.Sprintf("noise %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(100 * time.Millisecond)
	if _, err := alice.SendText(ctx(t), quiet, "signal"); err != nil {
		t.Fatal(err)
	}
	r := await(t, ch)
	if _, ok := r.Rooms.Join[busy.RoomID]; ok || len(r.Rooms.Join) != 1 {
		t.Fatalf("filtered sync returned rooms %v", r.Rooms.Join)
	}
	if got := timelineBodies(r.Rooms.Join[quiet]); len(got) != 1 || got[0] != "signal" {
		t.Fatalf("woken sync timeline = %v", got)
	}
	all := mustSync(t, bob, mautrix.ReqSync{Since: first.NextBatch})
	if got := timelineBodies(all.Rooms.Join[busy.RoomID]); len(got) != 5 || got[0] != "noise 0" || got[4] != "noise 4" {
		t.Fatalf("unfiltered sync over the same window: busy room timeline = %v", got)
	}
	if got := timelineBodies(all.Rooms.Join[quiet]); len(got) != 1 {
		t.Fatalf("unfiltered sync over the same window: quiet room timeline = %v", got)
	}

	// A to-device message after empty wake-ups.
	ch = longPoll(bob, mautrix.ReqSync{Since: r.NextBatch, Timeout: 20000, FilterID: onlyQuiet})
	time.Sleep(300 * time.Millisecond)
	for i := range 3 {
		if _, err := alice.SendText(ctx(t), busy.RoomID, fmt.Sprintf("more noise %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(100 * time.Millisecond)
	msg := &mautrix.ReqSendToDevice{Messages: map[id.UserID]map[id.DeviceID]*event.Content{
		bob.UserID: {bob.DeviceID: {Raw: map[string]any{"n": 1}}}}}
	if _, err := alice.SendToDevice(ctx(t), event.Type{Type: "m.test", Class: event.ToDeviceEventType}, msg); err != nil {
		t.Fatal(err)
	}
	r2 := await(t, ch)
	if len(r2.ToDevice.Events) != 1 || len(r2.Rooms.Join) != 0 {
		t.Fatalf("woken by a to-device message: to_device %d, rooms %v", len(r2.ToDevice.Events), r2.Rooms.Join)
	}
	if again := mustSync(t, bob, mautrix.ReqSync{Since: r2.NextBatch, FilterID: onlyQuiet}); len(again.ToDevice.Events) != 0 {
		t.Fatalf("acknowledged to-device message delivered again: %d", len(again.ToDevice.Events))
	}
}
