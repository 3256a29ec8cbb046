package accounts

import (
	"bytes"
	"context"
	"errors"
	"time"

	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/merr"
	"github.com/hearth-home/hearth/matrix/store"
)

// Tokens beyond the plain access token: refreshable access tokens and their refresh tokens,
// single-use m.login.token tokens, and OpenID tokens that other services check over federation.
// Every token is stored as its SHA-256 hash only.

const (
	// DefaultAccessTokenLifetime is the lifetime of a refreshable access token when the
	// configuration names none (as Synapse's default).
	DefaultAccessTokenLifetime = 5 * time.Minute
	// LoginTokenLifetime is how long an m.login.token token stays usable (the spec recommends
	// two minutes).
	LoginTokenLifetime = 2 * time.Minute
	// OpenIDTokenLifetime is how long an OpenID token is valid.
	OpenIDTokenLifetime = time.Hour
)

// errTokenExpired answers a request made with an expired refreshable access token: the client
// should refresh it (soft logout), not log the user out.
func errTokenExpired() *merr.Error {
	return merr.UnknownToken("access token has expired").With("soft_logout", true)
}

// SetAccessTokenLifetime sets the lifetime of refreshable access tokens (0: the default).
// Call before serving.
func (s *Service) SetAccessTokenLifetime(d time.Duration) {
	if d <= 0 {
		d = DefaultAccessTokenLifetime
	}
	s.tokenLifetime = d
}

func (s *Service) accessTokenLifetime() time.Duration {
	if s.tokenLifetime <= 0 {
		return DefaultAccessTokenLifetime
	}
	return s.tokenLifetime
}

// checkTokenExpiry refuses an expired refreshable access token.
func (s *Service) checkTokenExpiry(rec store.TokenRecord) error {
	if rec.ExpiresMS != 0 && s.now().UnixMilli() >= rec.ExpiresMS {
		return errTokenExpired()
	}
	return nil
}

// LoginOpts are the options of a new login session.
type LoginOpts struct {
	DeviceID    string
	DisplayName string
	// Refresh asks for a refreshable access token and a refresh token (refresh_token: true).
	Refresh bool
}

// LoginResult is a new session's credentials.
type LoginResult struct {
	AccessToken  string
	DeviceID     string
	RefreshToken string        // empty unless requested
	ExpiresIn    time.Duration // 0 when the access token does not expire
}

// LoginSession logs a user in as Login does and, when asked, makes the access token expire and
// issues a refresh token for it.
func (s *Service) LoginSession(ctx context.Context, localpart string, o LoginOpts) (*LoginResult, error) {
	tok, dev, err := s.Login(ctx, localpart, o.DeviceID, o.DisplayName)
	if err != nil {
		return nil, err
	}
	res := &LoginResult{AccessToken: tok, DeviceID: dev}
	if !o.Refresh {
		return res, nil
	}
	rt := "hthr_" + randomToken(32)
	life := s.accessTokenLifetime()
	err = s.st.Update(func(txn *store.Txn) error {
		th := hashToken(tok)
		rec, err := txn.Token(th)
		if err != nil {
			return err
		}
		rh := hashToken(rt)
		rec.ExpiresMS = s.now().Add(life).UnixMilli()
		rec.Refresh = rh
		if err := txn.PutRefreshToken(rh, &store.RefreshTokenRecord{User: rec.User, Device: rec.Device, Access: th}); err != nil {
			return err
		}
		return txn.PutToken(th, rec)
	})
	if err != nil {
		return nil, err
	}
	res.RefreshToken, res.ExpiresIn = rt, life
	return res, nil
}

// Refresh exchanges a refresh token for a new access token and refresh token. The old access
// token stops working at once; the old refresh token keeps working until the new pair is first
// used (a client whose response was lost may retry), and using it again revokes the pair it
// produced before.
func (s *Service) Refresh(ctx context.Context, refreshToken string) (*LoginResult, error) {
	rh := hashToken(refreshToken)
	newAccess := "hth_" + randomToken(32)
	newRefresh := "hthr_" + randomToken(32)
	life := s.accessTokenLifetime()
	var device string
	err := s.st.Update(func(txn *store.Txn) error {
		rec, err := txn.RefreshToken(rh)
		if err != nil {
			return err
		}
		lp, _, _ := id.UserID(rec.User).Parse()
		u, err := txn.User(lp)
		if err != nil {
			return err
		}
		if u.Deactivated {
			return store.ErrNotFound
		}
		d, err := txn.Device(rec.User, rec.Device)
		if err != nil {
			return err
		}
		// The refresh token this one replaced is revoked now that the newer one is used.
		if len(rec.Prev) > 0 {
			if err := txn.DeleteRefreshToken(rec.Prev); err != nil {
				return err
			}
			rec.Prev = nil
		}
		// A second use of this refresh token: the pair issued by the first is abandoned.
		if len(rec.Next) > 0 {
			if next, err := txn.RefreshToken(rec.Next); err == nil {
				if err := deleteTokenOnly(txn, next.Access); err != nil {
					return err
				}
			} else if !errors.Is(err, store.ErrNotFound) {
				return err
			}
			if err := txn.DeleteRefreshToken(rec.Next); err != nil {
				return err
			}
		}
		// The device's current access token is replaced (it is rec.Access unless a newer
		// pair was abandoned above, whose token is gone already).
		if err := deleteTokenOnly(txn, d.TokenHash); err != nil {
			return err
		}
		if !bytes.Equal(d.TokenHash, rec.Access) {
			if err := deleteTokenOnly(txn, rec.Access); err != nil {
				return err
			}
		}
		nah, nrh := hashToken(newAccess), hashToken(newRefresh)
		rec.Next = nrh
		if err := txn.PutRefreshToken(rh, rec); err != nil {
			return err
		}
		if err := txn.PutRefreshToken(nrh, &store.RefreshTokenRecord{User: rec.User, Device: rec.Device, Access: nah, Prev: rh}); err != nil {
			return err
		}
		tr := store.TokenRecord{User: rec.User, Device: rec.Device, ExpiresMS: s.now().Add(life).UnixMilli(), Refresh: nrh, PrevRefresh: rh}
		if err := txn.PutToken(nah, tr); err != nil {
			return err
		}
		d.TokenHash = nah
		device = rec.Device
		return txn.PutDevice(rec.User, d)
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, merr.UnknownToken("unknown or revoked refresh token").With("soft_logout", false)
	}
	if err != nil {
		return nil, err
	}
	return &LoginResult{AccessToken: newAccess, DeviceID: device, RefreshToken: newRefresh, ExpiresIn: life}, nil
}

// revokePrevRefresh is called on the first use of an access token issued by Refresh: the
// refresh token it replaced is revoked, and the token forgets it (so later uses are reads only).
func (s *Service) revokePrevRefresh(accessHash []byte) {
	err := s.st.Update(func(txn *store.Txn) error {
		rec, err := txn.Token(accessHash)
		if err != nil || len(rec.PrevRefresh) == 0 {
			return err
		}
		if err := txn.DeleteRefreshToken(rec.PrevRefresh); err != nil {
			return err
		}
		if len(rec.Refresh) > 0 {
			if rr, err := txn.RefreshToken(rec.Refresh); err == nil {
				rr.Prev = nil
				if err := txn.PutRefreshToken(rec.Refresh, rr); err != nil {
					return err
				}
			}
		}
		rec.PrevRefresh = nil
		return txn.PutToken(accessHash, rec)
	})
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		s.log.Warn("revoke replaced refresh token", "err", err)
	}
}

// deleteAccessToken removes an access token together with the refresh tokens that belong to
// it (logout, device deletion, a new login on the same device).
func deleteAccessToken(txn *store.Txn, hash []byte) error {
	rec, err := txn.Token(hash)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, rh := range [][]byte{rec.Refresh, rec.PrevRefresh} {
		if len(rh) > 0 {
			if err := txn.DeleteRefreshToken(rh); err != nil {
				return err
			}
		}
	}
	return txn.DeleteToken(hash)
}

// deleteTokenOnly removes an access token record and nothing else.
func deleteTokenOnly(txn *store.Txn, hash []byte) error {
	if len(hash) == 0 {
		return nil
	}
	return txn.DeleteToken(hash)
}

// CreateLoginToken makes a single-use m.login.token token for user (POST /login/get_token).
func (s *Service) CreateLoginToken(ctx context.Context, user id.UserID) (string, time.Duration, error) {
	tok := "hthl_" + randomToken(32)
	err := s.st.Update(func(txn *store.Txn) error {
		return txn.PutLoginToken(hashToken(tok), store.ExpiringTokenRecord{User: user.String(), ExpiresMS: s.now().Add(LoginTokenLifetime).UnixMilli()})
	})
	return tok, LoginTokenLifetime, err
}

// UseLoginToken consumes an m.login.token token and returns the localpart it logs in. Unknown,
// used and expired tokens are all M_FORBIDDEN, as the spec's login errors have it.
func (s *Service) UseLoginToken(ctx context.Context, token string) (string, error) {
	th := hashToken(token)
	var user string
	err := s.st.Update(func(txn *store.Txn) error {
		rec, err := txn.LoginToken(th)
		if err != nil {
			return err
		}
		if err := txn.DeleteLoginToken(th); err != nil {
			return err
		}
		if s.now().UnixMilli() >= rec.ExpiresMS {
			return store.ErrNotFound
		}
		user = rec.User
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return "", merr.Forbidden("invalid or expired login token")
	}
	if err != nil {
		return "", err
	}
	lp, _, _ := id.UserID(user).Parse()
	u, err := s.User(ctx, lp)
	if err != nil {
		return "", merr.Forbidden("invalid or expired login token")
	}
	if u.Deactivated {
		return "", merr.UserDeactivated("this account has been deactivated")
	}
	return lp, nil
}

// CreateOpenIDToken makes an OpenID token that third parties can exchange for the user's ID
// over federation (/_matrix/federation/v1/openid/userinfo). Expired tokens are swept here.
func (s *Service) CreateOpenIDToken(ctx context.Context, user id.UserID) (string, time.Duration, error) {
	tok := randomToken(32)
	err := s.st.Update(func(txn *store.Txn) error {
		now := s.now()
		if err := txn.DeleteExpiredOpenIDTokens(now.UnixMilli()); err != nil {
			return err
		}
		return txn.PutOpenIDToken(hashToken(tok), store.ExpiringTokenRecord{User: user.String(), ExpiresMS: now.Add(OpenIDTokenLifetime).UnixMilli()})
	})
	return tok, OpenIDTokenLifetime, err
}

// OpenIDUser resolves an OpenID token to its user (M_UNKNOWN_TOKEN when unknown or expired).
func (s *Service) OpenIDUser(ctx context.Context, token string) (id.UserID, error) {
	var rec store.ExpiringTokenRecord
	err := s.st.View(func(txn *store.Txn) error {
		var err error
		rec, err = txn.OpenIDToken(hashToken(token))
		return err
	})
	if errors.Is(err, store.ErrNotFound) || (err == nil && s.now().UnixMilli() >= rec.ExpiresMS) {
		return "", merr.UnknownToken("unknown or expired OpenID token")
	}
	if err != nil {
		return "", err
	}
	return id.UserID(rec.User), nil
}
