package clientapi

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/accounts"
	"github.com/hearth-home/hearth/matrix/admin"
	"github.com/hearth-home/hearth/matrix/appservice"
	"github.com/hearth-home/hearth/matrix/delayed"
	"github.com/hearth-home/hearth/matrix/keys"
	"github.com/hearth-home/hearth/matrix/media"
	"github.com/hearth-home/hearth/matrix/push"
	"github.com/hearth-home/hearth/matrix/rooms"
	"github.com/hearth-home/hearth/matrix/search"
	"github.com/hearth-home/hearth/matrix/threadsubs"
)

// Syncer answers /sync (implemented by matrix/sync).
type Syncer interface {
	Sync(ctx context.Context, sess *accounts.Session, q SyncQuery) (any, error)
}

// SyncQuery is the parsed /sync query string.
type SyncQuery struct {
	Since       string
	Timeout     time.Duration
	FullState   bool
	SetPresence string
	Filter      []byte // inline JSON or loaded by ID
	// UseStateAfter asks for state_after instead of state (spec v1.16).
	UseStateAfter bool
}

// Ephemeral is typing and receipts (implemented by matrix/sync's ephemeral store).
type Ephemeral interface {
	SetTyping(ctx context.Context, roomID id.RoomID, user id.UserID, typing bool, timeout time.Duration) error
	PutReceipt(ctx context.Context, roomID id.RoomID, user id.UserID, typ string, eventID id.EventID, threadID string) error
}

// Options configure the API.
type Options struct {
	ServerName        string
	PublicBaseURL     string
	OpenRegistration  bool
	SharedSecret      string
	MinPasswordLength int
	RateLimit         bool
	PerSecond         float64
	Burst             int
	MaxBodyBytes      int64
	SyncTimeoutMax    time.Duration
	Version           string
}

// Deps are the domain services the handlers call. Each new API area adds its service here.
type Deps struct {
	Accounts  *accounts.Service
	Rooms     *rooms.Service
	Sync      Syncer
	Ephemeral Ephemeral
	Presence  Presence // presence.go; nil answers as if presence were switched off
	Keys      *keys.Service
	Media     *media.Service  // media.go; nil serves no media routes
	Search    *search.Service // search.go; nil answers M_UNRECOGNIZED
	Admin     *admin.Service  // admin.go; nil answers M_UNRECOGNIZED
	Push      *push.Service   // pushrules.go; nil serves the default rules read-only

	AppServices *appservice.Service // appservice.go; nil: no application services
	Federation  Federation          // federation.go; nil: no rooms on other servers
	Delayed     *delayed.Service    // delayed.go (MSC4140); nil: the delay parameter is ignored
	ThreadSubs  *threadsubs.Service // threadsubs.go (MSC4306); nil: no routes
}

// API holds the handlers' dependencies.
type API struct {
	opts     Options
	accounts *accounts.Service
	rooms    *rooms.Service
	sync     Syncer
	eph      Ephemeral
	deps     Deps
	log      *slog.Logger
	limiter  *limiter
}

// New builds the API.
func New(opts Options, d Deps, log *slog.Logger) *API {
	return &API{opts: opts, accounts: d.Accounts, rooms: d.Rooms, sync: d.Sync, eph: d.Ephemeral, deps: d, log: log, limiter: newLimiter(opts.PerSecond, opts.Burst)}
}

// Register mounts every route on e. Unknown paths and methods answer M_UNRECOGNIZED.
func (a *API) Register(e *echo.Echo) {
	e.HTTPErrorHandler = a.errorHandler
	e.Use(a.recoverer, a.cors, a.bodyLimit, UnescapeParams)

	c := e.Group("/_matrix/client")
	a.routesMeta(e, c)
	a.routesSynapseAdmin(e)
	a.routesAuth(c)
	a.routesAccount(c)
	a.routesDevices(c)
	a.routesProfile(c)
	a.routesRooms(c)
	a.routesMembership(c)
	a.routesEvents(c)
	a.routesDirectory(c)
	a.routesSync(c)
	a.routesSlidingSync(c)
	a.routesAccountData(c)
	a.routesEphemeral(c)
	a.routesPushRules(c)
	a.routesMisc(c)
	a.routesUpgrade(c)
	a.routesKnock(c)
	a.routesTimestamp(c)
	a.routesRoomSummary(c)
	a.routesHierarchy(c) // hierarchy.go
	a.routesReports(e, c)
	a.routesOpenID(c)
	a.routesTokens(c)
	a.routesUserDirectory(c)
	a.routesRelations(c)
	a.routesPresence(c)
	a.routesKeys(c)
	a.routesMedia(e)
	a.routesSearch(c)
	a.routesAdmin(e)
	a.routesAppService(c)
	a.routesDelayed(c)    // delayed.go
	a.routesThreadSubs(c) // threadsubs.go
}

// versions lists every path prefix we serve: /r0 for old clients, /v3 and /v1 current.
func (a *API) both(g *echo.Group, method, path string, h echo.HandlerFunc, mw ...echo.MiddlewareFunc) {
	for _, v := range []string{"/v3", "/r0"} {
		g.Add(method, v+path, h, mw...)
	}
}

func noContent(c echo.Context) error { return c.JSON(http.StatusOK, struct{}{}) }
