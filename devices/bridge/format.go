package bridge

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/hearth-home/hearth/devices"
)

// describe is the human text of a device's state: "Kitchen light: on, 50%, 2700K".
func describe(d devices.Device, s devices.State) string {
	var parts []string
	if !s.Available {
		parts = append(parts, "unavailable")
	}
	if s.On != nil {
		parts = append(parts, map[bool]string{true: "on", false: "off"}[*s.On])
	}
	if s.Brightness != nil {
		parts = append(parts, strconv.Itoa(*s.Brightness)+"%")
	}
	if s.ColorTemp != nil {
		parts = append(parts, strconv.Itoa(*s.ColorTemp)+"K")
	}
	if s.Color != nil {
		parts = append(parts, fmt.Sprintf("#%02x%02x%02x", s.Color.R, s.Color.G, s.Color.B))
	}
	if s.Value != nil {
		v := strconv.FormatFloat(*s.Value, 'f', -1, 64)
		if d.Unit != "" {
			v += " " + d.Unit
		}
		parts = append(parts, v)
	}
	if s.Detected != nil {
		what := "clear"
		if *s.Detected {
			what = "detected"
			if d.DeviceClass == "door" || d.DeviceClass == "window" || d.DeviceClass == "opening" {
				what = "open"
			}
		} else if d.DeviceClass == "door" || d.DeviceClass == "window" || d.DeviceClass == "opening" {
			what = "closed"
		}
		parts = append(parts, what)
	}
	keys := make([]string, 0, len(s.Readings))
	for k := range s.Readings {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		parts = append(parts, k+" "+strconv.FormatFloat(s.Readings[k], 'f', -1, 64))
	}
	name := d.Name
	if name == "" {
		name = d.ID
	}
	if len(parts) == 0 {
		return name + ": no state reported yet"
	}
	return name + ": " + strings.Join(parts, ", ")
}

// changedFields names the state fields that differ between two states (JSON names).
func changedFields(a, b devices.State) []string {
	var out []string
	add := func(cond bool, name string) {
		if cond {
			out = append(out, name)
		}
	}
	add(a.Available != b.Available, "available")
	add(!eqPtr(a.On, b.On), "on")
	add(!eqPtr(a.Brightness, b.Brightness), "brightness")
	add(!eqPtr(a.ColorTemp, b.ColorTemp), "color_temp_k")
	add(!eqPtr(a.Color, b.Color), "color")
	add(!eqPtr(a.Value, b.Value), "value")
	add(!eqPtr(a.Detected, b.Detected), "detected")
	for k, v := range b.Readings {
		if old, ok := a.Readings[k]; !ok || old != v {
			out = append(out, "readings."+k)
		}
	}
	slices.Sort(out)
	return out
}

// describeCommand is the human text of a command: "on, 50%".
func describeCommand(c devices.Command) string {
	var parts []string
	if c.On != nil {
		parts = append(parts, map[bool]string{true: "on", false: "off"}[*c.On])
	}
	if c.Brightness != nil {
		parts = append(parts, strconv.Itoa(*c.Brightness)+"%")
	}
	if c.ColorTemp != nil {
		parts = append(parts, strconv.Itoa(*c.ColorTemp)+"K")
	}
	if c.Color != nil {
		parts = append(parts, fmt.Sprintf("#%02x%02x%02x", c.Color.R, c.Color.G, c.Color.B))
	}
	if c.Action != "" {
		a := strings.TrimSuffix(c.Action, "!")
		if c.Amount != 0 {
			a += " " + strconv.Itoa(c.Amount)
		}
		parts = append(parts, a)
	}
	return strings.Join(parts, ", ")
}

const helpText = `Commands (case does not matter, names may be shortened):
• "kitchen light on", "!light kitchen off", "turn off all lights"
• "kitchen light 50%", "set kitchen light to 2700K", "hall lamp red" or "#ff8800"
• "drone takeoff" (asks you to reply "confirm"), "drone land", "drone up 50", "drone cw 90"
• "status" (this room's devices), "status all", "help"
Devices are the members of this room; each area has its own room in the Home space.`
