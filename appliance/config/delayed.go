package config

import (
	"fmt"
	"time"
)

// DelayedEvents configures delayed events (matrix/delayed, MSC4140): events a client asks the
// server to send later, as MatrixRTC does to end a call membership when a client vanishes.
type DelayedEvents struct {
	// Enabled serves the org.matrix.msc4140 endpoints and the delay parameter of /send and
	// /state. On by default: Element Call needs it.
	Enabled bool `yaml:"enabled"`
	// MaxDelay is the longest delay a client may ask for (Synapse's max_event_delay_duration).
	MaxDelay time.Duration `yaml:"max_delay"`
	// MaxPerUser is how many delayed events one user may have scheduled at once.
	MaxPerUser int `yaml:"max_per_user"`
}

// DefaultDelayedEvents is the delayed_events section of Default: on, at most 24 hours (the
// value Element's deployments use), 100 per user.
func DefaultDelayedEvents() DelayedEvents {
	return DelayedEvents{Enabled: true, MaxDelay: 24 * time.Hour, MaxPerUser: 100}
}

// problems reports delayed events settings that cannot work.
func (d DelayedEvents) problems() []error {
	if !d.Enabled {
		return nil
	}
	var errs []error
	if d.MaxDelay < time.Millisecond {
		errs = append(errs, fmt.Errorf("delayed_events.max_delay must be at least 1ms, got %s", d.MaxDelay))
	}
	if d.MaxPerUser < 1 {
		errs = append(errs, fmt.Errorf("delayed_events.max_per_user must be at least 1, got %d", d.MaxPerUser))
	}
	return errs
}
