package mqtt

import (
	"errors"
	"strings"
	"testing"
)

func TestTemplateRender(t *testing.T) {
	const js = `{"temperature": 21.456, "humidity": 40, "state": "ON", "battery": null,
		"nested": {"power": {"w": 1500}}, "list": [10, 20, 30], "raw": "12.7", "flag": true, "dash-key": 5}`
	tests := []struct {
		tpl, payload, want string
	}{
		{"{{ value }}", "hello", "hello"},
		{"{{value}}", "42", "42"},
		{"{{ value_json.temperature }}", js, "21.456"},
		{"{{ value_json['humidity'] }}", js, "40"},
		{`{{ value_json["state"] }}`, js, "ON"},
		{"{{ value_json.nested.power.w }}", js, "1500"},
		{"{{ value_json['nested']['power'].w }}", js, "1500"},
		{"{{ value_json.list[1] }}", js, "20"},
		{"{{ value_json.list[-1] }}", js, "30"},
		{"{{ value_json['dash-key'] }}", js, "5"},
		{"{{ value_json.temperature | round(1) }}", js, "21.5"},
		{"{{ value_json.temperature | round }}", js, "21.0"},
		{"{{ value_json.temperature | round(2, 'floor') }}", js, "21.45"},
		{"{{ value_json.temperature | int }}", js, "21"},
		{"{{ value_json.raw | float }}", js, "12.7"},
		{"{{ value_json.raw | int }}", js, "12"},
		{"{{ value | float }}", "3", "3.0"},
		{"{{ value | float | round(1) }}", " 7.25 ", "7.3"},
		{"{{ value_json.nested.power.w / 10 }}", js, "150.0"},
		{"{{ value_json.nested.power.w // 7 }}", js, "214"},
		{"{{ value_json.nested.power.w % 7 }}", js, "2"},
		{"{{ (value_json.temperature * 10) | round }}", js, "215.0"},
		{"{{ value_json.temperature * 10 | round }}", js, "214.56"}, // filters bind tighter, as in Jinja
		{"{{ value_json.humidity + 2 * 3 }}", js, "46"},
		{"{{ (value_json.humidity + 2) * 3 }}", js, "126"},
		{"{{ -value_json.humidity }}", js, "-40"},
		{"{{ value_json.missing | default(7) }}", js, "7"},
		{"{{ value_json.missing | d('x') }}", js, "x"},
		{"{{ value_json.battery | default(100, true) }}", js, "100"},
		{"{{ value_json.humidity | default(1) }}", js, "40"},
		{"{{ value_json.missing | float(0) }}", js, "0"},
		{"{{ 'ON' if value_json.flag else 'OFF' }}", js, "ON"},
		{"{{ 'ON' if value_json.humidity > 50 else 'OFF' }}", js, "OFF"},
		{"{{ 'ON' if value_json.state == 'ON' and not value_json.battery else 'OFF' }}", js, "ON"},
		{"{{ value_json.state | lower }}", js, "on"},
		{"{{ value | upper }}", "off", "OFF"},
		{"{{ -5 | abs }}", "", "-5"}, // unary minus applies after the filter, as in Jinja
		{"{{ (-5) | abs }}", "", "5"},
		{"temp={{ value_json.humidity }}%", js, "temp=40%"},
		{`{"bri": {{ value }}}`, "128", `{"bri": 128}`},
		{"no expression", "x", "no expression"},
		{"{{ value_json }}", `{"a":1}`, `{"a":1}`},
		{"{{ value_json.flag }}", js, "True"},
		{"{{ value_json.battery }}", js, "None"},
		{"{{ value_json.humidity == 40.0 }}", js, "True"},
		{"{{ 1_000 + 0.5 }}", "", "1000.5"},
	}
	for _, tc := range tests {
		tpl, err := ParseTemplate(tc.tpl)
		if err != nil {
			t.Errorf("ParseTemplate(%q): %v", tc.tpl, err)
			continue
		}
		got, err := tpl.Render(InputFromPayload([]byte(tc.payload)))
		if err != nil {
			t.Errorf("Render(%q, %q): %v", tc.tpl, tc.payload, err)
			continue
		}
		if got != tc.want {
			t.Errorf("Render(%q, %q) = %q, want %q", tc.tpl, tc.payload, got, tc.want)
		}
	}
}

func TestTemplateParseErrors(t *testing.T) {
	tests := []struct{ tpl, want string }{
		{"{% if value %}on{% endif %}", "statement blocks"},
		{"{# note #}{{ value }}", "comments"},
		{"{{ value", "unclosed"},
		{"{{ }}", "empty expression"},
		{"{{ value | tojson }}", `unsupported filter "tojson"`},
		{"{{ states('sensor.x') }}", `unknown name "states"`},
		{"{{ now() }}", `unknown name "now"`},
		{"{{ value.split(',') }}", "function calls are not supported"},
		{"{{ value_json.x ** 2 }}", "unsupported character or operator"},
		{"{{ value ~ 'x' }}", "unsupported character or operator"},
		{"{{ value_json.x | round(1 }}", "expected ',' or ')'"},
		{"{{ value_json[ }}", "unexpected end"},
		{"{{ 'abc }}", "unterminated string"},
		{"{{ value value }}", `unexpected "value"`},
		{"{{ value_json. }}", "attribute name"},
		{"{{- value -}}", "whitespace control"},
		{"{{ x for x in value }}", `unknown name "x"`},
		{"{{ " + strings.Repeat("(", 40) + "1" + strings.Repeat(")", 40) + " }}", "nested too deeply"},
		{strings.Repeat("a", 5000), "longer than"},
	}
	for _, tc := range tests {
		_, err := ParseTemplate(tc.tpl)
		if err == nil {
			t.Errorf("ParseTemplate(%q) succeeded", tc.tpl)
			continue
		}
		if !errors.Is(err, ErrTemplate) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseTemplate(%q) = %v, want an ErrTemplate containing %q", tc.tpl, err, tc.want)
		}
	}
}

func TestTemplateRenderErrors(t *testing.T) {
	tests := []struct{ tpl, payload, want string }{
		{"{{ value_json.missing }}", `{"a":1}`, "value_json.missing is undefined"},
		{"{{ value_json['b'].c }}", `{"a":1}`, `value_json["b"].c is undefined`},
		{"{{ value_json.a }}", `not json`, "value_json.a is undefined"},
		{"{{ value_json.list[5] }}", `{"list":[1]}`, "value_json.list[5] is undefined"},
		{"{{ value | float }}", "abc", "not a number"},
		{"{{ value | int }}", "abc", "not a number"},
		{"{{ value / 10 }}", "100", "hint: add | float"},
		{"{{ value_json.a / 0 }}", `{"a":1}`, "division by zero"},
		{"{{ value_json.a | round('x') }}", `{"a":1}`, "precision"},
		{"{{ value_json.s | round }}", `{"s":"1"}`, "round needs a number"},
		{"{{ value_json.a < 'x' }}", `{"a":1}`, "cannot compare"},
		{"{{ value_json.a + 1 }}", `{}`, "undefined"},
		{"{{ value_json[1.5] }}", `{}`, "index must be"},
		{"{{ value_json.a | default }}", `{}`, "default takes"},
	}
	for _, tc := range tests {
		tpl, err := ParseTemplate(tc.tpl)
		if err != nil {
			t.Errorf("ParseTemplate(%q): %v", tc.tpl, err)
			continue
		}
		got, err := tpl.Render(InputFromPayload([]byte(tc.payload)))
		if err == nil {
			t.Errorf("Render(%q, %q) = %q, want an error", tc.tpl, tc.payload, got)
			continue
		}
		if !errors.Is(err, ErrTemplate) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Render(%q, %q) = %v, want an ErrTemplate containing %q", tc.tpl, tc.payload, err, tc.want)
		}
	}
}
