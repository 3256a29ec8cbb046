package stateres

import (
	"context"
	"math/rand/v2"
	"slices"
	"testing"

	"maunium.net/go/mautrix/id"
)

// naiveAncestors returns every event reachable from start through auth_events, start included.
func naiveAncestors(evs map[id.EventID]*Event, start id.EventID) map[id.EventID]bool {
	seen := map[id.EventID]bool{start: true}
	stack := []id.EventID{start}
	for len(stack) > 0 {
		eid := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		ev := evs[eid]
		if ev == nil {
			continue
		}
		for _, a := range ev.PDU.AuthEvents {
			if !seen[a] {
				seen[a] = true
				stack = append(stack, a)
			}
		}
	}
	return seen
}

// TestWalksMatchDefinitions checks the early-stopping auth difference walk and the conflicted
// subgraph walk against the spec's definitions computed the slow way (full auth chain per set,
// all-pairs reachability), on random auth graphs with cycles, lying depths and missing events.
func TestWalksMatchDefinitions(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	honest := 0
	defer func() { t.Logf("%d honest graphs", honest) }()
	for round := range 1000 {
		data := make([]byte, 40+rng.IntN(200))
		for i := range data {
			data[i] = byte(rng.IntN(256))
		}
		fr := genFuzzRoom(data)
		if len(fr.sets) < 2 {
			continue
		}
		if fr.honest {
			honest++
		}
		// Definition: union minus intersection of per-set chains (a set reaches its events).
		chains := make([]map[id.EventID]bool, len(fr.sets))
		union := map[id.EventID]bool{}
		for i, s := range fr.sets {
			chains[i] = map[id.EventID]bool{}
			for _, eid := range s {
				for a := range naiveAncestors(fr.evs, eid) {
					chains[i][a] = true
					union[a] = true
				}
			}
		}
		var wantDiff []id.EventID
		for eid := range union {
			for _, c := range chains {
				if !c[eid] {
					wantDiff = append(wantDiff, eid)
					break
				}
			}
		}
		slices.Sort(wantDiff)

		// Honest graphs take the early-stopping walk; others are checked in exhaustive mode
		// (the walk switches to it by itself only when it sees a bad link).
		rs := &resolver{ctx: context.Background(), rv: fr.rv, algo: algoV21, g: newGraph(context.Background(), fr.fetch, 0), exhaustiveWalk: !fr.honest}
		diff, err := rs.authDifference(fr.sets)
		if err != nil {
			t.Fatal(err)
		}
		gotDiff := make([]id.EventID, 0, len(diff))
		for _, n := range diff {
			gotDiff = append(gotDiff, rs.g.ids[n])
		}
		slices.Sort(gotDiff)
		if !slices.Equal(gotDiff, wantDiff) {
			t.Fatalf("round %d: auth difference %v, want %v", round, gotDiff, wantDiff)
		}

		// Definition: X is on a path from conflicted C1 to conflicted C2.
		_, conflicted, _, err := partition(fr.sets)
		if err != nil {
			continue
		}
		anc := map[id.EventID]map[id.EventID]bool{}
		for _, c := range conflicted {
			anc[c] = naiveAncestors(fr.evs, c)
		}
		var wantSub []id.EventID
		for x := range union {
			from, to := false, false
			for _, c := range conflicted {
				from = from || anc[c][x]
			}
			xa := naiveAncestors(fr.evs, x)
			for _, c := range conflicted {
				to = to || xa[c]
			}
			if from && to {
				wantSub = append(wantSub, x)
			}
		}
		for _, c := range conflicted {
			if !slices.Contains(wantSub, c) {
				wantSub = append(wantSub, c)
			}
		}
		slices.Sort(wantSub)
		cnodes := make([]int32, len(conflicted))
		for i, c := range conflicted {
			cnodes[i] = rs.g.node(c)
		}
		sub, err := rs.conflictedSubgraph(cnodes)
		if err != nil {
			t.Fatal(err)
		}
		gotSub := make([]id.EventID, 0, len(sub))
		for _, n := range sub {
			gotSub = append(gotSub, rs.g.ids[n])
		}
		slices.Sort(gotSub)
		if !slices.Equal(gotSub, wantSub) {
			t.Fatalf("round %d: conflicted subgraph %v, want %v", round, gotSub, wantSub)
		}
	}
}

// TestMainlineMatchesDefinition checks the lazily loaded mainline against the definition
// (load the whole mainline, then walk each event's chain to its first event on it).
func TestMainlineMatchesDefinition(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	checked := 0
	for round := range 600 {
		data := make([]byte, 40+rng.IntN(200))
		for i := range data {
			data[i] = byte(rng.IntN(256))
		}
		fr := genFuzzRoom(data)
		rs := &resolver{ctx: context.Background(), rv: fr.rv, g: newGraph(context.Background(), fr.fetch, 0)}
		plAuth := func(ev *Event) *Event {
			p, err := rs.powerAuth(ev)
			if err != nil {
				t.Fatal(err)
			}
			return p
		}
		var ids []id.EventID
		for eid := range fr.evs {
			ids = append(ids, eid)
		}
		slices.Sort(ids)
		for _, p0id := range ids {
			p0 := fr.evs[p0id]
			if p0.PDU.Type != typePowerLevels || p0.PDU.StateKey == nil || *p0.PDU.StateKey != "" {
				continue
			}
			full := map[id.EventID]int64{}
			for i, cur := int64(0), p0; cur != nil; i++ {
				if _, loop := full[cur.ID]; loop {
					break
				}
				full[cur.ID] = i
				cur = plAuth(cur)
			}
			ml := &mainline{r: rs, idx: map[id.EventID]int64{p0.ID: 0}, memo: map[id.EventID]int64{}, tip: p0, next: 1}
			for _, eid := range ids {
				e := fr.evs[eid]
				want := int64(notOnMainline)
				seen := map[id.EventID]bool{}
				for cur := plAuth(e); cur != nil && !seen[cur.ID]; cur = plAuth(cur) {
					seen[cur.ID] = true
					if p, ok := full[cur.ID]; ok {
						want = p
						break
					}
				}
				got, err := ml.position(plAuth(e))
				if err != nil {
					t.Fatal(err)
				}
				if got != want {
					t.Fatalf("round %d: position of %s against %s = %d, want %d", round, eid, p0id, got, want)
				}
				checked++
			}
		}
	}
	t.Logf("%d positions checked", checked)
}
