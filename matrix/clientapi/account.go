package clientapi

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/hearth-home/hearth/matrix/merr"
)

// Account management: whoami, password change, deactivation, and the third-party identifier
// endpoints, answered as a server that keeps no 3PIDs and sends no mail or SMS.

func (a *API) routesAccount(g *echo.Group) {
	a.both(g, http.MethodGet, "/account/whoami", a.whoami, a.auth)
	a.both(g, http.MethodPost, "/account/password", a.changePassword, a.optionalAuth, a.rateLimited)
	a.both(g, http.MethodPost, "/account/deactivate", a.deactivate, a.optionalAuth, a.rateLimited)
	a.both(g, http.MethodPost, "/account/password/email/requestToken", a.passwordRequestToken, a.rateLimited)
	a.both(g, http.MethodPost, "/account/password/msisdn/requestToken", a.passwordRequestToken, a.rateLimited)

	a.both(g, http.MethodGet, "/account/3pid", a.threepids, a.auth)
	a.both(g, http.MethodPost, "/account/3pid", a.threepidAddLegacy, a.auth)
	a.both(g, http.MethodPost, "/account/3pid/add", a.threepidAdd, a.auth)
	a.both(g, http.MethodPost, "/account/3pid/bind", a.threepidBind, a.auth)
	a.both(g, http.MethodPost, "/account/3pid/delete", a.threepidRemove, a.auth)
	a.both(g, http.MethodPost, "/account/3pid/unbind", a.threepidRemove, a.auth)
	a.both(g, http.MethodPost, "/account/3pid/email/requestToken", a.threepidRequestToken, a.auth, a.rateLimited)
	a.both(g, http.MethodPost, "/account/3pid/msisdn/requestToken", a.threepidRequestToken, a.auth, a.rateLimited)
}

func (a *API) whoami(c echo.Context) error {
	s := session(c)
	resp := map[string]any{"user_id": s.User.String(), "is_guest": false}
	if s.Device != "" {
		resp["device_id"] = s.Device
	}
	return c.JSON(http.StatusOK, resp)
}

// passwordFlows is the UIA offered by endpoints that need the user's password again.
var passwordFlows = [][]string{{stagePassword}}

type changePasswordRequest struct {
	Auth          *authDict `json:"auth"`
	NewPassword   string    `json:"new_password"`
	LogoutDevices *bool     `json:"logout_devices"`
}

func (a *API) changePassword(c echo.Context) error {
	var req changePasswordRequest
	if err := readJSON(c, &req); err != nil {
		return err
	}
	if req.NewPassword == "" {
		return merr.MissingParam("new_password is required")
	}
	if err := a.checkPasswordStrength(req.NewPassword); err != nil {
		return err
	}
	spec := uiaSpec{op: "account_password", flows: passwordFlows}
	keep := ""
	if s := session(c); s != nil {
		spec.user, keep = s.User, s.Device
	}
	res, err := a.uia(c, req.Auth, spec)
	if res == nil {
		return err
	}
	lp, err := a.accounts.LocalpartOf(res.user.String())
	if err != nil {
		return err
	}
	logout := req.LogoutDevices == nil || *req.LogoutDevices
	if err := a.accounts.SetPassword(c.Request().Context(), lp, req.NewPassword, logout, keep); err != nil {
		return err
	}
	a.accounts.UIADone(res.session)
	return noContent(c)
}

type deactivateRequest struct {
	Auth     *authDict `json:"auth"`
	IDServer string    `json:"id_server"`
	Erase    bool      `json:"erase"`
}

func (a *API) deactivate(c echo.Context) error {
	var req deactivateRequest
	if err := readJSON(c, &req); err != nil {
		return err
	}
	spec := uiaSpec{op: "account_deactivate", flows: passwordFlows}
	if s := session(c); s != nil {
		spec.user = s.User
	}
	res, err := a.uia(c, req.Auth, spec)
	if res == nil {
		return err
	}
	lp, err := a.accounts.LocalpartOf(res.user.String())
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	// Deactivate first: from here on the account cannot log in and its tokens are gone, even
	// if leaving some room fails below.
	if err := a.accounts.Deactivate(ctx, lp); err != nil {
		return err
	}
	a.accounts.UIADone(res.session)
	if err := a.rooms.LeaveAll(ctx, res.user); err != nil {
		a.log.Warn("deactivated user could not leave every room", "user", res.user, "err", err)
	}
	// We keep no 3PIDs, so there was nothing to unbind from an identity server.
	return c.JSON(http.StatusOK, map[string]string{"id_server_unbind_result": "success"})
}

// passwordRequestToken answers /account/password/{email,msisdn}/requestToken: no account has
// a third-party identifier here, so none can be found.
func (a *API) passwordRequestToken(c echo.Context) error {
	var body map[string]any
	if err := readJSON(c, &body); err != nil {
		return err
	}
	return &merr.Error{Status: http.StatusBadRequest, Code: "M_THREEPID_NOT_FOUND", Message: "no account is associated with this third-party identifier"}
}

func (a *API) threepids(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]any{"threepids": []any{}})
}

// threepidCreds is the credentials object of the deprecated POST /account/3pid.
type threepidCreds struct {
	ClientSecret  string `json:"client_secret"`
	IDServer      string `json:"id_server"`
	IDAccessToken string `json:"id_access_token"`
	SID           string `json:"sid"`
}

func (a *API) threepidAddLegacy(c echo.Context) error {
	var req struct {
		Creds *threepidCreds `json:"three_pid_creds"`
	}
	if err := readJSON(c, &req); err != nil {
		return err
	}
	if req.Creds == nil {
		return merr.MissingParam("three_pid_creds is required")
	}
	return threepidAuthFailed()
}

// threepidAdd is POST /account/3pid/add. The sid would come from our own requestToken, which
// never issues one, so no request can succeed; fail before asking for the user's password.
func (a *API) threepidAdd(c echo.Context) error {
	var req struct {
		Auth         *authDict `json:"auth"`
		ClientSecret string    `json:"client_secret"`
		SID          string    `json:"sid"`
	}
	if err := readJSON(c, &req); err != nil {
		return err
	}
	if req.ClientSecret == "" || req.SID == "" {
		return merr.MissingParam("client_secret and sid are required")
	}
	return threepidAuthFailed()
}

func threepidAuthFailed() *merr.Error {
	return &merr.Error{Status: http.StatusForbidden, Code: "M_THREEPID_AUTH_FAILED", Message: "no validated third-party identifier session matches these credentials"}
}

// threepidBind is POST /account/3pid/bind: this server talks to no identity server.
func (a *API) threepidBind(c echo.Context) error {
	var req threepidCreds
	if err := readJSON(c, &req); err != nil {
		return err
	}
	if req.ClientSecret == "" || req.IDServer == "" || req.IDAccessToken == "" || req.SID == "" {
		return merr.MissingParam("client_secret, id_server, id_access_token and sid are required")
	}
	return &merr.Error{Status: http.StatusBadRequest, Code: "M_SERVER_NOT_TRUSTED", Message: "this server does not use identity servers"}
}

// threepidRemove is POST /account/3pid/delete and /unbind. The account has no 3PIDs and no
// identity server to unbind from, which the spec answers with "no-support".
func (a *API) threepidRemove(c echo.Context) error {
	var req struct {
		IDServer string `json:"id_server"`
		Medium   string `json:"medium"`
		Address  string `json:"address"`
	}
	if err := readJSON(c, &req); err != nil {
		return err
	}
	if req.Medium == "" || req.Address == "" {
		return merr.MissingParam("medium and address are required")
	}
	if req.Medium != "email" && req.Medium != "msisdn" {
		return merr.InvalidParam("medium must be email or msisdn")
	}
	return c.JSON(http.StatusOK, map[string]string{"id_server_unbind_result": "no-support"})
}

// threepidRequestToken is /account/3pid/{email,msisdn}/requestToken: this server cannot send
// mail or SMS, which the spec names M_THREEPID_MEDIUM_NOT_SUPPORTED.
func (a *API) threepidRequestToken(c echo.Context) error {
	var body map[string]any
	if err := readJSON(c, &body); err != nil {
		return err
	}
	return &merr.Error{Status: http.StatusBadRequest, Code: "M_THREEPID_MEDIUM_NOT_SUPPORTED", Message: "this server does not support adding third-party identifiers"}
}
