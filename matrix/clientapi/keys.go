package clientapi

import (
	"encoding/json"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/hearth-home/hearth/matrix/keys"
	"github.com/hearth-home/hearth/matrix/merr"
)

// End-to-end encryption: device and one-time keys, device-list changes, cross-signing.
// The key backup handlers are in room_keys.go, send-to-device in todevice.go.

func (a *API) routesKeys(g *echo.Group) {
	if a.deps.Keys == nil {
		return
	}
	a.both(g, http.MethodPost, "/keys/upload", a.keysUpload, a.auth)
	a.both(g, http.MethodPost, "/keys/query", a.keysQuery, a.auth)
	a.both(g, http.MethodPost, "/keys/claim", a.keysClaim, a.auth)
	a.both(g, http.MethodGet, "/keys/changes", a.keysChanges, a.auth)
	// mautrix-go (v0.32) sends /keys/changes as POST with the tokens in the query string;
	// answering it too costs nothing.
	a.both(g, http.MethodPost, "/keys/changes", a.keysChanges, a.auth)
	a.both(g, http.MethodPost, "/keys/device_signing/upload", a.keysDeviceSigning, a.auth)
	a.both(g, http.MethodPost, "/keys/signatures/upload", a.keysSignatures, a.auth)
	a.routesToDevice(g)
	a.routesRoomKeys(g)
}

func (a *API) keysUpload(c echo.Context) error {
	var req keys.UploadRequest
	if err := readJSON(c, &req); err != nil {
		return err
	}
	s := session(c)
	counts, err := a.deps.Keys.Upload(c.Request().Context(), s.User, s.Device, &req)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"one_time_key_counts": counts})
}

func (a *API) keysQuery(c echo.Context) error {
	var req struct {
		DeviceKeys map[string][]string `json:"device_keys"`
	}
	if err := readJSON(c, &req); err != nil {
		return err
	}
	if req.DeviceKeys == nil {
		return merr.MissingParam("device_keys is required")
	}
	resp, err := a.deps.Keys.Query(c.Request().Context(), session(c).User, req.DeviceKeys)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, resp)
}

func (a *API) keysClaim(c echo.Context) error {
	var req struct {
		OneTimeKeys map[string]map[string]string `json:"one_time_keys"`
	}
	if err := readJSON(c, &req); err != nil {
		return err
	}
	if req.OneTimeKeys == nil {
		return merr.MissingParam("one_time_keys is required")
	}
	resp, err := a.deps.Keys.Claim(c.Request().Context(), req.OneTimeKeys)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, resp)
}

func (a *API) keysChanges(c echo.Context) error {
	from := c.QueryParam("from")
	if from == "" {
		return merr.MissingParam("from is required")
	}
	changed, left, err := a.deps.Keys.Changes(c.Request().Context(), session(c).User, from, c.QueryParam("to"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"changed": changed, "left": left})
}

// keysDeviceSigning uploads cross-signing keys. User-interactive authentication (the
// password) is required unless the user has no master key yet or the request only repeats
// the stored keys (spec v1.11+).
func (a *API) keysDeviceSigning(c echo.Context) error {
	var req struct {
		keys.CrossSigningUpload
		Auth *authDict `json:"auth"`
	}
	if err := readJSON(c, &req); err != nil {
		return err
	}
	s := session(c)
	ctx := c.Request().Context()
	needs, err := a.deps.Keys.CrossSigningNeedsAuth(ctx, s.User, &req.CrossSigningUpload)
	if err != nil {
		return err
	}
	var done string
	if needs {
		res, err := a.uia(c, req.Auth, uiaSpec{op: "device_signing_upload", flows: passwordFlows, user: s.User})
		if res == nil {
			return err
		}
		done = res.session
	}
	if err := a.deps.Keys.UploadCrossSigning(ctx, s.User, &req.CrossSigningUpload); err != nil {
		return err
	}
	if done != "" {
		a.accounts.UIADone(done)
	}
	return noContent(c)
}

func (a *API) keysSignatures(c echo.Context) error {
	var req map[string]map[string]json.RawMessage
	if err := readJSON(c, &req); err != nil {
		return err
	}
	failures, err := a.deps.Keys.UploadSignatures(c.Request().Context(), session(c).User, req)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"failures": failures})
}
