package accounts

import (
	"context"
	"errors"

	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/merr"
	"github.com/hearth-home/hearth/matrix/store"
)

// Profile returns a local user's display name and avatar URL.
func (s *Service) Profile(ctx context.Context, user id.UserID) (string, string, error) {
	lp, hs, err := user.Parse()
	if err != nil || hs != s.server {
		return "", "", merr.NotFound("profile not found")
	}
	u, err := s.User(ctx, lp)
	if err != nil {
		return "", "", err
	}
	if u.Deactivated {
		return "", "", merr.NotFound("profile not found")
	}
	return u.DisplayName, u.AvatarURL, nil
}

// SetProfile sets the display name or avatar (nil leaves a field as it is).
func (s *Service) SetProfile(ctx context.Context, user id.UserID, displayName, avatarURL *string) error {
	lp, _, _ := user.Parse()
	return s.st.Update(func(txn *store.Txn) error {
		u, err := txn.User(lp)
		if errors.Is(err, store.ErrNotFound) {
			return merr.NotFound("user not found")
		}
		if err != nil {
			return err
		}
		if displayName != nil {
			u.DisplayName = *displayName
		}
		if avatarURL != nil {
			u.AvatarURL = *avatarURL
		}
		return txn.PutUser(u)
	})
}
