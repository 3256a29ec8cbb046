package clientapi

import (
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/merr"
	"github.com/hearth-home/hearth/matrix/rooms"
)

// Knocking (spec: knocking.yaml; room versions 7 and later). The knock is an m.room.member
// event with membership knock; the auth rules decide whether the room's join rule (knock or
// knock_restricted) and the user's membership allow it. The room's members then invite the
// user (or kick them to refuse); the user may withdraw by leaving.

func (a *API) routesKnock(g *echo.Group) {
	a.both(g, http.MethodPost, "/knock/:roomIdOrAlias", a.knockRoom, a.auth, a.rateLimited)
}

// roomIDOrAliasArg resolves the roomIdOrAlias path parameter to a room here. via and
// server_name name servers to ask; without federation every room we can act on is local.
func (a *API) roomIDOrAliasArg(c echo.Context) (id.RoomID, error) {
	v, err := pathArg(c, "roomIdOrAlias")
	if err != nil {
		return "", err
	}
	switch {
	case strings.HasPrefix(v, "!") && len(v) > 1:
		return id.RoomID(v), nil
	case strings.HasPrefix(v, "#"):
		if !validAlias(v) {
			return "", merr.InvalidParam("%q is not a valid room alias", v)
		}
		return a.rooms.ResolveAlias(c.Request().Context(), v)
	}
	return "", merr.InvalidParam("%q is neither a room ID nor a room alias", v)
}

func (a *API) knockRoom(c echo.Context) error {
	roomID, err := a.roomIDOrAliasArg(c)
	if err != nil {
		return err
	}
	var body struct {
		Reason *string `json:"reason"`
	}
	if err := readJSON(c, &body); err != nil {
		return err
	}
	u := session(c).User
	if a.remoteRoom(roomID) {
		if _, err := a.deps.Federation.KnockRemote(c.Request().Context(), roomID, u, a.viaServers(c, roomID, u, nil), deref(body.Reason)); err != nil {
			return err
		}
		return c.JSON(http.StatusOK, map[string]string{"room_id": roomID.String()})
	}
	_, err = a.rooms.ChangeMembership(c.Request().Context(), roomID, rooms.MemberChange{Sender: u, Target: u, Membership: "knock", Reason: deref(body.Reason)})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]string{"room_id": roomID.String()})
}
