//go:build goolm

package e2ee_test

import (
	"context"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/crypto"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

// peer is one client device with its Olm machine, fed by manual /sync calls.
type peer struct {
	t     *testing.T
	cli   *mautrix.Client
	mach  *crypto.OlmMachine
	state mautrix.StateStore
	since string
	// encrypted collects the m.room.encrypted timeline events seen so far, in order.
	encrypted []*event.Event
	last      *mautrix.RespSync
}

func newPeer(t *testing.T, cli *mautrix.Client) *peer {
	t.Helper()
	ctx := context.Background()
	state := mautrix.NewMemoryStateStore()
	log := zerolog.Nop()
	mach := crypto.NewOlmMachine(cli, &log, crypto.NewMemoryStore(nil), state.(crypto.StateStore))
	if err := mach.Load(ctx); err != nil {
		t.Fatalf("load olm machine: %v", err)
	}
	if err := mach.ShareKeys(ctx, 0); err != nil {
		t.Fatalf("%s: upload device and one-time keys: %v", cli.UserID, err)
	}
	p := &peer{t: t, cli: cli, mach: mach, state: state}
	p.sync()
	return p
}

// sync runs one /sync (no wait), updates the state store, collects encrypted events and hands
// the response to the Olm machine (to-device messages, device lists, one-time-key counts).
func (p *peer) sync() *mautrix.RespSync {
	p.t.Helper()
	ctx := context.Background()
	resp, err := p.cli.SyncRequest(ctx, 0, p.since, "", false, "")
	if err != nil {
		p.t.Fatalf("%s: sync: %v", p.cli.UserID, err)
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
				p.encrypted = append(p.encrypted, evt)
			}
		}
	}
	p.mach.ProcessSyncResponse(ctx, resp, p.since)
	p.since = resp.NextBatch
	p.last = resp
	return resp
}

// syncUntil syncs until cond holds for a response, for at most 15 s.
func (p *peer) syncUntil(what string, cond func(*mautrix.RespSync) bool) *mautrix.RespSync {
	p.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp := p.sync()
		if cond(resp) {
			return resp
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s: timed out waiting for %s", p.cli.UserID, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// decryptUntil syncs until an encrypted event with the given body decrypts, and returns it.
func (p *peer) decryptUntil(roomID id.RoomID, body string) *event.Event {
	p.t.Helper()
	ctx := context.Background()
	var found *event.Event
	var lastErr error
	p.syncUntil("a decryptable message "+body, func(*mautrix.RespSync) bool {
		for _, evt := range p.encrypted {
			if evt.RoomID != roomID {
				continue
			}
			dec, err := p.mach.DecryptMegolmEvent(ctx, evt)
			if err != nil {
				lastErr = err
				continue
			}
			if dec.Content.AsMessage().Body == body {
				found = dec
				return true
			}
		}
		return false
	})
	if found == nil {
		p.t.Fatalf("%s: no decryptable message %q: %v", p.cli.UserID, body, lastErr)
	}
	return found
}

// sendEncrypted shares a Megolm session with the room's members' devices (claiming their
// one-time keys and sending the room key over /sendToDevice) and sends an encrypted message.
func (p *peer) sendEncrypted(roomID id.RoomID, members []id.UserID, body string) (id.EventID, *event.EncryptedEventContent) {
	p.t.Helper()
	ctx := context.Background()
	if err := p.mach.ShareGroupSession(ctx, roomID, members); err != nil {
		p.t.Fatalf("%s: share group session: %v", p.cli.UserID, err)
	}
	enc, err := p.mach.EncryptMegolmEvent(ctx, roomID, event.EventMessage, &event.MessageEventContent{MsgType: event.MsgText, Body: body})
	if err != nil {
		p.t.Fatalf("%s: encrypt: %v", p.cli.UserID, err)
	}
	resp, err := p.cli.SendMessageEvent(ctx, roomID, event.EventEncrypted, enc)
	if err != nil {
		p.t.Fatalf("%s: send encrypted: %v", p.cli.UserID, err)
	}
	return resp.EventID, enc
}
