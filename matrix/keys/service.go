package keys

import (
	"log/slog"
	"net/http"
	"strings"
	gosync "sync"

	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/merr"
	"github.com/hearth-home/hearth/matrix/store"
)

// Algorithm names the server treats specially.
const (
	AlgSignedCurve25519 = "signed_curve25519"
	BackupAlgorithmV1   = "m.megolm_backup.v1.curve25519-aes-sha2"
)

// MaxInbox bounds a device's to-device inbox; older messages are dropped beyond it.
const MaxInbox = 1000

// Service is the E2EE domain service.
type Service struct {
	st     *store.Store
	server string
	log    *slog.Logger
	remote *remoteState // nil until EnableRemote: remote users' keys are then unavailable (remote.go)

	stop      chan struct{}
	closeOnce gosync.Once
	wg        gosync.WaitGroup
}

// New builds the service.
func New(st *store.Store, serverName string, log *slog.Logger) *Service {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{st: st, server: serverName, log: log, stop: make(chan struct{})}
}

// Close stops background work (device clean-up) and waits for it. Idempotent.
func (s *Service) Close() {
	s.closeOnce.Do(func() { close(s.stop) })
	s.wg.Wait()
}

func (s *Service) isLocal(user string) bool {
	return id.UserID(user).Homeserver() == s.server
}

// Errors of the E2EE module that merr has no constructor for.

func errInvalidSignature(format string, a ...any) *merr.Error {
	e := merr.InvalidParam(format, a...)
	e.Code = "M_INVALID_SIGNATURE"
	return e
}

func errWrongVersion(current string) *merr.Error {
	return (&merr.Error{Status: http.StatusForbidden, Code: "M_WRONG_ROOM_KEYS_VERSION", Message: "wrong backup version"}).With("current_version", current)
}

// checkIDPart refuses identifiers that cannot be stored as key components.
func checkIDPart(what, v string) error {
	if v == "" {
		return merr.InvalidParam("%s must not be empty", what)
	}
	if strings.IndexByte(v, 0) >= 0 {
		return merr.InvalidParam("%s must not contain NUL", what)
	}
	return nil
}
