package fedapi

import (
	"github.com/labstack/echo/v4"

	"github.com/hearth-home/hearth/matrix/rooms"
)

// The space hierarchy for another server (spec: space_hierarchy.yaml): one level, no paging;
// the walk and the room shape are shared with the client API (rooms/hierarchy.go).

func (a *api) routesHierarchy(g *echo.Group, mw []echo.MiddlewareFunc) {
	g.GET("/v1/hierarchy/:roomId", a.hierarchy, mw...)
}

func (a *api) hierarchy(c echo.Context) error {
	origin, err := Origin(c)
	if err != nil {
		return err
	}
	roomID, err := roomIDParam(c)
	if err != nil {
		return err
	}
	suggested, err := boolQuery(c, "suggested_only")
	if err != nil {
		return err
	}
	h, err := a.d.Rooms.FedHierarchy(c.Request().Context(), origin, roomID, suggested)
	if err != nil {
		return err
	}
	children := h.Children
	if children == nil {
		children = []*rooms.HierarchyRoom{}
	}
	return ok(c, map[string]any{"room": h.Room, "children": children, "inaccessible_children": h.Inaccessible})
}
