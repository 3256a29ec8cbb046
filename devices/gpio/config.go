package gpio

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"periph.io/x/conn/v3/gpio"
)

// Config lists the pins the adapter manages.
type Config struct {
	Switches []SwitchConfig `json:"switches,omitempty" yaml:"switches,omitempty"`
	Sensors  []SensorConfig `json:"sensors,omitempty" yaml:"sensors,omitempty"`
}

// SwitchConfig is an output pin.
type SwitchConfig struct {
	// Pin is the pin's name as periph knows it: "GPIO17", or a header position "P1_11".
	Pin string `json:"pin" yaml:"pin"`
	// ID is the device's local ID ("gpio:<id>"); default the pin name in lower case.
	ID   string `json:"id,omitempty" yaml:"id,omitempty"`
	Name string `json:"name,omitempty" yaml:"name,omitempty"`
	Area string `json:"area,omitempty" yaml:"area,omitempty"`
	// ActiveLow means the device is on when the pin is low (most relay boards).
	ActiveLow bool `json:"active_low,omitempty" yaml:"active_low,omitempty"`
}

// SensorConfig is an input pin reported as a binary sensor.
type SensorConfig struct {
	Pin  string `json:"pin" yaml:"pin"`
	ID   string `json:"id,omitempty" yaml:"id,omitempty"`
	Name string `json:"name,omitempty" yaml:"name,omitempty"`
	Area string `json:"area,omitempty" yaml:"area,omitempty"`
	// DeviceClass is what is detected: "motion", "door", "window", "leak" ...
	DeviceClass string `json:"device_class,omitempty" yaml:"device_class,omitempty"`
	// Pull is the internal resistor: "up", "down" or "none" (default).
	Pull string `json:"pull,omitempty" yaml:"pull,omitempty"`
	// Debounce is how long the pin must be quiet after an edge before it counts (default 50ms).
	Debounce time.Duration `json:"debounce,omitempty" yaml:"debounce,omitempty"`
	// Edge selects the reported transitions: "both" (default), "rising" or "falling".
	Edge string `json:"edge,omitempty" yaml:"edge,omitempty"`
	// ActiveLow means detected when the pin is low (a contact to ground with a pull-up).
	ActiveLow bool `json:"active_low,omitempty" yaml:"active_low,omitempty"`
}

// DefaultDebounce suits mechanical contacts, whose bounce lasts a few milliseconds.
const DefaultDebounce = 50 * time.Millisecond

// ErrConfig marks configuration mistakes.
var ErrConfig = errors.New("gpio: bad configuration")

func parsePull(s string) (gpio.Pull, error) {
	switch strings.ToLower(s) {
	case "", "none", "float":
		return gpio.Float, nil
	case "up":
		return gpio.PullUp, nil
	case "down":
		return gpio.PullDown, nil
	}
	return gpio.PullNoChange, fmt.Errorf("%w: pull %q (want up, down or none)", ErrConfig, s)
}

// reportEdge says which settled transitions are reported.
type reportEdge int

const (
	edgeBoth reportEdge = iota
	edgeRising
	edgeFalling
)

func parseEdge(s string) (reportEdge, error) {
	switch strings.ToLower(s) {
	case "", "both":
		return edgeBoth, nil
	case "rising":
		return edgeRising, nil
	case "falling":
		return edgeFalling, nil
	}
	return edgeBoth, fmt.Errorf("%w: edge %q (want both, rising or falling)", ErrConfig, s)
}

// reports says whether a settled transition to level is reported under e.
func (e reportEdge) reports(level gpio.Level) bool {
	switch e {
	case edgeRising:
		return level == gpio.High
	case edgeFalling:
		return level == gpio.Low
	}
	return true
}

// localID is the configured ID or the pin name, lower case.
func localID(id, pin string) string {
	if id != "" {
		return id
	}
	return strings.ToLower(pin)
}
