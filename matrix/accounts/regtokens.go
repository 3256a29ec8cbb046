package accounts

import (
	"context"
	"errors"
	"regexp"

	"github.com/hearth-home/hearth/matrix/merr"
	"github.com/hearth-home/hearth/matrix/store"
)

var regTokenRE = regexp.MustCompile(`^[A-Za-z0-9._~-]{1,64}$`)

// CreateRegToken makes a registration token; an empty token is generated.
func (s *Service) CreateRegToken(ctx context.Context, token string, usesAllowed *int, expiryMS *int64) (*store.RegTokenRecord, error) {
	if token == "" {
		token = randomToken(12)
	}
	if !regTokenRE.MatchString(token) {
		return nil, merr.InvalidParam("token may only contain A-Z a-z 0-9 . _ ~ - and be at most 64 characters")
	}
	r := &store.RegTokenRecord{Token: token, UsesAllowed: usesAllowed, ExpiryMS: expiryMS}
	err := s.st.Update(func(txn *store.Txn) error {
		if _, err := txn.RegToken(token); err == nil {
			return merr.InvalidParam("token already exists")
		}
		return txn.PutRegToken(r)
	})
	return r, err
}

// RegTokens lists registration tokens.
func (s *Service) RegTokens(ctx context.Context) ([]*store.RegTokenRecord, error) {
	var out []*store.RegTokenRecord
	err := s.st.View(func(txn *store.Txn) error {
		var err error
		out, err = txn.RegTokens()
		return err
	})
	return out, err
}

func (s *Service) tokenUsable(r *store.RegTokenRecord) bool {
	if r.ExpiryMS != nil && s.now().UnixMilli() >= *r.ExpiryMS {
		return false
	}
	return r.UsesAllowed == nil || r.Pending+r.Completed < *r.UsesAllowed
}

// RegTokenValid reports whether a token can be used now.
func (s *Service) RegTokenValid(ctx context.Context, token string) (bool, error) {
	var ok bool
	err := s.st.View(func(txn *store.Txn) error {
		r, err := txn.RegToken(token)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		ok = s.tokenUsable(r)
		return nil
	})
	return ok, err
}

// UseRegToken counts one completed registration against a token.
func (s *Service) UseRegToken(ctx context.Context, token string) error {
	return s.st.Update(func(txn *store.Txn) error {
		r, err := txn.RegToken(token)
		if errors.Is(err, store.ErrNotFound) {
			return merr.Unauthorized("invalid registration token")
		}
		if err != nil {
			return err
		}
		if !s.tokenUsable(r) {
			return merr.Unauthorized("registration token is used up or expired")
		}
		r.Completed++
		return txn.PutRegToken(r)
	})
}
