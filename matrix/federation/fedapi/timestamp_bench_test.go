package fedapi

import (
	"testing"

	"github.com/hearth-home/hearth/matrix/rooms"
)

// BenchmarkFedTimestampLookup: one jump to date in a room of 5,000 messages with timestamps
// out of stream order (every message backdated), the index already caught up.
func BenchmarkFedTimestampLookup(b *testing.B) {
	e := newEnv(b)
	alice := e.user(b, "alice")
	room := e.createRoom(b, rooms.CreateRequest{Creator: alice, Preset: "public_chat"})
	e.join(b, room, "@bob:remote.test")
	const n, base = 5000, 1_600_000_000_000
	for i := range n {
		e.sendAt(b, room, alice, "m", base+int64((i*7919)%n)*1000)
	}
	if _, err := e.rooms.FedEventAtTimestamp(bg, "remote.test", room, base, true); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	i := 0
	for b.Loop() {
		ts := base + int64(i%n)*1000 + 500
		if _, err := e.rooms.FedEventAtTimestamp(bg, "remote.test", room, ts, i%2 == 0); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkFedTimestampCatchUp: the first lookup after 200 new events (the index catches
// up on them) per iteration.
func BenchmarkFedTimestampCatchUp(b *testing.B) {
	e := newEnv(b)
	alice := e.user(b, "alice")
	room := e.createRoom(b, rooms.CreateRequest{Creator: alice, Preset: "public_chat"})
	e.join(b, room, "@bob:remote.test")
	for b.Loop() {
		b.StopTimer()
		for j := range 200 {
			e.sendAt(b, room, alice, "m", 1_600_000_000_000+int64(j))
		}
		b.StartTimer()
		if _, err := e.rooms.FedEventAtTimestamp(bg, "remote.test", room, 1_600_000_000_000, true); err != nil {
			b.Fatal(err)
		}
	}
}
