package clientapi_test

import (
	"net/http"
	"net/url"
	"testing"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/appliance/testserver"
)

// Ignored users (m.ignored_user_list): validation, and their events hidden from /sync,
// /messages, /context and /relations (state events excepted), their invites dropped.

func ignPut(t *testing.T, s *testserver.Server, cli *mautrix.Client, content any) (int, map[string]any) {
	t.Helper()
	return rxDo(t, s, http.MethodPut, "/_matrix/client/v3/user/"+rxEsc(cli.UserID.String())+"/account_data/m.ignored_user_list", cli.AccessToken, content)
}

func ignList(users ...id.UserID) map[string]any {
	m := map[string]any{}
	for _, u := range users {
		m[u.String()] = map[string]any{}
	}
	return map[string]any{"ignored_users": m}
}

func TestIgnoredUserListValidation(t *testing.T) {
	s := testserver.Start(t)
	alice := s.Register(t, "alice", false)
	for _, c := range []struct {
		what    string
		content any
		status  int
		code    string
	}{
		{"no ignored_users", map[string]any{}, 400, "M_BAD_JSON"},
		{"ignored_users null", map[string]any{"ignored_users": nil}, 400, "M_BAD_JSON"},
		{"ignored_users a list", map[string]any{"ignored_users": []string{"@bob:x"}}, 400, "M_BAD_JSON"},
		{"key not a user ID", map[string]any{"ignored_users": map[string]any{"bob": map[string]any{}}}, 400, "M_BAD_JSON"},
		{"value not an object", map[string]any{"ignored_users": map[string]any{"@bob:x": true}}, 400, "M_BAD_JSON"},
		{"ignoring yourself", ignList(alice.UserID), 400, "M_INVALID_PARAM"},
	} {
		st, b := ignPut(t, s, alice, c.content)
		rxWant(t, c.what, st, b, c.status, c.code)
	}
	if st, b := ignPut(t, s, alice, ignList("@bob:elsewhere", id.UserID("@carol:"+alice.UserID.Homeserver()))); st != 200 {
		t.Fatalf("valid list: %d %v", st, b)
	}
	if st, b := ignPut(t, s, alice, ignList()); st != 200 {
		t.Fatalf("empty list: %d %v", st, b)
	}
	// Room account data of that type is not the list and is not checked.
	room := rxRoom(t, alice)
	st, b := rxDo(t, s, http.MethodPut, "/_matrix/client/v3/user/"+rxEsc(alice.UserID.String())+"/rooms/"+rxEsc(room.String())+"/account_data/m.ignored_user_list", alice.AccessToken, map[string]any{"x": 1})
	if st != 200 {
		t.Fatalf("room account data: %d %v", st, b)
	}
}

func TestIgnoredUsersHidden(t *testing.T) {
	s := testserver.Start(t)
	alice := s.Register(t, "alice", false)
	bob := s.Register(t, "bob", false)
	chris := s.Register(t, "chris", false)
	room := rxRoom(t, alice, bob, chris)
	ctx := rxCtx(t)

	before := rxText(t, bob, room, "before ignoring")
	if st, b := ignPut(t, s, alice, ignList(bob.UserID)); st != 200 {
		t.Fatalf("ignore: %d %v", st, b)
	}
	// The list comes down /sync as account data.
	first := rxSync(t, s, alice, url.Values{})
	since := first["next_batch"].(string)
	var seenList bool
	for _, ev := range rxDig(first, "account_data", "events").([]any) {
		if rxDig(ev, "type") == "m.ignored_user_list" && rxDig(ev, "content", "ignored_users", bob.UserID.String()) != nil {
			seenList = true
		}
	}
	if !seenList {
		t.Fatalf("ignore list not in sync: %v", first["account_data"])
	}
	// Bob's earlier message is hidden from a fresh sync too (spec: the server starts
	// ignoring at once; history is the client's to hide, but the server never serves it).
	for _, ev := range rxTimeline(first, room) {
		if rxDig(ev, "event_id") == before.String() {
			t.Fatalf("ignored user's message in initial sync")
		}
	}

	hidden := rxText(t, bob, room, "hidden")
	visible := rxText(t, chris, room, "visible")
	// A state event from bob is still delivered.
	topic, err := bob.SendStateEvent(ctx, room, event.StateMember, bob.UserID.String(), map[string]any{"membership": "join", "displayname": "Bobby"})
	if err != nil {
		t.Fatal(err)
	}
	// Bob's thread reply is neither counted nor the latest event.
	tr := rxRel(t, chris, room, "m.thread", visible, "chris in thread")
	rxRel(t, bob, room, "m.thread", visible, "bob in thread")

	m := rxSync(t, s, alice, url.Values{"since": {since}})
	ids := rxIDs(rxTimeline(m, room))
	has := func(ev id.EventID) bool {
		for _, x := range ids {
			if x == ev.String() {
				return true
			}
		}
		return false
	}
	if has(hidden) || !has(visible) || !has(topic.EventID) || !has(tr) {
		t.Fatalf("sync timeline %v (hidden %s, visible %s, topic %s)", ids, hidden, visible, topic.EventID)
	}

	// /messages and /context.
	msgs, err := alice.Messages(ctx, room, "", "", mautrix.DirectionBackward, nil, 50)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range msgs.Chunk {
		if e.Sender == bob.UserID && e.StateKey == nil {
			t.Fatalf("/messages serves ignored user's %s %s", e.Type, e.ID)
		}
	}
	cx, err := alice.Context(ctx, room, visible, nil, 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range append(cx.EventsBefore, cx.EventsAfter...) {
		if e.Sender == bob.UserID && e.StateKey == nil {
			t.Fatalf("/context serves ignored user's %s", e.ID)
		}
	}
	// Bundles and /relations leave bob out.
	th := rxDig(rxGetEvent(t, s, alice, room, visible), "unsigned", "m.relations", "m.thread")
	if rxDig(th, "count") != float64(1) || rxDig(th, "latest_event", "event_id") != tr.String() {
		t.Fatalf("thread aggregation with an ignored user: %v", th)
	}
	rxEqual(t, "relations", rxIDs(rxOK(t, s, http.MethodGet, relPath(room, visible), alice.AccessToken, nil)["chunk"]), tr)
	// Others still see bob.
	if rxDig(rxGetEvent(t, s, chris, room, visible), "unsigned", "m.relations", "m.thread", "count") != float64(2) {
		t.Fatal("chris sees both thread events")
	}

	// Invites from bob are dropped; chris's arrive.
	since = rxSync(t, s, alice, url.Values{})["next_batch"].(string)
	bobRoom, err := bob.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "private_chat", Invite: []id.UserID{alice.UserID}})
	if err != nil {
		t.Fatal(err)
	}
	chrisRoom, err := chris.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "private_chat", Invite: []id.UserID{alice.UserID}})
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []url.Values{{"since": {since}}, {}} {
		m := rxSync(t, s, alice, q)
		if rxDig(m, "rooms", "invite", bobRoom.RoomID.String()) != nil {
			t.Fatalf("invite from an ignored user delivered (%v)", q)
		}
		if rxDig(m, "rooms", "invite", chrisRoom.RoomID.String()) == nil {
			t.Fatalf("chris's invite missing (%v)", q)
		}
	}

	// Un-ignoring: bob's new messages come through again.
	if st, b := ignPut(t, s, alice, ignList()); st != 200 {
		t.Fatalf("unignore: %d %v", st, b)
	}
	again := rxText(t, bob, room, "back")
	if !containsID(rxIDs(rxTimeline(rxSync(t, s, alice, url.Values{"since": {since}}), room)), again) {
		t.Fatal("bob's message after un-ignoring is missing")
	}
}

func containsID(ids []string, ev id.EventID) bool {
	for _, x := range ids {
		if x == ev.String() {
			return true
		}
	}
	return false
}
