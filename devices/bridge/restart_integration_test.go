package bridge_test

import (
	"context"
	"testing"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/appliance/config"
	"github.com/hearth-home/hearth/devices"
)

// TestBridgeRestart: a restart reuses the rooms, keeps the bot's device identity (crypto state
// in Badger) and invites admins made since the rooms were created.
func TestBridgeRestart(t *testing.T) {
	dir := t.TempDir()
	sameDir := func(c *config.Config) { c.DataDir = dir }
	ctx := context.Background()

	h := startHouse(t, sameDir)
	eventually(t, "the space", func() bool { return h.a.DeviceBridge().Space() != "" })
	alice := h.user(t, "alice", true) // made after the space: not invited to it
	ad := newFakeAdapter("test")
	if err := h.a.Devices().Add(ad); err != nil {
		t.Fatal(err)
	}
	sink := ad.waitSink(t)
	sink.Upsert(devices.Device{ID: "test:lamp", Name: "Study lamp", Kind: devices.Light, Area: "Study"})
	sink.Report("test:lamp", devices.State{Available: true, On: ptr(true)})
	var study id.RoomID
	eventually(t, "study room", func() bool { study = h.a.DeviceBridge().AreaRoom("study"); return study != "" })
	space := h.a.DeviceBridge().Space()
	bot := h.a.DeviceBridge().BotUserID()
	keysOf := func(cli *mautrix.Client) string {
		resp, err := cli.QueryKeys(ctx, &mautrix.ReqQueryKeys{DeviceKeys: mautrix.DeviceKeysRequest{bot: {}}})
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range resp.DeviceKeys[bot] {
			for k, v := range d.Keys {
				if k.String() == "ed25519:"+d.DeviceID.String() {
					return v
				}
			}
		}
		return ""
	}
	var key1 string
	eventually(t, "bot device keys", func() bool { key1 = keysOf(alice); return key1 != "" })
	if _, err := alice.JoinRoomByID(ctx, space); err == nil {
		t.Fatal("alice could join the space before being invited")
	}
	h.stop(t)

	h2 := startHouse(t, sameDir)
	ad2 := newFakeAdapter("test")
	if err := h2.a.Devices().Add(ad2); err != nil {
		t.Fatal(err)
	}
	sink2 := ad2.waitSink(t)
	sink2.Upsert(devices.Device{ID: "test:lamp", Name: "Study lamp", Kind: devices.Light, Area: "Study"})
	sink2.Report("test:lamp", devices.State{Available: true, On: ptr(false)})
	if got := h2.a.DeviceBridge().AreaRoom("study"); got != study {
		t.Fatalf("study room after restart %s, want %s", got, study)
	}
	if got := h2.a.DeviceBridge().Space(); got != space {
		t.Fatalf("space after restart %s, want %s", got, space)
	}
	alice2, err := mautrix.NewClient(h2.url, alice.UserID, alice.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	join(t, alice2, space) // invited now
	if k := keysOf(alice2); k != key1 {
		t.Fatalf("bot identity key changed across the restart: %s -> %s", key1, k)
	}
	join(t, alice2, study)
	eventually(t, "state after restart", func() bool {
		s, _ := deviceState(t, alice2, study, "test:lamp")["state"].(map[string]any)
		return s != nil && s["on"] == false
	})
}
