package fedapi

import (
	"strings"

	"github.com/labstack/echo/v4"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/merr"
)

// Queries (spec: query.yaml): a local user's profile and a local room alias. Other query
// types are 404 M_UNRECOGNIZED.

func (a *api) routesQuery(g *echo.Group, mw []echo.MiddlewareFunc) {
	g.GET("/v1/query/profile", a.queryProfile, mw...)
	g.GET("/v1/query/directory", a.queryDirectory, mw...)
	g.GET("/v1/query/:queryType", a.queryUnknown, mw...)
}

func (a *api) queryProfile(c echo.Context) error {
	if _, err := Origin(c); err != nil {
		return err
	}
	v := c.QueryParam("user_id")
	if v == "" {
		return merr.MissingParam("user_id is required")
	}
	user, err := userIDValue(v)
	if err != nil {
		return err
	}
	if user.Homeserver() != a.d.ServerName {
		return merr.InvalidParam("user %s is not local to this server", user)
	}
	dn, av, err := a.d.Accounts.Profile(c.Request().Context(), user)
	if err != nil {
		return err // unknown or deactivated: 404 M_NOT_FOUND
	}
	all := map[string]string{}
	if dn != "" {
		all["displayname"] = dn
	}
	if av != "" {
		all["avatar_url"] = av
	}
	field := c.QueryParam("field")
	if field == "" {
		return ok(c, all)
	}
	val, has := all[field]
	if !has {
		return merr.NotFound("the profile has no field %q", field)
	}
	return ok(c, map[string]string{field: val})
}

func (a *api) queryDirectory(c echo.Context) error {
	if _, err := Origin(c); err != nil {
		return err
	}
	alias := c.QueryParam("room_alias")
	if alias == "" {
		return merr.MissingParam("room_alias is required")
	}
	lp, server, found := strings.Cut(strings.TrimPrefix(alias, "#"), ":")
	if !strings.HasPrefix(alias, "#") || !found || lp == "" || server == "" {
		return merr.InvalidParam("%q is not a room alias", alias)
	}
	if server != a.d.ServerName {
		return merr.NotFound("room alias %s is not hosted here", alias)
	}
	roomID, err := a.d.Rooms.ResolveAlias(c.Request().Context(), alias)
	if err != nil {
		return err
	}
	servers, err := a.d.Rooms.JoinedServers(c.Request().Context(), roomID)
	if err != nil {
		return err
	}
	if len(servers) == 0 {
		servers = []string{a.d.ServerName} // the alias is ours even if nobody here is joined
	}
	return ok(c, map[string]any{"room_id": id.RoomID(roomID).String(), "servers": servers})
}

func (a *api) queryUnknown(c echo.Context) error {
	return merr.Unrecognized("unknown query type %q", c.Param("queryType"))
}
