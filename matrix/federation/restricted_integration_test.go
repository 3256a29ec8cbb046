package federation_test

import (
	"context"
	"testing"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
)

// A user of another server joins a restricted room through membership of the allowed room: the
// resident server names one of its users as the authoriser and countersigns the join.
func TestFederationRestrictedJoin(t *testing.T) {
	a, b, _ := fedPair(t)
	ctx := context.Background()
	alice := a.Register(t, "alice", false)
	bob := b.Register(t, "bob", false)
	allowed, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "public_chat", RoomVersion: "10"})
	if err != nil {
		t.Fatal(err)
	}
	room, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "public_chat", RoomVersion: "10", InitialState: []*event.Event{{Type: event.StateJoinRules, Content: event.Content{Raw: map[string]any{"join_rule": "restricted", "allow": []any{map[string]any{"type": "m.room_membership", "room_id": allowed.RoomID, "via": []string{a.ServerName}}}}}}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.JoinRoom(ctx, room.RoomID.String(), &mautrix.ReqJoinRoom{Via: []string{a.ServerName}}); err == nil {
		t.Fatal("joined a restricted room without being in the allowed room")
	}
	if _, err := bob.JoinRoom(ctx, allowed.RoomID.String(), &mautrix.ReqJoinRoom{Via: []string{a.ServerName}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "bob in the allowed room on a", func() bool { return members(t, alice, allowed.RoomID)[bob.UserID.String()] == "join" })
	if _, err := bob.JoinRoom(ctx, room.RoomID.String(), &mautrix.ReqJoinRoom{Via: []string{a.ServerName}}); err != nil {
		t.Fatalf("restricted join through the allowed room: %v", err)
	}
	sk := bob.UserID.String()
	if _, err := bob.SendStateEvent(ctx, room.RoomID, event.StateMember, sk, map[string]any{"membership": "join", "displayname": "Bobby", "join_authorised_via_users_server": "unused"}); err != nil {
		t.Fatalf("profile change in the restricted room: %v", err)
	}
}
