package rooms

import (
	"context"

	"maunium.net/go/mautrix/federation/pdu"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/invitefilter"
	"github.com/hearth-home/hearth/matrix/merr"
	"github.com/hearth-home/hearth/matrix/store"
)

// Invite permission (spec v1.18, MSC4155): the rules live in matrix/invitefilter; these are the
// two places the room service applies them.

// refuseBlockedInvite fails (403 M_INVITE_BLOCKED) an invite of a local user who blocks its
// sender. Every locally built event passes here (appendEvent), so the invite endpoint, a state
// PUT of m.room.member and createRoom's invite list are all covered. Invites of remote users
// are their server's to refuse (it answers our /invite with the same error).
func (s *Service) refuseBlockedInvite(txn *store.Txn, p *pdu.PDU) error {
	if p.Type != "m.room.member" || p.StateKey == nil || membershipOf(p) != "invite" || !s.IsLocal(id.UserID(*p.StateKey)) {
		return nil
	}
	return invitefilter.Check(txn, *p.StateKey, p.Sender.String())
}

// CheckInvitePermission refuses (403 M_INVITE_BLOCKED) an invite that another server asks a
// local invitee to accept (federation /invite) when the invitee blocks inviter.
func (s *Service) CheckInvitePermission(ctx context.Context, inviter, invitee id.UserID) error {
	return s.st.View(func(txn *store.Txn) error {
		return invitefilter.Check(txn, invitee.String(), inviter.String())
	})
}

// createdWithoutInvite is createRoom's answer when an invitee refused: the room exists without
// that invite, and the spec still wants 403 M_INVITE_BLOCKED. The error carries room_id so that
// a client can find the room it made.
func createdWithoutInvite(roomID id.RoomID, refusal error) error {
	me, _ := merr.As(refusal)
	return me.With("room_id", roomID.String())
}
