package appliance

import (
	"context"
	"time"

	"github.com/hearth-home/hearth/appliance/control"
)

// admin implements control.Admin on the domain services, for the socket and offline use.
type admin struct{ a *Appliance }

func (d *admin) AddUser(ctx context.Context, name, password string, isAdmin bool) (string, error) {
	lp, err := d.a.accounts.LocalpartOf(name)
	if err != nil {
		return "", err
	}
	if _, err := d.a.accounts.Register(ctx, lp, password, isAdmin); err != nil {
		return "", err
	}
	return d.a.accounts.UserID(lp).String(), nil
}

func (d *admin) ListUsers(ctx context.Context) ([]control.UserInfo, error) {
	users, err := d.a.accounts.List(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]control.UserInfo, 0, len(users))
	for _, u := range users {
		out = append(out, control.UserInfo{UserID: d.a.accounts.UserID(u.Localpart).String(), Admin: u.Admin, Deactivated: u.Deactivated, DisplayName: u.DisplayName, CreatedMS: u.CreatedMS})
	}
	return out, nil
}

func (d *admin) SetPassword(ctx context.Context, name, password string) error {
	lp, err := d.a.accounts.LocalpartOf(name)
	if err != nil {
		return err
	}
	return d.a.accounts.SetPassword(ctx, lp, password, true, "")
}

func (d *admin) Deactivate(ctx context.Context, name string) error {
	lp, err := d.a.accounts.LocalpartOf(name)
	if err != nil {
		return err
	}
	if err := d.a.rooms.LeaveAll(ctx, d.a.accounts.UserID(lp)); err != nil {
		return err
	}
	return d.a.accounts.Deactivate(ctx, lp)
}

func (d *admin) CreateToken(ctx context.Context, usesAllowed int, expiry time.Duration) (string, error) {
	var uses *int
	if usesAllowed > 0 {
		uses = &usesAllowed
	}
	var exp *int64
	if expiry > 0 {
		e := time.Now().Add(expiry).UnixMilli()
		exp = &e
	}
	r, err := d.a.accounts.CreateRegToken(ctx, "", uses, exp)
	if err != nil {
		return "", err
	}
	return r.Token, nil
}
