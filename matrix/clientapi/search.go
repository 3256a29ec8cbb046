package clientapi

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/hearth-home/hearth/matrix/merr"
	"github.com/hearth-home/hearth/matrix/rooms"
	"github.com/hearth-home/hearth/matrix/search"
)

// Server-side search: POST /search (room_events only; matrix/search does the work).

func (a *API) routesSearch(c *echo.Group) {
	a.both(c, http.MethodPost, "/search", a.search, a.auth)
}

func (a *API) search(c echo.Context) error {
	var body struct {
		Categories *struct {
			RoomEvents *search.RoomEvents `json:"room_events"`
		} `json:"search_categories"`
	}
	if err := readJSON(c, &body); err != nil {
		return err
	}
	if body.Categories == nil {
		return merr.BadJSON("search_categories is required")
	}
	out := map[string]any{}
	if q := body.Categories.RoomEvents; q != nil {
		if a.deps.Search == nil {
			return merr.Unrecognized("search is not available")
		}
		s := session(c)
		res, err := a.deps.Search.Search(c.Request().Context(), rooms.Requester{User: s.User, Device: s.Device}, q, c.QueryParam("next_batch"))
		if err != nil {
			return err
		}
		out["room_events"] = res
	}
	return c.JSON(http.StatusOK, map[string]any{"search_categories": out})
}
