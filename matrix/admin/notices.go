package admin

import (
	"context"

	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/merr"
	"github.com/hearth-home/hearth/matrix/servernotices"
)

// WithNotices gives the admin API the server notices service (send_server_notice).
func (s *Service) WithNotices(n *servernotices.Service) *Service {
	s.notices = n
	return s
}

// SendServerNotice is POST /_synapse/admin/v1/send_server_notice (and the PUT form with a
// transaction ID): a notice from the system user into the recipient's notices room.
func (s *Service) SendServerNotice(ctx context.Context, n servernotices.Notice) (id.EventID, error) {
	if s.notices == nil || !s.notices.Enabled() {
		return "", merr.Unknown("server notices are not enabled on this server")
	}
	return s.notices.Send(ctx, n)
}
