package clientapi

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/hearth-home/hearth/matrix/accounts"
	"github.com/hearth-home/hearth/matrix/merr"
)

// Tokens beyond the password login (spec: login_token.yaml, refresh.yaml, and login.yaml's
// m.login.token flow and refresh_token parameter): a logged-in client mints a single-use login
// token for another device; clients that ask for it get expiring access tokens and refresh
// tokens.

const stageLoginToken = "m.login.token"

func (a *API) routesTokens(g *echo.Group) {
	g.POST("/v1/login/get_token", a.getLoginToken, a.auth, a.rateLimited)
	a.both(g, http.MethodPost, "/refresh", a.refreshToken, a.rateLimited)
}

// loginTokenFlow is the m.login.token entry of GET /login.
var loginTokenFlow = map[string]any{"type": stageLoginToken, "get_login_token": true}

// finishLogin opens the session of a login that has proved who the user is, and answers it.
func (a *API) finishLogin(c echo.Context, lp string, o accounts.LoginOpts) error {
	res, err := a.accounts.LoginSession(c.Request().Context(), lp, o)
	if err != nil {
		return err
	}
	resp := loginResponse{UserID: a.accounts.UserID(lp).String(), AccessToken: res.AccessToken, DeviceID: res.DeviceID,
		HomeServer: a.accounts.ServerName(), RefreshToken: res.RefreshToken, ExpiresInMS: res.ExpiresIn.Milliseconds()}
	if a.opts.PublicBaseURL != "" {
		resp.WellKnown = map[string]any{"m.homeserver": map[string]string{"base_url": a.baseURL(c)}}
	}
	return c.JSON(http.StatusOK, resp)
}

// loginWithToken is POST /login with type m.login.token.
func (a *API) loginWithToken(c echo.Context, req *loginRequest) error {
	if req.Token == "" {
		return merr.MissingParam("token is required")
	}
	if err := checkDeviceParams(req.DeviceID, req.InitialDeviceDisplayName); err != nil {
		return err
	}
	lp, err := a.accounts.UseLoginToken(c.Request().Context(), req.Token)
	if err != nil {
		return err
	}
	return a.finishLogin(c, lp, accounts.LoginOpts{DeviceID: req.DeviceID, DisplayName: req.InitialDeviceDisplayName, Refresh: req.RefreshToken})
}

// getLoginToken is POST /login/get_token. The user proves their password every time (the spec
// forbids reusing a recent authentication here): UIA sessions are single-use.
func (a *API) getLoginToken(c echo.Context) error {
	var body struct {
		Auth *authDict `json:"auth"`
	}
	if err := readJSON(c, &body); err != nil {
		return err
	}
	sess := session(c)
	res, err := a.uia(c, body.Auth, uiaSpec{op: "login_get_token", flows: passwordFlows, user: sess.User})
	if res == nil {
		return err
	}
	tok, ttl, err := a.accounts.CreateLoginToken(c.Request().Context(), sess.User)
	if err != nil {
		return err
	}
	a.accounts.UIADone(res.session)
	return c.JSON(http.StatusOK, map[string]any{"login_token": tok, "expires_in_ms": ttl.Milliseconds()})
}

// refreshToken is POST /refresh.
func (a *API) refreshToken(c echo.Context) error {
	var body struct {
		RefreshToken *string `json:"refresh_token"`
	}
	if err := readJSON(c, &body); err != nil {
		return err
	}
	if body.RefreshToken == nil || *body.RefreshToken == "" {
		return merr.MissingParam("refresh_token is required")
	}
	res, err := a.accounts.Refresh(c.Request().Context(), *body.RefreshToken)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"access_token": res.AccessToken, "refresh_token": res.RefreshToken, "expires_in_ms": res.ExpiresIn.Milliseconds()})
}
