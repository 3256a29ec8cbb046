package stateres

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"maps"
	"slices"
	"testing"
	"time"

	"maunium.net/go/mautrix/id"
)

var (
	v2Versions  = []id.RoomVersion{id.RoomV3, id.RoomV6, id.RoomV9, id.RoomV10, id.RoomV11}
	allVersions = append(slices.Clone(v2Versions), id.RoomV12)
)

func member(u id.UserID) Key { return Key{typeMember, u.String()} }

var (
	keyPL    = Key{typePowerLevels, ""}
	keyJR    = Key{typeJoinRules, ""}
	keyTopic = Key{"m.room.topic", ""}
)

// scenario builds forks of one room and names the event each key must resolve to ("" for
// "absent").
type scenario struct {
	name     string
	versions []id.RoomVersion
	build    func(t testing.TB, rv id.RoomVersion) (*testRoom, []StateMap, map[Key]string)
}

var scenarios = []scenario{
	{
		// The spec's motivating race: an admin demotes a moderator while the moderator bans
		// someone. The higher-powered demotion sorts first, so the ban no longer passes.
		name: "demotion beats concurrent ban", versions: allVersions,
		build: func(t testing.TB, rv id.RoomVersion) (*testRoom, []StateMap, map[Key]string) {
			r, base := newRoom(t, rv, map[id.UserID]int{bob: 50})
			base.send("bob-join", typeMember, bob.String(), bob, `{"membership":"join"}`)
			base.send("charlie-join", typeMember, charlie.String(), charlie, `{"membership":"join"}`)
			a, b := base.branch(), base.branch()
			a.send("pl-demote-bob", typePowerLevels, "", alice, plContent(usersWith(rv, nil)))
			b.send("bob-bans-charlie", typeMember, charlie.String(), bob, `{"membership":"ban"}`)
			return r, []StateMap{a.state, b.state}, map[Key]string{keyPL: "pl-demote-bob", member(charlie): "charlie-join"}
		},
	},
	{
		name: "ban beats concurrent join", versions: allVersions,
		build: func(t testing.TB, rv id.RoomVersion) (*testRoom, []StateMap, map[Key]string) {
			r, base := newRoom(t, rv, nil)
			a, b := base.branch(), base.branch()
			a.send("alice-bans-zara", typeMember, zara.String(), alice, `{"membership":"ban"}`)
			b.send("zara-join", typeMember, zara.String(), zara, `{"membership":"join"}`)
			return r, []StateMap{a.state, b.state}, map[Key]string{member(zara): "alice-bans-zara"}
		},
	},
	{
		// A join raced against closing the room: the join rule change is a power event and
		// applies first, so the join fails against invite-only rules.
		name: "join rule change beats concurrent join", versions: allVersions,
		build: func(t testing.TB, rv id.RoomVersion) (*testRoom, []StateMap, map[Key]string) {
			r, base := newRoom(t, rv, nil)
			a, b := base.branch(), base.branch()
			a.send("jr-invite", typeJoinRules, "", alice, `{"join_rule":"invite"}`)
			b.send("zara-join", typeMember, zara.String(), zara, `{"membership":"join"}`)
			return r, []StateMap{a.state, b.state}, map[Key]string{keyJR: "jr-invite", member(zara): ""}
		},
	},
	{
		// Mainline ordering: bob's topic cites the newer power levels, alice's the older ones;
		// bob's sorts later and wins although alice's has the later timestamp.
		name: "topic settled by mainline", versions: allVersions,
		build: func(t testing.TB, rv id.RoomVersion) (*testRoom, []StateMap, map[Key]string) {
			r, base := newRoom(t, rv, nil)
			base.send("bob-join", typeMember, bob.String(), bob, `{"membership":"join"}`)
			base.send("topic-1", "m.room.topic", "", alice, `{"topic":"one"}`)
			a, b := base.branch(), base.branch()
			a.send("pl-bob-50", typePowerLevels, "", alice, plContent(usersWith(rv, map[id.UserID]int{bob: 50})))
			a.sendAt(100, "topic-bob", "m.room.topic", "", bob, `{"topic":"bob"}`)
			b.sendAt(900, "topic-alice", "m.room.topic", "", alice, `{"topic":"alice"}`)
			return r, []StateMap{a.state, b.state}, map[Key]string{keyPL: "pl-bob-50", keyTopic: "topic-bob"}
		},
	},
	{
		// Same mainline position: origin_server_ts decides, the later topic is applied last.
		name: "topic on same mainline position goes by timestamp", versions: allVersions,
		build: func(t testing.TB, rv id.RoomVersion) (*testRoom, []StateMap, map[Key]string) {
			r, base := newRoom(t, rv, map[id.UserID]int{bob: 50})
			base.send("bob-join", typeMember, bob.String(), bob, `{"membership":"join"}`)
			a, b := base.branch(), base.branch()
			a.sendAt(500, "topic-late", "m.room.topic", "", bob, `{"topic":"late"}`)
			b.sendAt(200, "topic-early", "m.room.topic", "", alice, `{"topic":"early"}`)
			return r, []StateMap{a.state, b.state}, map[Key]string{keyTopic: "topic-late"}
		},
	},
	{
		// Two concurrent power level changes: alice (100) sorts before bob (50); bob's change
		// of charlie's level is then checked against alice's new levels, where charlie is
		// already at bob's level, and fails.
		name: "power level race", versions: allVersions,
		build: func(t testing.TB, rv id.RoomVersion) (*testRoom, []StateMap, map[Key]string) {
			r, base := newRoom(t, rv, map[id.UserID]int{bob: 50})
			base.send("bob-join", typeMember, bob.String(), bob, `{"membership":"join"}`)
			base.send("charlie-join", typeMember, charlie.String(), charlie, `{"membership":"join"}`)
			a, b := base.branch(), base.branch()
			b.sendAt(10, "pl-bob-sets-charlie-25", typePowerLevels, "", bob, plContent(usersWith(rv, map[id.UserID]int{bob: 50, charlie: 25})))
			a.sendAt(20, "pl-alice-sets-charlie-50", typePowerLevels, "", alice, plContent(usersWith(rv, map[id.UserID]int{bob: 50, charlie: 50})))
			return r, []StateMap{a.state, b.state}, map[Key]string{keyPL: "pl-alice-sets-charlie-50"}
		},
	},
	{
		// Both power level changes pass: they are applied in power order, so the lower-powered
		// sender's change lands last and stays.
		name: "power level race both valid", versions: allVersions,
		build: func(t testing.TB, rv id.RoomVersion) (*testRoom, []StateMap, map[Key]string) {
			r, base := newRoom(t, rv, map[id.UserID]int{bob: 50})
			base.send("bob-join", typeMember, bob.String(), bob, `{"membership":"join"}`)
			a, b := base.branch(), base.branch()
			a.sendAt(10, "pl-alice", typePowerLevels, "", alice, plContent(usersWith(rv, map[id.UserID]int{bob: 50, zara: 10})))
			b.sendAt(20, "pl-bob", typePowerLevels, "", bob, plContent(usersWith(rv, map[id.UserID]int{bob: 50, charlie: 10})))
			return r, []StateMap{a.state, b.state}, map[Key]string{keyPL: "pl-bob"}
		},
	},
	{
		// Topic reset: bob sets a topic while alice bans him. The ban (a power event) applies
		// first; bob's topic then fails and the older topic comes back.
		name: "banned user's topic is undone", versions: allVersions,
		build: func(t testing.TB, rv id.RoomVersion) (*testRoom, []StateMap, map[Key]string) {
			r, base := newRoom(t, rv, nil)
			base.send("bob-join", typeMember, bob.String(), bob, `{"membership":"join"}`)
			base.send("topic-alice", "m.room.topic", "", alice, `{"topic":"alice"}`)
			base.send("pl-bob-50", typePowerLevels, "", alice, plContent(usersWith(rv, map[id.UserID]int{bob: 50})))
			a, b := base.branch(), base.branch()
			a.send("topic-bob", "m.room.topic", "", bob, `{"topic":"bob"}`)
			b.send("alice-bans-bob", typeMember, bob.String(), alice, `{"membership":"ban"}`)
			return r, []StateMap{a.state, b.state}, map[Key]string{keyTopic: "topic-alice", member(bob): "alice-bans-bob", keyPL: "pl-bob-50"}
		},
	},
	{
		// Three forks: a kick, a join rule change and a topic; everything authorised survives.
		name: "three forks merge", versions: allVersions,
		build: func(t testing.TB, rv id.RoomVersion) (*testRoom, []StateMap, map[Key]string) {
			r, base := newRoom(t, rv, nil)
			base.send("charlie-join", typeMember, charlie.String(), charlie, `{"membership":"join"}`)
			a, b, c := base.branch(), base.branch(), base.branch()
			a.send("alice-kicks-charlie", typeMember, charlie.String(), alice, `{"membership":"leave"}`)
			b.send("jr-invite", typeJoinRules, "", alice, `{"join_rule":"invite"}`)
			c.send("topic-c", "m.room.topic", "", alice, `{"topic":"c"}`)
			return r, []StateMap{a.state, b.state, c.state}, map[Key]string{member(charlie): "alice-kicks-charlie", keyJR: "jr-invite", keyTopic: "topic-c"}
		},
	},
}

// usersWith gives a power levels users map with alice at 100 where the version wants her listed.
func usersWith(rv id.RoomVersion, users map[id.UserID]int) map[id.UserID]int {
	out := map[id.UserID]int{}
	if !rv.PrivilegedRoomCreators() {
		out[alice] = 100
	}
	maps.Copy(out, users)
	return out
}

func TestScenarios(t *testing.T) {
	for _, sc := range scenarios {
		for _, rv := range sc.versions {
			t.Run(sc.name+"/v"+string(rv), func(t *testing.T) {
				r, sets, want := sc.build(t, rv)
				got := r.resolve(sets...)
				checkExpect(t, r, got, want)
				// Unconflicted keys come through untouched.
				for k, v := range sets[0] {
					same := true
					for _, s := range sets[1:] {
						same = same && s[k] == v
					}
					if same && got[k] != v {
						t.Errorf("unconflicted %v changed to %s", k, r.names[got[k]])
					}
				}
				// Every order of the sets gives the same answer.
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
}

func checkExpect(t *testing.T, r *testRoom, got StateMap, want map[Key]string) {
	t.Helper()
	for k, name := range want {
		eid, ok := got[k]
		switch {
		case name == "" && ok:
			t.Errorf("%v = %s, want absent", k, r.names[eid])
		case name != "" && r.names[eid] != name:
			t.Errorf("%v = %q, want %q (state %v)", k, r.names[eid], name, r.named(got))
		}
	}
}

func permutations(n int) [][]int {
	if n == 1 {
		return [][]int{{0}}
	}
	var out [][]int
	for _, p := range permutations(n - 1) {
		for i := 0; i <= len(p); i++ {
			q := append(append(append([]int{}, p[:i]...), n-1), p[i:]...)
			out = append(out, q)
		}
	}
	return out
}

// TestStateResetPrevention holds the cases where v2.1 (room v12) answers differently from v2:
// MSC4297's state resets. Each builds the same history in both room versions, then resolves a
// correct state set against one that (as after a partial /state sync) holds an older event.
func TestStateResetPrevention(t *testing.T) {
	cases := []struct {
		name  string
		build func(t testing.TB, rv id.RoomVersion) (*testRoom, []StateMap)
		v2    map[Key]string
		v21   map[Key]string
	}{
		{
			// Problem A: alice changed the join rules and later left. Both sets agree she
			// left; one holds the old join rules. v2 re-checks both join rules events against
			// the unconflicted state (alice gone), both fail, and the room loses its join
			// rules. v2.1 checks them from an empty state against their own auth events.
			name: "problem A: join rules replayed after sender left",
			build: func(t testing.TB, rv id.RoomVersion) (*testRoom, []StateMap) {
				r, f := newRoom(t, rv, map[id.UserID]int{bob: 100})
				f.send("bob-join", typeMember, bob.String(), bob, `{"membership":"join"}`)
				old := f.state[keyJR]
				f.send("jr-invite", typeJoinRules, "", alice, `{"join_rule":"invite"}`)
				f.send("alice-leaves", typeMember, alice.String(), alice, `{"membership":"leave"}`)
				stale := maps.Clone(f.state)
				stale[keyJR] = old
				return r, []StateMap{f.state, stale}
			},
			v2:  map[Key]string{keyJR: "", member(alice): "alice-leaves"},
			v21: map[Key]string{keyJR: "jr-invite", member(alice): "alice-leaves"},
		},
		{
			// Problem B: alice promotes bob, bob promotes charlie; one set holds the original
			// levels but cites the newer ones through charlie's topic, so bob's promotion is in
			// every auth chain and v2 does not replay it: charlie's promotion then fails
			// against the old levels. v2.1's conflicted subgraph replays bob's promotion.
			name: "problem B: intermediate promotion replayed",
			build: func(t testing.TB, rv id.RoomVersion) (*testRoom, []StateMap) {
				r, f := newRoom(t, rv, nil)
				f.send("bob-join", typeMember, bob.String(), bob, `{"membership":"join"}`)
				f.send("charlie-join", typeMember, charlie.String(), charlie, `{"membership":"join"}`)
				old := f.state[keyPL]
				f.send("pl-bob", typePowerLevels, "", alice, plContent(usersWith(rv, map[id.UserID]int{bob: 50})))
				f.send("pl-charlie", typePowerLevels, "", bob, plContent(usersWith(rv, map[id.UserID]int{bob: 50, charlie: 50})))
				f.send("topic-charlie", "m.room.topic", "", charlie, `{"topic":"charlie"}`)
				stale := maps.Clone(f.state)
				stale[keyPL] = old
				return r, []StateMap{f.state, stale}
			},
			v2:  map[Key]string{keyPL: "pl1", keyTopic: "topic-charlie"},
			v21: map[Key]string{keyPL: "pl-charlie", keyTopic: "topic-charlie"},
		},
		{
			// The sender of a power levels change has since left (both sets agree); one set
			// holds the older levels. v2 rejects the change (sender not joined in the
			// unconflicted state) and resets; v2.1 keeps it.
			name: "power levels change by a member who left",
			build: func(t testing.TB, rv id.RoomVersion) (*testRoom, []StateMap) {
				r, f := newRoom(t, rv, map[id.UserID]int{bob: 50})
				old := f.state[keyPL]
				f.send("bob-join", typeMember, bob.String(), bob, `{"membership":"join"}`)
				f.send("charlie-join", typeMember, charlie.String(), charlie, `{"membership":"join"}`)
				f.send("pl-bob-promotes-charlie", typePowerLevels, "", bob, plContent(usersWith(rv, map[id.UserID]int{bob: 50, charlie: 50})))
				f.send("bob-leaves", typeMember, bob.String(), bob, `{"membership":"leave"}`)
				stale := maps.Clone(f.state)
				stale[keyPL] = old
				return r, []StateMap{f.state, stale}
			},
			v2:  map[Key]string{keyPL: "pl1", member(bob): "bob-leaves"},
			v21: map[Key]string{keyPL: "pl-bob-promotes-charlie", member(bob): "bob-leaves"},
		},
	}
	for _, tc := range cases {
		for _, rv := range []id.RoomVersion{id.RoomV10, id.RoomV11, id.RoomV12} {
			t.Run(tc.name+"/v"+string(rv), func(t *testing.T) {
				r, sets := tc.build(t, rv)
				want := tc.v2
				if rv == id.RoomV12 {
					want = tc.v21
				}
				got := r.resolve(sets...)
				checkExpect(t, r, got, want)
				if again := r.resolve(sets[1], sets[0]); !maps.Equal(again, got) {
					t.Fatalf("set order changed the result: %v vs %v", r.named(again), r.named(got))
				}
			})
		}
	}
}

// TestConflictedSubgraph checks v2.1 adds events on auth paths between conflicted events
// (bob's join and the join rules it cites lie between his power levels change and the older
// levels) while v2's full conflicted set has only the conflicted events and the auth difference.
func TestConflictedSubgraph(t *testing.T) {
	for _, tc := range []struct {
		rv   id.RoomVersion
		want []string
	}{
		{id.RoomV11, []string{"pl-bob", "pl1"}},
		{id.RoomV12, []string{"bob-join", "jr-public", "pl-bob", "pl1"}},
	} {
		t.Run("v"+string(tc.rv), func(t *testing.T) {
			r, f := newRoom(t, tc.rv, map[id.UserID]int{bob: 50})
			pl1 := f.state[keyPL]
			f.send("bob-join", typeMember, bob.String(), bob, `{"membership":"join"}`)
			f.send("zara-join", typeMember, zara.String(), zara, `{"membership":"join"}`)
			f.send("pl-bob", typePowerLevels, "", bob, plContent(usersWith(tc.rv, map[id.UserID]int{bob: 50, charlie: 5})))
			f.send("bob-leaves", typeMember, bob.String(), bob, `{"membership":"leave"}`)
			reset := maps.Clone(f.state)
			reset[keyPL] = pl1
			sets := []StateMap{f.state, reset}
			algo, err := algorithmFor(tc.rv)
			if err != nil {
				t.Fatal(err)
			}
			rs := &resolver{ctx: context.Background(), rv: tc.rv, algo: algo, g: newGraph(context.Background(), r.fetch, 0)}
			_, conflicted, _, err := partition(sets)
			if err != nil {
				t.Fatal(err)
			}
			full, err := rs.fullConflictedSet(sets, conflicted)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, n := range full {
				names = append(names, r.names[rs.g.ids[n]])
			}
			slices.Sort(names)
			if !slices.Equal(names, tc.want) {
				t.Fatalf("full conflicted set %v, want %v", names, tc.want)
			}
		})
	}
}

// TestAuthDifference: events reached from only one fork are in the difference, events every
// fork reaches are not.
func TestAuthDifference(t *testing.T) {
	r, base := newRoom(t, id.RoomV11, map[id.UserID]int{bob: 50})
	base.send("bob-join", typeMember, bob.String(), bob, `{"membership":"join"}`)
	a, b := base.branch(), base.branch()
	a.send("pl-a", typePowerLevels, "", alice, plContent(usersWith(id.RoomV11, map[id.UserID]int{bob: 50, charlie: 1})))
	// bob's topic cites pl-a; then pl-a is replaced, so pl-a is only in A's auth chain.
	a.send("topic-a", "m.room.topic", "", bob, `{"topic":"a"}`)
	a.send("pl-a2", typePowerLevels, "", alice, plContent(usersWith(id.RoomV11, map[id.UserID]int{bob: 50, charlie: 2})))
	b.send("topic-b", "m.room.topic", "", alice, `{"topic":"b"}`)
	rs := &resolver{ctx: context.Background(), rv: id.RoomV11, algo: algoV2, g: newGraph(context.Background(), r.fetch, 0)}
	diff, err := rs.authDifference([]StateMap{a.state, b.state})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, n := range diff {
		names = append(names, r.names[rs.g.ids[n]])
	}
	slices.Sort(names)
	want := []string{"pl-a", "pl-a2", "topic-a", "topic-b"}
	if !slices.Equal(names, want) {
		t.Fatalf("auth difference %v, want %v", names, want)
	}
}

// TestRejectedAuthEventNotUsed: a conflicted join whose only way to meet the join rules is an
// auth event marked rejected loses, while the same join with that event accepted wins.
func TestRejectedAuthEventNotUsed(t *testing.T) {
	for _, rejected := range []bool{false, true} {
		r, base := newRoom(t, id.RoomV12, nil)
		a, b := base.branch(), base.branch()
		a.send("topic-a", "m.room.topic", "", alice, `{"topic":"a"}`)
		b.send("zara-join", typeMember, zara.String(), zara, `{"membership":"join"}`)
		// Drop the join rules from both sets so the join's own auth event must be used.
		jr := base.state[keyJR]
		delete(a.state, keyJR)
		delete(b.state, keyJR)
		r.evs[jr].Rejected = rejected
		got := r.resolve(a.state, b.state)
		_, joined := got[member(zara)]
		if joined == rejected {
			t.Errorf("rejected=%v: zara joined = %v", rejected, joined)
		}
	}
}

// TestRejectedEventReauthorised: an event the caller marked rejected is still put through the
// auth rules (the spec resolves state with such events "as usual") and wins when they allow it.
func TestRejectedEventReauthorised(t *testing.T) {
	for _, rejected := range []bool{false, true} {
		r, base := newRoom(t, id.RoomV11, nil)
		a, b := base.branch(), base.branch()
		a.sendAt(100, "topic-a", "m.room.topic", "", alice, `{"topic":"a"}`)
		b.sendAt(200, "topic-b", "m.room.topic", "", alice, `{"topic":"b"}`)
		r.evs[b.state[keyTopic]].Rejected = rejected
		got := r.resolve(a.state, b.state)
		checkExpect(t, r, got, map[Key]string{keyTopic: "topic-b"})
	}
}

// TestRestrictedJoinNeedsKeys: a restricted join is re-checked by the auth rules, which verify
// the authorising server's signature; with the keyring it passes, without it the join loses.
func TestRestrictedJoinNeedsKeys(t *testing.T) {
	r, base := newRoom(t, id.RoomV12, nil)
	base.send("jr-restricted", typeJoinRules, "", alice, `{"join_rule":"restricted","allow":[{"type":"m.room_membership","room_id":"!other:hs.test"}]}`)
	a, b := base.branch(), base.branch()
	a.send("topic-a", "m.room.topic", "", alice, `{"topic":"a"}`)
	b.send("zara-join", typeMember, zara.String(), zara, `{"membership":"join","join_authorised_via_users_server":"@alice:hs.test"}`)
	got := r.resolve(a.state, b.state)
	if _, ok := got[member(zara)]; ok {
		t.Fatal("restricted join accepted without a keyring")
	}
	pub := r.signer.Key.Public().(ed25519.PublicKey)
	keys := func(server string, kid id.KeyID, _ time.Time) (id.SigningKey, time.Time, error) {
		if server != "hs.test" || kid != r.signer.KeyID {
			return "", time.Time{}, errors.New("unknown key")
		}
		return id.SigningKey(base64.RawStdEncoding.EncodeToString(pub)), epoch.Add(24 * time.Hour), nil
	}
	got, err := ResolveWith(context.Background(), id.RoomV12, []StateMap{a.state, b.state}, r.fetch, Options{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	checkExpect(t, r, got, map[Key]string{member(zara): "zara-join", keyTopic: "topic-a"})
}

func TestTrivialInputs(t *testing.T) {
	r, base := newRoom(t, id.RoomV12, nil)
	ctx := context.Background()
	if got, err := Resolve(ctx, id.RoomV12, nil, r.fetch); err != nil || len(got) != 0 {
		t.Fatalf("no sets: %v %v", got, err)
	}
	one, err := Resolve(ctx, id.RoomV12, []StateMap{base.state}, r.fetch)
	if err != nil || !maps.Equal(one, base.state) {
		t.Fatalf("one set: %v %v", one, err)
	}
	one[keyTopic] = "$x"
	if _, ok := base.state[keyTopic]; ok {
		t.Fatal("result aliases the input map")
	}
	r.fetched.Store(0)
	same, err := Resolve(ctx, id.RoomV12, []StateMap{base.state, maps.Clone(base.state)}, r.fetch)
	if err != nil || !maps.Equal(same, base.state) {
		t.Fatalf("equal sets: %v %v", same, err)
	}
	if n := r.fetched.Load(); n != 0 {
		t.Fatalf("equal sets fetched %d events, want none", n)
	}
}

func TestErrors(t *testing.T) {
	r, base := newRoom(t, id.RoomV11, nil)
	a, b := base.branch(), base.branch()
	a.send("topic-a", "m.room.topic", "", alice, `{"topic":"a"}`)
	b.send("topic-b", "m.room.topic", "", alice, `{"topic":"b"}`)
	sets := []StateMap{a.state, b.state}
	ctx := context.Background()
	for _, rv := range []id.RoomVersion{id.RoomV0, "", "13", "org.example.custom"} {
		if _, err := Resolve(ctx, rv, sets, r.fetch); !errors.Is(err, ErrUnsupportedVersion) {
			t.Errorf("version %q: err = %v", rv, err)
		}
	}
	missing := maps.Clone(b.state)
	missing[keyTopic] = "$nope"
	if _, err := Resolve(ctx, id.RoomV11, []StateMap{a.state, missing}, r.fetch); !errors.Is(err, ErrMissingEvent) {
		t.Errorf("missing conflicted event: err = %v", err)
	}
	wrongKey := maps.Clone(b.state)
	wrongKey[keyTopic] = b.state[keyJR]
	if _, err := Resolve(ctx, id.RoomV11, []StateMap{a.state, wrongKey}, r.fetch); !errors.Is(err, ErrBadState) {
		t.Errorf("event under the wrong key: err = %v", err)
	}
	boom := errors.New("disk on fire")
	failing := func(context.Context, []id.EventID) ([]*Event, error) { return nil, boom }
	if _, err := Resolve(ctx, id.RoomV11, sets, failing); !errors.Is(err, boom) {
		t.Errorf("fetch error: err = %v", err)
	}
	short := func(context.Context, []id.EventID) ([]*Event, error) { return nil, nil }
	if _, err := Resolve(ctx, id.RoomV11, sets, short); err == nil {
		t.Error("short fetch answer accepted")
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := Resolve(cancelled, id.RoomV11, sets, r.fetch); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: err = %v", err)
	}
}
