package federation

import (
	"context"
	"encoding/json"
	"slices"

	mfed "maunium.net/go/mautrix/federation"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/events"
	"github.com/hearth-home/hearth/matrix/merr"
	"github.com/hearth-home/hearth/matrix/rooms"
)

// MakeAnswer is the body of a make_join, make_leave or make_knock answer.
type MakeAnswer struct {
	Event       json.RawMessage `json:"event"`
	RoomVersion id.RoomVersion  `json:"room_version"`
}

// Make answers make_join/make_leave/make_knock from origin for user.
func (s *Service) Make(ctx context.Context, origin string, roomID id.RoomID, user id.UserID, membership string, vers []id.RoomVersion) (*MakeAnswer, error) {
	if user.Homeserver() != origin {
		return nil, merr.Forbidden("%s cannot act for %s", origin, user)
	}
	if membership == "join" || membership == "knock" {
		if len(vers) == 0 {
			vers = []id.RoomVersion{id.RoomV1}
		}
	} else {
		vers = nil
	}
	proto, rv, err := s.rooms.MakeMembership(ctx, roomID, user, membership, vers)
	if err != nil {
		return nil, err
	}
	b, err := events.Encode(proto)
	if err != nil {
		return nil, err
	}
	return &MakeAnswer{Event: b, RoomVersion: rv}, nil
}

// SendJoinAnswer is the body of a v2 send_join answer.
type SendJoinAnswer struct {
	Origin         string            `json:"origin"`
	State          []json.RawMessage `json:"state"`
	AuthChain      []json.RawMessage `json:"auth_chain"`
	Event          json.RawMessage   `json:"event,omitempty"`
	MembersOmitted bool              `json:"members_omitted"`
	ServersInRoom  []string          `json:"servers_in_room,omitempty"`
}

// acceptMembership verifies a signed membership event a remote server sends back after a make_*
// and appends it to the room.
func (s *Service) acceptMembership(ctx context.Context, origin string, roomID id.RoomID, eventID id.EventID, membership string, raw json.RawMessage) (rooms.Remote, error) {
	rv, ok, err := s.rooms.RoomVersion(roomID)
	if err != nil {
		return rooms.Remote{}, err
	}
	if !ok {
		return rooms.Remote{}, merr.NotFound("room %s is not known here", roomID)
	}
	if membership == "join" {
		// A restricted join names one of our users as its authoriser: our signature is what
		// the joining server asks for, so it is added before the signatures are checked.
		if raw, err = s.countersignJoin(rv, raw); err != nil {
			return rooms.Remote{}, err
		}
	}
	ev, err := s.parse(ctx, rv, raw)
	if err != nil {
		return rooms.Remote{}, err
	}
	p := ev.PDU
	switch {
	case ev.ID != eventID:
		return rooms.Remote{}, merr.BadJSON("the event ID is %s, not %s", ev.ID, eventID)
	case p.RoomID != roomID:
		return rooms.Remote{}, merr.BadJSON("the event is for room %s, not %s", p.RoomID, roomID)
	case p.Type != "m.room.member" || p.StateKey == nil || *p.StateKey != p.Sender.String():
		return rooms.Remote{}, merr.BadJSON("not a membership event of its sender")
	case membershipOfRaw(p.Content) != membership:
		return rooms.Remote{}, merr.BadJSON("membership is not %s", membership)
	case p.Sender.Homeserver() != origin:
		return rooms.Remote{}, merr.Forbidden("%s cannot act for %s", origin, p.Sender)
	}
	if membership == "join" {
		if via := authorisedVia(p.Content); via != "" && id.UserID(via).Homeserver() != s.server {
			return rooms.Remote{}, merr.Forbidden("the join is authorised by %s, which is not on this server", via)
		}
	}
	res, err := s.rooms.Receive(ctx, ev, s.keys.GetKey(ctx), rooms.ReceiveOpts{})
	if err != nil {
		return rooms.Remote{}, err
	}
	if res.Rejected || res.SoftFailed {
		return rooms.Remote{}, merr.Forbidden("the %s is not allowed: %s", membership, res.Reason)
	}
	// The resident server hands a joining server's event to the rest of the room.
	if err := s.fanOut(ctx, roomID, ev.JSON, origin); err != nil {
		s.log.Warn("fan out membership", "event_id", ev.ID, "err", err)
	}
	return ev, nil
}

// SendJoin accepts a signed join (PUT /v2/send_join) and answers with the room's state before
// it and the auth chain.
func (s *Service) SendJoin(ctx context.Context, origin string, roomID id.RoomID, eventID id.EventID, raw json.RawMessage, omitMembers bool) (*SendJoinAnswer, error) {
	ev, err := s.acceptMembership(ctx, origin, roomID, eventID, "join", raw)
	if err != nil {
		return nil, err
	}
	st, err := s.rooms.FedStateAt(ctx, origin, roomID, eventID)
	if err != nil {
		return nil, err
	}
	ans := &SendJoinAnswer{Origin: s.server, State: []json.RawMessage{}, AuthChain: []json.RawMessage{}, Event: ev.JSON}
	for _, e := range st.State {
		ans.State = append(ans.State, e.Rec.PDU)
	}
	for _, e := range st.AuthChain {
		ans.AuthChain = append(ans.AuthChain, e.Rec.PDU)
	}
	if servers, err := s.rooms.JoinedServers(ctx, roomID); err == nil {
		ans.ServersInRoom = servers
	}
	return ans, nil
}

// SendLeave accepts a signed leave (PUT /v2/send_leave).
func (s *Service) SendLeave(ctx context.Context, origin string, roomID id.RoomID, eventID id.EventID, raw json.RawMessage) error {
	_, err := s.acceptMembership(ctx, origin, roomID, eventID, "leave", raw)
	return err
}

// SendKnock accepts a signed knock (PUT /v1/send_knock) and answers with the stripped state
// a knocker may see.
func (s *Service) SendKnock(ctx context.Context, origin string, roomID id.RoomID, eventID id.EventID, raw json.RawMessage) ([]events.StrippedState, error) {
	if _, err := s.acceptMembership(ctx, origin, roomID, eventID, "knock", raw); err != nil {
		return nil, err
	}
	return s.rooms.StrippedState(ctx, roomID)
}

// InviteRequest is the body of PUT /v2/invite.
type InviteRequest struct {
	Event           json.RawMessage   `json:"event"`
	RoomVersion     id.RoomVersion    `json:"room_version"`
	InviteRoomState []json.RawMessage `json:"invite_room_state"`
}

// Invite countersigns an invite of a local user from origin (PUT /v2/invite) and records it.
func (s *Service) Invite(ctx context.Context, origin string, roomID id.RoomID, eventID id.EventID, req InviteRequest) (json.RawMessage, error) {
	rv := req.RoomVersion
	if rv == "" {
		rv = id.RoomV1
	}
	if !events.Joinable(rv) {
		return nil, merr.IncompatibleRoomVersion("room version %s is not supported here", rv).With("room_version", string(rv))
	}
	ev, err := s.parse(ctx, rv, req.Event)
	if err != nil {
		return nil, err
	}
	p := ev.PDU
	switch {
	case ev.ID != eventID:
		return nil, merr.BadJSON("the event ID is %s, not %s", ev.ID, eventID)
	case p.RoomID != roomID:
		return nil, merr.BadJSON("the event is for room %s, not %s", p.RoomID, roomID)
	case p.Type != "m.room.member" || p.StateKey == nil || membershipOfRaw(p.Content) != "invite":
		return nil, merr.BadJSON("not an invite")
	case id.UserID(*p.StateKey).Homeserver() != s.server:
		return nil, merr.BadJSON("the invitee %s is not on this server", *p.StateKey)
	case p.Sender.Homeserver() != origin:
		return nil, merr.Forbidden("%s cannot act for %s", origin, p.Sender)
	}
	// Invite permission (spec v1.18, MSC4155): a blocked invite is refused before we sign it.
	if err := s.rooms.CheckInvitePermission(ctx, p.Sender, id.UserID(*p.StateKey)); err != nil {
		return nil, err
	}
	signed, err := s.sign(rv, p)
	if err != nil {
		return nil, err
	}
	stripped, _ := json.Marshal(slices.DeleteFunc(req.InviteRoomState, func(m json.RawMessage) bool { return len(m) == 0 }))
	if err := s.rooms.StoreRemoteInvite(ctx, rv, signed, stripped); err != nil {
		return nil, err
	}
	return signed.JSON, nil
}

// countersign is the room service's RemoteInviter: a local user invites a remote user, whose
// server must sign the invite before it is stored (PUT /v2/invite on that server).
func (s *Service) countersign(ctx context.Context, rv id.RoomVersion, invite []byte, eventID id.EventID, stripped []events.StrippedState) ([]byte, error) {
	p, err := events.Parse(invite)
	if err != nil {
		return nil, err
	}
	target := id.UserID(*p.StateKey)
	state := make([]json.RawMessage, 0, len(stripped))
	for _, st := range stripped {
		b, err := json.Marshal(st)
		if err != nil {
			return nil, err
		}
		state = append(state, b)
	}
	resp, err := s.client.SendInvite(ctx, &mfed.ReqSendInvite{RoomID: p.RoomID, UserID: target, EventID: eventID, Event: invite, InviteRoomState: state, RoomVersion: rv})
	if err != nil {
		return nil, remoteErr("invite", target.Homeserver(), err)
	}
	signed, err := events.Parse(resp.Event)
	if err != nil {
		return nil, merr.BadJSON("invite answer from %s: %v", target.Homeserver(), err)
	}
	if err := signed.VerifySignature(events.Base(rv), target.Homeserver(), s.keys.GetKey(ctx)); err != nil {
		return nil, merr.Forbidden("the invitee's server did not sign the invite: %v", err)
	}
	return resp.Event, nil
}

func membershipOfRaw(c json.RawMessage) string {
	var v struct {
		Membership string `json:"membership"`
	}
	_ = json.Unmarshal(c, &v)
	return v.Membership
}

func authorisedVia(c json.RawMessage) string {
	var v struct {
		Via string `json:"join_authorised_via_users_server"`
	}
	_ = json.Unmarshal(c, &v)
	return v.Via
}

// countersignJoin adds this server's signature to a join whose join_authorised_via_users_server
// is one of our users (auth rule 4.2), leaving any other join as it is. The content hash must
// already be right: a signature is never put on content someone else altered.
func (s *Service) countersignJoin(rv id.RoomVersion, raw json.RawMessage) (json.RawMessage, error) {
	p, err := events.Parse(raw)
	if err != nil {
		return nil, merr.BadJSON("malformed event: %v", err)
	}
	via := authorisedVia(p.Content)
	if via == "" || id.UserID(via).Homeserver() != s.server {
		return raw, nil
	}
	if !p.VerifyContentHash() {
		return nil, merr.BadJSON("the join's content hash does not match its content")
	}
	signed, err := s.sign(rv, p)
	if err != nil {
		return nil, err
	}
	return signed.JSON, nil
}
