package clientapi

import (
	"context"
	"strings"

	"github.com/labstack/echo/v4"
	"maunium.net/go/mautrix/id"
)

// Federation is what the client API asks of the federation core: joins, leaves and knocks on
// rooms this server is not in, and aliases of other servers. Nil: every room is local.
type Federation interface {
	JoinRemote(ctx context.Context, roomID id.RoomID, user id.UserID, servers []string, extra map[string]any) (id.EventID, error)
	LeaveRemote(ctx context.Context, roomID id.RoomID, user id.UserID, servers []string, reason string) error
	KnockRemote(ctx context.Context, roomID id.RoomID, user id.UserID, servers []string, reason string) (id.EventID, error)
	ResolveRemoteAlias(ctx context.Context, alias id.RoomAlias) (id.RoomID, []string, error)
}

// remoteRoom reports whether a room must be reached over federation: it is unknown here or
// known only through an invite or knock.
func (a *API) remoteRoom(roomID id.RoomID) bool {
	if a.deps.Federation == nil {
		return false
	}
	_, ok, err := a.rooms.RoomVersion(roomID)
	return err == nil && !ok
}

// viaServers collects the servers a client names to reach a room (via and the deprecated
// server_name), then those the room itself suggests.
func (a *API) viaServers(c echo.Context, roomID id.RoomID, user id.UserID, more []string) []string {
	q := c.QueryParams()
	out := append(append([]string{}, q["via"]...), q["server_name"]...)
	out = append(out, more...)
	if stub, err := a.rooms.StubServers(c.Request().Context(), roomID, user); err == nil {
		out = append(out, stub...)
	}
	if _, srv, ok := strings.Cut(roomID.String(), ":"); ok {
		out = append(out, srv)
	}
	return out
}

func aliasServer(a id.RoomAlias) string {
	_, srv, _ := strings.Cut(string(a), ":")
	return srv
}
