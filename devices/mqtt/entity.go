package mqtt

import (
	"time"

	"github.com/hearth-home/hearth/devices"
)

// publish is one MQTT message a command sends.
type publish struct {
	topic   string
	payload []byte
	retain  bool
}

// entity is one Hearth device backed by MQTT topics: an HA-discovered component or one expose
// of a Zigbee2MQTT device. Entities are not safe for concurrent use; the registry serialises
// every call under its lock.
type entity interface {
	device() devices.Device
	// topics lists every topic whose messages the entity reads (state and availability).
	topics() []string
	// handle applies one message on one of its topics to st and reports whether st changed.
	handle(topic string, payload []byte, st *devices.State) bool
	// available says whether the device itself is reachable, from what it last published.
	available() bool
	// command turns c into the messages to publish, in order.
	command(c devices.Command) ([]publish, error)
	// optimistic entities have no state topic: a command's effect is assumed once the broker
	// acknowledged it, as Home Assistant does.
	optimistic() bool
}

// offDelayer is an entity (HA binary_sensor with off_delay) whose detection resets itself.
type offDelayer interface {
	offDelay() time.Duration
}

// applyCommand is the optimistic effect of c on st.
func applyCommand(st *devices.State, c devices.Command) {
	if c.Brightness != nil {
		b := *c.Brightness
		on := b > 0
		st.On = &on
		if on {
			st.Brightness = &b
		}
	}
	if c.On != nil {
		on := *c.On
		st.On = &on
	}
	if c.ColorTemp != nil {
		k := *c.ColorTemp
		st.ColorTemp = &k
	}
	if c.Color != nil {
		col := *c.Color
		st.Color = &col
	}
}

// wantsOn reports whether c turns the device on (explicitly or by setting a style), wantsOff
// whether it turns it off (explicitly or with brightness 0).
func wantsOn(c devices.Command) bool {
	if c.On != nil {
		return *c.On && !(c.Brightness != nil && *c.Brightness == 0)
	}
	if c.Brightness != nil {
		return *c.Brightness > 0
	}
	return c.ColorTemp != nil || c.Color != nil
}

func wantsOff(c devices.Command) bool {
	return c.On != nil && !*c.On || c.Brightness != nil && *c.Brightness == 0
}
