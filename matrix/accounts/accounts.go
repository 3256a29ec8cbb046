package accounts

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/change"
	"github.com/hearth-home/hearth/matrix/merr"
	"github.com/hearth-home/hearth/matrix/store"
)

// bcryptCost balances login latency on a Pi (about 0.1 s at 10) against offline guessing.
const bcryptCost = 10

var localpartRE = regexp.MustCompile(`^[a-z0-9._=/+\-]+$`)

// Service is the accounts domain.
type Service struct {
	st     *store.Store
	server string
	log    *slog.Logger
	now    func() time.Time

	uiaMu sync.Mutex
	uia   map[string]*uiaSession

	seenMu sync.Mutex
	seen   map[string]time.Time // device last-seen updates, written lazily

	tokenLifetime time.Duration // of refreshable access tokens; see SetAccessTokenLifetime
}

// New makes the accounts service.
func New(st *store.Store, serverName string, log *slog.Logger) *Service {
	return &Service{st: st, server: serverName, log: log, now: time.Now, uia: map[string]*uiaSession{}, seen: map[string]time.Time{}}
}

// ServerName is the local server name.
func (s *Service) ServerName() string { return s.server }

// UserID makes a local user ID.
func (s *Service) UserID(localpart string) id.UserID { return id.NewUserID(localpart, s.server) }

// LocalpartOf accepts a localpart or a full local user ID.
func (s *Service) LocalpartOf(user string) (string, error) {
	if strings.HasPrefix(user, "@") {
		lp, hs, err := id.UserID(user).Parse()
		if err != nil {
			return "", merr.InvalidUsername("invalid user ID %q", user)
		}
		if hs != s.server {
			return "", merr.InvalidUsername("user %s is not on this server", user)
		}
		return strings.ToLower(lp), nil
	}
	return strings.ToLower(user), nil
}

// ValidateLocalpart checks a new user's localpart against the spec's grammar.
func (s *Service) ValidateLocalpart(lp string) error {
	if lp == "" || !localpartRE.MatchString(lp) {
		return merr.InvalidUsername("user ID may only contain a-z, 0-9 and . _ = - / +")
	}
	if len("@"+lp+":"+s.server) > 255 {
		return merr.InvalidUsername("user ID is too long")
	}
	return nil
}

// Register creates a user. An empty password makes an account that cannot log in with one.
func (s *Service) Register(ctx context.Context, localpart, password string, admin bool) (*store.UserRecord, error) {
	if err := s.ValidateLocalpart(localpart); err != nil {
		return nil, err
	}
	u := &store.UserRecord{Localpart: localpart, Admin: admin, CreatedMS: s.now().UnixMilli()}
	if password != "" {
		h, err := bcrypt.GenerateFromPassword([]byte(password), bcryptCost)
		if err != nil {
			return nil, fmt.Errorf("hash password: %w", err)
		}
		u.PasswordHash = string(h)
	}
	err := s.st.Update(func(txn *store.Txn) error {
		if _, err := txn.User(localpart); err == nil {
			return merr.UserInUse("user ID already taken")
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		return txn.PutUser(u)
	})
	return u, err
}

// Available reports whether a localpart can be registered.
func (s *Service) Available(ctx context.Context, localpart string) error {
	if err := s.ValidateLocalpart(localpart); err != nil {
		return err
	}
	return s.st.View(func(txn *store.Txn) error {
		if _, err := txn.User(localpart); err == nil {
			return merr.UserInUse("user ID already taken")
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		return nil
	})
}

// User loads a user record.
func (s *Service) User(ctx context.Context, localpart string) (*store.UserRecord, error) {
	var u *store.UserRecord
	err := s.st.View(func(txn *store.Txn) error {
		var err error
		u, err = txn.User(localpart)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, merr.NotFound("user not found")
	}
	return u, err
}

// List returns every user.
func (s *Service) List(ctx context.Context) ([]*store.UserRecord, error) {
	var out []*store.UserRecord
	err := s.st.View(func(txn *store.Txn) error {
		return txn.Users(func(u *store.UserRecord) (bool, error) {
			out = append(out, u)
			return true, nil
		})
	})
	return out, err
}

// CheckPassword verifies a user's password.
func (s *Service) CheckPassword(ctx context.Context, localpart, password string) (*store.UserRecord, error) {
	u, err := s.User(ctx, localpart)
	if err != nil {
		// Same answer as a wrong password: do not reveal which users exist.
		return nil, merr.Forbidden("invalid username or password")
	}
	if u.PasswordHash == "" || bcrypt.CompareHashAndPassword([]byte(u.PasswordHash), []byte(password)) != nil {
		return nil, merr.Forbidden("invalid username or password")
	}
	if u.Deactivated {
		return nil, merr.UserDeactivated("this account has been deactivated")
	}
	return u, nil
}

// Session is an authenticated request's identity.
type Session struct {
	User     id.UserID
	Device   string
	Admin    bool
	TokenKey []byte
}

func hashToken(tok string) []byte {
	h := sha256.Sum256([]byte(tok))
	return h[:]
}

func randomToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// NewDeviceID makes a device ID in the usual upper-case style.
func NewDeviceID() string {
	const alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	b := make([]byte, 10)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alpha[int(b[i])%len(alpha)]
	}
	return string(b)
}

// Login creates (or replaces) a device and returns a new access token for it.
func (s *Service) Login(ctx context.Context, localpart, deviceID, displayName string) (token, device string, err error) {
	if deviceID == "" {
		deviceID = NewDeviceID()
	}
	token = "hth_" + randomToken(32)
	user := s.UserID(localpart).String()
	err = s.st.Update(func(txn *store.Txn) error {
		old, err := txn.Device(user, deviceID)
		if err == nil {
			if err := deleteAccessToken(txn, old.TokenHash); err != nil {
				return err
			}
			if displayName == "" {
				displayName = old.DisplayName
			}
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		th := hashToken(token)
		if err := txn.PutDevice(user, &store.DeviceRecord{ID: deviceID, DisplayName: displayName, TokenHash: th, LastSeenMS: s.now().UnixMilli()}); err != nil {
			return err
		}
		pos, err := txn.AllocPos(store.KindDevice)
		if err != nil {
			return err
		}
		txn.Notify(pos, change.Change{Pos: pos, Kind: change.Devices, User: user, Device: deviceID})
		return txn.PutToken(th, store.TokenRecord{User: user, Device: deviceID})
	})
	return token, deviceID, err
}

// Authenticate resolves an access token.
func (s *Service) Authenticate(ctx context.Context, token string) (*Session, error) {
	th := hashToken(token)
	var sess *Session
	var revoke bool
	err := s.st.View(func(txn *store.Txn) error {
		rec, err := txn.Token(th)
		if err != nil {
			return err
		}
		if err := s.checkTokenExpiry(rec); err != nil {
			return err
		}
		revoke = len(rec.PrevRefresh) > 0 // first use of a refreshed token (tokens.go)
		lp, _, _ := id.UserID(rec.User).Parse()
		u, err := txn.User(lp)
		if err != nil {
			return err
		}
		if u.Deactivated {
			return store.ErrNotFound
		}
		sess = &Session{User: id.UserID(rec.User), Device: rec.Device, Admin: u.Admin, TokenKey: th}
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, merr.UnknownToken("unknown or expired access token").With("soft_logout", false)
	}
	if err != nil {
		return nil, err
	}
	if revoke {
		s.revokePrevRefresh(th)
	}
	return sess, nil
}

// Logout deletes the session's device and token.
func (s *Service) Logout(ctx context.Context, sess *Session) error {
	return s.DeleteDevices(ctx, sess.User, []string{sess.Device})
}

// LogoutAll deletes every device of the user.
func (s *Service) LogoutAll(ctx context.Context, user id.UserID) error {
	devs, err := s.Devices(ctx, user)
	if err != nil {
		return err
	}
	ids := make([]string, len(devs))
	for i, d := range devs {
		ids[i] = d.ID
	}
	return s.DeleteDevices(ctx, user, ids)
}

// Devices lists a user's devices.
func (s *Service) Devices(ctx context.Context, user id.UserID) ([]*store.DeviceRecord, error) {
	var out []*store.DeviceRecord
	err := s.st.View(func(txn *store.Txn) error {
		var err error
		out, err = txn.Devices(user.String())
		return err
	})
	return out, err
}

// Device loads one device.
func (s *Service) Device(ctx context.Context, user id.UserID, device string) (*store.DeviceRecord, error) {
	var out *store.DeviceRecord
	err := s.st.View(func(txn *store.Txn) error {
		var err error
		out, err = txn.Device(user.String(), device)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, merr.NotFound("device not found")
	}
	return out, err
}

// RenameDevice sets a device's display name.
func (s *Service) RenameDevice(ctx context.Context, user id.UserID, device, name string) error {
	return s.st.Update(func(txn *store.Txn) error {
		d, err := txn.Device(user.String(), device)
		if errors.Is(err, store.ErrNotFound) {
			return merr.NotFound("device not found")
		}
		if err != nil {
			return err
		}
		d.DisplayName = name
		pos, err := txn.AllocPos(store.KindDevice)
		if err != nil {
			return err
		}
		txn.Notify(pos, change.Change{Pos: pos, Kind: change.Devices, User: user.String(), Device: device})
		return txn.PutDevice(user.String(), d)
	})
}

// DeleteDevices removes devices and their tokens; unknown IDs are ignored.
func (s *Service) DeleteDevices(ctx context.Context, user id.UserID, devices []string) error {
	return s.st.Update(func(txn *store.Txn) error {
		var deleted []string
		for _, dev := range devices {
			d, err := txn.Device(user.String(), dev)
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			if err := deleteAccessToken(txn, d.TokenHash); err != nil {
				return err
			}
			if err := txn.DeleteDevice(user.String(), dev); err != nil {
				return err
			}
			if err := deleteAccountData(txn, user, 0, "", localNotificationSettingsPrefix+dev); err != nil {
				return err
			}
			deleted = append(deleted, dev)
		}
		pos, err := txn.AllocPos(store.KindDevice)
		if err != nil {
			return err
		}
		if len(deleted) == 0 {
			txn.Notify(pos, change.Change{Pos: pos, Kind: change.Devices, User: user.String()})
		}
		for _, dev := range deleted { // one note per device: federation announces each deletion
			txn.Notify(pos, change.Change{Pos: pos, Kind: change.Devices, User: user.String(), Device: dev})
		}
		return nil
	})
}

// SetPassword changes a password; when logoutExcept is non-nil every other device is removed.
func (s *Service) SetPassword(ctx context.Context, localpart, password string, logoutOthers bool, keepDevice string) error {
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcryptCost)
	if err != nil {
		return fmt.Errorf("hash password: %w", err)
	}
	err = s.st.Update(func(txn *store.Txn) error {
		u, err := txn.User(localpart)
		if errors.Is(err, store.ErrNotFound) {
			return merr.NotFound("user not found")
		}
		if err != nil {
			return err
		}
		u.PasswordHash = string(h)
		return txn.PutUser(u)
	})
	if err != nil || !logoutOthers {
		return err
	}
	user := s.UserID(localpart)
	devs, err := s.Devices(ctx, user)
	if err != nil {
		return err
	}
	var drop []string
	for _, d := range devs {
		if d.ID != keepDevice {
			drop = append(drop, d.ID)
		}
	}
	return s.DeleteDevices(ctx, user, drop)
}

// Deactivate marks a user deactivated and removes every device. Leaving rooms is the caller's
// job (rooms domain).
func (s *Service) Deactivate(ctx context.Context, localpart string) error {
	err := s.st.Update(func(txn *store.Txn) error {
		u, err := txn.User(localpart)
		if errors.Is(err, store.ErrNotFound) {
			return merr.NotFound("user not found")
		}
		if err != nil {
			return err
		}
		u.Deactivated = true
		u.PasswordHash = ""
		u.DisplayName, u.AvatarURL = "", ""
		return txn.PutUser(u)
	})
	if err != nil {
		return err
	}
	return s.LogoutAll(ctx, s.UserID(localpart))
}

// SetAdmin grants or removes server admin.
func (s *Service) SetAdmin(ctx context.Context, localpart string, admin bool) error {
	return s.st.Update(func(txn *store.Txn) error {
		u, err := txn.User(localpart)
		if err != nil {
			return err
		}
		u.Admin = admin
		return txn.PutUser(u)
	})
}

// touchEvery bounds how often a device's last-seen record is rewritten: each rewrite is a
// durable write, and a busy client makes many requests a second.
const touchEvery = 5 * time.Minute

// Touch records that a device was used now from ip, at most once per touchEvery.
func (s *Service) Touch(ctx context.Context, sess *Session, ip string) {
	key := sess.User.String() + "\x00" + sess.Device
	now := s.now()
	s.seenMu.Lock()
	last, ok := s.seen[key]
	if ok && now.Sub(last) < touchEvery {
		s.seenMu.Unlock()
		return
	}
	if len(s.seen) > 100000 { // bound memory; a reset only causes one extra write per device
		s.seen = map[string]time.Time{}
	}
	s.seen[key] = now
	s.seenMu.Unlock()
	err := s.st.Update(func(txn *store.Txn) error {
		d, err := txn.Device(sess.User.String(), sess.Device)
		if err != nil {
			return err
		}
		d.LastSeenMS, d.LastSeenIP = now.UnixMilli(), ip
		return txn.PutDevice(sess.User.String(), d)
	})
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		s.log.Warn("record device last seen", "user", sess.User, "err", err)
	}
}
