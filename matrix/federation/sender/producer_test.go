package sender

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hearth-home/hearth/matrix/change"
)

// world is the homeserver state the producer's lookups read: what the integrator's
// implementations would answer from the store and the in-memory tables.
type world struct {
	mu        sync.Mutex
	servers   map[string][]string // room -> joined servers
	userRooms map[string][]string
	typing    map[string]bool // room|user
	presence  map[string]PresenceUpdate
	receipts  map[uint64]struct {
		typ string
		r   ReadReceipt
	}
	devices map[string]map[string]string // user -> device -> display name
	xsign   map[string]json.RawMessage
	lookups int
}

func (w *world) JoinedServers(_ context.Context, room string) ([]string, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.lookups++
	s, ok := w.servers[room]
	if !ok {
		return nil, errors.New("unknown room")
	}
	return s, nil
}

func (w *world) JoinedRooms(_ context.Context, user string) ([]string, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.userRooms[user], nil
}

func (w *world) IsTyping(room, user string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.typing[room+"|"+user]
}

func (w *world) Presence(user string) (PresenceUpdate, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	p, ok := w.presence[user]
	return p, ok
}

func (w *world) ReceiptAt(_ context.Context, _ string, pos uint64) (string, ReadReceipt, bool, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	r, ok := w.receipts[pos]
	return r.typ, r.r, ok, nil
}

func (w *world) Device(_ context.Context, user, dev string) (string, json.RawMessage, bool, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	name, ok := w.devices[user][dev]
	if !ok {
		return "", nil, false, nil
	}
	return name, json.RawMessage(`{"user_id":"` + user + `","device_id":"` + dev + `","keys":{}}`), true, nil
}

func (w *world) DeviceIDs(_ context.Context, user string) ([]string, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var ids []string
	for id := range w.devices[user] {
		ids = append(ids, id)
	}
	return ids, nil
}

func (w *world) CrossSigningKeys(_ context.Context, user string) (json.RawMessage, json.RawMessage, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.xsign[user], nil, nil
}

// edusOf returns what a remote applied, EDU contents grouped by type.
func edusOf(r *remote) map[string][]map[string]any {
	_, applied := r.snapshot()
	out := map[string][]map[string]any{}
	for _, rec := range applied {
		for _, e := range rec.Req.EDUs {
			var m map[string]any
			_ = json.Unmarshal(e.Content, &m)
			out[e.Type] = append(out[e.Type], m)
		}
	}
	return out
}

func countEDUs(r *remote) int {
	n := 0
	for _, l := range edusOf(r) {
		n += len(l)
	}
	return n
}

func TestProducer(t *testing.T) {
	h := newHarness(t)
	a, b := newRemote(t, h.key), newRemote(t, h.key)
	s := h.sender(t, h.client(t, a), nil)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	alice, bob, carol := "@alice:"+origin, "@bob:"+a.name, "@carol:"+b.name
	room1, room2 := "!one:"+origin, "!two:"+origin
	w := &world{
		servers:   map[string][]string{room1: {origin, a.name, b.name}, room2: {origin, a.name}},
		userRooms: map[string][]string{alice: {room1, room2}},
		typing:    map[string]bool{room1 + "|" + alice: true},
		presence:  map[string]PresenceUpdate{alice: {UserID: alice, Presence: "online", LastActiveAgo: 10}},
		receipts: map[uint64]struct {
			typ string
			r   ReadReceipt
		}{
			10: {"m.read", ReadReceipt{RoomID: room1, UserID: alice, EventIDs: []string{"$ev"}, TS: 99}},
			11: {"m.read.private", ReadReceipt{RoomID: room1, UserID: alice, EventIDs: []string{"$ev2"}, TS: 100}},
		},
		devices: map[string]map[string]string{alice: {"DEV": "Phone"}},
		xsign:   map[string]json.RawMessage{alice: json.RawMessage(`{"user_id":"` + alice + `","usage":["master"],"keys":{"ed25519:M":"M"}}`)},
	}
	p, err := NewProducer(ProducerOptions{ServerName: origin, Sender: s, Rooms: w, UserRooms: w, Typing: w, Presence: w, Receipts: w, Devices: w})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()

	// Queued before Start: repeats coalesce, remote users and local-only kinds are ignored.
	for i := 0; i < 3; i++ {
		p.Handle(change.Change{Kind: change.Typing, RoomID: room1, User: alice})
	}
	p.Handle(change.Change{Kind: change.Typing, RoomID: room1, User: bob})
	p.Handle(change.Change{Kind: change.ToDevice, User: alice, Device: "DEV"})
	p.Handle(change.Change{Kind: change.Receipt, Pos: 10, RoomID: room1, User: alice})
	p.Handle(change.Change{Kind: change.Receipt, Pos: 11, RoomID: room1, User: alice})
	p.Handle(change.Change{Kind: change.Presence, User: alice})
	p.Start()
	waitFor(t, "typing, receipt and presence at both", 5*time.Second, func() bool { return countEDUs(a) == 3 && countEDUs(b) == 3 })

	for _, r := range []*remote{a, b} {
		got := edusOf(r)
		if len(got[TypeTyping]) != 1 || got[TypeTyping][0]["user_id"] != alice || got[TypeTyping][0]["typing"] != true {
			t.Errorf("typing EDUs %v", got[TypeTyping])
		}
		if len(got[TypeReceipt]) != 1 {
			t.Fatalf("receipt EDUs %v (m.read.private must not federate)", got[TypeReceipt])
		}
		rc, _ := json.Marshal(got[TypeReceipt][0])
		if want := `{"` + room1 + `":{"m.read":{"` + alice + `":{"data":{"ts":99},"event_ids":["$ev"]}}}}`; string(rc) != want {
			t.Errorf("receipt %s, want %s", rc, want)
		}
		if len(got[TypePresence]) != 1 {
			t.Errorf("presence EDUs %v", got[TypePresence])
		}
	}

	// Device changes: a key upload, then the device's deletion, each with the next stream ID.
	p.Handle(change.Change{Kind: change.DeviceKeys, User: alice, Device: "DEV"})
	waitFor(t, "device list update", 5*time.Second, func() bool { return len(edusOf(a)[TypeDeviceListUpdate]) == 1 })
	w.mu.Lock()
	delete(w.devices[alice], "DEV")
	w.mu.Unlock()
	p.Handle(change.Change{Kind: change.Devices, User: alice, Device: "DEV"})
	p.Handle(change.Change{Kind: change.DeviceKeys, User: alice}) // cross-signing keys changed
	waitFor(t, "deletion and signing key update", 5*time.Second, func() bool {
		return len(edusOf(a)[TypeDeviceListUpdate]) == 2 && len(edusOf(b)[TypeSigningKeyUpdate]) == 1
	})
	dl := edusOf(a)[TypeDeviceListUpdate]
	first, _ := json.Marshal(dl[0])
	second, _ := json.Marshal(dl[1])
	if want := `{"device_display_name":"Phone","device_id":"DEV","keys":{"device_id":"DEV","keys":{},"user_id":"` + alice + `"},"prev_id":[],"stream_id":1,"user_id":"` + alice + `"}`; string(first) != want {
		t.Errorf("first device list update %s\nwant %s", first, want)
	}
	if want := `{"deleted":true,"device_id":"DEV","prev_id":[1],"stream_id":2,"user_id":"` + alice + `"}`; string(second) != want {
		t.Errorf("second device list update %s\nwant %s", second, want)
	}
	if sk := edusOf(b)[TypeSigningKeyUpdate][0]; sk["user_id"] != alice || sk["master_key"] == nil {
		t.Errorf("signing key update %v", sk)
	}

	// To-device: one EDU per remote server with only its users; local recipients skipped.
	msgs := map[string]map[string]json.RawMessage{
		bob:   {"B1": json.RawMessage(`{"k":1}`)},
		carol: {"*": json.RawMessage(`{"k":2}`)},
		alice: {"DEV": json.RawMessage(`{"k":3}`)},
	}
	if err := p.SendToDevice(alice, "m.room_key", "m1", msgs); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "to-device at both", 5*time.Second, func() bool {
		return len(edusOf(a)[TypeDirectToDevice]) == 1 && len(edusOf(b)[TypeDirectToDevice]) == 1
	})
	for r, who := range map[*remote]string{a: bob, b: carol} {
		m := edusOf(r)[TypeDirectToDevice][0]
		users := m["messages"].(map[string]any)
		var names []string
		for u := range users {
			names = append(names, u)
		}
		sort.Strings(names)
		if strings.Join(names, ",") != who || m["message_id"] != "m1" || m["sender"] != alice {
			t.Errorf("to-device EDU at %s: %v", r.name, m)
		}
	}
	if err := p.SendToDevice(alice, "m.room_key", "m2", map[string]map[string]json.RawMessage{"nobody": {"D": json.RawMessage(`{}`)}}); err == nil {
		t.Error("to-device for a malformed user ID accepted")
	}
}

// blockingRooms is a room lookup that hangs until its context ends, like a slow store read.
type blockingRooms struct{ entered chan struct{} }

func (b blockingRooms) JoinedServers(ctx context.Context, _ string) ([]string, error) {
	select {
	case b.entered <- struct{}{}:
	default:
	}
	<-ctx.Done()
	return nil, ctx.Err()
}

// Handle does not wait for the goroutine, and Close stops it even while a lookup hangs and a
// backlog is queued.
func TestProducerCloseWithBacklog(t *testing.T) {
	h := newHarness(t)
	a := newRemote(t, h.key)
	s := h.sender(t, h.client(t, a), nil)
	rooms := blockingRooms{entered: make(chan struct{}, 1)}
	p, err := NewProducer(ProducerOptions{ServerName: origin, Sender: s, Rooms: rooms, Typing: &world{}})
	if err != nil {
		t.Fatal(err)
	}
	p.Start()
	for i := 0; i < 1000; i++ {
		p.Handle(change.Change{Kind: change.Typing, RoomID: fmt.Sprintf("!r%d:x", i), User: "@u:" + origin})
	}
	select {
	case <-rooms.entered:
	case <-time.After(5 * time.Second):
		t.Fatal("producer never looked up a room")
	}
	p.mu.Lock()
	backlog := len(p.queue)
	p.mu.Unlock()
	if backlog < 990 {
		t.Errorf("backlog %d while the first lookup hangs, want >= 990", backlog)
	}
	p.Close()
	select {
	case <-p.done:
	default:
		t.Error("producer goroutine still running after Close")
	}
	p.Handle(change.Change{Kind: change.Typing, RoomID: "!r:x", User: "@u:" + origin}) // ignored after Close
	if n, _ := s.QueueLen(a.name); n != 0 {
		t.Errorf("%d entries queued", n)
	}
}

func BenchmarkProducerHandle(b *testing.B) {
	p, err := NewProducer(ProducerOptions{ServerName: origin, Sender: &Sender{}, Rooms: &world{}, Typing: &world{}})
	if err != nil {
		b.Fatal(err)
	}
	users := make([]string, 1000)
	for i := range users {
		users[i] = fmt.Sprintf("@u%d:%s", i, origin)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		p.Handle(change.Change{Kind: change.Typing, RoomID: "!r:x", User: users[i%len(users)]})
	}
}
