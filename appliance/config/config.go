package config

import "time"

// Config is the whole appliance configuration. Every field that a flag sets also has a YAML key
// and a HEARTH_* environment variable (see load.go for the precedence: defaults < file < env < flags).
type Config struct {
	// ServerName is the Matrix server name (the part after ':' in user IDs).
	ServerName string `yaml:"server_name"`
	// DataDir holds the store, keys and the control socket.
	DataDir string `yaml:"data_dir"`
	// Listen is the client-server API address (plain HTTP; TLS is the federation listener's job).
	Listen string `yaml:"listen"`
	// FederationListen is the federation (TLS) address; empty disables it.
	FederationListen string `yaml:"federation_listen"`
	// TLSCert and TLSKey serve federation from files.
	TLSCert string `yaml:"tls_cert"`
	TLSKey  string `yaml:"tls_key"`
	// TLSCA and TLSCAKey sign the federation certificate at start (the Complement contract).
	TLSCA    string `yaml:"tls_ca"`
	TLSCAKey string `yaml:"tls_ca_key"`
	// TLSExtraCA are PEM files of CAs trusted for outbound federation beyond the system roots.
	TLSExtraCA []string `yaml:"tls_extra_ca,omitempty"`
	// TLS chooses the federation certificate source: ACME, files, local CA (tls.go).
	TLS TLS `yaml:",inline"`
	// PublicBaseURL is advertised in /.well-known/matrix/client; empty derives it from the request.
	PublicBaseURL string `yaml:"public_base_url"`

	// DefaultRoomVersion is the room version createRoom uses when the client names none.
	DefaultRoomVersion string `yaml:"default_room_version"`

	Registration Registration `yaml:"registration"`
	Limits       Limits       `yaml:"limits"`
	Log          Log          `yaml:"log"`
	// AppServiceDir holds application-service registration YAML files.
	AppServiceDir string `yaml:"appservice_dir"`
	// Presence turns presence on (set/get, m.presence in /sync). Off by default: presence is a
	// known memory and CPU sink on small boards. Off, PUT is accepted and ignored and GET
	// answers offline.
	Presence bool `yaml:"presence"`
	// Media is the content repository (media.go).
	Media Media `yaml:"media"`
	// Devices is the device bridge (devices.go).
	Devices Devices `yaml:"devices"`
	// Federation tunes the server-server side (federation.go).
	Federation Federation `yaml:"federation"`
	// ServerNotices sends notices from a system user to one user (servernotices.go).
	ServerNotices ServerNotices `yaml:"server_notices"`
	// Push tunes push rule evaluation (push.go).
	Push Push `yaml:"push"`
	// DelayedEvents tunes delayed events, MSC4140 (delayed.go).
	DelayedEvents DelayedEvents `yaml:"delayed_events"`
}

// Registration controls who may create accounts.
type Registration struct {
	// Open allows anyone to register with m.login.dummy.
	Open bool `yaml:"open"`
	// SharedSecret enables /_synapse/admin/v1/register; empty disables it.
	SharedSecret string `yaml:"shared_secret"`
	// MinPasswordLength applies to registration and password changes.
	MinPasswordLength int `yaml:"min_password_length"`
	// AccessTokenLifetime is how long an access token lasts when the client asked for a refresh
	// token (login or register with refresh_token); 0 means 5 minutes. Other tokens never expire.
	AccessTokenLifetime time.Duration `yaml:"access_token_lifetime"`
}

// Limits bound request sizes and rates.
type Limits struct {
	// RateLimit disables all rate limiting when false.
	RateLimit bool `yaml:"rate_limit"`
	// PerSecond and Burst are per-user (or per-IP) token-bucket figures for login, register, send.
	PerSecond float64 `yaml:"per_second"`
	Burst     int     `yaml:"burst"`
	// MaxBodyBytes caps request bodies outside media upload.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// SyncTimeoutMax caps a /sync long-poll.
	SyncTimeoutMax time.Duration `yaml:"sync_timeout_max"`
}

// Log configures structured logging.
type Log struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // text or json
}

// Default returns the configuration that `make run` uses.
func Default() Config {
	return Config{
		ServerName: "localhost",
		DataDir:    "./hearth-data",
		Listen:     "127.0.0.1:8008",
		// Version 12 is the current version and closes the state-resolution attacks of 2025.
		DefaultRoomVersion: "12",
		Registration: Registration{
			MinPasswordLength: 8,
		},
		Limits: Limits{
			RateLimit:      true,
			PerSecond:      5,
			Burst:          20,
			MaxBodyBytes:   1 << 20,
			SyncTimeoutMax: 5 * time.Minute,
		},
		Log:        Log{Level: "info", Format: "text"},
		Media:      DefaultMedia(),
		Devices:    DefaultDevices(),
		Federation: Federation{RetryBase: 5 * time.Second, RetryMax: time.Hour},

		ServerNotices: DefaultServerNotices(),
		DelayedEvents: DefaultDelayedEvents(),
	}
}
