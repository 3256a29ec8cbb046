package clientapi_test

import (
	"net/http"
	"strings"
	"testing"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/appliance/testserver"
)

// Room upgrades: POST /rooms/{roomId}/upgrade.

func upgradeRoom(t *testing.T, s *testserver.Server, cli *mautrix.Client, roomID id.RoomID, body map[string]any) id.RoomID {
	t.Helper()
	m := cs3Do(t, s, http.MethodPost, "/_matrix/client/v3/rooms/"+cs3Esc(roomID.String())+"/upgrade", cli.AccessToken, body).ok(t)
	newID, _ := m["replacement_room"].(string)
	if !strings.HasPrefix(newID, "!") {
		t.Fatalf("replacement_room %q", newID)
	}
	return id.RoomID(newID)
}

// stateEvent reads a whole state event (format=event).
func stateEvent(t *testing.T, s *testserver.Server, cli *mautrix.Client, roomID id.RoomID, typ string) map[string]any {
	t.Helper()
	return cs3Do(t, s, http.MethodGet, "/_matrix/client/v3/rooms/"+cs3Esc(roomID.String())+"/state/"+typ+"/?format=event", cli.AccessToken, nil).ok(t)
}

func usersOf(pl map[string]any) map[string]int64 {
	out := map[string]int64{}
	users, _ := pl["users"].(map[string]any)
	for k, v := range users {
		out[k] = int64(v.(float64))
	}
	return out
}

func TestUpgradeRoomCopiesStateAndRetiresOldRoom(t *testing.T) {
	s := testserver.Start(t)
	alice := s.Register(t, "alice", false)
	bob := s.Register(t, "bob", false)
	eve := s.Register(t, "eve", false)

	old := cs3CreateRoom(t, s, alice, map[string]any{
		"room_version": "10", "preset": "public_chat", "visibility": "public",
		"room_alias_name": "upgrade-me", "name": "Kitchen", "topic": "Cooking",
	})
	alias := "#upgrade-me:" + s.ServerName
	second := "#second:" + s.ServerName
	cs3Do(t, s, http.MethodPut, "/_matrix/client/v3/directory/room/"+cs3Esc(second), alice.AccessToken, map[string]any{"room_id": old}).ok(t)
	cs3SetState(t, alice, old, "m.room.canonical_alias", "", map[string]any{"alias": alias, "alt_aliases": []string{second}})
	cs3SetState(t, alice, old, "m.room.avatar", "", map[string]any{"url": "mxc://example.org/avatar"})
	cs3SetState(t, alice, old, "m.room.encryption", "", map[string]any{"algorithm": "m.megolm.v1.aes-sha2"})
	cs3SetState(t, alice, old, "m.room.server_acl", "", map[string]any{"allow": []string{"*"}, "deny": []string{"evil.example"}, "allow_ip_literals": false})
	cs3SetState(t, alice, old, "m.room.history_visibility", "", map[string]any{"history_visibility": "joined"})
	cs3SetState(t, alice, old, "m.room.guest_access", "", map[string]any{"guest_access": "can_join"})
	cs3R(bob.JoinRoomByID(cs3Ctx, old)).must(t)
	cs3R(eve.JoinRoomByID(cs3Ctx, old)).must(t)
	cs3R(alice.BanUser(cs3Ctx, old, &mautrix.ReqBanUser{UserID: eve.UserID, Reason: "spam"})).must(t)
	pl := cs3State(t, alice, old, "m.room.power_levels", "")
	pl["users"].(map[string]any)[bob.UserID.String()] = 20
	cs3SetState(t, alice, old, "m.room.power_levels", "", pl)

	newID := upgradeRoom(t, s, alice, old, map[string]any{"new_version": "11"})

	// The old room: tombstone, restricted power levels, canonical alias without local aliases.
	tomb := stateEvent(t, s, alice, old, "m.room.tombstone")
	tc := tomb["content"].(map[string]any)
	if tc["replacement_room"] != newID.String() || tc["body"] == "" {
		t.Fatalf("tombstone content %v", tc)
	}
	oldPL := cs3State(t, alice, old, "m.room.power_levels", "")
	if cs3Num(oldPL, "events_default") != 50 || cs3Num(oldPL, "invite") != 50 {
		t.Fatalf("old room power levels not restricted: %v", oldPL)
	}
	if ca := cs3State(t, alice, old, "m.room.canonical_alias", ""); len(ca) != 0 {
		t.Fatalf("old room still names local aliases: %v", ca)
	}
	_, err := bob.SendMessageEvent(cs3Ctx, old, event.EventMessage, map[string]any{"msgtype": "m.text", "body": "still here?"})
	cs3WantErr(t, err, http.StatusForbidden, "M_FORBIDDEN")

	// The new room: version, predecessor naming the tombstone, creator and copied state.
	create := stateEvent(t, s, alice, newID, "m.room.create")
	cc := create["content"].(map[string]any)
	pred, _ := cc["predecessor"].(map[string]any)
	if cc["room_version"] != "11" || pred["room_id"] != old.String() || pred["event_id"] != tomb["event_id"] {
		t.Fatalf("create content %v (tombstone %v)", cc, tomb["event_id"])
	}
	if create["sender"] != alice.UserID.String() {
		t.Fatalf("create sender %v", create["sender"])
	}
	for typ, want := range map[string]map[string]any{
		"m.room.name":               {"name": "Kitchen"},
		"m.room.topic":              {"topic": "Cooking"},
		"m.room.avatar":             {"url": "mxc://example.org/avatar"},
		"m.room.encryption":         {"algorithm": "m.megolm.v1.aes-sha2"},
		"m.room.join_rules":         {"join_rule": "public"},
		"m.room.history_visibility": {"history_visibility": "joined"},
		"m.room.guest_access":       {"guest_access": "can_join"},
		"m.room.canonical_alias":    {"alias": alias},
	} {
		got := cs3State(t, alice, newID, typ, "")
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s.%s = %v, want %v", typ, k, got[k], v)
			}
		}
	}
	if acl := cs3State(t, alice, newID, "m.room.server_acl", ""); acl == nil || acl["deny"].([]any)[0] != "evil.example" {
		t.Errorf("server ACL not copied: %v", acl)
	}
	if u := usersOf(cs3State(t, alice, newID, "m.room.power_levels", "")); u[alice.UserID.String()] != 100 || u[bob.UserID.String()] != 20 {
		t.Errorf("new power levels users %v", u)
	}
	if m := cs3State(t, alice, newID, "m.room.member", eve.UserID.String()); m["membership"] != "ban" || m["reason"] != "spam" {
		t.Errorf("ban not carried over: %v", m)
	}
	if m := cs3State(t, alice, newID, "m.room.member", bob.UserID.String()); m != nil {
		t.Errorf("bob's membership was copied: %v", m)
	}

	// Aliases and the directory entry moved.
	for _, al := range []string{alias, second} {
		res := cs3R(alice.ResolveAlias(cs3Ctx, id.RoomAlias(al))).must(t)
		if res.RoomID != newID {
			t.Errorf("%s -> %s, want %s", al, res.RoomID, newID)
		}
	}
	got := cs3Do(t, s, http.MethodGet, "/_matrix/client/v3/rooms/"+cs3Esc(old.String())+"/aliases", alice.AccessToken, nil).ok(t)
	if len(got["aliases"].([]any)) != 0 {
		t.Errorf("old room still has aliases %v", got)
	}
	for room, want := range map[id.RoomID]string{old: "private", newID: "public"} {
		v := cs3Do(t, s, http.MethodGet, "/_matrix/client/v3/directory/list/room/"+cs3Esc(room.String()), "", nil).ok(t)
		if v["visibility"] != want {
			t.Errorf("directory visibility of %s = %v, want %s", room, v["visibility"], want)
		}
	}

	// Bob follows the tombstone.
	cs3R(bob.JoinRoomByID(cs3Ctx, newID)).must(t)
	cs3R(bob.SendMessageEvent(cs3Ctx, newID, event.EventMessage, map[string]any{"msgtype": "m.text", "body": "moved"})).must(t)
	joined := cs3R(alice.JoinedRooms(cs3Ctx)).must(t)
	found := false
	for _, r := range joined.JoinedRooms {
		found = found || r == newID
	}
	if !found {
		t.Fatalf("alice is not in the new room: %v", joined.JoinedRooms)
	}
}

func TestUpgradeRoomRaisesAndRestoresUpgraderPower(t *testing.T) {
	s := testserver.Start(t)
	alice := s.Register(t, "alice", false)
	bob := s.Register(t, "bob", false)
	old := cs3CreateRoom(t, s, alice, map[string]any{"room_version": "10", "preset": "public_chat"})
	cs3R(bob.JoinRoomByID(cs3Ctx, old)).must(t)
	cs3SetState(t, alice, old, "m.room.encryption", "", map[string]any{"algorithm": "m.megolm.v1.aes-sha2"})
	pl := cs3State(t, alice, old, "m.room.power_levels", "")
	pl["users"].(map[string]any)[bob.UserID.String()] = 60
	pl["events"].(map[string]any)["m.room.tombstone"] = 60
	cs3SetState(t, alice, old, "m.room.power_levels", "", pl)

	// Bob may tombstone (60) but not send encryption or power levels (100) himself.
	newID := upgradeRoom(t, s, bob, old, map[string]any{"new_version": "11"})
	if c := cs3State(t, bob, newID, "m.room.encryption", ""); c["algorithm"] != "m.megolm.v1.aes-sha2" {
		t.Fatalf("encryption not copied: %v", c)
	}
	u := usersOf(cs3State(t, bob, newID, "m.room.power_levels", ""))
	if u[bob.UserID.String()] != 60 || u[alice.UserID.String()] != 100 {
		t.Fatalf("power after upgrade %v, want bob 60 (restored) and alice 100", u)
	}
	// The restore is its own power levels event, replacing the raised one.
	ev := stateEvent(t, s, bob, newID, "m.room.power_levels")
	unsigned, _ := ev["unsigned"].(map[string]any)
	prev, _ := unsigned["prev_content"].(map[string]any)
	if usersOf(prev)[bob.UserID.String()] != 100 {
		t.Fatalf("the first power levels did not raise bob: %v", prev)
	}
}

func TestUpgradeRoomV12Creators(t *testing.T) {
	s := testserver.Start(t)
	alice := s.Register(t, "alice", false)
	bob := s.Register(t, "bob", false)
	charlie := s.Register(t, "charlie", false)
	setup := func(version string, users map[string]any) id.RoomID {
		t.Helper()
		room := cs3CreateRoom(t, s, alice, map[string]any{"room_version": version, "preset": "public_chat"})
		for _, c := range []*mautrix.Client{bob, charlie} {
			cs3R(c.JoinRoomByID(cs3Ctx, room)).must(t)
		}
		pl := cs3State(t, alice, room, "m.room.power_levels", "")
		pl["users"] = users
		cs3SetState(t, alice, room, "m.room.power_levels", "", pl)
		return room
	}
	for _, tc := range []struct {
		name      string
		version   string
		users     map[string]any
		upgrader  *mautrix.Client
		creators  []string
		wantExtra []string
		wantUsers map[string]int64
	}{
		{"admin upgrades v11 to v12", "11", map[string]any{bob.UserID.String(): 100, charlie.UserID.String(): 100},
			bob, nil, nil, map[string]int64{charlie.UserID.String(): 100}},
		{"admin upgrades v9 to v12", "9", map[string]any{bob.UserID.String(): 100, charlie.UserID.String(): 50},
			bob, nil, nil, map[string]int64{charlie.UserID.String(): 50}},
		{"creator names additional creators", "11", map[string]any{alice.UserID.String(): 100, bob.UserID.String(): 100, charlie.UserID.String(): 50},
			alice, []string{bob.UserID.String()}, []string{bob.UserID.String()}, map[string]int64{charlie.UserID.String(): 50}},
		{"v12 to v12 with other creators", "12", map[string]any{bob.UserID.String(): 150, charlie.UserID.String(): 50},
			bob, []string{charlie.UserID.String(), bob.UserID.String()}, []string{charlie.UserID.String()}, map[string]int64{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			old := setup(tc.version, tc.users)
			body := map[string]any{"new_version": "12"}
			if tc.creators != nil {
				body["additional_creators"] = tc.creators
			}
			newID := upgradeRoom(t, s, tc.upgrader, old, body)
			create := stateEvent(t, s, tc.upgrader, newID, "m.room.create")
			if "!"+strings.TrimPrefix(create["event_id"].(string), "$") != newID.String() {
				t.Fatalf("v12 room ID %s is not the create event's hash (%v)", newID, create["event_id"])
			}
			cc := create["content"].(map[string]any)
			pred := cc["predecessor"].(map[string]any)
			if pred["room_id"] != old.String() || pred["event_id"] != nil || create["sender"] != tc.upgrader.UserID.String() {
				t.Fatalf("create %v", create)
			}
			extra, has := cc["additional_creators"].([]any)
			if len(tc.wantExtra) == 0 && has {
				t.Fatalf("unexpected additional_creators %v", extra)
			}
			if len(extra) != len(tc.wantExtra) || (len(extra) > 0 && extra[0] != tc.wantExtra[0]) {
				t.Fatalf("additional_creators %v, want %v", extra, tc.wantExtra)
			}
			pl := cs3State(t, tc.upgrader, newID, "m.room.power_levels", "")
			got := usersOf(pl)
			if len(got) != len(tc.wantUsers) {
				t.Fatalf("users %v, want %v", got, tc.wantUsers)
			}
			for u, l := range tc.wantUsers {
				if got[u] != l {
					t.Fatalf("users %v, want %v", got, tc.wantUsers)
				}
			}
			ev := pl["events"].(map[string]any)
			if ev["m.room.tombstone"].(float64) <= float64(cs3Num(pl, "state_default")) {
				t.Fatalf("v12 tombstone level must exceed state_default: %v", pl)
			}
			if tomb := cs3State(t, tc.upgrader, old, "m.room.tombstone", ""); tomb["replacement_room"] != newID.String() {
				t.Fatalf("tombstone %v", tomb)
			}
		})
	}

	t.Run("additional creators are ignored below v12", func(t *testing.T) {
		old := setup("11", map[string]any{alice.UserID.String(): 100})
		newID := upgradeRoom(t, s, alice, old, map[string]any{"new_version": "11", "additional_creators": []string{bob.UserID.String()}})
		if cc := cs3State(t, alice, newID, "m.room.create", ""); cc["additional_creators"] != nil || cc["room_version"] != "11" {
			t.Fatalf("create content %v", cc)
		}
	})

	t.Run("v12 creators keep the top power level in an older version", func(t *testing.T) {
		old := setup("12", map[string]any{bob.UserID.String(): 150})
		newID := upgradeRoom(t, s, bob, old, map[string]any{"new_version": "11"})
		u := usersOf(cs3State(t, bob, newID, "m.room.power_levels", ""))
		if u[alice.UserID.String()] != 150 || u[bob.UserID.String()] != 150 {
			t.Fatalf("users %v, want alice (the old creator) and bob at 150", u)
		}
	})
}

func TestUpgradeRoomErrors(t *testing.T) {
	s := testserver.Start(t)
	alice := s.Register(t, "alice", false)
	bob := s.Register(t, "bob", false)
	carol := s.Register(t, "carol", false)
	room := cs3CreateRoom(t, s, alice, map[string]any{"room_version": "11", "preset": "public_chat"})
	cs3R(bob.JoinRoomByID(cs3Ctx, room)).must(t)
	path := "/_matrix/client/v3/rooms/" + cs3Esc(room.String()) + "/upgrade"

	for _, tc := range []struct {
		name   string
		token  string
		path   string
		body   any
		status int
		code   string
	}{
		{"unsupported version", alice.AccessToken, path, map[string]any{"new_version": "1"}, 400, "M_UNSUPPORTED_ROOM_VERSION"},
		{"unknown version", alice.AccessToken, path, map[string]any{"new_version": "banana"}, 400, "M_UNSUPPORTED_ROOM_VERSION"},
		{"missing new_version", alice.AccessToken, path, map[string]any{}, 400, "M_MISSING_PARAM"},
		{"new_version not a string", alice.AccessToken, path, map[string]any{"new_version": 12}, 400, "M_BAD_JSON"},
		{"not JSON", alice.AccessToken, path, "{", 400, "M_NOT_JSON"},
		{"additional_creators not a list", alice.AccessToken, path, map[string]any{"new_version": "12", "additional_creators": "@bob:x"}, 400, "M_BAD_JSON"},
		{"additional_creators not user IDs", alice.AccessToken, path, map[string]any{"new_version": "12", "additional_creators": []string{"bob"}}, 400, "M_INVALID_PARAM"},
		{"member without power", bob.AccessToken, path, map[string]any{"new_version": "12"}, 403, "M_FORBIDDEN"},
		{"not a member", carol.AccessToken, path, map[string]any{"new_version": "12"}, 403, "M_FORBIDDEN"},
		{"unknown room", alice.AccessToken, "/_matrix/client/v3/rooms/" + cs3Esc("!nope:"+s.ServerName) + "/upgrade", map[string]any{"new_version": "12"}, 404, "M_NOT_FOUND"},
		{"not a room ID", alice.AccessToken, "/_matrix/client/v3/rooms/nope/upgrade", map[string]any{"new_version": "12"}, 400, "M_INVALID_PARAM"},
		{"no token", "", path, map[string]any{"new_version": "12"}, 401, "M_MISSING_TOKEN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cs3Do(t, s, http.MethodPost, tc.path, tc.token, tc.body).want(t, tc.status, tc.code)
		})
	}
	// Nothing happened to the room.
	if tomb := cs3State(t, alice, room, "m.room.tombstone", ""); tomb != nil {
		t.Fatalf("a refused upgrade left a tombstone: %v", tomb)
	}
}
