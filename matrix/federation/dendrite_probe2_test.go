package federation_test

import (
	"context"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/appliance/testserver"
)

func TestDendriteProbeTyping(t *testing.T) {
	ca := testserver.NewCA(t)
	d := startDendrite(t, ca)
	h := testserver.Start(t, testserver.Federated(t, ca))
	ctx := context.Background()
	alice := h.Register(t, "alice", false)
	bob := h.Register(t, "bob", false)
	dana := d.register(t, "dana")
	created, _ := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "public_chat", RoomVersion: id.RoomV10})
	room := created.RoomID
	bob.JoinRoomByID(ctx, room)
	if _, err := dana.JoinRoom(ctx, room.String(), &mautrix.ReqJoinRoom{Via: []string{h.ServerName}}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	_, m := h.Raw(t, "GET", "/_matrix/client/v3/sync?timeout=0", alice.AccessToken, "")
	nb := m["next_batch"].(string)
	bob.UserTyping(ctx, room, true, 10*time.Second)
	dana.UserTyping(ctx, room, true, 10*time.Second)
	time.Sleep(2 * time.Second)
	_, m = h.Raw(t, "GET", "/_matrix/client/v3/sync?timeout=0&since="+nb, alice.AccessToken, "")
	t.Logf("incremental: %v", m["rooms"])
	_, m = h.Raw(t, "GET", "/_matrix/client/v3/sync?timeout=0", alice.AccessToken, "")
	t.Logf("initial: %v", m["rooms"].(map[string]any)["join"].(map[string]any)[room.String()].(map[string]any)["ephemeral"])
}
