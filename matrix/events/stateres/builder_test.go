package stateres

import (
	"context"
	"crypto/ed25519"
	"encoding/json/jsontext"
	jsonv2 "encoding/json/v2"
	"fmt"
	"maps"
	"sync/atomic"
	"testing"
	"time"

	"maunium.net/go/mautrix/federation/pdu"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/events"
)

// Test rooms are made of real events: built, hashed and signed by matrix/events with a fresh
// ed25519 key, each authorised by the auth rules against its own auth events when made.

const (
	alice   id.UserID = "@alice:hs.test"
	bob     id.UserID = "@bob:hs.test"
	charlie id.UserID = "@charlie:hs.test"
	zara    id.UserID = "@zara:hs.test"
)

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

type testRoom struct {
	t      testing.TB
	rv     id.RoomVersion
	roomID id.RoomID
	signer events.Signer
	evs    map[id.EventID]*Event
	names  map[id.EventID]string
	clock  int64
	// fetched counts the IDs asked of the fetcher, to check what a resolution loads.
	fetched atomic.Int64
}

// fork is one line of history: its current state, last event and depth.
type fork struct {
	r     *testRoom
	state StateMap
	last  id.EventID
	depth int64
}

func newKey(t testing.TB) events.Signer {
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return events.Signer{ServerName: "hs.test", KeyID: "ed25519:t", Key: priv}
}

// newRoom creates a room as alice: create, alice's join, power levels (the given users map on
// top of alice at 100, or without her in v12 where creators are implicit), public join rules.
func newRoom(t testing.TB, rv id.RoomVersion, users map[id.UserID]int) (*testRoom, *fork) {
	r := &testRoom{t: t, rv: rv, signer: newKey(t), evs: map[id.EventID]*Event{}, names: map[id.EventID]string{}}
	if !rv.RoomIDIsCreateEventID() {
		r.roomID = "!room:hs.test"
	}
	f := &fork{r: r, state: StateMap{}}
	createContent := fmt.Sprintf(`{"room_version":%q}`, rv)
	if rv.CreatorInContent() {
		createContent = fmt.Sprintf(`{"room_version":%q,"creator":%q}`, rv, alice)
	}
	create := f.send("create", typeCreate, "", alice, createContent)
	if rv.RoomIDIsCreateEventID() {
		r.roomID = id.RoomID("!" + string(create[1:]))
	}
	f.send("alice-join", typeMember, alice.String(), alice, `{"membership":"join"}`)
	pl := map[id.UserID]int{}
	if !rv.PrivilegedRoomCreators() {
		pl[alice] = 100
	}
	maps.Copy(pl, users)
	f.send("pl1", typePowerLevels, "", alice, plContent(pl))
	f.send("jr-public", typeJoinRules, "", alice, `{"join_rule":"public"}`)
	return r, f
}

func plContent(users map[id.UserID]int) string {
	b, err := jsonMarshal(map[string]any{"users": users, "ban": 50, "kick": 50, "state_default": 50, "events_default": 0, "invite": 0, "redact": 50})
	if err != nil {
		panic(err)
	}
	return string(b)
}

// branch starts a new fork from this one's position.
func (f *fork) branch() *fork {
	return &fork{r: f.r, state: maps.Clone(f.state), last: f.last, depth: f.depth}
}

// send builds a state event on the fork and requires the auth rules to allow it against its
// auth events, as a server receiving it would.
func (f *fork) send(name, typ, stateKey string, sender id.UserID, content string) id.EventID {
	f.r.t.Helper()
	ev := f.build(name, typ, stateKey, sender, content, f.r.clock+1)
	if err := events.AuthorizeLocal(f.r.rv, ev.PDU, f.r.getPDUs, f.r.signer); err != nil {
		f.r.t.Fatalf("%s not authorised by its own auth events: %v", name, err)
	}
	f.apply(ev)
	return ev.ID
}

// sendAt is send with a chosen origin_server_ts offset (milliseconds after the epoch).
func (f *fork) sendAt(ts int64, name, typ, stateKey string, sender id.UserID, content string) id.EventID {
	f.r.t.Helper()
	ev := f.build(name, typ, stateKey, sender, content, ts)
	if err := events.AuthorizeLocal(f.r.rv, ev.PDU, f.r.getPDUs, f.r.signer); err != nil {
		f.r.t.Fatalf("%s not authorised by its own auth events: %v", name, err)
	}
	f.apply(ev)
	return ev.ID
}

func (f *fork) apply(ev *Event) {
	f.state[Key{ev.PDU.Type, *ev.PDU.StateKey}] = ev.ID
	f.last = ev.ID
	f.depth++
}

func (f *fork) build(name, typ, stateKey string, sender id.UserID, content string, ts int64) *Event {
	r := f.r
	r.t.Helper()
	if ts > r.clock {
		r.clock = ts
	}
	sk := stateKey
	probe := &pdu.PDU{Type: typ, StateKey: &sk, Sender: sender, Content: jsontext.Value(content)}
	var auth []id.EventID
	for _, k := range probe.AuthEventSelection(r.rv) {
		if eid, ok := f.state[Key{k.Type, k.StateKey}]; ok {
			auth = append(auth, eid)
		}
	}
	var prev []id.EventID
	if f.last != "" {
		prev = []id.EventID{f.last}
	}
	roomID := r.roomID
	if typ == typeCreate && r.rv.RoomIDIsCreateEventID() {
		roomID = ""
	}
	b, err := events.Build(r.rv, roomID, events.Template{Type: typ, StateKey: &sk, Sender: sender, Content: jsontext.Value(content)},
		prev, auth, f.depth+1, epoch.Add(time.Duration(ts)*time.Millisecond), r.signer)
	if err != nil {
		r.t.Fatalf("build %s: %v", name, err)
	}
	ev := &Event{ID: b.ID, PDU: b.PDU}
	r.evs[b.ID] = ev
	r.names[b.ID] = name
	return ev
}

func (r *testRoom) getPDUs(ids []id.EventID) ([]*pdu.PDU, error) {
	out := make([]*pdu.PDU, 0, len(ids))
	for _, eid := range ids {
		if ev, ok := r.evs[eid]; ok {
			out = append(out, ev.PDU)
		} else {
			out = append(out, nil)
		}
	}
	return out, nil
}

func (r *testRoom) fetch(_ context.Context, ids []id.EventID) ([]*Event, error) {
	r.fetched.Add(int64(len(ids)))
	out := make([]*Event, len(ids))
	for i, eid := range ids {
		out[i] = r.evs[eid]
	}
	return out, nil
}

// named renders a state map with event names, for readable failures.
func (r *testRoom) named(s StateMap) map[string]string {
	out := map[string]string{}
	for k, v := range s {
		n := r.names[v]
		if n == "" {
			n = string(v)
		}
		out[k.Type+"|"+k.StateKey] = n
	}
	return out
}

func (r *testRoom) resolve(sets ...StateMap) StateMap {
	r.t.Helper()
	got, err := Resolve(context.Background(), r.rv, sets, r.fetch)
	if err != nil {
		r.t.Fatalf("resolve: %v", err)
	}
	return got
}

func jsonMarshal(v any) ([]byte, error) { return jsonv2.Marshal(v, jsonv2.Deterministic(true)) }
