package clientapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/appliance/testserver"
)

// Integration tests of the room endpoints (createRoom, membership, state, send, redact,
// messages, context, members, aliases, directory) against a running server, through the
// mautrix-go client where it can say what we mean and raw HTTP for the error paths.

type roomsServer interface {
	Register(t testing.TB, localpart string, admin bool) *mautrix.Client
	Raw(t testing.TB, method, path, token string, body string) (int, map[string]any)
}

type roomsEnv struct {
	roomsServer
	URL        string
	ServerName string
}

func startRoomsServer(t *testing.T) *roomsEnv {
	t.Helper()
	s := testserver.Start(t)
	return &roomsEnv{roomsServer: s, URL: s.URL, ServerName: s.ServerName}
}

var rmCtx = context.Background()

// rawBytes is Raw for answers that are not objects (GET /state is an array).
func (e *roomsEnv) rawBytes(t *testing.T, method, path, token, body string) (int, []byte) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, e.URL+path, r)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func rmWantErr(t *testing.T, err error, status int, code string) {
	t.Helper()
	if err == nil {
		t.Fatalf("want %d %s, got success", status, code)
	}
	var he mautrix.HTTPError
	if !errors.As(err, &he) || he.Response == nil {
		t.Fatalf("want %d %s, got %v", status, code, err)
	}
	got := ""
	if he.RespError != nil {
		got = he.RespError.ErrCode
	}
	if he.Response.StatusCode != status || got != code {
		t.Fatalf("want %d %s, got %d %s (%s)", status, code, he.Response.StatusCode, got, he.ResponseBody)
	}
}

func rmWantRaw(t *testing.T, status int, body map[string]any, wantStatus int, code string) {
	t.Helper()
	if status != wantStatus || body["errcode"] != code {
		t.Fatalf("want %d %s, got %d %v", wantStatus, code, status, body)
	}
}

func rmMust[T any](t *testing.T) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return v
	}
}

func rmEsc(s string) string { return url.PathEscape(s) }

func rmState(t *testing.T, cli *mautrix.Client, roomID id.RoomID, typ, sk string) map[string]any {
	t.Helper()
	var out map[string]any
	if err := cli.StateEvent(rmCtx, roomID, event.Type{Type: typ, Class: event.StateEventType}, sk, &out); err != nil {
		t.Fatalf("state %s/%s: %v", typ, sk, err)
	}
	return out
}

func rmMembership(t *testing.T, cli *mautrix.Client, roomID id.RoomID, user id.UserID) string {
	t.Helper()
	c := rmState(t, cli, roomID, "m.room.member", user.String())
	s, _ := c["membership"].(string)
	return s
}

func TestCreateRoomFields(t *testing.T) {
	e := startRoomsServer(t)
	alice := e.Register(t, "alice", false)
	bob := e.Register(t, "bob", false)

	body := map[string]any{
		"visibility":       "public",
		"room_alias_name":  "hall",
		"name":             "The Hall",
		"topic":            "All about halls",
		"invite":           []string{bob.UserID.String()},
		"preset":           "public_chat",
		"room_version":     "11",
		"creation_content": map[string]any{"m.federate": false},
		"initial_state": []any{
			map[string]any{"type": "m.room.history_visibility", "content": map[string]any{"history_visibility": "world_readable"}},
			map[string]any{"type": "org.example.thing", "state_key": "k", "content": map[string]any{"n": 1}},
			map[string]any{"type": "m.room.name", "content": map[string]any{"name": "overridden by name"}},
		},
		"power_level_content_override": map[string]any{"events_default": 10, "invite": 50},
		"is_direct":                    true,
	}
	b, _ := json.Marshal(body)
	st, resp := e.Raw(t, http.MethodPost, "/_matrix/client/v3/createRoom", alice.AccessToken, string(b))
	if st != 200 {
		t.Fatalf("createRoom: %d %v", st, resp)
	}
	roomID := id.RoomID(resp["room_id"].(string))
	if !strings.HasPrefix(roomID.String(), "!") {
		t.Fatalf("room_id %q", roomID)
	}

	create := rmState(t, alice, roomID, "m.room.create", "")
	if create["room_version"] != "11" || create["m.federate"] != false {
		t.Fatalf("create content %v", create)
	}
	if n := rmState(t, alice, roomID, "m.room.name", "")["name"]; n != "The Hall" {
		t.Fatalf("name %v", n)
	}
	topic := rmState(t, alice, roomID, "m.room.topic", "")
	if topic["topic"] != "All about halls" {
		t.Fatalf("topic %v", topic)
	}
	mt, _ := topic["m.topic"].(map[string]any)
	texts, _ := mt["m.text"].([]any)
	if len(texts) != 1 || texts[0].(map[string]any)["mimetype"] != "text/plain" || texts[0].(map[string]any)["body"] != "All about halls" {
		t.Fatalf("m.topic %v", topic)
	}
	alias := "#hall:" + e.ServerName
	if a := rmState(t, alice, roomID, "m.room.canonical_alias", "")["alias"]; a != alias {
		t.Fatalf("canonical alias %v", a)
	}
	if jr := rmState(t, alice, roomID, "m.room.join_rules", "")["join_rule"]; jr != "public" {
		t.Fatalf("join rule %v", jr)
	}
	if hv := rmState(t, alice, roomID, "m.room.history_visibility", "")["history_visibility"]; hv != "world_readable" {
		t.Fatalf("initial_state should override the preset: %v", hv)
	}
	// public_chat means guest access forbidden, which a room without the event already means.
	var ga map[string]any
	if err := alice.StateEvent(rmCtx, roomID, event.Type{Type: "m.room.guest_access", Class: event.StateEventType}, "", &ga); err == nil {
		t.Fatalf("public_chat room has a guest_access event: %v", ga)
	}
	if n := rmState(t, alice, roomID, "org.example.thing", "k")["n"]; n != float64(1) {
		t.Fatalf("custom state %v", n)
	}
	pl := rmState(t, alice, roomID, "m.room.power_levels", "")
	if pl["events_default"] != float64(10) || pl["invite"] != float64(50) {
		t.Fatalf("power level override not applied: %v", pl)
	}
	if users, _ := pl["users"].(map[string]any); users[alice.UserID.String()] != float64(100) {
		t.Fatalf("creator power in v11: %v", pl["users"])
	}
	inv := rmState(t, alice, roomID, "m.room.member", bob.UserID.String())
	if inv["membership"] != "invite" || inv["is_direct"] != true {
		t.Fatalf("invite %v", inv)
	}
	res := rmMust[*mautrix.RespAliasResolve](t)(alice.ResolveAlias(rmCtx, id.RoomAlias(alias)))
	if res.RoomID != roomID {
		t.Fatalf("alias resolves to %s", res.RoomID)
	}
	if vis := rmMust[map[string]any](t)(rmVisibility(e, t, roomID)); vis["visibility"] != "public" {
		t.Fatalf("visibility %v", vis)
	}

	// The alias is taken now.
	_, err := alice.CreateRoom(rmCtx, &mautrix.ReqCreateRoom{RoomAliasName: "hall"})
	rmWantErr(t, err, 400, "M_ROOM_IN_USE")

	// Defaults: private preset, invite-only.
	r2 := rmMust[*mautrix.RespCreateRoom](t)(alice.CreateRoom(rmCtx, &mautrix.ReqCreateRoom{}))
	if jr := rmState(t, alice, r2.RoomID, "m.room.join_rules", "")["join_rule"]; jr != "invite" {
		t.Fatalf("default join rule %v", jr)
	}
	if vis := rmMust[map[string]any](t)(rmVisibility(e, t, r2.RoomID)); vis["visibility"] != "private" {
		t.Fatalf("default visibility %v", vis)
	}
}

func rmVisibility(e *roomsEnv, t *testing.T, roomID id.RoomID) (map[string]any, error) {
	st, body := e.Raw(t, http.MethodGet, "/_matrix/client/v3/directory/list/room/"+rmEsc(roomID.String()), "", "")
	if st != 200 {
		return nil, errors.New("visibility: " + http.StatusText(st))
	}
	return body, nil
}

func TestCreateRoomVersionsAndErrors(t *testing.T) {
	e := startRoomsServer(t)
	alice := e.Register(t, "alice", false)
	bob := e.Register(t, "bob", false)

	for _, v := range []id.RoomVersion{"10", "11", "12"} {
		r, err := alice.CreateRoom(rmCtx, &mautrix.ReqCreateRoom{RoomVersion: v, Name: "v" + string(v)})
		if err != nil {
			t.Fatalf("version %s: %v", v, err)
		}
		create := rmState(t, alice, r.RoomID, "m.room.create", "")
		if create["room_version"] != string(v) {
			t.Fatalf("version %s: create %v", v, create)
		}
		_, hasCreator := create["creator"]
		if hasCreator != (v == "10") {
			t.Fatalf("version %s: creator field present=%v", v, hasCreator)
		}
		pl := rmState(t, alice, r.RoomID, "m.room.power_levels", "")
		_, listed := pl["users"].(map[string]any)[alice.UserID.String()]
		if listed != (v != "12") {
			t.Fatalf("version %s: creator listed in power levels=%v", v, listed)
		}
	}
	_, err := alice.CreateRoom(rmCtx, &mautrix.ReqCreateRoom{RoomVersion: "9999"})
	rmWantErr(t, err, 400, "M_UNSUPPORTED_ROOM_VERSION")

	// trusted_private_chat: invitees get the creator's power (v11) or become creators (v12).
	r := rmMust[*mautrix.RespCreateRoom](t)(alice.CreateRoom(rmCtx, &mautrix.ReqCreateRoom{Preset: "trusted_private_chat", RoomVersion: "11", Invite: []id.UserID{bob.UserID}}))
	if lvl := rmState(t, alice, r.RoomID, "m.room.power_levels", "")["users"].(map[string]any)[bob.UserID.String()]; lvl != float64(100) {
		t.Fatalf("trusted_private_chat invitee level %v", lvl)
	}
	r = rmMust[*mautrix.RespCreateRoom](t)(alice.CreateRoom(rmCtx, &mautrix.ReqCreateRoom{Preset: "trusted_private_chat", RoomVersion: "12", Invite: []id.UserID{bob.UserID}}))
	if ac, _ := rmState(t, alice, r.RoomID, "m.room.create", "")["additional_creators"].([]any); len(ac) != 1 || ac[0] != bob.UserID.String() {
		t.Fatalf("trusted_private_chat v12 additional_creators %v", ac)
	}

	path := "/_matrix/client/v3/createRoom"
	tok := alice.AccessToken
	for _, c := range []struct {
		body   string
		status int
		code   string
	}{
		{`{"name": 5}`, 400, "M_BAD_JSON"},
		{`{"topic": ["x"]}`, 400, "M_BAD_JSON"},
		{`{"invite": "@bob:x"}`, 400, "M_BAD_JSON"},
		{`{"invite": ["bob"]}`, 400, "M_BAD_JSON"},
		{`{"is_direct": "yes"}`, 400, "M_BAD_JSON"},
		{`{"creation_content": []}`, 400, "M_BAD_JSON"},
		{`{"power_level_content_override": 1}`, 400, "M_BAD_JSON"},
		{`{"initial_state": [{"content": {}}]}`, 400, "M_BAD_JSON"},
		{`{"initial_state": [{"type": "m.x", "content": 3}]}`, 400, "M_BAD_JSON"},
		{`{"initial_state": {}}`, 400, "M_BAD_JSON"},
		{`{"visibility": "secret"}`, 400, "M_BAD_JSON"},
		{`{"preset": "party"}`, 400, "M_BAD_JSON"},
		{`{"room_version": 11}`, 400, "M_BAD_JSON"},
		{`[]`, 400, "M_BAD_JSON"},
		{`{not json`, 400, "M_NOT_JSON"},
		{`{"invite_3pid": [{"id_server": "is.example", "id_access_token": "t", "medium": "email", "address": "a@b.c"}]}`, 403, "M_FORBIDDEN"},
		{`{"invite_3pid": [{"medium": 1}]}`, 400, "M_BAD_JSON"},
		// The creator's own power taken away: the name event then fails the auth rules.
		{`{"room_version": "11", "name": "n", "power_level_content_override": {"users": {}}}`, 400, "M_INVALID_ROOM_STATE"},
	} {
		st, body := e.Raw(t, http.MethodPost, path, tok, c.body)
		if st != c.status || body["errcode"] != c.code {
			t.Errorf("%s: want %d %s, got %d %v", c.body, c.status, c.code, st, body)
		}
	}
	st, body := e.Raw(t, http.MethodPost, path, "", `{}`)
	rmWantRaw(t, st, body, 401, "M_MISSING_TOKEN")
}

func TestMembershipFlow(t *testing.T) {
	e := startRoomsServer(t)
	alice := e.Register(t, "alice", false)
	bob := e.Register(t, "bob", false)
	carol := e.Register(t, "carol", false)

	priv := rmMust[*mautrix.RespCreateRoom](t)(alice.CreateRoom(rmCtx, &mautrix.ReqCreateRoom{Name: "private"})).RoomID
	_, err := bob.JoinRoomByID(rmCtx, priv)
	rmWantErr(t, err, 403, "M_FORBIDDEN")

	rmMust[*mautrix.RespInviteUser](t)(alice.InviteUser(rmCtx, priv, &mautrix.ReqInviteUser{UserID: bob.UserID, Reason: "welcome"}))
	if m := rmMembership(t, alice, priv, bob.UserID); m != "invite" {
		t.Fatalf("bob is %q", m)
	}
	// Inviting again answers 200 ("or was already invited").
	rmMust[*mautrix.RespInviteUser](t)(alice.InviteUser(rmCtx, priv, &mautrix.ReqInviteUser{UserID: bob.UserID}))
	j := rmMust[*mautrix.RespJoinRoom](t)(bob.JoinRoomByID(rmCtx, priv))
	if j.RoomID != priv {
		t.Fatalf("join answered %s", j.RoomID)
	}
	jr := rmMust[*mautrix.RespJoinedRooms](t)(bob.JoinedRooms(rmCtx))
	if len(jr.JoinedRooms) != 1 || jr.JoinedRooms[0] != priv {
		t.Fatalf("joined_rooms %v", jr.JoinedRooms)
	}
	// Inviting a member is refused by the auth rules.
	_, err = alice.InviteUser(rmCtx, priv, &mautrix.ReqInviteUser{UserID: bob.UserID})
	rmWantErr(t, err, 403, "M_FORBIDDEN")

	// Invite body errors.
	base := "/_matrix/client/v3/rooms/" + rmEsc(priv.String())
	st, body := e.Raw(t, http.MethodPost, base+"/invite", alice.AccessToken, `{}`)
	rmWantRaw(t, st, body, 400, "M_BAD_JSON")
	st, body = e.Raw(t, http.MethodPost, base+"/invite", alice.AccessToken, `{"user_id": 7}`)
	rmWantRaw(t, st, body, 400, "M_BAD_JSON")
	st, body = e.Raw(t, http.MethodPost, base+"/invite", alice.AccessToken, `{"user_id": "nobody"}`)
	rmWantRaw(t, st, body, 400, "M_INVALID_PARAM")
	st, body = e.Raw(t, http.MethodPost, base+"/invite", alice.AccessToken, `{"id_server": "is.example", "id_access_token": "x", "medium": "email", "address": "c@example.org"}`)
	rmWantRaw(t, st, body, 403, "M_FORBIDDEN")

	// Public room joined through its alias; unknown aliases are 404.
	pub := rmMust[*mautrix.RespCreateRoom](t)(alice.CreateRoom(rmCtx, &mautrix.ReqCreateRoom{Preset: "public_chat", RoomAliasName: "lobby"})).RoomID
	j = rmMust[*mautrix.RespJoinRoom](t)(carol.JoinRoom(rmCtx, "#lobby:"+e.ServerName, nil))
	if j.RoomID != pub {
		t.Fatalf("join by alias answered %s", j.RoomID)
	}
	_, err = carol.JoinRoom(rmCtx, "#nowhere:"+e.ServerName, nil)
	rmWantErr(t, err, 404, "M_NOT_FOUND")
	j = rmMust[*mautrix.RespJoinRoom](t)(bob.JoinRoom(rmCtx, pub.String(), &mautrix.ReqJoinRoom{Reason: "hi", Via: []string{e.ServerName}}))
	if j.RoomID != pub {
		t.Fatalf("join by id answered %s", j.RoomID)
	}
	if c := rmState(t, bob, pub, "m.room.member", bob.UserID.String()); c["reason"] != "hi" {
		t.Fatalf("join reason %v", c)
	}
	st, body = e.Raw(t, http.MethodPost, "/_matrix/client/v3/join/lobby", carol.AccessToken, `{}`)
	rmWantRaw(t, st, body, 400, "M_INVALID_PARAM")

	// Kick: needs power, and a target in the room.
	_, err = carol.KickUser(rmCtx, pub, &mautrix.ReqKickUser{UserID: bob.UserID})
	rmWantErr(t, err, 403, "M_FORBIDDEN")
	rmMust[*mautrix.RespKickUser](t)(alice.KickUser(rmCtx, pub, &mautrix.ReqKickUser{UserID: bob.UserID, Reason: "enough"}))
	kicked := rmState(t, alice, pub, "m.room.member", bob.UserID.String())
	if kicked["membership"] != "leave" || kicked["reason"] != "enough" {
		t.Fatalf("after kick %v", kicked)
	}
	_, err = alice.KickUser(rmCtx, pub, &mautrix.ReqKickUser{UserID: bob.UserID})
	rmWantErr(t, err, 403, "M_FORBIDDEN")
	_, err = bob.SendText(rmCtx, pub, "am I here?")
	rmWantErr(t, err, 403, "M_FORBIDDEN")

	// Ban and unban.
	_, err = carol.BanUser(rmCtx, pub, &mautrix.ReqBanUser{UserID: bob.UserID})
	rmWantErr(t, err, 403, "M_FORBIDDEN")
	rmMust[*mautrix.RespBanUser](t)(alice.BanUser(rmCtx, pub, &mautrix.ReqBanUser{UserID: bob.UserID, Reason: "spam"}))
	if m := rmMembership(t, alice, pub, bob.UserID); m != "ban" {
		t.Fatalf("bob is %q after ban", m)
	}
	_, err = bob.JoinRoomByID(rmCtx, pub)
	rmWantErr(t, err, 403, "M_FORBIDDEN")
	_, err = alice.UnbanUser(rmCtx, pub, &mautrix.ReqUnbanUser{UserID: carol.UserID})
	rmWantErr(t, err, 403, "M_BAD_STATE")
	_, err = carol.UnbanUser(rmCtx, pub, &mautrix.ReqUnbanUser{UserID: bob.UserID})
	rmWantErr(t, err, 403, "M_FORBIDDEN")
	rmMust[*mautrix.RespUnbanUser](t)(alice.UnbanUser(rmCtx, pub, &mautrix.ReqUnbanUser{UserID: bob.UserID}))
	if m := rmMembership(t, alice, pub, bob.UserID); m != "leave" {
		t.Fatalf("bob is %q after unban", m)
	}
	rmMust[*mautrix.RespJoinRoom](t)(bob.JoinRoomByID(rmCtx, pub))
	st, body = e.Raw(t, http.MethodPost, "/_matrix/client/v3/rooms/"+rmEsc(pub.String())+"/ban", alice.AccessToken, `{"reason": "x"}`)
	rmWantRaw(t, st, body, 400, "M_BAD_JSON")

	// Leave, then forget; forgetting while joined is refused.
	_, err = carol.ForgetRoom(rmCtx, pub)
	rmWantErr(t, err, 400, "M_UNKNOWN")
	rmMust[*mautrix.RespLeaveRoom](t)(carol.LeaveRoom(rmCtx, pub, &mautrix.ReqLeave{Reason: "bye"}))
	if c := rmState(t, alice, pub, "m.room.member", carol.UserID.String()); c["membership"] != "leave" || c["reason"] != "bye" {
		t.Fatalf("after leave %v", c)
	}
	rmMust[*mautrix.RespLeaveRoom](t)(carol.LeaveRoom(rmCtx, pub)) // leaving twice is fine
	rmMust[*mautrix.RespForgetRoom](t)(carol.ForgetRoom(rmCtx, pub))
	_, err = carol.SendText(rmCtx, pub, "hello?")
	rmWantErr(t, err, 403, "M_FORBIDDEN")
	jr = rmMust[*mautrix.RespJoinedRooms](t)(carol.JoinedRooms(rmCtx))
	if len(jr.JoinedRooms) != 0 {
		t.Fatalf("carol still in %v", jr.JoinedRooms)
	}

	// Unknown rooms.
	_, err = bob.JoinRoomByID(rmCtx, "!nope:"+id.RoomID(e.ServerName))
	rmWantErr(t, err, 404, "M_NOT_FOUND")
}

func TestStateEndpoints(t *testing.T) {
	e := startRoomsServer(t)
	alice := e.Register(t, "alice", false)
	bob := e.Register(t, "bob", false)
	carol := e.Register(t, "carol", false)
	roomID := rmMust[*mautrix.RespCreateRoom](t)(alice.CreateRoom(rmCtx, &mautrix.ReqCreateRoom{Preset: "public_chat", Name: "state"})).RoomID
	base := "/_matrix/client/v3/rooms/" + rmEsc(roomID.String())

	// PUT with a state key, with the empty key in both spellings, and with an escaped slash.
	r := rmMust[*mautrix.RespSendEvent](t)(alice.SendStateEvent(rmCtx, roomID, event.Type{Type: "org.example.widget", Class: event.StateEventType}, "w1", map[string]any{"colour": "red"}))
	if !strings.HasPrefix(r.EventID.String(), "$") {
		t.Fatalf("event_id %q", r.EventID)
	}
	st, body := e.Raw(t, http.MethodPut, base+"/state/org.example.empty", alice.AccessToken, `{"v": 1}`)
	if st != 200 || body["event_id"] == nil {
		t.Fatalf("PUT empty key without slash: %d %v", st, body)
	}
	st, body = e.Raw(t, http.MethodPut, base+"/state/org.example.empty/", alice.AccessToken, `{"v": 2}`)
	if st != 200 {
		t.Fatalf("PUT empty key with slash: %d %v", st, body)
	}
	st, body = e.Raw(t, http.MethodGet, base+"/state/org.example.empty", alice.AccessToken, "")
	if st != 200 || body["v"] != float64(2) {
		t.Fatalf("GET empty key: %d %v", st, body)
	}
	st, body = e.Raw(t, http.MethodGet, base+"/state/org.example.empty/", alice.AccessToken, "")
	if st != 200 || body["v"] != float64(2) {
		t.Fatalf("GET empty key with slash: %d %v", st, body)
	}
	st, _ = e.Raw(t, http.MethodPut, base+"/state/org.example.path/a%2Fb", alice.AccessToken, `{"slash": true}`)
	if st != 200 {
		t.Fatalf("PUT escaped state key: %d", st)
	}
	if c := rmState(t, alice, roomID, "org.example.path", "a/b"); c["slash"] != true {
		t.Fatalf("escaped state key %v", c)
	}

	// GET content and the whole event.
	if c := rmState(t, alice, roomID, "org.example.widget", "w1"); c["colour"] != "red" {
		t.Fatalf("content %v", c)
	}
	full := rmMust[*event.Event](t)(alice.FullStateEvent(rmCtx, roomID, event.Type{Type: "org.example.widget", Class: event.StateEventType}, "w1"))
	if full.ID != r.EventID || full.Sender != alice.UserID || full.StateKey == nil || *full.StateKey != "w1" || full.RoomID != roomID {
		t.Fatalf("format=event %+v", full)
	}
	st, body = e.Raw(t, http.MethodGet, base+"/state/org.example.widget/w1?format=html", alice.AccessToken, "")
	rmWantRaw(t, st, body, 400, "M_INVALID_PARAM")
	st, body = e.Raw(t, http.MethodGet, base+"/state/org.example.widget/w2", alice.AccessToken, "")
	rmWantRaw(t, st, body, 404, "M_NOT_FOUND")

	// Replacing state shows the old content in unsigned.prev_content.
	r2 := rmMust[*mautrix.RespSendEvent](t)(alice.SendStateEvent(rmCtx, roomID, event.Type{Type: "org.example.widget", Class: event.StateEventType}, "w1", map[string]any{"colour": "blue"}))
	st, raw := e.rawBytes(t, http.MethodGet, base+"/state/org.example.widget/w1?format=event", alice.AccessToken, "")
	var ev struct {
		EventID  string `json:"event_id"`
		Unsigned struct {
			PrevContent   map[string]any `json:"prev_content"`
			ReplacesState string         `json:"replaces_state"`
		} `json:"unsigned"`
	}
	_ = json.Unmarshal(raw, &ev)
	if st != 200 || ev.EventID != r2.EventID.String() || ev.Unsigned.PrevContent["colour"] != "red" || ev.Unsigned.ReplacesState != r.EventID.String() {
		t.Fatalf("replaced state: %d %s", st, raw)
	}

	// Bodies rmMust be objects; non-members may not write or read.
	for _, b := range []string{`[]`, `"x"`, `3`} {
		st, body = e.Raw(t, http.MethodPut, base+"/state/org.example.widget/w1", alice.AccessToken, b)
		rmWantRaw(t, st, body, 400, "M_BAD_JSON")
	}
	st, body = e.Raw(t, http.MethodPut, base+"/state/org.example.widget/w1", alice.AccessToken, `{bad`)
	rmWantRaw(t, st, body, 400, "M_NOT_JSON")
	_, err := bob.SendStateEvent(rmCtx, roomID, event.Type{Type: "org.example.widget", Class: event.StateEventType}, "w1", map[string]any{})
	rmWantErr(t, err, 403, "M_FORBIDDEN")
	err = bob.StateEvent(rmCtx, roomID, event.StateRoomName, "", &map[string]any{})
	rmWantErr(t, err, 403, "M_FORBIDDEN")
	_, err = bob.State(rmCtx, roomID)
	rmWantErr(t, err, 403, "M_FORBIDDEN")
	_, err = bob.Members(rmCtx, roomID)
	rmWantErr(t, err, 403, "M_FORBIDDEN")
	_, err = bob.JoinedMembers(rmCtx, roomID)
	rmWantErr(t, err, 403, "M_FORBIDDEN")
	_, err = bob.State(rmCtx, "!unknown:"+id.RoomID(e.ServerName))
	rmWantErr(t, err, 403, "M_FORBIDDEN")

	// A joined member who is not allowed to send the state event meets the auth rules.
	rmMust[*mautrix.RespJoinRoom](t)(bob.JoinRoomByID(rmCtx, roomID))
	_, err = bob.SendStateEvent(rmCtx, roomID, event.StateRoomName, "", map[string]any{"name": "mine"})
	rmWantErr(t, err, 403, "M_FORBIDDEN")

	// Canonical alias checks.
	st, body = e.Raw(t, http.MethodPut, base+"/state/m.room.canonical_alias", alice.AccessToken, `{"alias": "not-an-alias"}`)
	rmWantRaw(t, st, body, 400, "M_INVALID_PARAM")
	st, body = e.Raw(t, http.MethodPut, base+"/state/m.room.canonical_alias", alice.AccessToken, `{"alias": "#nothere:`+e.ServerName+`"}`)
	rmWantRaw(t, st, body, 400, "M_BAD_ALIAS")
	rmMust[*mautrix.RespAliasCreate](t)(alice.CreateAlias(rmCtx, id.RoomAlias("#state:"+e.ServerName), roomID))
	st, body = e.Raw(t, http.MethodPut, base+"/state/m.room.canonical_alias", alice.AccessToken, `{"alias": "#state:`+e.ServerName+`"}`)
	if st != 200 {
		t.Fatalf("canonical alias: %d %v", st, body)
	}

	// Whole state, members and joined members.
	state := rmMust[mautrix.RoomStateMap](t)(bob.State(rmCtx, roomID))
	if state[event.StateCreate][""] == nil || state[event.StateMember][alice.UserID.String()] == nil {
		t.Fatalf("state misses create or alice's member event: %v", state)
	}
	rmMust[*mautrix.RespInviteUser](t)(alice.InviteUser(rmCtx, roomID, &mautrix.ReqInviteUser{UserID: carol.UserID}))
	members := rmMust[*mautrix.RespMembers](t)(bob.Members(rmCtx, roomID))
	if len(members.Chunk) != 3 {
		t.Fatalf("members: %d", len(members.Chunk))
	}
	members = rmMust[*mautrix.RespMembers](t)(bob.Members(rmCtx, roomID, mautrix.ReqMembers{Membership: event.MembershipInvite}))
	if len(members.Chunk) != 1 || *members.Chunk[0].StateKey != carol.UserID.String() {
		t.Fatalf("invited members: %v", members.Chunk)
	}
	members = rmMust[*mautrix.RespMembers](t)(bob.Members(rmCtx, roomID, mautrix.ReqMembers{NotMembership: event.MembershipJoin}))
	if len(members.Chunk) != 1 {
		t.Fatalf("not_membership=join: %d", len(members.Chunk))
	}
	st, body = e.Raw(t, http.MethodGet, base+"/members?membership=joined", bob.AccessToken, "")
	rmWantRaw(t, st, body, 400, "M_INVALID_PARAM")
	jm := rmMust[*mautrix.RespJoinedMembers](t)(bob.JoinedMembers(rmCtx, roomID))
	if len(jm.Joined) != 2 {
		t.Fatalf("joined_members %v", jm.Joined)
	}
	if _, ok := jm.Joined[alice.UserID]; !ok {
		t.Fatalf("joined_members lacks alice: %v", jm.Joined)
	}

	// After bob leaves he sees the members and state as they were when he left.
	rmMust[*mautrix.RespLeaveRoom](t)(bob.LeaveRoom(rmCtx, roomID))
	rmMust[*mautrix.RespJoinRoom](t)(carol.JoinRoomByID(rmCtx, roomID))
	rmMust[*mautrix.RespSendEvent](t)(alice.SendStateEvent(rmCtx, roomID, event.StateTopic, "", map[string]any{"topic": "after bob"}))
	members = rmMust[*mautrix.RespMembers](t)(bob.Members(rmCtx, roomID, mautrix.ReqMembers{Membership: event.MembershipJoin}))
	if len(members.Chunk) != 1 || *members.Chunk[0].StateKey != alice.UserID.String() {
		t.Fatalf("members as bob left: %d", len(members.Chunk))
	}
	if m := rmMembership(t, bob, roomID, bob.UserID); m != "leave" {
		t.Fatalf("bob's own membership as he left: %q", m)
	}
	err = bob.StateEvent(rmCtx, roomID, event.StateTopic, "", &map[string]any{})
	rmWantErr(t, err, 404, "M_NOT_FOUND")
	state = rmMust[mautrix.RoomStateMap](t)(bob.State(rmCtx, roomID))
	if state[event.StateTopic] != nil {
		t.Fatalf("state after leaving includes later topic")
	}
	if state[event.StateMember][carol.UserID.String()] == nil {
		t.Fatalf("state as bob left lacks carol's invite")
	}
	// Members at a token from before carol joined, as alice.
	msgs := rmMust[*mautrix.RespMessages](t)(alice.Messages(rmCtx, roomID, "", "", mautrix.DirectionBackward, nil, 2))
	members = rmMust[*mautrix.RespMembers](t)(alice.Members(rmCtx, roomID, mautrix.ReqMembers{At: msgs.End, Membership: event.MembershipJoin}))
	if len(members.Chunk) != 1 {
		t.Fatalf("members at %s: %d", msgs.End, len(members.Chunk))
	}
	members = rmMust[*mautrix.RespMembers](t)(alice.Members(rmCtx, roomID, mautrix.ReqMembers{Membership: event.MembershipJoin}))
	if len(members.Chunk) != 2 {
		t.Fatalf("members now: %d", len(members.Chunk))
	}
	st, body = e.Raw(t, http.MethodGet, base+"/members?at=garbage", alice.AccessToken, "")
	rmWantRaw(t, st, body, 400, "M_INVALID_PARAM")
}

func TestSendRedactAndRead(t *testing.T) {
	e := startRoomsServer(t)
	alice := e.Register(t, "alice", false)
	bob := e.Register(t, "bob", false)
	roomID := rmMust[*mautrix.RespCreateRoom](t)(alice.CreateRoom(rmCtx, &mautrix.ReqCreateRoom{Preset: "public_chat"})).RoomID
	base := "/_matrix/client/v3/rooms/" + rmEsc(roomID.String())

	// Not joined: the auth rules refuse.
	_, err := bob.SendText(rmCtx, roomID, "early")
	rmWantErr(t, err, 403, "M_FORBIDDEN")
	rmMust[*mautrix.RespJoinRoom](t)(bob.JoinRoomByID(rmCtx, roomID))

	// Transaction IDs make sends idempotent per device.
	msg := map[string]any{"msgtype": "m.text", "body": "once"}
	r1 := rmMust[*mautrix.RespSendEvent](t)(alice.SendMessageEvent(rmCtx, roomID, event.EventMessage, msg, mautrix.ReqSendEvent{TransactionID: "txn-1"}))
	r2 := rmMust[*mautrix.RespSendEvent](t)(alice.SendMessageEvent(rmCtx, roomID, event.EventMessage, msg, mautrix.ReqSendEvent{TransactionID: "txn-1"}))
	if r1.EventID != r2.EventID {
		t.Fatalf("retransmission made a new event: %s %s", r1.EventID, r2.EventID)
	}
	r3 := rmMust[*mautrix.RespSendEvent](t)(alice.SendMessageEvent(rmCtx, roomID, event.EventMessage, msg, mautrix.ReqSendEvent{TransactionID: "txn-2"}))
	if r3.EventID == r1.EventID {
		t.Fatal("a new transaction ID reused the event")
	}
	rb := rmMust[*mautrix.RespSendEvent](t)(bob.SendMessageEvent(rmCtx, roomID, event.EventMessage, map[string]any{"msgtype": "m.text", "body": "bob's"}, mautrix.ReqSendEvent{TransactionID: "txn-1"}))
	if rb.EventID == r1.EventID {
		t.Fatal("another user's transaction ID matched")
	}
	for _, b := range []string{`[]`, `"text"`, `null`} {
		st, body := e.Raw(t, http.MethodPut, base+"/send/m.room.message/t-bad", alice.AccessToken, b)
		rmWantRaw(t, st, body, 400, "M_BAD_JSON")
	}

	// Event by ID, with transaction_id only for the sending device.
	got := rmMust[*event.Event](t)(alice.GetEvent(rmCtx, roomID, r1.EventID))
	if got.ID != r1.EventID || got.Content.Raw["body"] != "once" || got.Unsigned.TransactionID != "txn-1" {
		t.Fatalf("event by id: %+v", got)
	}
	got = rmMust[*event.Event](t)(bob.GetEvent(rmCtx, roomID, r1.EventID))
	if got.Unsigned.TransactionID != "" {
		t.Fatal("transaction_id shown to another user")
	}
	_, err = alice.GetEvent(rmCtx, roomID, "$nothing")
	rmWantErr(t, err, 404, "M_NOT_FOUND")

	// Redactions: own events; others' only with power.
	_, err = bob.RedactEvent(rmCtx, roomID, r3.EventID)
	rmWantErr(t, err, 403, "M_FORBIDDEN")
	red := rmMust[*mautrix.RespSendEvent](t)(bob.RedactEvent(rmCtx, roomID, rb.EventID, mautrix.ReqRedact{Reason: "oops", TxnID: "red-1"}))
	again := rmMust[*mautrix.RespSendEvent](t)(bob.RedactEvent(rmCtx, roomID, rb.EventID, mautrix.ReqRedact{Reason: "oops", TxnID: "red-1"}))
	if again.EventID != red.EventID {
		t.Fatal("redaction retransmission made a new event")
	}
	rmMust[*mautrix.RespSendEvent](t)(alice.RedactEvent(rmCtx, roomID, r3.EventID))
	gone := rmMust[*event.Event](t)(alice.GetEvent(rmCtx, roomID, rb.EventID))
	if len(gone.Content.Raw) != 0 || gone.Unsigned.RedactedBecause == nil || gone.Unsigned.RedactedBecause.ID != red.EventID {
		t.Fatalf("redacted event: content %v unsigned %+v", gone.Content.Raw, gone.Unsigned)
	}
	st, body := e.Raw(t, http.MethodPut, base+"/redact/"+rmEsc(r1.EventID.String())+"/r-x", alice.AccessToken, `{"reason": 5}`)
	rmWantRaw(t, st, body, 400, "M_BAD_JSON")
	// An unknown event can be redacted by someone with the redact power (it may be another
	// server's event this server has not received; Synapse behaves the same), not by others.
	_, err = bob.RedactEvent(rmCtx, roomID, "$missing")
	rmWantErr(t, err, 404, "M_NOT_FOUND")
	if _, err = alice.RedactEvent(rmCtx, roomID, "$missing"); err != nil {
		t.Fatalf("an admin's redaction of an unknown event: %v", err)
	}

	// m.room.redaction through /send, with redacts in the content (room v12 by default).
	mine := rmMust[*mautrix.RespSendEvent](t)(bob.SendText(rmCtx, roomID, "to be removed"))
	viaSend := rmMust[*mautrix.RespSendEvent](t)(bob.SendMessageEvent(rmCtx, roomID, event.EventRedaction, map[string]any{"redacts": mine.EventID, "reason": "via send"}))
	gone = rmMust[*event.Event](t)(bob.GetEvent(rmCtx, roomID, mine.EventID))
	if len(gone.Content.Raw) != 0 || gone.Unsigned.RedactedBecause == nil || gone.Unsigned.RedactedBecause.ID != viaSend.EventID {
		t.Fatalf("redaction via /send did not apply: %+v", gone)
	}
	_, err = bob.SendMessageEvent(rmCtx, roomID, event.EventRedaction, map[string]any{"redacts": r1.EventID})
	rmWantErr(t, err, 403, "M_FORBIDDEN")
	_, err = bob.SendMessageEvent(rmCtx, roomID, event.EventRedaction, map[string]any{"reason": "no target"})
	rmWantErr(t, err, 400, "M_BAD_JSON")

	// In a v10 room redacts moves to the top level.
	old := rmMust[*mautrix.RespCreateRoom](t)(alice.CreateRoom(rmCtx, &mautrix.ReqCreateRoom{RoomVersion: "10"})).RoomID
	m10 := rmMust[*mautrix.RespSendEvent](t)(alice.SendText(rmCtx, old, "v10"))
	r10 := rmMust[*mautrix.RespSendEvent](t)(alice.SendMessageEvent(rmCtx, old, event.EventRedaction, map[string]any{"redacts": m10.EventID}))
	st, raw := e.rawBytes(t, http.MethodGet, "/_matrix/client/v3/rooms/"+rmEsc(old.String())+"/event/"+rmEsc(r10.EventID.String()), alice.AccessToken, "")
	var r10ev struct {
		Redacts string         `json:"redacts"`
		Content map[string]any `json:"content"`
	}
	_ = json.Unmarshal(raw, &r10ev)
	if st != 200 || r10ev.Redacts != m10.EventID.String() {
		t.Fatalf("v10 redaction via /send: %d %s", st, raw)
	}
	if _, inContent := r10ev.Content["redacts"]; inContent {
		t.Fatalf("v10 redaction kept redacts in content: %s", raw)
	}
}

func TestMessagesAndContext(t *testing.T) {
	e := startRoomsServer(t)
	alice := e.Register(t, "alice", false)
	bob := e.Register(t, "bob", false)
	carol := e.Register(t, "carol", false)
	roomID := rmMust[*mautrix.RespCreateRoom](t)(alice.CreateRoom(rmCtx, &mautrix.ReqCreateRoom{Preset: "public_chat"})).RoomID
	base := "/_matrix/client/v3/rooms/" + rmEsc(roomID.String())
	rmMust[*mautrix.RespJoinRoom](t)(bob.JoinRoomByID(rmCtx, roomID))
	var ids []id.EventID
	for i, who := range []*mautrix.Client{alice, bob, alice, bob, alice} {
		r := rmMust[*mautrix.RespSendEvent](t)(who.SendText(rmCtx, roomID, "m"+string(rune('0'+i))))
		ids = append(ids, r.EventID)
	}

	// Backwards from the end, two at a time.
	p1 := rmMust[*mautrix.RespMessages](t)(alice.Messages(rmCtx, roomID, "", "", mautrix.DirectionBackward, nil, 2))
	if len(p1.Chunk) != 2 || p1.Chunk[0].ID != ids[4] || p1.Chunk[1].ID != ids[3] || p1.End == "" || p1.Start == "" {
		t.Fatalf("first page: %d events, end %q", len(p1.Chunk), p1.End)
	}
	p2 := rmMust[*mautrix.RespMessages](t)(alice.Messages(rmCtx, roomID, p1.End, "", mautrix.DirectionBackward, nil, 2))
	if len(p2.Chunk) != 2 || p2.Chunk[0].ID != ids[2] || p2.Chunk[1].ID != ids[1] || p2.Start != p1.End {
		t.Fatalf("second page: %v", p2.Chunk)
	}
	// Forwards from the second page's end returns what the first two pages returned.
	fw := rmMust[*mautrix.RespMessages](t)(alice.Messages(rmCtx, roomID, p2.End, "", mautrix.DirectionForward, nil, 4))
	if len(fw.Chunk) != 4 || fw.Chunk[0].ID != ids[1] || fw.Chunk[3].ID != ids[4] {
		t.Fatalf("forwards: %d", len(fw.Chunk))
	}
	// Paging to the start of the room ends with no end token.
	all := 0
	from := ""
	for i := 0; i < 50; i++ {
		p := rmMust[*mautrix.RespMessages](t)(alice.Messages(rmCtx, roomID, from, "", mautrix.DirectionBackward, nil, 5))
		all += len(p.Chunk)
		if p.End == "" {
			break
		}
		from = p.End
	}
	if all < 11 || from == "" {
		t.Fatalf("paged %d events in all", all)
	}
	// Forwards from the start: the create event first.
	first := rmMust[*mautrix.RespMessages](t)(alice.Messages(rmCtx, roomID, "", "", mautrix.DirectionForward, nil, 1))
	if len(first.Chunk) != 1 || first.Chunk[0].Type != event.StateCreate {
		t.Fatalf("forwards from the start: %v", first.Chunk)
	}
	// to stops the page.
	bounded := rmMust[*mautrix.RespMessages](t)(alice.Messages(rmCtx, roomID, "", p1.End, mautrix.DirectionBackward, nil, 10))
	if len(bounded.Chunk) != 2 {
		t.Fatalf("to: %d events", len(bounded.Chunk))
	}
	// Filters.
	onlyBob := rmMust[*mautrix.RespMessages](t)(alice.Messages(rmCtx, roomID, "", "", mautrix.DirectionBackward, &mautrix.FilterPart{Senders: []id.UserID{bob.UserID}}, 10))
	if len(onlyBob.Chunk) != 3 { // two messages and the join
		t.Fatalf("senders filter: %d", len(onlyBob.Chunk))
	}
	msgsOnly := rmMust[*mautrix.RespMessages](t)(alice.Messages(rmCtx, roomID, "", "", mautrix.DirectionBackward, &mautrix.FilterPart{Types: []event.Type{event.EventMessage}, NotSenders: []id.UserID{alice.UserID}}, 10))
	if len(msgsOnly.Chunk) != 2 {
		t.Fatalf("types + not_senders filter: %d", len(msgsOnly.Chunk))
	}
	lazy := rmMust[*mautrix.RespMessages](t)(alice.Messages(rmCtx, roomID, "", "", mautrix.DirectionBackward, &mautrix.FilterPart{LazyLoadMembers: true}, 2))
	if len(lazy.State) != 2 {
		t.Fatalf("lazy-loaded members: %d", len(lazy.State))
	}
	for q, code := range map[string]string{
		"?dir=x":               "M_INVALID_PARAM",
		"?dir=b&limit=many":    "M_INVALID_PARAM",
		"?dir=b&limit=-1":      "M_INVALID_PARAM",
		"?dir=b&from=nonsense": "M_INVALID_PARAM",
		"?dir=b&filter=" + url.QueryEscape(`{"types": "m.room.message"}`): "M_BAD_JSON",
		"?dir=b&filter=" + url.QueryEscape(`{nope`):                       "M_BAD_JSON",
	} {
		st, body := e.Raw(t, http.MethodGet, base+"/messages"+q, alice.AccessToken, "")
		if st != 400 || body["errcode"] != code {
			t.Errorf("messages%s: want 400 %s, got %d %v", q, code, st, body)
		}
	}
	_, err := carol.Messages(rmCtx, roomID, "", "", mautrix.DirectionBackward, nil, 5)
	rmWantErr(t, err, 403, "M_FORBIDDEN")

	// Context around the middle message.
	cx := rmMust[*mautrix.RespContext](t)(alice.Context(rmCtx, roomID, ids[2], nil, 2))
	if cx.Event.ID != ids[2] || len(cx.EventsBefore) != 1 || cx.EventsBefore[0].ID != ids[1] || len(cx.EventsAfter) != 1 || cx.EventsAfter[0].ID != ids[3] {
		t.Fatalf("context: before %v after %v", cx.EventsBefore, cx.EventsAfter)
	}
	if cx.Start == "" || cx.End == "" || len(cx.State) == 0 {
		t.Fatalf("context tokens %q %q, %d state events", cx.Start, cx.End, len(cx.State))
	}
	back := rmMust[*mautrix.RespMessages](t)(alice.Messages(rmCtx, roomID, cx.Start, "", mautrix.DirectionBackward, nil, 1))
	if len(back.Chunk) != 1 || back.Chunk[0].ID != ids[0] {
		t.Fatalf("paging back from context start: %v", back.Chunk)
	}
	fwd := rmMust[*mautrix.RespMessages](t)(alice.Messages(rmCtx, roomID, cx.End, "", mautrix.DirectionForward, nil, 1))
	if len(fwd.Chunk) != 1 || fwd.Chunk[0].ID != ids[4] {
		t.Fatalf("paging forward from context end: %v", fwd.Chunk)
	}
	// limit=0: only the event, tokens at the event itself.
	st, raw := e.rawBytes(t, http.MethodGet, base+"/context/"+rmEsc(ids[2].String())+"?limit=0", alice.AccessToken, "")
	cx = &mautrix.RespContext{}
	if err := json.Unmarshal(raw, cx); err != nil || st != 200 {
		t.Fatalf("limit=0 context: %d %s", st, raw)
	}
	if cx.Event.ID != ids[2] || len(cx.EventsBefore) != 0 || len(cx.EventsAfter) != 0 {
		t.Fatalf("limit=0 context: %v %v", cx.EventsBefore, cx.EventsAfter)
	}
	back = rmMust[*mautrix.RespMessages](t)(alice.Messages(rmCtx, roomID, cx.Start, "", mautrix.DirectionBackward, nil, 1))
	if len(back.Chunk) != 1 || back.Chunk[0].ID != ids[1] {
		t.Fatalf("paging back from a limit=0 context: %v", back.Chunk)
	}
	fwd = rmMust[*mautrix.RespMessages](t)(alice.Messages(rmCtx, roomID, cx.End, "", mautrix.DirectionForward, nil, 1))
	if len(fwd.Chunk) != 1 || fwd.Chunk[0].ID != ids[3] {
		t.Fatalf("paging forward from a limit=0 context: %v", fwd.Chunk)
	}
	// A filter applies to the surrounding events and the state, not to the event.
	cx = rmMust[*mautrix.RespContext](t)(alice.Context(rmCtx, roomID, ids[2], &mautrix.FilterPart{Senders: []id.UserID{bob.UserID}}, 4))
	for _, ev := range append(append(append([]*event.Event{}, cx.EventsBefore...), cx.EventsAfter...), cx.State...) {
		if ev.Sender != bob.UserID {
			t.Fatalf("filtered context has an event from %s (%s)", ev.Sender, ev.Type)
		}
	}
	if cx.Event.Sender != alice.UserID {
		t.Fatal("the context event itself was filtered")
	}
	_, err = carol.Context(rmCtx, roomID, ids[2], nil, 2)
	rmWantErr(t, err, 404, "M_NOT_FOUND")
	_, err = alice.Context(rmCtx, roomID, "$nope", nil, 2)
	rmWantErr(t, err, 404, "M_NOT_FOUND")
	st, body := e.Raw(t, http.MethodGet, base+"/context/"+rmEsc(ids[2].String())+"?limit=x", alice.AccessToken, "")
	rmWantRaw(t, st, body, 400, "M_INVALID_PARAM")
}

func TestAliasesAndDirectory(t *testing.T) {
	e := startRoomsServer(t)
	alice := e.Register(t, "alice", false)
	bob := e.Register(t, "bob", false)
	roomID := rmMust[*mautrix.RespCreateRoom](t)(alice.CreateRoom(rmCtx, &mautrix.ReqCreateRoom{Name: "Kitchen", Topic: "Cooking and such"})).RoomID
	alias := id.RoomAlias("#kitchen:" + e.ServerName)

	rmMust[*mautrix.RespAliasCreate](t)(alice.CreateAlias(rmCtx, alias, roomID))
	res := rmMust[*mautrix.RespAliasResolve](t)(bob.ResolveAlias(rmCtx, alias))
	if res.RoomID != roomID || len(res.Servers) != 1 || res.Servers[0] != e.ServerName {
		t.Fatalf("resolve: %+v", res)
	}
	st, body := e.Raw(t, http.MethodGet, "/_matrix/client/v3/directory/room/"+rmEsc(alias.String()), "", "")
	if st != 200 || body["room_id"] != roomID.String() {
		t.Fatalf("resolve without a token: %d %v", st, body)
	}
	_, err := alice.CreateAlias(rmCtx, alias, roomID)
	rmWantErr(t, err, 409, "M_UNKNOWN")
	_, err = bob.CreateAlias(rmCtx, id.RoomAlias("#bobs:"+e.ServerName), roomID)
	rmWantErr(t, err, 403, "M_FORBIDDEN")
	_, err = alice.ResolveAlias(rmCtx, id.RoomAlias("#missing:"+e.ServerName))
	rmWantErr(t, err, 404, "M_NOT_FOUND")
	st, body = e.Raw(t, http.MethodGet, "/_matrix/client/v3/directory/room/"+rmEsc("kitchen"), "", "")
	rmWantRaw(t, st, body, 400, "M_INVALID_PARAM")
	st, body = e.Raw(t, http.MethodPut, "/_matrix/client/v3/directory/room/"+rmEsc("#other:"+e.ServerName), alice.AccessToken, `{}`)
	rmWantRaw(t, st, body, 400, "M_BAD_JSON")
	st, body = e.Raw(t, http.MethodPut, "/_matrix/client/v3/directory/room/"+rmEsc("#other:"+e.ServerName), alice.AccessToken, `{"room_id": "!gone:`+e.ServerName+`"}`)
	rmWantRaw(t, st, body, 404, "M_NOT_FOUND")

	// Local aliases list: members only.
	list := rmMust[*mautrix.RespAliasList](t)(alice.GetAliases(rmCtx, roomID))
	if len(list.Aliases) != 1 || list.Aliases[0] != alias {
		t.Fatalf("aliases %v", list.Aliases)
	}
	_, err = bob.GetAliases(rmCtx, roomID)
	rmWantErr(t, err, 403, "M_FORBIDDEN")

	// Deleting: not by others without power; then gone.
	_, err = bob.DeleteAlias(rmCtx, alias)
	rmWantErr(t, err, 403, "M_FORBIDDEN")
	rmMust[*mautrix.RespAliasDelete](t)(alice.DeleteAlias(rmCtx, alias))
	_, err = alice.ResolveAlias(rmCtx, alias)
	rmWantErr(t, err, 404, "M_NOT_FOUND")
	_, err = alice.DeleteAlias(rmCtx, alias)
	rmWantErr(t, err, 404, "M_NOT_FOUND")

	// Directory visibility.
	vpath := "/_matrix/client/v3/directory/list/room/" + rmEsc(roomID.String())
	st, body = e.Raw(t, http.MethodGet, vpath, "", "")
	if st != 200 || body["visibility"] != "private" {
		t.Fatalf("visibility: %d %v", st, body)
	}
	st, body = e.Raw(t, http.MethodPut, vpath, bob.AccessToken, `{"visibility": "public"}`)
	rmWantRaw(t, st, body, 403, "M_FORBIDDEN")
	st, body = e.Raw(t, http.MethodPut, vpath, alice.AccessToken, `{"visibility": "open"}`)
	rmWantRaw(t, st, body, 400, "M_INVALID_PARAM")
	st, _ = e.Raw(t, http.MethodPut, vpath, alice.AccessToken, `{}`) // defaults to public
	if st != 200 {
		t.Fatalf("publish: %d", st)
	}
	st, body = e.Raw(t, http.MethodGet, vpath, "", "")
	if st != 200 || body["visibility"] != "public" {
		t.Fatalf("visibility after publishing: %d %v", st, body)
	}
	st, body = e.Raw(t, http.MethodGet, "/_matrix/client/v3/directory/list/room/"+rmEsc("!gone:"+e.ServerName), "", "")
	rmWantRaw(t, st, body, 404, "M_NOT_FOUND")

	// Public rooms: three published rooms of different sizes.
	big := rmMust[*mautrix.RespCreateRoom](t)(alice.CreateRoom(rmCtx, &mautrix.ReqCreateRoom{Visibility: "public", Name: "Big Hall", RoomAliasName: "big"})).RoomID
	rmMust[*mautrix.RespJoinRoom](t)(bob.JoinRoomByID(rmCtx, big))
	space := rmMust[*mautrix.RespCreateRoom](t)(alice.CreateRoom(rmCtx, &mautrix.ReqCreateRoom{Visibility: "public", Name: "Space", CreationContent: map[string]any{"type": "m.space"}})).RoomID
	rmMust[*mautrix.RespCreateRoom](t)(alice.CreateRoom(rmCtx, &mautrix.ReqCreateRoom{Visibility: "private", Name: "Hidden"}))

	pr := rmMust[*mautrix.RespPublicRooms](t)(bob.PublicRooms(rmCtx, &mautrix.ReqPublicRooms{Limit: 2}))
	if pr.TotalRoomCountEstimate != 3 || len(pr.Chunk) != 2 || pr.NextBatch == "" || pr.PrevBatch != "" {
		t.Fatalf("first page: total %d, %d rooms, next %q prev %q", pr.TotalRoomCountEstimate, len(pr.Chunk), pr.NextBatch, pr.PrevBatch)
	}
	top := pr.Chunk[0]
	if top.RoomID != big || top.NumJoinedMembers != 2 || top.Name != "Big Hall" || top.CanonicalAlias != id.RoomAlias("#big:"+e.ServerName) || top.JoinRule != "public" || top.WorldReadable || top.GuestCanJoin {
		t.Fatalf("largest room first, fully described: %+v", top)
	}
	pr2 := rmMust[*mautrix.RespPublicRooms](t)(bob.PublicRooms(rmCtx, &mautrix.ReqPublicRooms{Limit: 2, Since: pr.NextBatch}))
	if len(pr2.Chunk) != 1 || pr2.NextBatch != "" || pr2.PrevBatch == "" {
		t.Fatalf("second page: %d rooms, next %q prev %q", len(pr2.Chunk), pr2.NextBatch, pr2.PrevBatch)
	}
	pr3 := rmMust[*mautrix.RespPublicRooms](t)(bob.PublicRooms(rmCtx, &mautrix.ReqPublicRooms{Limit: 2, Since: pr2.PrevBatch}))
	if len(pr3.Chunk) != 2 || pr3.Chunk[0].RoomID != big {
		t.Fatalf("back to the first page: %+v", pr3.Chunk)
	}
	seen := map[id.RoomID]*mautrix.PublicRoomInfo{}
	for _, r := range append(pr.Chunk, pr2.Chunk...) {
		seen[r.RoomID] = r
	}
	if k := seen[roomID]; k == nil || k.Topic != "Cooking and such" || k.JoinRule != "invite" {
		t.Fatalf("kitchen entry %+v", k)
	}
	if s := seen[space]; s == nil || s.RoomType != "m.space" {
		t.Fatalf("space entry %+v", s)
	}

	// No token needed for GET; the server parameter rmMust be us.
	st, body = e.Raw(t, http.MethodGet, "/_matrix/client/v3/publicRooms?limit=1", "", "")
	if st != 200 || len(body["chunk"].([]any)) != 1 {
		t.Fatalf("unauthenticated publicRooms: %d %v", st, body)
	}
	st, _ = e.Raw(t, http.MethodGet, "/_matrix/client/v3/publicRooms?server="+e.ServerName, "", "")
	if st != 200 {
		t.Fatalf("publicRooms with our server name: %d", st)
	}
	// Another server's directory is asked of that server; one that cannot be reached is a 502.
	st, body = e.Raw(t, http.MethodGet, "/_matrix/client/v3/publicRooms?server=elsewhere.example", "", "")
	if st != 502 {
		t.Fatalf("publicRooms of an unreachable server: %d %v", st, body)
	}
	st, body = e.Raw(t, http.MethodGet, "/_matrix/client/v3/publicRooms?since=zzz", "", "")
	rmWantRaw(t, st, body, 400, "M_INVALID_PARAM")

	// POST with filters.
	post := func(body string) map[string]any {
		t.Helper()
		st, out := e.Raw(t, http.MethodPost, "/_matrix/client/v3/publicRooms", bob.AccessToken, body)
		if st != 200 {
			t.Fatalf("POST publicRooms %s: %d %v", body, st, out)
		}
		return out
	}
	out := post(`{"filter": {"generic_search_term": "cook"}}`)
	if ch := out["chunk"].([]any); len(ch) != 1 || ch[0].(map[string]any)["room_id"] != roomID.String() {
		t.Fatalf("search: %v", out)
	}
	out = post(`{"filter": {"room_types": ["m.space"]}}`)
	if ch := out["chunk"].([]any); len(ch) != 1 || ch[0].(map[string]any)["room_id"] != space.String() {
		t.Fatalf("room_types m.space: %v", out)
	}
	out = post(`{"filter": {"room_types": [null]}}`)
	if ch := out["chunk"].([]any); len(ch) != 2 {
		t.Fatalf("room_types null: %v", out)
	}
	out = post(`{"limit": 1}`)
	if ch := out["chunk"].([]any); len(ch) != 1 || out["next_batch"] == nil {
		t.Fatalf("limit 1: %v", out)
	}
	st, body = e.Raw(t, http.MethodPost, "/_matrix/client/v3/publicRooms", bob.AccessToken, `{"filter": {"room_types": [1]}}`)
	rmWantRaw(t, st, body, 400, "M_BAD_JSON")
	st, body = e.Raw(t, http.MethodPost, "/_matrix/client/v3/publicRooms", bob.AccessToken, `{"limit": "ten"}`)
	rmWantRaw(t, st, body, 400, "M_BAD_JSON")
	st, body = e.Raw(t, http.MethodPost, "/_matrix/client/v3/publicRooms", "", `{}`)
	rmWantRaw(t, st, body, 401, "M_MISSING_TOKEN")
}
