package clientapi

import (
	"encoding/json"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/hearth-home/hearth/matrix/merr"
)

// The user directory (spec: users.yaml).

func (a *API) routesUserDirectory(g *echo.Group) {
	a.both(g, http.MethodPost, "/user_directory/search", a.searchUserDirectory, a.auth, a.rateLimited)
}

func (a *API) searchUserDirectory(c echo.Context) error {
	var body struct {
		SearchTerm json.RawMessage `json:"search_term"`
		Limit      *int            `json:"limit"`
	}
	if err := readJSON(c, &body); err != nil {
		return err
	}
	if len(body.SearchTerm) == 0 || string(body.SearchTerm) == "null" {
		return merr.MissingParam("search_term is required")
	}
	var term string
	if err := json.Unmarshal(body.SearchTerm, &term); err != nil {
		return merr.BadJSON("search_term must be a string")
	}
	limit := 10
	if body.Limit != nil {
		if *body.Limit < 0 {
			return merr.InvalidParam("limit must not be negative")
		}
		limit = *body.Limit
	}
	results, limited, err := a.rooms.SearchUsers(c.Request().Context(), session(c).User, term, limit)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"limited": limited, "results": results})
}
