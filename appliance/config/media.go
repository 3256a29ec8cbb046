package config

import (
	"fmt"
	"time"
)

// Media configures the content repository (matrix/media).
type Media struct {
	// MaxUploadBytes caps one upload (m.upload.size); 0 means 50 MiB.
	MaxUploadBytes int64 `yaml:"max_upload_bytes"`
	// URLPreview enables /preview_url (the server fetches pages that users' clients name).
	URLPreview bool `yaml:"url_preview"`
	// URLPreviewAllowPrivate lets URL previews reach loopback, private and link-local
	// addresses. Leave it off unless every user may probe the LAN the server sits on.
	URLPreviewAllowPrivate bool `yaml:"url_preview_allow_private"`
	// LegacyUnauthenticated serves the deprecated unauthenticated /_matrix/media/v3 download
	// and thumbnail endpoints (on while Complement and older clients use them).
	LegacyUnauthenticated bool `yaml:"legacy_unauthenticated"`
	// RemoteCacheMaxBytes bounds the disk used by media fetched from other servers; the least
	// recently used files go first (they are fetched again when asked for). 0 means 1 GiB.
	RemoteCacheMaxBytes int64 `yaml:"remote_cache_max_bytes"`
	// RemoteRetention drops cached remote media not used for this long. 0 means 30 days.
	RemoteRetention time.Duration `yaml:"remote_retention"`
}

// DefaultMedia is the media section of Default.
func DefaultMedia() Media {
	return Media{MaxUploadBytes: 50 << 20, LegacyUnauthenticated: true, RemoteCacheMaxBytes: 1 << 30, RemoteRetention: 30 * 24 * time.Hour}
}

// problems reports media settings that cannot work (0 keeps meaning "the default").
func (m Media) problems() []error {
	var errs []error
	if m.RemoteCacheMaxBytes < 0 {
		errs = append(errs, fmt.Errorf("media.remote_cache_max_bytes must not be negative (0 means 1 GiB), got %d", m.RemoteCacheMaxBytes))
	}
	if m.RemoteRetention < 0 {
		errs = append(errs, fmt.Errorf("media.remote_retention must not be negative (0 means 30 days), got %s", m.RemoteRetention))
	}
	return errs
}
