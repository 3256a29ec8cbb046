package federation_test

import (
	"context"
	"slices"
	"testing"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/id"
)

// Device lists across two Hearths around joins and leaves: the joiner sees themselves and the
// room's members in device_lists.changed, and a server that stopped sharing a room with a
// remote user never answers /keys/query from a list it can no longer keep current.

// secondDevice logs user in again on s's client API and uploads keys for the new device.
func secondDevice(t *testing.T, base string, user *mautrix.Client) id.DeviceID {
	t.Helper()
	lp, _, _ := user.UserID.Parse()
	anon, err := mautrix.NewClient(base, "", "")
	if err != nil {
		t.Fatal(err)
	}
	login, err := anon.Login(context.Background(), &mautrix.ReqLogin{
		Type:       mautrix.AuthTypePassword,
		Identifier: mautrix.UserIdentifier{Type: mautrix.IdentifierTypeUser, User: lp},
		Password:   "password-" + lp,
	})
	if err != nil {
		t.Fatalf("second login: %v", err)
	}
	cli, err := mautrix.NewClient(base, user.UserID, login.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	cli.DeviceID = login.DeviceID
	newCryptoPeer(t, cli)
	return login.DeviceID
}

func TestFederationDeviceListsAcrossMembership(t *testing.T) {
	a, b, _ := fedPair(t)
	ctx := context.Background()
	aliceCli := a.Register(t, "alice", false)
	bobCli := b.Register(t, "bob", false)
	newCryptoPeer(t, aliceCli)
	bob := &syncer{t: t, cli: bobCli}
	bob.once()

	created, err := aliceCli.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "public_chat"})
	if err != nil {
		t.Fatal(err)
	}
	room := created.RoomID
	if _, err := bobCli.JoinRoom(ctx, room.String(), &mautrix.ReqJoinRoom{Via: []string{a.ServerName}}); err != nil {
		t.Fatalf("remote join: %v", err)
	}
	// The joiner's own list counts as changed beside the members they now share a room with.
	bob.until("alice and bob in bob's device_lists.changed", func(r *mautrix.RespSync) bool {
		return slices.Contains(r.DeviceLists.Changed, aliceCli.UserID) && slices.Contains(r.DeviceLists.Changed, bobCli.UserID)
	})

	// While the room is shared, b caches alice's list and keeps it current.
	waitFor(t, "alice's device in bob's key query", func() bool {
		devs, _ := keysOf(t, bobCli, aliceCli.UserID)
		return slices.Equal(devs, []string{aliceCli.DeviceID.String()})
	})

	// Bob leaves: a stops telling b about alice's devices, so b must ask again.
	if _, err := bobCli.LeaveRoom(ctx, room); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "alice's server to see bob leave", func() bool { return members(t, aliceCli, room)[bobCli.UserID.String()] == "leave" })
	second := secondDevice(t, a.URL, aliceCli)
	want := []string{aliceCli.DeviceID.String(), second.String()}
	slices.Sort(want)
	if devs, _ := keysOf(t, bobCli, aliceCli.UserID); !slices.Equal(devs, want) {
		t.Fatalf("bob's key query after leaving answers %v, want %v (a stale cached list)", devs, want)
	}

	// Bob rejoins: what b fetched while apart is not trusted either; a third device shows.
	if _, err := bobCli.JoinRoom(ctx, room.String(), &mautrix.ReqJoinRoom{Via: []string{a.ServerName}}); err != nil {
		t.Fatalf("rejoin: %v", err)
	}
	waitFor(t, "alice's server to see bob rejoin", func() bool { return members(t, aliceCli, room)[bobCli.UserID.String()] == "join" })
	third := secondDevice(t, a.URL, aliceCli)
	want = append(want, third.String())
	slices.Sort(want)
	waitFor(t, "alice's third device in bob's key query", func() bool {
		devs, _ := keysOf(t, bobCli, aliceCli.UserID)
		return slices.Equal(devs, want)
	})
}
