package federation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"maunium.net/go/mautrix"
	mfed "maunium.net/go/mautrix/federation"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/events"
	"github.com/hearth-home/hearth/matrix/merr"
	"github.com/hearth-home/hearth/matrix/rooms"
)

// JoinRemote joins a local user to a room through the first of servers that answers: make_join,
// sign, send_join, then the room's state and auth chain are checked and stored and the join
// becomes the room's forward extremity here. extra is content the client added (display name,
// avatar, reason). Every server is tried in turn, whatever the previous one answered: a
// restricted room's resident servers each decide for themselves whether they can authorise the
// join (M_UNABLE_TO_AUTHORISE_JOIN, M_UNABLE_TO_GRANT_JOIN), and the error of the last one is
// the client's.
//
// This server may be in the room already when none of its members can authorise a restricted
// join (rooms.JoinElsewhere): the countersigned join then joins our copy of the room as any
// event from another server does, and our state is kept.
func (s *Service) JoinRemote(ctx context.Context, roomID id.RoomID, user id.UserID, servers []string, extra map[string]any) (id.EventID, error) {
	resident, err := s.rooms.IsResident(roomID)
	if err != nil {
		return "", fmt.Errorf("join %s: %w", roomID, err)
	}
	var lastErr error
	for _, srv := range candidates(s.server, servers) {
		eid, err := s.joinVia(ctx, roomID, user, srv, extra, resident)
		if err == nil {
			return eid, nil
		}
		s.log.Info("remote join failed", "room_id", roomID, "via", srv, "err", err)
		lastErr = err
		if ctx.Err() != nil {
			break
		}
	}
	if lastErr == nil {
		return "", merr.NotFound("no server to join room %s through", roomID)
	}
	return "", lastErr
}

// discardAnswer drops a send_join answer's state and auth chain: a server in the room already
// has them, and storing events it lacks as outliers would hide them when they arrive in /send.
type discardAnswer struct{}

func (discardAnswer) PDU(string, json.RawMessage) error { return nil }

func (s *Service) joinVia(ctx context.Context, roomID id.RoomID, user id.UserID, via string, extra map[string]any, resident bool) (id.EventID, error) {
	mj, err := s.client.MakeJoin(ctx, &mfed.ReqMakeJoin{RoomID: roomID, UserID: user, Via: via, SupportedVersions: events.JoinableVersions()})
	if err != nil {
		return "", remoteErr("make_join", via, err)
	}
	rv := mj.RoomVersion
	if rv == "" {
		rv = id.RoomV1
	}
	if !events.Joinable(rv) {
		return "", merr.UnsupportedRoomVersion("room version %s is not supported here", rv)
	}
	join, err := s.fillProto(rv, mj.Event, roomID, user, "join", extra)
	if err != nil {
		return "", err
	}
	if resident {
		return s.joinResident(ctx, via, rv, join)
	}
	// The answer is streamed: its events are verified and stored in batches as they arrive
	// (sendjoin_*.go), and of the state only the event IDs are kept.
	imp := s.newJoinImport(ctx, roomID, rv)
	signedJoin, err := s.sendJoinStream(ctx, via, roomID, join, imp)
	if err != nil {
		return "", err
	}
	if err := imp.finish(); err != nil {
		return "", err
	}
	s.log.Info("send_join answer imported", "room_id", roomID, "via", via, "state", len(imp.stateIDs),
		"received", imp.stats.Received, "stored", imp.stats.Stored, "dropped", imp.stats.Dropped,
		"duplicates", imp.stats.Duplicates, "waited", imp.stats.Waited, "max_waiting", imp.stats.MaxWaiting, "batches", imp.stats.Batches)
	if len(signedJoin) > 0 {
		// A restricted join comes back countersigned by the resident server.
		signed, err := s.parse(ctx, rv, signedJoin)
		if err != nil {
			return "", fmt.Errorf("send_join event from %s: %w", via, err)
		}
		if signed.ID != join.ID {
			return "", merr.BadJSON("%s changed the join event", via)
		}
		join = signed
	}
	stateIDs, getKey := imp.stateIDs, imp.getKey
	if _, err := s.rooms.ImportJoin(ctx, roomID, stateIDs, join, getKey); err != nil {
		return "", err
	}
	return join.ID, nil
}

// joinResident sends a join to via for a room this server is in and takes the countersigned
// join back through the incoming event pipeline (missing prev events fetched from via, the auth
// rules checked, our state and extremities kept).
func (s *Service) joinResident(ctx context.Context, via string, rv id.RoomVersion, join rooms.Remote) (id.EventID, error) {
	signedJoin, err := s.sendJoinStream(ctx, via, join.PDU.RoomID, join, discardAnswer{})
	if err != nil {
		return "", err
	}
	if len(signedJoin) > 0 {
		signed, err := s.parse(ctx, rv, signedJoin)
		if err != nil {
			return "", fmt.Errorf("send_join event from %s: %w", via, err)
		}
		if signed.ID != join.ID {
			return "", merr.BadJSON("%s changed the join event", via)
		}
		join = signed
	}
	if err := s.accept(ctx, via, rv, join, 0); err != nil {
		return "", fmt.Errorf("join accepted by %s: %w", via, err)
	}
	// A join that passed at via may still not take effect here: soft-failed against our
	// current state, or dropped because its prev events could not be had. The user is then
	// not joined, whatever via said.
	if m, _, err := s.rooms.Membership(ctx, join.PDU.RoomID, join.PDU.Sender); err != nil {
		return "", err
	} else if m != "join" {
		return "", merr.Forbidden("the join made through %s did not take effect on this server", via)
	}
	return join.ID, nil
}

// LeaveRemote leaves a room this server is not in (rejecting an invite, withdrawing a knock)
// through make_leave and send_leave on one of servers.
func (s *Service) LeaveRemote(ctx context.Context, roomID id.RoomID, user id.UserID, servers []string, reason string) error {
	var lastErr error
	for _, srv := range candidates(s.server, servers) {
		ml, err := s.client.MakeLeave(ctx, &mfed.ReqMakeLeave{RoomID: roomID, UserID: user, Via: srv})
		if err != nil {
			lastErr = remoteErr("make_leave", srv, err)
			continue
		}
		rv := ml.RoomVersion
		extra := map[string]any{}
		if reason != "" {
			extra["reason"] = reason
		}
		leave, err := s.fillProto(rv, ml.Event, roomID, user, "leave", extra)
		if err != nil {
			lastErr = err
			continue
		}
		if err := s.client.SendLeave(ctx, &mfed.ReqSendLeave{RoomID: roomID, EventID: leave.ID, Event: leave.JSON, Via: srv}); err != nil {
			lastErr = remoteErr("send_leave", srv, err)
			continue
		}
		return s.rooms.StoreStubMembership(ctx, rv, leave, nil)
	}
	if lastErr == nil {
		return merr.NotFound("no server to leave room %s through", roomID)
	}
	return lastErr
}

// KnockRemote knocks on a room this server is not in.
func (s *Service) KnockRemote(ctx context.Context, roomID id.RoomID, user id.UserID, servers []string, reason string) (id.EventID, error) {
	var lastErr error
	for _, srv := range candidates(s.server, servers) {
		mk, err := s.client.MakeKnock(ctx, &mfed.ReqMakeKnock{RoomID: roomID, UserID: user, Via: srv, SupportedVersions: events.JoinableVersions()})
		if err != nil {
			lastErr = remoteErr("make_knock", srv, err)
			continue
		}
		extra := map[string]any{}
		if reason != "" {
			extra["reason"] = reason
		}
		knock, err := s.fillProto(mk.RoomVersion, mk.Event, roomID, user, "knock", extra)
		if err != nil {
			lastErr = err
			continue
		}
		sk, err := s.client.SendKnock(ctx, &mfed.ReqSendKnock{RoomID: roomID, EventID: knock.ID, Event: knock.JSON, Via: srv})
		if err != nil {
			lastErr = remoteErr("send_knock", srv, err)
			continue
		}
		stripped, _ := json.Marshal(sk.KnockRoomState)
		return knock.ID, s.rooms.StoreStubMembership(ctx, mk.RoomVersion, knock, stripped)
	}
	if lastErr == nil {
		return "", merr.NotFound("no server to knock on room %s through", roomID)
	}
	return "", lastErr
}

// fillProto completes a make_* proto event: checks it is the membership we asked for, adds the
// client's content, sets the timestamp and signs it.
func (s *Service) fillProto(rv id.RoomVersion, raw json.RawMessage, roomID id.RoomID, user id.UserID, membership string, extra map[string]any) (rooms.Remote, error) {
	p, err := events.Parse(raw)
	if err != nil {
		return rooms.Remote{}, merr.BadJSON("make_%s answer: %v", membership, err)
	}
	if p.Type != "m.room.member" || p.StateKey == nil || *p.StateKey != user.String() || p.Sender != user || p.RoomID != roomID {
		return rooms.Remote{}, merr.BadJSON("make_%s answer is not a %s of %s in %s", membership, membership, user, roomID)
	}
	c := map[string]any{}
	_ = json.Unmarshal(p.Content, &c)
	for k, v := range extra {
		c[k] = v
	}
	c["membership"] = membership
	b, err := json.Marshal(c)
	if err != nil {
		return rooms.Remote{}, fmt.Errorf("encode content: %w", err)
	}
	p.Content = b
	p.OriginServerTS = s.now().UnixMilli()
	p.Signatures, p.Hashes, p.Unsigned = nil, nil, nil
	// In v1/v2 rooms the event ID is chosen (and signed) by the sender's server: ours.
	p.InternalMeta.EventID = ""
	return s.sign(rv, p)
}

// candidates is servers without duplicates and without this server.
func candidates(self string, servers []string) []string {
	seen := map[string]bool{self: true, "": true}
	var out []string
	for _, s := range servers {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// remoteErr turns a remote server's error answer into the same Matrix error for our client.
func remoteErr(what, server string, err error) error {
	var he mautrix.HTTPError
	if errors.As(err, &he) && he.RespError != nil && he.Response != nil {
		status := he.Response.StatusCode
		if status >= 500 {
			status = http.StatusBadGateway
		}
		return &merr.Error{Status: status, Code: he.RespError.ErrCode, Message: fmt.Sprintf("%s on %s: %s", what, server, he.RespError.Err), Cause: err}
	}
	return &merr.Error{Status: http.StatusBadGateway, Code: "M_UNKNOWN", Message: fmt.Sprintf("%s on %s failed", what, server), Cause: err}
}

// ResolveRemoteAlias asks an alias's server which room it names (federation query/directory).
func (s *Service) ResolveRemoteAlias(ctx context.Context, alias id.RoomAlias) (id.RoomID, []string, error) {
	resp, err := s.client.QueryDirectory(ctx, aliasServer(alias), alias)
	if err != nil {
		return "", nil, remoteErr("query/directory", aliasServer(alias), err)
	}
	return resp.RoomID, resp.Servers, nil
}

func aliasServer(a id.RoomAlias) string {
	_, srv, _ := strings.Cut(string(a), ":")
	return srv
}

// QueryProfile asks a remote user's server for their profile (federation query/profile).
func (s *Service) QueryProfile(ctx context.Context, user id.UserID) (string, string, error) {
	resp, err := s.client.QueryProfile(ctx, user.Homeserver(), user)
	if err != nil {
		return "", "", remoteErr("query/profile", user.Homeserver(), err)
	}
	return resp.DisplayName, resp.AvatarURL.String(), nil
}

// RemotePublicRooms asks another server for its room directory (federation POST /publicRooms)
// with the client's request body, answering the server's JSON as it came.
func (s *Service) RemotePublicRooms(ctx context.Context, server string, body json.RawMessage) (json.RawMessage, error) {
	var out json.RawMessage
	_, _, err := s.client.MakeFullRequest(ctx, mfed.RequestParams{
		ServerName:   server,
		Method:       http.MethodPost,
		Path:         mfed.URLPath{"v1", "publicRooms"},
		Authenticate: true,
		RequestJSON:  body,
		ResponseJSON: &out,
	})
	if err != nil {
		return nil, remoteErr("publicRooms", server, err)
	}
	return out, nil
}
