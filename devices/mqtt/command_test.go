package mqtt

import (
	"strings"
	"testing"
	"time"

	"github.com/hearth-home/hearth/devices"
)

// entityFrom builds an entity from a single-component discovery payload, as the adapter does.
func entityFrom(t *testing.T, component, payload string) entity {
	t.Helper()
	a, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	ents, err := a.parseDiscovery(component+"/obj/config", []byte(payload))
	if err != nil {
		t.Fatalf("parseDiscovery: %v", err)
	}
	if len(ents) != 1 {
		t.Fatalf("got %d entities", len(ents))
	}
	return ents[0]
}

func pubsText(ps []publish) string {
	var b strings.Builder
	for _, p := range ps {
		b.WriteString(p.topic + "=" + string(p.payload) + ";")
	}
	return b.String()
}

func TestHALightCommands(t *testing.T) {
	const base = `"cmd_t":"l/set","stat_t":"l/state","bri_cmd_t":"l/bri","clr_temp_cmd_t":"l/ct","rgb_cmd_t":"l/rgb"`
	tests := []struct {
		name, cfg string
		cmd       devices.Command
		want      string
	}{
		{"last (default)", `{` + base + `}`, devices.Command{On: ptr(true), Brightness: ptr(50)}, "l/bri=128;l/set=ON;"},
		{"first", `{` + base + `,"on_cmd_type":"first"}`, devices.Command{Brightness: ptr(50)}, "l/set=ON;l/bri=128;"},
		{"brightness with level", `{` + base + `,"on_cmd_type":"brightness"}`, devices.Command{Brightness: ptr(50)}, "l/bri=128;"},
		{"brightness plain on", `{` + base + `,"on_cmd_type":"brightness"}`, devices.Command{On: ptr(true)}, "l/bri=255;"},
		{"scale 100", `{` + base + `,"bri_scl":100}`, devices.Command{Brightness: ptr(33)}, "l/bri=33;l/set=ON;"},
		{"off", `{` + base + `}`, devices.Command{On: ptr(false), Brightness: ptr(50)}, "l/set=OFF;"},
		{"brightness 0 is off", `{` + base + `}`, devices.Command{Brightness: ptr(0)}, "l/set=OFF;"},
		{"custom payloads", `{` + base + `,"pl_on":"1","pl_off":"0"}`, devices.Command{On: ptr(true)}, "l/set=1;"},
		{"command template", `{` + base + `,"cmd_tpl":"{\"s\":\"{{ value }}\"}","bri_cmd_tpl":"{{ (value / 2.55) | round | int }}"}`,
			devices.Command{Brightness: ptr(50)}, `l/bri=50;l/set={"s":"ON"};`},
		{"mireds", `{` + base + `}`, devices.Command{ColorTemp: ptr(2000)}, "l/ct=500;l/set=ON;"},
		{"kelvin", `{` + base + `,"clr_temp_k":true}`, devices.Command{ColorTemp: ptr(2700)}, "l/ct=2700;l/set=ON;"},
		{"rgb", `{` + base + `}`, devices.Command{Color: &devices.Color{R: 1, G: 2, B: 3}}, "l/rgb=1,2,3;l/set=ON;"},
		{"hs", `{"cmd_t":"l/set","hs_cmd_t":"l/hs"}`, devices.Command{Color: &devices.Color{R: 255}}, "l/hs=0,100;l/set=ON;"},
		{"xy", `{"cmd_t":"l/set","xy_cmd_t":"l/xy"}`, devices.Command{Color: &devices.Color{R: 255, G: 255, B: 255}}, "l/xy=0.3127,0.329;l/set=ON;"},
		{"json on 50%", `{"schema":"json","cmd_t":"j/set","brightness":true}`, devices.Command{On: ptr(true), Brightness: ptr(50)}, `j/set={"state":"ON","brightness":128};`},
		{"json kelvin", `{"schema":"json","cmd_t":"j/set","sup_clrm":["color_temp"],"clr_temp_k":true}`, devices.Command{ColorTemp: ptr(3000)}, `j/set={"state":"ON","color_temp":3000};`},
		{"json hs", `{"schema":"json","cmd_t":"j/set","sup_clrm":["hs"]}`, devices.Command{Color: &devices.Color{G: 255}}, `j/set={"state":"ON","color":{"h":120,"s":100}};`},
		{"json xy", `{"schema":"json","cmd_t":"j/set","sup_clrm":["xy"]}`, devices.Command{Color: &devices.Color{R: 255}}, `j/set={"state":"ON","color":{"x":0.6401,"y":0.33}};`},
		{"json off", `{"schema":"json","cmd_t":"j/set"}`, devices.Command{On: ptr(false)}, `j/set={"state":"OFF"};`},
	}
	for _, tc := range tests {
		e := entityFrom(t, "light", tc.cfg)
		ps, err := e.command(tc.cmd)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if got := pubsText(ps); got != tc.want {
			t.Errorf("%s: published %s, want %s", tc.name, got, tc.want)
		}
	}
}

func TestHACommandErrors(t *testing.T) {
	onoff := entityFrom(t, "light", `{"cmd_t":"l/set"}`)
	for _, c := range []devices.Command{
		{Brightness: ptr(50)}, {ColorTemp: ptr(3000)}, {Color: &devices.Color{}}, {}, {Action: "takeoff"},
		{Brightness: ptr(150)},
	} {
		if _, err := onoff.command(c); err == nil {
			t.Errorf("on/off light accepted %+v", c)
		}
	}
	sensor := entityFrom(t, "sensor", `{"stat_t":"s"}`)
	if _, err := sensor.command(devices.Command{On: ptr(true)}); err == nil {
		t.Error("sensor accepted a command")
	}
	a, _ := New(Config{})
	for _, bad := range []struct{ topic, payload string }{
		{"light/x/config", `{"stat_t":"x"}`},                          // no command topic
		{"sensor/x/config", `{"name":"x"}`},                           // no state topic
		{"sensor/x/config", `{"stat_t":"x","val_tpl":"{% if %}"}`},    // template not supported
		{"light/x/config", `{"cmd_t":"x","on_cmd_type":"sometimes"}`}, // bad option
		{"switch/x/config", `{"cmd_t":"x","avty_mode":"most"}`},       // bad availability mode
		{"light/x/config", `[1,2]`},                                   // not an object
		{"light/a/b/c/config", `{"cmd_t":"x"}`},                       // bad topic shape
		{"device/x/config", `{"dev":{"ids":"x"}}`},                    // no cmps
		{"light/x/config", `{"cmd_t":"x","schema":"template"}`},       // unsupported schema
		{"cover/x/config", `{"cmd_t":"x"}`},                           // unsupported component
		{"switch/x/config", `{"cmd_t":"x","pl_on":{"a":1}}`},          // payload must be a scalar
	} {
		if ents, err := a.parseDiscovery(bad.topic, []byte(bad.payload)); err == nil {
			t.Errorf("parseDiscovery(%s, %s) accepted: %d entities", bad.topic, bad.payload, len(ents))
		}
	}
}

func TestHAStateHandling(t *testing.T) {
	l := entityFrom(t, "light", `{"cmd_t":"l/set","stat_t":"l/json","stat_val_tpl":"{{ value_json.state }}",
		"bri_stat_t":"l/json","bri_val_tpl":"{{ value_json.bri }}","bri_cmd_t":"l/bri","bri_scl":100,
		"clr_temp_stat_t":"l/ct","rgb_stat_t":"l/rgb","rgb_cmd_t":"l/rgb/set","clr_temp_cmd_t":"l/ct/set",
		"avty":[{"t":"a1"},{"t":"a2","pl_avail":"yes","pl_not_avail":"no"}],"avty_mode":"all"}`)
	var st devices.State
	if !l.handle("l/json", []byte(`{"state":"ON","bri":40}`), &st) || !*st.On || *st.Brightness != 40 {
		t.Fatalf("state after shared JSON topic: %s", fmtState(st))
	}
	if l.handle("l/json", []byte(`{"state":"ON","bri":40}`), &st) {
		t.Error("an unchanged state reported a change")
	}
	l.handle("l/ct", []byte("153"), &st)
	l.handle("l/rgb", []byte("255,128,0"), &st)
	if *st.ColorTemp != 6536 || *st.Color != (devices.Color{R: 255, G: 128}) {
		t.Fatalf("ct/rgb: %s", fmtState(st))
	}
	l.handle("l/json", []byte(`{"state":"garbage"}`), &st) // template fails: ignored
	if !*st.On {
		t.Fatal("an unusable state changed the light")
	}
	// availability_mode all: both topics must say available.
	if l.available() {
		t.Fatal("available before any availability message")
	}
	l.handle("a1", []byte("online"), &st)
	if l.available() {
		t.Fatal("available with one of two topics")
	}
	l.handle("a2", []byte("yes"), &st)
	if !l.available() {
		t.Fatal("not available with both topics up")
	}
	l.handle("a1", []byte("offline"), &st)
	if l.available() {
		t.Fatal("available with one topic down in mode all")
	}

	bs := entityFrom(t, "binary_sensor", `{"stat_t":"m","pl_on":"1","pl_off":"0","off_dly":2,"dev_cla":"motion"}`).(*haBinarySensor)
	if bs.offDelay() != 2*time.Second || bs.device().DeviceClass != "motion" {
		t.Fatalf("binary sensor: delay %v dev %+v", bs.offDelay(), bs.device())
	}
	st = devices.State{}
	bs.handle("m", []byte("1"), &st)
	if !*st.Detected {
		t.Fatal("1 is not detected")
	}
	bs.handle("m", []byte("0"), &st)
	if *st.Detected {
		t.Fatal("0 is detected")
	}

	sw := entityFrom(t, "switch", `{"cmd_t":"s/set","stat_t":"s","stat_on":"running","stat_off":"stopped","val_tpl":"{{ value_json.st }}"}`)
	st = devices.State{}
	sw.handle("s", []byte(`{"st":"running"}`), &st)
	if st.On == nil || !*st.On {
		t.Fatal("switch state_on not understood")
	}

	se := entityFrom(t, "sensor", `{"stat_t":"p","val_tpl":"{{ value_json.power / 10 }}","unit_of_meas":"W"}`)
	st = devices.State{}
	se.handle("p", []byte(`{"power": 1234}`), &st)
	if st.Value == nil || *st.Value != 123.4 {
		t.Fatalf("sensor value: %s", fmtState(st))
	}
	se.handle("p", []byte(`{"other": 1}`), &st) // undefined: keep the last good value
	if *st.Value != 123.4 {
		t.Fatal("a failed template replaced the value")
	}
}

func TestOffDelayResetsDetection(t *testing.T) {
	sink := newRecSink()
	r := newRegistry(testLogger(t), sink, func([]string) {}, func([]string) {})
	r.setConnected(true)
	e := entityFrom(t, "binary_sensor", `{"stat_t":"m","off_dly":0.2,"uniq_id":"pir"}`)
	r.put("ha:x", []entity{e})
	r.dispatch("m", []byte("ON"))
	sink.waitFor(t, "detected", func(s *recSink) bool {
		st, _ := s.state("mqtt:ha/pir")
		return st.Detected != nil && *st.Detected
	})
	start := time.Now()
	sink.waitFor(t, "reset by off_delay", func(s *recSink) bool {
		st, _ := s.state("mqtt:ha/pir")
		return st.Detected != nil && !*st.Detected
	})
	if time.Since(start) < 100*time.Millisecond {
		t.Fatal("off_delay fired early")
	}
	r.close()
}

func TestNaming(t *testing.T) {
	for _, tc := range []struct{ cfg, want string }{
		{`{"cmd_t":"x","name":"Lamp"}`, "Lamp"},
		{`{"cmd_t":"x","name":"Lamp","dev":{"name":"Hall"}}`, "Hall Lamp"},
		{`{"cmd_t":"x","name":null,"dev":{"name":"Hall"}}`, "Hall"},
		{`{"cmd_t":"x","dev":{"name":"Hall"}}`, "Hall"},
		{`{"cmd_t":"x"}`, "obj"},
	} {
		if got := entityFrom(t, "switch", tc.cfg).device().Name; got != tc.want {
			t.Errorf("%s: name %q, want %q", tc.cfg, got, tc.want)
		}
	}
	// Without unique_id the ID comes from the discovery path.
	if id := entityFrom(t, "switch", `{"cmd_t":"x"}`).device().ID; id != "mqtt:ha/switch/obj" {
		t.Errorf("ID without unique_id: %s", id)
	}
}

func TestConversions(t *testing.T) {
	for _, tc := range []struct {
		p     int
		scale float64
		want  int
	}{{50, 255, 128}, {50, 254, 127}, {100, 254, 254}, {0, 255, 0}, {1, 255, 3}, {10, 254, 25}, {150, 255, 255}} {
		if got := percentToScale(tc.p, tc.scale); got != tc.want {
			t.Errorf("percentToScale(%d, %v) = %d, want %d", tc.p, tc.scale, got, tc.want)
		}
	}
	if scaleToPercent(127, 254) != 50 || scaleToPercent(128, 255) != 50 || scaleToPercent(300, 255) != 100 {
		t.Error("scaleToPercent")
	}
	if kelvinToMireds(2700) != 370 || miredsToKelvin(370) != 2703 || kelvinToMireds(6500) != 154 || kelvinToMireds(0) != 0 {
		t.Error("kelvin/mireds")
	}
	for _, c := range []devices.Color{{R: 255}, {G: 255}, {B: 255}, {R: 255, G: 255, B: 255}, {R: 255, G: 128}} {
		x, y := rgbToXY(c)
		back := xyToRGB(x, y)
		if d := absDiff(back.R, c.R) + absDiff(back.G, c.G) + absDiff(back.B, c.B); d > 6 {
			t.Errorf("rgb %v -> xy (%v,%v) -> %v", c, x, y, back)
		}
		h, s := rgbToHS(c)
		if back := hsToRGB(h, s); absDiff(back.R, c.R)+absDiff(back.G, c.G)+absDiff(back.B, c.B) > 3 {
			t.Errorf("rgb %v -> hs (%v,%v) -> %v", c, h, s, back)
		}
	}
}

func absDiff(a, b uint8) int {
	if a > b {
		return int(a - b)
	}
	return int(b - a)
}

func TestZ2MArea(t *testing.T) {
	for in, want := range map[string]string{
		"area: Kitchen": "Kitchen", "Bulb above the sink\nRoom = Living room": "Living room",
		"just a note": "", "": "", "Area:Hall ": "Hall",
	} {
		if got := z2mArea(in); got != want {
			t.Errorf("z2mArea(%q) = %q, want %q", in, got, want)
		}
	}
}
