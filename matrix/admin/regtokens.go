package admin

import (
	"context"
	"errors"
	"sort"
	"time"

	"github.com/hearth-home/hearth/matrix/merr"
	"github.com/hearth-home/hearth/matrix/store"
)

// RegToken is a registration token as Synapse's admin API shows it.
type RegToken struct {
	Token       string `json:"token"`
	UsesAllowed *int   `json:"uses_allowed"`
	Pending     int    `json:"pending"`
	Completed   int    `json:"completed"`
	ExpiryTime  *int64 `json:"expiry_time"`
}

func tokenView(r *store.RegTokenRecord) RegToken {
	return RegToken{Token: r.Token, UsesAllowed: r.UsesAllowed, Pending: r.Pending, Completed: r.Completed, ExpiryTime: r.ExpiryMS}
}

func valid(r *store.RegTokenRecord, now int64) bool {
	if r.ExpiryMS != nil && now >= *r.ExpiryMS {
		return false
	}
	return r.UsesAllowed == nil || r.Pending+r.Completed < *r.UsesAllowed
}

// RegTokens lists tokens; valid filters on usability when non-nil.
func (s *Service) RegTokens(ctx context.Context, valid_ *bool) ([]RegToken, error) {
	all, err := s.acc.RegTokens(ctx)
	if err != nil {
		return nil, err
	}
	now := time.Now().UnixMilli()
	out := []RegToken{}
	for _, r := range all {
		if valid_ != nil && valid(r, now) != *valid_ {
			continue
		}
		out = append(out, tokenView(r))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Token < out[j].Token })
	return out, nil
}

// RegToken returns one token.
func (s *Service) RegToken(ctx context.Context, token string) (*RegToken, error) {
	var out *RegToken
	err := s.st.View(func(txn *store.Txn) error {
		r, err := txn.RegToken(token)
		if errors.Is(err, store.ErrNotFound) {
			return merr.NotFound("no such registration token")
		}
		if err != nil {
			return err
		}
		v := tokenView(r)
		out = &v
		return nil
	})
	return out, err
}

// NewRegToken is POST /registration_tokens/new.
type NewRegToken struct {
	Token       *string `json:"token"`
	UsesAllowed *int    `json:"uses_allowed"`
	ExpiryTime  *int64  `json:"expiry_time"`
	Length      *int    `json:"length"`
}

// CreateRegToken makes a token.
func (s *Service) CreateRegToken(ctx context.Context, n NewRegToken) (*RegToken, error) {
	if n.UsesAllowed != nil && *n.UsesAllowed < 0 {
		return nil, merr.InvalidParam("uses_allowed must be a non-negative integer or null")
	}
	if n.ExpiryTime != nil && *n.ExpiryTime < time.Now().UnixMilli() {
		return nil, merr.InvalidParam("expiry_time must not be in the past")
	}
	tok := ""
	if n.Token != nil {
		tok = *n.Token
		if tok == "" {
			return nil, merr.InvalidParam("token must not be empty")
		}
	} else if n.Length != nil {
		if *n.Length <= 0 || *n.Length > 64 {
			return nil, merr.InvalidParam("length must be an integer between 1 and 64")
		}
		tok = randomToken(*n.Length)
	}
	r, err := s.acc.CreateRegToken(ctx, tok, n.UsesAllowed, n.ExpiryTime)
	if err != nil {
		return nil, err
	}
	v := tokenView(r)
	return &v, nil
}

// RegTokenChange is PUT /registration_tokens/{token}; a present null clears the field.
type RegTokenChange struct {
	SetUses     bool
	UsesAllowed *int
	SetExpiry   bool
	ExpiryTime  *int64
}

// UpdateRegToken changes a token's limits.
func (s *Service) UpdateRegToken(ctx context.Context, token string, c RegTokenChange) (*RegToken, error) {
	if c.UsesAllowed != nil && *c.UsesAllowed < 0 {
		return nil, merr.InvalidParam("uses_allowed must be a non-negative integer or null")
	}
	if c.ExpiryTime != nil && *c.ExpiryTime < time.Now().UnixMilli() {
		return nil, merr.InvalidParam("expiry_time must not be in the past")
	}
	var out *RegToken
	err := s.st.Update(func(txn *store.Txn) error {
		r, err := txn.RegToken(token)
		if errors.Is(err, store.ErrNotFound) {
			return merr.NotFound("no such registration token")
		}
		if err != nil {
			return err
		}
		if c.SetUses {
			r.UsesAllowed = c.UsesAllowed
		}
		if c.SetExpiry {
			r.ExpiryMS = c.ExpiryTime
		}
		v := tokenView(r)
		out = &v
		return txn.PutRegToken(r)
	})
	return out, err
}

// DeleteRegToken removes a token.
func (s *Service) DeleteRegToken(ctx context.Context, token string) error {
	return s.st.Update(func(txn *store.Txn) error {
		if _, err := txn.RegToken(token); errors.Is(err, store.ErrNotFound) {
			return merr.NotFound("no such registration token")
		} else if err != nil {
			return err
		}
		return txn.DeleteRegToken(token)
	})
}
