package clientapi

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/hearth-home/hearth/matrix/merr"
)

// errorHandler is the single place errors become responses.
func (a *API) errorHandler(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	var me *merr.Error
	var he *echo.HTTPError
	switch {
	case errors.As(err, &me):
	case errors.As(err, &he):
		me = fromHTTPError(he)
	default:
		a.log.Error("request failed", "method", c.Request().Method, "path", c.Request().URL.Path, "err", err)
		me = merr.Internal("internal server error")
	}
	if me.Status >= 500 {
		a.log.Error("request failed", "method", c.Request().Method, "path", c.Request().URL.Path, "err", err)
	}
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(me.Status)
		return
	}
	_ = c.JSON(me.Status, me.Body())
}

func fromHTTPError(he *echo.HTTPError) *merr.Error {
	msg := fmt.Sprint(he.Message)
	switch he.Code {
	case http.StatusNotFound:
		return merr.Unrecognized("unrecognized request")
	case http.StatusMethodNotAllowed:
		return &merr.Error{Status: http.StatusMethodNotAllowed, Code: "M_UNRECOGNIZED", Message: "method not allowed"}
	case http.StatusRequestEntityTooLarge:
		return merr.TooLarge("request body too large")
	case http.StatusUnauthorized:
		return merr.MissingToken("missing access token")
	case http.StatusBadRequest:
		return merr.Unknown("%s", msg)
	}
	return &merr.Error{Status: he.Code, Code: "M_UNKNOWN", Message: msg}
}
