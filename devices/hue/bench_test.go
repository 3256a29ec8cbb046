package hue

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/hearth-home/hearth/devices"
)

// BenchmarkHandleLightUpdate measures applying one event-stream container with a light
// update, the adapter's hot path while lights change.
func BenchmarkHandleLightUpdate(b *testing.B) {
	a, err := New(Config{Credentials: Credentials{Address: "127.0.0.1", AppKey: "k", Fingerprint: strings.Repeat("0", 64)}})
	if err != nil {
		b.Fatal(err)
	}
	a.lights[lightKitch] = &lightInfo{device: devKitchen, reachable: true}
	data, err := json.Marshal([]any{map[string]any{
		"creationtime": "2026-11-25T00:00:00Z", "id": "e1", "type": "update",
		"data": []any{map[string]any{"id": lightKitch, "type": "light", "on": map[string]any{"on": true},
			"dimming": map[string]any{"brightness": 42.0}, "owner": map[string]any{"rid": devKitchen, "rtype": "device"}}},
	}})
	if err != nil {
		b.Fatal(err)
	}
	sink := newRecSink()
	b.ReportAllocs()
	for b.Loop() {
		if a.handle(data, sink) {
			b.Fatal("a state update asked for a re-listing")
		}
	}
	if s := sink.state("hue:" + lightKitch); !ptrEq(s.Brightness, 42) {
		b.Fatalf("state = %+v", s)
	}
}

// BenchmarkRGBToXY measures the colour conversion done for every colour command.
func BenchmarkRGBToXY(b *testing.B) {
	c := devices.Color{R: 200, G: 120, B: 30}
	for b.Loop() {
		_ = rgbToXY(c)
	}
}
