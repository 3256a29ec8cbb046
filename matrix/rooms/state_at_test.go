package rooms

import (
	"context"
	"math"
	"slices"
	"testing"

	"maunium.net/go/mautrix/id"
)

// TestStateAtMembers follows Complement's TestGetRoomMembersAtPoint on the domain API: the
// members at a point before the room's first event (the prev_batch of a sync showing the room
// from its create event) are the creator alone, the members at a later point include whoever
// joined by then, and a point inside the creation batch before the creator's join answers the
// same as the start.
func TestStateAtMembers(t *testing.T) {
	s, _ := relTestService(t)
	ctx := context.Background()
	alice, bob := id.UserID("@alice:hearth.test"), id.UserID("@bob:hearth.test")
	room, err := s.CreateRoom(ctx, CreateRequest{Creator: alice, Preset: "public_chat"})
	if err != nil {
		t.Fatal(err)
	}
	hello := relSend(t, s, room, alice, map[string]any{"msgtype": "m.text", "body": "Hello world!"})
	create, err := s.CurrentState(ctx, room, "m.room.create", "")
	if err != nil || create == nil {
		t.Fatalf("create event: %v", err)
	}
	join, err := s.Send(ctx, room, memberTemplate(bob, "join"), SendOpts{})
	if err != nil {
		t.Fatal(err)
	}
	relSend(t, s, room, bob, map[string]any{"msgtype": "m.text", "body": "Hello back"})

	members := func(pos uint64) []string {
		t.Helper()
		state, err := s.StateAt(ctx, room, pos)
		if err != nil {
			t.Fatalf("state at %d: %v", pos, err)
		}
		var out []string
		for _, e := range state {
			if e.Lite.Type == "m.room.member" {
				out = append(out, *e.Lite.StateKey+"="+e.Lite.Membership())
			}
		}
		slices.Sort(out)
		return out
	}
	for _, c := range []struct {
		name string
		pos  uint64
		want []string
	}{
		{"before the create event", create.Pos - 1, []string{"@alice:hearth.test=join"}},
		{"at the create event", create.Pos, []string{"@alice:hearth.test=join"}},
		{"at the first message", hello.Pos, []string{"@alice:hearth.test=join"}},
		{"just before bob's join", join.Pos - 1, []string{"@alice:hearth.test=join"}},
		{"at bob's join", join.Pos, []string{"@alice:hearth.test=join", "@bob:hearth.test=join"}},
		{"the largest token", math.MaxUint64, []string{"@alice:hearth.test=join", "@bob:hearth.test=join"}},
	} {
		if got := members(c.pos); !slices.Equal(got, c.want) {
			t.Errorf("%s (%d): members %v, want %v", c.name, c.pos, got, c.want)
		}
	}
	if _, err := s.StateAt(ctx, "!unknown:hearth.test", 5); err == nil {
		t.Fatal("state of an unknown room: want M_NOT_FOUND")
	}
}
