package fedapi

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/hearth-home/hearth/matrix/accounts"
	"github.com/hearth-home/hearth/matrix/clientapi"
	"github.com/hearth-home/hearth/matrix/keys"
	"github.com/hearth-home/hearth/matrix/media"
	"github.com/hearth-home/hearth/matrix/merr"
	"github.com/hearth-home/hearth/matrix/rooms"
)

// OriginKey is the echo context key under which the authentication middleware stores the
// requesting server's name (a string).
const OriginKey = "xmatrix.origin"

// Deps are what the handlers need. Rooms and Accounts are required; a nil Keys or Media
// answers those endpoints with 404 M_UNRECOGNIZED.
type Deps struct {
	ServerName string
	Version    string // the implementation version for GET /v1/version
	Rooms      *rooms.Service
	Accounts   *accounts.Service
	Keys       *keys.Service
	Media      *media.Service
	// Auth verifies the X-Matrix signature and sets OriginKey. It is applied to every route
	// except /v1/version and /v1/openid/userinfo, which the spec leaves unauthenticated, so
	// it must not also be applied to the whole group. Nil: an outer middleware sets the key.
	Auth echo.MiddlewareFunc
	Log  *slog.Logger
	Now  func() time.Time // nil: time.Now
}

// api holds the handlers' dependencies.
type api struct {
	d   Deps
	log *slog.Logger
	now func() time.Time
}

// Register mounts the read endpoints on g, the /_matrix/federation group. Every route
// renders its errors as Matrix JSON itself (Errors), whatever the echo instance's error
// handler does, and decodes percent-encoded path parameters.
func Register(g *echo.Group, d Deps) {
	a := &api{d: d, log: d.Log, now: d.Now}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if a.now == nil {
		a.now = time.Now
	}
	open := []echo.MiddlewareFunc{Errors(a.log), clientapi.UnescapeParams}
	signed := open
	if d.Auth != nil {
		signed = append(append([]echo.MiddlewareFunc{}, open...), d.Auth)
	}
	a.routesVersion(g, open)
	a.routesEvents(g, signed)
	a.routesBackfill(g, signed)
	a.routesQuery(g, signed)
	a.routesKeys(g, signed)
	a.routesDirectory(g, signed)
	a.routesHierarchy(g, signed)
	a.routesTimestamp(g, signed)
	a.routesOpenID(g, open)
	a.routesMedia(g, signed)
}

// Origin returns the authenticated requesting server. Without one (a route mounted without
// the authentication middleware) the request is 401 M_UNAUTHORIZED.
func Origin(c echo.Context) (string, error) {
	o, _ := c.Get(OriginKey).(string)
	if o == "" {
		return "", merr.Unauthorized("request is not signed by a server")
	}
	return o, nil
}

// transaction is the spec's Transaction shape that /event and /backfill answer with.
type transaction struct {
	Origin         string `json:"origin"`
	OriginServerTS int64  `json:"origin_server_ts"`
	PDUs           []any  `json:"pdus"`
}

func (a *api) transaction(pdus []any) transaction {
	return transaction{Origin: a.d.ServerName, OriginServerTS: a.now().UnixMilli(), PDUs: pdus}
}

func ok(c echo.Context, v any) error { return c.JSON(http.StatusOK, v) }
