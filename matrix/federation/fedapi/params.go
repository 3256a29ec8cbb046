package fedapi

import (
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/merr"
)

// roomIDParam reads the roomId path parameter, which must be a room ID.
func roomIDParam(c echo.Context) (id.RoomID, error) {
	v := c.Param("roomId")
	if len(v) < 2 || v[0] != '!' {
		return "", merr.InvalidParam("%q is not a room ID", v)
	}
	return id.RoomID(v), nil
}

// validEventID accepts "$" followed by something: the format after the sigil depends on the
// room version, which the caller does not know yet.
func validEventID(v string) bool { return len(v) >= 2 && v[0] == '$' }

// eventIDParam reads an event ID from the path.
func eventIDParam(c echo.Context, name string) (id.EventID, error) {
	v := c.Param(name)
	if !validEventID(v) {
		return "", merr.InvalidParam("%q is not an event ID", v)
	}
	return id.EventID(v), nil
}

// eventIDQuery reads a required event ID from the query string.
func eventIDQuery(c echo.Context, name string) (id.EventID, error) {
	v := c.QueryParam(name)
	if v == "" {
		return "", merr.MissingParam("%s is required", name)
	}
	if !validEventID(v) {
		return "", merr.InvalidParam("%q is not an event ID", v)
	}
	return id.EventID(v), nil
}

// intQuery reads a non-negative integer query parameter; def when absent.
func intQuery(c echo.Context, name string, def int) (int, error) {
	v := c.QueryParam(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < 0 {
		return 0, merr.InvalidParam("%s must be a non-negative integer", name)
	}
	return n, nil
}

// boolQuery reads a boolean query parameter ("true" or "false"); false when absent.
func boolQuery(c echo.Context, name string) (bool, error) {
	switch c.QueryParam(name) {
	case "", "false":
		return false, nil
	case "true":
		return true, nil
	}
	return false, merr.InvalidParam("%s must be true or false", name)
}

// userIDValue checks a user ID's grammar (relaxed, as historical IDs exist).
func userIDValue(v string) (id.UserID, error) {
	u := id.UserID(v)
	if _, _, err := u.ParseAndValidateRelaxed(); err != nil {
		return "", merr.InvalidParam("%q is not a user ID", v)
	}
	return u, nil
}
