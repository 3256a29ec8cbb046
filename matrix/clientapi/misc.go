package clientapi

import (
	"net/http"

	"github.com/labstack/echo/v4"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/merr"
)

// routesMisc answers the endpoints every client calls at start-up whose full feature belongs to
// a later piece of work, with the spec's shapes for "nothing configured".
func (a *API) routesMisc(g *echo.Group) {
	a.both(g, http.MethodGet, "/voip/turnServer", func(c echo.Context) error {
		return c.JSON(http.StatusOK, struct{}{}) // no TURN server configured
	}, a.auth)
	a.both(g, http.MethodGet, "/thirdparty/protocols", func(c echo.Context) error {
		return c.JSON(http.StatusOK, struct{}{})
	}, a.auth)
	a.both(g, http.MethodGet, "/presence/:userId/status", a.getPresence, a.auth)
	a.both(g, http.MethodPut, "/presence/:userId/status", a.putPresence, a.auth)
}

func (a *API) getPresence(c echo.Context) error {
	u := id.UserID(c.Param("userId"))
	if _, _, err := u.Parse(); err != nil {
		return merr.InvalidParam("invalid user ID")
	}
	if _, _, err := a.accounts.Profile(c.Request().Context(), u); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"presence": "offline"})
}

func (a *API) putPresence(c echo.Context) error {
	if _, err := ownUser(c); err != nil {
		return err
	}
	var body struct {
		Presence  string `json:"presence"`
		StatusMsg string `json:"status_msg"`
	}
	if err := readJSON(c, &body); err != nil {
		return err
	}
	switch body.Presence {
	case "online", "offline", "unavailable":
	default:
		return merr.InvalidParam("presence must be online, offline or unavailable")
	}
	return noContent(c)
}
