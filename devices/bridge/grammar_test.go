package bridge

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/hearth-home/hearth/devices"
)

func ptr[T any](v T) *T { return &v }

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Request
		err  string // substring; "-" means ErrNotCommand
	}{
		{in: "!light kitchen on", want: Request{Words: []string{"kitchen"}, Kind: devices.Light, Hints: []string{"light"}, Cmd: devices.Command{On: ptr(true)}, Explicit: true}},
		{in: "kitchen light 50%", want: Request{Words: []string{"kitchen"}, Kind: devices.Light, Hints: []string{"light"}, Cmd: devices.Command{Brightness: ptr(50)}}},
		{in: "Turn OFF all lights", want: Request{Kind: devices.Light, Hints: []string{"lights"}, Plural: true, All: true, Cmd: devices.Command{On: ptr(false)}}},
		{in: "set kitchen light to 2700K", want: Request{Words: []string{"kitchen"}, Kind: devices.Light, Hints: []string{"light"}, Cmd: devices.Command{ColorTemp: ptr(2700)}}},
		{in: "set kitchen light colour temperature to 30", want: Request{Words: []string{"kitchen"}, Kind: devices.Light, Hints: []string{"light"}, Cmd: devices.Command{Brightness: ptr(30)}}},
		{in: "switch off the hall lamp", want: Request{Words: []string{"hall"}, Kind: devices.Light, Hints: []string{"lamp"}, Cmd: devices.Command{On: ptr(false)}}},
		{in: "hall lamp #ff8000", want: Request{Words: []string{"hall"}, Kind: devices.Light, Hints: []string{"lamp"}, Cmd: devices.Command{Color: &devices.Color{R: 255, G: 128}}}},
		{in: "desk lamp red", want: Request{Words: []string{"desk"}, Kind: devices.Light, Hints: []string{"lamp"}, Cmd: devices.Command{Color: &devices.Color{R: 255}}}},
		{in: "drone take off", want: Request{Kind: devices.Drone, Hints: []string{"drone"}, Cmd: devices.Command{Action: "takeoff"}}},
		{in: "!drone up 50", want: Request{Kind: devices.Drone, Hints: []string{"drone"}, Cmd: devices.Command{Action: "up", Amount: 50}, Explicit: true}},
		{in: "coffee plug on", want: Request{Words: []string{"coffee"}, Kind: devices.Switch, Hints: []string{"plug"}, Cmd: devices.Command{On: ptr(true)}}},
		{in: "status", want: Request{Status: true}},
		{in: "STATUS kitchen", want: Request{Status: true, Words: []string{"kitchen"}}},
		{in: "help", want: Request{Help: true}},
		{in: "confirm", want: Request{Confirm: true}},
		{in: "good morning everyone", err: "-"},
		{in: "", err: "-"},
		{in: "!kitchen light", err: "did not find what to do"},
		{in: "kitchen light 150%", err: "out of range"},
		{in: "kitchen light 99999k", err: "out of range"},
		{in: "set lamp to 500", err: "neither"},
		{in: "lamp #zzzzzz", err: "not a colour"},
		{in: "lamp on " + strings.Repeat("x", 400), err: "-"},
		{in: "!lamp on " + strings.Repeat("x", 400), err: "at most"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := Parse(tc.in)
			switch {
			case tc.err == "-":
				if !errors.Is(err, ErrNotCommand) {
					t.Fatalf("want ErrNotCommand, got %+v, %v", got, err)
				}
				return
			case tc.err != "":
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("want error %q, got %+v, %v", tc.err, got, err)
				}
				return
			case err != nil:
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func house() []devices.Entry {
	mk := func(id, name, area string, kind devices.Kind, caps devices.Caps) devices.Entry {
		return devices.Entry{Device: devices.Device{ID: id, Name: name, Area: area, Kind: kind, Caps: caps}}
	}
	full := devices.Caps{Brightness: true, ColorTemp: true, Color: true}
	return []devices.Entry{
		mk("z2m:0x01", "Kitchen ceiling", "Kitchen", devices.Light, full),
		mk("z2m:0x02", "Kitchen strip", "Kitchen", devices.Light, devices.Caps{Brightness: true}),
		mk("hue:7", "Sofa lamp", "Living room", devices.Light, full),
		mk("gpio:relay1", "Coffee machine", "Kitchen", devices.Switch, devices.Caps{}),
		mk("mqtt:ha/t1", "Kitchen temperature", "Kitchen", devices.Sensor, devices.Caps{}),
		mk("tello:1", "Tello", "", devices.Drone, devices.Caps{}),
	}
}

func ids(es []devices.Entry) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.Device.ID)
	}
	return out
}

func TestResolve(t *testing.T) {
	for _, tc := range []struct {
		in, area string
		want     []string
		err      string
	}{
		{in: "kitchen ceiling on", want: []string{"z2m:0x01"}},
		{in: "kitchn celing on", want: []string{"z2m:0x01"}}, // one typo per word
		{in: "KIT CEIL 20%", want: []string{"z2m:0x01"}},     // prefixes
		{in: "sofa 2700k", want: []string{"hue:7"}},
		{in: "kitchen light 50%", err: "could be Kitchen ceiling, Kitchen strip"},
		{in: "turn off all kitchen lights", want: []string{"z2m:0x01", "z2m:0x02"}},
		{in: "turn off all lights", want: []string{"z2m:0x01", "z2m:0x02", "hue:7"}},
		{in: "all kitchen lights 2700K", want: []string{"z2m:0x01"}}, // only the one with colour temperature
		{in: "strip red", err: "cannot change colour"},
		{in: "coffee 50%", err: "only turns on and off"},
		{in: "kitchen temperature on", err: "is a sensor"},
		{in: "drone takeoff", want: []string{"tello:1"}},
		{in: "garage light on", err: "no device matches"},
		{in: "coffee on", want: []string{"gpio:relay1"}},
		{in: "lamp on", want: []string{"hue:7"}}, // "lamp" is a kind word and a name word
	} {
		t.Run(tc.in, func(t *testing.T) {
			req, err := Parse(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			got, err := resolve(req, house(), tc.area)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("want error %q, got %v %v", tc.err, ids(got), err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(ids(got), tc.want) {
				t.Fatalf("got %v, want %v", ids(got), tc.want)
			}
		})
	}
}

func TestPuppetLocalpart(t *testing.T) {
	for in, want := range map[string]string{
		"z2m:0x01":         "_hearth_z2m=3a0x01",
		"mqtt:ha/Kitchen":  "_hearth_mqtt=3aha=2f=4bitchen",
		"hue:scene:ab-cd.": "_hearth_hue=3ascene=3aab-cd.",
	} {
		if got := PuppetLocalpart(in); got != want {
			t.Errorf("%s: got %s, want %s", in, got, want)
		}
	}
}
