package clientapi_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/hearth-home/hearth/appliance/testserver"
)

// The Synapse-compatible admin API: server version, users, rooms, registration tokens.

func adminLogin(t *testing.T, s *testserver.Server, user, password string) int {
	t.Helper()
	r := cs3Do(t, s, http.MethodPost, "/_matrix/client/v3/login", "", map[string]any{"type": "m.login.password", "identifier": map[string]any{"type": "m.id.user", "user": user}, "password": password})
	return r.status
}

func TestAdminAPI(t *testing.T) {
	s := testserver.Start(t)
	root := s.Register(t, "root", true)
	alice := s.Register(t, "alice", false)
	bob := s.Register(t, "bob", false)
	tok := root.AccessToken
	uid := func(lp string) string { return "@" + lp + ":" + s.ServerName }
	usersPath := func(lp string) string { return "/_synapse/admin/v2/users/" + cs3Esc(uid(lp)) }

	// Non-admins and anonymous callers are refused.
	for _, p := range []string{"/_synapse/admin/v1/server_version", "/_synapse/admin/v2/users", "/_synapse/admin/v1/rooms", "/_synapse/admin/v1/registration_tokens"} {
		cs3Do(t, s, http.MethodGet, p, alice.AccessToken, nil).want(t, 403, "M_FORBIDDEN")
		cs3Do(t, s, http.MethodGet, p, "", nil).want(t, 401, "M_MISSING_TOKEN")
	}
	cs3Do(t, s, http.MethodPut, usersPath("mallory"), alice.AccessToken, map[string]any{"password": "x"}).want(t, 403, "M_FORBIDDEN")

	if v := cs3Do(t, s, http.MethodGet, "/_synapse/admin/v1/server_version", tok, nil).ok(t); v["server_version"] == nil {
		t.Fatalf("version %v", v)
	}

	// Create a user, then modify it.
	r := cs3Do(t, s, http.MethodPut, usersPath("carol"), tok, map[string]any{"password": "carol-pw", "displayname": "Carol", "admin": false})
	if r.status != 201 || r.body["name"] != uid("carol") || r.body["displayname"] != "Carol" || r.body["admin"] != false {
		t.Fatalf("create %d %v", r.status, r.body)
	}
	if adminLogin(t, s, "carol", "carol-pw") != 200 {
		t.Fatal("carol cannot log in")
	}
	u := cs3Do(t, s, http.MethodPut, usersPath("carol"), tok, map[string]any{"displayname": "Caroline", "admin": true}).ok(t)
	if u["displayname"] != "Caroline" || u["admin"] != true {
		t.Fatalf("modify %v", u)
	}
	if g := cs3Do(t, s, http.MethodGet, usersPath("carol"), tok, nil).ok(t); g["displayname"] != "Caroline" || g["admin"] != true || g["deactivated"] != false {
		t.Fatalf("get %v", g)
	}
	cs3Do(t, s, http.MethodGet, usersPath("nobody"), tok, nil).want(t, 404, "M_NOT_FOUND")
	cs3Do(t, s, http.MethodGet, "/_synapse/admin/v2/users/"+cs3Esc("@x:elsewhere.example"), tok, nil).want(t, 400, "M_INVALID_PARAM")
	cs3Do(t, s, http.MethodPut, usersPath("carol"), tok, map[string]any{"admin": "yes"}).want(t, 400, "M_BAD_JSON")

	// List: paging, name filter, deactivated hidden by default.
	l := cs3Do(t, s, http.MethodGet, "/_synapse/admin/v2/users?limit=2", tok, nil).ok(t)
	if cs3Num(l, "total") != 4 || len(l["users"].([]any)) != 2 || l["next_token"] != "2" {
		t.Fatalf("list %v", l)
	}
	l = cs3Do(t, s, http.MethodGet, "/_synapse/admin/v2/users?from=2&limit=2", tok, nil).ok(t)
	if names := fmt.Sprint(adminNames(l["users"])); names != fmt.Sprint([]string{uid("carol"), uid("root")}) || l["next_token"] != nil {
		t.Fatalf("page 2 %v", l)
	}
	l = cs3Do(t, s, http.MethodGet, "/_synapse/admin/v2/users?name=ali", tok, nil).ok(t)
	if fmt.Sprint(adminNames(l["users"])) != fmt.Sprint([]string{uid("alice")}) {
		t.Fatalf("name filter %v", l)
	}
	cs3Do(t, s, http.MethodGet, "/_synapse/admin/v2/users?limit=x", tok, nil).want(t, 400, "M_INVALID_PARAM")

	// Rooms: list with counts, details, members.
	room := cs3CreateRoom(t, s, alice, map[string]any{"preset": "public_chat", "name": "Garden", "visibility": "public", "room_alias_name": "garden"})
	cs3R(bob.JoinRoomByID(cs3Ctx, room)).must(t)
	cs3CreateRoom(t, s, bob, map[string]any{"name": "Attic"})
	rl := cs3Do(t, s, http.MethodGet, "/_synapse/admin/v1/rooms", tok, nil).ok(t)
	rooms := rl["rooms"].([]any)
	if cs3Num(rl, "total_rooms") != 2 || len(rooms) != 2 || rooms[0].(map[string]any)["name"] != "Attic" {
		t.Fatalf("rooms %v", rl)
	}
	g := rooms[1].(map[string]any)
	if g["room_id"] != room.String() || cs3Num(g, "joined_members") != 2 || cs3Num(g, "joined_local_members") != 2 || g["public"] != true || g["creator"] != alice.UserID.String() || g["canonical_alias"] != "#garden:"+s.ServerName {
		t.Fatalf("garden %v", g)
	}
	if rl := cs3Do(t, s, http.MethodGet, "/_synapse/admin/v1/rooms?order_by=size&limit=1", tok, nil).ok(t); rl["rooms"].([]any)[0].(map[string]any)["name"] != "Garden" || cs3Num(rl, "next_batch") != 1 {
		t.Fatalf("by size %v", rl)
	}
	if rl := cs3Do(t, s, http.MethodGet, "/_synapse/admin/v1/rooms?search_term=gard", tok, nil).ok(t); cs3Num(rl, "total_rooms") != 1 {
		t.Fatalf("search %v", rl)
	}
	roomPath := "/_synapse/admin/v1/rooms/" + cs3Esc(room.String())
	if d := cs3Do(t, s, http.MethodGet, roomPath, tok, nil).ok(t); d["name"] != "Garden" || d["join_rules"] != "public" || cs3Num(d, "state_events") < 6 {
		t.Fatalf("details %v", d)
	}
	if m := cs3Do(t, s, http.MethodGet, roomPath+"/members", tok, nil).ok(t); fmt.Sprint(m["members"]) != fmt.Sprint([]any{alice.UserID.String(), bob.UserID.String()}) || cs3Num(m, "total") != 2 {
		t.Fatalf("members %v", m)
	}
	cs3Do(t, s, http.MethodGet, "/_synapse/admin/v1/rooms/"+cs3Esc("!nope:"+s.ServerName), tok, nil).want(t, 404, "M_NOT_FOUND")

	// Delete: every local member leaves, the alias and directory entry go.
	del := cs3Do(t, s, http.MethodDelete, roomPath, tok, map[string]any{}).ok(t)
	if len(del["kicked_users"].([]any)) != 2 || fmt.Sprint(del["local_aliases"]) != "[#garden:"+s.ServerName+"]" {
		t.Fatalf("delete %v", del)
	}
	if d := cs3Do(t, s, http.MethodGet, roomPath, tok, nil).ok(t); cs3Num(d, "joined_members") != 0 || d["public"] != false {
		t.Fatalf("after delete %v", d)
	}
	if jr := cs3R(alice.JoinedRooms(cs3Ctx)).must(t); len(jr.JoinedRooms) != 0 {
		t.Fatalf("alice still in %v", jr)
	}

	// Reset password (logs out), deactivate (leaves rooms, cannot log in, hidden from the list).
	cs3Do(t, s, http.MethodPost, "/_synapse/admin/v1/reset_password/"+cs3Esc(bob.UserID.String()), tok, map[string]any{"new_password": "new-bob"}).ok(t)
	if _, err := bob.Whoami(cs3Ctx); err == nil {
		t.Fatal("bob still logged in after a password reset")
	}
	if adminLogin(t, s, "bob", "new-bob") != 200 {
		t.Fatal("bob cannot log in with the new password")
	}
	cs3Do(t, s, http.MethodPost, "/_synapse/admin/v1/reset_password/"+cs3Esc(bob.UserID.String()), tok, map[string]any{}).want(t, 400, "M_MISSING_PARAM")
	cs3Do(t, s, http.MethodPost, "/_synapse/admin/v1/deactivate/"+cs3Esc(uid("carol")), tok, map[string]any{"erase": false}).ok(t)
	if adminLogin(t, s, "carol", "carol-pw") == 200 {
		t.Fatal("deactivated carol logged in")
	}
	if g := cs3Do(t, s, http.MethodGet, usersPath("carol"), tok, nil).ok(t); g["deactivated"] != true {
		t.Fatalf("deactivated %v", g)
	}
	if l := cs3Do(t, s, http.MethodGet, "/_synapse/admin/v2/users", tok, nil).ok(t); cs3Num(l, "total") != 3 {
		t.Fatalf("list without deactivated %v", l)
	}
	if l := cs3Do(t, s, http.MethodGet, "/_synapse/admin/v2/users?deactivated=true", tok, nil).ok(t); cs3Num(l, "total") != 4 {
		t.Fatalf("list with deactivated %v", l)
	}
	// Reactivation needs a password.
	cs3Do(t, s, http.MethodPut, usersPath("carol"), tok, map[string]any{"deactivated": false}).want(t, 403, "M_FORBIDDEN")
	cs3Do(t, s, http.MethodPut, usersPath("carol"), tok, map[string]any{"deactivated": false, "password": "back"}).ok(t)
	if adminLogin(t, s, "carol", "back") != 200 {
		t.Fatal("reactivated carol cannot log in")
	}
	cs3Do(t, s, http.MethodPost, "/_synapse/admin/v1/deactivate/"+cs3Esc(uid("ghost")), tok, map[string]any{}).want(t, 404, "M_NOT_FOUND")
}

func adminNames(users any) []string {
	var out []string
	for _, u := range users.([]any) {
		out = append(out, u.(map[string]any)["name"].(string))
	}
	return out
}

func TestAdminRegistrationTokens(t *testing.T) {
	s := testserver.Start(t)
	root := s.Register(t, "root", true)
	tok := root.AccessToken
	base := "/_synapse/admin/v1/registration_tokens"

	made := cs3Do(t, s, http.MethodPost, base+"/new", tok, map[string]any{"token": "abc", "uses_allowed": 1}).ok(t)
	if made["token"] != "abc" || cs3Num(made, "uses_allowed") != 1 || cs3Num(made, "completed") != 0 || made["expiry_time"] != nil {
		t.Fatalf("new %v", made)
	}
	gen := cs3Do(t, s, http.MethodPost, base+"/new", tok, map[string]any{"length": 20}).ok(t)
	if len(gen["token"].(string)) != 20 || gen["uses_allowed"] != nil {
		t.Fatalf("generated %v", gen)
	}
	cs3Do(t, s, http.MethodPost, base+"/new", tok, map[string]any{"token": "abc"}).want(t, 400, "M_INVALID_PARAM")
	cs3Do(t, s, http.MethodPost, base+"/new", tok, map[string]any{"uses_allowed": -1}).want(t, 400, "M_INVALID_PARAM")
	cs3Do(t, s, http.MethodPost, base+"/new", tok, map[string]any{"expiry_time": 1}).want(t, 400, "M_INVALID_PARAM")

	if l := cs3Do(t, s, http.MethodGet, base, tok, nil).ok(t); len(l["registration_tokens"].([]any)) != 2 {
		t.Fatalf("list %v", l)
	}
	exp := time.Now().Add(time.Hour).UnixMilli()
	up := cs3Do(t, s, http.MethodPut, base+"/abc", tok, map[string]any{"uses_allowed": nil, "expiry_time": exp}).ok(t)
	if up["uses_allowed"] != nil || cs3Num(up, "expiry_time") != exp {
		t.Fatalf("update %v", up)
	}
	if g := cs3Do(t, s, http.MethodGet, base+"/abc", tok, nil).ok(t); cs3Num(g, "expiry_time") != exp {
		t.Fatalf("get %v", g)
	}
	cs3Do(t, s, http.MethodPut, base+"/abc", tok, map[string]any{"uses_allowed": 0}).ok(t)
	if l := cs3Do(t, s, http.MethodGet, base+"?valid=false", tok, nil).ok(t); len(l["registration_tokens"].([]any)) != 1 {
		t.Fatalf("invalid list %v", l)
	}
	cs3Do(t, s, http.MethodDelete, base+"/abc", tok, nil).ok(t)
	cs3Do(t, s, http.MethodGet, base+"/abc", tok, nil).want(t, 404, "M_NOT_FOUND")
	cs3Do(t, s, http.MethodDelete, base+"/abc", tok, nil).want(t, 404, "M_NOT_FOUND")
	cs3Do(t, s, http.MethodPut, base+"/nope", tok, map[string]any{}).want(t, 404, "M_NOT_FOUND")
}
