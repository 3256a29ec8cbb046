package bridge_test

import (
	"context"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/crypto"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/devices"
)

// e2eePeer is a user's client device with mautrix crypto, fed by explicit /sync calls.
type e2eePeer struct {
	t     *testing.T
	cli   *mautrix.Client
	mach  *crypto.OlmMachine
	state *mautrix.MemoryStateStore
	since string
	enc   []*event.Event // encrypted timeline events seen so far
}

func newE2EEPeer(t *testing.T, cli *mautrix.Client) *e2eePeer {
	t.Helper()
	ctx := context.Background()
	state := mautrix.NewMemoryStateStore().(*mautrix.MemoryStateStore)
	log := zerolog.Nop()
	mach := crypto.NewOlmMachine(cli, &log, crypto.NewMemoryStore(nil), state)
	if err := mach.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if err := mach.ShareKeys(ctx, 0); err != nil {
		t.Fatalf("upload keys: %v", err)
	}
	p := &e2eePeer{t: t, cli: cli, mach: mach, state: state}
	p.sync()
	return p
}

func (p *e2eePeer) sync() {
	p.t.Helper()
	ctx := context.Background()
	resp, err := p.cli.SyncRequest(ctx, 0, p.since, "", false, "")
	if err != nil {
		p.t.Fatalf("sync: %v", err)
	}
	for roomID, jr := range resp.Rooms.Join {
		for _, evt := range append(append([]*event.Event{}, jr.State.Events...), jr.Timeline.Events...) {
			evt.RoomID = roomID
			if evt.StateKey != nil {
				evt.Type.Class = event.StateEventType
			} else {
				evt.Type.Class = event.MessageEventType
			}
			_ = evt.Content.ParseRaw(evt.Type)
			if evt.StateKey != nil {
				mautrix.UpdateStateStore(ctx, p.state, evt)
			}
			if evt.Type == event.EventEncrypted {
				p.enc = append(p.enc, evt)
			}
		}
	}
	p.mach.ProcessSyncResponse(ctx, resp, p.since)
	p.since = resp.NextBatch
}

// TestBridgeEncryptedRoom: in an encrypted area room, a command encrypted by the user's
// mautrix-go client reaches the adapter and the bridge's reply comes back encrypted, in the
// command's thread.
func TestBridgeEncryptedRoom(t *testing.T) {
	h := startHouse(t)
	ctx := context.Background()
	alice := h.user(t, "alice", true)
	ad := newFakeAdapter("test")
	if err := h.a.Devices().Add(ad); err != nil {
		t.Fatal(err)
	}
	sink := ad.waitSink(t)
	sink.Upsert(devices.Device{ID: "test:den", Name: "Den lamp", Kind: devices.Light, Area: "Den"})
	sink.Report("test:den", devices.State{Available: true, On: ptr(false)})
	var den id.RoomID
	eventually(t, "den room", func() bool { den = h.a.DeviceBridge().AreaRoom("den"); return den != "" })
	join(t, alice, den)
	if _, err := alice.SendStateEvent(ctx, den, event.StateEncryption, "", &event.EncryptionEventContent{Algorithm: id.AlgorithmMegolmV1}); err != nil {
		t.Fatal(err)
	}
	peer := newE2EEPeer(t, alice)
	bot := h.a.DeviceBridge().BotUserID()
	// Wait until the bot's device keys are visible, so alice shares the room key with it.
	eventually(t, "bot device keys", func() bool {
		resp, err := alice.QueryKeys(ctx, &mautrix.ReqQueryKeys{DeviceKeys: mautrix.DeviceKeysRequest{bot: {}}})
		return err == nil && len(resp.DeviceKeys[bot]) > 0
	})
	members, err := alice.JoinedMembers(ctx, den)
	if err != nil {
		t.Fatal(err)
	}
	var users []id.UserID
	for u := range members.Joined {
		users = append(users, u)
	}
	if err := peer.mach.ShareGroupSession(ctx, den, users); err != nil {
		t.Fatal(err)
	}
	enc, err := peer.mach.EncryptMegolmEvent(ctx, den, event.EventMessage, &event.MessageEventContent{MsgType: event.MsgText, Body: "den lamp on"})
	if err != nil {
		t.Fatal(err)
	}
	sent, err := alice.SendMessageEvent(ctx, den, event.EventEncrypted, enc)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-ad.got:
	case <-time.After(20 * time.Second):
		t.Fatal("the encrypted command did not reach the adapter")
	}
	if c := ad.commands(); len(c) != 1 || c[0].Cmd.On == nil || !*c[0].Cmd.On {
		t.Fatalf("commands %+v", c)
	}
	// The reply is encrypted and decrypts to the result, in the command's thread.
	var reply *event.Event
	eventually(t, "an encrypted reply", func() bool {
		peer.sync()
		for _, evt := range peer.enc {
			if evt.Sender != bot {
				continue
			}
			dec, err := peer.mach.DecryptMegolmEvent(ctx, evt)
			if err != nil {
				continue
			}
			if rel := dec.Content.AsMessage().RelatesTo; rel != nil && rel.EventID == sent.EventID && rel.Type == event.RelThread {
				reply = dec
				return true
			}
		}
		return false
	})
	if body := reply.Content.AsMessage().Body; !contains(body, "✓ Den lamp: on") {
		t.Fatalf("reply body %q", body)
	}
	// Nothing in clear: every message the bot sent in the room after encryption was on is encrypted.
	msgs, err := alice.Messages(ctx, den, "", "", mautrix.DirectionBackward, nil, 50)
	if err != nil {
		t.Fatal(err)
	}
	for _, evt := range msgs.Chunk {
		if evt.Sender == bot && evt.Type == event.EventMessage {
			t.Fatalf("the bot sent a clear message in an encrypted room: %s", evt.Content.VeryRaw)
		}
	}
}
