package clientapi

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/hearth-home/hearth/matrix/admin"
	"github.com/hearth-home/hearth/matrix/merr"
)

// The Synapse-compatible admin API subset that synapse-admin and scripts use (matrix/admin
// does the work). Every route needs an admin's access token; others get 403 M_FORBIDDEN.

func (a *API) routesAdmin(e *echo.Echo) {
	mw := []echo.MiddlewareFunc{a.auth, a.adminOnly}
	e.GET("/_synapse/admin/v1/server_version", a.adminServerVersion, mw...)
	e.GET("/_synapse/admin/v2/users", a.adminListUsers, mw...)
	e.GET("/_synapse/admin/v2/users/:userId", a.adminGetUser, mw...)
	e.PUT("/_synapse/admin/v2/users/:userId", a.adminPutUser, mw...)
	e.POST("/_synapse/admin/v1/deactivate/:userId", a.adminDeactivate, mw...)
	e.POST("/_synapse/admin/v1/reset_password/:userId", a.adminResetPassword, mw...)
	e.GET("/_synapse/admin/v1/rooms", a.adminListRooms, mw...)
	e.GET("/_synapse/admin/v1/rooms/:roomId", a.adminGetRoom, mw...)
	e.GET("/_synapse/admin/v1/rooms/:roomId/members", a.adminRoomMembers, mw...)
	e.DELETE("/_synapse/admin/v1/rooms/:roomId", a.adminDeleteRoom, mw...)
	e.DELETE("/_synapse/admin/v2/rooms/:roomId", a.adminDeleteRoomV2, mw...)
	e.GET("/_synapse/admin/v1/registration_tokens", a.adminListRegTokens, mw...)
	e.POST("/_synapse/admin/v1/registration_tokens/new", a.adminNewRegToken, mw...)
	e.GET("/_synapse/admin/v1/registration_tokens/:token", a.adminGetRegToken, mw...)
	e.PUT("/_synapse/admin/v1/registration_tokens/:token", a.adminPutRegToken, mw...)
	e.DELETE("/_synapse/admin/v1/registration_tokens/:token", a.adminDeleteRegToken, mw...)
	a.routesAdminMedia(e)       // admin_media.go: media and purge_history
	a.routesAdminNotices(e, mw) // admin_notices.go: send_server_notice
}

func (a *API) adminOnly(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if s := session(c); s == nil || !s.Admin {
			return merr.Forbidden("you are not a server admin")
		}
		if a.deps.Admin == nil {
			return merr.Unrecognized("the admin API is not available")
		}
		return next(c)
	}
}

// adminIntParam reads a non-negative integer query parameter.
func adminIntParam(c echo.Context, name string, def int) (int, error) {
	v := c.QueryParam(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, merr.InvalidParam("query parameter %s must be a non-negative integer", name)
	}
	return n, nil
}

func adminBoolParam(c echo.Context, name string, def bool) (bool, error) {
	switch c.QueryParam(name) {
	case "":
		return def, nil
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, merr.InvalidParam("query parameter %s must be true or false", name)
}

func (a *API) adminServerVersion(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]any{"server_version": "Hearth " + a.opts.Version})
}

func (a *API) adminListUsers(c echo.Context) error {
	var q admin.UserQuery
	var err error
	if q.From, err = adminIntParam(c, "from", 0); err != nil {
		return err
	}
	if q.Limit, err = adminIntParam(c, "limit", 100); err != nil {
		return err
	}
	if q.Guests, err = adminBoolParam(c, "guests", true); err != nil {
		return err
	}
	if q.Deactivated, err = adminBoolParam(c, "deactivated", false); err != nil {
		return err
	}
	q.Name = c.QueryParam("name")
	if q.Name == "" {
		q.Name = c.QueryParam("user_id")
	}
	q.OrderBy = c.QueryParam("order_by")
	q.Backwards = c.QueryParam("dir") == "b"
	list, total, err := a.deps.Admin.Users(c.Request().Context(), q)
	if err != nil {
		return err
	}
	out := map[string]any{"users": list, "total": total}
	if q.From+len(list) < total {
		out["next_token"] = strconv.Itoa(q.From + len(list))
	}
	return c.JSON(http.StatusOK, out)
}

func (a *API) adminGetUser(c echo.Context) error {
	u, err := a.deps.Admin.GetUser(c.Request().Context(), c.Param("userId"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, u)
}

func (a *API) adminPutUser(c echo.Context) error {
	var body admin.UserChange
	if err := readJSON(c, &body); err != nil {
		return err
	}
	u, created, err := a.deps.Admin.PutUser(c.Request().Context(), c.Param("userId"), body)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	return c.JSON(status, u)
}

func (a *API) adminDeactivate(c echo.Context) error {
	var body struct {
		Erase bool `json:"erase"`
	}
	if err := readJSON(c, &body); err != nil {
		return err
	}
	if err := a.deps.Admin.Deactivate(c.Request().Context(), c.Param("userId")); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"id_server_unbind_result": "success"})
}

func (a *API) adminResetPassword(c echo.Context) error {
	var body struct {
		NewPassword   string `json:"new_password"`
		LogoutDevices *bool  `json:"logout_devices"`
	}
	if err := readJSON(c, &body); err != nil {
		return err
	}
	logout := body.LogoutDevices == nil || *body.LogoutDevices
	if err := a.deps.Admin.ResetPassword(c.Request().Context(), c.Param("userId"), body.NewPassword, logout); err != nil {
		return err
	}
	return noContent(c)
}

func (a *API) adminListRooms(c echo.Context) error {
	var q admin.RoomQuery
	var err error
	if q.From, err = adminIntParam(c, "from", 0); err != nil {
		return err
	}
	if q.Limit, err = adminIntParam(c, "limit", 100); err != nil {
		return err
	}
	q.OrderBy = c.QueryParam("order_by")
	q.Backwards = c.QueryParam("dir") == "b"
	q.SearchTerm = c.QueryParam("search_term")
	list, total, err := a.deps.Admin.Rooms(c.Request().Context(), q)
	if err != nil {
		return err
	}
	out := map[string]any{"rooms": list, "offset": q.From, "total_rooms": total}
	if q.From+len(list) < total {
		out["next_batch"] = q.From + len(list)
	}
	if q.From > 0 {
		out["prev_batch"] = max(0, q.From-max(q.Limit, 1))
	}
	return c.JSON(http.StatusOK, out)
}

func (a *API) adminGetRoom(c echo.Context) error {
	r, err := a.deps.Admin.GetRoom(c.Request().Context(), c.Param("roomId"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, r)
}

func (a *API) adminRoomMembers(c echo.Context) error {
	m, err := a.deps.Admin.Members(c.Request().Context(), c.Param("roomId"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"members": m, "total": len(m)})
}

func (a *API) adminDeleteRoom(c echo.Context) error {
	var body map[string]any // new_room_user_id, message, block, purge: accepted, not acted on
	if err := readJSON(c, &body); err != nil {
		return err
	}
	res, err := a.deps.Admin.DeleteRoom(c.Request().Context(), session(c).User, c.Param("roomId"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, res)
}

// adminDeleteRoomV2 runs the deletion synchronously and answers with a delete ID that is
// already complete (synapse-admin polls the status; the status endpoint is not served yet).
func (a *API) adminDeleteRoomV2(c echo.Context) error {
	var body map[string]any
	if err := readJSON(c, &body); err != nil {
		return err
	}
	if _, err := a.deps.Admin.DeleteRoom(c.Request().Context(), session(c).User, c.Param("roomId")); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"delete_id": "done"})
}

func (a *API) adminListRegTokens(c echo.Context) error {
	var valid *bool
	if v := c.QueryParam("valid"); v != "" {
		b, err := adminBoolParam(c, "valid", false)
		if err != nil {
			return err
		}
		valid = &b
	}
	list, err := a.deps.Admin.RegTokens(c.Request().Context(), valid)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"registration_tokens": list})
}

func (a *API) adminGetRegToken(c echo.Context) error {
	t, err := a.deps.Admin.RegToken(c.Request().Context(), c.Param("token"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, t)
}

func (a *API) adminNewRegToken(c echo.Context) error {
	var body admin.NewRegToken
	if err := readJSON(c, &body); err != nil {
		return err
	}
	t, err := a.deps.Admin.CreateRegToken(c.Request().Context(), body)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, t)
}

func (a *API) adminPutRegToken(c echo.Context) error {
	var raw map[string]json.RawMessage
	if err := readJSON(c, &raw); err != nil {
		return err
	}
	var ch admin.RegTokenChange
	if v, ok := raw["uses_allowed"]; ok {
		ch.SetUses = true
		if err := json.Unmarshal(v, &ch.UsesAllowed); err != nil {
			return merr.InvalidParam("uses_allowed must be a non-negative integer or null")
		}
	}
	if v, ok := raw["expiry_time"]; ok {
		ch.SetExpiry = true
		if err := json.Unmarshal(v, &ch.ExpiryTime); err != nil {
			return merr.InvalidParam("expiry_time must be an integer or null")
		}
	}
	t, err := a.deps.Admin.UpdateRegToken(c.Request().Context(), c.Param("token"), ch)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, t)
}

func (a *API) adminDeleteRegToken(c echo.Context) error {
	if err := a.deps.Admin.DeleteRegToken(c.Request().Context(), c.Param("token")); err != nil {
		return err
	}
	return noContent(c)
}
