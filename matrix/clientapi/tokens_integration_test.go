package clientapi_test

import (
	"net/http"
	"testing"
	"time"

	"maunium.net/go/mautrix"

	"github.com/hearth-home/hearth/appliance/config"
	"github.com/hearth-home/hearth/appliance/testserver"
)

// OpenID tokens, m.login.token with /login/get_token, and refresh tokens.

func TestOpenIDRequestToken(t *testing.T) {
	s := testserver.Start(t)
	alice := s.Register(t, "alice", false)
	bob := s.Register(t, "bob", false)

	tok := cs3R(alice.RequestOpenIDToken(cs3Ctx)).must(t)
	if tok.AccessToken == "" || tok.TokenType != "Bearer" || tok.MatrixServerName != s.ServerName || tok.ExpiresIn != 3600 {
		t.Fatalf("openid token %+v", tok)
	}
	if again := cs3R(alice.RequestOpenIDToken(cs3Ctx)).must(t); again.AccessToken == tok.AccessToken {
		t.Fatalf("two requests gave the same token")
	}
	path := "/_matrix/client/v3/user/" + cs3Esc(alice.UserID.String()) + "/openid/request_token"
	cs3Do(t, s, http.MethodPost, path, bob.AccessToken, map[string]any{}).want(t, 403, "M_FORBIDDEN")
	cs3Do(t, s, http.MethodPost, path, "", map[string]any{}).want(t, 401, "M_MISSING_TOKEN")
	cs3Do(t, s, http.MethodPost, path, alice.AccessToken, "{").want(t, 400, "M_NOT_JSON")
	cs3Do(t, s, http.MethodPost, "/_matrix/client/r0/user/"+cs3Esc(alice.UserID.String())+"/openid/request_token", alice.AccessToken, map[string]any{}).ok(t)
}

func passwordAuth(user *mautrix.Client, password, session string) map[string]any {
	return map[string]any{"type": "m.login.password", "identifier": map[string]any{"type": "m.id.user", "user": user.UserID.String()}, "password": password, "session": session}
}

func TestLoginToken(t *testing.T) {
	s := testserver.Start(t)
	alice := s.Register(t, "alice", false)
	const getToken = "/_matrix/client/v1/login/get_token"

	// Advertised to clients with and without a session.
	flows := cs3Do(t, s, http.MethodGet, "/_matrix/client/v3/login", "", nil).ok(t)["flows"].([]any)
	found := false
	for _, f := range flows {
		fm := f.(map[string]any)
		found = found || (fm["type"] == "m.login.token" && fm["get_login_token"] == true)
	}
	if !found {
		t.Fatalf("login flows %v lack m.login.token with get_login_token", flows)
	}
	caps := cs3Do(t, s, http.MethodGet, "/_matrix/client/v3/capabilities", alice.AccessToken, nil).ok(t)["capabilities"].(map[string]any)
	if glt := caps["m.get_login_token"].(map[string]any); glt["enabled"] != true {
		t.Fatalf("m.get_login_token capability %v", glt)
	}

	// The password is asked for, every time.
	challenge := cs3Do(t, s, http.MethodPost, getToken, alice.AccessToken, map[string]any{})
	if challenge.status != 401 || challenge.body["session"] == nil {
		t.Fatalf("want a UIA challenge, got %d %v", challenge.status, challenge.body)
	}
	session := challenge.body["session"].(string)
	wrong := cs3Do(t, s, http.MethodPost, getToken, alice.AccessToken, map[string]any{"auth": passwordAuth(alice, "wrong", session)})
	if wrong.status != 401 || wrong.body["errcode"] != "M_FORBIDDEN" {
		t.Fatalf("wrong password: %d %v", wrong.status, wrong.body)
	}
	got := cs3Do(t, s, http.MethodPost, getToken, alice.AccessToken, map[string]any{"auth": passwordAuth(alice, "password-alice", session)}).ok(t)
	token, _ := got["login_token"].(string)
	if token == "" || cs3Num(got, "expires_in_ms") != 120000 {
		t.Fatalf("get_token answer %v", got)
	}
	// The session is spent: the same auth does not mint a second token.
	if again := cs3Do(t, s, http.MethodPost, getToken, alice.AccessToken, map[string]any{"auth": map[string]any{"session": session}}); again.status != 401 || again.body["session"] == session {
		t.Fatalf("a spent UIA session minted another token: %d %v", again.status, again.body)
	}
	cs3Do(t, s, http.MethodPost, getToken, "", map[string]any{}).want(t, 401, "M_MISSING_TOKEN")

	// The token logs in once, as alice, on a new device.
	login := cs3Do(t, s, http.MethodPost, "/_matrix/client/v3/login", "", map[string]any{"type": "m.login.token", "token": token, "initial_device_display_name": "phone"}).ok(t)
	if login["user_id"] != alice.UserID.String() || login["access_token"] == "" || login["device_id"] == alice.DeviceID.String() {
		t.Fatalf("token login %v", login)
	}
	who := cs3Do(t, s, http.MethodGet, "/_matrix/client/v3/account/whoami", login["access_token"].(string), nil).ok(t)
	if who["user_id"] != alice.UserID.String() || who["device_id"] != login["device_id"] {
		t.Fatalf("whoami %v", who)
	}
	cs3Do(t, s, http.MethodPost, "/_matrix/client/v3/login", "", map[string]any{"type": "m.login.token", "token": token}).want(t, 403, "M_FORBIDDEN")
	cs3Do(t, s, http.MethodPost, "/_matrix/client/v3/login", "", map[string]any{"type": "m.login.token", "token": "made-up"}).want(t, 403, "M_FORBIDDEN")
	cs3Do(t, s, http.MethodPost, "/_matrix/client/v3/login", "", map[string]any{"type": "m.login.token"}).want(t, 400, "M_MISSING_PARAM")

	// mautrix's login speaks it too, and a token login may ask for a refresh token.
	got = cs3Do(t, s, http.MethodPost, getToken, alice.AccessToken, map[string]any{"auth": passwordAuth(alice, "password-alice", "")}).ok(t)
	fresh := cs3Do(t, s, http.MethodPost, "/_matrix/client/v3/login", "", map[string]any{"type": "m.login.token", "token": got["login_token"], "refresh_token": true}).ok(t)
	if fresh["refresh_token"] == nil || cs3Num(fresh, "expires_in_ms") <= 0 {
		t.Fatalf("token login with refresh_token %v", fresh)
	}
	got = cs3Do(t, s, http.MethodPost, getToken, alice.AccessToken, map[string]any{"auth": passwordAuth(alice, "password-alice", "")}).ok(t)
	cli := cs3R(mautrix.NewClient(s.URL, "", "")).must(t)
	resp := cs3R(cli.Login(cs3Ctx, &mautrix.ReqLogin{Type: mautrix.AuthTypeToken, Token: got["login_token"].(string)})).must(t)
	if resp.UserID != alice.UserID {
		t.Fatalf("mautrix token login as %s", resp.UserID)
	}
}

func TestRefreshTokens(t *testing.T) {
	const life = 1500 * time.Millisecond
	s := testserver.Start(t, func(c *config.Config) {
		c.Registration.AccessTokenLifetime = life
		c.Registration.Open = true
	})
	s.Register(t, "alice", false)
	loginBody := func(refresh bool) map[string]any {
		return map[string]any{"type": "m.login.password", "identifier": map[string]any{"type": "m.id.user", "user": "alice"}, "password": "password-alice", "refresh_token": refresh}
	}
	whoami := func(tok string) cs3Resp {
		return cs3Do(t, s, http.MethodGet, "/_matrix/client/v3/account/whoami", tok, nil)
	}
	refresh := func(rt string) cs3Resp {
		return cs3Do(t, s, http.MethodPost, "/_matrix/client/v3/refresh", "", map[string]any{"refresh_token": rt})
	}

	plain := cs3Do(t, s, http.MethodPost, "/_matrix/client/v3/login", "", loginBody(false)).ok(t)
	if plain["refresh_token"] != nil || plain["expires_in_ms"] != nil {
		t.Fatalf("a plain login got refresh fields: %v", plain)
	}
	first := cs3Do(t, s, http.MethodPost, "/_matrix/client/v3/login", "", loginBody(true)).ok(t)
	at1, rt1 := first["access_token"].(string), first["refresh_token"].(string)
	if rt1 == "" || cs3Num(first, "expires_in_ms") != life.Milliseconds() {
		t.Fatalf("refreshable login %v", first)
	}
	whoami(at1).ok(t)

	// The refreshable token expires (a soft logout); the plain one does not.
	time.Sleep(life + 200*time.Millisecond)
	exp := whoami(at1)
	exp.want(t, 401, "M_UNKNOWN_TOKEN")
	if exp.body["soft_logout"] != true {
		t.Fatalf("expired token answer %v lacks soft_logout: true", exp.body)
	}
	whoami(plain["access_token"].(string)).ok(t)

	// Refresh: a new pair for the same device; the old access token is gone at once.
	second := refresh(rt1).ok(t)
	at2, rt2 := second["access_token"].(string), second["refresh_token"].(string)
	if at2 == "" || rt2 == "" || rt2 == rt1 || cs3Num(second, "expires_in_ms") != life.Milliseconds() {
		t.Fatalf("refresh answer %v", second)
	}
	if who := whoami(at2).ok(t); who["device_id"] != first["device_id"] {
		t.Fatalf("refreshed token is for device %v, want %v", who["device_id"], first["device_id"])
	}
	if old := whoami(at1); old.status != 401 || old.body["soft_logout"] != false {
		t.Fatalf("old access token after refresh: %d %v", old.status, old.body)
	}
	// The new pair was used, so the old refresh token is revoked.
	refresh(rt1).want(t, 401, "M_UNKNOWN_TOKEN")

	// A refresh token used twice before its successor is used: the unused pair is abandoned.
	third := refresh(rt2).ok(t)
	fourth := refresh(rt2).ok(t)
	whoami(third["access_token"].(string)).want(t, 401, "M_UNKNOWN_TOKEN")
	refresh(third["refresh_token"].(string)).want(t, 401, "M_UNKNOWN_TOKEN")
	whoami(fourth["access_token"].(string)).ok(t)

	// Logging out revokes the refresh token.
	cs3Do(t, s, http.MethodPost, "/_matrix/client/v3/logout", fourth["access_token"].(string), map[string]any{}).ok(t)
	refresh(fourth["refresh_token"].(string)).want(t, 401, "M_UNKNOWN_TOKEN")

	refresh("made-up").want(t, 401, "M_UNKNOWN_TOKEN")
	cs3Do(t, s, http.MethodPost, "/_matrix/client/v3/refresh", "", map[string]any{}).want(t, 400, "M_MISSING_PARAM")
	cs3Do(t, s, http.MethodPost, "/_matrix/client/v3/refresh", "", "{").want(t, 400, "M_NOT_JSON")

	// Registration may ask for a refresh token too.
	reg := cs3Do(t, s, http.MethodPost, "/_matrix/client/v3/register", "", map[string]any{"username": "newbie", "password": "password-newbie",
		"refresh_token": true, "auth": map[string]any{"type": "m.login.dummy"}}).ok(t)
	if reg["refresh_token"] == nil || cs3Num(reg, "expires_in_ms") != life.Milliseconds() {
		t.Fatalf("register with refresh_token: %v", reg)
	}
	refresh(reg["refresh_token"].(string)).ok(t)
}
