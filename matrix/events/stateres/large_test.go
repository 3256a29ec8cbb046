package stateres

import (
	"context"
	"fmt"
	"maps"
	"testing"

	"maunium.net/go/mautrix/id"
)

// largeForks builds a room with 20 members, then two forks of n state events each: fork A is
// joins with a power levels change every 200 events; fork B is joins with bob kicking one of
// the base members every 250 events (up to 20).
func largeForks(tb testing.TB, rv id.RoomVersion, n int) (r *testRoom, a, b *fork, kicked []id.UserID, lastPL id.EventID) {
	r, base := newRoom(tb, rv, map[id.UserID]int{bob: 50})
	base.send("bob-join", typeMember, bob.String(), bob, `{"membership":"join"}`)
	var members []id.UserID
	for i := range 20 {
		u := id.UserID(fmt.Sprintf("@m%d:hs.test", i))
		members = append(members, u)
		base.send("join-"+string(u), typeMember, u.String(), u, `{"membership":"join"}`)
	}
	a, b = base.branch(), base.branch()
	levels := map[id.UserID]int{bob: 50}
	for i := range n {
		if i%200 == 199 {
			levels[id.UserID(fmt.Sprintf("@a%d:hs.test", i-1))] = 10
			lastPL = a.send(fmt.Sprintf("pl-a-%d", i), typePowerLevels, "", alice, plContent(usersWith(rv, levels)))
			continue
		}
		u := id.UserID(fmt.Sprintf("@a%d:hs.test", i))
		a.send("join-"+string(u), typeMember, u.String(), u, `{"membership":"join"}`)
	}
	for i := range n {
		if i%250 == 0 && len(kicked) < len(members) {
			u := members[len(kicked)]
			kicked = append(kicked, u)
			b.send("kick-"+string(u), typeMember, u.String(), bob, `{"membership":"leave"}`)
			continue
		}
		u := id.UserID(fmt.Sprintf("@b%d:hs.test", i))
		b.send("join-"+string(u), typeMember, u.String(), u, `{"membership":"join"}`)
	}
	return r, a, b, kicked, lastPL
}

func TestLargeForks(t *testing.T) {
	for _, rv := range []id.RoomVersion{id.RoomV11, id.RoomV12} {
		t.Run("v"+string(rv), func(t *testing.T) {
			r, a, b, kicked, lastPL := largeForks(t, rv, 400)
			r.fetched.Store(0)
			got := r.resolve(a.state, b.state)
			t.Logf("room has %d events, sets %d and %d keys; resolution fetched %d IDs", len(r.evs), len(a.state), len(b.state), r.fetched.Load())
			if got[keyPL] != lastPL {
				t.Errorf("power levels = %s, want %s", r.names[got[keyPL]], r.names[lastPL])
			}
			for _, u := range kicked {
				if r.names[got[member(u)]] != "kick-"+string(u) {
					t.Errorf("%s = %s, want the kick", u, r.names[got[member(u)]])
				}
			}
			for _, s := range []StateMap{a.state, b.state} {
				for k, v := range s {
					if k.Type == typeMember && r.names[v] == "join-"+k.StateKey && got[k] != v {
						if _, wasKicked := b.state[k]; wasKicked && r.names[b.state[k]] == "kick-"+k.StateKey {
							continue
						}
						t.Fatalf("join %s lost: %s", k.StateKey, r.names[got[k]])
					}
				}
			}
			if again := r.resolve(b.state, a.state); !maps.Equal(again, got) {
				t.Fatal("set order changed the result")
			}
		})
	}
}

// TestWalkStopsAtForkPoint: a long power levels history below the fork is not fetched: the
// auth difference and conflicted subgraph walks stop under the fork, and the mainline is loaded
// only down to the power levels the conflicted events cite.
func TestWalkStopsAtForkPoint(t *testing.T) {
	for _, rv := range []id.RoomVersion{id.RoomV11, id.RoomV12} {
		t.Run("v"+string(rv), func(t *testing.T) {
			r, base := newRoom(t, rv, nil)
			for i := range 300 {
				base.send(fmt.Sprintf("pl-%d", i), typePowerLevels, "", alice, plContent(usersWith(rv, map[id.UserID]int{zara: i % 100})))
			}
			a, b := base.branch(), base.branch()
			a.send("topic-a", "m.room.topic", "", alice, `{"topic":"a"}`)
			b.send("topic-b", "m.room.topic", "", alice, `{"topic":"b"}`)
			r.fetched.Store(0)
			got := r.resolve(a.state, b.state)
			if n := r.fetched.Load(); n > 20 {
				t.Fatalf("fetched %d IDs of a %d-event room", n, len(r.evs))
			}
			if got[keyTopic] != a.state[keyTopic] && got[keyTopic] != b.state[keyTopic] {
				t.Fatalf("topic = %s", got[keyTopic])
			}
		})
	}
}

// BenchmarkResolveLargeForks resolves two forks of ~1,000 state events each (2,000 conflicted
// member keys, power levels changes and kicks among them).
func BenchmarkResolveLargeForks(b *testing.B) {
	for _, rv := range []id.RoomVersion{id.RoomV11, id.RoomV12} {
		b.Run("v"+string(rv), func(b *testing.B) {
			r, fa, fb, _, _ := largeForks(b, rv, 1000)
			sets := []StateMap{fa.state, fb.state}
			ctx := context.Background()
			b.ReportAllocs()
			r.fetched.Store(0)
			b.ResetTimer()
			for b.Loop() {
				if _, err := Resolve(ctx, rv, sets, r.fetch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(r.fetched.Load())/float64(b.N), "fetched/op")
		})
	}
}
