package federation_test

import (
	"context"
	"slices"
	"sort"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

// Space hierarchies and jump to date spanning two real Hearth servers: the client walk on one
// server asks the other for rooms it is not in (federation /hierarchy), and the
// restricted-room rules decide per user from the remote answer's allowed_room_ids; a
// timestamp lookup in history older than the join asks the other server and backfills.

func spaceRoom(t *testing.T, c *mautrix.Client, name string, space bool, extra ...*event.Event) id.RoomID {
	t.Helper()
	req := &mautrix.ReqCreateRoom{Preset: "public_chat", Name: name, InitialState: extra}
	if space {
		req.CreationContent = map[string]any{"type": "m.space"}
	}
	resp, err := c.CreateRoom(context.Background(), req)
	if err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	return resp.RoomID
}

func link(t *testing.T, c *mautrix.Client, parent, child id.RoomID, via string) {
	t.Helper()
	if _, err := c.SendStateEvent(context.Background(), parent, event.StateSpaceChild, child.String(), map[string]any{"via": []string{via}}); err != nil {
		t.Fatalf("link %s -> %s: %v", parent, child, err)
	}
}

func hierarchyRooms(t *testing.T, c *mautrix.Client, root id.RoomID) []string {
	t.Helper()
	resp, err := c.Hierarchy(context.Background(), root, &mautrix.ReqHierarchy{})
	if err != nil {
		t.Fatalf("hierarchy of %s for %s: %v", root, c.UserID, err)
	}
	var out []string
	for _, r := range resp.Rooms {
		out = append(out, r.RoomID.String())
	}
	return out
}

func sameSet(got []string, want ...id.RoomID) bool {
	w := make([]string, len(want))
	for i, r := range want {
		w[i] = r.String()
	}
	g := slices.Clone(got)
	sort.Strings(g)
	sort.Strings(w)
	return slices.Equal(g, w)
}

func TestFederatedSpaceHierarchy(t *testing.T) {
	a, b, _ := fedPair(t)
	alice := a.Register(t, "alice", false)
	bob := b.Register(t, "bob", false)

	// root (a) -> r1 (a), sub (a), r2 (b); sub -> sub2 (b), r3 (b); sub2 -> r4 (a).
	root := spaceRoom(t, alice, "root", true)
	r1 := spaceRoom(t, alice, "r1", false)
	sub := spaceRoom(t, alice, "sub", true)
	r4 := spaceRoom(t, alice, "r4", false)
	r2 := spaceRoom(t, bob, "r2", false)
	sub2 := spaceRoom(t, bob, "sub2", true)
	r3 := spaceRoom(t, bob, "r3", false)
	link(t, alice, root, r1, a.ServerName)
	link(t, alice, root, sub, a.ServerName)
	link(t, alice, root, r2, b.ServerName)
	link(t, alice, sub, sub2, b.ServerName)
	link(t, alice, sub, r3, b.ServerName)
	link(t, bob, sub2, r4, a.ServerName)

	got := hierarchyRooms(t, alice, root)
	if !sameSet(got, root, r1, sub, r2, sub2, r3, r4) {
		t.Fatalf("hierarchy %v, want root r1 sub r2 sub2 r3 r4", got)
	}
	// Depth first: sub's subtree (with the remote sub2 and, through it, r4) before r2.
	if i, j := slices.Index(got, r4.String()), slices.Index(got, r2.String()); i > j {
		t.Errorf("r4 (under the remote sub2) comes after r2: %v", got)
	}
	// The remote rooms carry the remote server's description.
	resp, err := alice.Hierarchy(context.Background(), root, &mautrix.ReqHierarchy{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range resp.Rooms {
		if r.RoomID == sub2 && (r.Name != "sub2" || r.RoomType != event.RoomTypeSpace || len(r.ChildrenState) != 1) {
			t.Errorf("remote space sub2 described as %+v", r)
		}
	}
	// max_depth 1 stops before the subspaces' children.
	one := 1
	resp, err = alice.Hierarchy(context.Background(), root, &mautrix.ReqHierarchy{MaxDepth: &one})
	if err != nil {
		t.Fatal(err)
	}
	var shallow []string
	for _, r := range resp.Rooms {
		shallow = append(shallow, r.RoomID.String())
	}
	if !sameSet(shallow, root, r1, sub, r2) {
		t.Errorf("max_depth 1: %v", shallow)
	}
}

func TestFederatedRestrictedSpaceHierarchy(t *testing.T) {
	a, b, _ := fedPair(t)
	ctx := context.Background()
	alice := a.Register(t, "alice", false)
	carol := a.Register(t, "carol", false) // on a, not in the space
	bob := b.Register(t, "bob", false)
	space := spaceRoom(t, alice, "space", true, &event.Event{
		Type: event.StateHistoryVisibility, Content: event.Content{Parsed: &event.HistoryVisibilityEventContent{HistoryVisibility: event.HistoryVisibilityWorldReadable}},
	})
	created, err := bob.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "public_chat", Name: "restricted", RoomVersion: "10",
		InitialState: []*event.Event{{Type: event.StateJoinRules, Content: event.Content{Raw: map[string]any{
			"join_rule": "restricted",
			"allow":     []any{map[string]any{"type": "m.room_membership", "room_id": space.String(), "via": []string{a.ServerName}}},
		}}}}})
	if err != nil {
		t.Fatal(err)
	}
	room := created.RoomID
	link(t, alice, space, room, b.ServerName)

	// b is not in the space, so it cannot tell that a's users are: the room stays hidden.
	if got := hierarchyRooms(t, alice, space); !sameSet(got, space) {
		t.Fatalf("before b joins the space: %v", got)
	}
	if _, err := bob.JoinRoom(ctx, space.String(), &mautrix.ReqJoinRoom{Via: []string{a.ServerName}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "bob in the space on a", func() bool { return members(t, alice, space)[bob.UserID.String()] == "join" })
	// Now b answers with allowed_room_ids; a shows the room to space members only.
	waitFor(t, "the restricted room in alice's hierarchy", func() bool {
		return sameSet(hierarchyRooms(t, alice, space), space, room)
	})
	if got := hierarchyRooms(t, carol, space); !sameSet(got, space) {
		t.Errorf("carol, outside the space, sees %v", got)
	}
}

// Jump to date in a room whose history predates this server's join: the lookup asks the
// room's other server and backfills the answer, so /context and /messages work from it.
func TestFederatedTimestampToEvent(t *testing.T) {
	a, b, _ := fedPair(t)
	ctx := context.Background()
	alice := a.Register(t, "alice", false)
	bob := b.Register(t, "bob", false)
	created, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "public_chat"})
	if err != nil {
		t.Fatal(err)
	}
	room := created.RoomID
	before := time.Now()
	time.Sleep(5 * time.Millisecond)
	evA, err := alice.SendText(ctx, room, "A")
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond)
	evB, err := alice.SendText(ctx, room, "B")
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond)
	afterB := time.Now()
	time.Sleep(5 * time.Millisecond)
	if _, err := bob.JoinRoom(ctx, room.String(), &mautrix.ReqJoinRoom{Via: []string{a.ServerName}}); err != nil {
		t.Fatal(err)
	}

	// Forwards from before A: b has its own join after that time, but the join follows
	// history b lacks, so a is asked.
	got, err := bob.TimestampToEvent(ctx, room, before, mautrix.DirectionForward)
	if err != nil || got.EventID != evA.EventID {
		t.Fatalf("forwards from before A: %+v, %v; want %s", got, err, evA.EventID)
	}
	// Backwards from after B: nothing here at or before that time.
	got, err = bob.TimestampToEvent(ctx, room, afterB, mautrix.DirectionBackward)
	if err != nil || got.EventID != evB.EventID {
		t.Fatalf("backwards from after B: %+v, %v; want %s", got, err, evB.EventID)
	}
	// The answer was backfilled: /context (limit 0, as Complement asks) works, and paging
	// back from its start reaches A, from its end B and A.
	var c mautrix.RespContext
	u := bob.BuildURLWithQuery(mautrix.ClientURLPath{"v3", "rooms", room, "context", evB.EventID}, map[string]string{"limit": "0"})
	if _, err := bob.MakeRequest(ctx, "GET", u, nil, &c); err != nil {
		t.Fatalf("context of B on b: %v", err)
	}
	back := func(from string) []id.EventID {
		t.Helper()
		msgs, err := bob.Messages(ctx, room, from, "", mautrix.DirectionBackward, nil, 100)
		if err != nil {
			t.Fatal(err)
		}
		var ids []id.EventID
		for _, e := range msgs.Chunk {
			ids = append(ids, e.ID)
		}
		return ids
	}
	if ids := back(c.Start); !slices.Contains(ids, evA.EventID) || slices.Contains(ids, evB.EventID) {
		t.Errorf("paging back from B's context start on b: %v; want A %s and not B", ids, evA.EventID)
	}
	if ids := back(c.End); !slices.Contains(ids, evA.EventID) || !slices.Contains(ids, evB.EventID) {
		t.Errorf("paging back from B's context end on b: %v; want A and B", ids)
	}
	// Nothing before the room existed, on either server.
	if _, err := bob.TimestampToEvent(ctx, room, before.Add(-time.Hour), mautrix.DirectionBackward); !isErrcode(err, "M_NOT_FOUND") {
		t.Errorf("backwards from before the room: %v, want M_NOT_FOUND", err)
	}
}
