package mqtt

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"
)

// Config configures the adapter. The zero value (plus Users for devices to log in with) runs
// the embedded broker on :1883 with HA discovery under "homeassistant" and Zigbee2MQTT under
// "zigbee2mqtt".
type Config struct {
	// Name prefixes device IDs ("mqtt:ha/..."); default "mqtt". Two adapters (two brokers)
	// need two names.
	Name string

	// BrokerURL selects an external broker (tcp://, ssl://, ws://, wss://). Empty runs the
	// embedded broker.
	BrokerURL string
	Username  string
	Password  string
	// CAFile is a PEM bundle trusted for ssl:// and wss:// instead of the system roots.
	CAFile string

	// Listen is the embedded broker's address; default ":1883".
	Listen string
	// RetainedFile keeps the embedded broker's retained discovery configs and Zigbee2MQTT
	// bridge topics across restarts (a path in the data directory); empty keeps them in memory.
	RetainedFile string
	// Users may log in to the embedded broker (devices, Zigbee2MQTT). The adapter's own client
	// uses an internal user generated at every start.
	Users []User

	// DiscoveryPrefix is HA's discovery prefix; default "homeassistant". DisableDiscovery
	// turns HA discovery off.
	DiscoveryPrefix  string
	DisableDiscovery bool
	// Z2MBaseTopic is Zigbee2MQTT's base topic; default "zigbee2mqtt". DisableZ2M turns it off.
	Z2MBaseTopic string
	DisableZ2M   bool

	// ClientID is the adapter's MQTT client ID; default "hearth-<random>".
	ClientID string
	// MaxReconnectInterval caps the reconnect backoff; default 30s.
	MaxReconnectInterval time.Duration

	Logger *slog.Logger
}

// User is one embedded-broker login.
type User struct {
	Username string `json:"username" yaml:"username"`
	Password string `json:"password" yaml:"password"`
}

// withDefaults validates c and fills in defaults.
func (c Config) withDefaults() (Config, error) {
	if c.Name == "" {
		c.Name = "mqtt"
	}
	if strings.ContainsAny(c.Name, ":/ ") {
		return c, fmt.Errorf("mqtt: adapter name %q must not contain ':', '/' or spaces", c.Name)
	}
	if c.BrokerURL != "" {
		u, err := url.Parse(c.BrokerURL)
		if err != nil {
			return c, fmt.Errorf("mqtt: broker URL: %w", err)
		}
		switch u.Scheme {
		case "tcp", "mqtt", "ssl", "tls", "mqtts", "ws", "wss":
		default:
			return c, fmt.Errorf("mqtt: broker URL scheme %q is not tcp, ssl, ws or wss", u.Scheme)
		}
		if u.Host == "" {
			return c, fmt.Errorf("mqtt: broker URL %q has no host", c.BrokerURL)
		}
	} else if c.Listen == "" {
		c.Listen = ":1883"
	}
	seen := make(map[string]bool)
	for _, u := range c.Users {
		if u.Username == "" || u.Password == "" {
			return c, errors.New("mqtt: every broker user needs a username and a password")
		}
		if seen[u.Username] {
			return c, fmt.Errorf("mqtt: broker user %q listed twice", u.Username)
		}
		seen[u.Username] = true
	}
	if c.DiscoveryPrefix == "" {
		c.DiscoveryPrefix = "homeassistant"
	}
	if c.Z2MBaseTopic == "" {
		c.Z2MBaseTopic = "zigbee2mqtt"
	}
	for _, t := range []string{c.DiscoveryPrefix, c.Z2MBaseTopic} {
		if strings.ContainsAny(t, "+#") || strings.HasSuffix(t, "/") {
			return c, fmt.Errorf("mqtt: topic prefix %q must not contain wildcards or end in '/'", t)
		}
	}
	if c.MaxReconnectInterval <= 0 {
		c.MaxReconnectInterval = 30 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c, nil
}
