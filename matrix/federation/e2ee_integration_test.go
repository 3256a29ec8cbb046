package federation_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/crypto"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/appliance/config"
	"github.com/hearth-home/hearth/appliance/testserver"
)

// EDUs and end-to-end encryption across two Hearths: typing, receipts and to-device messages
// leave as EDUs; remote users' keys are queried and claimed from their server; device-list
// changes reach the other server's clients; two mautrix-go crypto clients (goolm, which the
// Makefile's GOFLAGS select) on different servers talk in an encrypted room.

// syncer runs /sync with a since token that moves forward.
type syncer struct {
	t     *testing.T
	cli   *mautrix.Client
	since string
}

func (s *syncer) once() *mautrix.RespSync {
	s.t.Helper()
	resp, err := s.cli.SyncRequest(context.Background(), 0, s.since, "", false, "")
	if err != nil {
		s.t.Fatalf("%s: sync: %v", s.cli.UserID, err)
	}
	s.since = resp.NextBatch
	return resp
}

// until syncs until cond holds for one response, for at most 20 s.
func (s *syncer) until(what string, cond func(*mautrix.RespSync) bool) *mautrix.RespSync {
	s.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp := s.once()
		if cond(resp) {
			return resp
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("%s: timed out waiting for %s", s.cli.UserID, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// ephemeral returns the raw contents of a room's ephemeral events of one type in a response.
func ephemeral(resp *mautrix.RespSync, room id.RoomID, typ string) []json.RawMessage {
	jr, ok := resp.Rooms.Join[room]
	if !ok {
		return nil
	}
	var out []json.RawMessage
	for _, ev := range jr.Ephemeral.Events {
		if ev.Type.Type == typ {
			out = append(out, ev.Content.VeryRaw)
		}
	}
	return out
}

func typers(resp *mautrix.RespSync, room id.RoomID) (users []string, seen bool) {
	for _, raw := range ephemeral(resp, room, "m.typing") {
		var c struct {
			UserIDs []string `json:"user_ids"`
		}
		_ = json.Unmarshal(raw, &c)
		users, seen = c.UserIDs, true
	}
	return users, seen
}

func TestFederationTypingAndReceipts(t *testing.T) {
	a, b, _ := fedPair(t)
	ctx := context.Background()
	alice, bob, room := joinedPair(t, a, b)
	sent, err := alice.SendText(ctx, room, "read me")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "alice's message on b", func() bool { return contains(bodies(t, bob, room), "read me") })
	bs := &syncer{t: t, cli: bob}
	bs.once()

	// Typing on a shows on b, and so does stopping.
	if _, err := alice.UserTyping(ctx, room, true, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	bs.until("alice typing", func(r *mautrix.RespSync) bool {
		u, _ := typers(r, room)
		return slices.Contains(u, alice.UserID.String())
	})
	if _, err := alice.UserTyping(ctx, room, false, 0); err != nil {
		t.Fatal(err)
	}
	bs.until("alice no longer typing", func(r *mautrix.RespSync) bool {
		u, seen := typers(r, room)
		return seen && !slices.Contains(u, alice.UserID.String())
	})

	// Typing that times out on a stops on b as well, long before b's own 30 s timer: a
	// announces the expiry.
	if _, err := alice.UserTyping(ctx, room, true, time.Second); err != nil {
		t.Fatal(err)
	}
	bs.until("alice typing again", func(r *mautrix.RespSync) bool {
		u, _ := typers(r, room)
		return slices.Contains(u, alice.UserID.String())
	})
	start := time.Now()
	bs.until("alice's typing to time out", func(r *mautrix.RespSync) bool {
		u, seen := typers(r, room)
		return seen && !slices.Contains(u, alice.UserID.String())
	})
	if d := time.Since(start); d > 15*time.Second {
		t.Fatalf("typing stopped on b only after %v", d)
	}

	// A public read receipt on a shows on b.
	if err := alice.SendReceipt(ctx, room, sent.EventID, event.ReceiptTypeRead, nil); err != nil {
		t.Fatal(err)
	}
	bs.until("alice's read receipt", func(r *mautrix.RespSync) bool {
		for _, raw := range ephemeral(r, room, "m.receipt") {
			var c map[string]map[string]map[string]struct {
				TS int64 `json:"ts"`
			}
			_ = json.Unmarshal(raw, &c)
			if rr, ok := c[sent.EventID.String()]["m.read"][alice.UserID.String()]; ok && rr.TS > 0 {
				return true
			}
		}
		return false
	})

	// A private receipt stays on a.
	if err := alice.SendReceipt(ctx, room, sent.EventID, event.ReceiptTypeReadPrivate, nil); err != nil {
		t.Fatal(err)
	}
	time.Sleep(700 * time.Millisecond)
	if r := bs.once(); len(ephemeral(r, room, "m.receipt")) > 0 {
		t.Fatalf("a private receipt reached b: %s", ephemeral(r, room, "m.receipt")[0])
	}
}

func TestFederationToDevice(t *testing.T) {
	a, b, _ := fedPair(t)
	ctx := context.Background()
	alice := a.Register(t, "alice", false)
	bob := b.Register(t, "bob", false)
	bs := &syncer{t: t, cli: bob}
	bs.once()

	body := map[string]any{"messages": map[string]any{
		bob.UserID.String(): map[string]any{bob.DeviceID.String(): map[string]any{"n": 1, "text": "over the wire"}},
	}}
	url := alice.BuildClientURL("v3", "sendToDevice", "org.example.ping", "txn-1")
	// The same transaction twice: the second is a retry and must not be delivered again.
	for range 2 {
		if _, err := alice.MakeRequest(ctx, http.MethodPut, url, body, nil); err != nil {
			t.Fatalf("sendToDevice: %v", err)
		}
	}
	var got []*event.Event
	bs.until("the to-device message", func(r *mautrix.RespSync) bool {
		for _, ev := range r.ToDevice.Events {
			if ev.Type.Type == "org.example.ping" {
				got = append(got, ev)
			}
		}
		return len(got) > 0
	})
	if got[0].Sender != alice.UserID {
		t.Fatalf("sender %s, want %s", got[0].Sender, alice.UserID)
	}
	var c struct {
		N    int    `json:"n"`
		Text string `json:"text"`
	}
	if err := json.Unmarshal(got[0].Content.VeryRaw, &c); err != nil || c.N != 1 || c.Text != "over the wire" {
		t.Fatalf("content %s (%v)", got[0].Content.VeryRaw, err)
	}
	// No second copy arrives.
	time.Sleep(time.Second)
	for _, ev := range bs.once().ToDevice.Events {
		if ev.Type.Type == "org.example.ping" {
			got = append(got, ev)
		}
	}
	if len(got) != 1 {
		t.Fatalf("the retried message arrived %d times", len(got))
	}
}

// cryptoPeer is one device with mautrix's Olm machine, synced by hand.
type cryptoPeer struct {
	syncer
	mach      *crypto.OlmMachine
	state     mautrix.StateStore
	encrypted []*event.Event
}

func newCryptoPeer(t *testing.T, cli *mautrix.Client) *cryptoPeer {
	t.Helper()
	ctx := context.Background()
	state := mautrix.NewMemoryStateStore()
	log := zerolog.Nop()
	mach := crypto.NewOlmMachine(cli, &log, crypto.NewMemoryStore(nil), state.(crypto.StateStore))
	if err := mach.Load(ctx); err != nil {
		t.Fatalf("load olm machine: %v", err)
	}
	if err := mach.ShareKeys(ctx, 0); err != nil {
		t.Fatalf("%s: upload keys: %v", cli.UserID, err)
	}
	p := &cryptoPeer{syncer: syncer{t: t, cli: cli}, mach: mach, state: state}
	p.sync()
	return p
}

// sync runs one /sync and hands it to the state store and the Olm machine.
func (p *cryptoPeer) sync() *mautrix.RespSync {
	p.t.Helper()
	ctx := context.Background()
	since := p.since
	resp := p.once()
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
	p.mach.ProcessSyncResponse(ctx, resp, since)
	return resp
}

func (p *cryptoPeer) syncUntil(what string, cond func(*mautrix.RespSync) bool) {
	p.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond(p.sync()) {
		if time.Now().After(deadline) {
			p.t.Fatalf("%s: timed out waiting for %s", p.cli.UserID, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (p *cryptoPeer) sendEncrypted(room id.RoomID, members []id.UserID, body string) id.EventID {
	p.t.Helper()
	ctx := context.Background()
	if err := p.mach.ShareGroupSession(ctx, room, members); err != nil {
		p.t.Fatalf("%s: share group session: %v", p.cli.UserID, err)
	}
	enc, err := p.mach.EncryptMegolmEvent(ctx, room, event.EventMessage, &event.MessageEventContent{MsgType: event.MsgText, Body: body})
	if err != nil {
		p.t.Fatalf("%s: encrypt: %v", p.cli.UserID, err)
	}
	resp, err := p.cli.SendMessageEvent(ctx, room, event.EventEncrypted, enc)
	if err != nil {
		p.t.Fatalf("%s: send encrypted: %v", p.cli.UserID, err)
	}
	return resp.EventID
}

// decryptUntil syncs until an encrypted event with the body decrypts and returns it.
func (p *cryptoPeer) decryptUntil(room id.RoomID, body string) *event.Event {
	p.t.Helper()
	ctx := context.Background()
	var found *event.Event
	var lastErr error
	deadline := time.Now().Add(20 * time.Second)
	for found == nil {
		p.sync()
		for _, evt := range p.encrypted {
			if evt.RoomID != room {
				continue
			}
			dec, err := p.mach.DecryptMegolmEvent(ctx, evt)
			if err != nil {
				lastErr = err
				continue
			}
			if dec.Content.AsMessage().Body == body {
				found = dec
			}
		}
		if found == nil && time.Now().After(deadline) {
			p.t.Fatalf("%s: no decryptable message %q: %v", p.cli.UserID, body, lastErr)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return found
}

func TestFederationEncryptedRoom(t *testing.T) {
	a, b, _ := fedPair(t)
	ctx := context.Background()
	alice := newCryptoPeer(t, a.Register(t, "alice", false))
	bob := newCryptoPeer(t, b.Register(t, "bob", false))
	aliceID, bobID := alice.cli.UserID, bob.cli.UserID

	created, err := alice.cli.CreateRoom(ctx, &mautrix.ReqCreateRoom{
		Preset: "private_chat",
		Invite: []id.UserID{bobID},
		InitialState: []*event.Event{{
			Type:     event.StateEncryption,
			StateKey: new(string),
			Content:  event.Content{Raw: map[string]any{"algorithm": id.AlgorithmMegolmV1}},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	room := created.RoomID
	alice.sync()
	bob.syncUntil("the invite", func(r *mautrix.RespSync) bool { return r.Rooms.Invite[room] != nil })
	if _, err := bob.cli.JoinRoomByID(ctx, room); err != nil {
		t.Fatalf("remote join: %v", err)
	}
	// Alice's server tells her that bob's devices now matter to her, and bob's that alice's do.
	alice.syncUntil("bob in device_lists.changed", func(r *mautrix.RespSync) bool {
		return slices.Contains(r.DeviceLists.Changed, bobID)
	})
	bob.syncUntil("the room's encryption state", func(*mautrix.RespSync) bool {
		enc, _ := bob.state.IsEncrypted(ctx, room)
		return enc
	})

	members := []id.UserID{aliceID, bobID}
	msg := alice.sendEncrypted(room, members, "hello bob, from a")
	if got := bob.decryptUntil(room, "hello bob, from a"); got.ID != msg || got.Sender != aliceID {
		t.Fatalf("bob decrypted %s from %s", got.ID, got.Sender)
	}
	reply := bob.sendEncrypted(room, members, "hello alice, from b")
	if got := alice.decryptUntil(room, "hello alice, from b"); got.ID != reply || got.Sender != bobID {
		t.Fatalf("alice decrypted %s from %s", got.ID, got.Sender)
	}
}

// keysOf runs /keys/query for one user and returns the device IDs answered and the failures.
func keysOf(t *testing.T, cli *mautrix.Client, user id.UserID) ([]string, map[string]any) {
	t.Helper()
	var out struct {
		DeviceKeys map[string]map[string]json.RawMessage `json:"device_keys"`
		Failures   map[string]any                        `json:"failures"`
	}
	body := map[string]any{"device_keys": map[string]any{user.String(): []string{}}}
	if _, err := cli.MakeRequest(context.Background(), http.MethodPost, cli.BuildClientURL("v3", "keys", "query"), body, &out); err != nil {
		t.Fatalf("keys/query: %v", err)
	}
	var devs []string
	for d := range out.DeviceKeys[user.String()] {
		devs = append(devs, d)
	}
	slices.Sort(devs)
	return devs, out.Failures
}

func TestFederationRemoteDeviceList(t *testing.T) {
	a, b, _ := fedPair(t)
	ctx := context.Background()
	aliceCli, bobCli, _ := joinedPair(t, a, b)
	alice := &syncer{t: t, cli: aliceCli}
	bob1 := newCryptoPeer(t, bobCli)

	// Alice's server asks b for bob's keys.
	waitFor(t, "bob's first device in alice's key query", func() bool {
		devs, _ := keysOf(t, aliceCli, bobCli.UserID)
		return slices.Equal(devs, []string{bobCli.DeviceID.String()})
	})
	alice.once()
	before := alice.since

	// Bob signs in on a second device on b, which uploads keys.
	lp, _, _ := bobCli.UserID.Parse()
	anon, err := mautrix.NewClient(b.URL, "", "")
	if err != nil {
		t.Fatal(err)
	}
	login, err := anon.Login(ctx, &mautrix.ReqLogin{
		Type:       mautrix.AuthTypePassword,
		Identifier: mautrix.UserIdentifier{Type: mautrix.IdentifierTypeUser, User: lp},
		Password:   "password-" + lp,
	})
	if err != nil {
		t.Fatalf("second login: %v", err)
	}
	cli2, err := mautrix.NewClient(b.URL, bobCli.UserID, login.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	cli2.DeviceID = login.DeviceID
	newCryptoPeer(t, cli2)

	// Alice hears of it in /sync and /keys/changes, and her key query shows the new device.
	alice.until("bob in device_lists.changed", func(r *mautrix.RespSync) bool {
		return slices.Contains(r.DeviceLists.Changed, bobCli.UserID)
	})
	changes, err := aliceCli.GetKeyChanges(ctx, before, alice.since)
	if err != nil || !slices.Contains(changes.Changed, bobCli.UserID) {
		t.Fatalf("/keys/changes: %+v %v", changes, err)
	}
	want := []string{bobCli.DeviceID.String(), login.DeviceID.String()}
	slices.Sort(want)
	waitFor(t, "both of bob's devices in alice's key query", func() bool {
		devs, _ := keysOf(t, aliceCli, bobCli.UserID)
		return slices.Equal(devs, want)
	})

	// A one-time key of the new device is claimed from b, once.
	claim := &mautrix.ReqClaimKeys{OneTimeKeys: mautrix.OneTimeKeysRequest{bobCli.UserID: {login.DeviceID: id.KeyAlgorithmSignedCurve25519}}}
	c1, err := aliceCli.ClaimKeys(ctx, claim)
	if err != nil {
		t.Fatal(err)
	}
	c2, err := aliceCli.ClaimKeys(ctx, claim)
	if err != nil {
		t.Fatal(err)
	}
	k1, k2 := c1.OneTimeKeys[bobCli.UserID][login.DeviceID], c2.OneTimeKeys[bobCli.UserID][login.DeviceID]
	if len(k1) != 1 || len(k2) != 1 {
		t.Fatalf("claimed %v and %v", k1, k2)
	}
	for kid := range k1 {
		if _, again := k2[kid]; again {
			t.Fatalf("one-time key %s handed out twice", kid)
		}
	}

	// Bob sets up cross-signing: the signing key update reaches a.
	cs, err := bob1.mach.GenerateCrossSigningKeys()
	if err != nil {
		t.Fatal(err)
	}
	if err := bob1.mach.PublishCrossSigningKeys(ctx, cs, nil); err != nil {
		t.Fatalf("publish cross-signing keys: %v", err)
	}
	masterPub := cs.MasterKey.PublicKey()
	waitFor(t, "bob's master key in alice's key query", func() bool {
		q, err := aliceCli.QueryKeys(ctx, &mautrix.ReqQueryKeys{DeviceKeys: mautrix.DeviceKeysRequest{bobCli.UserID: {}}})
		if err != nil {
			t.Logf("query: %v", err)
			return false
		}
		_, hasSelf := q.SelfSigningKeys[bobCli.UserID]
		return hasSelf && q.MasterKeys[bobCli.UserID].Keys[id.NewKeyID(id.KeyAlgorithmEd25519, masterPub.String())] == masterPub
	})

	// Bob's first device leaves: alice's server hears the deletion.
	if _, err := bob1.cli.Logout(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "bob's first device gone from alice's key query", func() bool {
		devs, _ := keysOf(t, aliceCli, bobCli.UserID)
		return slices.Equal(devs, []string{login.DeviceID.String()})
	})

	// A server that cannot be reached is listed in failures, and the answer still comes.
	ghost := id.NewUserID("ghost", "localhost:1")
	start := time.Now()
	_, failures := keysOf(t, aliceCli, ghost)
	if _, ok := failures["localhost:1"]; !ok {
		t.Fatalf("failures %v, want localhost:1", failures)
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Fatalf("key query for an unreachable server took %v", d)
	}
}

func TestFederationPresence(t *testing.T) {
	ca := testserver.NewCA(t)
	withPresence := func(c *config.Config) { c.Presence = true }
	a := testserver.Start(t, testserver.Federated(t, ca), withPresence)
	b := testserver.Start(t, testserver.Federated(t, ca), withPresence)
	ctx := context.Background()
	alice, bob, _ := joinedPair(t, a, b)
	bs := &syncer{t: t, cli: bob}
	bs.once()
	if err := alice.SetPresence(ctx, mautrix.ReqPresence{Presence: event.PresenceOnline, StatusMsg: "baking bread"}); err != nil {
		t.Fatal(err)
	}
	bs.until("alice's presence", func(r *mautrix.RespSync) bool {
		for _, ev := range r.Presence.Events {
			var c struct {
				Presence  string `json:"presence"`
				StatusMsg string `json:"status_msg"`
			}
			_ = json.Unmarshal(ev.Content.VeryRaw, &c)
			if ev.Sender == alice.UserID && c.Presence == "online" && c.StatusMsg == "baking bread" {
				return true
			}
		}
		return false
	})
	// Going offline travels too.
	if err := alice.SetPresence(ctx, mautrix.ReqPresence{Presence: event.PresenceOffline}); err != nil {
		t.Fatal(err)
	}
	bs.until("alice offline", func(r *mautrix.RespSync) bool {
		for _, ev := range r.Presence.Events {
			var c struct {
				Presence string `json:"presence"`
			}
			_ = json.Unmarshal(ev.Content.VeryRaw, &c)
			if ev.Sender == alice.UserID && c.Presence == "offline" {
				return true
			}
		}
		return false
	})
}
