package config

import (
	"fmt"
	"time"
)

// Devices configures the device bridge (devices/, docs/devices.md): the adapters that find
// devices and the Matrix side that puts them in rooms.
type Devices struct {
	// Enabled starts the bridge and its adapters.
	Enabled bool `yaml:"enabled"`
	// CommandPowerLevel is the power level a user needs in a room to command devices there.
	CommandPowerLevel int `yaml:"command_power_level"`
	// AllowRemote lets users of other homeservers command devices (subject to the power level).
	AllowRemote bool `yaml:"allow_remote"`
	// MinInterval is the shortest time between two posts about one device; MinDelta the
	// smallest change of a sensor number worth posting. Together they keep a chatty sensor
	// from flooding its room.
	MinInterval time.Duration `yaml:"min_interval"`
	MinDelta    float64       `yaml:"min_delta"`
	// StateInterval is how long a sensor's new number may wait before its org.hearth.device
	// state event takes it (the reading notice is not delayed); other changes are immediate.
	StateInterval time.Duration `yaml:"state_interval"`
	// Encryption gives the bridge bot a device so it can read and answer in encrypted rooms.
	Encryption bool `yaml:"encryption"`

	MQTT DevicesMQTT `yaml:"mqtt"`
	// Hue lists bridges paired by hand; `hearth devices pair-hue` stores pairings itself.
	Hue  []HueBridge `yaml:"hue,omitempty"`
	GPIO DevicesGPIO `yaml:"gpio"`
	// Drones lists drones (Ryze Tello) by address.
	Drones []Drone `yaml:"drones,omitempty"`
}

// DevicesMQTT configures the MQTT adapter: an embedded broker, an external one, or both off.
type DevicesMQTT struct {
	Enabled bool `yaml:"enabled"`
	// Listen is the embedded broker's address ("" = no embedded broker; connect to Broker).
	Listen string `yaml:"listen"`
	// Broker is an external broker URL (tcp://host:1883) used when Listen is empty.
	Broker   string `yaml:"broker"`
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// DiscoveryPrefix is Home Assistant's discovery prefix; Z2MBaseTopic Zigbee2MQTT's base topic.
	DiscoveryPrefix string `yaml:"discovery_prefix"`
	Z2MBaseTopic    string `yaml:"z2m_base_topic"`
}

// HueBridge is one paired Philips Hue bridge.
type HueBridge struct {
	Address     string `yaml:"address"`
	AppKey      string `yaml:"app_key"`
	Fingerprint string `yaml:"cert_sha256"`
}

// DevicesGPIO lists the board's pins used as switches and binary sensors.
type DevicesGPIO struct {
	Switches []GPIOPin `yaml:"switches,omitempty"`
	Sensors  []GPIOPin `yaml:"sensors,omitempty"`
}

// GPIOPin is one pin; DeviceClass, Pull, Debounce and Edge apply to sensors only.
type GPIOPin struct {
	Pin         string        `yaml:"pin"`
	ID          string        `yaml:"id"`
	Name        string        `yaml:"name"`
	Area        string        `yaml:"area"`
	ActiveLow   bool          `yaml:"active_low"`
	DeviceClass string        `yaml:"device_class"`
	Pull        string        `yaml:"pull"`
	Debounce    time.Duration `yaml:"debounce"`
	Edge        string        `yaml:"edge"`
}

// Drone is one drone on the LAN.
type Drone struct {
	Name    string `yaml:"name"`
	Address string `yaml:"address"`
	Area    string `yaml:"area"`
}

// DefaultDevices is the devices section of Default.
func DefaultDevices() Devices {
	return Devices{
		CommandPowerLevel: 50,
		MinInterval:       5 * time.Second,
		MinDelta:          0.5,
		StateInterval:     time.Minute,
		Encryption:        true,
		MQTT:              DevicesMQTT{DiscoveryPrefix: "homeassistant", Z2MBaseTopic: "zigbee2mqtt"},
	}
}

func (d Devices) problems() []error {
	var errs []error
	if d.CommandPowerLevel < 0 || d.CommandPowerLevel > 100 {
		errs = append(errs, fmt.Errorf("devices.command_power_level must be 0 to 100, got %d", d.CommandPowerLevel))
	}
	if d.MinInterval < 0 {
		errs = append(errs, fmt.Errorf("devices.min_interval must not be negative, got %s", d.MinInterval))
	}
	if d.StateInterval < 0 {
		errs = append(errs, fmt.Errorf("devices.state_interval must not be negative, got %s", d.StateInterval))
	}
	if d.MinDelta < 0 {
		errs = append(errs, fmt.Errorf("devices.min_delta must not be negative, got %v", d.MinDelta))
	}
	if d.MQTT.Enabled && d.MQTT.Listen == "" && d.MQTT.Broker == "" {
		errs = append(errs, fmt.Errorf("devices.mqtt: set listen (embedded broker) or broker (external)"))
	}
	if d.MQTT.Listen != "" {
		if err := checkHostPort(d.MQTT.Listen); err != nil {
			errs = append(errs, fmt.Errorf("devices.mqtt.listen: %w", err))
		}
	}
	for i, h := range d.Hue {
		if h.Address == "" || h.AppKey == "" || h.Fingerprint == "" {
			errs = append(errs, fmt.Errorf("devices.hue[%d]: address, app_key and cert_sha256 are required (hearth devices pair-hue writes them)", i))
		}
	}
	for i, p := range append(append([]GPIOPin{}, d.GPIO.Switches...), d.GPIO.Sensors...) {
		if p.Pin == "" {
			errs = append(errs, fmt.Errorf("devices.gpio pin %d: pin is required", i))
		}
	}
	for i, dr := range d.Drones {
		if dr.Address == "" {
			errs = append(errs, fmt.Errorf("devices.drones[%d]: address is required", i))
		}
	}
	return errs
}
