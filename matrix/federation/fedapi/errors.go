package fedapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/hearth-home/hearth/matrix/merr"
)

// maxBodyBytes bounds a request body of these endpoints (key queries and claims are the
// largest; a megabyte is far above any honest one).
const maxBodyBytes = 1 << 20

// Errors is the middleware that turns a handler's error into the Matrix JSON error response
// (merr errors with their status and errcode; anything else a logged 500 M_UNKNOWN) and a
// panic into a 500. The integrator's handlers on the same group use it too.
func Errors(log *slog.Logger) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) (err error) {
			defer func() {
				if r := recover(); r != nil {
					log.Error("panic in federation handler", "path", c.Request().URL.Path, "panic", r)
					err = WriteError(c, log, merr.Internal("internal server error"))
				}
			}()
			if err := next(c); err != nil {
				return WriteError(c, log, err)
			}
			return nil
		}
	}
}

// WriteError writes err as a Matrix error response unless a response has been started.
func WriteError(c echo.Context, log *slog.Logger, err error) error {
	if c.Response().Committed {
		return nil
	}
	me, ok := merr.As(err)
	if !ok {
		var he *echo.HTTPError
		if errors.As(err, &he) {
			me = &merr.Error{Status: he.Code, Code: "M_UNKNOWN", Message: http.StatusText(he.Code)}
			if he.Code == http.StatusNotFound || he.Code == http.StatusMethodNotAllowed {
				me.Code = "M_UNRECOGNIZED"
			}
		} else {
			me = merr.Internal("internal server error")
		}
	}
	if me.Status >= 500 {
		log.Error("federation request failed", "method", c.Request().Method, "path", c.Request().URL.Path, "err", err)
	}
	return c.JSON(me.Status, me.Body())
}

// readJSON decodes the body into v: M_NOT_JSON when it is not JSON, M_BAD_JSON when it has
// the wrong shape, M_TOO_LARGE past maxBodyBytes. An empty body counts as {}.
func readJSON(c echo.Context, v any) error {
	body, err := io.ReadAll(io.LimitReader(c.Request().Body, maxBodyBytes+1))
	if err != nil {
		return merr.Unknown("could not read request body")
	}
	if len(body) > maxBodyBytes {
		return merr.TooLarge("request body too large")
	}
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	}
	if !json.Valid(body) || !utf8.Valid(body) {
		return merr.NotJSON("request body is not valid JSON")
	}
	if err := json.Unmarshal(body, v); err != nil {
		return merr.BadJSON("request body has the wrong shape: %v", err)
	}
	return nil
}
