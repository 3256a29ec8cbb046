package clientapi

import (
	"encoding/json"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/hearth-home/hearth/matrix/merr"
)

// OpenID (spec: openid.yaml): a token the user hands to a third party (an integration manager,
// a widget), which checks it against this server's federation userinfo endpoint.

func (a *API) routesOpenID(g *echo.Group) {
	a.both(g, http.MethodPost, "/user/:userId/openid/request_token", a.requestOpenIDToken, a.auth, a.rateLimited)
}

func (a *API) requestOpenIDToken(c echo.Context) error {
	sess := session(c)
	if v, _ := pathArg(c, "userId"); v != sess.User.String() {
		return merr.Forbidden("you may only request OpenID tokens for yourself")
	}
	var body map[string]json.RawMessage // the spec's body is an empty object
	if err := readJSON(c, &body); err != nil {
		return err
	}
	tok, ttl, err := a.accounts.CreateOpenIDToken(c.Request().Context(), sess.User)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{
		"access_token":       tok,
		"token_type":         "Bearer",
		"matrix_server_name": a.opts.ServerName,
		"expires_in":         int(ttl.Seconds()),
	})
}
