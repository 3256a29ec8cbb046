package appliance

import (
	"context"

	"github.com/hearth-home/hearth/matrix/servernotices"
)

// openNotices builds server notices (config server_notices) and installs its membership guard
// on the rooms. The system account is made now, before any client can register its name.
func (a *Appliance) openNotices() error {
	c := a.cfg.ServerNotices
	a.notices = servernotices.New(servernotices.Config{
		SystemLocalpart: c.SystemMXIDLocalpart,
		DisplayName:     c.SystemMXIDDisplayName,
		AvatarURL:       c.SystemMXIDAvatarURL,
		RoomName:        c.RoomName,
		RoomTopic:       c.RoomTopic,
		RoomAvatarURL:   c.RoomAvatarURL,
	}, a.st, a.accounts, a.rooms, a.log)
	a.rooms.SetMembershipGuard(a.notices)
	return a.notices.Start(context.Background())
}
