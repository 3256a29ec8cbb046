package gpio

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"

	"github.com/hearth-home/hearth/devices"
)

// recSink records announcements and every state report, in order.
type recSink struct {
	mu      sync.Mutex
	devs    map[string]devices.Device
	reports map[string][]devices.State
}

func newRecSink() *recSink {
	return &recSink{devs: map[string]devices.Device{}, reports: map[string][]devices.State{}}
}

func (s *recSink) Upsert(d devices.Device) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.devs[d.ID] = d
}

func (s *recSink) Remove(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.devs, id)
}

func (s *recSink) Report(id string, st devices.State) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reports[id] = append(s.reports[id], st)
}

func (s *recSink) history(id string) []devices.State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]devices.State(nil), s.reports[id]...)
}

// detections lists the Detected values reported for id.
func (s *recSink) detections(id string) []bool {
	var out []bool
	for _, st := range s.history(id) {
		if st.Detected != nil {
			out = append(out, *st.Detected)
		}
	}
	return out
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// board is a set of fake pins looked up by name.
type board map[string]*gpiotest.Pin

func (b board) source(name string) (gpio.PinIO, error) {
	p, ok := b[name]
	if !ok {
		return nil, fmt.Errorf("no pin %q", name)
	}
	return p, nil
}

func newBoard(names ...string) board {
	b := board{}
	for i, n := range names {
		b[n] = &gpiotest.Pin{N: n, Num: i, EdgesChan: make(chan gpio.Level, 32)}
	}
	return b
}

// run starts the adapter and stops it when the test ends.
func run(t *testing.T, a *Adapter, sink *recSink) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx, sink) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Run did not stop")
		}
	})
}

func TestSwitchLevels(t *testing.T) {
	b := newBoard("GPIO17", "GPIO27")
	b["GPIO17"].L = gpio.High // whatever the pin was left at
	b["GPIO27"].L = gpio.High
	a, err := New(Config{Switches: []SwitchConfig{
		{Pin: "GPIO17", Name: "Fan", Area: "Office"},
		{Pin: "GPIO27", ID: "pump", Name: "Pump relay", ActiveLow: true},
	}}, b.source, nil)
	if err != nil {
		t.Fatal(err)
	}
	sink := newRecSink()
	run(t, a, sink)
	waitFor(t, "switches announced", func() bool { return len(sink.history("gpio:pump")) > 0 && len(sink.history("gpio:gpio17")) > 0 })

	sink.mu.Lock()
	fan, pump := sink.devs["gpio:gpio17"], sink.devs["gpio:pump"]
	sink.mu.Unlock()
	if fan.Kind != devices.Switch || fan.Name != "Fan" || fan.Area != "Office" || pump.Name != "Pump relay" {
		t.Errorf("devices = %+v, %+v", fan, pump)
	}
	// Started off: low for the plain switch, high for the active-low one.
	if b["GPIO17"].Read() != gpio.Low || b["GPIO27"].Read() != gpio.High {
		t.Errorf("start levels = %s, %s; want Low, High", b["GPIO17"].Read(), b["GPIO27"].Read())
	}

	ctx := context.Background()
	on, off := true, false
	for _, c := range []struct {
		id    string
		on    *bool
		pin   string
		level gpio.Level
	}{
		{"gpio:gpio17", &on, "GPIO17", gpio.High},
		{"gpio:pump", &on, "GPIO27", gpio.Low},
		{"gpio:pump", &off, "GPIO27", gpio.High},
		{"gpio:gpio17", &off, "GPIO17", gpio.Low},
	} {
		if err := a.Command(ctx, c.id, devices.Command{On: c.on}); err != nil {
			t.Fatalf("Command(%s, %v): %v", c.id, *c.on, err)
		}
		if got := b[c.pin].Read(); got != c.level {
			t.Errorf("after %s on=%v: pin %s = %s, want %s", c.id, *c.on, c.pin, got, c.level)
		}
		h := sink.history(c.id)
		if last := h[len(h)-1]; last.On == nil || *last.On != *c.on || !last.Available {
			t.Errorf("after %s on=%v: reported %+v", c.id, *c.on, last)
		}
	}

	fifty := 50
	if err := a.Command(ctx, "gpio:pump", devices.Command{Brightness: &fifty}); !errors.Is(err, ErrInvalidCommand) {
		t.Errorf("brightness on a switch: %v", err)
	}
	if err := a.Command(ctx, "gpio:nope", devices.Command{On: &on}); !errors.Is(err, ErrUnknownDevice) {
		t.Errorf("unknown switch: %v", err)
	}
}

func TestSensorDebounce(t *testing.T) {
	b := newBoard("GPIO22")
	a, err := New(Config{Sensors: []SensorConfig{{
		Pin: "GPIO22", ID: "front_door", Name: "Front door", Area: "Hall", DeviceClass: "door",
		Pull: "up", ActiveLow: true, Debounce: 30 * time.Millisecond,
	}}}, b.source, nil)
	if err != nil {
		t.Fatal(err)
	}
	sink := newRecSink()
	run(t, a, sink)
	const id = "gpio:front_door"
	waitFor(t, "initial report", func() bool { return len(sink.detections(id)) == 1 })
	p := b["GPIO22"]
	if p.Pull() != gpio.PullUp {
		t.Errorf("pull = %s, want PullUp", p.Pull())
	}
	sink.mu.Lock()
	d := sink.devs[id]
	sink.mu.Unlock()
	if d.Kind != devices.BinarySensor || d.DeviceClass != "door" || d.Area != "Hall" {
		t.Errorf("device = %+v", d)
	}
	// Pulled up and active low: closed contact (high) is "not detected".
	if got := sink.detections(id); got[0] {
		t.Fatalf("initial detections = %v, want [false]", got)
	}

	// The door opens: the contact bounces, then settles low.
	for _, l := range []gpio.Level{gpio.Low, gpio.High, gpio.Low, gpio.High, gpio.Low} {
		p.EdgesChan <- l
	}
	waitFor(t, "door open", func() bool { return len(sink.detections(id)) >= 2 })
	time.Sleep(150 * time.Millisecond) // several debounce periods: no stray reports follow
	if got := sink.detections(id); len(got) != 2 || !got[1] {
		t.Fatalf("detections after a bouncing open = %v, want [false true]", got)
	}

	// A glitch that bounces back to where it was is no change at all.
	p.EdgesChan <- gpio.High
	p.EdgesChan <- gpio.Low
	time.Sleep(150 * time.Millisecond)
	if got := sink.detections(id); len(got) != 2 {
		t.Fatalf("detections after a glitch = %v, want no new report", got)
	}

	// The door closes.
	p.EdgesChan <- gpio.High
	p.EdgesChan <- gpio.Low
	p.EdgesChan <- gpio.High
	waitFor(t, "door closed", func() bool { return len(sink.detections(id)) >= 3 })
	time.Sleep(150 * time.Millisecond)
	if got := sink.detections(id); len(got) != 3 || got[2] {
		t.Fatalf("detections = %v, want [false true false]", got)
	}
}

func TestSensorRisingEdgeOnly(t *testing.T) {
	b := newBoard("GPIO5")
	a, err := New(Config{Sensors: []SensorConfig{{
		Pin: "GPIO5", Name: "Doorbell", Pull: "down", Edge: "rising", Debounce: 10 * time.Millisecond,
	}}}, b.source, nil)
	if err != nil {
		t.Fatal(err)
	}
	sink := newRecSink()
	run(t, a, sink)
	const id = "gpio:gpio5"
	waitFor(t, "initial report", func() bool { return len(sink.detections(id)) == 1 })
	if b["GPIO5"].Pull() != gpio.PullDown {
		t.Errorf("pull = %s, want PullDown", b["GPIO5"].Pull())
	}
	p := b["GPIO5"]
	p.EdgesChan <- gpio.High // pressed: reported
	waitFor(t, "press", func() bool { return len(sink.detections(id)) == 2 })
	p.EdgesChan <- gpio.Low // released: tracked, not reported
	time.Sleep(80 * time.Millisecond)
	if got := sink.detections(id); len(got) != 2 {
		t.Fatalf("release was reported: %v", got)
	}
	p.EdgesChan <- gpio.High // pressed again: reported again
	waitFor(t, "second press", func() bool { return len(sink.detections(id)) == 3 })
	if got := sink.detections(id); got[0] || !got[1] || !got[2] {
		t.Errorf("detections = %v, want [false true true]", got)
	}
}

func TestSensorIsNotCommandable(t *testing.T) {
	b := newBoard("GPIO6")
	a, err := New(Config{Sensors: []SensorConfig{{Pin: "GPIO6"}}}, b.source, nil)
	if err != nil {
		t.Fatal(err)
	}
	on := true
	if err := a.Command(context.Background(), "gpio:gpio6", devices.Command{On: &on}); !errors.Is(err, ErrInvalidCommand) {
		t.Errorf("Command on a sensor = %v, want ErrInvalidCommand", err)
	}
}

func TestConfigErrors(t *testing.T) {
	b := newBoard("GPIO1", "GPIO2")
	for name, cfg := range map[string]Config{
		"bad pull":     {Sensors: []SensorConfig{{Pin: "GPIO1", Pull: "sideways"}}},
		"bad edge":     {Sensors: []SensorConfig{{Pin: "GPIO1", Edge: "up"}}},
		"neg debounce": {Sensors: []SensorConfig{{Pin: "GPIO1", Debounce: -time.Second}}},
		"dup pin":      {Switches: []SwitchConfig{{Pin: "GPIO1"}}, Sensors: []SensorConfig{{Pin: "GPIO1", ID: "x"}}},
		"dup id":       {Switches: []SwitchConfig{{Pin: "GPIO1", ID: "a"}, {Pin: "GPIO2", ID: "a"}}},
		"no pin name":  {Switches: []SwitchConfig{{ID: "a"}}},
		"colon in id":  {Switches: []SwitchConfig{{Pin: "GPIO1", ID: "a:b"}}},
	} {
		if _, err := New(cfg, b.source, nil); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: New = %v, want ErrConfig", name, err)
		}
	}
	if _, err := New(Config{Switches: []SwitchConfig{{Pin: "GPIO99"}}}, b.source, nil); err == nil {
		t.Error("missing pin accepted")
	}
}

func TestHostPinsUnknownPin(t *testing.T) {
	// Whatever board this runs on, it has no pin by this name: the lookup must say so.
	if _, err := HostPins()("NO_SUCH_PIN_42"); err == nil {
		t.Error("HostPins found a pin that does not exist")
	}
}
