package config

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
}

// DefaultMedia is the media section of Default.
func DefaultMedia() Media {
	return Media{MaxUploadBytes: 50 << 20, LegacyUnauthenticated: true}
}
