package stateres

import (
	"context"
	"encoding/json/jsontext"
	"fmt"
	"maps"
	"testing"

	"maunium.net/go/mautrix/federation/pdu"
	"maunium.net/go/mautrix/id"
)

// byteReader turns fuzz input into choices; past the end it yields zeros.
type byteReader struct {
	b []byte
	i int
}

func (r *byteReader) next() int {
	if r.i >= len(r.b) {
		r.i++
		return 0
	}
	v := r.b[r.i]
	r.i++
	return int(v)
}

func (r *byteReader) pick(n int) int { return r.next() % n }

// fuzzRoom is an arbitrary auth graph: unsigned PDUs with random types, senders, contents and
// auth_events (forward references, cycles, missing and rejected events included). Resolve
// does not check hashes or signatures, so none are needed to reach every code path.
type fuzzRoom struct {
	honest bool
	rv     id.RoomVersion
	evs    map[id.EventID]*Event
	sets   []StateMap
}

func genFuzzRoom(data []byte) *fuzzRoom {
	r := &byteReader{b: data}
	versions := []id.RoomVersion{id.RoomV3, id.RoomV8, id.RoomV10, id.RoomV11, id.RoomV12}
	fr := &fuzzRoom{rv: versions[r.pick(len(versions))], evs: map[id.EventID]*Event{}}
	// An honest graph cites only older events, with depth growing along auth links.
	fr.honest = r.pick(2) == 0
	users := []id.UserID{alice, bob, charlie, zara}
	n := 2 + r.pick(24)
	ids := make([]id.EventID, n)
	for i := range ids {
		ids[i] = id.EventID(fmt.Sprintf("$%043d", i))
	}
	roomID := id.RoomID("!room:hs.test")
	if fr.rv.RoomIDIsCreateEventID() {
		roomID = id.RoomID("!" + string(ids[0][1:]))
	}
	memberships := []string{"join", "leave", "ban", "invite", "knock", "bogus"}
	rules := []string{"public", "invite", "knock", "restricted", "knock_restricted"}
	for i, eid := range ids {
		sender := users[r.pick(len(users))]
		typ, sk, content := "", "", "{}"
		switch kind := r.pick(6); {
		case i == 0 || kind == 0:
			typ, content = typeCreate, fmt.Sprintf(`{"room_version":%q,"creator":%q}`, fr.rv, sender)
		case kind == 1:
			typ, sk = typeMember, users[r.pick(len(users))].String()
			content = fmt.Sprintf(`{"membership":%q}`, memberships[r.pick(len(memberships))])
		case kind == 2:
			typ = typePowerLevels
			content = fmt.Sprintf(`{"users":{%q:%d,%q:"%d"},"users_default":%d,"state_default":%d}`,
				users[r.pick(4)], r.next()-100, users[r.pick(4)], r.next(), r.pick(3)*25, r.pick(3)*25)
			if r.pick(8) == 0 {
				content = `{"users":[1,2],"users_default":"x"}`
			}
		case kind == 3:
			typ, content = typeJoinRules, fmt.Sprintf(`{"join_rule":%q}`, rules[r.pick(len(rules))])
		case kind == 4:
			typ, content = "m.room.topic", `{"topic":"t"}`
		default:
			typ, sk = "m.room.name", ""
			if r.pick(4) == 0 {
				content = `not json`
			}
		}
		p := &pdu.PDU{
			Type: typ, Sender: sender, RoomID: roomID, Content: jsontext.Value(content),
			Depth: int64(r.next()), OriginServerTS: int64(r.pick(4)), PrevEvents: []id.EventID{},
		}
		if typ == typeCreate && fr.rv.RoomIDIsCreateEventID() {
			p.RoomID = ""
		}
		if r.pick(10) != 0 {
			s := sk
			p.StateKey = &s
		}
		for range r.pick(5) {
			switch {
			case fr.honest && i > 0:
				p.AuthEvents = append(p.AuthEvents, ids[r.pick(i)])
			case fr.honest:
			case r.pick(10) == 0:
				p.AuthEvents = append(p.AuthEvents, "$missing")
			default:
				p.AuthEvents = append(p.AuthEvents, ids[r.pick(n)])
			}
		}
		if fr.honest {
			p.Depth = int64(i + 1)
		}
		if r.pick(12) == 0 {
			continue // the store lost this one
		}
		fr.evs[eid] = &Event{ID: eid, PDU: p, Rejected: r.pick(8) == 0}
	}
	for range 2 + r.pick(3) {
		set := StateMap{}
		for range r.pick(n + 1) {
			eid := ids[r.pick(n)]
			ev := fr.evs[eid]
			if ev == nil || ev.PDU.StateKey == nil {
				if r.pick(6) == 0 {
					set[Key{"m.room.name", ""}] = eid // garbage entry
				}
				continue
			}
			set[Key{ev.PDU.Type, *ev.PDU.StateKey}] = eid
		}
		fr.sets = append(fr.sets, set)
	}
	return fr
}

func (fr *fuzzRoom) fetch(_ context.Context, ids []id.EventID) ([]*Event, error) {
	out := make([]*Event, len(ids))
	for i, eid := range ids {
		out[i] = fr.evs[eid]
	}
	return out, nil
}

// FuzzResolve: Resolve never panics on arbitrary graphs, is independent of the order of the
// sets, and only ever answers with events filed under their own key.
func FuzzResolve(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{4, 10, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20})
	f.Add([]byte("state resolution v2.1 fuzz seed with some length to it, enough for a dozen events"))
	f.Add([]byte{3, 20, 0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 1, 2, 1, 2, 1, 2, 200, 100, 50, 25, 12, 6, 3, 1})
	for i := range 16 {
		seed := make([]byte, 200)
		for j := range seed {
			seed[j] = byte((i*131 + j*17 + j*j) % 251)
		}
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fr := genFuzzRoom(data)
		ctx := context.Background()
		got, err := Resolve(ctx, fr.rv, fr.sets, fr.fetch)
		rev := make([]StateMap, len(fr.sets))
		for i, s := range fr.sets {
			rev[len(rev)-1-i] = s
		}
		again, err2 := Resolve(ctx, fr.rv, rev, fr.fetch)
		if (err == nil) != (err2 == nil) {
			t.Fatalf("set order changed the outcome: %v vs %v", err, err2)
		}
		if err != nil {
			return
		}
		if !maps.Equal(got, again) {
			t.Fatalf("set order changed the result:\n%v\n%v", got, again)
		}
		for k, eid := range got {
			ev := fr.evs[eid]
			inSets := false
			for _, s := range fr.sets {
				inSets = inSets || s[k] == eid
			}
			if ev == nil {
				if !inSets {
					t.Fatalf("%v resolved to unknown event %s", k, eid)
				}
				continue
			}
			if !inSets && (ev.PDU.StateKey == nil || (Key{ev.PDU.Type, *ev.PDU.StateKey}) != k) {
				t.Fatalf("%v resolved to %s, an event of another key", k, eid)
			}
		}
	})
}
