package clientapi

import (
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/hearth-home/hearth/matrix/events"
)

// specVersions are the Client-Server API versions this server speaks.
var specVersions = []string{"r0.6.1", "v1.1", "v1.2", "v1.3", "v1.4", "v1.5", "v1.6", "v1.7", "v1.8", "v1.9", "v1.10", "v1.11", "v1.12", "v1.13", "v1.14", "v1.15", "v1.16", "v1.17", "v1.18", "v1.19"}

func (a *API) routesMeta(e *echo.Echo, g *echo.Group) {
	g.GET("/versions", a.versions)
	e.GET("/.well-known/matrix/client", a.wellKnownClient)
	a.both(g, http.MethodGet, "/capabilities", a.capabilities, a.auth)
}

func (a *API) versions(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]any{
		"versions":          specVersions,
		"unstable_features": map[string]bool{SlidingSyncFeature: true, DelayedFeature: a.deps.Delayed != nil},
	})
}

func (a *API) baseURL(c echo.Context) string {
	if a.opts.PublicBaseURL != "" {
		return strings.TrimSuffix(a.opts.PublicBaseURL, "/")
	}
	return c.Scheme() + "://" + c.Request().Host
}

func (a *API) wellKnownClient(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]any{"m.homeserver": map[string]string{"base_url": a.baseURL(c)}})
}

func (a *API) capabilities(c echo.Context) error {
	avail := map[string]string{}
	for _, v := range events.SupportedVersions() {
		avail[string(v)] = "stable"
		if events.Unstable(v) {
			avail[string(v)] = "unstable"
		}
	}
	return c.JSON(http.StatusOK, map[string]any{"capabilities": map[string]any{
		"m.change_password": map[string]bool{"enabled": true},
		"m.room_versions":   map[string]any{"default": string(a.rooms.DefaultVersion()), "available": avail},
		"m.set_displayname": map[string]bool{"enabled": true},
		"m.set_avatar_url":  map[string]bool{"enabled": true},
		"m.3pid_changes":    map[string]bool{"enabled": false},
		"m.get_login_token": map[string]bool{"enabled": true},
		"m.profile_fields":  map[string]any{"enabled": true, "allowed": []string{"displayname", "avatar_url"}},
	}})
}
