package mqtt

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hearth-home/hearth/devices"
)

// haSwitch is an HA MQTT switch: state_on/state_off (defaulting to payload_on/off) on the state
// topic, payload_on/off to the command topic.
type haSwitch struct {
	haBase
	valueTpl, cmdTpl *Template
}

func newHASwitch(b haBase) (entity, error) {
	if b.cfg.CommandTopic == "" {
		return nil, errors.New("switch: command_topic is required")
	}
	s := &haSwitch{haBase: b}
	var err error
	if s.valueTpl, err = optionalTemplate("value_template", b.cfg.ValueTemplate); err != nil {
		return nil, err
	}
	if s.cmdTpl, err = optionalTemplate("command_template", b.cfg.CommandTemplate); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *haSwitch) topics() []string { return append(s.avail.topics(), s.cfg.StateTopic) }

func (s *haSwitch) optimistic() bool {
	return s.cfg.StateTopic == "" || s.cfg.Optimist != nil && *s.cfg.Optimist
}

func (s *haSwitch) handle(topic string, payload []byte, st *devices.State) bool {
	s.avail.handle(topic, payload)
	if topic != s.cfg.StateTopic {
		return false
	}
	v, err := renderValue(s.valueTpl, payload)
	if err != nil {
		return false
	}
	on := s.cfg.PayloadOn.or("ON")
	off := s.cfg.PayloadOff.or("OFF")
	switch strings.TrimSpace(v) {
	case s.cfg.StateOn.or(on):
		return setBool(&st.On, true)
	case s.cfg.StateOff.or(off):
		return setBool(&st.On, false)
	}
	return false
}

func (s *haSwitch) command(c devices.Command) ([]publish, error) {
	if c.ColorTemp != nil || c.Color != nil || c.Action != "" || c.Brightness != nil && *c.Brightness != 0 && *c.Brightness != 100 {
		return nil, errors.New("a switch only turns on and off")
	}
	var p string
	switch {
	case wantsOff(c):
		p = s.cfg.PayloadOff.or("OFF")
	case wantsOn(c):
		p = s.cfg.PayloadOn.or("ON")
	default:
		return nil, errors.New("empty command")
	}
	b, err := renderCommand(s.cmdTpl, p)
	if err != nil {
		return nil, err
	}
	return []publish{{topic: s.cfg.CommandTopic, payload: b, retain: s.cfg.Retain}}, nil
}

// haSensor is an HA MQTT sensor with a numeric state. Text states (enums, timestamps) are not
// modelled by devices.State and are skipped.
type haSensor struct {
	haBase
	valueTpl *Template
}

func newHASensor(b haBase) (entity, error) {
	if b.cfg.StateTopic == "" {
		return nil, errors.New("sensor: state_topic is required")
	}
	s := &haSensor{haBase: b}
	var err error
	if s.valueTpl, err = optionalTemplate("value_template", b.cfg.ValueTemplate); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *haSensor) topics() []string { return append(s.avail.topics(), s.cfg.StateTopic) }
func (s *haSensor) optimistic() bool { return false }

func (s *haSensor) handle(topic string, payload []byte, st *devices.State) bool {
	s.avail.handle(topic, payload)
	if topic != s.cfg.StateTopic {
		return false
	}
	f, ok := renderFloat(s.valueTpl, payload)
	if !ok {
		return false
	}
	return setFloat(&st.Value, f)
}

func (s *haSensor) command(devices.Command) ([]publish, error) {
	return nil, errors.New("a sensor cannot be commanded")
}

// haBinarySensor is an HA MQTT binary_sensor: payload_on/payload_off after value_template, and
// off_delay, after which an "on" turns itself off (motion sensors that only send "on").
type haBinarySensor struct {
	haBase
	valueTpl *Template
	delay    time.Duration
}

func newHABinarySensor(b haBase) (entity, error) {
	if b.cfg.StateTopic == "" {
		return nil, errors.New("binary_sensor: state_topic is required")
	}
	s := &haBinarySensor{haBase: b, delay: offDelayDuration(b.cfg.OffDelay)}
	var err error
	if s.valueTpl, err = optionalTemplate("value_template", b.cfg.ValueTemplate); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *haBinarySensor) topics() []string        { return append(s.avail.topics(), s.cfg.StateTopic) }
func (s *haBinarySensor) optimistic() bool        { return false }
func (s *haBinarySensor) offDelay() time.Duration { return s.delay }

func (s *haBinarySensor) handle(topic string, payload []byte, st *devices.State) bool {
	s.avail.handle(topic, payload)
	if topic != s.cfg.StateTopic {
		return false
	}
	v, err := renderValue(s.valueTpl, payload)
	if err != nil {
		return false
	}
	switch strings.TrimSpace(v) {
	case s.cfg.PayloadOn.or("ON"):
		return setBool(&st.Detected, true) || s.delay > 0 // a repeated "on" restarts off_delay
	case s.cfg.PayloadOff.or("OFF"):
		return setBool(&st.Detected, false)
	}
	return false
}

func (s *haBinarySensor) command(devices.Command) ([]publish, error) {
	return nil, fmt.Errorf("a binary sensor cannot be commanded")
}
