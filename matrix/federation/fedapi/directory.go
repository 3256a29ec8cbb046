package fedapi

import (
	"github.com/labstack/echo/v4"

	"github.com/hearth-home/hearth/matrix/rooms"
)

// The published room directory (spec: public_rooms.yaml): only rooms published in this
// server's directory, largest first, as rooms.PublicRooms pages them.

func (a *api) routesDirectory(g *echo.Group, mw []echo.MiddlewareFunc) {
	g.GET("/v1/publicRooms", a.getPublicRooms, mw...)
	g.POST("/v1/publicRooms", a.postPublicRooms, mw...)
}

type publicRoomsResponse struct {
	Chunk     []*rooms.Summary `json:"chunk"`
	NextBatch string           `json:"next_batch,omitempty"`
	PrevBatch string           `json:"prev_batch,omitempty"`
	Total     int              `json:"total_room_count_estimate"`
}

func (a *api) getPublicRooms(c echo.Context) error {
	if _, err := Origin(c); err != nil {
		return err
	}
	limit, err := intQuery(c, "limit", 0)
	if err != nil {
		return err
	}
	if _, err := boolQuery(c, "include_all_networks"); err != nil {
		return err
	}
	if c.QueryParam("third_party_instance_id") != "" {
		// No application service here publishes third-party networks.
		return ok(c, publicRoomsResponse{Chunk: []*rooms.Summary{}})
	}
	return a.publicRooms(c, rooms.PublicRoomsRequest{Limit: limit, Since: c.QueryParam("since")})
}

func (a *api) postPublicRooms(c echo.Context) error {
	if _, err := Origin(c); err != nil {
		return err
	}
	var body rooms.PublicRoomsBody
	if err := readJSON(c, &body); err != nil {
		return err
	}
	req, thirdParty, err := body.Request()
	if err != nil {
		return err
	}
	if thirdParty {
		return ok(c, publicRoomsResponse{Chunk: []*rooms.Summary{}})
	}
	return a.publicRooms(c, req)
}

func (a *api) publicRooms(c echo.Context, req rooms.PublicRoomsRequest) error {
	page, err := a.d.Rooms.PublicRooms(c.Request().Context(), req)
	if err != nil {
		return err
	}
	return ok(c, publicRoomsResponse{Chunk: page.Chunk, NextBatch: page.NextBatch, PrevBatch: page.PrevBatch, Total: page.Total})
}
