package clientapi

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/hearth-home/hearth/matrix/accounts"
	"github.com/hearth-home/hearth/matrix/merr"
)

// Session management and registration: /login, /logout, /register and friends, and the
// Synapse-compatible shared-secret registration that admin tools use.

const (
	// maxDeviceIDLen and maxDeviceNameLen bound what clients may store per device.
	maxDeviceIDLen   = 255
	maxDeviceNameLen = 256
	// synapseNonceTTL is how long a shared-secret registration nonce stays usable (as Synapse).
	synapseNonceTTL = 60 * time.Second
	// synapseNonceOp marks UIA-store sessions that are shared-secret nonces.
	synapseNonceOp = "synapse_admin_register_nonce"
)

func (a *API) routesAuth(g *echo.Group) {
	a.both(g, http.MethodGet, "/login", a.loginFlows, a.rateLimited)
	a.both(g, http.MethodPost, "/login", a.login, a.rateLimited)
	a.both(g, http.MethodPost, "/logout", a.logout, a.auth)
	a.both(g, http.MethodPost, "/logout/all", a.logoutAll, a.auth)
	a.both(g, http.MethodPost, "/register", a.register, a.rateLimited)
	a.both(g, http.MethodGet, "/register/available", a.registerAvailable, a.rateLimited)
	a.both(g, http.MethodPost, "/register/email/requestToken", a.registerRequestToken, a.rateLimited)
	a.both(g, http.MethodPost, "/register/msisdn/requestToken", a.registerRequestToken, a.rateLimited)
	g.GET("/v1/register/m.login.registration_token/validity", a.regTokenValidity, a.rateLimited)
}

// routesSynapseAdmin mounts /_synapse/admin/v1/register (shared-secret registration) on the root.
func (a *API) routesSynapseAdmin(e *echo.Echo) {
	e.GET("/_synapse/admin/v1/register", a.synapseNonce, a.rateLimited)
	e.POST("/_synapse/admin/v1/register", a.synapseRegister, a.rateLimited)
}

func (a *API) loginFlows(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]any{"flows": []map[string]any{{"type": stagePassword}, loginTokenFlow}})
}

type loginRequest struct {
	Type                     string          `json:"type"`
	Identifier               *userIdentifier `json:"identifier"`
	User                     string          `json:"user"`
	Medium                   string          `json:"medium"`
	Address                  string          `json:"address"`
	Password                 string          `json:"password"`
	Token                    string          `json:"token"`
	DeviceID                 string          `json:"device_id"`
	InitialDeviceDisplayName string          `json:"initial_device_display_name"`
	RefreshToken             bool            `json:"refresh_token"`
}

// loginResponse is the body of a successful /login or /register.
type loginResponse struct {
	UserID      string         `json:"user_id"`
	AccessToken string         `json:"access_token,omitempty"`
	DeviceID    string         `json:"device_id,omitempty"`
	HomeServer  string         `json:"home_server"`
	WellKnown   map[string]any `json:"well_known,omitempty"`
	// Only when the client asked for a refresh token (tokens.go).
	RefreshToken string `json:"refresh_token,omitempty"`
	ExpiresInMS  int64  `json:"expires_in_ms,omitempty"`
}

func (a *API) login(c echo.Context) error {
	var req loginRequest
	if err := readJSON(c, &req); err != nil {
		return err
	}
	switch req.Type {
	case stagePassword:
	case stageLoginToken:
		return a.loginWithToken(c, &req)
	case "":
		return merr.MissingParam("type is required")
	default:
		return merr.Unknown("bad login type %q", req.Type)
	}
	if req.Identifier == nil && req.User == "" && (req.Medium != "" || req.Address != "") {
		return merr.Forbidden("no account is associated with this third-party identifier")
	}
	user, err := identifiedUser(req.Identifier, req.User)
	if err != nil {
		return err
	}
	if req.Password == "" {
		return merr.MissingParam("password is required")
	}
	if err := checkDeviceParams(req.DeviceID, req.InitialDeviceDisplayName); err != nil {
		return err
	}
	lp, err := a.accounts.LocalpartOf(user)
	if err != nil {
		return merr.Forbidden("invalid username or password")
	}
	ctx := c.Request().Context()
	if _, err := a.accounts.CheckPassword(ctx, lp, req.Password); err != nil {
		return err
	}
	return a.finishLogin(c, lp, accounts.LoginOpts{DeviceID: req.DeviceID, DisplayName: req.InitialDeviceDisplayName, Refresh: req.RefreshToken})
}

// checkDeviceParams bounds client-chosen device IDs and names.
func checkDeviceParams(deviceID, displayName string) error {
	if len(deviceID) > maxDeviceIDLen {
		return merr.InvalidParam("device_id is longer than %d bytes", maxDeviceIDLen)
	}
	if utf8.RuneCountInString(displayName) > maxDeviceNameLen {
		return merr.InvalidParam("device display name is longer than %d characters", maxDeviceNameLen)
	}
	return nil
}

func (a *API) logout(c echo.Context) error {
	if err := a.accounts.Logout(c.Request().Context(), session(c)); err != nil {
		return err
	}
	return noContent(c)
}

func (a *API) logoutAll(c echo.Context) error {
	if err := a.accounts.LogoutAll(c.Request().Context(), session(c).User); err != nil {
		return err
	}
	return noContent(c)
}

type registerRequest struct {
	Type                     string    `json:"type"` // m.login.application_service (appservice.go)
	Auth                     *authDict `json:"auth"`
	Username                 string    `json:"username"`
	Password                 string    `json:"password"`
	DeviceID                 string    `json:"device_id"`
	InitialDeviceDisplayName string    `json:"initial_device_display_name"`
	InhibitLogin             bool      `json:"inhibit_login"`
	RefreshToken             bool      `json:"refresh_token"`
}

// registerFlows are the UIA flows /register offers.
func (a *API) registerFlows() [][]string {
	if a.opts.OpenRegistration {
		return [][]string{{stageDummy}, {stageRegToken}}
	}
	return [][]string{{stageRegToken}}
}

func (a *API) register(c echo.Context) error {
	switch kind := c.QueryParam("kind"); kind {
	case "", "user":
	case "guest":
		return merr.GuestAccessForbidden("guest access is not enabled on this server")
	default:
		return merr.InvalidParam("unknown account kind %q", kind)
	}
	var req registerRequest
	if err := readJSON(c, &req); err != nil {
		return err
	}
	if done, err := a.appServiceRegister(c, &req); done || err != nil { // appservice.go
		return err
	}
	ctx := c.Request().Context()
	// The spec asks for the username and password checks before user-interactive auth.
	lp := strings.ToLower(req.Username)
	if lp != "" {
		if err := a.accounts.Available(ctx, lp); err != nil {
			return err
		}
	}
	if req.Password != "" {
		if err := a.checkPasswordStrength(req.Password); err != nil {
			return err
		}
	}
	if err := checkDeviceParams(req.DeviceID, req.InitialDeviceDisplayName); err != nil {
		return err
	}
	res, err := a.uia(c, req.Auth, uiaSpec{op: "register", flows: a.registerFlows()})
	if res == nil {
		return err
	}
	if req.Password == "" {
		return merr.MissingParam("password is required")
	}
	if lp == "" {
		if lp, err = a.generateLocalpart(c); err != nil {
			return err
		}
	}
	if tok := res.data[uiaKeyRegToken]; tok != "" {
		if err := a.accounts.UseRegToken(ctx, tok); err != nil {
			return err
		}
	}
	if _, err := a.accounts.Register(ctx, lp, req.Password, false); err != nil {
		return err
	}
	a.accounts.UIADone(res.session)
	return a.registered(c, lp, req.DeviceID, req.InitialDeviceDisplayName, req.InhibitLogin, req.RefreshToken)
}

// registered answers a successful registration, logging in unless inhibited.
func (a *API) registered(c echo.Context, lp, deviceID, deviceName string, inhibitLogin, refresh bool) error {
	resp := loginResponse{UserID: a.accounts.UserID(lp).String(), HomeServer: a.accounts.ServerName()}
	if !inhibitLogin {
		res, err := a.accounts.LoginSession(c.Request().Context(), lp, accounts.LoginOpts{DeviceID: deviceID, DisplayName: deviceName, Refresh: refresh})
		if err != nil {
			return err
		}
		resp.AccessToken, resp.DeviceID = res.AccessToken, res.DeviceID
		resp.RefreshToken, resp.ExpiresInMS = res.RefreshToken, res.ExpiresIn.Milliseconds()
	}
	return c.JSON(http.StatusOK, resp)
}

// checkPasswordStrength applies the configured minimum length (0: no minimum).
func (a *API) checkPasswordStrength(pw string) error {
	if n := a.opts.MinPasswordLength; n > 0 && utf8.RuneCountInString(pw) < n {
		return merr.WeakPassword("password must be at least %d characters long", n)
	}
	return nil
}

// generateLocalpart picks a free localpart for a registration without a username.
func (a *API) generateLocalpart(c echo.Context) (string, error) {
	const alpha = "abcdefghijklmnopqrstuvwxyz0123456789"
	for range 8 {
		b := make([]byte, 10)
		_, _ = rand.Read(b)
		for i := range b {
			b[i] = alpha[int(b[i])%len(alpha)]
		}
		lp := "u" + string(b)
		err := a.accounts.Available(c.Request().Context(), lp)
		if err == nil {
			return lp, nil
		}
		if me, ok := merr.As(err); !ok || me.Code != "M_USER_IN_USE" {
			return "", err
		}
	}
	return "", merr.Internal("could not generate a free user ID")
}

func (a *API) registerAvailable(c echo.Context) error {
	u := c.QueryParam("username")
	if u == "" {
		return merr.MissingParam("username is required")
	}
	if err := a.accounts.Available(c.Request().Context(), strings.ToLower(u)); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]bool{"available": true})
}

// registerRequestToken answers /register/{email,msisdn}/requestToken: this server sends no
// mail or SMS and keeps no third-party identifiers, so none may be bound (403 M_THREEPID_DENIED).
func (a *API) registerRequestToken(c echo.Context) error {
	var body map[string]any
	if err := readJSON(c, &body); err != nil {
		return err
	}
	return threepidDenied()
}

func threepidDenied() *merr.Error {
	return &merr.Error{Status: http.StatusForbidden, Code: "M_THREEPID_DENIED", Message: "this server does not support third-party identifiers"}
}

func (a *API) regTokenValidity(c echo.Context) error {
	tok := c.QueryParam("token")
	if tok == "" {
		return merr.MissingParam("token is required")
	}
	ok, err := a.accounts.RegTokenValid(c.Request().Context(), tok)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]bool{"valid": ok})
}

// Shared-secret registration (Synapse's admin API, used by admin tools and bridges' setup
// scripts): GET hands out a single-use nonce, POST registers with an HMAC-SHA1 over
// nonce NUL username NUL password NUL ("admin"|"notadmin") [NUL user_type].

func (a *API) synapseNonce(c echo.Context) error {
	if a.opts.SharedSecret == "" {
		return merr.Unknown("shared secret registration is not enabled")
	}
	s := a.accounts.UIASession("")
	a.accounts.UIAComplete(s.ID, synapseNonceOp, map[string]string{uiaKeyOp: synapseNonceOp, "ts": strconv.FormatInt(time.Now().UnixMilli(), 10)})
	return c.JSON(http.StatusOK, map[string]string{"nonce": s.ID})
}

type synapseRegisterRequest struct {
	Nonce       string  `json:"nonce"`
	Username    *string `json:"username"`
	Password    *string `json:"password"`
	Admin       bool    `json:"admin"`
	UserType    string  `json:"user_type"`
	DisplayName string  `json:"displayname"`
	MAC         string  `json:"mac"`
}

func (a *API) synapseRegister(c echo.Context) error {
	if a.opts.SharedSecret == "" {
		return merr.Unknown("shared secret registration is not enabled")
	}
	var req synapseRegisterRequest
	if err := readJSON(c, &req); err != nil {
		return err
	}
	if req.Nonce == "" {
		return merr.MissingParam("nonce is required")
	}
	if err := a.takeSynapseNonce(req.Nonce); err != nil {
		return err
	}
	switch {
	case req.Username == nil || *req.Username == "":
		return merr.MissingParam("username is required")
	case strings.ContainsRune(*req.Username, 0) || len(*req.Username) > 512:
		return merr.InvalidUsername("invalid username")
	case req.Password == nil || *req.Password == "":
		return merr.MissingParam("password is required")
	case strings.ContainsRune(*req.Password, 0) || len(*req.Password) > 512:
		return merr.InvalidParam("invalid password")
	case req.MAC == "":
		return merr.MissingParam("mac is required")
	}
	want := synapseMAC(a.opts.SharedSecret, req.Nonce, *req.Username, *req.Password, req.Admin, req.UserType)
	got, err := hex.DecodeString(strings.ToLower(req.MAC))
	if err != nil || !hmac.Equal(got, want) {
		return merr.Forbidden("HMAC incorrect")
	}
	ctx := c.Request().Context()
	lp := strings.ToLower(*req.Username)
	if _, err := a.accounts.Register(ctx, lp, *req.Password, req.Admin); err != nil {
		return err
	}
	if req.DisplayName != "" {
		dn := req.DisplayName
		if err := a.accounts.SetProfile(ctx, a.accounts.UserID(lp), &dn, nil); err != nil {
			return err
		}
	}
	return a.registered(c, lp, "", "", false, false)
}

// takeSynapseNonce consumes a nonce handed out by synapseNonce.
func (a *API) takeSynapseNonce(nonce string) error {
	s := a.accounts.UIASession(nonce)
	a.accounts.UIADone(s.ID) // single use; also drops the session a wrong nonce just created
	if s.ID != nonce || s.Data[uiaKeyOp] != synapseNonceOp {
		return merr.Unknown("unrecognised nonce")
	}
	ts, err := strconv.ParseInt(s.Data["ts"], 10, 64)
	if err != nil || time.Since(time.UnixMilli(ts)) > synapseNonceTTL {
		return merr.Unknown("nonce has expired")
	}
	return nil
}

// synapseMAC computes the shared-secret registration MAC.
func synapseMAC(secret, nonce, user, password string, admin bool, userType string) []byte {
	m := hmac.New(sha1.New, []byte(secret))
	role := "notadmin"
	if admin {
		role = "admin"
	}
	m.Write([]byte(nonce + "\x00" + user + "\x00" + password + "\x00" + role))
	if userType != "" {
		m.Write([]byte("\x00" + userType))
	}
	return m.Sum(nil)
}
