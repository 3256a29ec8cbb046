package clientapi_test

import (
	"net/http"
	"net/url"
	"testing"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/appliance/testserver"
)

// Relations: the index, bundled aggregations (m.replace, m.thread, m.reference), /relations
// with pagination and recursion, /threads and thread-aware receipts and notification counts.

func relPath(room id.RoomID, ev id.EventID, rest ...string) string {
	p := "/_matrix/client/v1/rooms/" + rxEsc(room.String()) + "/relations/" + rxEsc(ev.String())
	for _, r := range rest {
		p += "/" + rxEsc(r)
	}
	return p
}

func TestRelationsAggregations(t *testing.T) {
	s := testserver.Start(t)
	alice := s.Register(t, "alice", false)
	bob := s.Register(t, "bob", false)
	carol := s.Register(t, "carol", false)
	room := rxRoom(t, alice, bob, carol)
	ctx := rxCtx(t)

	root := rxText(t, alice, room, "root")

	// Reactions: annotations are indexed but never aggregated; a repeat is refused.
	n := 0
	react := func(cli *mautrix.Client, key string) (int, map[string]any) {
		n++
		return rxDo(t, s, http.MethodPut, "/_matrix/client/v3/rooms/"+rxEsc(room.String())+"/send/m.reaction/r"+string(rune('0'+n)), cli.AccessToken,
			map[string]any{"m.relates_to": map[string]any{"rel_type": "m.annotation", "event_id": root, "key": key}})
	}
	if st, b := react(bob, "👍"); st != 200 {
		t.Fatalf("reaction: %d %v", st, b)
	}
	st, b := rxDo(t, s, http.MethodPut, "/_matrix/client/v3/rooms/"+rxEsc(room.String())+"/send/m.reaction/again", bob.AccessToken,
		map[string]any{"m.relates_to": map[string]any{"rel_type": "m.annotation", "event_id": root, "key": "👍"}})
	rxWant(t, "duplicate annotation", st, b, 400, "M_DUPLICATE_ANNOTATION")
	if st, b := react(alice, "👍"); st != 200 {
		t.Fatalf("another user's identical reaction: %d %v", st, b)
	}
	if st, b := react(bob, "🎉"); st != 200 {
		t.Fatalf("another key: %d %v", st, b)
	}

	// Edits: the latest valid one is bundled whole; the content is not replaced.
	edit1 := rxEdit(t, alice, room, root, "root v2")
	edit2 := rxEdit(t, alice, room, root, "root v3")
	rxEdit(t, bob, room, root, "bob may not edit alice") // invalid: another sender
	// A rich reply is no relation for the server.
	reply := rxSend(t, bob, room, "m.room.message", map[string]any{"msgtype": "m.text", "body": "> root\n\nreply",
		"m.relates_to": map[string]any{"m.in_reply_to": map[string]any{"event_id": root}}})
	// Thread replies and a reference.
	t1 := rxRel(t, bob, room, "m.thread", root, "in thread 1")
	t2 := rxRel(t, alice, room, "m.thread", root, "in thread 2")
	ref := rxRel(t, bob, room, "m.reference", root, "see above")
	// The latest thread event has an edit of its own: bundled inside latest_event.
	t2edit := rxEdit(t, alice, room, t2, "in thread 2 (edited)")

	ev := rxGetEvent(t, s, carol, room, root)
	if rxDig(ev, "content", "body") != "root" {
		t.Fatalf("content was replaced: %v", ev["content"])
	}
	rel, _ := rxDig(ev, "unsigned", "m.relations").(map[string]any)
	if rel == nil {
		t.Fatalf("no m.relations: %v", ev["unsigned"])
	}
	if _, ok := rel["m.annotation"]; ok {
		t.Fatalf("annotations must not be aggregated: %v", rel)
	}
	if got := rxDig(rel, "m.replace", "event_id"); got != edit2.String() {
		t.Fatalf("m.replace = %v, want %s (%v)", got, edit2, rel["m.replace"])
	}
	if rxDig(rel, "m.replace", "content", "m.new_content", "body") != "root v3" || rxDig(rel, "m.replace", "sender") != alice.UserID.String() {
		t.Fatalf("m.replace is not the whole edit event: %v", rel["m.replace"])
	}
	th, _ := rel["m.thread"].(map[string]any)
	if th["count"] != float64(2) || rxDig(th, "latest_event", "event_id") != t2.String() || th["current_user_participated"] != false {
		t.Fatalf("m.thread for carol: %v", th)
	}
	if rxDig(th, "latest_event", "unsigned", "m.relations", "m.replace", "event_id") != t2edit.String() {
		t.Fatalf("latest_event lacks its own aggregation: %v", th["latest_event"])
	}
	rxEqual(t, "m.reference", rxIDs(rxDig(rel, "m.reference", "chunk")), ref)
	for _, cli := range []*mautrix.Client{alice, bob} {
		ev := rxGetEvent(t, s, cli, room, root)
		if rxDig(ev, "unsigned", "m.relations", "m.thread", "current_user_participated") != true {
			t.Fatalf("%s participated: %v", cli.UserID, rxDig(ev, "unsigned", "m.relations"))
		}
	}
	if r := rxDig(rxGetEvent(t, s, carol, room, reply), "unsigned", "m.relations"); r != nil {
		t.Fatalf("a plain reply has no aggregations: %v", r)
	}

	// /messages bundles too.
	msgs, err := carol.Messages(ctx, room, "", "", mautrix.DirectionBackward, nil, 50)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range msgs.Chunk {
		if e.ID == root {
			found = true
			if e.Unsigned.Relations == nil || e.Unsigned.Relations.Thread == nil || e.Unsigned.Relations.Thread.Count != 2 {
				t.Fatalf("/messages root aggregation: %+v", e.Unsigned.Relations)
			}
		}
	}
	if !found {
		t.Fatal("root missing from /messages")
	}
	// /sync bundles too (the spec asks for it in limited timelines).
	initial := rxSync(t, s, carol, url.Values{"filter": {`{"room":{"timeline":{"limit":50}}}`}})
	for _, e := range rxTimeline(initial, room) {
		if rxDig(e, "event_id") == root.String() && rxDig(e, "unsigned", "m.relations", "m.thread", "count") != float64(2) {
			t.Fatalf("initial sync root without aggregation: %v", e)
		}
	}
	limited := rxSync(t, s, carol, url.Values{"filter": {`{"room":{"timeline":{"limit":3}}}`}})
	if rxDig(limited, "rooms", "join", room.String(), "timeline", "limited") != true {
		t.Fatal("expected a limited timeline")
	}
	for _, e := range rxTimeline(limited, room) {
		if rxDig(e, "event_id") == t2.String() && rxDig(e, "unsigned", "m.relations", "m.replace", "event_id") != t2edit.String() {
			t.Fatalf("limited sync event without aggregation: %v", e)
		}
	}
	// Threads cannot start from an event that has a relation.
	st, b = rxDo(t, s, http.MethodPut, "/_matrix/client/v3/rooms/"+rxEsc(room.String())+"/send/m.room.message/nest", bob.AccessToken,
		map[string]any{"msgtype": "m.text", "body": "x", "m.relates_to": map[string]any{"rel_type": "m.thread", "event_id": t1}})
	rxWant(t, "thread off a thread event", st, b, 400, "M_UNKNOWN")

	// Redacting the latest edit falls back to the one before; redacting a thread event
	// un-counts it; redacting the original drops the m.replace bundle.
	if _, err := alice.RedactEvent(ctx, room, edit2); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.RedactEvent(ctx, room, t1); err != nil {
		t.Fatal(err)
	}
	rel, _ = rxDig(rxGetEvent(t, s, carol, room, root), "unsigned", "m.relations").(map[string]any)
	if rxDig(rel, "m.replace", "event_id") != edit1.String() {
		t.Fatalf("after redacting the latest edit: %v", rel["m.replace"])
	}
	if rxDig(rel, "m.thread", "count") != float64(1) {
		t.Fatalf("after redacting a thread event: %v", rel["m.thread"])
	}
	if rxDig(rxGetEvent(t, s, bob, room, root), "unsigned", "m.relations", "m.thread", "current_user_participated") != false {
		t.Fatal("bob's only thread event is redacted: he no longer participates")
	}
	if _, err := alice.RedactEvent(ctx, room, root); err != nil {
		t.Fatal(err)
	}
	rel, _ = rxDig(rxGetEvent(t, s, carol, room, root), "unsigned", "m.relations").(map[string]any)
	if _, ok := rel["m.replace"]; ok {
		t.Fatalf("a redacted original carries no m.replace: %v", rel)
	}
	if rxDig(rel, "m.thread", "count") != float64(1) {
		t.Fatalf("the thread survives its root's redaction: %v", rel)
	}
}

func TestRelationsPaginationAndRecursion(t *testing.T) {
	s := testserver.Start(t)
	alice := s.Register(t, "alice", false)
	bob := s.Register(t, "bob", false)
	room := rxRoom(t, alice, bob)
	tok := alice.AccessToken

	root := rxText(t, alice, room, "root")
	var replies []id.EventID
	for i := range 6 {
		replies = append(replies, rxRel(t, bob, room, "m.thread", root, "reply"+string(rune('0'+i))))
	}
	// Bob syncs between the replies: the next ones page forwards from his sync token.
	since := rxSync(t, s, bob, url.Values{})["next_batch"].(string)
	dummy := rxSend(t, alice, room, "m.dummy", map[string]any{"m.relates_to": map[string]any{"rel_type": "m.thread", "event_id": root}})
	ref := rxRel(t, alice, room, "m.reference", root, "ref")
	// Depth 2 and 3 below root: a reaction to a reply, and an edit... of nothing: a reference to the reaction.
	react := rxSend(t, alice, room, "m.reaction", map[string]any{"m.relates_to": map[string]any{"rel_type": "m.annotation", "event_id": replies[5], "key": "x"}})
	deep := rxSend(t, alice, room, "org.example.note", map[string]any{"m.relates_to": map[string]any{"rel_type": "m.reference", "event_id": react}})

	get := func(path string, q url.Values) map[string]any {
		t.Helper()
		if len(q) > 0 {
			path += "?" + q.Encode()
		}
		return rxOK(t, s, http.MethodGet, path, tok, nil)
	}

	// All rel_types, newest first.
	all := get(relPath(room, root), nil)
	rxEqual(t, "all", rxIDs(all["chunk"]), ref, dummy, replies[5], replies[4], replies[3], replies[2], replies[1], replies[0])
	if _, ok := all["recursion_depth"]; ok {
		t.Fatal("recursion_depth without recurse")
	}
	if _, ok := all["next_batch"]; ok {
		t.Fatalf("a complete answer has no next_batch: %v", all["next_batch"])
	}
	// By rel_type, and by rel_type and event type.
	rxEqual(t, "m.thread", rxIDs(get(relPath(room, root, "m.thread"), url.Values{"limit": {"3"}})["chunk"]), dummy, replies[5], replies[4])
	rxEqual(t, "m.thread/m.dummy", rxIDs(get(relPath(room, root, "m.thread", "m.dummy"), nil)["chunk"]), dummy)
	rxEqual(t, "m.reference", rxIDs(get(relPath(room, root, "m.reference"), nil)["chunk"]), ref)
	rxEqual(t, "unknown rel_type", rxIDs(get(relPath(room, root, "org.example.none"), nil)["chunk"]))

	// Backwards pages of 3.
	p1 := get(relPath(room, root, "m.thread", "m.room.message"), url.Values{"limit": {"3"}})
	rxEqual(t, "page 1", rxIDs(p1["chunk"]), replies[5], replies[4], replies[3])
	p2 := get(relPath(room, root, "m.thread", "m.room.message"), url.Values{"limit": {"3"}, "from": {p1["next_batch"].(string)}})
	rxEqual(t, "page 2", rxIDs(p2["chunk"]), replies[2], replies[1], replies[0])
	if p2["prev_batch"] != p1["next_batch"] {
		t.Fatalf("prev_batch %v, want the from token %v", p2["prev_batch"], p1["next_batch"])
	}
	if nb, ok := p2["next_batch"]; ok {
		p3 := get(relPath(room, root, "m.thread", "m.room.message"), url.Values{"limit": {"3"}, "from": {nb.(string)}})
		rxEqual(t, "page 3", rxIDs(p3["chunk"]))
	}
	// Forwards, and forwards from a sync token.
	f1 := get(relPath(room, root), url.Values{"limit": {"4"}, "dir": {"f"}})
	rxEqual(t, "forward page 1", rxIDs(f1["chunk"]), replies[0], replies[1], replies[2], replies[3])
	f2 := get(relPath(room, root), url.Values{"limit": {"4"}, "dir": {"f"}, "from": {f1["next_batch"].(string)}})
	rxEqual(t, "forward page 2", rxIDs(f2["chunk"]), replies[4], replies[5], dummy, ref)
	rxEqual(t, "forward from a sync token", rxIDs(get(relPath(room, root), url.Values{"dir": {"f"}, "from": {since}})["chunk"]), dummy, ref)
	// to bounds the range: from page 1's start to page 2's start is page 1.
	rxEqual(t, "from/to", rxIDs(get(relPath(room, root), url.Values{"dir": {"f"}, "to": {f1["next_batch"].(string)}})["chunk"]),
		replies[0], replies[1], replies[2], replies[3])

	// Recursion follows relations of relations; filters apply at every level.
	rec := get(relPath(room, root), url.Values{"recurse": {"true"}})
	rxEqual(t, "recursive", rxIDs(rec["chunk"]), deep, react, ref, dummy, replies[5], replies[4], replies[3], replies[2], replies[1], replies[0])
	if rec["recursion_depth"] != float64(3) {
		t.Fatalf("recursion_depth %v", rec["recursion_depth"])
	}
	rxEqual(t, "recursive m.reference", rxIDs(get(relPath(room, root, "m.reference"), url.Values{"recurse": {"true"}})["chunk"]), deep, ref)
	rp1 := get(relPath(room, root), url.Values{"recurse": {"true"}, "limit": {"2"}})
	rxEqual(t, "recursive page 1", rxIDs(rp1["chunk"]), deep, react)
	rxEqual(t, "recursive page 2", rxIDs(get(relPath(room, root), url.Values{"recurse": {"true"}, "limit": {"2"}, "from": {rp1["next_batch"].(string)}})["chunk"]), ref, dummy)
	norec := get(relPath(room, root), url.Values{"recurse": {"false"}})
	if len(rxIDs(norec["chunk"])) != 8 || norec["recursion_depth"] == nil {
		t.Fatalf("recurse=false: %v", norec)
	}
	// Events of a relation are served with their own aggregations.
	for _, e := range get(relPath(room, replies[5]), nil)["chunk"].([]any) {
		if rxDig(e, "event_id") == react.String() && rxDig(e, "unsigned", "m.relations", "m.reference") == nil {
			t.Fatalf("child lacks its aggregation: %v", e)
		}
	}
}

func TestRelationsErrors(t *testing.T) {
	s := testserver.Start(t)
	alice := s.Register(t, "alice", false)
	bob := s.Register(t, "bob", false)
	room := rxRoom(t, alice)
	root := rxText(t, alice, room, "root")
	private, err := alice.CreateRoom(rxCtx(t), &mautrix.ReqCreateRoom{Preset: "private_chat"})
	if err != nil {
		t.Fatal(err)
	}
	secret := rxText(t, alice, private.RoomID, "secret")

	cases := []struct {
		what, path, token string
		status            int
		code              string
	}{
		{"unknown event", relPath(room, "$nope"), alice.AccessToken, 404, "M_NOT_FOUND"},
		{"event of another room", relPath(room, secret), alice.AccessToken, 404, "M_NOT_FOUND"},
		{"event the user cannot see", relPath(private.RoomID, secret), bob.AccessToken, 404, "M_NOT_FOUND"},
		{"bad dir", relPath(room, root) + "?dir=x", alice.AccessToken, 400, "M_INVALID_PARAM"},
		{"bad recurse", relPath(room, root) + "?recurse=yes", alice.AccessToken, 400, "M_INVALID_PARAM"},
		{"bad from", relPath(room, root) + "?from=garbage", alice.AccessToken, 400, "M_INVALID_PARAM"},
		{"bad to", relPath(room, root) + "?to=garbage", alice.AccessToken, 400, "M_INVALID_PARAM"},
		{"bad limit", relPath(room, root) + "?limit=-1", alice.AccessToken, 400, "M_INVALID_PARAM"},
		{"not an event ID", "/_matrix/client/v1/rooms/" + rxEsc(room.String()) + "/relations/nope", alice.AccessToken, 400, "M_INVALID_PARAM"},
		{"not a room ID", "/_matrix/client/v1/rooms/nope/relations/" + rxEsc(root.String()), alice.AccessToken, 400, "M_INVALID_PARAM"},
		{"no token", relPath(room, root), "", 401, "M_MISSING_TOKEN"},
		{"threads: bad include", "/_matrix/client/v1/rooms/" + rxEsc(room.String()) + "/threads?include=some", alice.AccessToken, 400, "M_INVALID_PARAM"},
		{"threads: limit 0", "/_matrix/client/v1/rooms/" + rxEsc(room.String()) + "/threads?limit=0", alice.AccessToken, 400, "M_INVALID_PARAM"},
		{"threads: bad from", "/_matrix/client/v1/rooms/" + rxEsc(room.String()) + "/threads?from=zz", alice.AccessToken, 400, "M_INVALID_PARAM"},
		{"threads: not in room", "/_matrix/client/v1/rooms/" + rxEsc(private.RoomID.String()) + "/threads", bob.AccessToken, 403, "M_FORBIDDEN"},
		{"threads: unknown room", "/_matrix/client/v1/rooms/" + rxEsc("!nope:"+s.ServerName) + "/threads", bob.AccessToken, 403, "M_FORBIDDEN"},
	}
	for _, c := range cases {
		st, b := rxDo(t, s, http.MethodGet, c.path, c.token, nil)
		rxWant(t, c.what, st, b, c.status, c.code)
	}
	// An empty chunk is not an error.
	if m := rxOK(t, s, http.MethodGet, relPath(room, root), alice.AccessToken, nil); len(rxIDs(m["chunk"])) != 0 {
		t.Fatalf("no relations: %v", m)
	}
}

func TestThreadsList(t *testing.T) {
	s := testserver.Start(t)
	alice := s.Register(t, "alice", false)
	bob := s.Register(t, "bob", false)
	room := rxRoom(t, alice, bob)
	threads := func(cli *mautrix.Client, q url.Values) map[string]any {
		t.Helper()
		return rxOK(t, s, http.MethodGet, "/_matrix/client/v1/rooms/"+rxEsc(room.String())+"/threads?"+q.Encode(), cli.AccessToken, nil)
	}
	latestOf := func(m map[string]any) []string {
		var out []string
		for _, e := range m["chunk"].([]any) {
			out = append(out, rxDig(e, "event_id").(string)+"|"+rxDig(e, "unsigned", "m.relations", "m.thread", "latest_event", "event_id").(string))
		}
		return out
	}

	if m := threads(alice, nil); len(rxIDs(m["chunk"])) != 0 {
		t.Fatalf("no threads yet: %v", m)
	}
	root1 := rxText(t, alice, room, "thread 1")
	root2 := rxText(t, alice, room, "thread 2")
	root3 := rxText(t, bob, room, "thread 3")
	r1 := rxRel(t, alice, room, "m.thread", root1, "1a")
	r2 := rxRel(t, alice, room, "m.thread", root2, "2a")
	r3 := rxRel(t, bob, room, "m.thread", root3, "3a")
	want := []string{root3.String() + "|" + r3.String(), root2.String() + "|" + r2.String(), root1.String() + "|" + r1.String()}
	if got := latestOf(threads(alice, nil)); len(got) != 3 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Fatalf("threads %v, want %v", got, want)
	}
	// New activity moves a thread to the front.
	r1b := rxRel(t, bob, room, "m.thread", root1, "1b")
	got := latestOf(threads(alice, nil))
	if got[0] != root1.String()+"|"+r1b.String() || got[1] != want[0] {
		t.Fatalf("after new activity: %v", got)
	}
	// Pagination.
	p1 := threads(alice, url.Values{"limit": {"2"}})
	rxEqual(t, "threads page 1", rxIDs(p1["chunk"]), root1, root3)
	p2 := threads(alice, url.Values{"limit": {"2"}, "from": {p1["next_batch"].(string)}})
	rxEqual(t, "threads page 2", rxIDs(p2["chunk"]), root2)
	if _, ok := p2["next_batch"]; ok {
		t.Fatalf("last page has a next_batch: %v", p2)
	}
	// include=participated: bob sent root3 and a reply in thread 1.
	rxEqual(t, "bob participated", rxIDs(threads(bob, url.Values{"include": {"participated"}})["chunk"]), root1, root3)
	rxEqual(t, "alice participated", rxIDs(threads(alice, url.Values{"include": {"participated"}})["chunk"]), root1, root2)

	// A root from an ignored user is returned redacted; that user's thread events are not counted.
	if err := alice.SetAccountData(rxCtx(t), "m.ignored_user_list", map[string]any{"ignored_users": map[string]any{bob.UserID.String(): map[string]any{}}}); err != nil {
		t.Fatal(err)
	}
	for _, e := range threads(alice, nil)["chunk"].([]any) {
		switch rxDig(e, "event_id") {
		case root3.String():
			if c, _ := rxDig(e, "content").(map[string]any); len(c) != 0 {
				t.Fatalf("ignored user's root not redacted: %v", e)
			}
		case root1.String():
			if rxDig(e, "unsigned", "m.relations", "m.thread", "count") != float64(1) || rxDig(e, "unsigned", "m.relations", "m.thread", "latest_event", "event_id") != r1.String() {
				t.Fatalf("ignored user's thread event counted: %v", rxDig(e, "unsigned"))
			}
		}
	}
}

func TestThreadReceiptsAndNotificationCounts(t *testing.T) {
	s := testserver.Start(t)
	alice := s.Register(t, "alice", false)
	bob := s.Register(t, "bob", false)
	room := rxRoom(t, alice, bob)
	since := rxSync(t, s, bob, url.Values{})["next_batch"].(string)

	a := rxText(t, alice, room, "A")
	b1 := rxRel(t, alice, room, "m.thread", a, "B")
	rxRel(t, alice, room, "m.thread", a, "C")
	d := rxText(t, alice, room, "D")
	e := rxRel(t, alice, room, "m.thread", a, "E")
	rxRel(t, bob, room, "m.thread", a, "bob's own")
	f := rxRel(t, alice, room, "m.reference", a, "F")
	g := rxSend(t, alice, room, "m.reaction", map[string]any{"m.relates_to": map[string]any{"rel_type": "m.annotation", "event_id": f, "key": "k"}})

	receipt := func(ev id.EventID, body map[string]any) (int, map[string]any) {
		return rxDo(t, s, http.MethodPost, "/_matrix/client/v3/rooms/"+rxEsc(room.String())+"/receipt/m.read/"+rxEsc(ev.String()), bob.AccessToken, body)
	}
	threadFilter := `{"room":{"timeline":{"unread_thread_notifications":true}}}`
	counts := func() (map[string]any, any) {
		t.Helper()
		m := rxSync(t, s, bob, url.Values{"since": {since}, "filter": {threadFilter}})
		jr := rxDig(m, "rooms", "join", room.String())
		if rxDig(jr, "unread_notifications") == nil {
			t.Fatalf("unread_notifications missing: %v", jr)
		}
		ut, _ := rxDig(jr, "unread_thread_notifications").(map[string]any)
		return ut, rxDig(jr, "ephemeral", "events")
	}

	// Without the filter flag there is no unread_thread_notifications.
	m := rxSync(t, s, bob, url.Values{"since": {since}})
	if v := rxDig(m, "rooms", "join", room.String(), "unread_thread_notifications"); v != nil {
		t.Fatalf("unread_thread_notifications without the filter: %v", v)
	}
	// Three thread events from alice; bob's own is not counted.
	ut, _ := counts()
	if rxDig(ut, a.String(), "notification_count") != float64(3) || rxDig(ut, a.String(), "highlight_count") != float64(0) {
		t.Fatalf("thread counts %v", ut)
	}
	// A main-timeline receipt does not read threads; a threaded one reads up to its event.
	if st, b := receipt(a, map[string]any{"thread_id": "main"}); st != 200 {
		t.Fatalf("main receipt: %d %v", st, b)
	}
	if ut, _ := counts(); rxDig(ut, a.String(), "notification_count") != float64(3) {
		t.Fatalf("after main receipt %v", ut)
	}
	if st, b := receipt(b1, map[string]any{"thread_id": a.String()}); st != 200 {
		t.Fatalf("thread receipt: %d %v", st, b)
	}
	ut, eph := counts()
	if rxDig(ut, a.String(), "notification_count") != float64(2) {
		t.Fatalf("after thread receipt %v", ut)
	}
	var sawThreaded bool
	evs, _ := eph.([]any)
	for _, ev := range evs {
		if rxDig(ev, "type") == "m.receipt" && rxDig(ev, "content", b1.String(), "m.read", bob.UserID.String(), "thread_id") == a.String() {
			sawThreaded = true
		}
	}
	if !sawThreaded {
		t.Fatalf("threaded receipt not in sync: %v", eph)
	}
	// An unthreaded receipt reads everything before it, threads included.
	if st, b := receipt(d, map[string]any{}); st != 200 {
		t.Fatalf("unthreaded receipt: %d %v", st, b)
	}
	if ut, _ := counts(); rxDig(ut, a.String(), "notification_count") != float64(1) {
		t.Fatalf("after unthreaded receipt %v", ut)
	}
	// A receipt on an annotation in the thread's surroundings marks the thread read.
	if st, b := receipt(g, map[string]any{"thread_id": a.String()}); st != 200 {
		t.Fatalf("receipt on annotation: %d %v", st, b)
	}
	if ut, _ := counts(); ut != nil {
		t.Fatalf("all read, yet %v", ut)
	}

	// MSC4102: unthreaded and threaded receipts on one event: the unthreaded one is shown.
	if st, b := receipt(e, map[string]any{}); st != 200 {
		t.Fatalf("unthreaded: %d %v", st, b)
	}
	if st, b := receipt(e, map[string]any{"thread_id": a.String()}); st != 200 {
		t.Fatalf("threaded: %d %v", st, b)
	}
	evs, _ = rxDig(rxSync(t, s, bob, url.Values{}), "rooms", "join", room.String(), "ephemeral", "events").([]any)
	for _, ev := range evs {
		if rxDig(ev, "type") == "m.receipt" {
			info, _ := rxDig(ev, "content", e.String(), "m.read", bob.UserID.String()).(map[string]any)
			if info == nil || info["thread_id"] != nil {
				t.Fatalf("want bob's unthreaded receipt on E, got %v", rxDig(ev, "content"))
			}
		}
	}

	// Bad thread IDs.
	for _, c := range []struct {
		what string
		body map[string]any
	}{
		{"empty", map[string]any{"thread_id": ""}},
		{"not a string", map[string]any{"thread_id": 12}},
		{"not an event ID", map[string]any{"thread_id": "thread"}},
		{"unknown event", map[string]any{"thread_id": "$unknown"}},
		{"event with a relation", map[string]any{"thread_id": b1.String()}},
	} {
		st, body := receipt(d, c.body)
		rxWant(t, "thread_id "+c.what, st, body, 400, "M_INVALID_PARAM")
	}
	st, body := rxDo(t, s, http.MethodPost, "/_matrix/client/v3/rooms/"+rxEsc(room.String())+"/receipt/m.fully_read/"+rxEsc(d.String()), bob.AccessToken, map[string]any{"thread_id": "main"})
	rxWant(t, "m.fully_read with thread_id", st, body, 400, "M_INVALID_PARAM")
}
