package mqtt

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/hearth-home/hearth/devices"
)

// haConfig is an expanded Home Assistant discovery config, the options Hearth acts on. Unknown
// options are ignored, as HA ignores options a platform does not use.
type haConfig struct {
	Platform string          `json:"platform"`
	Name     json.RawMessage `json:"name"`
	UniqueID lstr            `json:"unique_id"`
	Device   haDevice        `json:"device"`
	Schema   string          `json:"schema"`
	Retain   bool            `json:"retain"`
	Optimist *bool           `json:"optimistic"`

	StateTopic         string `json:"state_topic"`
	CommandTopic       string `json:"command_topic"`
	ValueTemplate      string `json:"value_template"`
	StateValueTemplate string `json:"state_value_template"`
	CommandTemplate    string `json:"command_template"`
	PayloadOn          lstr   `json:"payload_on"`
	PayloadOff         lstr   `json:"payload_off"`
	StateOn            lstr   `json:"state_on"`
	StateOff           lstr   `json:"state_off"`
	OnCommandType      string `json:"on_command_type"`

	Brightness                bool    `json:"brightness"`
	BrightnessScale           float64 `json:"brightness_scale"`
	BrightnessStateTopic      string  `json:"brightness_state_topic"`
	BrightnessCommandTopic    string  `json:"brightness_command_topic"`
	BrightnessValueTemplate   string  `json:"brightness_value_template"`
	BrightnessCommandTemplate string  `json:"brightness_command_template"`

	ColorTempKelvin          bool   `json:"color_temp_kelvin"`
	ColorTempStateTopic      string `json:"color_temp_state_topic"`
	ColorTempCommandTopic    string `json:"color_temp_command_topic"`
	ColorTempValueTemplate   string `json:"color_temp_value_template"`
	ColorTempCommandTemplate string `json:"color_temp_command_template"`

	RGBStateTopic    string `json:"rgb_state_topic"`
	RGBCommandTopic  string `json:"rgb_command_topic"`
	RGBValueTemplate string `json:"rgb_value_template"`
	HSStateTopic     string `json:"hs_state_topic"`
	HSCommandTopic   string `json:"hs_command_topic"`
	HSValueTemplate  string `json:"hs_value_template"`
	XYStateTopic     string `json:"xy_state_topic"`
	XYCommandTopic   string `json:"xy_command_topic"`
	XYValueTemplate  string `json:"xy_value_template"`

	SupportedColorModes []string `json:"supported_color_modes"`

	UnitOfMeasurement string   `json:"unit_of_measurement"`
	DeviceClass       string   `json:"device_class"`
	OffDelay          *float64 `json:"off_delay"`

	AvailabilityTopic    string           `json:"availability_topic"`
	AvailabilityTemplate string           `json:"availability_template"`
	PayloadAvailable     lstr             `json:"payload_available"`
	PayloadNotAvailable  lstr             `json:"payload_not_available"`
	Availability         []haAvailability `json:"availability"`
	AvailabilityMode     string           `json:"availability_mode"`
}

type haDevice struct {
	Name          string `json:"name"`
	Manufacturer  string `json:"manufacturer"`
	Model         string `json:"model"`
	SuggestedArea string `json:"suggested_area"`
}

type haAvailability struct {
	Topic               string `json:"topic"`
	PayloadAvailable    lstr   `json:"payload_available"`
	PayloadNotAvailable lstr   `json:"payload_not_available"`
	ValueTemplate       string `json:"value_template"`
}

// sharedOption reports whether a root option of a device-based config is inherited by every
// component that does not set it itself (HA docs: availability, origin, command_topic,
// state_topic, qos, encoding); "~" is shared too so that components can use the base topic.
func sharedOption(k string) bool {
	switch k {
	case "availability", "availability_topic", "availability_template", "availability_mode",
		"payload_available", "payload_not_available", "command_topic", "state_topic", "qos",
		"encoding", "~":
		return true
	}
	return false
}

// haKind maps the HA components Hearth models to device kinds.
func haKind(platform string) (devices.Kind, bool) {
	switch platform {
	case "light":
		return devices.Light, true
	case "switch":
		return devices.Switch, true
	case "sensor":
		return devices.Sensor, true
	case "binary_sensor":
		return devices.BinarySensor, true
	}
	return "", false
}

// errUnsupported marks a config Hearth deliberately skips (another platform, a template-schema
// light); it is logged at debug level, not as a warning.
var errUnsupported = errors.New("unsupported")

// parseDiscovery turns one discovery message into entities. topic is the full discovery topic,
// rel the part after the prefix ("light/node/obj/config"). An empty entity list with no error
// means the config removes everything under this topic.
func (a *Adapter) parseDiscovery(rel string, payload []byte) ([]entity, error) {
	parts := strings.Split(strings.TrimSuffix(rel, "/config"), "/")
	if len(parts) < 2 || len(parts) > 3 {
		return nil, fmt.Errorf("discovery topic %q is not <component>/[<node_id>/]<object_id>/config", rel)
	}
	component := parts[0]
	path := strings.Join(parts, "/")
	var raw map[string]any
	if err := json.Unmarshal(payload, &raw); err != nil {
		return nil, fmt.Errorf("discovery payload on %q is not a JSON object: %w", rel, err)
	}
	cfg := a.abbr.expand(raw)

	if component != "device" {
		e, err := a.haEntity(component, path, cfg)
		if err != nil {
			return nil, err
		}
		return []entity{e}, nil
	}

	cmps, ok := cfg["components"].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("device discovery %q has no components (cmps) object", rel)
	}
	var ents []entity
	var errs []error
	for _, cid := range sortedKeys(cmps) {
		c, ok := cmps[cid].(map[string]any)
		if !ok {
			errs = append(errs, fmt.Errorf("component %q is not an object", cid))
			continue
		}
		if len(c) == 1 && c["platform"] != nil {
			continue // only "p": HA's way to remove one component from the device
		}
		merged := make(map[string]any, len(c)+4)
		for k, v := range cfg {
			if sharedOption(k) {
				merged[k] = v
			}
		}
		maps.Copy(merged, c)
		merged["device"] = cfg["device"] // device and origin cannot be overridden per component
		merged["origin"] = cfg["origin"]
		platform, _ := c["platform"].(string)
		if platform == "" {
			errs = append(errs, fmt.Errorf("component %q has no platform (p)", cid))
			continue
		}
		e, err := a.haEntity(platform, path+"/"+cid, merged)
		if err != nil {
			if !errors.Is(err, errUnsupported) {
				errs = append(errs, fmt.Errorf("component %q: %w", cid, err))
			}
			continue
		}
		ents = append(ents, e)
	}
	return ents, errors.Join(errs...)
}

// haEntity builds one entity from an expanded config.
func (a *Adapter) haEntity(platform, path string, cfg map[string]any) (entity, error) {
	kind, ok := haKind(platform)
	if !ok {
		return nil, fmt.Errorf("%w: component %q", errUnsupported, platform)
	}
	expandBase(cfg)
	b, err := json.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("re-encode config: %w", err)
	}
	var c haConfig
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("%s config: %w", platform, err)
	}
	base := haBase{cfg: &c, kind: kind}
	base.dev = devices.Device{
		ID:          a.cfg.Name + ":ha/" + haObjectID(c.UniqueID, platform, path),
		Name:        haName(c, path),
		Kind:        kind,
		Adapter:     a.cfg.Name,
		Area:        c.Device.SuggestedArea,
		Model:       strings.TrimSpace(c.Device.Manufacturer + " " + c.Device.Model),
		Unit:        c.UnitOfMeasurement,
		DeviceClass: c.DeviceClass,
	}
	if base.avail, err = haAvailabilityFrom(c); err != nil {
		return nil, err
	}
	switch kind {
	case devices.Light:
		return newHALight(base)
	case devices.Switch:
		return newHASwitch(base)
	case devices.Sensor:
		return newHASensor(base)
	default:
		return newHABinarySensor(base)
	}
}

// haObjectID is the stable part of the device ID: the unique_id when given (HA requires it for
// anything a user can edit), else the discovery path.
func haObjectID(uid lstr, platform, path string) string {
	if uid.set && uid.s != "" {
		return uid.s
	}
	if strings.HasPrefix(path, platform+"/") {
		return path
	}
	return platform + "/" + path
}

// haName follows HA's naming: the entity name joined to the device name; a null or missing
// name means the entity is the device's main feature and takes the device name alone.
func haName(c haConfig, path string) string {
	var name string
	if len(c.Name) > 0 && string(c.Name) != "null" {
		if err := json.Unmarshal(c.Name, &name); err != nil {
			name = strings.Trim(string(c.Name), `"`)
		}
	}
	switch {
	case c.Device.Name != "" && name != "" && !strings.HasPrefix(name, c.Device.Name):
		return c.Device.Name + " " + name
	case name != "":
		return name
	case c.Device.Name != "":
		return c.Device.Name
	}
	parts := strings.Split(path, "/")
	return strings.ReplaceAll(parts[len(parts)-1], "_", " ")
}

func haAvailabilityFrom(c haConfig) (availability, error) {
	av := availability{mode: c.AvailabilityMode}
	switch av.mode {
	case "", "latest", "all", "any":
	default:
		return av, fmt.Errorf("availability_mode %q is not latest, all or any", av.mode)
	}
	add := func(topic string, on, off lstr, tpl string) error {
		s := availSource{topic: topic, on: on.or("online"), off: off.or("offline")}
		if tpl != "" {
			t, err := ParseTemplate(tpl)
			if err != nil {
				return fmt.Errorf("availability template: %w", err)
			}
			s.template = t
		}
		av.sources = append(av.sources, s)
		return nil
	}
	if c.AvailabilityTopic != "" {
		if err := add(c.AvailabilityTopic, c.PayloadAvailable, c.PayloadNotAvailable, c.AvailabilityTemplate); err != nil {
			return av, err
		}
	}
	for _, e := range c.Availability {
		if e.Topic == "" {
			return av, errors.New("availability entry without topic")
		}
		if err := add(e.Topic, e.PayloadAvailable, e.PayloadNotAvailable, e.ValueTemplate); err != nil {
			return av, err
		}
	}
	return av, nil
}

// haBase is what every HA entity shares.
type haBase struct {
	cfg   *haConfig
	kind  devices.Kind
	dev   devices.Device
	avail availability
}

func (b *haBase) device() devices.Device { return b.dev }
func (b *haBase) available() bool        { return b.avail.available() }

// optionalTemplate parses src, or returns nil for "".
func optionalTemplate(name, src string) (*Template, error) {
	if src == "" {
		return nil, nil
	}
	t, err := ParseTemplate(src)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return t, nil
}

// renderValue applies a state template to a payload; with no template the payload is used as is.
func renderValue(t *Template, payload []byte) (string, error) {
	if t == nil {
		return string(payload), nil
	}
	return t.Render(InputFromPayload(payload))
}

// renderCommand applies a command template to the value being sent.
func renderCommand(t *Template, v value) ([]byte, error) {
	if t == nil {
		return []byte(toText(v)), nil
	}
	out, err := t.Render(TemplateInput{Value: v, ValueJSON: undefined{name: "value_json"}})
	if err != nil {
		return nil, err
	}
	return []byte(out), nil
}

func offDelayDuration(v *float64) time.Duration {
	if v == nil || *v <= 0 {
		return 0
	}
	return time.Duration(*v * float64(time.Second))
}
