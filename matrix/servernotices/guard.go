package servernotices

import (
	"context"

	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/merr"
	"github.com/hearth-home/hearth/matrix/rooms"
)

// CheckMembership implements rooms.MembershipGuard: the recipient of a notices room cannot
// reject its invite (joining and then leaving is allowed, as on Synapse), and nobody invites
// the system user anywhere, which keeps "the system user is joined" meaning "a notices room".
func (s *Service) CheckMembership(ctx context.Context, roomID id.RoomID, m rooms.MemberChange, cur string) error {
	if !s.Enabled() {
		return nil
	}
	if m.Membership == "invite" && m.Target == s.system && m.Sender != s.system {
		return merr.Forbidden("cannot invite the server notices user")
	}
	if m.Membership == "leave" && m.Sender == m.Target && cur == "invite" {
		sys, err := s.isNoticesRoom(ctx, roomID)
		if err != nil {
			return err
		}
		if sys {
			return errCannotReject()
		}
	}
	return nil
}

var _ rooms.MembershipGuard = (*Service)(nil)
