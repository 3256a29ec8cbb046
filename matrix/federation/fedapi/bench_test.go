package fedapi

import (
	"fmt"
	"testing"

	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/rooms"
)

// benchRoom builds a public room with the given number of remote members (on five servers)
// and then of messages.
func benchRoom(b *testing.B, e *env, members, messages int) (id.RoomID, []id.EventID) {
	alice := e.user(b, "alice")
	room := e.createRoom(b, rooms.CreateRequest{Creator: alice, Preset: "public_chat"})
	for i := 0; i < members; i++ {
		e.join(b, room, id.UserID(fmt.Sprintf("@u%d:remote%d.test", i, i%5)))
	}
	var msgs []id.EventID
	for i := 0; i < messages; i++ {
		msgs = append(msgs, e.msg(b, room, alice, fmt.Sprintf("message %d", i)))
	}
	return room, msgs
}

// BenchmarkFedStateIDs: /state_ids at the newest event of a room with 200 members (the state
// and its auth chain), through the domain call the handler makes.
func BenchmarkFedStateIDs(b *testing.B) {
	e := newEnv(b)
	room, msgs := benchRoom(b, e, 200, 50)
	last := msgs[len(msgs)-1]
	b.ResetTimer()
	for b.Loop() {
		st, err := e.rooms.FedStateAt(bg, "remote1.test", room, last)
		if err != nil {
			b.Fatal(err)
		}
		if len(st.State) < 200 {
			b.Fatalf("state has %d events", len(st.State))
		}
	}
}

// BenchmarkFedBackfill100: /backfill of 100 events from the newest one (history "shared",
// a requesting server with members in the room).
func BenchmarkFedBackfill100(b *testing.B) {
	e := newEnv(b)
	room, msgs := benchRoom(b, e, 50, 300)
	last := msgs[len(msgs)-1]
	b.ResetTimer()
	for b.Loop() {
		evs, err := e.rooms.Backfill(bg, "remote1.test", room, []id.EventID{last}, 100)
		if err != nil {
			b.Fatal(err)
		}
		if len(evs) != 100 {
			b.Fatalf("%d events", len(evs))
		}
	}
}
