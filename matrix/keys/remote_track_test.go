package keys

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/change"
	"github.com/hearth-home/hearth/matrix/store"
)

// setMember writes a member event of user into a room's current state on s, as the room
// service does (and the local membership index for a local user), and returns the note the
// room service would publish. room 0 creates a room.
func setMember(t *testing.T, s *Service, room uint64, user, membership string) (uint64, change.Change) {
	t.Helper()
	var note change.Change
	err := s.st.Update(func(txn *store.Txn) error {
		if room == 0 {
			nid, err := txn.CreateRoom(&store.RoomRecord{ID: "!shared:" + server, Version: "10"})
			if err != nil {
				return err
			}
			room = nid
		}
		pos, err := txn.AllocPos(store.KindEvent)
		if err != nil {
			return err
		}
		pdu, _ := json.Marshal(map[string]any{"type": "m.room.member", "state_key": user, "sender": user, "content": map[string]string{"membership": membership}})
		sk, err := txn.StateKeyNID("m.room.member", user, true)
		if err != nil {
			return err
		}
		// The state before the event holds the user's previous member event (only that: it
		// is all the keys service reads of it).
		rec := &store.EventRecord{Room: room, ID: fmt.Sprintf("$m%d", pos), PDU: pdu}
		if cur, err := txn.CurrentState(room, sk); err == nil {
			if rec.Snapshot, err = txn.PutSnapshot(&store.Snapshot{Entries: map[uint64]uint64{sk: cur}}); err != nil {
				return err
			}
		}
		if err := txn.PutEvent(pos, rec); err != nil {
			return err
		}
		if err := txn.SetCurrentState(room, sk, pos); err != nil {
			return err
		}
		if id.UserID(user).Homeserver() == server {
			if err := txn.SetMembership(user, room, membership, pos); err != nil {
				return err
			}
		}
		stateKey := user
		note = change.Change{Pos: pos, Kind: change.Event, Room: room, EventType: "m.room.member", StateKey: &stateKey, Membership: membership}
		return nil
	})
	if err != nil {
		t.Fatalf("member %s %s: %v", user, membership, err)
	}
	return room, note
}

// A remote user's device list is cached only while a local user shares a room with them,
// and dropped when the sharing may have had a gap: a leave and a rejoin.
func TestRemoteCacheFollowsSharedRooms(t *testing.T) {
	local, remote, p := remotePair(t)
	bob := id.UserID("@bob:" + otherServer)
	alice := "@alice:" + server
	uploadDevice(t, remote, bob, "B1")

	// No shared room: every query asks the owner, and nothing is kept.
	queriedDevices(t, local, bob)
	queriedDevices(t, local, bob)
	if n := p.count("query"); n != 2 {
		t.Fatalf("%d queries without a shared room, want 2", n)
	}
	if local.remote.cached(bob.String()) != nil {
		t.Fatal("a user sharing no room was cached")
	}

	// Sharing a room: the answer is cached.
	room, _ := setMember(t, local, 0, alice, "join")
	setMember(t, local, room, bob.String(), "join")
	queriedDevices(t, local, bob)
	queriedDevices(t, local, bob)
	if n := p.count("query"); n != 3 {
		t.Fatalf("%d queries while sharing a room, want 3", n)
	}

	// Bob leaves: the note drops the cache, and a change of keys while apart is seen.
	_, note := setMember(t, local, room, bob.String(), "leave")
	if err := local.forgetOnMembership(note); err != nil {
		t.Fatal(err)
	}
	if local.remote.cached(bob.String()) != nil {
		t.Fatal("cache kept after the owner left")
	}
	uploadDevice(t, remote, bob, "B2")
	_, note = setMember(t, local, room, bob.String(), "join")
	if err := local.forgetOnMembership(note); err != nil {
		t.Fatal(err)
	}
	if devs, _ := queriedDevices(t, local, bob); !slices.Equal(devs, []string{"B1", "B2"}) {
		t.Fatalf("after the rejoin: %v", devs)
	}

	// Alice leaves the only shared room: even a note that names only her drops bob's list,
	// and a lookup that finds no shared room never answers from the cache.
	if local.remote.cached(bob.String()) == nil {
		t.Fatal("not cached after the rejoin")
	}
	_, note = setMember(t, local, room, alice, "leave")
	if err := local.forgetOnMembership(note); err != nil {
		t.Fatal(err)
	}
	if local.remote.cached(bob.String()) != nil {
		t.Fatal("cache kept after the last local member left")
	}
	uploadDevice(t, remote, bob, "B3")
	if devs, _ := queriedDevices(t, local, bob); !slices.Equal(devs, []string{"B1", "B2", "B3"}) {
		t.Fatalf("after alice left: %v", devs)
	}
}

// A local user who joins a room finds themselves in their own device_lists.changed, beside
// the members they now share a room with.
func TestDeviceListsListJoinerThemselves(t *testing.T) {
	s := newService(t)
	alice, bob := "@alice:"+server, "@bob:"+otherServer
	room, _ := setMember(t, s, 0, bob, "join")
	since := s.st.Stream().Watermark()
	setMember(t, s, room, alice, "join") // into the room's timeline, which the window scans
	var changed []string
	err := s.st.View(func(txn *store.Txn) error {
		var err error
		changed, _, err = s.DeviceLists(txn, alice, since, s.st.Stream().Watermark())
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(changed, []string{alice, bob}) {
		t.Fatalf("changed %v, want alice and bob", changed)
	}
}

// deviceListMarks lists the users written to the device-list change stream after since.
func deviceListMarks(t *testing.T, s *Service, since uint64) []string {
	t.Helper()
	var out []string
	err := s.st.View(func(txn *store.Txn) error {
		return txn.DeviceListChanges(since, s.st.Stream().Watermark(), func(_ uint64, u string) (bool, error) {
			out = append(out, u)
			return true, nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// A remote user whose join makes them share a room with us, and whose list nobody here has
// fetched since, is not marked changed again by an update (their server's announcement on
// join): the join already listed them. After a fetch, or for a user who was there before (a
// profile change is a join after a join), updates are news.
func TestRemoteUpdateAfterFreshJoin(t *testing.T) {
	local, remote, _ := remotePair(t)
	ctx := context.Background()
	alice, bob := "@alice:"+server, id.UserID("@bob:"+otherServer)
	uploadDevice(t, remote, bob, "B1")
	room, _ := setMember(t, local, 0, alice, "join")
	_, note := setMember(t, local, room, bob.String(), "join")
	if err := local.forgetOnMembership(note); err != nil {
		t.Fatal(err)
	}
	update := func(stream int64) {
		t.Helper()
		if err := local.ApplyDeviceListUpdate(ctx, RemoteDeviceUpdate{UserID: bob.String(), DeviceID: "B1", StreamID: stream, Deleted: true}); err != nil {
			t.Fatal(err)
		}
	}
	since := local.st.Stream().Watermark()
	update(7)
	if got := deviceListMarks(t, local, since); len(got) != 0 {
		t.Fatalf("an update right after bob's join was recorded: %v", got)
	}
	queriedDevices(t, local, bob) // alice's client asks: from now on updates are news
	update(8)
	if got := deviceListMarks(t, local, since); !slices.Equal(got, []string{bob.String()}) {
		t.Fatalf("an update after a fetch: %v", got)
	}

	// A profile change drops the cache but is no arrival: the next update is news.
	since = local.st.Stream().Watermark()
	_, note = setMember(t, local, room, bob.String(), "join")
	if err := local.forgetOnMembership(note); err != nil {
		t.Fatal(err)
	}
	update(9)
	if got := deviceListMarks(t, local, since); !slices.Equal(got, []string{bob.String()}) {
		t.Fatalf("an update after a profile change: %v", got)
	}
}

// gatedPeers holds each /user/devices request until the test lets it go (or it is cancelled).
type gatedPeers struct {
	*peers
	entered chan struct{}
	gate    chan struct{}
}

func (g gatedPeers) UserDevices(ctx context.Context, server, user string) (*FedDevices, error) {
	g.entered <- struct{}{}
	select {
	case <-g.gate:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return g.peers.UserDevices(ctx, server, user)
}

// An update that arrives while a resync of the same user is under way runs another resync
// after it: the running one may have been answered before the update's change.
func TestRemoteResyncRerunsForUpdateDuringFetch(t *testing.T) {
	local, remote := newService(t), newServiceNamed(t, otherServer)
	p := &peers{servers: map[string]*Service{otherServer: remote}, calls: map[string]int{}}
	g := gatedPeers{peers: p, entered: make(chan struct{}, 4), gate: make(chan struct{})}
	local.EnableRemote(RemoteOptions{Federation: g, Timeout: 5 * time.Second})
	sharedWithBob(t, local)
	ctx := context.Background()
	bob := id.UserID("@bob:" + otherServer)
	uploadDevice(t, remote, bob, "B1")
	queriedDevices(t, local, bob) // cached, without a stream ID: the next update resyncs

	waitEntered := func(what string) {
		t.Helper()
		select {
		case <-g.entered:
		case <-time.After(5 * time.Second):
			t.Fatalf("timed out waiting for %s", what)
		}
	}
	if err := local.ApplyDeviceListUpdate(ctx, RemoteDeviceUpdate{UserID: bob.String(), DeviceID: "B1", StreamID: 1}); err != nil {
		t.Fatal(err)
	}
	waitEntered("the first resync")
	uploadDevice(t, remote, bob, "B2")
	if err := local.ApplyDeviceListUpdate(ctx, RemoteDeviceUpdate{UserID: bob.String(), DeviceID: "B2", StreamID: 2, PrevID: []int64{1}}); err != nil {
		t.Fatal(err)
	}
	g.gate <- struct{}{} // the first fetch answers (it could have left before the update)
	waitEntered("a second resync")
	g.gate <- struct{}{}
	eventually(t, "both devices in the cache", func() bool {
		e := local.remote.cached(bob.String())
		return e != nil && len(e.devices) == 2
	})
}
