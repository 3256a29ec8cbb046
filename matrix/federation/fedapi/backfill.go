package fedapi

import (
	"net/http"

	"github.com/labstack/echo/v4"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/merr"
	"github.com/hearth-home/hearth/matrix/rooms"
)

// Backfilling and retrieving missing events (spec: backfill.yaml). Both walk prev_events in
// the room graph (rooms/fedwalk.go) and answer at most rooms.MaxFedWalk events the
// requesting server may see; a server with no user in the room (and a room that is not
// world-readable) is 403 M_FORBIDDEN.

func (a *api) routesBackfill(g *echo.Group, mw []echo.MiddlewareFunc) {
	g.GET("/v1/backfill/:roomId", a.backfill, mw...)
	g.POST("/v1/get_missing_events/:roomId", a.getMissingEvents, mw...)
}

func (a *api) backfill(c echo.Context) error {
	origin, err := Origin(c)
	if err != nil {
		return err
	}
	roomID, err := roomIDParam(c)
	if err != nil {
		return err
	}
	vs := c.QueryParams()["v"]
	if len(vs) == 0 {
		return merr.MissingParam("v is required")
	}
	from := make([]id.EventID, 0, len(vs))
	for _, v := range vs {
		if !validEventID(v) {
			return merr.InvalidParam("%q is not an event ID", v)
		}
		from = append(from, id.EventID(v))
	}
	if c.QueryParam("limit") == "" {
		return merr.MissingParam("limit is required")
	}
	limit, err := intQuery(c, "limit", 0)
	if err != nil {
		return err
	}
	evs, err := a.d.Rooms.Backfill(c.Request().Context(), origin, roomID, from, limit)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, a.transaction(pdus(evs)))
}

func (a *api) getMissingEvents(c echo.Context) error {
	origin, err := Origin(c)
	if err != nil {
		return err
	}
	roomID, err := roomIDParam(c)
	if err != nil {
		return err
	}
	var body struct {
		Limit    *int     `json:"limit"`
		MinDepth *int64   `json:"min_depth"`
		Earliest []string `json:"earliest_events"`
		Latest   []string `json:"latest_events"`
	}
	if err := readJSON(c, &body); err != nil {
		return err
	}
	if body.Earliest == nil || body.Latest == nil {
		return merr.BadJSON("earliest_events and latest_events are required")
	}
	req := rooms.MissingEventsRequest{Limit: 10}
	if body.Limit != nil {
		if *body.Limit < 0 {
			return merr.InvalidParam("limit must not be negative")
		}
		req.Limit = *body.Limit
	}
	if body.MinDepth != nil {
		req.MinDepth = *body.MinDepth
	}
	for _, lists := range []struct {
		in  []string
		out *[]id.EventID
	}{{body.Earliest, &req.Earliest}, {body.Latest, &req.Latest}} {
		for _, e := range lists.in {
			if !validEventID(e) {
				return merr.InvalidParam("%q is not an event ID", e)
			}
			*lists.out = append(*lists.out, id.EventID(e))
		}
	}
	evs, err := a.d.Rooms.MissingEvents(c.Request().Context(), origin, roomID, req)
	if err != nil {
		return err
	}
	return ok(c, map[string]any{"events": pdus(evs)})
}
