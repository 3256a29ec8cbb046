package mqtt

import (
	"encoding/json"
	"reflect"
	"testing"
)

func TestAbbreviationExpansion(t *testing.T) {
	in := map[string]any{}
	if err := json.Unmarshal([]byte(`{
		"~": "home/lamp",
		"stat_t": "~/state", "cmd_t": "~/set", "bri_cmd_t": "~/bri/set", "bri_scl": 100,
		"avty_t": "~/lwt", "pl_avail": "up", "pl_not_avail": "down", "uniq_id": "lamp1",
		"clr_temp_k": true, "sup_clrm": ["color_temp"], "fx_list": ["a"], "unknown_opt": 1,
		"state_topic_full": "x",
		"cmd_tpl": "{{ value }}", "command_template": "full wins",
		"avty": [{"t": "~/a1", "pl_avail": "1", "val_tpl": "{{ value_json.s }}"}, {"topic": "other/~"}],
		"dev": {"ids": ["i1"], "mf": "Acme", "mdl": "M", "mdl_id": "M-1", "sa": "Hall", "sn": "123", "sw": "1", "hw": "2", "cu": "http://x", "cns": [["mac", "aa"]]},
		"o": {"name": "gen", "sw": "3", "url": "http://support"},
		"cmps": {"c1": {"p": "sensor", "val_tpl": "{{ value }}", "unit_of_meas": "W", "dev_cla": "power", "stat_cla": "measurement"}}
	}`), &in); err != nil {
		t.Fatal(err)
	}
	got := newAbbrevs().expand(in)
	expandBase(got)
	want := map[string]any{
		"~":           "home/lamp",
		"state_topic": "home/lamp/state", "command_topic": "home/lamp/set", "brightness_command_topic": "home/lamp/bri/set",
		"brightness_scale": 100.0, "availability_topic": "home/lamp/lwt", "payload_available": "up",
		"payload_not_available": "down", "unique_id": "lamp1", "color_temp_kelvin": true,
		"supported_color_modes": []any{"color_temp"}, "effect_list": []any{"a"}, "unknown_opt": 1.0,
		"state_topic_full": "x",
		"command_template": "full wins",
		"availability": []any{
			map[string]any{"topic": "home/lamp/a1", "payload_available": "1", "value_template": "{{ value_json.s }}"},
			map[string]any{"topic": "other/home/lamp"},
		},
		"device": map[string]any{"identifiers": []any{"i1"}, "manufacturer": "Acme", "model": "M", "model_id": "M-1",
			"suggested_area": "Hall", "serial_number": "123", "sw_version": "1", "hw_version": "2",
			"configuration_url": "http://x", "connections": []any{[]any{"mac", "aa"}}},
		"origin": map[string]any{"name": "gen", "sw_version": "3", "support_url": "http://support"},
		"components": map[string]any{"c1": map[string]any{"platform": "sensor", "value_template": "{{ value }}",
			"unit_of_measurement": "W", "device_class": "power", "state_class": "measurement"}},
	}
	if !reflect.DeepEqual(got, want) {
		gb, _ := json.MarshalIndent(got, "", " ")
		t.Fatalf("expanded:\n%s", gb)
	}
}

func TestAbbreviationTableWellFormed(t *testing.T) {
	a := newAbbrevs()
	if len(a.entity) < 250 || len(a.device) != 12 || len(a.origin) != 3 {
		t.Fatalf("table sizes entity=%d device=%d origin=%d", len(a.entity), len(a.device), len(a.origin))
	}
	for short, long := range a.entity {
		if short == "" || long == "" {
			t.Errorf("bad pair %q=%q", short, long)
		}
	}
	for short, long := range map[string]string{"stat_t": "state_topic", "cmd_t": "command_topic", "avty_t": "availability_topic",
		"bri_cmd_t": "brightness_command_topic", "bri_scl": "brightness_scale", "dev": "device", "uniq_id": "unique_id",
		"cmps": "components", "p": "platform", "o": "origin", "val_tpl": "value_template", "clr_temp_k": "color_temp_kelvin"} {
		if a.entity[short] != long {
			t.Errorf("%s expands to %q, want %q", short, a.entity[short], long)
		}
	}
}
