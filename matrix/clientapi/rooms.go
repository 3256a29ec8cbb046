package clientapi

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/json/jsontext"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/events"
	"github.com/hearth-home/hearth/matrix/merr"
	"github.com/hearth-home/hearth/matrix/rooms"
)

// Room creation, the joined-rooms list, members and state (spec: create_room.yaml,
// list_joined_rooms.yaml, rooms.yaml, room_state.yaml).

func (a *API) routesRooms(g *echo.Group) {
	a.both(g, http.MethodPost, "/createRoom", a.createRoom, a.auth)
	a.both(g, http.MethodGet, "/joined_rooms", a.joinedRooms, a.auth)
	a.both(g, http.MethodGet, "/rooms/:roomId/members", a.roomMembers, a.auth)
	a.both(g, http.MethodGet, "/rooms/:roomId/joined_members", a.roomJoinedMembers, a.auth)
	a.both(g, http.MethodGet, "/rooms/:roomId/state", a.roomState, a.auth)
	// An empty state key may be given with or without the trailing slash.
	for _, p := range []string{"/rooms/:roomId/state/:eventType", "/rooms/:roomId/state/:eventType/", "/rooms/:roomId/state/:eventType/:stateKey"} {
		a.both(g, http.MethodGet, p, a.getRoomStateEvent, a.auth)
		a.both(g, http.MethodPut, p, a.putRoomStateEvent, a.auth)
	}
}

// pathArg returns a path parameter unescaped. echo routes on the raw path when the request's
// escaping differs from Go's default (a state key holding %2F, say); its parameters are then
// still escaped.
// pathArg reads a path parameter (already unescaped by the UnescapeParams middleware).
func pathArg(c echo.Context, name string) (string, error) { return c.Param(name), nil }

// roomIDArg reads the roomId path parameter, which must be a room ID.
func roomIDArg(c echo.Context) (id.RoomID, error) {
	v, err := pathArg(c, "roomId")
	if err != nil {
		return "", err
	}
	if len(v) < 2 || v[0] != '!' {
		return "", merr.InvalidParam("%q is not a room ID", v)
	}
	return id.RoomID(v), nil
}

func requesterOf(c echo.Context) rooms.Requester {
	s := session(c)
	return rooms.Requester{User: s.User, Device: s.Device}
}

// renderEvents turns stored events into client events for the requesting device.
func (a *API) renderEvents(c echo.Context, evs []*rooms.Event) ([]*events.ClientEvent, error) {
	return a.rooms.ClientEvents(c.Request().Context(), requesterOf(c), evs, time.Now().UnixMilli())
}

// --- createRoom ---

type createRoomBody struct {
	Visibility                *string                    `json:"visibility"`
	RoomAliasName             *string                    `json:"room_alias_name"`
	Name                      *string                    `json:"name"`
	Topic                     *string                    `json:"topic"`
	Invite                    []string                   `json:"invite"`
	Invite3PID                []map[string]any           `json:"invite_3pid"`
	RoomVersion               *string                    `json:"room_version"`
	CreationContent           map[string]json.RawMessage `json:"creation_content"`
	InitialState              []createRoomState          `json:"initial_state"`
	Preset                    *string                    `json:"preset"`
	IsDirect                  *bool                      `json:"is_direct"`
	PowerLevelContentOverride map[string]json.RawMessage `json:"power_level_content_override"`
}

type createRoomState struct {
	Type     *string         `json:"type"`
	StateKey *string         `json:"state_key"`
	Content  json.RawMessage `json:"content"`
}

func (a *API) createRoom(c echo.Context) error {
	sess := session(c)
	var body createRoomBody
	if err := readJSON(c, &body); err != nil {
		return err
	}
	req := rooms.CreateRequest{
		Creator:       sess.User,
		Visibility:    deref(body.Visibility),
		RoomAliasName: deref(body.RoomAliasName),
		Name:          body.Name,
		RoomVersion:   id.RoomVersion(deref(body.RoomVersion)),
		Preset:        deref(body.Preset),
		IsDirect:      body.IsDirect != nil && *body.IsDirect,
	}
	if body.Visibility != nil && *body.Visibility != "public" && *body.Visibility != "private" {
		return merr.BadJSON("visibility must be public or private")
	}
	if body.Preset != nil && *body.Preset != "private_chat" && *body.Preset != "public_chat" && *body.Preset != "trusted_private_chat" {
		return merr.BadJSON("preset must be private_chat, public_chat or trusted_private_chat")
	}
	if body.RoomVersion != nil && *body.RoomVersion == "" {
		return merr.BadJSON("room_version must not be empty")
	}
	for _, u := range body.Invite {
		if !strings.HasPrefix(u, "@") {
			return merr.BadJSON("invite must list user IDs; %q is not one", u)
		}
		req.Invite = append(req.Invite, id.UserID(u))
	}
	for _, inv := range body.Invite3PID {
		for _, k := range []string{"id_server", "id_access_token", "medium", "address"} {
			if _, ok := inv[k].(string); !ok {
				return merr.BadJSON("invite_3pid entries need string %s", k)
			}
		}
	}
	if len(body.Invite3PID) > 0 {
		return merr.Forbidden("third-party invites are not supported on this server")
	}
	var err error
	if req.CreationContent, err = anyMap(body.CreationContent); err != nil {
		return err
	}
	if req.PowerLevelOverride, err = anyMap(body.PowerLevelContentOverride); err != nil {
		return err
	}
	for i, st := range body.InitialState {
		if st.Type == nil || *st.Type == "" {
			return merr.BadJSON("initial_state[%d] needs a type", i)
		}
		if !isJSONObject(st.Content) {
			return merr.BadJSON("initial_state[%d].content must be a JSON object", i)
		}
		req.InitialState = append(req.InitialState, rooms.StateEvent{Type: *st.Type, StateKey: deref(st.StateKey), Content: jsontext.Value(st.Content)})
	}
	req.Topic = body.Topic
	roomID, err := a.rooms.CreateRoom(c.Request().Context(), req)
	if err != nil {
		// The only refusal CreateRoom can meet is the auth rules rejecting one of the initial
		// events, which the spec reports as invalid initial state.
		if me, ok := merr.As(err); ok && me.Code == "M_FORBIDDEN" {
			return &merr.Error{Status: http.StatusBadRequest, Code: "M_INVALID_ROOM_STATE", Message: me.Message, Cause: err}
		}
		return err
	}
	return c.JSON(http.StatusOK, map[string]string{"room_id": roomID.String()})
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// anyMap decodes an object's values keeping numbers exact (json.Number), so that re-encoding
// them for an event does not turn integers into floats.
func anyMap(m map[string]json.RawMessage) (map[string]any, error) {
	if m == nil {
		return nil, nil
	}
	out := make(map[string]any, len(m))
	for k, raw := range m {
		d := json.NewDecoder(bytes.NewReader(raw))
		d.UseNumber()
		var v any
		if err := d.Decode(&v); err != nil {
			return nil, merr.BadJSON("invalid value for %q", k)
		}
		out[k] = v
	}
	return out, nil
}

func isJSONObject(b json.RawMessage) bool {
	b = bytes.TrimSpace(b)
	return len(b) > 0 && b[0] == '{'
}

// --- joined rooms ---

func (a *API) joinedRooms(c echo.Context) error {
	list, err := a.rooms.JoinedRooms(c.Request().Context(), session(c).User)
	if err != nil {
		return err
	}
	out := make([]string, 0, len(list))
	for _, r := range list {
		out = append(out, r.String())
	}
	return c.JSON(http.StatusOK, map[string]any{"joined_rooms": out})
}

// --- state and members ---

// readableState is the room state the user may read, as the spec's state and members endpoints
// define it: the current state for members (and for anyone when the room is world-readable),
// the state when they left for former members, and M_FORBIDDEN for everyone else. at, when
// given, moves the answer back to that stream position (never past a former member's
// departure).
func (a *API) readableState(ctx context.Context, user id.UserID, roomID id.RoomID, at *uint64) ([]*rooms.Event, error) {
	membership, pos, err := a.rooms.Membership(ctx, roomID, user)
	if err != nil {
		if me, ok := merr.As(err); ok && me.Code == "M_NOT_FOUND" {
			return nil, merr.Forbidden("you are not a member of this room")
		}
		return nil, err
	}
	switch {
	case membership == "join":
	case membership == "leave" || membership == "ban":
		if at == nil || *at > pos {
			at = &pos
		}
	default:
		wr, err := a.worldReadable(ctx, roomID)
		if err != nil {
			return nil, err
		}
		if !wr {
			return nil, merr.Forbidden("you are not a member of this room")
		}
	}
	if at != nil {
		return a.rooms.StateAt(ctx, roomID, *at)
	}
	return a.rooms.AllCurrentState(ctx, roomID)
}

func (a *API) worldReadable(ctx context.Context, roomID id.RoomID) (bool, error) {
	ev, err := a.rooms.CurrentState(ctx, roomID, "m.room.history_visibility", "")
	if err != nil || ev == nil {
		return false, err
	}
	var hv struct {
		HistoryVisibility any `json:"history_visibility"`
	}
	_ = json.Unmarshal(ev.Lite.Content, &hv)
	return hv.HistoryVisibility == "world_readable", nil
}

var memberships = map[string]bool{"join": true, "invite": true, "knock": true, "leave": true, "ban": true}

func (a *API) roomMembers(c echo.Context) error {
	roomID, err := roomIDArg(c)
	if err != nil {
		return err
	}
	q := c.QueryParams()
	want, notWant := q.Get("membership"), q.Get("not_membership")
	if (q.Has("membership") && !memberships[want]) || (q.Has("not_membership") && !memberships[notWant]) {
		return merr.InvalidParam("membership and not_membership must be one of join, invite, knock, leave, ban")
	}
	var at *uint64
	if tok := q.Get("at"); tok != "" {
		p, err := rooms.ParseToken(tok)
		if err != nil {
			return err
		}
		at = &p
	}
	state, err := a.readableState(c.Request().Context(), session(c).User, roomID, at)
	if err != nil {
		return err
	}
	var chunk []*rooms.Event
	for _, e := range state {
		if e.Lite.Type != "m.room.member" {
			continue
		}
		m := e.Lite.Membership()
		var keep bool
		switch {
		case want != "" && notWant != "":
			keep = m == want || m != notWant
		case want != "":
			keep = m == want
		case notWant != "":
			keep = m != notWant
		default:
			keep = true
		}
		if keep {
			chunk = append(chunk, e)
		}
	}
	out, err := a.renderEvents(c, chunk)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"chunk": out})
}

// roomMemberInfo is one joined member; both keys are always present (null when unset), as
// clients and Complement expect.
type roomMemberInfo struct {
	DisplayName *string `json:"display_name"`
	AvatarURL   *string `json:"avatar_url"`
}

func (a *API) roomJoinedMembers(c echo.Context) error {
	roomID, err := roomIDArg(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	m, _, err := a.rooms.Membership(ctx, roomID, session(c).User)
	if err != nil && !isNotFound(err) {
		return err
	}
	if m != "join" {
		return merr.Forbidden("you are not a member of this room")
	}
	evs, err := a.rooms.MemberEvents(ctx, roomID)
	if err != nil {
		return err
	}
	joined := map[string]roomMemberInfo{}
	for _, e := range evs {
		if e.Lite.Membership() != "join" {
			continue
		}
		var p struct {
			DisplayName any `json:"displayname"`
			AvatarURL   any `json:"avatar_url"`
		}
		_ = json.Unmarshal(e.Lite.Content, &p)
		info := roomMemberInfo{}
		if dn, ok := p.DisplayName.(string); ok {
			info.DisplayName = &dn
		}
		if av, ok := p.AvatarURL.(string); ok {
			info.AvatarURL = &av
		}
		joined[*e.Lite.StateKey] = info
	}
	return c.JSON(http.StatusOK, map[string]any{"joined": joined})
}

func isNotFound(err error) bool {
	me, ok := merr.As(err)
	return ok && me.Code == "M_NOT_FOUND"
}

func (a *API) roomState(c echo.Context) error {
	roomID, err := roomIDArg(c)
	if err != nil {
		return err
	}
	state, err := a.readableState(c.Request().Context(), session(c).User, roomID, nil)
	if err != nil {
		return err
	}
	out, err := a.renderEvents(c, state)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

// stateArgs reads the room, event type and state key of a state path.
func stateArgs(c echo.Context) (id.RoomID, string, string, error) {
	roomID, err := roomIDArg(c)
	if err != nil {
		return "", "", "", err
	}
	typ, err := pathArg(c, "eventType")
	if err != nil {
		return "", "", "", err
	}
	sk, err := pathArg(c, "stateKey")
	if err != nil {
		return "", "", "", err
	}
	return roomID, typ, sk, nil
}

func (a *API) getRoomStateEvent(c echo.Context) error {
	roomID, typ, sk, err := stateArgs(c)
	if err != nil {
		return err
	}
	format := c.QueryParam("format")
	if format != "" && format != "content" && format != "event" {
		return merr.InvalidParam("format must be content or event")
	}
	ctx := c.Request().Context()
	user := session(c).User
	membership, _, err := a.rooms.Membership(ctx, roomID, user)
	if err != nil && !isNotFound(err) {
		return err
	}
	var found *rooms.Event
	if membership == "join" {
		if found, err = a.rooms.CurrentState(ctx, roomID, typ, sk); err != nil {
			return err
		}
	} else {
		state, err := a.readableState(ctx, user, roomID, nil)
		if err != nil {
			return err
		}
		for _, e := range state {
			if e.Lite.Type == typ && *e.Lite.StateKey == sk {
				found = e
				break
			}
		}
	}
	if found == nil {
		return merr.NotFound("the room has no state with type %q and state key %q", typ, sk)
	}
	if format == "event" {
		ce, err := a.rooms.ClientEvent(ctx, requesterOf(c), found, time.Now().UnixMilli())
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, ce)
	}
	content := found.Lite.Content
	if len(content) == 0 {
		content = json.RawMessage("{}")
	}
	return c.JSONBlob(http.StatusOK, content)
}

func (a *API) putRoomStateEvent(c echo.Context) error {
	roomID, typ, sk, err := stateArgs(c)
	if err != nil {
		return err
	}
	content, err := readObject(c)
	if err != nil {
		return err
	}
	sess := session(c)
	ctx := c.Request().Context()
	if typ == "m.room.create" {
		// A room has exactly one create event, made with the room (its ID names it from v12 on).
		return merr.BadJSON("m.room.create cannot be sent into an existing room")
	}
	if delay, ok, err := a.delayParam(c); ok || err != nil { // delayed.go (MSC4140)
		if err != nil {
			return err
		}
		return a.sendDelayed(c, delay, roomID, typ, &sk, "", content)
	}
	if typ == "m.room.canonical_alias" {
		if err := a.checkCanonicalAlias(ctx, roomID, content); err != nil {
			return err
		}
	}
	res, err := a.rooms.Send(ctx, roomID, events.Template{Type: typ, StateKey: &sk, Sender: sess.User, Content: jsontext.Value(content)}, rooms.SendOpts{Device: sess.Device})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]string{"event_id": res.EventID.String()})
}

// checkCanonicalAlias validates the aliases an m.room.canonical_alias event adds: each must be
// a valid alias (M_INVALID_PARAM) and, when local, point at this room (M_BAD_ALIAS). Aliases
// already in the current event are not checked again. Remote aliases cannot be resolved
// without federation and are accepted on their syntax.
func (a *API) checkCanonicalAlias(ctx context.Context, roomID id.RoomID, content json.RawMessage) error {
	var c struct {
		Alias      *string  `json:"alias"`
		AltAliases []string `json:"alt_aliases"`
	}
	if err := json.Unmarshal(content, &c); err != nil {
		return merr.BadJSON("alias must be a string and alt_aliases a list of strings")
	}
	known := map[string]bool{}
	if cur, err := a.rooms.CurrentState(ctx, roomID, "m.room.canonical_alias", ""); err != nil {
		return err
	} else if cur != nil {
		var old struct {
			Alias      any   `json:"alias"`
			AltAliases []any `json:"alt_aliases"`
		}
		_ = json.Unmarshal(cur.Lite.Content, &old)
		if s, ok := old.Alias.(string); ok {
			known[s] = true
		}
		for _, x := range old.AltAliases {
			if s, ok := x.(string); ok {
				known[s] = true
			}
		}
	}
	check := append([]string{}, c.AltAliases...)
	if c.Alias != nil && *c.Alias != "" {
		check = append(check, *c.Alias)
	}
	for _, al := range check {
		if known[al] {
			continue
		}
		if !validAlias(al) {
			return merr.InvalidParam("%q is not a valid room alias", al)
		}
		if !strings.HasSuffix(al, ":"+a.opts.ServerName) {
			continue
		}
		rid, err := a.rooms.ResolveAlias(ctx, al)
		if err != nil && !isNotFound(err) {
			return err
		}
		if rid != roomID {
			return merr.BadAlias("the alias %s does not point to this room", al)
		}
	}
	return nil
}

// validAlias checks the appendix grammar: #localpart:server, at most 255 bytes.
func validAlias(al string) bool {
	if len(al) < 4 || len(al) > 255 || al[0] != '#' {
		return false
	}
	local, server, ok := strings.Cut(al[1:], ":")
	if !ok || local == "" || server == "" || strings.ContainsAny(al, " \t\r\n\x00") {
		return false
	}
	return true
}
