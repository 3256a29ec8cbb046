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
}
