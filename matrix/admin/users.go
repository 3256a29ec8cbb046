package admin

import (
	"context"
	"errors"
	"sort"
	"strings"

	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/accounts"
	"github.com/hearth-home/hearth/matrix/merr"
	"github.com/hearth-home/hearth/matrix/rooms"
	"github.com/hearth-home/hearth/matrix/servernotices"
	"github.com/hearth-home/hearth/matrix/store"
)

// Service is the admin domain.
type Service struct {
	st      *store.Store
	acc     *accounts.Service
	rooms   *rooms.Service
	notices *servernotices.Service // notices.go; nil: send_server_notice answers 400
}

// New builds the service.
func New(st *store.Store, acc *accounts.Service, r *rooms.Service) *Service {
	return &Service{st: st, acc: acc, rooms: r}
}

// User is a user as Synapse's admin API shows it.
type User struct {
	Name         string  `json:"name"`
	DisplayName  *string `json:"displayname"`
	AvatarURL    *string `json:"avatar_url"`
	Admin        bool    `json:"admin"`
	Deactivated  bool    `json:"deactivated"`
	IsGuest      bool    `json:"is_guest"`
	ShadowBanned bool    `json:"shadow_banned"`
	Locked       bool    `json:"locked"`
	Erased       bool    `json:"erased"`
	CreationTS   int64   `json:"creation_ts"`
	UserType     *string `json:"user_type"`
	Threepids    []any   `json:"threepids,omitempty"`
	External     []any   `json:"external_ids,omitempty"`
}

func (s *Service) view(u *store.UserRecord, full bool) User {
	out := User{Name: s.acc.UserID(u.Localpart).String(), Admin: u.Admin, Deactivated: u.Deactivated, IsGuest: u.Guest, CreationTS: u.CreatedMS / 1000}
	if u.DisplayName != "" {
		dn := u.DisplayName
		out.DisplayName = &dn
	}
	if u.AvatarURL != "" {
		av := u.AvatarURL
		out.AvatarURL = &av
	}
	if full {
		out.Threepids, out.External = []any{}, []any{}
	}
	return out
}

// UserQuery is GET /_synapse/admin/v2/users.
type UserQuery struct {
	From        int
	Limit       int
	Name        string // substring of the user ID or display name
	Guests      bool
	Deactivated bool
	OrderBy     string // name (default), displayname, creation_ts, admin, deactivated
	Backwards   bool
}

// Users lists local users.
func (s *Service) Users(ctx context.Context, q UserQuery) (list []User, total int, err error) {
	all, err := s.acc.List(ctx)
	if err != nil {
		return nil, 0, err
	}
	name := strings.ToLower(q.Name)
	list = []User{}
	for _, u := range all {
		if (u.Guest && !q.Guests) || (u.Deactivated && !q.Deactivated) {
			continue
		}
		v := s.view(u, false)
		if name != "" && !strings.Contains(strings.ToLower(v.Name), name) && !strings.Contains(strings.ToLower(u.DisplayName), name) {
			continue
		}
		list = append(list, v)
	}
	less := func(a, b User) bool { return a.Name < b.Name }
	switch q.OrderBy {
	case "", "name":
	case "displayname":
		less = func(a, b User) bool { return deref(a.DisplayName) < deref(b.DisplayName) }
	case "creation_ts":
		less = func(a, b User) bool { return a.CreationTS < b.CreationTS }
	case "admin":
		less = func(a, b User) bool { return !a.Admin && b.Admin }
	case "deactivated":
		less = func(a, b User) bool { return !a.Deactivated && b.Deactivated }
	default:
		return nil, 0, merr.InvalidParam("unknown order_by %q", q.OrderBy)
	}
	sort.SliceStable(list, func(i, j int) bool {
		if q.Backwards {
			return less(list[j], list[i])
		}
		return less(list[i], list[j])
	})
	total = len(list)
	if q.From >= len(list) {
		return []User{}, total, nil
	}
	list = list[q.From:]
	if q.Limit > 0 && len(list) > q.Limit {
		list = list[:q.Limit]
	}
	return list, total, nil
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// LocalUser checks that a user ID is local and returns its localpart.
func (s *Service) LocalUser(user string) (string, error) {
	uid := id.UserID(user)
	lp, hs, err := uid.Parse()
	if err != nil {
		return "", merr.InvalidParam("invalid user ID %q", user)
	}
	if hs != s.acc.ServerName() {
		return "", merr.InvalidParam("can only manage local users")
	}
	return lp, nil
}

// GetUser returns one user.
func (s *Service) GetUser(ctx context.Context, user string) (*User, error) {
	lp, err := s.LocalUser(user)
	if err != nil {
		return nil, err
	}
	u, err := s.acc.User(ctx, lp)
	if errors.Is(err, store.ErrNotFound) {
		return nil, merr.NotFound("user not found")
	}
	if err != nil {
		return nil, err
	}
	v := s.view(u, true)
	return &v, nil
}

// UserChange is the body of PUT /_synapse/admin/v2/users/{userId}; nil fields stay as they are.
type UserChange struct {
	Password      *string `json:"password"`
	LogoutDevices *bool   `json:"logout_devices"`
	DisplayName   *string `json:"displayname"`
	AvatarURL     *string `json:"avatar_url"`
	Admin         *bool   `json:"admin"`
	Deactivated   *bool   `json:"deactivated"`
}

// PutUser creates (created = true) or modifies a user.
func (s *Service) PutUser(ctx context.Context, user string, c UserChange) (u *User, created bool, err error) {
	lp, err := s.LocalUser(user)
	if err != nil {
		return nil, false, err
	}
	uid := s.acc.UserID(lp)
	rec, err := s.acc.User(ctx, lp)
	switch {
	case errors.Is(err, store.ErrNotFound) || merrIsNotFound(err):
		pw := ""
		if c.Password != nil {
			pw = *c.Password
		}
		if _, err := s.acc.Register(ctx, lp, pw, c.Admin != nil && *c.Admin); err != nil {
			return nil, false, err
		}
		created = true
		if c.Deactivated != nil && *c.Deactivated {
			if err := s.acc.Deactivate(ctx, lp); err != nil {
				return nil, false, err
			}
		}
	case err != nil:
		return nil, false, err
	default:
		if c.Deactivated != nil && *c.Deactivated && !rec.Deactivated {
			if err := s.Deactivate(ctx, user); err != nil {
				return nil, false, err
			}
		}
		if c.Deactivated != nil && !*c.Deactivated && rec.Deactivated {
			if c.Password == nil || *c.Password == "" {
				return nil, false, merr.Forbidden("a password is required to reactivate a user")
			}
			if err := s.st.Update(func(txn *store.Txn) error {
				r, err := txn.User(lp)
				if err != nil {
					return err
				}
				r.Deactivated = false
				return txn.PutUser(r)
			}); err != nil {
				return nil, false, err
			}
		}
		if c.Password != nil && *c.Password != "" {
			logout := c.LogoutDevices == nil || *c.LogoutDevices
			if err := s.acc.SetPassword(ctx, lp, *c.Password, logout, ""); err != nil {
				return nil, false, err
			}
		}
		if c.Admin != nil && *c.Admin != rec.Admin {
			if err := s.acc.SetAdmin(ctx, lp, *c.Admin); err != nil {
				return nil, false, err
			}
		}
	}
	if c.DisplayName != nil || c.AvatarURL != nil {
		if err := s.acc.SetProfile(ctx, uid, c.DisplayName, c.AvatarURL); err != nil {
			return nil, false, err
		}
		if !created {
			if err := s.rooms.UpdateProfile(ctx, uid); err != nil {
				return nil, false, err
			}
		}
	}
	u, err = s.GetUser(ctx, user)
	return u, created, err
}

func merrIsNotFound(err error) bool {
	e, ok := merr.As(err)
	return ok && e.Code == "M_NOT_FOUND"
}

// Deactivate deactivates a local user and makes them leave every room.
func (s *Service) Deactivate(ctx context.Context, user string) error {
	lp, err := s.LocalUser(user)
	if err != nil {
		return err
	}
	if _, err := s.acc.User(ctx, lp); err != nil {
		if errors.Is(err, store.ErrNotFound) || merrIsNotFound(err) {
			return merr.NotFound("user not found")
		}
		return err
	}
	if err := s.acc.Deactivate(ctx, lp); err != nil {
		return err
	}
	return s.rooms.LeaveAll(ctx, s.acc.UserID(lp))
}

// ResetPassword sets a new password, logging out every device unless told not to.
func (s *Service) ResetPassword(ctx context.Context, user, password string, logout bool) error {
	lp, err := s.LocalUser(user)
	if err != nil {
		return err
	}
	if password == "" {
		return merr.MissingParam("new_password is required")
	}
	return s.acc.SetPassword(ctx, lp, password, logout, "")
}
