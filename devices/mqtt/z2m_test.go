package mqtt

import (
	"strings"
	"testing"

	"github.com/hearth-home/hearth/devices"
)

// z2mDeviceList is a trimmed but structurally faithful <base>/bridge/devices payload: the
// coordinator, a colour-temperature + xy bulb, and a motion sensor with temperature, battery
// and link quality.
const z2mDeviceList = `[
 {"ieee_address":"0x00124b0000000001","type":"Coordinator","friendly_name":"Coordinator","definition":null},
 {"ieee_address":"0x0017880100000001","type":"Router","friendly_name":"kitchen_light","supported":true,
  "description":"area: Kitchen","disabled":false,
  "definition":{"model":"9290022166","vendor":"Philips","description":"Hue white and color ambiance E26/E27",
   "exposes":[
    {"type":"light","features":[
      {"type":"binary","name":"state","property":"state","access":7,"value_on":"ON","value_off":"OFF","value_toggle":"TOGGLE"},
      {"type":"numeric","name":"brightness","property":"brightness","access":7,"value_min":0,"value_max":254},
      {"type":"numeric","name":"color_temp","property":"color_temp","access":7,"unit":"mired","value_min":153,"value_max":500},
      {"type":"composite","name":"color_xy","property":"color","access":7,"features":[
        {"type":"numeric","name":"x","property":"x","access":7},{"type":"numeric","name":"y","property":"y","access":7}]}
    ]},
    {"type":"enum","name":"effect","property":"effect","access":2,"values":["blink","breathe"]},
    {"type":"numeric","name":"linkquality","property":"linkquality","access":1,"unit":"lqi"}
   ]}},
 {"ieee_address":"0x00158d0000000002","type":"EndDevice","friendly_name":"hall/motion","supported":true,
  "definition":{"model":"RTCGQ11LM","vendor":"Aqara","description":"Motion sensor",
   "exposes":[
    {"type":"binary","name":"occupancy","property":"occupancy","access":1,"value_on":true,"value_off":false},
    {"type":"numeric","name":"temperature","property":"temperature","access":1,"unit":"°C"},
    {"type":"numeric","name":"battery","property":"battery","access":1,"unit":"%"},
    {"type":"numeric","name":"occupancy_timeout","property":"occupancy_timeout","access":2},
    {"type":"numeric","name":"linkquality","property":"linkquality","access":1,"unit":"lqi"}
   ]}}
]`

func TestZigbee2MQTT(t *testing.T) {
	eachBroker(t, func(t *testing.T, env *brokerEnv) {
		// The test plays Zigbee2MQTT: retained device list, bridge state, availability, state.
		z2m := newSimDevice(t, env, []string{"zigbee2mqtt/+/set"}, func(d *simDevice, topic, payload string) {
			if topic == "zigbee2mqtt/kitchen_light/set" {
				// Real Z2M publishes the device's new full state after applying a command.
				if strings.Contains(payload, `"OFF"`) {
					d.reply("zigbee2mqtt/kitchen_light", `{"state":"OFF","brightness":127,"linkquality":90}`)
				} else {
					d.reply("zigbee2mqtt/kitchen_light", `{"state":"ON","brightness":127,"color_temp":370,"linkquality":90}`)
				}
			}
		})
		z2m.pub("zigbee2mqtt/bridge/state", true, `{"state":"online"}`)
		z2m.pub("zigbee2mqtt/bridge/devices", true, z2mDeviceList)
		z2m.pub("zigbee2mqtt/kitchen_light", true, `{"state":"OFF","brightness":254,"color":{"x":0.3,"y":0.3},"linkquality":90}`)
		z2m.pub("zigbee2mqtt/kitchen_light/availability", true, `{"state":"online"}`)
		z2m.pub("zigbee2mqtt/hall/motion", true, `{"occupancy":true,"temperature":22.5,"battery":91,"linkquality":40}`)

		a, sink := startAdapter(t, env, nil)
		const light = "mqtt:z2m/0x0017880100000001"
		const motion = "mqtt:z2m/0x00158d0000000002/occupancy"
		const temp = "mqtt:z2m/0x00158d0000000002/temperature"
		const battery = "mqtt:z2m/0x00158d0000000002/battery"
		sink.waitFor(t, "z2m devices with state", func(s *recSink) bool {
			l, okL := s.state(light)
			m, okM := s.state(motion)
			tp, okT := s.state(temp)
			return okL && okM && okT && l.Available && l.On != nil && !*l.On && l.Brightness != nil && *l.Brightness == 100 &&
				l.Color != nil && m.Detected != nil && *m.Detected && tp.Value != nil && *tp.Value == 22.5
		})
		sink.mu.Lock()
		ld, md, bd := sink.devs[light], sink.devs[motion], sink.devs[battery]
		n := len(sink.devs)
		sink.mu.Unlock()
		wantLight := devices.Device{ID: light, Name: "kitchen_light", Kind: devices.Light, Adapter: "mqtt", Area: "Kitchen",
			Model: "Philips 9290022166", Caps: devices.Caps{Brightness: true, ColorTemp: true, Color: true}}
		if ld != wantLight {
			t.Fatalf("light = %+v, want %+v", ld, wantLight)
		}
		if md.Kind != devices.BinarySensor || md.DeviceClass != "motion" || md.Name != "hall/motion occupancy" {
			t.Fatalf("motion = %+v", md)
		}
		if bd.Unit != "%" || bd.DeviceClass != "battery" {
			t.Fatalf("battery = %+v", bd)
		}
		if n != 4 { // light, occupancy, temperature, battery: no linkquality, no settable config
			t.Fatalf("got %d devices, want 4", n)
		}

		command(t, a, light, devices.Command{On: ptr(true), Brightness: ptr(50)})
		z2m.expect(recvMsg{"zigbee2mqtt/kitchen_light/set", `{"state":"ON","brightness":127}`})
		sink.waitFor(t, "light on at 50%", func(s *recSink) bool {
			st, _ := s.state(light)
			return st.On != nil && *st.On && st.Brightness != nil && *st.Brightness == 50 &&
				st.ColorTemp != nil && *st.ColorTemp == 2703
		})
		command(t, a, light, devices.Command{ColorTemp: ptr(6500)}) // 154 mireds, inside 153-500
		z2m.expect(recvMsg{"zigbee2mqtt/kitchen_light/set", `{"state":"ON","color_temp":154}`})
		command(t, a, light, devices.Command{ColorTemp: ptr(1000)}) // 1000 mireds, clamped to 500
		z2m.expect(recvMsg{"zigbee2mqtt/kitchen_light/set", `{"state":"ON","color_temp":500}`})
		command(t, a, light, devices.Command{On: ptr(false)})
		z2m.expect(recvMsg{"zigbee2mqtt/kitchen_light/set", `{"state":"OFF"}`})
		if err := a.Command(t.Context(), temp, devices.Command{On: ptr(true)}); err == nil {
			t.Fatal("a temperature sensor accepted a command")
		}

		// Availability: plain payloads too.
		z2m.pub("zigbee2mqtt/kitchen_light/availability", true, "offline")
		sink.waitFor(t, "light offline", func(s *recSink) bool { st, _ := s.state(light); return !st.Available })
		z2m.pub("zigbee2mqtt/kitchen_light/availability", true, `{"state":"online"}`)
		sink.waitFor(t, "light online", func(s *recSink) bool { st, _ := s.state(light); return st.Available })
		// The bridge going offline makes every Zigbee device unavailable.
		z2m.pub("zigbee2mqtt/bridge/state", true, `{"state":"offline"}`)
		sink.waitFor(t, "all offline with the bridge", func(s *recSink) bool {
			l, _ := s.state(light)
			m, _ := s.state(motion)
			return !l.Available && !m.Available
		})
		z2m.pub("zigbee2mqtt/bridge/state", true, "online")
		sink.waitFor(t, "bridge back", func(s *recSink) bool { st, _ := s.state(motion); return st.Available })

		z2m.pub("zigbee2mqtt/hall/motion", true, `{"occupancy":false,"temperature":21,"battery":90}`)
		sink.waitFor(t, "motion cleared", func(s *recSink) bool {
			m, _ := s.state(motion)
			tp, _ := s.state(temp)
			return m.Detected != nil && !*m.Detected && tp.Value != nil && *tp.Value == 21
		})

		// Rename keeps the ID (IEEE based) and follows the new topics; removal from the list
		// removes the device.
		renamed := strings.Replace(z2mDeviceList, `"friendly_name":"kitchen_light"`, `"friendly_name":"kitchen_ceiling"`, 1)
		renamed = renamed[:strings.Index(renamed, `,
 {"ieee_address":"0x00158d0000000002"`)] + "\n]"
		z2m.pub("zigbee2mqtt/bridge/devices", true, renamed)
		sink.waitFor(t, "motion sensor removed", func(s *recSink) bool {
			return s.removed[motion] == 1 && s.removed[temp] == 1 && s.removed[battery] == 1 && s.devs[light].ID == light
		})
		z2m.pub("zigbee2mqtt/kitchen_ceiling", true, `{"state":"ON","brightness":254}`)
		sink.waitFor(t, "state on the renamed topic", func(s *recSink) bool {
			st, _ := s.state(light)
			return st.On != nil && *st.On && st.Brightness != nil && *st.Brightness == 100
		})
		command(t, a, light, devices.Command{Brightness: ptr(10)})
		z2m.expect(recvMsg{"zigbee2mqtt/kitchen_ceiling/set", `{"state":"ON","brightness":25}`})
		if got := sink.removed[light]; got != 0 {
			t.Fatalf("light removed %d times on rename", got)
		}
	})
}

func TestZ2MIgnoresItsOwnHADiscovery(t *testing.T) {
	eachBroker(t, func(t *testing.T, env *brokerEnv) {
		dev := newSimDevice(t, env, nil, nil)
		_, sink := startAdapter(t, env, nil)
		dev.pub("homeassistant/light/0x0017880100000001/light/config", true,
			`{"cmd_t":"zigbee2mqtt/kitchen_light/set","stat_t":"zigbee2mqtt/kitchen_light","schema":"json","uniq_id":"0x0017880100000001_light_zigbee2mqtt","o":{"name":"Zigbee2MQTT"}}`)
		dev.pub("homeassistant/switch/plug/config", true, `{"cmd_t":"plug/set","uniq_id":"plug"}`)
		sink.waitFor(t, "the plain HA switch", func(s *recSink) bool { _, ok := s.state("mqtt:ha/plug"); return ok })
		sink.mu.Lock()
		defer sink.mu.Unlock()
		if len(sink.devs) != 1 {
			t.Fatalf("devices = %v, want only the switch (Zigbee2MQTT's HA configs are skipped)", sink.devs)
		}
	})
}
