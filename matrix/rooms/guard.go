package rooms

import (
	"context"

	"maunium.net/go/mautrix/id"
)

// MembershipGuard vets a client's membership change before it is sent, for rules that belong
// to another package and that the auth rules cannot express (a server notices room whose
// invite cannot be rejected, a system user nobody may invite). cur is the target's current
// membership ("" if none). Changes marked System (deactivation, room deletion) skip it.
type MembershipGuard interface {
	CheckMembership(ctx context.Context, roomID id.RoomID, m MemberChange, cur string) error
}

// SetMembershipGuard installs the guard. Call before serving.
func (s *Service) SetMembershipGuard(g MembershipGuard) { s.guard = g }
