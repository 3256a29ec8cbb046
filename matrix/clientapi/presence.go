package clientapi

import (
	"context"
	"net/http"

	"github.com/labstack/echo/v4"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/merr"
)

// Presence (spec: presence.yaml). The state lives in memory in matrix/sync, behind the
// `presence` config switch: when it is off, PUT is accepted and ignored and GET answers
// offline.

// MaxStatusMsgBytes bounds a status message (presence is kept in memory).
const MaxStatusMsgBytes = 1024

// PresenceStatus is one user's presence as GET /presence answers it.
type PresenceStatus struct {
	Presence        string  `json:"presence"`
	LastActiveAgo   *int64  `json:"last_active_ago,omitempty"`
	StatusMsg       *string `json:"status_msg,omitempty"`
	CurrentlyActive *bool   `json:"currently_active,omitempty"`
}

// Presence is the presence store (implemented by matrix/sync).
type Presence interface {
	// SetPresence sets a local user's state and status message (nil clears it).
	SetPresence(ctx context.Context, user id.UserID, presence string, statusMsg *string) error
	// GetPresence answers for user as seen by viewer: M_FORBIDDEN unless they share a room.
	GetPresence(ctx context.Context, viewer, user id.UserID) (*PresenceStatus, error)
}

func (a *API) routesPresence(g *echo.Group) {
	a.both(g, http.MethodGet, "/presence/:userId/status", a.getPresence, a.auth)
	a.both(g, http.MethodPut, "/presence/:userId/status", a.putPresence, a.auth)
}

func (a *API) getPresence(c echo.Context) error {
	u := id.UserID(c.Param("userId"))
	if _, _, err := u.Parse(); err != nil {
		return merr.InvalidParam("invalid user ID")
	}
	ctx := c.Request().Context()
	if _, _, err := a.accounts.Profile(ctx, u); err != nil {
		return err // M_NOT_FOUND for users this server does not know
	}
	if a.deps.Presence == nil {
		return c.JSON(http.StatusOK, PresenceStatus{Presence: "offline"})
	}
	st, err := a.deps.Presence.GetPresence(ctx, session(c).User, u)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, st)
}

func (a *API) putPresence(c echo.Context) error {
	u, err := ownUser(c)
	if err != nil {
		return err
	}
	var body struct {
		Presence  *string `json:"presence"`
		StatusMsg *string `json:"status_msg"`
	}
	if err := readJSON(c, &body); err != nil {
		return err
	}
	if body.Presence == nil {
		return merr.BadJSON("missing presence")
	}
	switch *body.Presence {
	case "online", "offline", "unavailable":
	default:
		return merr.InvalidParam("presence must be online, offline or unavailable")
	}
	if body.StatusMsg != nil && len(*body.StatusMsg) > MaxStatusMsgBytes {
		return merr.InvalidParam("status_msg is longer than %d bytes", MaxStatusMsgBytes)
	}
	if a.deps.Presence != nil {
		if err := a.deps.Presence.SetPresence(c.Request().Context(), u, *body.Presence, body.StatusMsg); err != nil {
			return err
		}
	}
	return noContent(c)
}
