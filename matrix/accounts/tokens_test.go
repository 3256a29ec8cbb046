package accounts

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/hearth-home/hearth/matrix/merr"
	"github.com/hearth-home/hearth/matrix/store"
)

// Expiry of OpenID, login and refreshable access tokens, with a clock the test moves.

func tokenTestService(t *testing.T) (*Service, *time.Time) {
	t.Helper()
	st, err := store.Open("", store.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	now := time.Unix(1_700_000_000, 0)
	s := New(st, "example.org", slog.New(slog.DiscardHandler))
	s.now = func() time.Time { return now }
	if _, err := s.Register(context.Background(), "alice", "pw", false); err != nil {
		t.Fatal(err)
	}
	return s, &now
}

func wantCode(t *testing.T, err error, code string) *merr.Error {
	t.Helper()
	me, ok := merr.As(err)
	if !ok || me.Code != code {
		t.Fatalf("want %s, got %v", code, err)
	}
	return me
}

func TestOpenIDTokenExpiry(t *testing.T) {
	s, now := tokenTestService(t)
	ctx := context.Background()
	alice := s.UserID("alice")
	tok, ttl, err := s.CreateOpenIDToken(ctx, alice)
	if err != nil || ttl != OpenIDTokenLifetime {
		t.Fatalf("create: %v %v", ttl, err)
	}
	if u, err := s.OpenIDUser(ctx, tok); err != nil || u != alice {
		t.Fatalf("resolve: %s %v", u, err)
	}
	_, err = s.OpenIDUser(ctx, "other")
	wantCode(t, err, "M_UNKNOWN_TOKEN")
	*now = now.Add(OpenIDTokenLifetime)
	_, err = s.OpenIDUser(ctx, tok)
	wantCode(t, err, "M_UNKNOWN_TOKEN")
	// Issuing another token sweeps the expired one away.
	if _, _, err := s.CreateOpenIDToken(ctx, alice); err != nil {
		t.Fatal(err)
	}
	n := 0
	_ = s.st.View(func(txn *store.Txn) error {
		_, err := txn.OpenIDToken(hashToken(tok))
		if err == nil {
			n++
		}
		return nil
	})
	if n != 0 {
		t.Fatalf("expired OpenID token was not swept")
	}
}

func TestLoginTokenExpiryAndSingleUse(t *testing.T) {
	s, now := tokenTestService(t)
	ctx := context.Background()
	tok, _, err := s.CreateLoginToken(ctx, s.UserID("alice"))
	if err != nil {
		t.Fatal(err)
	}
	if lp, err := s.UseLoginToken(ctx, tok); err != nil || lp != "alice" {
		t.Fatalf("use: %q %v", lp, err)
	}
	_, err = s.UseLoginToken(ctx, tok)
	wantCode(t, err, "M_FORBIDDEN")

	late, _, err := s.CreateLoginToken(ctx, s.UserID("alice"))
	if err != nil {
		t.Fatal(err)
	}
	*now = now.Add(LoginTokenLifetime)
	_, err = s.UseLoginToken(ctx, late)
	wantCode(t, err, "M_FORBIDDEN")

	deact, _, _ := s.CreateLoginToken(ctx, s.UserID("alice"))
	if err := s.Deactivate(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	_, err = s.UseLoginToken(ctx, deact)
	wantCode(t, err, "M_USER_DEACTIVATED")
}

func TestRefreshableAccessTokenExpiry(t *testing.T) {
	s, now := tokenTestService(t)
	ctx := context.Background()
	s.SetAccessTokenLifetime(time.Minute)
	res, err := s.LoginSession(ctx, "alice", LoginOpts{Refresh: true})
	if err != nil || res.ExpiresIn != time.Minute || res.RefreshToken == "" {
		t.Fatalf("login: %+v %v", res, err)
	}
	plain, err := s.LoginSession(ctx, "alice", LoginOpts{})
	if err != nil || plain.RefreshToken != "" || plain.ExpiresIn != 0 {
		t.Fatalf("plain login: %+v %v", plain, err)
	}
	if _, err := s.Authenticate(ctx, res.AccessToken); err != nil {
		t.Fatal(err)
	}
	*now = now.Add(time.Minute)
	me := wantCode(t, func() error { _, err := s.Authenticate(ctx, res.AccessToken); return err }(), "M_UNKNOWN_TOKEN")
	if me.Extra["soft_logout"] != true {
		t.Fatalf("expired token error %v lacks soft_logout", me.Extra)
	}
	*now = now.Add(24 * time.Hour)
	if _, err := s.Authenticate(ctx, plain.AccessToken); err != nil {
		t.Fatalf("a plain token expired: %v", err)
	}
	next, err := s.Refresh(ctx, res.RefreshToken)
	if err != nil || next.DeviceID != res.DeviceID {
		t.Fatalf("refresh: %+v %v", next, err)
	}
	if _, err := s.Authenticate(ctx, next.AccessToken); err != nil {
		t.Fatal(err)
	}
	// Deleting the device removes both its tokens and the refresh token.
	if err := s.DeleteDevices(ctx, s.UserID("alice"), []string{next.DeviceID}); err != nil {
		t.Fatal(err)
	}
	_, err = s.Refresh(ctx, next.RefreshToken)
	wantCode(t, err, "M_UNKNOWN_TOKEN")
}
