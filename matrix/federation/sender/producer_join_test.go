package sender

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/hearth-home/hearth/matrix/change"
)

// A local user's join announces their devices (and cross-signing keys) to the servers of the
// room that share no other room with them, and to no one else; remote users' joins, leaves
// and other events announce nothing.
func TestProducerAnnouncesDevicesOnJoin(t *testing.T) {
	h := newHarness(t)
	a, b := newRemote(t, h.key), newRemote(t, h.key)
	s := h.sender(t, h.client(t, a), nil)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	alice, bob := "@alice:"+origin, "@bob:"+a.name
	old, joined := "!old:"+origin, "!new:"+b.name
	w := &world{
		// a already shares a room with alice; b is new to her.
		servers:   map[string][]string{old: {origin, a.name}, joined: {origin, a.name, b.name}},
		userRooms: map[string][]string{alice: {old, joined}},
		devices:   map[string]map[string]string{alice: {"D1": "Phone", "D2": "Laptop"}},
		xsign:     map[string]json.RawMessage{alice: json.RawMessage(`{"user_id":"` + alice + `","usage":["master"],"keys":{"ed25519:M":"M"}}`)},
	}
	p, err := NewProducer(ProducerOptions{ServerName: origin, Sender: s, Rooms: w, UserRooms: w, Devices: w})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	p.Start()

	member := func(target, membership, room string) change.Change {
		return change.Change{Kind: change.Event, RoomID: room, EventType: "m.room.member", StateKey: &target, Sender: target, Membership: membership}
	}
	p.Handle(member(bob, "join", joined)) // not ours
	p.Handle(member(alice, "leave", old)) // not a join
	p.Handle(change.Change{Kind: change.Event, RoomID: joined, EventType: "m.room.message", Sender: alice})
	p.Handle(member(alice, "join", joined))
	waitFor(t, "two device updates and the signing keys at b", 5*time.Second, func() bool {
		got := edusOf(b)
		return len(got[TypeDeviceListUpdate]) == 2 && len(got[TypeSigningKeyUpdate]) == 1
	})
	got := edusOf(b)[TypeDeviceListUpdate]
	if got[0]["device_id"] != "D1" || got[1]["device_id"] != "D2" || got[0]["user_id"] != alice || got[1]["device_display_name"] != "Laptop" {
		t.Errorf("device list updates %v", got)
	}

	// A join (a profile change, say) in a room whose servers all hear of alice through
	// another room sends nothing. The producer works in order and a's queue is FIFO, so once
	// a later announcement reaches a, its count shows whether the earlier join sent anything.
	p.Handle(member(alice, "join", old))
	w.mu.Lock()
	w.userRooms[alice] = []string{joined} // alice left the old room: a now hears only through this one
	w.mu.Unlock()
	p.Handle(member(alice, "join", joined))
	waitFor(t, "the last announcement at a and b", 5*time.Second, func() bool {
		return len(edusOf(b)[TypeDeviceListUpdate]) == 4 && len(edusOf(a)[TypeDeviceListUpdate]) >= 2
	})
	if n := len(edusOf(a)[TypeDeviceListUpdate]); n != 2 {
		t.Errorf("a got %d device list updates, want 2 (from the last join only)", n)
	}
}
