package main

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hearth-home/hearth/appliance/control"
	"github.com/hearth-home/hearth/devices"
)

// fakeDevices is a server Admin with the device operations.
type fakeDevices struct {
	fakeAdmin
	list []devices.Entry
}

func (f *fakeDevices) ListDevices(context.Context) ([]control.DeviceInfo, error) {
	f.record("devices.list")
	var out []control.DeviceInfo
	for _, e := range f.list {
		raw, _ := json.Marshal(e)
		out = append(out, raw)
	}
	return out, f.err
}

func (f *fakeDevices) ForgetDevice(_ context.Context, id string) error {
	f.record("devices.forget %s", id)
	return f.err
}

func (f *fakeDevices) PairHue(_ context.Context, addr string) (string, error) {
	f.record("devices.pair %s", addr)
	return "10.0.0.9:443", f.err
}

func (h *harness) onlineDevices(t *testing.T, fake *fakeDevices) {
	s, err := control.Serve(t.Context(), control.SocketPath(h.dataDir), fake, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
}

func TestDevicesCommands(t *testing.T) {
	h := newHarness(t)
	on := true
	fake := &fakeDevices{list: []devices.Entry{{
		Device: devices.Device{ID: "mqtt:ha/lamp", Name: "Lamp", Kind: devices.Light, Area: "Kitchen"},
		State:  devices.State{Available: true, On: &on, LastSeen: time.Unix(0, 0)},
	}}}
	h.onlineDevices(t, fake)
	if code := h.run("devices", "list"); code != exitOK {
		t.Fatalf("list: exit %d: %s", code, h.stderr.String())
	}
	out := h.stdout.String()
	if !strings.Contains(out, "mqtt:ha/lamp") || !strings.Contains(out, "Kitchen") || !strings.Contains(out, "yes") {
		t.Fatalf("list output:\n%s", out)
	}
	h.stdout.Reset()
	if code := h.run("devices", "list", "--json"); code != exitOK {
		t.Fatalf("list --json: exit %d", code)
	}
	var e devices.Entry
	if err := json.Unmarshal(h.stdout.Bytes(), &e); err != nil || e.Device.ID != "mqtt:ha/lamp" || e.State.On == nil {
		t.Fatalf("json %q: %v", h.stdout.String(), err)
	}
	if code := h.run("devices", "forget", "mqtt:ha/lamp"); code != exitOK {
		t.Fatalf("forget: exit %d: %s", code, h.stderr.String())
	}
	h.stdout.Reset()
	if code := h.run("devices", "pair-hue", "--address", "10.0.0.9"); code != exitOK {
		t.Fatalf("pair-hue: exit %d: %s", code, h.stderr.String())
	}
	if !strings.Contains(h.stdout.String(), "10.0.0.9:443") {
		t.Fatalf("pair output %q", h.stdout.String())
	}
	want := []string{"devices.list", "devices.list", "devices.forget mqtt:ha/lamp", "devices.pair 10.0.0.9"}
	if !reflect.DeepEqual(fake.calls, want) {
		t.Fatalf("calls %q, want %q", fake.calls, want)
	}
}

func TestDevicesNeedRunningServer(t *testing.T) {
	h := newHarness(t) // no server; the offline store must not be opened either
	if code := h.run("devices", "list"); code != exitFailure {
		t.Fatalf("exit %d", code)
	}
	if !strings.Contains(h.stderr.String(), "running server") {
		t.Fatalf("stderr %q", h.stderr.String())
	}
}

func TestDevicesServerWithoutBridge(t *testing.T) {
	h := newHarness(t)
	h.online(t, &fakeAdmin{}) // an Admin without the device operations
	if code := h.run("devices", "forget", "x"); code != exitFailure {
		t.Fatalf("exit %d", code)
	}
	if !strings.Contains(h.stderr.String(), "no device bridge") {
		t.Fatalf("stderr %q", h.stderr.String())
	}
}
