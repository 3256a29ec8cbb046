package fedapi

import (
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/hearth-home/hearth/matrix/merr"
)

// Jump to date for another server (spec: server-server GET /v1/timestamp_to_event/{roomId}):
// answered from the events stored here only, with the room's ACL and history visibility for
// the asking server (rooms/timestamp.go).

func (a *api) routesTimestamp(g *echo.Group, mw []echo.MiddlewareFunc) {
	g.GET("/v1/timestamp_to_event/:roomId", a.timestampToEvent, mw...)
}

func (a *api) timestampToEvent(c echo.Context) error {
	origin, err := Origin(c)
	if err != nil {
		return err
	}
	roomID, err := roomIDParam(c)
	if err != nil {
		return err
	}
	q := c.QueryParams()
	if !q.Has("ts") {
		return merr.MissingParam("ts is required")
	}
	ts, err := strconv.ParseInt(q.Get("ts"), 10, 64)
	if err != nil || ts < 0 {
		return merr.InvalidParam("ts must be a timestamp in milliseconds")
	}
	var forwards bool
	switch q.Get("dir") {
	case "f":
		forwards = true
	case "b":
	case "":
		return merr.MissingParam("dir is required")
	default:
		return merr.InvalidParam("dir must be f or b")
	}
	r, err := a.d.Rooms.FedEventAtTimestamp(c.Request().Context(), origin, roomID, ts, forwards)
	if err != nil {
		return err
	}
	return ok(c, map[string]any{"event_id": r.EventID, "origin_server_ts": r.OriginServerTS})
}
