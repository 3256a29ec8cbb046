package fedapi

import "github.com/labstack/echo/v4"

// GET /v1/version (spec: version.yaml): unauthenticated.

func (a *api) routesVersion(g *echo.Group, mw []echo.MiddlewareFunc) {
	g.GET("/v1/version", a.version, mw...)
}

func (a *api) version(c echo.Context) error {
	v := a.d.Version
	if v == "" {
		v = "unknown"
	}
	return ok(c, map[string]any{"server": map[string]string{"name": "Hearth", "version": v}})
}
