package config

import "time"

// Federation tunes talking to other servers.
type Federation struct {
	// TrustedKeyServers are notaries asked for a server's keys when it cannot be reached
	// directly. Default none: keys are fetched from each server itself.
	TrustedKeyServers []string `yaml:"trusted_key_servers,omitempty"`
	// RetryBase and RetryMax bound the exponential backoff of a destination that fails.
	RetryBase time.Duration `yaml:"retry_base"`
	RetryMax  time.Duration `yaml:"retry_max"`
	// WellKnownServer, when set, is served as /.well-known/matrix/server ("m.server"): the
	// host[:port] other servers reach this one at when the server name is only a domain
	// (delegation). Empty serves 404, which means "no delegation".
	WellKnownServer string `yaml:"well_known_server,omitempty"`
}
