package federation_test

import (
	"context"
	"sync"
	"testing"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/id"
)

// Joins of one user to several rooms of another server at once: their imports create the same
// new state keys (the rooms share a creator and a joiner) in concurrent transactions, which the
// store retries on conflict. Every join must succeed and leave a readable room.
func TestFederationParallelJoins(t *testing.T) {
	a, b, _ := fedPair(t)
	ctx := context.Background()
	alice, bob := a.Register(t, "alice", false), b.Register(t, "bob", false)
	const n = 8
	rooms := make([]id.RoomID, n)
	for i := range rooms {
		r, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "public_chat"})
		if err != nil {
			t.Fatal(err)
		}
		rooms[i] = r.RoomID
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i, r := range rooms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = bob.JoinRoom(ctx, r.String(), &mautrix.ReqJoinRoom{Via: []string{a.ServerName}})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("join %s: %v", rooms[i], err)
			continue
		}
		if m := members(t, bob, rooms[i]); m[bob.UserID.String()] != "join" || m[alice.UserID.String()] != "join" {
			t.Errorf("members of %s after the join: %v", rooms[i], m)
		}
	}
}
