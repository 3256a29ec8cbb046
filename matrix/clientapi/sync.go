package clientapi

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/merr"
)

func (a *API) routesSync(g *echo.Group) {
	a.both(g, http.MethodGet, "/sync", a.handleSync, a.auth)
	a.both(g, http.MethodPost, "/user/:userId/filter", a.postFilter, a.auth)
	a.both(g, http.MethodGet, "/user/:userId/filter/:filterId", a.getFilter, a.auth)
}

func (a *API) handleSync(c echo.Context) error {
	sess := session(c)
	q := SyncQuery{Since: c.QueryParam("since"), FullState: c.QueryParam("full_state") == "true", SetPresence: c.QueryParam("set_presence"),
		UseStateAfter: c.QueryParam("use_state_after") == "true" || c.QueryParam("org.matrix.msc4222.use_state_after") == "true"}
	if t := c.QueryParam("timeout"); t != "" {
		ms, err := strconv.ParseInt(t, 10, 64)
		if err != nil || ms < 0 {
			return merr.InvalidParam("timeout must be a non-negative integer")
		}
		q.Timeout = min(time.Duration(ms)*time.Millisecond, a.opts.SyncTimeoutMax)
	}
	if f := c.QueryParam("filter"); f != "" {
		if strings.HasPrefix(strings.TrimSpace(f), "{") {
			q.Filter = []byte(f)
		} else {
			b, err := a.accounts.Filter(c.Request().Context(), sess.User, f)
			if err != nil {
				return merr.InvalidParam("unknown filter ID %q", f)
			}
			q.Filter = b
		}
	}
	resp, err := a.sync.Sync(c.Request().Context(), sess, q)
	if err != nil {
		if c.Request().Context().Err() != nil {
			return nil // client went away; nothing to answer
		}
		return err
	}
	return c.JSON(http.StatusOK, resp)
}

// ownUser checks a path user ID is the caller.
func ownUser(c echo.Context) (id.UserID, error) {
	sess := session(c)
	u := id.UserID(c.Param("userId"))
	if u != sess.User {
		return "", merr.Forbidden("you may only act for yourself")
	}
	return u, nil
}

func (a *API) postFilter(c echo.Context) error {
	u, err := ownUser(c)
	if err != nil {
		return err
	}
	body, err := readObject(c)
	if err != nil {
		return err
	}
	fid, err := a.accounts.PutFilter(c.Request().Context(), u, body)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]string{"filter_id": fid})
}

func (a *API) getFilter(c echo.Context) error {
	u, err := ownUser(c)
	if err != nil {
		return err
	}
	b, err := a.accounts.Filter(c.Request().Context(), u, c.Param("filterId"))
	if err != nil {
		return err
	}
	return c.JSONBlob(http.StatusOK, b)
}
