package fedapi

import (
	"encoding/json"

	"github.com/labstack/echo/v4"

	"github.com/hearth-home/hearth/matrix/merr"
)

// Device management and end-to-end encryption (spec: user_devices.yaml, user_keys.yaml):
// local users' device lists, device and cross-signing keys, and one-time key claims. Users
// of other servers are refused (/user/devices) or ignored (key query and claim).

func (a *api) routesKeys(g *echo.Group, mw []echo.MiddlewareFunc) {
	g.GET("/v1/user/devices/:userId", a.userDevices, mw...)
	g.POST("/v1/user/keys/query", a.keysQuery, mw...)
	g.POST("/v1/user/keys/claim", a.keysClaim, mw...)
}

func (a *api) needKeys() error {
	if a.d.Keys == nil {
		return merr.Unrecognized("end-to-end encryption is not served here")
	}
	return nil
}

func (a *api) userDevices(c echo.Context) error {
	if _, err := Origin(c); err != nil {
		return err
	}
	if err := a.needKeys(); err != nil {
		return err
	}
	user, err := userIDValue(c.Param("userId"))
	if err != nil {
		return err
	}
	if user.Homeserver() != a.d.ServerName {
		return merr.InvalidParam("user %s is not local to this server", user)
	}
	lp, _, _ := user.Parse()
	if _, err := a.d.Accounts.User(c.Request().Context(), lp); err != nil {
		return err // 404 M_NOT_FOUND
	}
	out, err := a.d.Keys.FedUserDevices(c.Request().Context(), user)
	if err != nil {
		return err
	}
	return ok(c, out)
}

func (a *api) keysQuery(c echo.Context) error {
	if _, err := Origin(c); err != nil {
		return err
	}
	if err := a.needKeys(); err != nil {
		return err
	}
	var body struct {
		DeviceKeys map[string][]string `json:"device_keys"`
	}
	if err := readJSON(c, &body); err != nil {
		return err
	}
	if body.DeviceKeys == nil {
		return merr.BadJSON("device_keys is required")
	}
	out, err := a.d.Keys.FedQuery(c.Request().Context(), body.DeviceKeys)
	if err != nil {
		return err
	}
	return ok(c, out)
}

func (a *api) keysClaim(c echo.Context) error {
	if _, err := Origin(c); err != nil {
		return err
	}
	if err := a.needKeys(); err != nil {
		return err
	}
	var body struct {
		OneTimeKeys map[string]map[string]string `json:"one_time_keys"`
	}
	if err := readJSON(c, &body); err != nil {
		return err
	}
	if body.OneTimeKeys == nil {
		return merr.BadJSON("one_time_keys is required")
	}
	keys, err := a.d.Keys.FedClaim(c.Request().Context(), body.OneTimeKeys)
	if err != nil {
		return err
	}
	if keys == nil {
		keys = map[string]map[string]map[string]json.RawMessage{}
	}
	return ok(c, map[string]any{"one_time_keys": keys})
}
