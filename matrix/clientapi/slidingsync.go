package clientapi

// Simplified Sliding Sync (MSC4186), the sync Element X requires.

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/hearth-home/hearth/matrix/accounts"
	"github.com/hearth-home/hearth/matrix/merr"
)

// SlidingSyncPath is where MSC4186 is served while it is unstable.
const SlidingSyncPath = "/unstable/org.matrix.simplified_msc3575/sync"

// SlidingSyncFeature is the unstable_features flag of /versions.
const SlidingSyncFeature = "org.matrix.simplified_msc3575"

// SlidingSyncer answers Simplified Sliding Sync (implemented by matrix/sync's Service, which is
// also the Syncer; the handler finds it there).
type SlidingSyncer interface {
	SlidingSync(ctx context.Context, sess *accounts.Session, q SlidingQuery, body []byte) (any, error)
}

// SlidingQuery is what the query string says; pos and timeout may also come in the body (the
// MSC's current text), which the syncer reads when the query does not set them.
type SlidingQuery struct {
	Pos        string
	Timeout    time.Duration
	TimeoutSet bool
	MaxTimeout time.Duration
}

func (a *API) routesSlidingSync(g *echo.Group) {
	g.POST(SlidingSyncPath, a.handleSlidingSync, a.auth)
}

func (a *API) handleSlidingSync(c echo.Context) error {
	ss, ok := a.sync.(SlidingSyncer)
	if !ok {
		return merr.Unrecognized("sliding sync is not available")
	}
	q := SlidingQuery{Pos: c.QueryParam("pos"), MaxTimeout: a.opts.SyncTimeoutMax}
	if t := c.QueryParam("timeout"); t != "" {
		ms, err := strconv.ParseInt(t, 10, 64)
		if err != nil || ms < 0 {
			return merr.InvalidParam("timeout must be a non-negative integer")
		}
		q.Timeout, q.TimeoutSet = time.Duration(min(ms, int64(time.Hour/time.Millisecond)))*time.Millisecond, true
	}
	switch p := c.QueryParam("set_presence"); p {
	case "", "online", "offline", "unavailable":
	default:
		return merr.InvalidParam("set_presence must be online, offline or unavailable")
	}
	body, err := readObject(c)
	if err != nil {
		return err
	}
	resp, err := ss.SlidingSync(c.Request().Context(), session(c), q, body)
	if err != nil {
		if c.Request().Context().Err() != nil {
			return nil // the client went away (Element X cancels a poll to change its lists)
		}
		return err
	}
	return c.JSON(http.StatusOK, resp)
}
