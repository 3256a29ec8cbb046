package federation_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/appliance/config"
	"github.com/hearth-home/hearth/appliance/testserver"
)

// Two and three Hearth servers on loopback, each a real appliance with its federation listener
// on TLS (certificates from one test CA), talking through real X-Matrix-signed requests.

func fedPair(t *testing.T) (*testserver.Server, *testserver.Server, testserver.CA) {
	t.Helper()
	ca := testserver.NewCA(t)
	a := testserver.Start(t, testserver.Federated(t, ca))
	b := testserver.Start(t, testserver.Federated(t, ca))
	return a, b, ca
}

// waitFor polls fn until it returns true or the deadline passes.
func waitFor(t *testing.T, what string, fn func() bool) {
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

// bodies lists the m.room.message bodies of a room as the client sees them.
func bodies(t *testing.T, c *mautrix.Client, room id.RoomID) []string {
	t.Helper()
	resp, err := c.Messages(context.Background(), room, "", "", mautrix.DirectionBackward, nil, 100)
	if err != nil {
		t.Logf("messages: %v", err)
		return nil
	}
	var out []string
	for i := len(resp.Chunk) - 1; i >= 0; i-- {
		ev := resp.Chunk[i]
		if ev.Type == event.EventMessage {
			var c struct {
				Body string `json:"body"`
			}
			_ = json.Unmarshal(ev.Content.VeryRaw, &c)
			out = append(out, c.Body)
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func members(t *testing.T, c *mautrix.Client, room id.RoomID) map[string]string {
	t.Helper()
	out := map[string]string{}
	resp, err := c.Members(context.Background(), room)
	if err != nil {
		t.Logf("members: %v", err)
		return out
	}
	for _, ev := range resp.Chunk {
		out[*ev.StateKey] = string(ev.Content.AsMember().Membership)
	}
	return out
}

func TestFederationJoinChatLeave(t *testing.T) {
	for _, rv := range []id.RoomVersion{id.RoomV10, id.RoomV12} {
		t.Run("v"+string(rv), func(t *testing.T) {
			a, b, _ := fedPair(t)
			ctx := context.Background()
			alice := a.Register(t, "alice", false)
			bob := b.Register(t, "bob", false)
			created, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "public_chat", Name: "Kitchen", RoomVersion: rv})
			if err != nil {
				t.Fatal(err)
			}
			room := created.RoomID
			if _, err := alice.SendText(ctx, room, "before bob"); err != nil {
				t.Fatal(err)
			}
			// Bob joins over federation through Alice's server.
			if _, err := bob.JoinRoom(ctx, room.String(), &mautrix.ReqJoinRoom{Via: []string{a.ServerName}}); err != nil {
				t.Fatalf("remote join: %v", err)
			}
			// Bob sees the room's state (the name) and Alice sees Bob joined.
			var name event.RoomNameEventContent
			if err := bob.StateEvent(ctx, room, event.StateRoomName, "", &name); err != nil || name.Name != "Kitchen" {
				t.Fatalf("room name on bob's server: %q, %v", name.Name, err)
			}
			waitFor(t, "alice's server to see bob join", func() bool { return members(t, alice, room)[bob.UserID.String()] == "join" })

			// Profiles of remote users come from their server.
			if err := alice.SetDisplayName(ctx, "Alice Home"); err != nil {
				t.Fatal(err)
			}
			if p, err := bob.GetProfile(ctx, alice.UserID); err != nil || p.DisplayName != "Alice Home" {
				t.Fatalf("remote profile: %+v %v", p, err)
			}

			// Messages both ways.
			if _, err := bob.SendText(ctx, room, "hello from b"); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "bob's message on a", func() bool { return contains(bodies(t, alice, room), "hello from b") })
			if _, err := alice.SendText(ctx, room, "hello from a"); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "alice's message on b", func() bool { return contains(bodies(t, bob, room), "hello from a") })

			// Bob leaves; both servers agree.
			if _, err := bob.LeaveRoom(ctx, room); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "alice's server to see bob leave", func() bool { return members(t, alice, room)[bob.UserID.String()] == "leave" })
			// After the leave, Alice's messages no longer go to b.
			if _, err := alice.SendText(ctx, room, "after bob left"); err != nil {
				t.Fatal(err)
			}
			time.Sleep(500 * time.Millisecond)
			if contains(bodies(t, bob, room), "after bob left") {
				t.Fatal("bob's server received a message sent after bob left")
			}
		})
	}
}

func TestFederationInvite(t *testing.T) {
	a, b, _ := fedPair(t)
	ctx := context.Background()
	alice := a.Register(t, "alice", false)
	carol := b.Register(t, "carol", false)
	created, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "private_chat", Name: "Family"})
	if err != nil {
		t.Fatal(err)
	}
	room := created.RoomID
	if _, err := alice.InviteUser(ctx, room, &mautrix.ReqInviteUser{UserID: carol.UserID}); err != nil {
		t.Fatalf("invite remote user: %v", err)
	}
	// Carol's server shows the invite with the room's name in its stripped state.
	waitFor(t, "carol's invite in sync", func() bool {
		resp, err := carol.SyncRequest(ctx, 0, "", "", false, event.PresenceOnline)
		if err != nil {
			return false
		}
		inv, ok := resp.Rooms.Invite[room]
		if !ok {
			return false
		}
		for _, ev := range inv.State.Events {
			if ev.Type == event.StateRoomName {
				return true
			}
		}
		return false
	})
	// Joining an invite-only room through the invite works.
	if _, err := carol.JoinRoomByID(ctx, room); err != nil {
		t.Fatalf("join after invite: %v", err)
	}
	waitFor(t, "carol joined on a", func() bool { return members(t, alice, room)[carol.UserID.String()] == "join" })

	// A user on b who was not invited cannot join the private room.
	dave := b.Register(t, "dave", false)
	if _, err := dave.JoinRoom(ctx, room.String(), &mautrix.ReqJoinRoom{Via: []string{a.ServerName}}); err == nil {
		t.Fatal("an uninvited remote user joined an invite-only room")
	} else if !isErrcode(err, "M_FORBIDDEN") {
		t.Fatalf("uninvited join: want M_FORBIDDEN, got %v", err)
	}
}

func TestFederationRejectInvite(t *testing.T) {
	a, b, _ := fedPair(t)
	ctx := context.Background()
	alice := a.Register(t, "alice", false)
	carol := b.Register(t, "carol", false)
	created, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "private_chat"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.InviteUser(ctx, created.RoomID, &mautrix.ReqInviteUser{UserID: carol.UserID}); err != nil {
		t.Fatal(err)
	}
	if _, err := carol.LeaveRoom(ctx, created.RoomID); err != nil {
		t.Fatalf("reject remote invite: %v", err)
	}
	waitFor(t, "alice's server to see the rejection", func() bool {
		return members(t, alice, created.RoomID)[carol.UserID.String()] == "leave"
	})
}

func isErrcode(err error, code string) bool {
	var he mautrix.HTTPError
	if e, ok := err.(mautrix.HTTPError); ok {
		he = e
	} else {
		return false
	}
	return he.RespError != nil && he.RespError.ErrCode == code
}

// joinedPair makes a public room on a with alice and bob (from b) joined.
func joinedPair(t *testing.T, a, b *testserver.Server) (*mautrix.Client, *mautrix.Client, id.RoomID) {
	t.Helper()
	ctx := context.Background()
	alice := a.Register(t, "", false)
	bob := b.Register(t, "", false)
	created, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "public_chat"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.JoinRoom(ctx, created.RoomID.String(), &mautrix.ReqJoinRoom{Via: []string{a.ServerName}}); err != nil {
		t.Fatalf("remote join: %v", err)
	}
	waitFor(t, "bob joined on a", func() bool { return members(t, alice, created.RoomID)[bob.UserID.String()] == "join" })
	return alice, bob, created.RoomID
}

// A destination that is down gets everything once it is back, even when the sending server
// restarts in between: the queue is in the store.
func TestFederationQueueSurvivesRestart(t *testing.T) {
	a, b, _ := fedPair(t)
	ctx := context.Background()
	alice, bob, room := joinedPair(t, a, b)
	bobToken, bobURL := bob.AccessToken, b.URL

	b.Stop()
	var sent []string
	for i := range 5 {
		msg := fmt.Sprintf("while b was down %d", i)
		if _, err := alice.SendText(ctx, room, msg); err != nil {
			t.Fatal(err)
		}
		sent = append(sent, msg)
	}
	// Restart the sending server with the queue still full.
	a2 := a.Restart(t)
	_ = a2
	b2 := b.Restart(t)
	if b2.URL != bobURL {
		t.Fatalf("b came back on %s, not %s", b2.URL, bobURL)
	}
	bob2, err := mautrix.NewClient(b2.URL, bob.UserID, bobToken)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "every queued message on b", func() bool {
		got := bodies(t, bob2, room)
		for _, m := range sent {
			if !contains(got, m) {
				return false
			}
		}
		return true
	})
	// Each arrived once.
	got := bodies(t, bob2, room)
	for _, m := range sent {
		n := 0
		for _, g := range got {
			if g == m {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("%q arrived %d times", m, n)
		}
	}
}

// Three servers change the same state at the same moment: every server ends with the same
// state (state resolution), including the one that was away while it happened.
func TestFederationThreeServersConverge(t *testing.T) {
	ca := testserver.NewCA(t)
	a := testserver.Start(t, testserver.Federated(t, ca))
	b := testserver.Start(t, testserver.Federated(t, ca))
	c := testserver.Start(t, testserver.Federated(t, ca))
	ctx := context.Background()
	alice := a.Register(t, "alice", false)
	bob := b.Register(t, "bob", false)
	carol := c.Register(t, "carol", false)
	created, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "public_chat", RoomVersion: id.RoomV10,
		PowerLevelOverride: &event.PowerLevelsEventContent{Users: map[id.UserID]int{alice.UserID: 100, bob.UserID: 100}}})
	if err != nil {
		t.Fatal(err)
	}
	room := created.RoomID
	for _, cl := range []*mautrix.Client{bob, carol} {
		if _, err := cl.JoinRoom(ctx, room.String(), &mautrix.ReqJoinRoom{Via: []string{a.ServerName}}); err != nil {
			t.Fatalf("join %s: %v", cl.UserID, err)
		}
	}
	for _, cl := range []*mautrix.Client{alice, bob, carol} {
		waitFor(t, "everyone joined on "+cl.UserID.String(), func() bool {
			m := members(t, cl, room)
			return m[alice.UserID.String()] == "join" && m[bob.UserID.String()] == "join" && m[carol.UserID.String()] == "join"
		})
	}
	// Carol's server is away while Alice and Bob set the topic at the same moment.
	carolToken := carol.AccessToken
	c.Stop()
	done := make(chan error, 2)
	for _, cl := range []*mautrix.Client{alice, bob} {
		go func(cl *mautrix.Client) {
			_, err := cl.SendStateEvent(ctx, room, event.StateTopic, "", map[string]any{"topic": "set by " + cl.UserID.String()})
			done <- err
		}(cl)
	}
	for range 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	c2 := c.Restart(t)
	carol2, err := mautrix.NewClient(c2.URL, carol.UserID, carolToken)
	if err != nil {
		t.Fatal(err)
	}
	// A message after the fork pulls the away server up to date (get_missing_events).
	if _, err := alice.SendText(ctx, room, "after the fork"); err != nil {
		t.Fatal(err)
	}
	topic := func(cl *mautrix.Client) string {
		var tc event.TopicEventContent
		if err := cl.StateEvent(ctx, room, event.StateTopic, "", &tc); err != nil {
			return ""
		}
		return tc.Topic
	}
	waitFor(t, "one topic on all three servers", func() bool {
		ta, tb, tc := topic(alice), topic(bob), topic(carol2)
		return ta != "" && ta == tb && tb == tc && contains(bodies(t, carol2, room), "after the fork")
	})
	t.Logf("converged on topic %q", topic(alice))
}

// History from before a remote join is fetched with /backfill when the client pages back.
func TestFederationBackfill(t *testing.T) {
	a, b, _ := fedPair(t)
	ctx := context.Background()
	alice := a.Register(t, "alice", false)
	bob := b.Register(t, "bob", false)
	created, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "public_chat", InitialState: []*event.Event{
		{Type: event.StateHistoryVisibility, Content: event.Content{Parsed: &event.HistoryVisibilityEventContent{HistoryVisibility: event.HistoryVisibilityShared}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	room := created.RoomID
	var old []string
	for i := range 25 {
		msg := fmt.Sprintf("history %d", i)
		if _, err := alice.SendText(ctx, room, msg); err != nil {
			t.Fatal(err)
		}
		old = append(old, msg)
	}
	if _, err := bob.JoinRoom(ctx, room.String(), &mautrix.ReqJoinRoom{Via: []string{a.ServerName}}); err != nil {
		t.Fatal(err)
	}
	// Page back from the end in pages of 10 until the room's creation.
	var seen []string
	from := ""
	sawCreate := false
	for range 20 {
		resp, err := bob.Messages(ctx, room, from, "", mautrix.DirectionBackward, nil, 10)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range resp.Chunk {
			if ev.Type == event.EventMessage {
				var c struct {
					Body string `json:"body"`
				}
				_ = json.Unmarshal(ev.Content.VeryRaw, &c)
				seen = append(seen, c.Body)
			}
			if ev.Type == event.StateCreate {
				sawCreate = true
			}
		}
		if resp.End == "" {
			break
		}
		from = resp.End
	}
	for _, m := range old {
		if !contains(seen, m) {
			t.Fatalf("%q not backfilled; saw %v", m, seen)
		}
	}
	if !sawCreate {
		t.Fatalf("paging back never reached the room's create event; saw %v", seen)
	}
	// Newest first, without duplicates.
	for i := 1; i < len(seen); i++ {
		if seen[i] == seen[i-1] {
			t.Fatalf("duplicate %q", seen[i])
		}
	}
	if seen[0] != "history 24" {
		t.Fatalf("first message paging back is %q", seen[0])
	}
}

// Delegation: the configured m.server is served at /.well-known/matrix/server; without one the
// answer is 404 (no delegation), and the client well-known names the public base URL.
func TestFederationWellKnown(t *testing.T) {
	s := testserver.Start(t, func(c *config.Config) {
		c.Federation.WellKnownServer = "matrix.example.org:443"
		c.PublicBaseURL = "https://matrix.example.org"
	})
	plain := testserver.Start(t)
	get := func(url string) (int, map[string]any) {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m
	}
	if code, m := get(s.URL + "/.well-known/matrix/server"); code != 200 || m["m.server"] != "matrix.example.org:443" {
		t.Fatalf("well-known server: %d %v", code, m)
	}
	if code, m := get(s.URL + "/.well-known/matrix/client"); code != 200 || m["m.homeserver"].(map[string]any)["base_url"] != "https://matrix.example.org" {
		t.Fatalf("well-known client: %d %v", code, m)
	}
	if code, _ := get(plain.URL + "/.well-known/matrix/server"); code != 404 {
		t.Fatalf("well-known server without delegation: %d, want 404", code)
	}
}

// A user who left a room (so their server is no longer in it) is invited back and rejoins.
func TestFederationRejoinAfterLeave(t *testing.T) {
	a, b, _ := fedPair(t)
	ctx := context.Background()
	alice, bob, room := joinedPair(t, a, b)
	if _, err := bob.LeaveRoom(ctx, room); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "bob left on a", func() bool { return members(t, alice, room)[bob.UserID.String()] == "leave" })
	if _, err := alice.SendText(ctx, room, "while bob was away"); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.InviteUser(ctx, room, &mautrix.ReqInviteUser{UserID: bob.UserID}); err != nil {
		t.Fatalf("invite back: %v", err)
	}
	waitFor(t, "bob's invite on b", func() bool {
		resp, err := bob.SyncRequest(ctx, 0, "", "", false, event.PresenceOnline)
		_, ok := resp.Rooms.Invite[room]
		return err == nil && ok
	})
	if _, err := bob.JoinRoomByID(ctx, room); err != nil {
		t.Fatalf("rejoin: %v", err)
	}
	if _, err := alice.SendText(ctx, room, "welcome back"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "messages after the rejoin on b", func() bool { return contains(bodies(t, bob, room), "welcome back") })
	if _, err := bob.SendText(ctx, room, "glad to be back"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "bob's message on a", func() bool { return contains(bodies(t, alice, room), "glad to be back") })
}

// A client lists another server's room directory through its own server.
func TestFederationRemoteDirectory(t *testing.T) {
	a, b, _ := fedPair(t)
	ctx := context.Background()
	alice := a.Register(t, "alice", false)
	bob := b.Register(t, "bob", false)
	created, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "public_chat", Visibility: "public", Name: "Garden"})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := bob.PublicRooms(ctx, &mautrix.ReqPublicRooms{Server: a.ServerName})
	if err != nil {
		t.Fatalf("remote directory: %v", err)
	}
	found := false
	for _, r := range resp.Chunk {
		if r.RoomID == created.RoomID && r.Name == "Garden" {
			found = true
		}
	}
	if !found {
		t.Fatalf("alice's public room not in a's directory as seen from b: %+v", resp.Chunk)
	}
}
