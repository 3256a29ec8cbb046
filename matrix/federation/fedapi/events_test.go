package fedapi

import (
	"encoding/json"
	"net/http"
	"testing"

	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/events"
	"github.com/hearth-home/hearth/matrix/rooms"
)

// pduIDs computes the event IDs of the PDUs of an answer (room version rv), so a test can
// check which events came back without trusting the server's own bookkeeping.
func pduIDs(t *testing.T, v any, rv id.RoomVersion) []string {
	t.Helper()
	arr, ok := v.([]any)
	if !ok {
		t.Fatalf("pdus %v is not an array", v)
	}
	out := make([]string, 0, len(arr))
	for _, x := range arr {
		raw, _ := json.Marshal(x)
		p, err := events.Parse(raw)
		if err != nil {
			t.Fatalf("answer holds an invalid PDU: %v", err)
		}
		eid, err := p.GetEventID(rv)
		if err != nil {
			t.Fatalf("event ID: %v", err)
		}
		out = append(out, eid.String())
	}
	return out
}

// sharedRoom is a public room (history "shared") with a local and a remote member, a topic
// change and a few messages.
type sharedRoom struct {
	id                 id.RoomID
	alice, bob         id.UserID
	create, bobJoin    id.EventID
	topic1, topic2     id.EventID
	m1, m2, m3, m4, m5 id.EventID
}

func newSharedRoom(t *testing.T, e *env) *sharedRoom {
	t.Helper()
	r := &sharedRoom{alice: e.user(t, "alice"), bob: "@bob:remote.test"}
	r.id = e.createRoom(t, rooms.CreateRequest{Creator: r.alice, Preset: "public_chat", Visibility: "public", RoomAliasName: "shared", Name: sp("Shared")})
	cr, err := e.rooms.CurrentState(bg, r.id, "m.room.create", "")
	if err != nil || cr == nil {
		t.Fatalf("create event: %v", err)
	}
	r.create = id.EventID(cr.Rec.ID)
	r.m1 = e.msg(t, r.id, r.alice, "one")
	r.topic1 = e.state(t, r.id, r.alice, "m.room.topic", "", map[string]any{"topic": "first"})
	r.bobJoin = e.join(t, r.id, r.bob)
	r.m2 = e.msg(t, r.id, r.bob, "two")
	r.topic2 = e.state(t, r.id, r.alice, "m.room.topic", "", map[string]any{"topic": "second"})
	r.m3 = e.msg(t, r.id, r.alice, "three")
	r.m4 = e.msg(t, r.id, r.alice, "four")
	r.m5 = e.msg(t, r.id, r.alice, "five")
	return r
}

func TestVersionAndAuthentication(t *testing.T) {
	e := newEnv(t)
	m := e.get(t, "", "/v1/version").ok(t) // no signature needed
	srv, _ := m["server"].(map[string]any)
	if srv["name"] != "Hearth" || srv["version"] != "test" {
		t.Errorf("version answer %v", m)
	}
	// Without an authenticated origin the signed endpoints refuse.
	e.get(t, "", "/v1/publicRooms").fail(t, http.StatusUnauthorized, "M_UNAUTHORIZED")
	// Unknown query types are unrecognised.
	e.get(t, "remote.test", "/v1/query/nonsense").fail(t, http.StatusNotFound, "M_UNRECOGNIZED")
}

func TestStateIDs(t *testing.T) {
	e := newEnv(t)
	r := newSharedRoom(t, e)
	path := func(ev id.EventID) string {
		return "/v1/state_ids/" + esc(r.id.String()) + "?event_id=" + q(ev.String())
	}

	// The state before topic2 holds topic1, not topic2 itself.
	m := e.get(t, "remote.test", path(r.topic2)).ok(t)
	pduIDsList := strs(t, m["pdu_ids"])
	if !contains(pduIDsList, r.topic1.String()) || contains(pduIDsList, r.topic2.String()) {
		t.Errorf("state before topic2 %v: want topic1 %s and not topic2 %s", pduIDsList, r.topic1, r.topic2)
	}
	if !contains(pduIDsList, r.bobJoin.String()) || !contains(pduIDsList, r.create.String()) {
		t.Errorf("state before topic2 lacks bob's join or the create event: %v", pduIDsList)
	}
	chain := strs(t, m["auth_chain_ids"])
	if !contains(chain, r.create.String()) {
		t.Errorf("auth chain %v lacks the create event", chain)
	}
	// The state after topic2 (before m3) has topic2.
	if ids := strs(t, e.get(t, "remote.test", path(r.m3)).ok(t)["pdu_ids"]); !contains(ids, r.topic2.String()) || contains(ids, r.topic1.String()) {
		t.Errorf("state before m3 %v: want topic2 only", ids)
	}
	// Before bob joined, his join is not in the state.
	if ids := strs(t, e.get(t, "remote.test", path(r.bobJoin)).ok(t)["pdu_ids"]); contains(ids, r.bobJoin.String()) {
		t.Errorf("state before bob's join holds it: %v", ids)
	}

	// Errors.
	e.get(t, "remote.test", "/v1/state_ids/"+esc(r.id.String())).fail(t, http.StatusBadRequest, "M_MISSING_PARAM")
	e.get(t, "remote.test", "/v1/state_ids/"+esc(r.id.String())+"?event_id=nope").fail(t, http.StatusBadRequest, "M_INVALID_PARAM")
	e.get(t, "remote.test", "/v1/state_ids/notaroom?event_id="+q(r.m1.String())).fail(t, http.StatusBadRequest, "M_INVALID_PARAM")
	e.get(t, "remote.test", path("$unknown")).fail(t, http.StatusNotFound, "M_NOT_FOUND")
	e.get(t, "remote.test", "/v1/state_ids/"+esc("!unknown:hearth.test")+"?event_id="+q(r.m1.String())).fail(t, http.StatusNotFound, "M_NOT_FOUND")
	other := e.createRoom(t, rooms.CreateRequest{Creator: r.alice, Preset: "public_chat"})
	e.get(t, "remote.test", "/v1/state_ids/"+esc(other.String())+"?event_id="+q(r.m1.String())).fail(t, http.StatusNotFound, "M_NOT_FOUND")
}

func TestStateFull(t *testing.T) {
	e := newEnv(t)
	r := newSharedRoom(t, e)
	rv, _ := e.rooms.Version(r.id)
	ids := e.get(t, "remote.test", "/v1/state_ids/"+esc(r.id.String())+"?event_id="+q(r.m3.String())).ok(t)
	full := e.get(t, "remote.test", "/v1/state/"+esc(r.id.String())+"?event_id="+q(r.m3.String())).ok(t)
	// The full answer's PDUs hash to the IDs the ID answer lists.
	for _, k := range [][2]string{{"pdus", "pdu_ids"}, {"auth_chain", "auth_chain_ids"}} {
		got, want := pduIDs(t, full[k[0]], rv), strs(t, ids[k[1]])
		if len(got) != len(want) || len(got) == 0 {
			t.Fatalf("%s: %d events, %s: %d", k[0], len(got), k[1], len(want))
		}
		for _, g := range got {
			if !contains(want, g) {
				t.Errorf("%s holds %s, which %s does not list", k[0], g, k[1])
			}
		}
	}
}

func TestEventAndEventAuth(t *testing.T) {
	e := newEnv(t)
	r := newSharedRoom(t, e)
	rv, _ := e.rooms.Version(r.id)

	m := e.get(t, "remote.test", "/v1/event/"+esc(r.m2.String())).ok(t)
	if m["origin"] != ourServer || m["origin_server_ts"] == nil {
		t.Errorf("transaction fields: %v", m)
	}
	if got := pduIDs(t, m["pdus"], rv); len(got) != 1 || got[0] != r.m2.String() {
		t.Errorf("event answer holds %v, want %s", got, r.m2)
	}
	e.get(t, "remote.test", "/v1/event/"+esc("$nope")).fail(t, http.StatusNotFound, "M_NOT_FOUND")
	e.get(t, "remote.test", "/v1/event/nope").fail(t, http.StatusBadRequest, "M_INVALID_PARAM")

	a := e.get(t, "remote.test", "/v1/event_auth/"+esc(r.id.String())+"/"+esc(r.m2.String())).ok(t)
	chain := pduIDs(t, a["auth_chain"], rv)
	if !contains(chain, r.bobJoin.String()) || !contains(chain, r.create.String()) {
		t.Errorf("auth chain of m2 %v lacks bob's join %s or the create event", chain, r.bobJoin)
	}
	if contains(chain, r.m2.String()) || contains(chain, r.m1.String()) {
		t.Errorf("auth chain of m2 holds non-auth events: %v", chain)
	}
	e.get(t, "remote.test", "/v1/event_auth/"+esc(r.id.String())+"/"+esc("$nope")).fail(t, http.StatusNotFound, "M_NOT_FOUND")
}

// A room with history "joined": a server sees only what happened while one of its users was
// joined; a server with no user there sees nothing; world_readable opens it to anyone.
func TestVisibilityForServers(t *testing.T) {
	e := newEnv(t)
	alice := e.user(t, "alice")
	room := e.createRoom(t, rooms.CreateRequest{Creator: alice, Preset: "public_chat"})
	e.state(t, room, alice, "m.room.history_visibility", "", map[string]any{"history_visibility": "joined"})
	early := e.msg(t, room, alice, "before bob")
	bobJoin := e.join(t, room, "@bob:remote.test")
	late := e.msg(t, room, alice, "after bob")

	e.get(t, "remote.test", "/v1/event/"+esc(late.String())).ok(t)
	e.get(t, "remote.test", "/v1/event/"+esc(bobJoin.String())).ok(t) // its own join
	e.get(t, "remote.test", "/v1/event/"+esc(early.String())).fail(t, http.StatusForbidden, "M_FORBIDDEN")
	e.get(t, "stranger.test", "/v1/event/"+esc(late.String())).fail(t, http.StatusForbidden, "M_FORBIDDEN")
	e.get(t, "stranger.test", "/v1/state_ids/"+esc(room.String())+"?event_id="+q(late.String())).fail(t, http.StatusForbidden, "M_FORBIDDEN")
	e.get(t, "stranger.test", "/v1/state/"+esc(room.String())+"?event_id="+q(late.String())).fail(t, http.StatusForbidden, "M_FORBIDDEN")
	e.get(t, "stranger.test", "/v1/event_auth/"+esc(room.String())+"/"+esc(late.String())).fail(t, http.StatusForbidden, "M_FORBIDDEN")
	e.get(t, "stranger.test", "/v1/backfill/"+esc(room.String())+"?v="+q(late.String())+"&limit=5").fail(t, http.StatusForbidden, "M_FORBIDDEN")
	e.do(t, "stranger.test", http.MethodPost, "/v1/get_missing_events/"+esc(room.String()),
		map[string]any{"earliest_events": []string{}, "latest_events": []string{late.String()}}).fail(t, http.StatusForbidden, "M_FORBIDDEN")

	// Backfill for bob's server leaves out what happened before bob joined.
	rv, _ := e.rooms.Version(room)
	got := pduIDs(t, e.get(t, "remote.test", "/v1/backfill/"+esc(room.String())+"?v="+q(late.String())+"&limit=50").ok(t)["pdus"], rv)
	if !contains(got, late.String()) || !contains(got, bobJoin.String()) || contains(got, early.String()) {
		t.Errorf("backfill for remote.test %v: want late and bob's join, not the earlier message", got)
	}

	wr := e.state(t, room, alice, "m.room.history_visibility", "", map[string]any{"history_visibility": "world_readable"})
	after := e.msg(t, room, alice, "readable")
	e.get(t, "stranger.test", "/v1/event/"+esc(after.String())).ok(t)
	e.get(t, "stranger.test", "/v1/event/"+esc(wr.String())).ok(t)
	e.get(t, "stranger.test", "/v1/event/"+esc(early.String())).fail(t, http.StatusForbidden, "M_FORBIDDEN")
}

func TestServerACL(t *testing.T) {
	e := newEnv(t)
	r := newSharedRoom(t, e)
	e.join(t, r.id, "@mallory:evil.test:8448") // a server name with a port; the ACL ignores it
	probe := e.msg(t, r.id, r.alice, "probe")
	paths := []string{
		"/v1/event/" + esc(probe.String()),
		"/v1/state_ids/" + esc(r.id.String()) + "?event_id=" + q(probe.String()),
		"/v1/state/" + esc(r.id.String()) + "?event_id=" + q(probe.String()),
		"/v1/event_auth/" + esc(r.id.String()) + "/" + esc(probe.String()),
		"/v1/backfill/" + esc(r.id.String()) + "?v=" + q(probe.String()) + "&limit=3",
	}
	for _, p := range paths {
		e.get(t, "evil.test:8448", p).ok(t)
	}
	e.state(t, r.id, r.alice, "m.room.server_acl", "", map[string]any{"allow": []string{"*"}, "deny": []string{"*.evil.test", "evil.test"}})
	for _, p := range paths {
		e.get(t, "evil.test:8448", p).fail(t, http.StatusForbidden, "M_FORBIDDEN")
		e.get(t, "remote.test", p).ok(t)
	}
	e.do(t, "evil.test:8448", http.MethodPost, "/v1/get_missing_events/"+esc(r.id.String()),
		map[string]any{"earliest_events": []string{}, "latest_events": []string{probe.String()}}).fail(t, http.StatusForbidden, "M_FORBIDDEN")
}
