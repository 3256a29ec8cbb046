package clientapi

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/hearth-home/hearth/matrix/merr"
	"github.com/hearth-home/hearth/matrix/store"
)

// Device management: list, read, rename and delete the caller's devices.

func (a *API) routesDevices(g *echo.Group) {
	a.both(g, http.MethodGet, "/devices", a.listDevices, a.auth)
	a.both(g, http.MethodGet, "/devices/:deviceId", a.getDevice, a.auth)
	a.both(g, http.MethodPut, "/devices/:deviceId", a.putDevice, a.auth)
	a.both(g, http.MethodDelete, "/devices/:deviceId", a.deleteDevice, a.auth, a.rateLimited)
	a.both(g, http.MethodPost, "/delete_devices", a.deleteDevicesBulk, a.auth, a.rateLimited)
}

// clientDevice is the spec's Device object.
type clientDevice struct {
	DeviceID    string `json:"device_id"`
	DisplayName string `json:"display_name,omitempty"`
	LastSeenIP  string `json:"last_seen_ip,omitempty"`
	LastSeenTS  int64  `json:"last_seen_ts,omitempty"`
}

func toClientDevice(d *store.DeviceRecord) clientDevice {
	return clientDevice{DeviceID: d.ID, DisplayName: d.DisplayName, LastSeenIP: d.LastSeenIP, LastSeenTS: d.LastSeenMS}
}

// accountPathParam reads a path parameter. Echo routes on the raw path when the request path
// carries escapes that differ from Go's default encoding (e.g. %40 for @) and then hands over
// the raw segment; decode it in that case only, so nothing is decoded twice.
func accountPathParam(c echo.Context, name string) (string, error) {
	v := c.Param(name)
	if c.Request().URL.RawPath == "" {
		return v, nil
	}
	v, err := url.PathUnescape(v)
	if err != nil {
		return "", merr.InvalidParam("malformed %s in path", name)
	}
	return v, nil
}

func (a *API) listDevices(c echo.Context) error {
	devs, err := a.accounts.Devices(c.Request().Context(), session(c).User)
	if err != nil {
		return err
	}
	out := make([]clientDevice, 0, len(devs))
	for _, d := range devs {
		out = append(out, toClientDevice(d))
	}
	return c.JSON(http.StatusOK, map[string]any{"devices": out})
}

func (a *API) getDevice(c echo.Context) error {
	dev, err := accountPathParam(c, "deviceId")
	if err != nil {
		return err
	}
	d, err := a.accounts.Device(c.Request().Context(), session(c).User, dev)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toClientDevice(d))
}

func (a *API) putDevice(c echo.Context) error {
	dev, err := accountPathParam(c, "deviceId")
	if err != nil {
		return err
	}
	var req struct {
		DisplayName *string `json:"display_name"`
	}
	if err := readJSON(c, &req); err != nil {
		return err
	}
	ctx := c.Request().Context()
	user := session(c).User
	if req.DisplayName == nil {
		// Nothing to change, but an unknown device is still 404 (only appservices may create).
		if _, err := a.accounts.Device(ctx, user, dev); err != nil {
			return err
		}
		return noContent(c)
	}
	if err := checkDeviceParams("", *req.DisplayName); err != nil {
		return err
	}
	if err := a.accounts.RenameDevice(ctx, user, dev, *req.DisplayName); err != nil {
		return err
	}
	return noContent(c)
}

func (a *API) deleteDevice(c echo.Context) error {
	dev, err := accountPathParam(c, "deviceId")
	if err != nil {
		return err
	}
	var req struct {
		Auth *authDict `json:"auth"`
	}
	if err := readJSON(c, &req); err != nil {
		return err
	}
	return a.deleteDevicesUIA(c, req.Auth, []string{dev})
}

func (a *API) deleteDevicesBulk(c echo.Context) error {
	var req struct {
		Auth    *authDict `json:"auth"`
		Devices *[]string `json:"devices"`
	}
	if err := readJSON(c, &req); err != nil {
		return err
	}
	if req.Devices == nil {
		return merr.MissingParam("devices is required")
	}
	return a.deleteDevicesUIA(c, req.Auth, *req.Devices)
}

// deleteDevicesUIA deletes devices once the user has confirmed their password. The UIA session
// is bound to exactly this set of devices. Unknown devices count as already deleted.
func (a *API) deleteDevicesUIA(c echo.Context, auth *authDict, devices []string) error {
	s := session(c)
	ids := slices.Clone(devices)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	h := sha256.Sum256([]byte(strings.Join(ids, "\x00")))
	res, err := a.uia(c, auth, uiaSpec{op: "delete_devices:" + hex.EncodeToString(h[:]), flows: passwordFlows, user: s.User})
	if res == nil {
		return err
	}
	if err := a.accounts.DeleteDevices(c.Request().Context(), s.User, ids); err != nil {
		return err
	}
	a.accounts.UIADone(res.session)
	return noContent(c)
}
