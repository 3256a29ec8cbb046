package mqtt

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/hearth-home/hearth/devices"
)

// z2mDevice is one entry of Zigbee2MQTT's retained <base>/bridge/devices list.
type z2mDevice struct {
	IEEE         string `json:"ieee_address"`
	Type         string `json:"type"`
	FriendlyName string `json:"friendly_name"`
	Description  string `json:"description"`
	Disabled     bool   `json:"disabled"`
	Definition   *struct {
		Model   string      `json:"model"`
		Vendor  string      `json:"vendor"`
		Exposes []z2mExpose `json:"exposes"`
	} `json:"definition"`
}

// z2mExpose is one "exposes" entry: a generic feature (binary, numeric, enum, ...) or a
// specific one (light, switch, ...) made of features.
type z2mExpose struct {
	Type     string      `json:"type"`
	Name     string      `json:"name"`
	Property string      `json:"property"`
	Endpoint string      `json:"endpoint"`
	Unit     string      `json:"unit"`
	Access   int         `json:"access"`
	ValueOn  any         `json:"value_on"`
	ValueOff any         `json:"value_off"`
	ValueMin *float64    `json:"value_min"`
	ValueMax *float64    `json:"value_max"`
	Features []z2mExpose `json:"features"`
}

// Zigbee2MQTT access bits.
const (
	z2mAccessState = 1 // published in the device's state message
	z2mAccessSet   = 2 // can be set through /set
)

// fromZigbee2MQTT reports whether an HA discovery payload was published by Zigbee2MQTT's own
// Home Assistant integration (origin name "Zigbee2MQTT").
func fromZigbee2MQTT(payload []byte) bool {
	var p struct {
		O      struct{ Name string } `json:"o"`
		Origin struct{ Name string } `json:"origin"`
	}
	if json.Unmarshal(payload, &p) != nil {
		return false
	}
	return strings.EqualFold(p.O.Name, "zigbee2mqtt") || strings.EqualFold(p.Origin.Name, "zigbee2mqtt")
}

// onZ2MDevices applies a new device list: devices keep their entities (IDs come from the IEEE
// address, so a rename keeps them), new ones are added, missing ones removed.
func (s *session) onZ2MDevices(payload []byte) {
	var list []z2mDevice
	if len(payload) > 0 {
		if err := json.Unmarshal(payload, &list); err != nil {
			s.a.log.Warn("mqtt: zigbee2mqtt device list is not valid JSON", "err", err)
			return
		}
	}
	present := make(map[string]bool, len(list))
	for _, d := range list {
		if d.Type == "Coordinator" || d.Definition == nil || d.Disabled || d.IEEE == "" || d.FriendlyName == "" {
			continue
		}
		owner := "z2m:" + d.IEEE
		present[owner] = true
		s.reg.put(owner, s.a.z2mEntities(d))
	}
	for owner := range s.reg.owners("z2m:") {
		if !present[owner] {
			s.reg.removeOwner(owner)
		}
	}
}

// z2mEntities maps a device's exposes to entities: each light or switch (per endpoint), each
// read-only binary feature (occupancy, contact, water_leak ...) and each read-only numeric
// feature (temperature, humidity, battery ...) except link quality.
func (a *Adapter) z2mEntities(d z2mDevice) []entity {
	base := a.cfg.Z2MBaseTopic
	idBase := a.cfg.Name + ":z2m/" + d.IEEE
	model := strings.TrimSpace(d.Definition.Vendor + " " + d.Definition.Model)
	area := z2mArea(d.Description)
	common := func(suffix, name string, kind devices.Kind) *z2mEntity {
		id := idBase
		if suffix != "" {
			id += "/" + suffix
		}
		return &z2mEntity{
			dev: devices.Device{
				ID: id, Name: name, Kind: kind, Adapter: a.cfg.Name, Area: area, Model: model,
			},
			stateTopic:  base + "/" + d.FriendlyName,
			availTopic:  base + "/" + d.FriendlyName + "/availability",
			bridgeTopic: base + "/bridge/state",
			setTopic:    base + "/" + d.FriendlyName + "/set",
			bridgeUp:    true,
		}
	}
	var out []entity
	bare := false // the first light/switch without an endpoint gets the bare IEEE ID
	for i, e := range d.Definition.Exposes {
		switch e.Type {
		case "light", "switch":
			suffix := e.Endpoint
			if suffix == "" && bare {
				suffix = fmt.Sprintf("%s%d", e.Type, i)
			}
			bare = bare || suffix == ""
			name := d.FriendlyName
			if e.Endpoint != "" {
				name += " " + e.Endpoint
			}
			kind := devices.Light
			if e.Type == "switch" {
				kind = devices.Switch
			}
			en := common(suffix, name, kind)
			en.valueOn, en.valueOff, en.briMax = "ON", "OFF", 254
			for _, f := range e.Features {
				switch f.Name {
				case "state":
					en.stateProp = f.Property
					if f.ValueOn != nil {
						en.valueOn, en.valueOff = f.ValueOn, f.ValueOff
					}
				case "brightness":
					en.briProp = f.Property
					if f.ValueMax != nil && *f.ValueMax > 0 {
						en.briMax = *f.ValueMax
					}
				case "color_temp":
					en.ctProp = f.Property
					if f.ValueMin != nil {
						en.ctMin = *f.ValueMin
					}
					if f.ValueMax != nil {
						en.ctMax = *f.ValueMax
					}
				case "color_xy": // preferred over hs when a light offers both
					en.colorProp, en.colorHS, en.hasXY = f.Property, false, true
				case "color_hs":
					if !en.hasXY {
						en.colorProp, en.colorHS = f.Property, true
					}
				}
			}
			if en.stateProp == "" {
				continue
			}
			en.dev.Caps = devices.Caps{
				Brightness: kind == devices.Light && en.briProp != "",
				ColorTemp:  kind == devices.Light && en.ctProp != "",
				Color:      kind == devices.Light && en.colorProp != "",
			}
			out = append(out, en)
		case "binary":
			if e.Access&z2mAccessSet != 0 || e.Access&z2mAccessState == 0 || e.Property == "" {
				continue // settable binaries are configuration (LED indicator ...), not sensors
			}
			en := common(e.Property, d.FriendlyName+" "+strings.ReplaceAll(e.Name, "_", " "), devices.BinarySensor)
			en.prop, en.valueOn, en.valueOff = e.Property, e.ValueOn, e.ValueOff
			en.dev.DeviceClass, en.invert = z2mBinaryClass(e.Name)
			out = append(out, en)
		case "numeric":
			if e.Access&z2mAccessSet != 0 || e.Access&z2mAccessState == 0 || e.Property == "" || e.Name == "linkquality" {
				continue
			}
			en := common(e.Property, d.FriendlyName+" "+strings.ReplaceAll(e.Name, "_", " "), devices.Sensor)
			en.prop = e.Property
			en.dev.Unit = e.Unit
			en.dev.DeviceClass = z2mNumericClass(e.Name)
			out = append(out, en)
		}
	}
	return out
}

// z2mBinaryClass maps a Z2M binary feature to an HA-style device class; invert is true when
// the feature's "on" value means the safe state (contact=true is a closed door).
func z2mBinaryClass(name string) (class string, invert bool) {
	switch name {
	case "occupancy":
		return "motion", false
	case "presence":
		return "occupancy", false
	case "contact":
		return "door", true
	case "water_leak":
		return "moisture", false
	case "battery_low":
		return "battery", false
	case "smoke", "gas", "carbon_monoxide", "vibration", "tamper":
		return name, false
	}
	return "", false
}

func z2mNumericClass(name string) string {
	switch name {
	case "illuminance", "illuminance_lux":
		return "illuminance"
	case "co2":
		return "carbon_dioxide"
	case "pm25":
		return "pm25"
	case "voc":
		return "volatile_organic_compounds"
	case "temperature", "humidity", "pressure", "battery", "power", "energy", "voltage", "current":
		return name
	}
	return ""
}

// z2mArea reads an area from the device description set in Zigbee2MQTT's UI: a line
// "area: Kitchen" (or "room: Kitchen", "area=Kitchen"). Zigbee2MQTT has no area field itself.
func z2mArea(desc string) string {
	for _, line := range strings.Split(desc, "\n") {
		line = strings.TrimSpace(line)
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			k, v, ok = strings.Cut(line, "=")
		}
		if !ok {
			continue
		}
		switch strings.ToLower(strings.TrimSpace(k)) {
		case "area", "room":
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// z2mEntity is one Hearth device from a Zigbee2MQTT device.
type z2mEntity struct {
	dev                                           devices.Device
	stateTopic, availTopic, bridgeTopic, setTopic string

	stateProp, briProp, ctProp, colorProp string
	valueOn, valueOff                     any
	briMax, ctMin, ctMax                  float64
	colorHS, hasXY                        bool

	prop   string // sensors
	invert bool

	online   *bool // nil until the availability topic said something
	bridgeUp bool
}

func (e *z2mEntity) device() devices.Device { return e.dev }
func (e *z2mEntity) optimistic() bool       { return false }

func (e *z2mEntity) topics() []string {
	return []string{e.stateTopic, e.availTopic, e.bridgeTopic}
}

// available follows the device's availability topic when Zigbee2MQTT publishes one (its
// availability feature may be off) and the bridge's own state.
func (e *z2mEntity) available() bool {
	return e.bridgeUp && (e.online == nil || *e.online)
}

// parseOnline reads "online"/"offline" or {"state":"online"}, both of which Zigbee2MQTT has
// used for availability and bridge state.
func parseOnline(payload []byte) (bool, bool) {
	s := strings.TrimSpace(string(payload))
	if strings.HasPrefix(s, "{") {
		var v struct{ State string }
		if json.Unmarshal(payload, &v) != nil {
			return false, false
		}
		s = v.State
	}
	switch s {
	case "online":
		return true, true
	case "offline":
		return false, true
	}
	return false, false
}

func (e *z2mEntity) handle(topic string, payload []byte, st *devices.State) bool {
	switch topic {
	case e.availTopic:
		if up, ok := parseOnline(payload); ok {
			e.online = &up
		}
		return false
	case e.bridgeTopic:
		if up, ok := parseOnline(payload); ok {
			e.bridgeUp = up
		}
		return false
	case e.stateTopic:
	default:
		return false
	}
	v, err := decodeJSON(payload)
	if err != nil {
		return false
	}
	m, ok := v.(map[string]any)
	if !ok {
		return false
	}
	changed := false
	switch e.dev.Kind {
	case devices.Light, devices.Switch:
		if sv, ok := m[e.stateProp]; ok {
			switch {
			case equal(sv, e.valueOn):
				changed = setBool(&st.On, true) || changed
			case equal(sv, e.valueOff):
				changed = setBool(&st.On, false) || changed
			}
		}
		if f, ok := toFloat(m[e.briProp]); ok && e.briProp != "" {
			changed = setInt(&st.Brightness, scaleToPercent(f, e.briMax)) || changed
		}
		if f, ok := toFloat(m[e.ctProp]); ok && e.ctProp != "" && f > 0 {
			changed = setInt(&st.ColorTemp, miredsToKelvin(f)) || changed
		}
		if col, ok := m[e.colorProp].(map[string]any); ok && e.colorProp != "" {
			if rgb, ok := colorFromJSON(col); ok {
				changed = setColor(&st.Color, rgb) || changed
			}
		}
	case devices.BinarySensor:
		if sv, ok := m[e.prop]; ok {
			on := equal(sv, e.valueOn)
			if !on && !equal(sv, e.valueOff) {
				return false
			}
			changed = setBool(&st.Detected, on != e.invert)
		}
	case devices.Sensor:
		if f, ok := toFloat(m[e.prop]); ok {
			changed = setFloat(&st.Value, f)
		}
	}
	return changed
}

func (e *z2mEntity) command(c devices.Command) ([]publish, error) {
	switch e.dev.Kind {
	case devices.Light, devices.Switch:
	default:
		return nil, fmt.Errorf("a %s cannot be commanded", e.dev.Kind)
	}
	if c.Action != "" {
		return nil, fmt.Errorf("a %s has no action %q", e.dev.Kind, c.Action)
	}
	caps := e.dev.Caps
	switch {
	case c.Brightness != nil && (*c.Brightness < 0 || *c.Brightness > 100):
		return nil, fmt.Errorf("brightness %d%% is outside 0-100", *c.Brightness)
	case c.Brightness != nil && !caps.Brightness && *c.Brightness != 0 && *c.Brightness != 100:
		return nil, errors.New("this device has no brightness control")
	case c.ColorTemp != nil && (!caps.ColorTemp || *c.ColorTemp <= 0):
		return nil, errors.New("this device has no colour temperature control")
	case c.Color != nil && !caps.Color:
		return nil, errors.New("this device has no colour control")
	}
	var doc []kv
	switch {
	case wantsOff(c):
		doc = []kv{{e.stateProp, e.valueOff}}
	case wantsOn(c):
		doc = []kv{{e.stateProp, e.valueOn}}
		if c.Brightness != nil && caps.Brightness {
			doc = append(doc, kv{e.briProp, percentToScale(*c.Brightness, e.briMax)})
		}
		if c.ColorTemp != nil {
			m := float64(kelvinToMireds(*c.ColorTemp))
			if e.ctMin > 0 {
				m = math.Max(m, e.ctMin)
			}
			if e.ctMax > 0 {
				m = math.Min(m, e.ctMax)
			}
			doc = append(doc, kv{e.ctProp, int(m)})
		}
		if col := c.Color; col != nil {
			if e.colorHS {
				h, s := rgbToHS(*col)
				doc = append(doc, kv{e.colorProp, []kv{{"hue", h}, {"saturation", s}}})
			} else {
				x, y := rgbToXY(*col)
				doc = append(doc, kv{e.colorProp, []kv{{"x", x}, {"y", y}}})
			}
		}
	default:
		return nil, errors.New("empty command")
	}
	return []publish{{topic: e.setTopic, payload: orderedJSON(doc)}}, nil
}
