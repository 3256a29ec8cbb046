package clientapi

import (
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/hearth-home/hearth/matrix/merr"
	"github.com/hearth-home/hearth/matrix/rooms"
)

// Jumping to a date (spec: room_event_by_timestamp.yaml; MSC3030's unstable path too).

func (a *API) routesTimestamp(g *echo.Group) {
	g.GET("/v1/rooms/:roomId/timestamp_to_event", a.timestampToEvent, a.auth)
	g.GET("/unstable/org.matrix.msc3030/rooms/:roomId/timestamp_to_event", a.timestampToEvent, a.auth)
}

func (a *API) timestampToEvent(c echo.Context) error {
	roomID, err := roomIDArg(c)
	if err != nil {
		return err
	}
	ts, forwards, err := rooms.ParseTimestampQuery(c.QueryParams())
	if err != nil {
		return err
	}
	r, err := a.rooms.EventAtTimestamp(c.Request().Context(), session(c).User, roomID, ts, forwards)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"event_id": r.EventID, "origin_server_ts": r.OriginServerTS})
}

// massagedTimestamp reads the ts query parameter of an event send: application services may
// set an event's origin_server_ts (spec: application service API, timestamp massaging; bridges
// importing history use it). Anyone else's ts is ignored, as Synapse ignores it. 0: none.
func (a *API) massagedTimestamp(c echo.Context) (int64, error) {
	v := c.QueryParam("ts")
	if v == "" || c.Get(appServiceKey) == nil {
		return 0, nil
	}
	ts, err := strconv.ParseInt(v, 10, 64)
	if err != nil || ts <= 0 {
		return 0, merr.InvalidParam("ts must be a timestamp in milliseconds")
	}
	return ts, nil
}
