package clientapi_test

import (
	"context"
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/appliance/testserver"
	"github.com/hearth-home/hearth/matrix/events"
)

// Rooms of versions 1 and 2 created on Hearth: the v1 event format (event IDs chosen by the
// origin server, [id, hashes] references) end to end, on two real Hearth servers federating
// over loopback TLS: create, send, state, sync, redact, a remote join, messages and state both
// ways and a concurrent state change resolved to the same answer on both sides. A version that
// createRoom refuses (1, for now: events.supportedVersions) must not be advertised either.

func TestOldFormatRoomsEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two federating servers; not in -short")
	}
	ca := testserver.NewCA(t)
	a := testserver.Start(t, testserver.Federated(t, ca))
	b := testserver.Start(t, testserver.Federated(t, ca))
	alice := a.Register(t, "alice", false)
	bob := b.Register(t, "bob", false)
	caps := cs3Do(t, a, "GET", "/_matrix/client/v3/capabilities", alice.AccessToken, nil).ok(t)
	avail, _ := rxDig(caps, "capabilities", "m.room_versions", "available").(map[string]any)
	if !events.Supported(id.RoomV2) {
		t.Fatal("room version 2 is not supported")
	}
	for _, rv := range []id.RoomVersion{id.RoomV1, id.RoomV2} {
		t.Run("v"+string(rv), func(t *testing.T) {
			// /capabilities advertises exactly what createRoom accepts.
			if !events.Supported(rv) {
				if avail[string(rv)] != nil {
					t.Fatalf("version %s advertised (%v) but not created", rv, avail)
				}
				cs3Do(t, a, "POST", "/_matrix/client/v3/createRoom", alice.AccessToken, map[string]any{"room_version": string(rv)}).want(t, 400, "M_UNSUPPORTED_ROOM_VERSION")
				return
			}
			if avail[string(rv)] != "stable" {
				t.Fatalf("version %s created but advertised as %v", rv, avail[string(rv)])
			}
			oldFormatRoom(t, rv, a, b, alice, bob)
		})
	}
}

// oldFormatRoom runs the whole life of a room of version rv created by alice on a and joined
// by bob from b.
func oldFormatRoom(t *testing.T, rv id.RoomVersion, a, b *testserver.Server, alice, bob *mautrix.Client) {
	ctx := context.Background()
	created, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "public_chat", Name: "Old style", RoomVersion: rv})
	if err != nil {
		t.Fatalf("create v%s room: %v", rv, err)
	}
	room := created.RoomID
	var create event.CreateEventContent
	if err := alice.StateEvent(ctx, room, event.StateCreate, "", &create); err != nil || create.RoomVersion != rv {
		t.Fatalf("create event: version %q, %v", create.RoomVersion, err)
	}
	if create.Creator != alice.UserID {
		t.Fatalf("create event creator %q", create.Creator)
	}
	hello, err := alice.SendText(ctx, room, "hello")
	if err != nil {
		t.Fatal(err)
	}
	if !v2ID(hello.EventID, a.ServerName) {
		t.Fatalf("message ID %s is not a v1-format ID of %s", hello.EventID, a.ServerName)
	}

	// /sync shows the room from its create event with the IDs the send answered.
	sync := rxSync(t, a, alice, url.Values{})
	tl := rxTimeline(sync, room)
	if len(tl) == 0 || rxDig(tl[0], "type") != "m.room.create" || rxDig(tl[0], "content", "room_version") != string(rv) {
		t.Fatalf("sync timeline does not start with the v%s create event: %v", rv, tl)
	}
	if ids := rxIDs(tl); !slices.Contains(ids, hello.EventID.String()) {
		t.Fatalf("sync timeline %v lacks the message %s", ids, hello.EventID)
	}

	// Redaction (the redaction algorithm of versions 1 and 2).
	doomed, err := alice.SendText(ctx, room, "to be redacted")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.RedactEvent(ctx, room, doomed.EventID); err != nil {
		t.Fatalf("redact: %v", err)
	}
	got := rxGetEvent(t, a, alice, room, doomed.EventID)
	if c, _ := got["content"].(map[string]any); len(c) != 0 {
		t.Fatalf("redacted event still has content %v", c)
	}

	// Bob joins over federation and sees the room as Alice's server has it.
	if _, err := bob.JoinRoom(ctx, room.String(), &mautrix.ReqJoinRoom{Via: []string{a.ServerName}}); err != nil {
		t.Fatalf("remote join of a v%s room: %v", rv, err)
	}
	var name event.RoomNameEventContent
	if err := bob.StateEvent(ctx, room, event.StateRoomName, "", &name); err != nil || name.Name != "Old style" {
		t.Fatalf("room name on bob's server: %q, %v", name.Name, err)
	}
	v2WaitFor(t, "alice's server to see bob join", func() bool { return v2Member(ctx, alice, room, bob.UserID) == "join" })
	if jid := v2MemberEventID(t, alice, room, bob.UserID); !v2ID(jid, b.ServerName) {
		t.Fatalf("bob's join on alice's server has ID %s, want a v1-format ID of %s", jid, b.ServerName)
	}

	// Messages both ways keep the IDs their origin gave them.
	fromB, err := bob.SendText(ctx, room, "hello from b")
	if err != nil {
		t.Fatal(err)
	}
	v2WaitFor(t, "bob's message on a", func() bool { _, err := alice.GetEvent(ctx, room, fromB.EventID); return err == nil })
	fromA, err := alice.SendText(ctx, room, "hello from a")
	if err != nil {
		t.Fatal(err)
	}
	v2WaitFor(t, "alice's message on b", func() bool { _, err := bob.GetEvent(ctx, room, fromA.EventID); return err == nil })

	// State from each side: alice promotes bob, bob sets the topic.
	var pl event.PowerLevelsEventContent
	if err := alice.StateEvent(ctx, room, event.StatePowerLevels, "", &pl); err != nil {
		t.Fatal(err)
	}
	pl.SetUserLevel(bob.UserID, 50)
	if _, err := alice.SendStateEvent(ctx, room, event.StatePowerLevels, "", &pl); err != nil {
		t.Fatalf("alice promotes bob: %v", err)
	}
	v2WaitFor(t, "bob's power level on b", func() bool {
		var p event.PowerLevelsEventContent
		return bob.StateEvent(ctx, room, event.StatePowerLevels, "", &p) == nil && p.GetUserLevel(bob.UserID) == 50
	})
	if _, err := bob.SendStateEvent(ctx, room, event.StateTopic, "", &event.TopicEventContent{Topic: "from b"}); err != nil {
		t.Fatalf("bob sets the topic: %v", err)
	}
	v2WaitFor(t, "bob's topic on a", func() bool { return v2Topic(ctx, alice, room) == "from b" })

	// A fork: both set the topic at once; state resolution (v1 for version 1, v2 for 2) must
	// give both servers the same answer.
	errs := make(chan error, 2)
	go func() {
		_, err := alice.SendStateEvent(ctx, room, event.StateTopic, "", &event.TopicEventContent{Topic: "fork a"})
		errs <- err
	}()
	go func() {
		_, err := bob.SendStateEvent(ctx, room, event.StateTopic, "", &event.TopicEventContent{Topic: "fork b"})
		errs <- err
	}()
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatalf("concurrent topic: %v", err)
		}
	}
	// A message from each side joins the forks into one DAG on both servers.
	last := map[string]id.EventID{}
	for who, c := range map[string]*mautrix.Client{"a": alice, "b": bob} {
		r, err := c.SendText(ctx, room, "after the fork from "+who)
		if err != nil {
			t.Fatal(err)
		}
		last[who] = r.EventID
	}
	v2WaitFor(t, "both servers to have both last messages", func() bool {
		for _, c := range []*mautrix.Client{alice, bob} {
			for _, e := range last {
				if _, err := c.GetEvent(ctx, room, e); err != nil {
					return false
				}
			}
		}
		return true
	})
	if _, err := alice.SendText(ctx, room, "merge"); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.SendText(ctx, room, "merge too"); err != nil {
		t.Fatal(err)
	}
	v2WaitFor(t, "both servers to agree on the topic", func() bool {
		ta, tb := v2Topic(ctx, alice, room), v2Topic(ctx, bob, room)
		return ta == tb && (ta == "fork a" || ta == "fork b")
	})
}

// v2ID reports whether e is a v1-format event ID ($opaque:server) of server.
func v2ID(e id.EventID, server string) bool {
	s := e.String()
	return strings.HasPrefix(s, "$") && strings.HasSuffix(s, ":"+server)
}

func v2WaitFor(t *testing.T, what string, fn func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if fn() {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

func v2Topic(ctx context.Context, c *mautrix.Client, room id.RoomID) string {
	var topic event.TopicEventContent
	if err := c.StateEvent(ctx, room, event.StateTopic, "", &topic); err != nil {
		return ""
	}
	return topic.Topic
}

func v2Member(ctx context.Context, c *mautrix.Client, room id.RoomID, user id.UserID) string {
	var m event.MemberEventContent
	if err := c.StateEvent(ctx, room, event.StateMember, user.String(), &m); err != nil {
		return ""
	}
	return string(m.Membership)
}

func v2MemberEventID(t *testing.T, c *mautrix.Client, room id.RoomID, user id.UserID) id.EventID {
	t.Helper()
	state, err := c.State(context.Background(), room)
	if err != nil {
		t.Fatalf("room state: %v", err)
	}
	ev := state[event.StateMember][user.String()]
	if ev == nil {
		raw, _ := json.Marshal(state[event.StateMember])
		t.Fatalf("no member event of %s: %s", user, raw)
	}
	return ev.ID
}
