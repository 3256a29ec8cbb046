package media

import (
	"crypto/rand"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/hearth-home/hearth/matrix/store"
)

// Defaults and bounds.
const (
	// DefaultMaxUploadBytes is media.max_upload_bytes when the config leaves it at zero.
	DefaultMaxUploadBytes = 50 << 20
	// PendingLifetime is how long a media ID from /create stays reserved without content.
	PendingLifetime = 24 * time.Hour
	// MaxPendingPerUser bounds the reserved-but-unused media IDs per user (M_LIMIT_EXCEEDED).
	MaxPendingPerUser = 50
	// DefaultWait and MaxWait bound how long a download waits for an asynchronous upload.
	DefaultWait = 20 * time.Second
	MaxWait     = 60 * time.Second
	// idLen is the length of a media ID.
	idLen = 24
)

// Options configure the service.
type Options struct {
	ServerName     string
	DataDir        string // the appliance's data directory; files go to <DataDir>/media
	MaxUploadBytes int64  // 0 means DefaultMaxUploadBytes
	// URLPreview enables /preview_url; URLPreviewAllowPrivate lets it fetch from loopback,
	// private and link-local addresses (tests, LAN-only setups).
	URLPreview             bool
	URLPreviewAllowPrivate bool
	// LegacyUnauthenticated serves the deprecated /_matrix/media/v3 download, thumbnail,
	// config and preview_url endpoints without authentication.
	LegacyUnauthenticated bool
}

// Service is the content repository.
type Service struct {
	opts    Options
	st      *store.Store
	dir     string
	log     *slog.Logger
	now     func() time.Time
	preview *previewer
	// thumbSem bounds concurrent thumbnail generation.
	thumbSem chan struct{}

	mu      sync.Mutex
	waiters map[string]chan struct{} // media ID -> closed when its content arrives

	remote *remoteCache // other servers' media (remote.go); nil until EnableRemote
}

// New builds the service. The media directory is created on first write.
func New(st *store.Store, opts Options, log *slog.Logger) *Service {
	if opts.MaxUploadBytes <= 0 {
		opts.MaxUploadBytes = DefaultMaxUploadBytes
	}
	s := &Service{
		opts:    opts,
		st:      st,
		dir:     filepath.Join(opts.DataDir, "media"),
		log:     log,
		now:     time.Now,
		waiters: map[string]chan struct{}{},

		thumbSem: make(chan struct{}, maxThumbJobs),
	}
	s.preview = newPreviewer(s, opts.URLPreviewAllowPrivate)
	// Partial uploads and thumbnails left by a crash: nothing refers to them.
	if err := os.RemoveAll(filepath.Join(s.dir, "tmp")); err != nil {
		log.Warn("media: clear temp dir", "err", err)
	}
	return s
}

// ServerName is the local server name (the authority of local mxc:// URIs).
func (s *Service) ServerName() string { return s.opts.ServerName }

// MaxUploadBytes is the upload size limit (m.upload.size).
func (s *Service) MaxUploadBytes() int64 { return s.opts.MaxUploadBytes }

// LegacyUnauthenticated says whether the deprecated unauthenticated endpoints are served.
func (s *Service) LegacyUnauthenticated() bool { return s.opts.LegacyUnauthenticated }

// URLPreviewEnabled says whether /preview_url is served.
func (s *Service) URLPreviewEnabled() bool { return s.opts.URLPreview }

// SetHTTPTransport replaces the preview fetcher's transport (tests only).
func (s *Service) SetHTTPTransport(rt http.RoundTripper) { s.preview.client.Transport = rt }

const idAlphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

// newID returns a random media ID of idLen characters from [A-Za-z0-9].
func newID() string {
	b := make([]byte, idLen)
	rand.Read(b) // never fails (crypto/rand panics rather than return an error)
	for i := range b {
		b[i] = idAlphabet[int(b[i])%len(idAlphabet)]
	}
	return string(b)
}

// validID says whether a media ID could be one of ours (also keeps it safe in keys and paths).
func validID(mediaID string) bool {
	if len(mediaID) == 0 || len(mediaID) > 255 {
		return false
	}
	for _, c := range []byte(mediaID) {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

func (s *Service) nowMS() int64 { return s.now().UnixMilli() }
