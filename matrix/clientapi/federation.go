package clientapi

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
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
	QueryProfile(ctx context.Context, user id.UserID) (displayName, avatarURL string, err error)
	RemotePublicRooms(ctx context.Context, server string, body json.RawMessage) (json.RawMessage, error)
}

// remoteDirectory answers a /publicRooms request naming another server by asking it.
func (a *API) remoteDirectory(c echo.Context, body any) (bool, error) {
	srv := c.QueryParam("server")
	if srv == "" || srv == a.opts.ServerName || a.deps.Federation == nil {
		return false, nil
	}
	b, err := json.Marshal(body)
	if err != nil {
		return true, err
	}
	out, err := a.deps.Federation.RemotePublicRooms(c.Request().Context(), srv, b)
	if err != nil {
		return true, err
	}
	return true, c.JSONBlob(http.StatusOK, out)
}

// anyProfile reads a local user's profile (or asks the application service owning the user),
// or a remote user's from their server.
func (a *API) anyProfile(ctx context.Context, u id.UserID) (string, string, error) {
	if a.deps.Federation != nil && u.Homeserver() != a.opts.ServerName {
		return a.deps.Federation.QueryProfile(ctx, u)
	}
	return a.profileOrQueryAS(ctx, u) // appservice.go
}

// remoteRoom reports whether a room must be reached over federation: it is unknown here, known
// only through an invite or knock, or no local user is in it any more (our copy is stale).
func (a *API) remoteRoom(roomID id.RoomID) bool {
	if a.deps.Federation == nil {
		return false
	}
	if _, ok, err := a.rooms.RoomVersion(roomID); err != nil || !ok {
		return err == nil
	}
	resident, err := a.rooms.IsResident(roomID)
	if err != nil || resident {
		return false
	}
	// Not in the room any more: only other servers can say what it is now. With nobody left
	// anywhere the room is still ours to rejoin locally.
	servers, err := a.rooms.JoinedServers(context.Background(), roomID)
	return err == nil && len(servers) > 0
}

// viaServers collects the servers a client names to reach a room (via and the deprecated
// server_name), then those the room itself suggests (whoever invited the user). The server in
// the room ID is only a last resort when nothing else names one: it may have left the room, and
// a client that lists servers means those (a restricted join must fail when none of them can
// authorise it, not succeed through the room's creator).
func (a *API) viaServers(c echo.Context, roomID id.RoomID, user id.UserID, more []string) []string {
	q := c.QueryParams()
	out := append(append([]string{}, q["via"]...), q["server_name"]...)
	out = append(out, more...)
	if stub, err := a.rooms.StubServers(c.Request().Context(), roomID, user); err == nil {
		out = append(out, stub...)
	}
	if !slices.ContainsFunc(out, func(s string) bool { return s != "" && s != a.opts.ServerName }) {
		if _, srv, ok := strings.Cut(roomID.String(), ":"); ok {
			out = append(out, srv)
		}
	}
	return out
}

func aliasServer(a id.RoomAlias) string {
	_, srv, _ := strings.Cut(string(a), ":")
	return srv
}
