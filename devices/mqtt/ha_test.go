package mqtt

import (
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hearth-home/hearth/devices"
)

// kitchenLightConfig is an abbreviated default-schema discovery config using "~".
const kitchenLightConfig = `{
  "~": "test/kitchen",
  "name": null,
  "uniq_id": "kitchen-light-1",
  "stat_t": "~/state",
  "cmd_t": "~/set",
  "bri_stat_t": "~/bri",
  "bri_cmd_t": "~/bri/set",
  "bri_scl": 255,
  "clr_temp_stat_t": "~/ct",
  "clr_temp_cmd_t": "~/ct/set",
  "avty_t": "~/avail",
  "dev": {"ids": ["k1"], "name": "Kitchen Light", "sa": "Kitchen", "mf": "Acme", "mdl": "L1"},
  "o": {"name": "sim", "sw": "1.0"}
}`

// playLight makes the simulated device behave like a default-schema light: every command is
// applied and echoed on the state topics.
func playLight(d *simDevice, topic, payload string) {
	switch topic {
	case "test/kitchen/set":
		d.reply("test/kitchen/state", payload)
	case "test/kitchen/bri/set":
		d.reply("test/kitchen/bri", payload)
	case "test/kitchen/ct/set":
		d.reply("test/kitchen/ct", payload)
	}
}

func TestHADiscoveryLightDefaultSchema(t *testing.T) {
	eachBroker(t, func(t *testing.T, env *brokerEnv) {
		dev := newSimDevice(t, env, []string{"test/kitchen/+/set", "test/kitchen/set"}, playLight)
		// Retained before the adapter exists: discovery must come from retained messages.
		dev.pub("homeassistant/light/kitchen/config", true, kitchenLightConfig)
		dev.pub("test/kitchen/state", true, "OFF")

		a, sink := startAdapter(t, env, nil)
		const id = "mqtt:ha/kitchen-light-1"
		sink.waitFor(t, "light discovered with OFF state", func(s *recSink) bool {
			st, ok := s.state(id)
			return ok && st.On != nil && !*st.On
		})
		sink.mu.Lock()
		d := sink.devs[id]
		st := sink.states[id]
		sink.mu.Unlock()
		want := devices.Device{ID: id, Name: "Kitchen Light", Kind: devices.Light, Adapter: "mqtt", Area: "Kitchen",
			Model: "Acme L1", Caps: devices.Caps{Brightness: true, ColorTemp: true}}
		if d != want {
			t.Fatalf("device = %+v, want %+v", d, want)
		}
		if st.Available {
			t.Fatal("available before the availability topic said online")
		}

		dev.pub("test/kitchen/avail", true, "online")
		sink.waitFor(t, "available", func(s *recSink) bool { st, _ := s.state(id); return st.Available })

		command(t, a, id, devices.Command{On: ptr(true), Brightness: ptr(50)})
		// on_command_type "last" (default): brightness first, then payload_on.
		dev.expect(recvMsg{"test/kitchen/bri/set", "128"}, recvMsg{"test/kitchen/set", "ON"})
		sink.waitFor(t, "on at 50%", func(s *recSink) bool {
			st, _ := s.state(id)
			return st.On != nil && *st.On && st.Brightness != nil && *st.Brightness == 50
		})

		command(t, a, id, devices.Command{ColorTemp: ptr(2700)})
		dev.expect(recvMsg{"test/kitchen/ct/set", "370"}, recvMsg{"test/kitchen/set", "ON"})
		sink.waitFor(t, "2703K (370 mireds)", func(s *recSink) bool {
			st, _ := s.state(id)
			return st.ColorTemp != nil && *st.ColorTemp == 2703
		})

		dev.pub("test/kitchen/avail", true, "offline")
		sink.waitFor(t, "unavailable", func(s *recSink) bool { st, _ := s.state(id); return !st.Available })
		dev.pub("test/kitchen/avail", true, "online")
		sink.waitFor(t, "available again", func(s *recSink) bool { st, _ := s.state(id); return st.Available })

		command(t, a, id, devices.Command{On: ptr(false)})
		dev.expect(recvMsg{"test/kitchen/set", "OFF"})
		sink.waitFor(t, "off", func(s *recSink) bool { st, _ := s.state(id); return st.On != nil && !*st.On })

		// A device that reports state from its own button.
		dev.pub("test/kitchen/bri", true, "255")
		sink.waitFor(t, "brightness 100%", func(s *recSink) bool {
			st, _ := s.state(id)
			return st.Brightness != nil && *st.Brightness == 100
		})

		// Unsupported feature: a clear error, nothing published.
		if err := a.Command(t.Context(), id, devices.Command{Color: &devices.Color{R: 255}}); err == nil {
			t.Fatal("colour command on a light without colour succeeded")
		}
		if err := a.Command(t.Context(), "mqtt:ha/nope", devices.Command{On: ptr(true)}); err == nil {
			t.Fatal("command to an unknown device succeeded")
		}
		dev.quiet()

		dev.pub("homeassistant/light/kitchen/config", true, "")
		sink.waitFor(t, "removed", func(s *recSink) bool { return s.removed[id] == 1 && s.devs[id].ID == "" })
	})
}

func TestHADiscoveryLightJSONSchema(t *testing.T) {
	eachBroker(t, func(t *testing.T, env *brokerEnv) {
		const cfg = `{"schema":"json","name":"Desk","uniq_id":"desk-1","stat_t":"test/desk/state",
			"cmd_t":"test/desk/set","sup_clrm":["color_temp","rgb"],"dev":{"ids":"d1","name":"Office","sa":"Office"}}`
		dev := newSimDevice(t, env, []string{"test/desk/set"}, nil)
		a, sink := startAdapter(t, env, nil)
		dev.pub("homeassistant/light/desk/config", true, cfg)
		const id = "mqtt:ha/desk-1"
		sink.waitFor(t, "json light", func(s *recSink) bool { _, ok := s.state(id); return ok })
		sink.mu.Lock()
		d := sink.devs[id]
		sink.mu.Unlock()
		if d.Name != "Office Desk" || d.Area != "Office" || d.Caps != (devices.Caps{Brightness: true, ColorTemp: true, Color: true}) {
			t.Fatalf("device = %+v", d)
		}

		command(t, a, id, devices.Command{On: ptr(true), Brightness: ptr(50)})
		dev.expect(recvMsg{"test/desk/set", `{"state":"ON","brightness":128}`})
		command(t, a, id, devices.Command{Color: &devices.Color{R: 255, G: 0, B: 0}})
		dev.expect(recvMsg{"test/desk/set", `{"state":"ON","color":{"r":255,"g":0,"b":0}}`})
		command(t, a, id, devices.Command{ColorTemp: ptr(4000)})
		dev.expect(recvMsg{"test/desk/set", `{"state":"ON","color_temp":250}`})
		command(t, a, id, devices.Command{Brightness: ptr(0)})
		dev.expect(recvMsg{"test/desk/set", `{"state":"OFF"}`})

		dev.pub("test/desk/state", false, `{"state":"ON","brightness":64,"color_mode":"rgb","color":{"r":0,"g":0,"b":255}}`)
		sink.waitFor(t, "json state", func(s *recSink) bool {
			st, _ := s.state(id)
			return st.On != nil && *st.On && st.Brightness != nil && *st.Brightness == 25 &&
				st.Color != nil && *st.Color == (devices.Color{B: 255})
		})
		// No availability configured: available as soon as discovered.
		sink.mu.Lock()
		avail := sink.states[id].Available
		sink.mu.Unlock()
		if !avail {
			t.Fatal("entity without availability topics is not available")
		}
	})
}

func TestHADeviceDiscoveryComponents(t *testing.T) {
	eachBroker(t, func(t *testing.T, env *brokerEnv) {
		const cfg = `{
		  "dev": {"ids": "ea334450945afc", "name": "Bedroom sensor", "mf": "Bla", "mdl": "xya", "sa": "Bedroom"},
		  "o": {"name": "bla2mqtt", "sw": "2.1"},
		  "cmps": {
		    "t": {"p": "sensor", "dev_cla": "temperature", "unit_of_meas": "°C",
		          "val_tpl": "{{ value_json.temperature | float | round(1) }}", "uniq_id": "bed_t", "name": "Temperature"},
		    "h": {"p": "sensor", "dev_cla": "humidity", "unit_of_meas": "%",
		          "val_tpl": "{{ value_json['humidity'] }}", "uniq_id": "bed_h", "name": "Humidity"},
		    "m": {"p": "binary_sensor", "dev_cla": "motion",
		          "val_tpl": "{{ 'ON' if value_json.motion else 'OFF' }}", "uniq_id": "bed_m", "name": "Motion"},
		    "s": {"p": "switch", "cmd_t": "sensorBedroom/led/set", "stat_t": "sensorBedroom/led",
		          "pl_on": 1, "pl_off": 0, "uniq_id": "bed_led", "name": "LED"}
		  },
		  "stat_t": "sensorBedroom/state",
		  "avty": [{"t": "sensorBedroom/avail", "pl_avail": "up", "pl_not_avail": "down"}],
		  "qos": 1
		}`
		dev := newSimDevice(t, env, []string{"sensorBedroom/led/set"}, nil)
		a, sink := startAdapter(t, env, nil)
		dev.pub("sensorBedroom/state", true, `{"temperature": 21.46, "humidity": 40, "motion": true}`)
		dev.pub("sensorBedroom/avail", true, "up")
		dev.pub("homeassistant/device/ea334450945afc/config", true, cfg)

		sink.waitFor(t, "three readings from one shared state topic", func(s *recSink) bool {
			t, okT := s.state("mqtt:ha/bed_t")
			h, okH := s.state("mqtt:ha/bed_h")
			m, okM := s.state("mqtt:ha/bed_m")
			return okT && okH && okM && t.Value != nil && *t.Value == 21.5 && t.Available &&
				h.Value != nil && *h.Value == 40 && m.Detected != nil && *m.Detected
		})
		sink.mu.Lock()
		temp := sink.devs["mqtt:ha/bed_t"]
		sink.mu.Unlock()
		if temp.Name != "Bedroom sensor Temperature" || temp.Unit != "°C" || temp.DeviceClass != "temperature" ||
			temp.Kind != devices.Sensor || temp.Area != "Bedroom" {
			t.Fatalf("temperature device = %+v", temp)
		}

		command(t, a, "mqtt:ha/bed_led", devices.Command{On: ptr(true)})
		dev.expect(recvMsg{"sensorBedroom/led/set", "1"})

		dev.pub("sensorBedroom/state", true, `{"temperature": 19, "humidity": 41, "motion": false}`)
		sink.waitFor(t, "updated readings", func(s *recSink) bool {
			t, _ := s.state("mqtt:ha/bed_t")
			m, _ := s.state("mqtt:ha/bed_m")
			return t.Value != nil && *t.Value == 19 && m.Detected != nil && !*m.Detected
		})
		dev.pub("sensorBedroom/avail", true, "down")
		sink.waitFor(t, "shared availability down", func(s *recSink) bool {
			t, _ := s.state("mqtt:ha/bed_t")
			h, _ := s.state("mqtt:ha/bed_h")
			return !t.Available && !h.Available
		})

		// Drop humidity the documented way (only "p" left) and the LED by leaving it out.
		update := strings.Replace(cfg, `"h": {"p": "sensor", "dev_cla": "humidity", "unit_of_meas": "%",
		          "val_tpl": "{{ value_json['humidity'] }}", "uniq_id": "bed_h", "name": "Humidity"},`, `"h": {"p": "sensor"},`, 1)
		update = strings.Replace(update, `,
		    "s": {"p": "switch", "cmd_t": "sensorBedroom/led/set", "stat_t": "sensorBedroom/led",
		          "pl_on": 1, "pl_off": 0, "uniq_id": "bed_led", "name": "LED"}`, "", 1)
		if update == cfg {
			t.Fatal("test bug: update did not change the config")
		}
		dev.pub("homeassistant/device/ea334450945afc/config", true, update)
		sink.waitFor(t, "humidity and LED removed", func(s *recSink) bool {
			return s.removed["mqtt:ha/bed_h"] == 1 && s.removed["mqtt:ha/bed_led"] == 1 && s.devs["mqtt:ha/bed_t"].ID != ""
		})

		dev.pub("homeassistant/device/ea334450945afc/config", true, "")
		sink.waitFor(t, "all removed", func(s *recSink) bool {
			return s.removed["mqtt:ha/bed_t"] == 1 && s.removed["mqtt:ha/bed_m"] == 1 && len(s.devs) == 0
		})
	})
}

func TestReconnectAfterBrokerRestart(t *testing.T) {
	eachBroker(t, func(t *testing.T, env *brokerEnv) {
		var mu sync.Mutex
		birth := 0
		dev := newSimDevice(t, env, []string{"test/kitchen/+/set", "test/kitchen/set", "homeassistant/status"},
			func(d *simDevice, topic, payload string) {
				if topic == "homeassistant/status" {
					mu.Lock()
					birth++
					mu.Unlock()
					return
				}
				playLight(d, topic, payload)
			})
		dev.pub("homeassistant/light/kitchen/config", true, kitchenLightConfig)
		dev.pub("test/kitchen/avail", true, "online")
		a, sink := startAdapter(t, env, nil)
		const id = "mqtt:ha/kitchen-light-1"
		sink.waitFor(t, "available", func(s *recSink) bool { st, _ := s.state(id); return st.Available })

		sink.mu.Lock()
		before := len(sink.history[id])
		sink.mu.Unlock()
		env.restart(t)
		// The adapter lost its connection: everything is unavailable until it is back (which
		// may already have happened, so look at every report since the restart).
		sink.waitFor(t, "unavailable during the outage", func(s *recSink) bool {
			return slices.ContainsFunc(s.history[id][before:], func(st devices.State) bool { return !st.Available })
		})
		// The broker lost every retained message and subscription (no persistence). The device
		// republishes its availability and state once it is back, as devices do on reconnect.
		for deadline := time.Now().Add(waitTimeout); !dev.client.IsConnectionOpen(); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("simulated device did not reconnect")
			}
		}
		dev.pub("test/kitchen/avail", true, "online")
		dev.pub("test/kitchen/bri", true, "51")
		sink.waitFor(t, "state after the restart (resubscribed)", func(s *recSink) bool {
			st, _ := s.state(id)
			return st.Available && st.Brightness != nil && *st.Brightness == 20
		})
		mu.Lock()
		births := birth
		mu.Unlock()
		if births < 1 {
			t.Errorf("HA birth message seen %d times, want at least 1", births)
		}
		// Commands work again.
		for len(dev.msgs) > 0 {
			<-dev.msgs
		}
		command(t, a, id, devices.Command{On: ptr(false)})
		for {
			m := dev.next()
			if m.topic == "homeassistant/status" {
				continue
			}
			if m != (recvMsg{"test/kitchen/set", "OFF"}) {
				t.Fatalf("after restart device got %v", m)
			}
			break
		}
	})
}
