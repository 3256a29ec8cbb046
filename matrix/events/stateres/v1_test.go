package stateres

import (
	"context"
	"errors"
	"maps"
	"testing"

	"maunium.net/go/mautrix/id"
)

// State resolution v1 (room version 1) on real v1-format events: each scenario names the
// event every listed key must resolve to, and every order of the sets must give that answer.
func TestV1Scenarios(t *testing.T) {
	keyName := Key{"m.room.name", ""}
	for _, sc := range []struct {
		name  string
		build func(t testing.TB) (*testRoom, []StateMap, map[Key]string)
	}{
		{
			// Power levels first: the demotion (the only other power levels event, later in
			// depth) replaces the original, and against it bob may no longer ban.
			name: "demotion beats concurrent ban",
			build: func(t testing.TB) (*testRoom, []StateMap, map[Key]string) {
				r, base := newRoom(t, id.RoomV1, map[id.UserID]int{bob: 50})
				base.send("bob-join", typeMember, bob.String(), bob, `{"membership":"join"}`)
				base.send("charlie-join", typeMember, charlie.String(), charlie, `{"membership":"join"}`)
				a, b := base.branch(), base.branch()
				a.send("pl-demote-bob", typePowerLevels, "", alice, plContent(map[id.UserID]int{alice: 100}))
				b.send("bob-bans-charlie", typeMember, charlie.String(), bob, `{"membership":"ban"}`)
				return r, []StateMap{a.state, b.state}, map[Key]string{keyPL: "pl-demote-bob", member(charlie): "charlie-join"}
			},
		},
		{
			// Same depth: whichever sorts first, the ban holds (a join over a ban is refused,
			// a ban over a join allowed).
			name: "ban beats concurrent join",
			build: func(t testing.TB) (*testRoom, []StateMap, map[Key]string) {
				r, base := newRoom(t, id.RoomV1, nil)
				a, b := base.branch(), base.branch()
				a.send("alice-bans-zara", typeMember, zara.String(), alice, `{"membership":"ban"}`)
				b.send("zara-join", typeMember, zara.String(), zara, `{"membership":"join"}`)
				return r, []StateMap{a.state, b.state}, map[Key]string{member(zara): "alice-bans-zara"}
			},
		},
		{
			// The walk through power levels stops at the first refused event: bob's deeper
			// change is refused against alice's shallower demotion of him.
			name: "deeper power levels refused after a demotion",
			build: func(t testing.TB) (*testRoom, []StateMap, map[Key]string) {
				r, base := newRoom(t, id.RoomV1, map[id.UserID]int{bob: 50})
				base.send("bob-join", typeMember, bob.String(), bob, `{"membership":"join"}`)
				a, b := base.branch(), base.branch()
				a.send("pl-demote-bob", typePowerLevels, "", alice, plContent(map[id.UserID]int{alice: 100, bob: 0}))
				b.send("name-bob", "m.room.name", "", bob, `{"name":"bob's"}`)
				b.send("pl-bob-raises-zara", typePowerLevels, "", bob, plContent(map[id.UserID]int{alice: 100, bob: 50, zara: 50}))
				return r, []StateMap{a.state, b.state}, map[Key]string{keyPL: "pl-demote-bob", keyName: "name-bob"}
			},
		},
		{
			// Other keys take the deepest event the auth rules allow: bob's deeper topic is
			// refused once the power levels resolve to his demotion, so alice's stands. The
			// name only one fork has is not a conflict in v1 and stays although bob set it.
			name: "deepest allowed topic",
			build: func(t testing.TB) (*testRoom, []StateMap, map[Key]string) {
				r, base := newRoom(t, id.RoomV1, map[id.UserID]int{bob: 50})
				base.send("bob-join", typeMember, bob.String(), bob, `{"membership":"join"}`)
				a, b := base.branch(), base.branch()
				a.send("topic-alice", "m.room.topic", "", alice, `{"topic":"alice"}`)
				a.send("pl-demote-bob", typePowerLevels, "", alice, plContent(map[id.UserID]int{alice: 100}))
				b.send("name-bob", "m.room.name", "", bob, `{"name":"bob's"}`)
				b.send("name-bob-2", "m.room.name", "", bob, `{"name":"bob's again"}`)
				b.send("topic-bob", "m.room.topic", "", bob, `{"topic":"bob"}`)
				return r, []StateMap{a.state, b.state}, map[Key]string{keyPL: "pl-demote-bob", keyTopic: "topic-alice", keyName: "name-bob-2"}
			},
		},
		{
			// Three forks of one key: the deepest allowed wins.
			name: "three topics",
			build: func(t testing.TB) (*testRoom, []StateMap, map[Key]string) {
				r, base := newRoom(t, id.RoomV1, nil)
				a, b, c := base.branch(), base.branch(), base.branch()
				a.send("topic-1", "m.room.topic", "", alice, `{"topic":"1"}`)
				b.send("name-2", "m.room.name", "", alice, `{"name":"2"}`)
				b.send("topic-2", "m.room.topic", "", alice, `{"topic":"2"}`)
				c.send("topic-3", "m.room.topic", "", alice, `{"topic":"3"}`)
				return r, []StateMap{a.state, b.state, c.state}, map[Key]string{keyTopic: "topic-2", keyName: "name-2"}
			},
		},
	} {
		t.Run(sc.name, func(t *testing.T) {
			r, sets, want := sc.build(t)
			got := r.resolve(sets...)
			checkExpect(t, r, got, want)
			for _, perm := range permutations(len(sets)) {
				shuffled := make([]StateMap, len(sets))
				for i, p := range perm {
					shuffled[i] = sets[p]
				}
				if again := r.resolve(shuffled...); !maps.Equal(again, got) {
					t.Fatalf("order %v: %v, want %v", perm, r.named(again), r.named(got))
				}
			}
		})
	}
}

// TestV1DiffersFromV2 resolves one fork with both algorithms: v1 takes the deeper topic, v2
// (same mainline position) the later timestamp. It shows room version 1 really runs v1.
func TestV1DiffersFromV2(t *testing.T) {
	r, base := newRoom(t, id.RoomV1, nil)
	a, b := base.branch(), base.branch()
	a.sendAt(10_000, "topic-shallow-late", "m.room.topic", "", alice, `{"topic":"late"}`)
	b.sendAt(100, "name", "m.room.name", "", alice, `{"name":"n"}`)
	b.sendAt(200, "topic-deep-early", "m.room.topic", "", alice, `{"topic":"early"}`)
	sets := []StateMap{a.state, b.state}
	if got := r.names[r.resolve(sets...)[keyTopic]]; got != "topic-deep-early" {
		t.Fatalf("v1 topic %q, want the deeper one", got)
	}
	v2, err := Resolve(context.Background(), id.RoomV2, sets, r.fetch)
	if err != nil {
		t.Fatal(err)
	}
	if got := r.names[v2[keyTopic]]; got != "topic-shallow-late" {
		t.Fatalf("v2 topic %q, want the later one", got)
	}
}

func TestV1Errors(t *testing.T) {
	r, base := newRoom(t, id.RoomV1, nil)
	a, b := base.branch(), base.branch()
	a.send("topic-a", "m.room.topic", "", alice, `{"topic":"a"}`)
	b.send("topic-b", "m.room.topic", "", alice, `{"topic":"b"}`)
	ctx := context.Background()

	missing := maps.Clone(b.state)
	missing[keyTopic] = "$nowhere:hs.test"
	if _, err := Resolve(ctx, id.RoomV1, []StateMap{a.state, missing}, r.fetch); !errors.Is(err, ErrMissingEvent) {
		t.Fatalf("missing conflicted event: %v, want ErrMissingEvent", err)
	}
	misfiled := maps.Clone(b.state)
	misfiled[keyTopic] = b.state[keyJR]
	if _, err := Resolve(ctx, id.RoomV1, []StateMap{a.state, misfiled}, r.fetch); !errors.Is(err, ErrBadState) {
		t.Fatalf("event filed under another key: %v, want ErrBadState", err)
	}
	// Agreeing sets are returned as they are, without fetching anything.
	before := r.fetched.Load()
	got, err := Resolve(ctx, id.RoomV1, []StateMap{a.state, maps.Clone(a.state)}, r.fetch)
	if err != nil || !maps.Equal(got, a.state) || r.fetched.Load() != before {
		t.Fatalf("agreeing sets: %v (fetched %d), %v", r.named(got), r.fetched.Load()-before, err)
	}
}
