package mqtt

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/hearth-home/hearth/devices"
)

type nopSink struct{}

func (nopSink) Upsert(devices.Device)        {}
func (nopSink) Remove(string)                {}
func (nopSink) Report(string, devices.State) {}

func BenchmarkTemplateRender(b *testing.B) {
	tpl, err := ParseTemplate("{{ (value_json.sensor.temperature | float / 10) | round(1) }}")
	if err != nil {
		b.Fatal(err)
	}
	payload := []byte(`{"sensor":{"temperature":215,"humidity":40},"battery":90}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tpl.Render(InputFromPayload(payload)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDispatchSensor is the adapter's cost per state message: routing, template, report.
func BenchmarkDispatchSensor(b *testing.B) {
	a, _ := New(Config{})
	r := newRegistry(a.log, nopSink{}, func([]string) {}, func([]string) {})
	r.setConnected(true)
	for i := range 100 {
		ents, err := a.parseDiscovery(fmt.Sprintf("sensor/s%d/config", i), fmt.Appendf(nil,
			`{"stat_t":"room/%d","val_tpl":"{{ value_json.temperature }}","uniq_id":"t%d","unit_of_meas":"°C"}`, i, i))
		if err != nil {
			b.Fatal(err)
		}
		r.put(fmt.Sprintf("ha:%d", i), ents)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		r.dispatch(fmt.Sprintf("room/%d", i%100), fmt.Appendf(nil, `{"temperature": %d.5}`, i%40))
		i++
	}
}

// BenchmarkEntityMemory reports the heap held per discovered entity (config, templates,
// registry entry, cached payload).
func BenchmarkEntityMemory(b *testing.B) {
	const n = 1000
	for b.Loop() {
		a, _ := New(Config{})
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		r := newRegistry(a.log, nopSink{}, func([]string) {}, func([]string) {})
		for i := range n {
			ents, err := a.parseDiscovery(fmt.Sprintf("light/l%d/config", i), fmt.Appendf(nil,
				`{"~":"home/l%d","stat_t":"~/state","cmd_t":"~/set","bri_stat_t":"~/bri","bri_cmd_t":"~/bri/set",
				"avty_t":"~/avail","uniq_id":"l%d","dev":{"ids":"l%d","name":"Lamp %d","sa":"Hall"}}`, i, i, i, i))
			if err != nil {
				b.Fatal(err)
			}
			r.put(fmt.Sprintf("ha:%d", i), ents)
			r.dispatch(fmt.Sprintf("home/l%d/state", i), []byte("ON"))
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "B/entity")
		runtime.KeepAlive(r)
	}
}
