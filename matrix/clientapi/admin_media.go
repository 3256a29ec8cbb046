package clientapi

import (
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/hearth-home/hearth/matrix/admin"
	"github.com/hearth-home/hearth/matrix/merr"
)

// The Synapse-compatible admin API for media (list, delete, quarantine) and for purging room
// history. matrix/admin does the work; admin.go's adminOnly guards every route.

func (a *API) routesAdminMedia(e *echo.Echo) {
	mw := []echo.MiddlewareFunc{a.auth, a.adminOnly}
	mm := append(mw, a.adminMediaOn)
	const v1 = "/_synapse/admin/v1"
	e.GET(v1+"/users/:userId/media", a.adminUserMedia, mm...)
	e.DELETE(v1+"/users/:userId/media", a.adminDeleteUserMedia, mm...)
	e.DELETE(v1+"/media/:serverName/:mediaId", a.adminDeleteMedia, mm...)
	e.POST(v1+"/media/delete", a.adminDeleteMediaBefore, mm...)
	e.POST(v1+"/media/:serverName/delete", a.adminDeleteMediaBefore, mm...) // the older form
	e.POST(v1+"/media/quarantine/:serverName/:mediaId", a.adminQuarantine(true), mm...)
	e.POST(v1+"/media/unquarantine/:serverName/:mediaId", a.adminQuarantine(false), mm...)
	e.POST(v1+"/room/:roomId/media/quarantine", a.adminQuarantineRoom, mm...)
	e.POST(v1+"/quarantine_media/:roomId", a.adminQuarantineRoom, mm...) // deprecated alias
	e.POST(v1+"/user/:userId/media/quarantine", a.adminQuarantineUser, mm...)
	e.GET(v1+"/room/:roomId/media", a.adminRoomMedia, mm...)
	e.POST(v1+"/purge_history/:roomId", a.adminPurgeHistory, mw...)
	e.POST(v1+"/purge_history/:roomId/:eventId", a.adminPurgeHistory, mw...)
	e.GET(v1+"/purge_history_status/:purgeId", a.adminPurgeStatus, mw...)
}

// adminMediaOn answers M_UNRECOGNIZED when the appliance runs without a content repository.
func (a *API) adminMediaOn(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if a.deps.Media == nil {
			return merr.Unrecognized("media is not available")
		}
		return next(c)
	}
}

func (a *API) adminMedia() *admin.Media { return a.deps.Admin.Media(a.deps.Media) }

// adminMediaQuery reads from, limit, order_by and dir.
func adminMediaQuery(c echo.Context) (admin.MediaQuery, error) {
	var q admin.MediaQuery
	var err error
	if q.From, err = adminIntParam(c, "from", 0); err != nil {
		return q, err
	}
	if q.Limit, err = adminIntParam(c, "limit", 100); err != nil {
		return q, err
	}
	q.OrderBy = c.QueryParam("order_by")
	switch c.QueryParam("dir") {
	case "", "f":
	case "b":
		q.Backwards = true
	default:
		return q, merr.InvalidParam("query parameter dir must be f or b")
	}
	return q, nil
}

func (a *API) adminUserMedia(c echo.Context) error {
	q, err := adminMediaQuery(c)
	if err != nil {
		return err
	}
	list, total, err := a.adminMedia().UserMedia(c.Request().Context(), c.Param("userId"), q)
	if err != nil {
		return err
	}
	out := map[string]any{"media": list, "total": total}
	if q.From+len(list) < total {
		out["next_token"] = q.From + len(list)
	}
	return c.JSON(http.StatusOK, out)
}

func deletedMedia(c echo.Context, ids []string) error {
	return c.JSON(http.StatusOK, map[string]any{"deleted_media": ids, "total": len(ids)})
}

func (a *API) adminDeleteUserMedia(c echo.Context) error {
	q, err := adminMediaQuery(c)
	if err != nil {
		return err
	}
	ids, err := a.adminMedia().DeleteUserMedia(c.Request().Context(), c.Param("userId"), q)
	if err != nil {
		return err
	}
	return deletedMedia(c, ids)
}

func (a *API) adminDeleteMedia(c echo.Context) error {
	ids, err := a.adminMedia().DeleteOne(c.Request().Context(), c.Param("serverName"), c.Param("mediaId"))
	if err != nil {
		return err
	}
	return deletedMedia(c, ids)
}

func (a *API) adminDeleteMediaBefore(c echo.Context) error {
	raw := c.QueryParam("before_ts")
	if raw == "" {
		return merr.MissingParam("missing integer query parameter before_ts")
	}
	before, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || before < 0 {
		return merr.InvalidParam("query parameter before_ts must be a non-negative integer")
	}
	sizeGT, err := adminIntParam(c, "size_gt", 0)
	if err != nil {
		return err
	}
	keep, err := adminBoolParam(c, "keep_profiles", true)
	if err != nil {
		return err
	}
	ids, err := a.adminMedia().DeleteBefore(c.Request().Context(), c.Param("serverName"), before, int64(sizeGT), keep)
	if err != nil {
		return err
	}
	return deletedMedia(c, ids)
}

func (a *API) adminQuarantine(on bool) echo.HandlerFunc {
	return func(c echo.Context) error {
		err := a.adminMedia().Quarantine(c.Request().Context(), session(c).User.String(), c.Param("serverName"), c.Param("mediaId"), on)
		if err != nil {
			return err
		}
		return noContent(c)
	}
}

func (a *API) adminQuarantineRoom(c echo.Context) error {
	n, err := a.adminMedia().QuarantineRoom(c.Request().Context(), session(c).User.String(), c.Param("roomId"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"num_quarantined": n})
}

func (a *API) adminQuarantineUser(c echo.Context) error {
	n, err := a.adminMedia().QuarantineUser(c.Request().Context(), session(c).User.String(), c.Param("userId"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"num_quarantined": n})
}

func (a *API) adminRoomMedia(c echo.Context) error {
	local, remote, err := a.adminMedia().RoomMedia(c.Request().Context(), c.Param("roomId"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"local": local, "remote": remote})
}

func (a *API) adminPurgeHistory(c echo.Context) error {
	var body admin.PurgeBody
	if err := readJSON(c, &body); err != nil {
		return err
	}
	id, err := a.deps.Admin.PurgeHistory(c.Request().Context(), c.Param("roomId"), c.Param("eventId"), body)
	if id == "" {
		return err
	}
	if err != nil {
		// Part of the history went before the failure: the status endpoint reports it.
		a.log.Error("purge history", "room_id", c.Param("roomId"), "purge_id", id, "err", err)
	}
	return c.JSON(http.StatusOK, map[string]any{"purge_id": id})
}

func (a *API) adminPurgeStatus(c echo.Context) error {
	st, err := a.deps.Admin.PurgeStatus(c.Request().Context(), c.Param("purgeId"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, st)
}
