package clientapi

import (
	"net/http"

	"github.com/labstack/echo/v4"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/merr"
)

// Thread subscriptions (MSC4306, unstable prefix io.element.msc4306).
func (a *API) routesThreadSubs(g *echo.Group) {
	if a.deps.ThreadSubs == nil {
		return
	}
	const p = "/unstable/io.element.msc4306/rooms/:roomId/thread/:threadRootId/subscription"
	g.GET(p, a.getThreadSub, a.auth)
	g.PUT(p, a.putThreadSub, a.auth)
	g.DELETE(p, a.deleteThreadSub, a.auth)
}

// threadParams validates the room and thread root path parameters.
func threadParams(c echo.Context) (id.RoomID, id.EventID, error) {
	room, root := c.Param("roomId"), c.Param("threadRootId")
	if len(room) < 2 || room[0] != '!' {
		return "", "", merr.InvalidParam("%q is not a room ID", room)
	}
	if len(root) < 2 || root[0] != '$' {
		return "", "", merr.InvalidParam("%q is not an event ID", root)
	}
	return id.RoomID(room), id.EventID(root), nil
}

func (a *API) getThreadSub(c echo.Context) error {
	room, root, err := threadParams(c)
	if err != nil {
		return err
	}
	sub, err := a.deps.ThreadSubs.Get(c.Request().Context(), session(c).User, room, root)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, sub)
}

func (a *API) putThreadSub(c echo.Context) error {
	room, root, err := threadParams(c)
	if err != nil {
		return err
	}
	var body struct {
		Automatic *string `json:"automatic"`
	}
	if err := readJSON(c, &body); err != nil {
		return err
	}
	var cause id.EventID
	if body.Automatic != nil {
		if len(*body.Automatic) < 2 || (*body.Automatic)[0] != '$' {
			return merr.InvalidParam("automatic must be an event ID")
		}
		cause = id.EventID(*body.Automatic)
	}
	if err := a.deps.ThreadSubs.Subscribe(c.Request().Context(), session(c).User, room, root, cause); err != nil {
		return err
	}
	return noContent(c)
}

func (a *API) deleteThreadSub(c echo.Context) error {
	room, root, err := threadParams(c)
	if err != nil {
		return err
	}
	if err := a.deps.ThreadSubs.Unsubscribe(c.Request().Context(), session(c).User, room, root); err != nil {
		return err
	}
	return noContent(c)
}
