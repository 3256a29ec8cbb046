package fedapi

import (
	"github.com/labstack/echo/v4"

	"github.com/hearth-home/hearth/matrix/merr"
)

// OpenID user info (spec: openid.yaml): unauthenticated; the token is the credential. An
// unknown or expired token is 401 M_UNKNOWN_TOKEN.

func (a *api) routesOpenID(g *echo.Group, mw []echo.MiddlewareFunc) {
	g.GET("/v1/openid/userinfo", a.openIDUserInfo, mw...)
}

func (a *api) openIDUserInfo(c echo.Context) error {
	tok := c.QueryParam("access_token")
	if tok == "" {
		return merr.MissingToken("access_token is required")
	}
	user, err := a.d.Accounts.OpenIDUser(c.Request().Context(), tok)
	if err != nil {
		return err
	}
	return ok(c, map[string]string{"sub": user.String()})
}
