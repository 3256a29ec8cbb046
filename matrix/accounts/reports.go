package accounts

import (
	"context"
	"errors"

	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/merr"
	"github.com/hearth-home/hearth/matrix/store"
)

// ReportUser records a report of a user for the server's admins (spec: report_content.yaml).
// Only local users are known here; anyone else is M_NOT_FOUND.
func (s *Service) ReportUser(ctx context.Context, reporter, target id.UserID, reason string) error {
	lp, hs, err := target.Parse()
	if err != nil || hs != s.server {
		return merr.NotFound("user %s not found", target)
	}
	err = s.st.Update(func(txn *store.Txn) error {
		if _, err := txn.User(lp); err != nil {
			return err
		}
		_, err := txn.PutReport(&store.ReportRecord{Kind: store.ReportUser, Reporter: reporter.String(), UserID: target.String(), Reason: reason, TS: s.now().UnixMilli()})
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return merr.NotFound("user %s not found", target)
	}
	return err
}
