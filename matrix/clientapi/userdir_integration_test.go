package clientapi_test

import (
	"net/http"
	"testing"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/appliance/testserver"
)

// The user directory: POST /user_directory/search.

func dirSearch(t *testing.T, cli *mautrix.Client, term string, limit int) *mautrix.RespSearchUserDirectory {
	t.Helper()
	return cs3R(cli.SearchUserDirectory(cs3Ctx, term, limit)).must(t)
}

func dirIDs(r *mautrix.RespSearchUserDirectory) []string {
	var out []string
	for _, e := range r.Results {
		out = append(out, e.UserID.String())
	}
	return out
}

func TestUserDirectorySearch(t *testing.T) {
	s := testserver.Start(t)
	alice := s.Register(t, "alice", false)
	bob := s.Register(t, "bob", false)
	eve := s.Register(t, "eve", false)
	dave := s.Register(t, "dave", false)
	frank := s.Register(t, "frank", false)
	if err := alice.SetDisplayName(cs3Ctx, "Alice Cooper"); err != nil {
		t.Fatal(err)
	}
	if err := alice.SetAvatarURL(cs3Ctx, mustParseMXC(t, "mxc://example.org/alice")); err != nil {
		t.Fatal(err)
	}
	cs3CreateRoom(t, s, alice, map[string]any{"preset": "public_chat", "visibility": "public"})
	private := cs3CreateRoom(t, s, bob, map[string]any{"preset": "private_chat", "invite": []string{alice.UserID.String()}})
	cs3R(alice.JoinRoomByID(cs3Ctx, private)).must(t)
	cs3SetState(t, alice, private, "m.room.member", alice.UserID.String(), map[string]any{"membership": "join", "displayname": "Freddy"})
	secret := cs3CreateRoom(t, s, dave, map[string]any{"preset": "private_chat", "invite": []string{frank.UserID.String()}})
	cs3R(frank.JoinRoomByID(cs3Ctx, secret)).must(t)

	// Anyone finds a user of a public room, by display name or user ID, in any case.
	for _, term := range []string{"Alice Cooper", "cooper", "@alice", "ALICE", "alice:" + s.ServerName} {
		r := dirSearch(t, eve, term, 0)
		if len(r.Results) != 1 || r.Results[0].UserID != alice.UserID || r.Limited {
			t.Fatalf("eve searching %q: %v", term, dirIDs(r))
		}
		if r.Results[0].AvatarURL.String() != "mxc://example.org/alice" {
			t.Fatalf("avatar %q", r.Results[0].AvatarURL)
		}
	}
	// The spec names the field display_name (mautrix reads "displayname", so look at the JSON).
	raw := cs3Do(t, s, http.MethodPost, "/_matrix/client/v3/user_directory/search", eve.AccessToken, map[string]any{"search_term": "cooper"}).ok(t)
	if res := raw["results"].([]any); len(res) != 1 || res[0].(map[string]any)["display_name"] != "Alice Cooper" || raw["limited"] != false {
		t.Fatalf("raw results %v", raw)
	}
	// Room-specific names are never searched, not even by those who share the room.
	if r := dirSearch(t, eve, "Freddy", 0); len(r.Results) != 0 {
		t.Fatalf("eve found %v by a room-specific name", dirIDs(r))
	}
	if r := dirSearch(t, bob, "Freddy", 0); len(r.Results) != 0 {
		t.Fatalf("bob found %v by a room-specific name", dirIDs(r))
	}
	// Users who share only a private room are found by each other alone.
	if r := dirSearch(t, eve, "frank", 0); len(r.Results) != 0 {
		t.Fatalf("eve found %v in a private room", dirIDs(r))
	}
	if r := dirSearch(t, dave, "frank", 0); len(r.Results) != 1 || r.Results[0].UserID != frank.UserID {
		t.Fatalf("dave searching frank: %v", dirIDs(r))
	}
	if r := dirSearch(t, bob, "ali", 0); len(r.Results) != 1 {
		t.Fatalf("bob searching ali: %v", dirIDs(r))
	}
	// The searcher is not in their own results; nothing matches nothing.
	if r := dirSearch(t, alice, "alice", 0); len(r.Results) != 0 {
		t.Fatalf("alice found %v", dirIDs(r))
	}
	if r := dirSearch(t, eve, "zzz-nobody", 0); len(r.Results) != 0 || r.Results == nil {
		t.Fatalf("no match: %+v", r)
	}

	// limit and limited; better matches first.
	room := cs3CreateRoom(t, s, bob, map[string]any{"preset": "public_chat"})
	for _, lp := range []string{"zed1", "zed2", "zed3"} {
		u := s.Register(t, lp, false)
		cs3R(u.JoinRoomByID(cs3Ctx, room)).must(t)
	}
	if r := dirSearch(t, eve, "zed", 2); len(r.Results) != 2 || !r.Limited {
		t.Fatalf("limit 2: %+v", r)
	}
	if r := dirSearch(t, eve, "zed", 3); len(r.Results) != 3 || r.Limited {
		t.Fatalf("limit 3: %+v", r)
	}
	if r := dirSearch(t, eve, "zed2", 10); len(r.Results) != 1 || r.Results[0].UserID.Localpart() != "zed2" {
		t.Fatalf("exact localpart: %v", dirIDs(r))
	}

	// Deactivated users disappear.
	deact := s.Register(t, "gone", false)
	cs3R(deact.JoinRoomByID(cs3Ctx, room)).must(t)
	cs3Do(t, s, http.MethodPost, "/_matrix/client/v3/account/deactivate", deact.AccessToken, map[string]any{"auth": passwordAuth(deact, "password-gone", "")}).ok(t)
	if r := dirSearch(t, eve, "gone", 0); len(r.Results) != 0 {
		t.Fatalf("deactivated user found: %v", dirIDs(r))
	}

	const path = "/_matrix/client/v3/user_directory/search"
	for _, tc := range []struct {
		name   string
		token  string
		body   any
		status int
		code   string
	}{
		{"missing search_term", eve.AccessToken, map[string]any{}, 400, "M_MISSING_PARAM"},
		{"search_term not a string", eve.AccessToken, map[string]any{"search_term": 5}, 400, "M_BAD_JSON"},
		{"negative limit", eve.AccessToken, map[string]any{"search_term": "a", "limit": -1}, 400, "M_INVALID_PARAM"},
		{"limit not a number", eve.AccessToken, map[string]any{"search_term": "a", "limit": "ten"}, 400, "M_BAD_JSON"},
		{"not JSON", eve.AccessToken, "{", 400, "M_NOT_JSON"},
		{"no token", "", map[string]any{"search_term": "a"}, 401, "M_MISSING_TOKEN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cs3Do(t, s, http.MethodPost, path, tc.token, tc.body).want(t, tc.status, tc.code)
		})
	}
}

func mustParseMXC(t *testing.T, s string) id.ContentURI {
	t.Helper()
	u, err := id.ParseContentURI(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
