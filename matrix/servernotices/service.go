package servernotices

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net/http"
	"sync"

	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/accounts"
	"github.com/hearth-home/hearth/matrix/merr"
	"github.com/hearth-home/hearth/matrix/rooms"
	"github.com/hearth-home/hearth/matrix/store"
)

// Config names the system user and the look of the notices room (config server_notices).
type Config struct {
	// SystemLocalpart is the system user's localpart; empty disables server notices.
	SystemLocalpart string
	DisplayName     string // the system user's display name
	AvatarURL       string // the system user's avatar (mxc://)
	RoomName        string // m.room.name of each notices room
	RoomTopic       string // m.room.topic; empty sets none
	RoomAvatarURL   string // m.room.avatar; empty sets none
}

// Service sends server notices.
type Service struct {
	cfg    Config
	st     *store.Store
	acc    *accounts.Service
	rooms  *rooms.Service
	log    *slog.Logger
	system id.UserID

	// locks serialise notices to one recipient, so that two concurrent first notices make one
	// room, not two.
	locks [16]sync.Mutex

	mu     sync.Mutex
	ready  bool                    // the system account exists with the configured profile
	byUser map[id.UserID]id.RoomID // notices rooms found so far (one per local user at most)
}

// New builds the service. With an empty SystemLocalpart it is disabled: Send answers 400 and
// the guard lets everything through.
func New(cfg Config, st *store.Store, acc *accounts.Service, r *rooms.Service, log *slog.Logger) *Service {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Service{cfg: cfg, st: st, acc: acc, rooms: r, log: log, byUser: map[id.UserID]id.RoomID{}}
	if cfg.SystemLocalpart != "" {
		s.system = acc.UserID(cfg.SystemLocalpart)
	}
	return s
}

// Enabled reports whether a system user is configured.
func (s *Service) Enabled() bool { return s.system != "" }

// SystemUser is the user notices are sent as ("" when disabled).
func (s *Service) SystemUser() id.UserID { return s.system }

// Start creates the system account (so that nobody else can register its name) and brings its
// profile in line with the configuration. It is also retried on the first notice if it fails.
func (s *Service) Start(ctx context.Context) error {
	if !s.Enabled() {
		return nil
	}
	return s.ensureSystemUser(ctx)
}

func (s *Service) ensureSystemUser(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ready {
		return nil
	}
	lp := s.cfg.SystemLocalpart
	u, err := s.acc.User(ctx, lp)
	if err != nil && !isNotFound(err) {
		return fmt.Errorf("server notices: load system user %s: %w", s.system, err)
	}
	if u == nil {
		// No password: the account exists only to own the notices rooms.
		if _, err := s.acc.Register(ctx, lp, "", false); err != nil && !isCode(err, "M_USER_IN_USE") {
			return fmt.Errorf("server notices: create system user %s: %w", s.system, err)
		}
		if u, err = s.acc.User(ctx, lp); err != nil {
			return fmt.Errorf("server notices: load system user %s: %w", s.system, err)
		}
	}
	if u.Deactivated {
		return fmt.Errorf("server notices: system user %s is deactivated", s.system)
	}
	if u.DisplayName != s.cfg.DisplayName || u.AvatarURL != s.cfg.AvatarURL {
		dn, av := s.cfg.DisplayName, s.cfg.AvatarURL
		if err := s.acc.SetProfile(ctx, s.system, &dn, &av); err != nil {
			return fmt.Errorf("server notices: set profile of %s: %w", s.system, err)
		}
		// Rooms made under the old profile show the new one from the next member event on.
		if err := s.rooms.UpdateProfile(ctx, s.system); err != nil {
			return fmt.Errorf("server notices: update member events of %s: %w", s.system, err)
		}
	}
	s.ready = true
	return nil
}

func (s *Service) lockUser(u id.UserID) func() {
	h := fnv.New32a()
	_, _ = h.Write([]byte(u))
	m := &s.locks[h.Sum32()%uint32(len(s.locks))]
	m.Lock()
	return m.Unlock
}

func isNotFound(err error) bool {
	return errors.Is(err, store.ErrNotFound) || isCode(err, "M_NOT_FOUND")
}

func isCode(err error, code string) bool {
	e, ok := merr.As(err)
	return ok && e.Code == code
}

// errCannotReject is the spec's answer to rejecting a server notices invite.
func errCannotReject() *merr.Error {
	return &merr.Error{Status: http.StatusForbidden, Code: "M_CANNOT_LEAVE_SERVER_NOTICE_ROOM", Message: "you cannot reject a server notices invite; join the room, then leave it"}
}
