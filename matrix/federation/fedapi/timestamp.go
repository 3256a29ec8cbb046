package fedapi

import (
	"github.com/labstack/echo/v4"

	"github.com/hearth-home/hearth/matrix/rooms"
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
	ts, forwards, err := rooms.ParseTimestampQuery(c.QueryParams())
	if err != nil {
		return err
	}
	r, err := a.d.Rooms.FedEventAtTimestamp(c.Request().Context(), origin, roomID, ts, forwards)
	if err != nil {
		return err
	}
	return ok(c, map[string]any{"event_id": r.EventID, "origin_server_ts": r.OriginServerTS})
}
