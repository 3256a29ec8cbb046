package clientapi

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/merr"
	"github.com/hearth-home/hearth/matrix/rooms"
)

// Joining, inviting, leaving, forgetting, kicking, banning (spec: joining.yaml, inviting.yaml,
// third_party_membership.yaml, leaving.yaml, kicking.yaml, banning.yaml).

func (a *API) routesMembership(g *echo.Group) {
	a.both(g, http.MethodPost, "/rooms/:roomId/join", a.joinRoomByID, a.auth, a.rateLimited)
	a.both(g, http.MethodPost, "/join/:roomIdOrAlias", a.joinRoomByIDOrAlias, a.auth, a.rateLimited)
	a.both(g, http.MethodPost, "/rooms/:roomId/invite", a.inviteUser, a.auth, a.rateLimited)
	a.both(g, http.MethodPost, "/rooms/:roomId/leave", a.leaveRoom, a.auth)
	a.both(g, http.MethodPost, "/rooms/:roomId/forget", a.forgetRoom, a.auth)
	a.both(g, http.MethodPost, "/rooms/:roomId/kick", a.kickUser, a.auth)
	a.both(g, http.MethodPost, "/rooms/:roomId/ban", a.banUser, a.auth)
	a.both(g, http.MethodPost, "/rooms/:roomId/unban", a.unbanUser, a.auth)
}

type joinBody struct {
	Reason           *string        `json:"reason"`
	ThirdPartySigned map[string]any `json:"third_party_signed"`
}

func (a *API) joinRoomByID(c echo.Context) error {
	roomID, err := roomIDArg(c)
	if err != nil {
		return err
	}
	return a.join(c, roomID)
}

func (a *API) joinRoomByIDOrAlias(c echo.Context) error {
	v, err := pathArg(c, "roomIdOrAlias")
	if err != nil {
		return err
	}
	// via and server_name name servers to join through when the room is elsewhere.
	switch {
	case strings.HasPrefix(v, "!") && len(v) > 1:
		return a.join(c, id.RoomID(v))
	case strings.HasPrefix(v, "#"):
		if !validAlias(v) {
			return merr.InvalidParam("%q is not a valid room alias", v)
		}
		alias := id.RoomAlias(v)
		if a.deps.Federation != nil && aliasServer(alias) != a.opts.ServerName {
			roomID, servers, err := a.deps.Federation.ResolveRemoteAlias(c.Request().Context(), alias)
			if err != nil {
				return err
			}
			return a.join(c, roomID, servers...)
		}
		roomID, err := a.rooms.ResolveAlias(c.Request().Context(), v)
		if err != nil {
			return err
		}
		return a.join(c, roomID)
	}
	return merr.InvalidParam("%q is neither a room ID nor a room alias", v)
}

func (a *API) join(c echo.Context, roomID id.RoomID, servers ...string) error {
	var raw map[string]json.RawMessage
	if err := readJSON(c, &raw); err != nil {
		return err
	}
	var body joinBody
	if b, _ := json.Marshal(raw); json.Unmarshal(b, &body) != nil {
		return merr.BadJSON("reason must be a string")
	}
	// Keys the client adds beyond the spec's go into the member event's content (Synapse and
	// sytest behaviour clients rely on); the server's own keys are not overridable.
	extra := map[string]json.RawMessage{}
	for k, v := range raw {
		switch k {
		case "reason", "third_party_signed", "membership", "displayname", "avatar_url", "join_authorised_via_users_server":
		default:
			extra[k] = v
		}
	}
	// third_party_signed needs an identity server's signature checked against a pending
	// m.room.third_party_invite; such invites are never created here, so it cannot match and
	// the join proceeds (or fails) on the join rules alone.
	u := session(c).User
	if a.remoteRoom(roomID) {
		if _, err := a.deps.Federation.JoinRemote(c.Request().Context(), roomID, u, a.viaServers(c, roomID, u, servers), a.remoteJoinContent(c, u, body, extra)); err != nil {
			return err
		}
		return c.JSON(http.StatusOK, map[string]string{"room_id": roomID.String()})
	}
	_, err := a.rooms.ChangeMembership(c.Request().Context(), roomID, rooms.MemberChange{Sender: u, Target: u, Membership: "join", Reason: deref(body.Reason), Extra: extra})
	if rooms.JoinElsewhere(err) && a.deps.Federation != nil {
		// A restricted join none of our members can authorise: another server of the room
		// with a member who may invite does it over federation (restricted.go in rooms).
		if elsewhere, serr := a.rooms.AuthorisingServers(c.Request().Context(), roomID); serr == nil && len(elsewhere) > 0 {
			_, err = a.deps.Federation.JoinRemote(c.Request().Context(), roomID, u, append(elsewhere, a.viaServers(c, roomID, u, servers)...), a.remoteJoinContent(c, u, body, extra))
		}
	}
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]string{"room_id": roomID.String()})
}

// remoteJoinContent is the member event content of a join made through another server: what the
// client added, its reason and the user's profile.
func (a *API) remoteJoinContent(c echo.Context, u id.UserID, body joinBody, extra map[string]json.RawMessage) map[string]any {
	content := map[string]any{}
	for k, v := range extra {
		content[k] = v
	}
	if body.Reason != nil {
		content["reason"] = *body.Reason
	}
	if dn, av, err := a.accounts.Profile(c.Request().Context(), u); err == nil {
		if dn != "" {
			content["displayname"] = dn
		}
		if av != "" {
			content["avatar_url"] = av
		}
	}
	return content
}

// targetBody is the body of invite, kick, ban and unban.
type targetBody struct {
	UserID *string `json:"user_id"`
	Reason *string `json:"reason"`
	// Third-party invite form (third_party_membership.yaml).
	IDServer      *string `json:"id_server"`
	IDAccessToken *string `json:"id_access_token"`
	Medium        *string `json:"medium"`
	Address       *string `json:"address"`
}

// roomTarget reads the room of the path and the target user of the body, the common start of
// invite, kick, ban and unban.
func roomTarget(c echo.Context, allow3PID bool) (id.RoomID, *targetBody, id.UserID, error) {
	roomID, err := roomIDArg(c)
	if err != nil {
		return "", nil, "", err
	}
	body, target, err := readTarget(c, allow3PID)
	return roomID, body, target, err
}

func readTarget(c echo.Context, allow3PID bool) (*targetBody, id.UserID, error) {
	var body targetBody
	if err := readJSON(c, &body); err != nil {
		return nil, "", err
	}
	if body.UserID == nil {
		if allow3PID && (body.Medium != nil || body.Address != nil || body.IDServer != nil) {
			if body.Medium == nil || body.Address == nil || body.IDServer == nil || body.IDAccessToken == nil {
				return nil, "", merr.BadJSON("a third-party invite needs id_server, id_access_token, medium and address")
			}
			return nil, "", merr.Forbidden("third-party invites are not supported on this server")
		}
		return nil, "", merr.BadJSON("missing required field user_id")
	}
	u := id.UserID(*body.UserID)
	if _, _, err := u.ParseAndValidateRelaxed(); err != nil || !strings.HasPrefix(*body.UserID, "@") {
		return nil, "", merr.InvalidParam("%q is not a valid user ID", *body.UserID)
	}
	return &body, u, nil
}

func (a *API) inviteUser(c echo.Context) error {
	roomID, body, target, err := roomTarget(c, true)
	if err != nil {
		return err
	}
	_, err = a.rooms.ChangeMembership(c.Request().Context(), roomID, rooms.MemberChange{Sender: session(c).User, Target: target, Membership: "invite", Reason: deref(body.Reason)})
	if err != nil {
		return err
	}
	return noContent(c)
}

func (a *API) leaveRoom(c echo.Context) error {
	roomID, err := roomIDArg(c)
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
		if err := a.deps.Federation.LeaveRemote(c.Request().Context(), roomID, u, a.viaServers(c, roomID, u, nil), deref(body.Reason)); err != nil {
			return err
		}
		return noContent(c)
	}
	_, err = a.rooms.ChangeMembership(c.Request().Context(), roomID, rooms.MemberChange{Sender: u, Target: u, Membership: "leave", Reason: deref(body.Reason)})
	if err != nil {
		return err
	}
	return noContent(c)
}

func (a *API) forgetRoom(c echo.Context) error {
	roomID, err := roomIDArg(c)
	if err != nil {
		return err
	}
	var body map[string]json.RawMessage // no fields; read so that a malformed body is refused
	if err := readJSON(c, &body); err != nil {
		return err
	}
	if err := a.rooms.Forget(c.Request().Context(), roomID, session(c).User); err != nil {
		return err
	}
	return noContent(c)
}

func (a *API) kickUser(c echo.Context) error {
	roomID, body, target, err := roomTarget(c, false)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	if err := a.mustBeJoined(c, roomID); err != nil {
		return err
	}
	// The auth rules let a leave by someone with kick power through whatever the target's
	// membership; the spec's kick needs the target in the room (joined, invited or knocking).
	cur, _, err := a.rooms.Membership(ctx, roomID, target)
	if err != nil {
		return err
	}
	if cur != "join" && cur != "invite" && cur != "knock" {
		return merr.Forbidden("%s is not in the room", target)
	}
	_, err = a.rooms.ChangeMembership(ctx, roomID, rooms.MemberChange{Sender: session(c).User, Target: target, Membership: "leave", Reason: deref(body.Reason)})
	if err != nil {
		return err
	}
	return noContent(c)
}

func (a *API) banUser(c echo.Context) error {
	roomID, body, target, err := roomTarget(c, false)
	if err != nil {
		return err
	}
	_, err = a.rooms.ChangeMembership(c.Request().Context(), roomID, rooms.MemberChange{Sender: session(c).User, Target: target, Membership: "ban", Reason: deref(body.Reason)})
	if err != nil {
		return err
	}
	return noContent(c)
}

func (a *API) unbanUser(c echo.Context) error {
	roomID, body, target, err := roomTarget(c, false)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	if err := a.mustBeJoined(c, roomID); err != nil {
		return err
	}
	cur, _, err := a.rooms.Membership(ctx, roomID, target)
	if err != nil {
		return err
	}
	if cur != "ban" {
		// Spec, "Other error codes": M_BAD_STATE, "such as attempting to unban a user who is
		// not banned".
		return &merr.Error{Status: http.StatusForbidden, Code: "M_BAD_STATE", Message: string(target) + " is not banned from this room"}
	}
	_, err = a.rooms.ChangeMembership(ctx, roomID, rooms.MemberChange{Sender: session(c).User, Target: target, Membership: "leave", Reason: deref(body.Reason)})
	if err != nil {
		return err
	}
	return noContent(c)
}

// mustBeJoined refuses a membership change on others by someone not in the room, before the
// target's membership is looked at (which would otherwise tell them about it).
func (a *API) mustBeJoined(c echo.Context, roomID id.RoomID) error {
	m, _, err := a.rooms.Membership(c.Request().Context(), roomID, session(c).User)
	if err != nil {
		return err
	}
	if m != "join" {
		return merr.Forbidden("you are not in this room")
	}
	return nil
}
