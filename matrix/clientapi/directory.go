package clientapi

import (
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/merr"
	"github.com/hearth-home/hearth/matrix/rooms"
)

// Room aliases and the published room directory (spec: directory.yaml, list_public_rooms.yaml).

func (a *API) routesDirectory(g *echo.Group) {
	// The spec lists no security for the two GETs of aliases and visibility nor for
	// GET /publicRooms: they answer without an access token.
	a.both(g, http.MethodGet, "/directory/room/:roomAlias", a.getRoomAlias)
	a.both(g, http.MethodPut, "/directory/room/:roomAlias", a.putRoomAlias, a.auth)
	a.both(g, http.MethodDelete, "/directory/room/:roomAlias", a.deleteRoomAlias, a.auth)
	a.both(g, http.MethodGet, "/rooms/:roomId/aliases", a.getLocalAliases, a.auth)
	a.both(g, http.MethodGet, "/directory/list/room/:roomId", a.getDirectoryVisibility)
	a.both(g, http.MethodPut, "/directory/list/room/:roomId", a.putDirectoryVisibility, a.auth)
	a.both(g, http.MethodGet, "/publicRooms", a.getPublicRooms)
	a.both(g, http.MethodPost, "/publicRooms", a.postPublicRooms, a.auth)
}

func aliasArg(c echo.Context) (string, error) {
	v, err := pathArg(c, "roomAlias")
	if err != nil {
		return "", err
	}
	if !validAlias(v) {
		return "", merr.InvalidParam("%q is not a valid room alias", v)
	}
	return v, nil
}

func (a *API) getRoomAlias(c echo.Context) error {
	alias, err := aliasArg(c)
	if err != nil {
		return err
	}
	// A remote alias is asked of its server over federation.
	if ra := id.RoomAlias(alias); a.deps.Federation != nil && aliasServer(ra) != a.opts.ServerName {
		roomID, servers, err := a.deps.Federation.ResolveRemoteAlias(c.Request().Context(), ra)
		if err != nil {
			return err
		}
		if servers == nil {
			servers = []string{}
		}
		return c.JSON(http.StatusOK, map[string]any{"room_id": roomID.String(), "servers": servers})
	}
	roomID, err := a.rooms.ResolveAlias(c.Request().Context(), alias)
	if err != nil {
		return err
	}
	servers, err := a.rooms.JoinedServers(c.Request().Context(), roomID)
	if err != nil || len(servers) == 0 {
		servers = []string{a.opts.ServerName}
	}
	return c.JSON(http.StatusOK, map[string]any{"room_id": roomID.String(), "servers": servers})
}

func (a *API) putRoomAlias(c echo.Context) error {
	alias, err := aliasArg(c)
	if err != nil {
		return err
	}
	var body struct {
		RoomID *string `json:"room_id"`
	}
	if err := readJSON(c, &body); err != nil {
		return err
	}
	if body.RoomID == nil {
		return merr.BadJSON("missing required field room_id")
	}
	if !strings.HasPrefix(*body.RoomID, "!") {
		return merr.InvalidParam("%q is not a room ID", *body.RoomID)
	}
	roomID := id.RoomID(*body.RoomID)
	sess := session(c)
	ctx := c.Request().Context()
	if !sess.Admin {
		// Only members may point names at a room (a server admin may always).
		m, _, err := a.rooms.Membership(ctx, roomID, sess.User)
		if err != nil {
			return err
		}
		if m != "join" {
			return merr.Forbidden("you are not in this room")
		}
	}
	if err := a.appServiceAliasCheck(c, alias); err != nil { // appservice.go
		return err
	}
	if err := a.rooms.CreateAlias(ctx, sess.User, alias, roomID); err != nil {
		return err
	}
	return noContent(c)
}

func (a *API) deleteRoomAlias(c echo.Context) error {
	alias, err := aliasArg(c)
	if err != nil {
		return err
	}
	sess := session(c)
	if err := a.rooms.DeleteAlias(c.Request().Context(), sess.User, sess.Admin, alias); err != nil {
		return err
	}
	return noContent(c)
}

func (a *API) getLocalAliases(c echo.Context) error {
	roomID, err := roomIDArg(c)
	if err != nil {
		return err
	}
	sess := session(c)
	ctx := c.Request().Context()
	m, _, err := a.rooms.Membership(ctx, roomID, sess.User)
	if err != nil {
		if isNotFound(err) {
			return merr.Forbidden("you are not a member of this room")
		}
		return err
	}
	if m != "join" && !sess.Admin {
		wr, err := a.worldReadable(ctx, roomID)
		if err != nil {
			return err
		}
		if !wr {
			return merr.Forbidden("you are not a member of this room")
		}
	}
	aliases, err := a.rooms.Aliases(ctx, roomID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"aliases": aliases})
}

func (a *API) getDirectoryVisibility(c echo.Context) error {
	roomID, err := roomIDArg(c)
	if err != nil {
		return err
	}
	pub, err := a.rooms.Visibility(c.Request().Context(), roomID)
	if err != nil {
		return err
	}
	v := "private"
	if pub {
		v = "public"
	}
	return c.JSON(http.StatusOK, map[string]string{"visibility": v})
}

func (a *API) putDirectoryVisibility(c echo.Context) error {
	roomID, err := roomIDArg(c)
	if err != nil {
		return err
	}
	var body struct {
		Visibility *string `json:"visibility"`
	}
	if err := readJSON(c, &body); err != nil {
		return err
	}
	vis := "public"
	if body.Visibility != nil {
		vis = *body.Visibility
	}
	if vis != "public" && vis != "private" {
		return merr.InvalidParam("visibility must be public or private")
	}
	sess := session(c)
	ctx := c.Request().Context()
	if _, err := a.rooms.Version(roomID); err != nil {
		return err // 404 for a room not known here, before any permission question
	}
	if !sess.Admin {
		// Who may list a room: a member allowed to set its canonical alias (as Synapse does).
		m, _, err := a.rooms.Membership(ctx, roomID, sess.User)
		if err != nil {
			return err
		}
		if m != "join" {
			return merr.Forbidden("you are not in this room")
		}
		pl, err := a.rooms.PowerLevels(ctx, roomID)
		if err != nil {
			return err
		}
		if pl.GetUserLevel(sess.User) < pl.GetEventLevel(event.StateCanonicalAlias) {
			return merr.Forbidden("you may not change this room's visibility in the directory")
		}
	}
	if err := a.rooms.SetVisibility(ctx, roomID, vis == "public"); err != nil {
		return err
	}
	return noContent(c)
}

// checkDirectoryServer accepts an absent server parameter or our own name: other servers'
// directories need federation.
func (a *API) checkDirectoryServer(c echo.Context) error {
	if s := c.QueryParam("server"); s != "" && s != a.opts.ServerName {
		return merr.InvalidParam("the published room directory of %s cannot be fetched from here", s)
	}
	return nil
}

type publicRoomsResponse struct {
	Chunk     []*rooms.Summary `json:"chunk"`
	NextBatch string           `json:"next_batch,omitempty"`
	PrevBatch string           `json:"prev_batch,omitempty"`
	Total     int              `json:"total_room_count_estimate"`
}

func (a *API) getPublicRooms(c echo.Context) error {
	limit, err := intParam(c, "limit", 0)
	if err != nil {
		return err
	}
	body := map[string]any{}
	if limit > 0 {
		body["limit"] = limit
	}
	if s := c.QueryParam("since"); s != "" {
		body["since"] = s
	}
	if done, err := a.remoteDirectory(c, body); done {
		return err
	}
	if err := a.checkDirectoryServer(c); err != nil {
		return err
	}
	return a.publicRooms(c, rooms.PublicRoomsRequest{Limit: limit, Since: c.QueryParam("since")})
}

func (a *API) postPublicRooms(c echo.Context) error {
	if a.deps.Federation == nil {
		if err := a.checkDirectoryServer(c); err != nil {
			return err
		}
	}
	var body rooms.PublicRoomsBody
	if err := readJSON(c, &body); err != nil {
		return err
	}
	if srv := c.QueryParam("server"); srv != "" && srv != a.opts.ServerName {
		if done, err := a.remoteDirectory(c, body); done {
			return err
		}
	}
	req, thirdParty, err := body.Request()
	if err != nil {
		return err
	}
	if thirdParty {
		// No application service here publishes third-party networks, so such a listing is empty.
		return c.JSON(http.StatusOK, publicRoomsResponse{Chunk: []*rooms.Summary{}})
	}
	return a.publicRooms(c, req)
}

func (a *API) publicRooms(c echo.Context, req rooms.PublicRoomsRequest) error {
	page, err := a.rooms.PublicRooms(c.Request().Context(), req)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, publicRoomsResponse{Chunk: page.Chunk, NextBatch: page.NextBatch, PrevBatch: page.PrevBatch, Total: page.Total})
}
