package clientapi

import (
	"net/http"

	"github.com/labstack/echo/v4"
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
}
