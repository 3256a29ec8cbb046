package clientapi_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
	"maunium.net/go/mautrix/pushrules"

	"github.com/hearth-home/hearth/appliance/config"
	"github.com/hearth-home/hearth/appliance/control"
	"github.com/hearth-home/hearth/appliance/testserver"
)

// acctExpect checks a raw response's status and errcode ("" = no errcode expected).
func acctExpect(t *testing.T, what string, status int, body map[string]any, wantStatus int, wantCode string) {
	t.Helper()
	if status != wantStatus {
		t.Fatalf("%s: status %d, want %d (body %v)", what, status, wantStatus, body)
	}
	got, _ := body["errcode"].(string)
	if got != wantCode {
		t.Fatalf("%s: errcode %q, want %q (body %v)", what, got, wantCode, body)
	}
}

// acctMatrixErr checks that err is a Matrix error with the given status and errcode.
func acctMatrixErr(t *testing.T, what string, err error, status int, code string) {
	t.Helper()
	var he mautrix.HTTPError
	if !errors.As(err, &he) || he.Response == nil {
		t.Fatalf("%s: want HTTP %d %s, got %v", what, status, code, err)
	}
	if he.Response.StatusCode != status || he.RespError == nil || he.RespError.ErrCode != code {
		t.Fatalf("%s: got HTTP %d %s, want %d %s", what, he.Response.StatusCode, he.ResponseBody, status, code)
	}
}

func acctJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func acctLogin(t *testing.T, srv *testserver.Server, user, password string) *mautrix.Client {
	t.Helper()
	cli, err := mautrix.NewClient(srv.URL, "", "")
	if err != nil {
		t.Fatal(err)
	}
	_, err = cli.Login(context.Background(), &mautrix.ReqLogin{
		Type:             mautrix.AuthTypePassword,
		Identifier:       mautrix.UserIdentifier{Type: mautrix.IdentifierTypeUser, User: user},
		Password:         password,
		StoreCredentials: true,
	})
	if err != nil {
		t.Fatalf("login %s: %v", user, err)
	}
	return cli
}

// acctPasswordAuth is an m.login.password auth dict.
func acctPasswordAuth(user id.UserID, password, session string) map[string]any {
	return map[string]any{
		"type":       "m.login.password",
		"identifier": map[string]string{"type": "m.id.user", "user": user.String()},
		"password":   password,
		"session":    session,
	}
}

func TestAuthSharedSecretRegistration(t *testing.T) {
	srv := testserver.Start(t)
	ctx := context.Background()
	cli := srv.Register(t, "alice", false)
	who, err := cli.Whoami(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if who.UserID != id.NewUserID("alice", srv.ServerName) || who.DeviceID != cli.DeviceID || who.DeviceID == "" {
		t.Fatalf("whoami = %+v", who)
	}

	nonce := func() string {
		status, body := srv.Raw(t, http.MethodGet, "/_synapse/admin/v1/register", "", "")
		acctExpect(t, "nonce", status, body, 200, "")
		return body["nonce"].(string)
	}
	mac := func(n, user, pw, role string) string {
		m := hmac.New(sha1.New, []byte(testserver.SharedSecret))
		m.Write([]byte(n + "\x00" + user + "\x00" + pw + "\x00" + role))
		return hex.EncodeToString(m.Sum(nil))
	}
	n := nonce()
	body := acctJSON(map[string]any{"nonce": n, "username": "bob", "password": "pw", "admin": false, "mac": mac(n, "bob", "pw", "admin")})
	status, resp := srv.Raw(t, http.MethodPost, "/_synapse/admin/v1/register", "", body)
	acctExpect(t, "wrong MAC", status, resp, 403, "M_FORBIDDEN")
	status, resp = srv.Raw(t, http.MethodPost, "/_synapse/admin/v1/register", "", body)
	acctExpect(t, "reused nonce", status, resp, 400, "M_UNKNOWN")
	status, resp = srv.Raw(t, http.MethodPost, "/_synapse/admin/v1/register", "", acctJSON(map[string]any{"nonce": "nope", "username": "bob", "password": "pw", "mac": "00"}))
	acctExpect(t, "unknown nonce", status, resp, 400, "M_UNKNOWN")

	n = nonce()
	status, resp = srv.Raw(t, http.MethodPost, "/_synapse/admin/v1/register", "", acctJSON(map[string]any{
		"nonce": n, "username": "bob", "password": "pw", "admin": true, "displayname": "Bob", "mac": mac(n, "bob", "pw", "admin"),
	}))
	acctExpect(t, "register bob", status, resp, 200, "")
	if resp["user_id"] != "@bob:"+srv.ServerName || resp["access_token"] == "" || resp["device_id"] == "" || resp["home_server"] != srv.ServerName {
		t.Fatalf("register response %v", resp)
	}
	prof, err := cli.GetProfile(ctx, id.NewUserID("bob", srv.ServerName))
	if err != nil || prof.DisplayName != "Bob" {
		t.Fatalf("bob's profile = %+v, %v", prof, err)
	}
	n = nonce()
	status, resp = srv.Raw(t, http.MethodPost, "/_synapse/admin/v1/register", "", acctJSON(map[string]any{
		"nonce": n, "username": "bob", "password": "pw", "mac": mac(n, "bob", "pw", "notadmin"),
	}))
	acctExpect(t, "bob again", status, resp, 400, "M_USER_IN_USE")

	noSecret := testserver.Start(t, func(c *config.Config) { c.Registration.SharedSecret = "" })
	status, resp = noSecret.Raw(t, http.MethodGet, "/_synapse/admin/v1/register", "", "")
	if status != 400 {
		t.Fatalf("nonce without a shared secret: %d %v", status, resp)
	}
}

func TestAuthOpenRegistration(t *testing.T) {
	srv := testserver.Start(t, func(c *config.Config) { c.Registration.Open = true; c.Registration.MinPasswordLength = 8 })
	ctx := context.Background()
	anon, _ := mautrix.NewClient(srv.URL, "", "")

	status, body := srv.Raw(t, http.MethodPost, "/_matrix/client/v3/register", "", `{}`)
	acctExpect(t, "first register", status, body, 401, "")
	if acctJSON(body["flows"]) != `[{"stages":["m.login.dummy"]},{"stages":["m.login.registration_token"]}]` || body["session"] == "" || body["params"] == nil {
		t.Fatalf("UIA body %v", body)
	}

	res, err := anon.RegisterDummy(ctx, &mautrix.ReqRegister[any]{Username: "Carol", Password: "long-enough", InitialDeviceDisplayName: "phone"})
	if err != nil {
		t.Fatal(err)
	}
	if res.UserID != id.NewUserID("carol", srv.ServerName) || res.AccessToken == "" || res.DeviceID == "" {
		t.Fatalf("register = %+v", res)
	}
	carol, _ := mautrix.NewClient(srv.URL, res.UserID, res.AccessToken)
	dev, err := carol.GetDeviceInfo(ctx, res.DeviceID)
	if err != nil || dev.DisplayName != "phone" {
		t.Fatalf("device = %+v, %v", dev, err)
	}

	// No username: the server picks one. inhibit_login: no token.
	res, err = anon.RegisterDummy(ctx, &mautrix.ReqRegister[any]{Password: "long-enough", InhibitLogin: true})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(res.UserID.String(), "@") || res.AccessToken != "" || res.DeviceID != "" {
		t.Fatalf("register without username = %+v", res)
	}

	for _, tc := range []struct {
		name, query, body string
		status            int
		code              string
	}{
		{"taken", "", `{"username":"carol","password":"long-enough"}`, 400, "M_USER_IN_USE"},
		{"invalid", "", `{"username":"c a r o l","password":"long-enough"}`, 400, "M_INVALID_USERNAME"},
		{"weak", "", `{"username":"dave","password":"short"}`, 400, "M_WEAK_PASSWORD"},
		{"guest", "?kind=guest", `{}`, 403, "M_GUEST_ACCESS_FORBIDDEN"},
		{"not json", "", `{"username":`, 400, "M_NOT_JSON"},
		{"wrong type", "", `{"username":12}`, 400, "M_BAD_JSON"},
		{"unknown stage", "", `{"username":"dave","password":"long-enough","auth":{"type":"m.login.recaptcha"}}`, 401, "M_FORBIDDEN"},
	} {
		status, body := srv.Raw(t, http.MethodPost, "/_matrix/client/v3/register"+tc.query, "", tc.body)
		acctExpect(t, tc.name, status, body, tc.status, tc.code)
	}

	avail, err := anon.RegisterAvailable(ctx, "erin")
	if err != nil || !avail.Available {
		t.Fatalf("available erin = %+v, %v", avail, err)
	}
	_, err = anon.RegisterAvailable(ctx, "carol")
	acctMatrixErr(t, "available carol", err, 400, "M_USER_IN_USE")
}

func TestAuthTokenRegistration(t *testing.T) {
	srv := testserver.Start(t)
	ctx := context.Background()
	adm, err := control.Dial(control.SocketPath(srv.DataDir))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := adm.CreateToken(ctx, 1, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	validity := func(token string) bool {
		status, body := srv.Raw(t, http.MethodGet, "/_matrix/client/v1/register/m.login.registration_token/validity?token="+url.QueryEscape(token), "", "")
		acctExpect(t, "validity", status, body, 200, "")
		return body["valid"] == true
	}
	if !validity(tok) || validity("no-such-token") {
		t.Fatal("token validity is wrong before use")
	}

	status, body := srv.Raw(t, http.MethodPost, "/_matrix/client/v3/register", "", `{"username":"frank","password":"pw"}`)
	acctExpect(t, "closed flows", status, body, 401, "")
	if acctJSON(body["flows"]) != `[{"stages":["m.login.registration_token"]}]` {
		t.Fatalf("flows %v", body["flows"])
	}
	session := body["session"].(string)

	reg := func(auth map[string]any) (int, map[string]any) {
		return srv.Raw(t, http.MethodPost, "/_matrix/client/v3/register", "", acctJSON(map[string]any{"username": "frank", "password": "pw", "auth": auth}))
	}
	status, body = reg(map[string]any{"type": "m.login.dummy", "session": session})
	acctExpect(t, "dummy when closed", status, body, 401, "M_FORBIDDEN")
	status, body = reg(map[string]any{"type": "m.login.registration_token", "token": "wrong", "session": session})
	acctExpect(t, "wrong token", status, body, 401, "M_UNAUTHORIZED")
	if body["session"] != session {
		t.Fatalf("session changed: %v", body)
	}
	status, body = reg(map[string]any{"type": "m.login.registration_token", "token": tok, "session": session})
	acctExpect(t, "token", status, body, 200, "")
	if body["user_id"] != "@frank:"+srv.ServerName || body["access_token"] == "" {
		t.Fatalf("register %v", body)
	}
	if validity(tok) {
		t.Fatal("a single-use token is still valid after use")
	}
	status, body = srv.Raw(t, http.MethodPost, "/_matrix/client/v3/register", "", acctJSON(map[string]any{
		"username": "gina", "password": "pw", "auth": map[string]any{"type": "m.login.registration_token", "token": tok},
	}))
	acctExpect(t, "used-up token", status, body, 401, "M_UNAUTHORIZED")
}

func TestAuthLoginLogout(t *testing.T) {
	srv := testserver.Start(t)
	ctx := context.Background()
	srv.Register(t, "henry", false)
	pw := "password-henry"

	status, body := srv.Raw(t, http.MethodGet, "/_matrix/client/v3/login", "", "")
	acctExpect(t, "login flows", status, body, 200, "")
	if acctJSON(body["flows"]) != `[{"type":"m.login.password"},{"get_login_token":true,"type":"m.login.token"}]` {
		t.Fatalf("flows %v", body)
	}

	cli := acctLogin(t, srv, "henry", pw)
	full := acctLogin(t, srv, "@henry:"+srv.ServerName, pw)
	if cli.UserID != full.UserID || cli.DeviceID == full.DeviceID {
		t.Fatalf("login by localpart %s/%s and MXID %s/%s", cli.UserID, cli.DeviceID, full.UserID, full.DeviceID)
	}
	// The deprecated top-level user field, and a chosen device ID.
	status, body = srv.Raw(t, http.MethodPost, "/_matrix/client/v3/login", "", acctJSON(map[string]any{"type": "m.login.password", "user": "henry", "password": pw, "device_id": "MYDEVICE"}))
	acctExpect(t, "legacy login", status, body, 200, "")
	if body["device_id"] != "MYDEVICE" || body["home_server"] != srv.ServerName {
		t.Fatalf("legacy login %v", body)
	}

	for _, tc := range []struct {
		name, body string
		status     int
		code       string
	}{
		{"wrong password", `{"type":"m.login.password","identifier":{"type":"m.id.user","user":"henry"},"password":"nope"}`, 403, "M_FORBIDDEN"},
		{"unknown user", `{"type":"m.login.password","identifier":{"type":"m.id.user","user":"nobody"},"password":"nope"}`, 403, "M_FORBIDDEN"},
		{"other server", `{"type":"m.login.password","identifier":{"type":"m.id.user","user":"@henry:elsewhere"},"password":"` + pw + `"}`, 403, "M_FORBIDDEN"},
		{"3pid", `{"type":"m.login.password","identifier":{"type":"m.id.thirdparty","medium":"email","address":"a@b.c"},"password":"x"}`, 403, "M_FORBIDDEN"},
		{"unknown type", `{"type":"m.login.magic"}`, 400, "M_UNKNOWN"},
		{"not json", `nope`, 400, "M_NOT_JSON"},
		{"wrong type", `{"type":"m.login.password","password":5}`, 400, "M_BAD_JSON"},
	} {
		status, body := srv.Raw(t, http.MethodPost, "/_matrix/client/v3/login", "", tc.body)
		acctExpect(t, tc.name, status, body, tc.status, tc.code)
	}

	status, body = srv.Raw(t, http.MethodGet, "/_matrix/client/v3/account/whoami", "", "")
	acctExpect(t, "no token", status, body, 401, "M_MISSING_TOKEN")
	status, body = srv.Raw(t, http.MethodGet, "/_matrix/client/v3/account/whoami", "bogus", "")
	acctExpect(t, "bad token", status, body, 401, "M_UNKNOWN_TOKEN")
	status, body = srv.Raw(t, http.MethodGet, "/_matrix/client/r0/account/whoami", cli.AccessToken, "")
	acctExpect(t, "r0 whoami", status, body, 200, "")
	if body["is_guest"] != false || body["device_id"] != cli.DeviceID.String() {
		t.Fatalf("whoami %v", body)
	}

	if _, err := cli.Logout(ctx); err != nil {
		t.Fatal(err)
	}
	_, err := cli.Whoami(ctx)
	acctMatrixErr(t, "after logout", err, 401, "M_UNKNOWN_TOKEN")
	if _, err := full.Whoami(ctx); err != nil {
		t.Fatalf("other device after logout: %v", err)
	}
	if _, err := full.LogoutAll(ctx); err != nil {
		t.Fatal(err)
	}
	_, err = full.Whoami(ctx)
	acctMatrixErr(t, "after logout/all", err, 401, "M_UNKNOWN_TOKEN")
}

func TestAuthDevices(t *testing.T) {
	srv := testserver.Start(t)
	ctx := context.Background()
	cli := srv.Register(t, "ivy", false)
	pw := "password-ivy"
	other := acctLogin(t, srv, "ivy", pw)
	third := acctLogin(t, srv, "ivy", pw)

	devs, err := cli.GetDevicesInfo(ctx)
	if err != nil || len(devs.Devices) != 3 {
		t.Fatalf("devices = %+v, %v", devs, err)
	}
	if err := cli.SetDeviceInfo(ctx, other.DeviceID, &mautrix.ReqDeviceInfo{DisplayName: "laptop"}); err != nil {
		t.Fatal(err)
	}
	d, err := cli.GetDeviceInfo(ctx, other.DeviceID)
	if err != nil || d.DisplayName != "laptop" || d.DeviceID != other.DeviceID {
		t.Fatalf("device = %+v, %v", d, err)
	}
	_, err = cli.GetDeviceInfo(ctx, "NOSUCHDEVICE")
	acctMatrixErr(t, "get unknown device", err, 404, "M_NOT_FOUND")
	err = cli.SetDeviceInfo(ctx, "NOSUCHDEVICE", &mautrix.ReqDeviceInfo{DisplayName: "x"})
	acctMatrixErr(t, "put unknown device", err, 404, "M_NOT_FOUND")

	// DELETE /devices/{id} with UIA.
	path := "/_matrix/client/v3/devices/" + other.DeviceID.String()
	status, body := srv.Raw(t, http.MethodDelete, path, cli.AccessToken, `{}`)
	acctExpect(t, "delete without auth", status, body, 401, "")
	if acctJSON(body["flows"]) != `[{"stages":["m.login.password"]}]` {
		t.Fatalf("flows %v", body)
	}
	session := body["session"].(string)
	status, body = srv.Raw(t, http.MethodDelete, path, cli.AccessToken, acctJSON(map[string]any{"auth": acctPasswordAuth(cli.UserID, "wrong", session)}))
	acctExpect(t, "delete wrong password", status, body, 401, "M_FORBIDDEN")
	if body["session"] != session || body["flows"] == nil {
		t.Fatalf("failed stage body %v", body)
	}
	status, body = srv.Raw(t, http.MethodDelete, path, cli.AccessToken, acctJSON(map[string]any{"auth": acctPasswordAuth(cli.UserID, pw, session)}))
	acctExpect(t, "delete", status, body, 200, "")
	_, err = other.Whoami(ctx)
	acctMatrixErr(t, "deleted device's token", err, 401, "M_UNKNOWN_TOKEN")
	_, err = cli.GetDeviceInfo(ctx, other.DeviceID)
	acctMatrixErr(t, "deleted device", err, 404, "M_NOT_FOUND")

	// The completed session must not authorise deleting another device.
	status, body = srv.Raw(t, http.MethodDelete, "/_matrix/client/v3/devices/"+third.DeviceID.String(), cli.AccessToken, acctJSON(map[string]any{"auth": map[string]any{"session": session}}))
	acctExpect(t, "reused session", status, body, 401, "")

	// Another user's password does not do.
	srv.Register(t, "jack", false)
	status, body = srv.Raw(t, http.MethodPost, "/_matrix/client/v3/delete_devices", cli.AccessToken, acctJSON(map[string]any{
		"devices": []string{third.DeviceID.String()}, "auth": acctPasswordAuth(id.NewUserID("jack", srv.ServerName), "password-jack", ""),
	}))
	acctExpect(t, "someone else's password", status, body, 403, "M_FORBIDDEN")

	status, body = srv.Raw(t, http.MethodPost, "/_matrix/client/v3/delete_devices", cli.AccessToken, acctJSON(map[string]any{
		"devices": []string{third.DeviceID.String(), "ALREADYGONE"}, "auth": acctPasswordAuth(cli.UserID, pw, ""),
	}))
	acctExpect(t, "delete_devices", status, body, 200, "")
	devs, err = cli.GetDevicesInfo(ctx)
	if err != nil || len(devs.Devices) != 1 || devs.Devices[0].DeviceID != cli.DeviceID {
		t.Fatalf("devices after deletion = %+v, %v", devs, err)
	}
	status, body = srv.Raw(t, http.MethodPost, "/_matrix/client/v3/delete_devices", cli.AccessToken, `{"devices":"x"}`)
	acctExpect(t, "devices wrong type", status, body, 400, "M_BAD_JSON")
	status, body = srv.Raw(t, http.MethodPost, "/_matrix/client/v3/delete_devices", cli.AccessToken, `{}`)
	acctExpect(t, "devices missing", status, body, 400, "M_MISSING_PARAM")
}

func TestAuthPasswordChange(t *testing.T) {
	srv := testserver.Start(t)
	ctx := context.Background()
	cli := srv.Register(t, "kate", false)
	other := acctLogin(t, srv, "kate", "password-kate")

	status, body := srv.Raw(t, http.MethodPost, "/_matrix/client/v3/account/password", cli.AccessToken, `{"new_password":"new-pass"}`)
	acctExpect(t, "password without auth", status, body, 401, "")
	status, body = srv.Raw(t, http.MethodPost, "/_matrix/client/v3/account/password", cli.AccessToken, acctJSON(map[string]any{
		"new_password": "new-pass", "auth": acctPasswordAuth(cli.UserID, "password-kate", body["session"].(string)),
	}))
	acctExpect(t, "password", status, body, 200, "")

	if _, err := cli.Whoami(ctx); err != nil {
		t.Fatalf("the requesting device was logged out: %v", err)
	}
	_, err := other.Whoami(ctx)
	acctMatrixErr(t, "other device after password change", err, 401, "M_UNKNOWN_TOKEN")
	status, body = srv.Raw(t, http.MethodPost, "/_matrix/client/v3/login", "", acctJSON(map[string]any{"type": "m.login.password", "user": "kate", "password": "password-kate"}))
	acctExpect(t, "old password", status, body, 403, "M_FORBIDDEN")
	kept := acctLogin(t, srv, "kate", "new-pass")

	// logout_devices false keeps the other sessions.
	status, body = srv.Raw(t, http.MethodPost, "/_matrix/client/v3/account/password", cli.AccessToken, acctJSON(map[string]any{
		"new_password": "newer-pass", "logout_devices": false, "auth": acctPasswordAuth(cli.UserID, "new-pass", ""),
	}))
	acctExpect(t, "password keep devices", status, body, 200, "")
	if _, err := kept.Whoami(ctx); err != nil {
		t.Fatalf("logout_devices=false logged a device out: %v", err)
	}
	status, body = srv.Raw(t, http.MethodPost, "/_matrix/client/v3/account/password", cli.AccessToken, `{"auth":{}}`)
	acctExpect(t, "no new password", status, body, 400, "M_MISSING_PARAM")

	// Without an access token the password stage names the user; every device is logged out.
	status, body = srv.Raw(t, http.MethodPost, "/_matrix/client/v3/account/password", "", acctJSON(map[string]any{
		"new_password": "newest-pass", "auth": acctPasswordAuth(cli.UserID, "wrong", ""),
	}))
	acctExpect(t, "anonymous password change, wrong password", status, body, 401, "M_FORBIDDEN")
	status, body = srv.Raw(t, http.MethodPost, "/_matrix/client/v3/account/password", "", acctJSON(map[string]any{
		"new_password": "newest-pass", "auth": acctPasswordAuth(cli.UserID, "newer-pass", body["session"].(string)),
	}))
	acctExpect(t, "anonymous password change", status, body, 200, "")
	_, err = cli.Whoami(ctx)
	acctMatrixErr(t, "device after anonymous password change", err, 401, "M_UNKNOWN_TOKEN")
	acctLogin(t, srv, "kate", "newest-pass")
}

func TestAuthDeactivate(t *testing.T) {
	srv := testserver.Start(t)
	ctx := context.Background()
	cli := srv.Register(t, "leo", false)
	pw := "password-leo"
	room, roomErr := cli.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "public_chat"})

	status, body := srv.Raw(t, http.MethodPost, "/_matrix/client/v3/account/deactivate", cli.AccessToken, `{}`)
	acctExpect(t, "deactivate without auth", status, body, 401, "")
	status, body = srv.Raw(t, http.MethodPost, "/_matrix/client/v3/account/deactivate", cli.AccessToken, acctJSON(map[string]any{
		"auth": acctPasswordAuth(cli.UserID, pw, body["session"].(string)),
	}))
	acctExpect(t, "deactivate", status, body, 200, "")
	if body["id_server_unbind_result"] != "success" {
		t.Fatalf("deactivate %v", body)
	}
	_, err := cli.Whoami(ctx)
	acctMatrixErr(t, "whoami after deactivation", err, 401, "M_UNKNOWN_TOKEN")
	status, body = srv.Raw(t, http.MethodPost, "/_matrix/client/v3/login", "", acctJSON(map[string]any{"type": "m.login.password", "user": "leo", "password": pw}))
	if status != 403 || (body["errcode"] != "M_FORBIDDEN" && body["errcode"] != "M_USER_DEACTIVATED") {
		t.Fatalf("login after deactivation: %d %v", status, body)
	}
	mia := srv.Register(t, "mia", false)
	_, err = mia.GetProfile(ctx, cli.UserID)
	acctMatrixErr(t, "deactivated profile", err, 404, "M_NOT_FOUND")

	if roomErr != nil {
		t.Skipf("createRoom is not available yet (%v): not checking that rooms were left", roomErr)
	}
	if _, err := mia.JoinRoomByID(ctx, room.RoomID); err != nil {
		t.Skipf("joining is not available yet (%v): not checking that rooms were left", err)
	}
	ev, err := mia.FullStateEvent(ctx, room.RoomID, event.StateMember, cli.UserID.String())
	if err != nil {
		t.Skipf("room state is not readable yet (%v): not checking that rooms were left", err)
	}
	_ = ev.Content.ParseRaw(event.StateMember)
	if m := ev.Content.AsMember(); m.Membership != event.MembershipLeave {
		t.Fatalf("deactivated user's membership = %+v", ev.Content.Raw)
	}
}

func TestAuthProfile(t *testing.T) {
	srv := testserver.Start(t)
	ctx := context.Background()
	nina := srv.Register(t, "nina", false)
	omar := srv.Register(t, "omar", false)

	ninaPath := "/_matrix/client/v3/profile/" + url.PathEscape(nina.UserID.String())
	status, body := srv.Raw(t, http.MethodGet, ninaPath+"/displayname", "", "")
	acctExpect(t, "unset displayname", status, body, 404, "M_NOT_FOUND")
	if err := nina.SetDisplayName(ctx, "Nina N."); err != nil {
		t.Fatal(err)
	}
	avatar := id.ContentURI{Homeserver: srv.ServerName, FileID: "abcdef"}
	if err := nina.SetAvatarURL(ctx, avatar); err != nil {
		t.Fatal(err)
	}
	prof, err := omar.GetProfile(ctx, nina.UserID)
	if err != nil || prof.DisplayName != "Nina N." || prof.AvatarURL != avatar {
		t.Fatalf("profile = %+v, %v", prof, err)
	}
	dn, err := omar.GetDisplayName(ctx, nina.UserID)
	if err != nil || dn.DisplayName != "Nina N." {
		t.Fatalf("displayname = %+v, %v", dn, err)
	}
	// Profiles are public: no token needed.
	status, body = srv.Raw(t, http.MethodGet, ninaPath, "", "")
	acctExpect(t, "anonymous profile", status, body, 200, "")
	for _, tc := range []struct {
		name, method, path, token, body string
		status                          int
		code                            string
	}{
		{"someone else's", http.MethodPut, ninaPath + "/displayname", omar.AccessToken, `{"displayname":"x"}`, 403, "M_FORBIDDEN"},
		{"unknown user", http.MethodGet, "/_matrix/client/v3/profile/@nobody:" + srv.ServerName, "", "", 404, "M_NOT_FOUND"},
		{"bad user ID", http.MethodGet, "/_matrix/client/v3/profile/nobody", "", "", 400, "M_INVALID_PARAM"},
		{"missing key", http.MethodPut, ninaPath + "/displayname", nina.AccessToken, `{}`, 400, "M_MISSING_PARAM"},
		{"wrong type", http.MethodPut, ninaPath + "/displayname", nina.AccessToken, `{"displayname":1}`, 400, "M_BAD_JSON"},
		{"not json", http.MethodPut, ninaPath + "/displayname", nina.AccessToken, `{"displayname":`, 400, "M_NOT_JSON"},
		{"avatar not a string", http.MethodPut, ninaPath + "/avatar_url", nina.AccessToken, `{"avatar_url":5}`, 400, "M_BAD_JSON"},
		{"bad key", http.MethodGet, ninaPath + "/Bad-Key", "", "", 400, "M_INVALID_PARAM"},
		{"unstored key", http.MethodPut, ninaPath + "/m.tz", nina.AccessToken, `{"m.tz":"Europe/London"}`, 403, "M_FORBIDDEN"},
		{"unstored key read", http.MethodGet, ninaPath + "/m.tz", "", "", 404, "M_NOT_FOUND"},
		{"no token", http.MethodPut, ninaPath + "/displayname", "", `{"displayname":"x"}`, 401, "M_MISSING_TOKEN"},
	} {
		status, body := srv.Raw(t, tc.method, tc.path, tc.token, tc.body)
		acctExpect(t, tc.name, status, body, tc.status, tc.code)
	}

	status, body = srv.Raw(t, http.MethodDelete, ninaPath+"/avatar_url", nina.AccessToken, "")
	acctExpect(t, "delete avatar", status, body, 200, "")
	prof, err = nina.GetProfile(ctx, nina.UserID)
	if err != nil || !prof.AvatarURL.IsEmpty() || prof.DisplayName != "Nina N." {
		t.Fatalf("profile after deleting the avatar = %+v, %v", prof, err)
	}

	// Propagation to member events.
	room, err := nina.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "private_chat"})
	if err != nil {
		t.Skipf("createRoom is not available yet (%v): not checking profile propagation", err)
	}
	if err := nina.SetDisplayName(ctx, "Nina Two"); err != nil {
		t.Fatal(err)
	}
	ev, err := nina.FullStateEvent(ctx, room.RoomID, event.StateMember, nina.UserID.String())
	if err != nil {
		t.Skipf("room state is not readable yet (%v): not checking profile propagation", err)
	}
	_ = ev.Content.ParseRaw(event.StateMember)
	if m := ev.Content.AsMember(); m.Membership != event.MembershipJoin || m.Displayname != "Nina Two" {
		t.Fatalf("member event after the profile change = %+v", ev.Content.Raw)
	}
}

func TestAuthPushRules(t *testing.T) {
	srv := testserver.Start(t)
	ctx := context.Background()
	cli := srv.Register(t, "pia", false)
	rs, err := cli.GetPushRules(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs.Override) == 0 || rs.Override[0].RuleID != ".m.rule.master" || rs.Override[0].Enabled {
		t.Fatalf("override rules start with %+v", rs.Override)
	}
	if len(rs.Underride) == 0 || rs.Underride[len(rs.Underride)-1].RuleID != ".m.rule.encrypted" {
		t.Fatalf("underride rules = %+v", rs.Underride)
	}
	r, err := cli.GetPushRule(ctx, "global", pushrules.OverrideRule, ".m.rule.invite_for_me")
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Conditions) != 3 || r.Conditions[2].Pattern != cli.UserID.String() {
		t.Fatalf("invite_for_me = %+v", r)
	}
	_, err = cli.GetPushRule(ctx, "global", pushrules.OverrideRule, ".m.rule.nope")
	acctMatrixErr(t, "unknown rule", err, 404, "M_NOT_FOUND")

	status, body := srv.Raw(t, http.MethodGet, "/_matrix/client/v3/pushrules/", cli.AccessToken, "")
	acctExpect(t, "pushrules", status, body, 200, "")
	global := body["global"].(map[string]any)
	for _, kind := range []string{"content", "override", "room", "sender", "underride"} {
		if _, ok := global[kind].([]any); !ok {
			t.Fatalf("ruleset has no %s array: %v", kind, global)
		}
	}
	if got := fmt.Sprint(global["override"].([]any)[4].(map[string]any)["actions"]); got != "[notify map[set_tweak:sound value:default] map[set_tweak:highlight]]" {
		t.Fatalf("is_user_mention actions %s", got)
	}
}

func TestAuthThreepids(t *testing.T) {
	srv := testserver.Start(t)
	cli := srv.Register(t, "quinn", false)
	for _, tc := range []struct {
		name, method, path, body string
		status                   int
		code                     string
	}{
		{"list", http.MethodGet, "/account/3pid", "", 200, ""},
		{"email token", http.MethodPost, "/account/3pid/email/requestToken", `{"client_secret":"s","email":"a@b.c","send_attempt":1}`, 400, "M_THREEPID_MEDIUM_NOT_SUPPORTED"},
		{"msisdn token", http.MethodPost, "/account/3pid/msisdn/requestToken", `{"client_secret":"s","country":"GB","phone_number":"1","send_attempt":1}`, 400, "M_THREEPID_MEDIUM_NOT_SUPPORTED"},
		{"add", http.MethodPost, "/account/3pid/add", `{"client_secret":"s","sid":"x"}`, 403, "M_THREEPID_AUTH_FAILED"},
		{"bind", http.MethodPost, "/account/3pid/bind", `{"client_secret":"s","sid":"x","id_server":"i","id_access_token":"t"}`, 400, "M_SERVER_NOT_TRUSTED"},
		{"delete", http.MethodPost, "/account/3pid/delete", `{"medium":"email","address":"a@b.c"}`, 200, ""},
		{"unbind", http.MethodPost, "/account/3pid/unbind", `{"medium":"email","address":"a@b.c"}`, 200, ""},
		{"register email", http.MethodPost, "/register/email/requestToken", `{"client_secret":"s","email":"a@b.c","send_attempt":1}`, 403, "M_THREEPID_DENIED"},
		{"reset email", http.MethodPost, "/account/password/email/requestToken", `{"client_secret":"s","email":"a@b.c","send_attempt":1}`, 400, "M_THREEPID_NOT_FOUND"},
	} {
		status, body := srv.Raw(t, tc.method, "/_matrix/client/v3"+tc.path, cli.AccessToken, tc.body)
		acctExpect(t, tc.name, status, body, tc.status, tc.code)
	}
}
