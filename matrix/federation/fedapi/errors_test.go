package fedapi

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/hearth-home/hearth/matrix/merr"
)

// Errors renders every failure as Matrix JSON, whatever the echo instance's own handler is.
func TestErrorsMiddleware(t *testing.T) {
	cases := []struct {
		name   string
		h      echo.HandlerFunc
		status int
		code   string
	}{
		{"merr", func(echo.Context) error { return merr.Forbidden("no") }, http.StatusForbidden, "M_FORBIDDEN"},
		{"wrapped merr", func(echo.Context) error { return errors.Join(errors.New("ctx"), merr.NotFound("x")) }, http.StatusNotFound, "M_NOT_FOUND"},
		{"plain error", func(echo.Context) error { return errors.New("disk on fire") }, http.StatusInternalServerError, "M_UNKNOWN"},
		{"echo 404", func(echo.Context) error { return echo.ErrNotFound }, http.StatusNotFound, "M_UNRECOGNIZED"},
		{"panic", func(echo.Context) error { panic("boom") }, http.StatusInternalServerError, "M_UNKNOWN"},
	}
	for _, c := range cases {
		e := echo.New()
		rec := httptest.NewRecorder()
		ctx := e.NewContext(httptest.NewRequest(http.MethodGet, "/", nil), rec)
		if err := Errors(slog.New(slog.DiscardHandler))(c.h)(ctx); err != nil {
			t.Errorf("%s: middleware returned %v", c.name, err)
		}
		var m map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil || rec.Code != c.status || m["errcode"] != c.code {
			t.Errorf("%s: %d %s, want %d %s", c.name, rec.Code, rec.Body, c.status, c.code)
		}
	}
}
