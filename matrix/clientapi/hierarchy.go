package clientapi

import (
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/hearth-home/hearth/matrix/merr"
	"github.com/hearth-home/hearth/matrix/rooms"
)

// The space hierarchy (spec: space_hierarchy.yaml, client-server v1): a depth-first walk of
// the space tree under a room, paged; rooms.Service.Hierarchy does the walk, which the
// federation /hierarchy shares.

func (a *API) routesHierarchy(g *echo.Group) {
	g.GET("/v1/rooms/:roomId/hierarchy", a.hierarchy, a.auth)
}

type hierarchyResponse struct {
	Rooms     []*rooms.HierarchyRoom `json:"rooms"`
	NextBatch string                 `json:"next_batch,omitempty"`
}

func (a *API) hierarchy(c echo.Context) error {
	roomID, err := roomIDArg(c)
	if err != nil {
		return err
	}
	req := rooms.HierarchyRequest{User: session(c).User, Root: roomID, MaxDepth: -1, From: c.QueryParam("from")}
	switch c.QueryParam("suggested_only") {
	case "", "false":
	case "true":
		req.SuggestedOnly = true
	default:
		return merr.InvalidParam("suggested_only must be true or false")
	}
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return merr.InvalidParam("limit must be a positive integer")
		}
		req.Limit = n
	}
	if v := c.QueryParam("max_depth"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return merr.InvalidParam("max_depth must be a non-negative integer")
		}
		req.MaxDepth = n
	}
	page, err := a.rooms.Hierarchy(c.Request().Context(), req)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, hierarchyResponse{Rooms: page.Rooms, NextBatch: page.NextBatch})
}
