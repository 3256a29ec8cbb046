package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"

	"maunium.net/go/mautrix/id"
)

// Validate reports every problem at once, joined with errors.Join (one per line), so that
// `hearth config check` shows the whole list instead of one fix-and-retry round per mistake.
// Messages name the YAML key to change.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf(format, args...))
	}

	if !id.ValidateServerName(c.ServerName) {
		bad("server_name %q is not a valid Matrix server name (hostname, IPv4 or [IPv6], optional :port)", c.ServerName)
	}
	if c.DataDir == "" {
		bad("data_dir is empty")
	}
	if err := checkHostPort(c.Listen); err != nil {
		bad("listen: %w", err)
	}
	if c.FederationListen != "" {
		if err := checkHostPort(c.FederationListen); err != nil {
			bad("federation_listen: %w", err)
		}
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		bad("tls_cert and tls_key must be set together")
	}
	if (c.TLSCA == "") != (c.TLSCAKey == "") {
		bad("tls_ca and tls_ca_key must be set together")
	}
	if c.PublicBaseURL != "" {
		if err := checkBaseURL(c.PublicBaseURL); err != nil {
			bad("public_base_url: %w", err)
		}
	}
	if c.Registration.MinPasswordLength < 0 {
		bad("registration.min_password_length must not be negative (0 means no minimum), got %d", c.Registration.MinPasswordLength)
	}
	if c.Registration.AccessTokenLifetime < 0 {
		bad("registration.access_token_lifetime must not be negative, got %s", c.Registration.AccessTokenLifetime)
	}
	errs = append(errs, c.Limits.problems()...)
	errs = append(errs, c.Media.problems()...)
	errs = append(errs, c.ServerNotices.problems()...)
	errs = append(errs, c.DelayedEvents.problems()...)
	errs = append(errs, c.Log.problems()...)
	errs = append(errs, c.tlsProblems()...)
	errs = append(errs, c.Devices.problems()...)
	return errors.Join(errs...)
}

func (l Limits) problems() []error {
	var errs []error
	// The token bucket figures only matter while rate limiting is on; requiring them otherwise
	// would force a meaningless value on whoever turns it off.
	if l.RateLimit && l.PerSecond <= 0 {
		errs = append(errs, fmt.Errorf("limits.per_second must be positive, got %v", l.PerSecond))
	}
	if l.RateLimit && l.Burst <= 0 {
		errs = append(errs, fmt.Errorf("limits.burst must be positive, got %d", l.Burst))
	}
	if l.MaxBodyBytes <= 0 {
		errs = append(errs, fmt.Errorf("limits.max_body_bytes must be positive, got %d", l.MaxBodyBytes))
	}
	if l.SyncTimeoutMax <= 0 {
		errs = append(errs, fmt.Errorf("limits.sync_timeout_max must be positive, got %s", l.SyncTimeoutMax))
	}
	return errs
}

func (l Log) problems() []error {
	var errs []error
	var level slog.Level
	if err := level.UnmarshalText([]byte(l.Level)); err != nil {
		errs = append(errs, fmt.Errorf("log.level %q: want debug, info, warn or error", l.Level))
	}
	if l.Format != "text" && l.Format != "json" {
		errs = append(errs, fmt.Errorf("log.format %q: want text or json", l.Format))
	}
	return errs
}

// checkHostPort accepts what net.Listen("tcp", addr) accepts with a numeric port; an empty host
// means every interface. Port 0 (any free port) is allowed for tests.
func checkHostPort(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port: %w", addr, err)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("%q: port %q is not a number from 0 to 65535", addr, port)
	}
	return nil
}

func checkBaseURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an http:// or https:// URL", s)
	}
	return nil
}
