package mqtt

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/hearth-home/hearth/devices"
)

// haLight is an HA MQTT light with the default schema (one topic per attribute) or the JSON
// schema (one JSON document each way). The template schema is not supported.
type haLight struct {
	haBase
	json  bool
	scale float64

	stateTpl, briTpl, ctTpl, rgbTpl, hsTpl, xyTpl *Template
	cmdTpl, briCmdTpl, ctCmdTpl                   *Template
	colorModes                                    []string // JSON schema supported_color_modes
}

func newHALight(b haBase) (entity, error) {
	c := b.cfg
	l := &haLight{haBase: b, scale: c.BrightnessScale}
	if l.scale <= 0 {
		l.scale = 255
	}
	if c.CommandTopic == "" {
		return nil, errors.New("light: command_topic is required")
	}
	switch c.Schema {
	case "", "default", "basic":
	case "json":
		l.json = true
	default:
		return nil, fmt.Errorf("%w: light schema %q", errUnsupported, c.Schema)
	}
	var err error
	for _, t := range []struct {
		dst  **Template
		name string
		src  string
	}{
		{&l.stateTpl, "state_value_template", c.StateValueTemplate},
		{&l.briTpl, "brightness_value_template", c.BrightnessValueTemplate},
		{&l.ctTpl, "color_temp_value_template", c.ColorTempValueTemplate},
		{&l.rgbTpl, "rgb_value_template", c.RGBValueTemplate},
		{&l.hsTpl, "hs_value_template", c.HSValueTemplate},
		{&l.xyTpl, "xy_value_template", c.XYValueTemplate},
		{&l.cmdTpl, "command_template", c.CommandTemplate},
		{&l.briCmdTpl, "brightness_command_template", c.BrightnessCommandTemplate},
		{&l.ctCmdTpl, "color_temp_command_template", c.ColorTempCommandTemplate},
	} {
		if *t.dst, err = optionalTemplate(t.name, t.src); err != nil {
			return nil, err
		}
	}
	if l.json {
		l.colorModes = c.SupportedColorModes
		hasMode := func(ms ...string) bool {
			return slices.ContainsFunc(l.colorModes, func(m string) bool { return slices.Contains(ms, m) })
		}
		l.dev.Caps = devices.Caps{
			Brightness: c.Brightness || hasMode("brightness", "color_temp", "hs", "xy", "rgb", "rgbw", "rgbww", "white"),
			ColorTemp:  hasMode("color_temp"),
			Color:      hasMode("hs", "xy", "rgb", "rgbw", "rgbww"),
		}
	} else {
		l.dev.Caps = devices.Caps{
			Brightness: c.BrightnessCommandTopic != "",
			ColorTemp:  c.ColorTempCommandTopic != "",
			Color:      c.RGBCommandTopic != "" || c.HSCommandTopic != "" || c.XYCommandTopic != "",
		}
	}
	switch c.OnCommandType {
	case "", "last", "first", "brightness":
	default:
		return nil, fmt.Errorf("light: on_command_type %q is not last, first or brightness", c.OnCommandType)
	}
	return l, nil
}

func (l *haLight) topics() []string {
	c := l.cfg
	return append(l.avail.topics(), c.StateTopic, c.BrightnessStateTopic, c.ColorTempStateTopic,
		c.RGBStateTopic, c.HSStateTopic, c.XYStateTopic)
}

func (l *haLight) optimistic() bool {
	return l.cfg.StateTopic == "" || l.cfg.Optimist != nil && *l.cfg.Optimist
}

func (l *haLight) handle(topic string, payload []byte, st *devices.State) bool {
	changed := false
	l.avail.handle(topic, payload)
	c := l.cfg
	if l.json {
		if topic == c.StateTopic {
			changed = l.handleJSON(payload, st)
		}
		return changed
	}
	if topic == c.StateTopic {
		if v, err := renderValue(l.stateTpl, payload); err == nil {
			switch strings.TrimSpace(v) {
			case c.PayloadOn.or("ON"):
				changed = setBool(&st.On, true) || changed
			case c.PayloadOff.or("OFF"):
				changed = setBool(&st.On, false) || changed
			}
		}
	}
	if topic == c.BrightnessStateTopic {
		if f, ok := renderFloat(l.briTpl, payload); ok {
			changed = setInt(&st.Brightness, scaleToPercent(f, l.scale)) || changed
		}
	}
	if topic == c.ColorTempStateTopic {
		if f, ok := renderFloat(l.ctTpl, payload); ok && f > 0 {
			k := int(math.Round(f))
			if !c.ColorTempKelvin {
				k = miredsToKelvin(f)
			}
			changed = setInt(&st.ColorTemp, k) || changed
		}
	}
	if topic == c.RGBStateTopic {
		if v, err := renderValue(l.rgbTpl, payload); err == nil {
			if f, ok := parseFloats(v, 3); ok {
				changed = setColor(&st.Color, devices.Color{R: to8(f[0] / 255), G: to8(f[1] / 255), B: to8(f[2] / 255)}) || changed
			}
		}
	}
	if topic == c.HSStateTopic {
		if v, err := renderValue(l.hsTpl, payload); err == nil {
			if f, ok := parseFloats(v, 2); ok {
				changed = setColor(&st.Color, hsToRGB(f[0], f[1])) || changed
			}
		}
	}
	if topic == c.XYStateTopic {
		if v, err := renderValue(l.xyTpl, payload); err == nil {
			if f, ok := parseFloats(v, 2); ok {
				changed = setColor(&st.Color, xyToRGB(f[0], f[1])) || changed
			}
		}
	}
	return changed
}

// handleJSON reads a JSON-schema state document: {"state":"ON","brightness":..,"color_temp":..,
// "color":{"r","g","b"} | {"h","s"} | {"x","y"}}.
func (l *haLight) handleJSON(payload []byte, st *devices.State) bool {
	v, err := decodeJSON(payload)
	if err != nil {
		return false
	}
	m, ok := v.(map[string]any)
	if !ok {
		return false
	}
	changed := false
	switch m["state"] {
	case "ON":
		changed = setBool(&st.On, true) || changed
	case "OFF":
		changed = setBool(&st.On, false) || changed
	}
	if f, ok := toFloat(m["brightness"]); ok {
		changed = setInt(&st.Brightness, scaleToPercent(f, l.scale)) || changed
	}
	if f, ok := toFloat(m["color_temp"]); ok && f > 0 {
		k := int(math.Round(f))
		if !l.cfg.ColorTempKelvin {
			k = miredsToKelvin(f)
		}
		changed = setInt(&st.ColorTemp, k) || changed
	}
	if col, ok := m["color"].(map[string]any); ok {
		if rgb, ok := colorFromJSON(col); ok {
			changed = setColor(&st.Color, rgb) || changed
		}
	}
	return changed
}

// colorFromJSON reads {"r","g","b"}, {"h","s"} / {"hue","saturation"} or {"x","y"}.
func colorFromJSON(col map[string]any) (devices.Color, bool) {
	num := func(k string) (float64, bool) { return toFloat(col[k]) }
	if r, ok := num("r"); ok {
		g, gok := num("g")
		b, bok := num("b")
		if gok && bok {
			return devices.Color{R: to8(r / 255), G: to8(g / 255), B: to8(b / 255)}, true
		}
	}
	if x, ok := num("x"); ok {
		if y, ok := num("y"); ok {
			return xyToRGB(x, y), true
		}
	}
	for _, hk := range [][2]string{{"h", "s"}, {"hue", "saturation"}} {
		if h, ok := num(hk[0]); ok {
			if s, ok := num(hk[1]); ok {
				return hsToRGB(h, s), true
			}
		}
	}
	return devices.Color{}, false
}

func (l *haLight) command(c devices.Command) ([]publish, error) {
	if c.Action != "" {
		return nil, fmt.Errorf("a light has no action %q", c.Action)
	}
	caps := l.dev.Caps
	switch {
	case c.Brightness != nil && !caps.Brightness && *c.Brightness != 0 && *c.Brightness != 100:
		return nil, errors.New("this light has no brightness control")
	case c.ColorTemp != nil && !caps.ColorTemp:
		return nil, errors.New("this light has no colour temperature control")
	case c.Color != nil && !caps.Color:
		return nil, errors.New("this light has no colour control")
	case c.Brightness != nil && (*c.Brightness < 0 || *c.Brightness > 100):
		return nil, fmt.Errorf("brightness %d%% is outside 0-100", *c.Brightness)
	case c.ColorTemp != nil && *c.ColorTemp <= 0:
		return nil, fmt.Errorf("colour temperature %dK is not positive", *c.ColorTemp)
	}
	if !wantsOn(c) && !wantsOff(c) {
		return nil, errors.New("empty command")
	}
	if l.json {
		return l.commandJSON(c)
	}
	return l.commandDefault(c)
}

func (l *haLight) commandDefault(c devices.Command) ([]publish, error) {
	cfg := l.cfg
	onOff := func(on bool) (publish, error) {
		p := cfg.PayloadOff.or("OFF")
		if on {
			p = cfg.PayloadOn.or("ON")
		}
		b, err := renderCommand(l.cmdTpl, p)
		return publish{topic: cfg.CommandTopic, payload: b, retain: cfg.Retain}, err
	}
	if wantsOff(c) {
		p, err := onOff(false)
		return []publish{p}, err
	}
	var styles []publish
	if c.Brightness != nil && cfg.BrightnessCommandTopic != "" {
		b, err := renderCommand(l.briCmdTpl, int64(percentToScale(*c.Brightness, l.scale)))
		if err != nil {
			return nil, err
		}
		styles = append(styles, publish{topic: cfg.BrightnessCommandTopic, payload: b, retain: cfg.Retain})
	}
	if c.ColorTemp != nil {
		v := int64(kelvinToMireds(*c.ColorTemp))
		if cfg.ColorTempKelvin {
			v = int64(*c.ColorTemp)
		}
		b, err := renderCommand(l.ctCmdTpl, v)
		if err != nil {
			return nil, err
		}
		styles = append(styles, publish{topic: cfg.ColorTempCommandTopic, payload: b, retain: cfg.Retain})
	}
	if col := c.Color; col != nil {
		var p publish
		switch {
		case cfg.RGBCommandTopic != "":
			p = publish{topic: cfg.RGBCommandTopic, payload: fmt.Appendf(nil, "%d,%d,%d", col.R, col.G, col.B)}
		case cfg.HSCommandTopic != "":
			h, s := rgbToHS(*col)
			p = publish{topic: cfg.HSCommandTopic, payload: fmt.Appendf(nil, "%s,%s", fmtNum(h), fmtNum(s))}
		default:
			x, y := rgbToXY(*col)
			p = publish{topic: cfg.XYCommandTopic, payload: fmt.Appendf(nil, "%s,%s", fmtNum(x), fmtNum(y))}
		}
		p.retain = cfg.Retain
		styles = append(styles, p)
	}
	on, err := onOff(true)
	if err != nil {
		return nil, err
	}
	switch cfg.OnCommandType {
	case "first":
		return append([]publish{on}, styles...), nil
	case "brightness":
		// The light turns on by brightness alone; without one, HA sends full brightness.
		if c.Brightness == nil && cfg.BrightnessCommandTopic != "" {
			b, err := renderCommand(l.briCmdTpl, int64(l.scale))
			if err != nil {
				return nil, err
			}
			styles = append([]publish{{topic: cfg.BrightnessCommandTopic, payload: b, retain: cfg.Retain}}, styles...)
		}
		return styles, nil
	}
	return append(styles, on), nil
}

func (l *haLight) commandJSON(c devices.Command) ([]publish, error) {
	cfg := l.cfg
	if wantsOff(c) {
		return []publish{{topic: cfg.CommandTopic, payload: orderedJSON([]kv{{"state", "OFF"}}), retain: cfg.Retain}}, nil
	}
	doc := []kv{{"state", "ON"}}
	if c.Brightness != nil && l.dev.Caps.Brightness {
		doc = append(doc, kv{"brightness", percentToScale(*c.Brightness, l.scale)})
	}
	if c.ColorTemp != nil {
		v := kelvinToMireds(*c.ColorTemp)
		if cfg.ColorTempKelvin {
			v = *c.ColorTemp
		}
		doc = append(doc, kv{"color_temp", v})
	}
	if col := c.Color; col != nil {
		switch {
		case slices.Contains(l.colorModes, "rgb") || slices.Contains(l.colorModes, "rgbw") || slices.Contains(l.colorModes, "rgbww"):
			doc = append(doc, kv{"color", []kv{{"r", int(col.R)}, {"g", int(col.G)}, {"b", int(col.B)}}})
		case slices.Contains(l.colorModes, "hs"):
			h, s := rgbToHS(*col)
			doc = append(doc, kv{"color", []kv{{"h", h}, {"s", s}}})
		default:
			x, y := rgbToXY(*col)
			doc = append(doc, kv{"color", []kv{{"x", x}, {"y", y}}})
		}
	}
	return []publish{{topic: cfg.CommandTopic, payload: orderedJSON(doc), retain: cfg.Retain}}, nil
}

func fmtNum(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// renderFloat applies a template and parses the result as a number.
func renderFloat(t *Template, payload []byte) (float64, bool) {
	v, err := renderValue(t, payload)
	if err != nil {
		return 0, false
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	return f, err == nil && !math.IsNaN(f) && !math.IsInf(f, 0)
}

func setBool(dst **bool, v bool) bool {
	if *dst != nil && **dst == v {
		return false
	}
	*dst = &v
	return true
}

func setInt(dst **int, v int) bool {
	if *dst != nil && **dst == v {
		return false
	}
	*dst = &v
	return true
}

func setFloat(dst **float64, v float64) bool {
	if *dst != nil && **dst == v {
		return false
	}
	*dst = &v
	return true
}

func setColor(dst **devices.Color, v devices.Color) bool {
	if *dst != nil && **dst == v {
		return false
	}
	*dst = &v
	return true
}
