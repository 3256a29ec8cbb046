package devices

import (
	"context"
	"time"
)

// Kind is what a device is, which decides what state it has and what it accepts.
type Kind string

// The kinds Hearth models.
const (
	Light        Kind = "light"         // on/off, brightness, colour temperature, colour
	Switch       Kind = "switch"        // on/off
	Sensor       Kind = "sensor"        // numeric value with unit and device class
	BinarySensor Kind = "binary_sensor" // detected or not (motion, door, leak ...)
	Drone        Kind = "drone"         // actions (takeoff, land, moves) and telemetry readings
)

// Device is the static description of one device. ID is stable across restarts and unique
// across adapters: "<adapter>:<adapter's own id>", e.g. "z2m:kitchen_light" or "hue:3f2a...".
type Device struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Kind        Kind   `json:"kind"`
	Adapter     string `json:"adapter"`                // "mqtt", "z2m", "hue", "gpio", "tello"
	Area        string `json:"area,omitempty"`         // room/area from HA, Zigbee2MQTT or Hue; "" = unassigned
	Model       string `json:"model,omitempty"`        // manufacturer model, informational
	Unit        string `json:"unit,omitempty"`         // sensors: "°C", "%", "lx" ...
	DeviceClass string `json:"device_class,omitempty"` // sensors/binary sensors: "temperature", "motion", "door" ...
	Caps        Caps   `json:"caps"`
}

// Caps says which optional features a light supports.
type Caps struct {
	Brightness bool `json:"brightness,omitempty"`
	ColorTemp  bool `json:"color_temp,omitempty"`
	Color      bool `json:"color,omitempty"`
}

// Color is an sRGB colour.
type Color struct {
	R uint8 `json:"r"`
	G uint8 `json:"g"`
	B uint8 `json:"b"`
}

// State is what a device last reported. Pointer fields are nil when the device does not report
// them; an adapter fills only what it knows.
type State struct {
	Available  bool               `json:"available"`
	LastSeen   time.Time          `json:"last_seen"`
	On         *bool              `json:"on,omitempty"`
	Brightness *int               `json:"brightness,omitempty"`   // percent, 0-100
	ColorTemp  *int               `json:"color_temp_k,omitempty"` // kelvin
	Color      *Color             `json:"color,omitempty"`
	Value      *float64           `json:"value,omitempty"`    // sensors
	Detected   *bool              `json:"detected,omitempty"` // binary sensors
	Readings   map[string]float64 `json:"readings,omitempty"` // extra telemetry (drone battery, height ...)
}

// Command asks a device to change. Fields left nil are not touched. Action carries verbs that
// are not state (drones: "takeoff", "land", "emergency", "up", "cw" ...) with Amount as the
// argument (centimetres or degrees).
type Command struct {
	On         *bool  `json:"on,omitempty"`
	Brightness *int   `json:"brightness,omitempty"`   // percent, 0-100
	ColorTemp  *int   `json:"color_temp_k,omitempty"` // kelvin
	Color      *Color `json:"color,omitempty"`
	Action     string `json:"action,omitempty"`
	Amount     int    `json:"amount,omitempty"`
}

// Sink receives what an adapter learns. Implementations must be safe for concurrent use and
// must not block for long: adapters call them from their network goroutines.
type Sink interface {
	// Upsert announces a device or a change to its description.
	Upsert(d Device)
	// Remove announces that a device is gone (unpaired, removed from discovery).
	Remove(id string)
	// Report merges a state report into the device's state.
	Report(id string, s State)
}

// Adapter is one source of devices: an MQTT connection, a Hue bridge, the GPIO pins, a drone.
type Adapter interface {
	// Name is the adapter's prefix in device IDs.
	Name() string
	// Run connects, discovers and reports into sink until ctx ends. It returns a non-nil error
	// only when it cannot start at all; transient failures are retried inside.
	Run(ctx context.Context, sink Sink) error
	// Command sends a command to one of this adapter's devices and returns once the device or
	// its broker has accepted it (for MQTT: the QoS 1 publish was acknowledged).
	Command(ctx context.Context, id string, c Command) error
}
