package drone

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hearth-home/hearth/devices"
)

// fakeTello answers the SDK 2.0 text protocol on a loopback UDP port: it ignores everything
// until "command" puts it in SDK mode, answers "ok" or "error ..." to controls and values to
// queries, and then streams state datagrams to the state address.
type fakeTello struct {
	t     *testing.T
	pc    net.PacketConn
	state string // where state datagrams go

	mu       sync.Mutex
	got      []string
	sdk      bool
	flying   bool
	height   int
	silent   map[string]int           // line -> how many times to ignore it
	delay    map[string]time.Duration // line -> answer delay
	battery  int
	stopSend chan struct{}
}

func newFakeTello(t *testing.T, stateAddr string) *fakeTello {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeTello{t: t, pc: pc, state: stateAddr, silent: map[string]int{}, delay: map[string]time.Duration{},
		battery: 87, stopSend: make(chan struct{})}
	go f.serve()
	t.Cleanup(func() {
		close(f.stopSend)
		pc.Close()
	})
	return f
}

func (f *fakeTello) addr() string { return f.pc.LocalAddr().String() }

func (f *fakeTello) received() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.got...)
}

func (f *fakeTello) serve() {
	buf := make([]byte, 1500)
	for {
		n, from, err := f.pc.ReadFrom(buf)
		if err != nil {
			return
		}
		line := string(buf[:n])
		f.mu.Lock()
		f.got = append(f.got, line)
		if f.silent[line] > 0 {
			f.silent[line]--
			f.mu.Unlock()
			continue
		}
		delay := f.delay[line]
		reply, startState := f.answer(line)
		f.mu.Unlock()
		if startState {
			go f.sendState()
		}
		if reply == "" {
			continue
		}
		go func() {
			time.Sleep(delay)
			_, _ = f.pc.WriteTo([]byte(reply+"\r\n"), from)
		}()
	}
}

// answer decides the reply to one line; f.mu is held.
func (f *fakeTello) answer(line string) (reply string, startState bool) {
	if line == "command" {
		start := !f.sdk
		f.sdk = true
		return "ok", start
	}
	if !f.sdk {
		return "", false // not in SDK mode: the drone does not answer
	}
	verb, arg, _ := strings.Cut(line, " ")
	switch verb {
	case "battery?":
		return fmt.Sprint(f.battery), false
	case "speed?":
		return "10.0", false
	case "time?":
		return "12s", false
	case "takeoff":
		f.flying, f.height = true, 80
		return "ok", false
	case "land":
		f.flying, f.height = false, 0
		return "ok", false
	case "emergency":
		f.flying, f.height = false, 0
		return "ok", false
	case "up", "down", "left", "right", "forward", "back", "cw", "ccw", "stop":
		if !f.flying {
			return "error Motor stop", false
		}
		if verb == "up" {
			var d int
			_, _ = fmt.Sscan(arg, &d)
			f.height += d
		}
		return "ok", false
	case "speed":
		return "ok", false
	}
	return "error", false
}

// sendState streams state datagrams every 10 ms, as the drone does after "command".
func (f *fakeTello) sendState() {
	conn, err := net.Dial("udp", f.state)
	if err != nil {
		f.t.Errorf("fake tello: state socket: %v", err)
		return
	}
	defer conn.Close()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-f.stopSend:
			return
		case <-tick.C:
		}
		f.mu.Lock()
		pkt := fmt.Sprintf("mid:-1;x:0;y:0;z:0;mpry:0,0,0;pitch:1;roll:-2;yaw:30;vgx:0;vgy:0;vgz:0;templ:60;temph:63;tof:%d;h:%d;bat:%d;baro:188.25;time:%d;agx:-3.00;agy:1.00;agz:-999.00;\r\n",
			f.height+10, f.height, f.battery, 0)
		f.mu.Unlock()
		_, _ = conn.Write([]byte(pkt))
	}
}

// freeUDP returns a loopback address with a port that was free a moment ago.
func freeUDP(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	pc.Close()
	return addr
}

// recSink keeps the last state and every Readings report.
type recSink struct {
	mu       sync.Mutex
	dev      devices.Device
	last     devices.State
	readings map[string]float64
}

func (s *recSink) Upsert(d devices.Device) { s.mu.Lock(); s.dev = d; s.mu.Unlock() }
func (s *recSink) Remove(string)           {}
func (s *recSink) Report(_ string, st devices.State) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.last = st
	if s.readings == nil {
		s.readings = map[string]float64{}
	}
	for k, v := range st.Readings {
		s.readings[k] = v
	}
}

func (s *recSink) snapshot() (devices.State, map[string]float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := map[string]float64{}
	for k, v := range s.readings {
		r[k] = v
	}
	return s.last, r
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

// start runs an adapter against a fresh fake drone.
func start(t *testing.T, tweak func(*Config)) (*Adapter, *fakeTello, *recSink) {
	t.Helper()
	stateAddr := freeUDP(t)
	f := newFakeTello(t, stateAddr)
	cfg := Config{ID: "tello", Name: "Garden drone", Area: "Garden", Addr: f.addr(), LocalAddr: "127.0.0.1:0", StateAddr: stateAddr,
		CommandTimeout: 300 * time.Millisecond, QueryTimeout: 100 * time.Millisecond, KeepAlive: time.Hour, ReportEvery: time.Millisecond}
	if tweak != nil {
		tweak(&cfg)
	}
	a, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	sink := &recSink{}
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
	waitFor(t, "SDK mode and state", func() bool {
		st, r := sink.snapshot()
		return st.Available && r["h"] == 0 && r["bat"] == 87 && r["yaw"] == 30
	})
	// Let the first link check (command, battery?) finish, so tests see a fixed order: the
	// check holds the in-flight lock from sending battery? until its answer.
	waitFor(t, "first link check", func() bool {
		r := f.received()
		return len(r) >= 2 && r[1] == "battery?"
	})
	a.inflight.Lock()
	a.inflight.Unlock() //nolint:staticcheck // an empty critical section is the point: wait for the holder
	return a, f, sink
}

func TestSessionSequence(t *testing.T) {
	a, f, sink := start(t, nil)
	ctx := context.Background()
	sink.mu.Lock()
	dev := sink.dev
	sink.mu.Unlock()
	if dev.ID != "tello:tello" || dev.Kind != devices.Drone || dev.Name != "Garden drone" || dev.Area != "Garden" {
		t.Errorf("device = %+v", dev)
	}

	// Before takeoff, a move is refused by the drone.
	if err := a.Command(ctx, "tello:tello", devices.Command{Action: "up", Amount: 50}); !errors.Is(err, ErrRefused) {
		t.Errorf("up on the ground = %v, want ErrRefused", err)
	}
	// Takeoff must be confirmed.
	err := a.Command(ctx, "tello:tello", devices.Command{Action: "takeoff"})
	var ce *ConfirmError
	if !errors.Is(err, ErrNeedsConfirm) || !errors.As(err, &ce) || !strings.Contains(ce.ConfirmPrompt(), "confirm") {
		t.Fatalf("unconfirmed takeoff = %v, want a ConfirmError asking to confirm", err)
	}
	var prompter interface{ ConfirmPrompt() string }
	if !errors.As(err, &prompter) {
		t.Error("ConfirmError does not satisfy the adapter-neutral prompt interface")
	}
	for _, line := range f.received() {
		if line == "takeoff" {
			t.Fatal("takeoff was sent without confirmation")
		}
	}
	for _, c := range []devices.Command{
		Confirm(devices.Command{Action: "takeoff"}),
		{Action: "up", Amount: 40},
		{Action: "cw", Amount: 90},
		{Action: "forward"}, // default step
		{Action: "land"},
	} {
		if err := a.Command(ctx, "tello:tello", c); err != nil {
			t.Fatalf("Command(%+v): %v", c, err)
		}
	}
	if err := a.Command(ctx, "tello:tello", devices.Command{Action: "battery"}); err != nil {
		t.Fatalf("battery: %v", err)
	}
	if err := a.Command(ctx, "tello:tello", devices.Command{Action: "speed"}); err != nil {
		t.Fatalf("speed?: %v", err)
	}
	if err := a.Command(ctx, "tello:tello", devices.Command{Action: "time"}); err != nil {
		t.Fatalf("time?: %v", err)
	}
	got := f.received()
	want := []string{"command", "battery?", "up 50", "takeoff", "up 40", "cw 90", "forward 50", "land", "battery?", "speed?", "time?"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("drone received %q\nwant %q", got, want)
	}
	_, r := sink.snapshot()
	if r["speed"] != 10 || r["flight_time"] != 12 || r["bat"] != 87 {
		t.Errorf("query readings = %v", r)
	}
}

func TestStateReadings(t *testing.T) {
	a, f, sink := start(t, nil)
	if err := a.Command(context.Background(), "tello:tello", Confirm(devices.Command{Action: "takeoff"})); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	f.battery = 64
	f.mu.Unlock()
	waitFor(t, "height and battery", func() bool {
		_, r := sink.snapshot()
		return r["h"] == 80 && r["tof"] == 90 && r["bat"] == 64
	})
	_, r := sink.snapshot()
	if r["pitch"] != 1 || r["roll"] != -2 || r["baro"] != 188.25 || r["agz"] != -999 {
		t.Errorf("readings = %v", r)
	}
	if _, ok := r["mpry"]; ok {
		t.Error("non-numeric mpry became a reading")
	}
}

func TestTimeouts(t *testing.T) {
	a, f, _ := start(t, nil)
	ctx := context.Background()

	// A query whose first answer is lost is asked once more.
	f.mu.Lock()
	f.silent["speed?"] = 1
	f.mu.Unlock()
	if err := a.Command(ctx, "tello:tello", devices.Command{Action: "speed"}); err != nil {
		t.Fatalf("speed? with one lost answer: %v", err)
	}
	// A query that is never answered fails after two tries.
	f.mu.Lock()
	f.silent["time?"] = 5
	f.mu.Unlock()
	start := time.Now()
	if _, err := a.Query(ctx, "time?"); !errors.Is(err, ErrTimeout) {
		t.Fatalf("unanswered query = %v, want ErrTimeout", err)
	}
	if el := time.Since(start); el < 200*time.Millisecond || el > 2*time.Second {
		t.Errorf("two query attempts took %s, want about 2 x 100ms", el)
	}
	// A move is never repeated: a lost answer is an error after one try.
	if err := a.Command(ctx, "tello:tello", Confirm(devices.Command{Action: "takeoff"})); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	f.silent["forward 100"] = 5
	f.mu.Unlock()
	if err := a.Command(ctx, "tello:tello", devices.Command{Action: "forward", Amount: 100}); !errors.Is(err, ErrTimeout) {
		t.Fatalf("unanswered move = %v, want ErrTimeout", err)
	}
	n := 0
	for _, l := range f.received() {
		if l == "forward 100" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("move sent %d times, want once", n)
	}
	// A late answer to the timed-out move is not taken for the next command's.
	f.mu.Lock()
	f.silent["forward 100"] = 0
	f.delay["back 20"] = 50 * time.Millisecond
	f.mu.Unlock()
	if err := a.Command(ctx, "tello:tello", devices.Command{Action: "back", Amount: 20}); err != nil {
		t.Fatalf("back after a timeout: %v", err)
	}
}

func TestEmergencyDoesNotWait(t *testing.T) {
	a, f, _ := start(t, nil)
	ctx := context.Background()
	if err := a.Command(ctx, "tello:tello", Confirm(devices.Command{Action: "takeoff"})); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	f.delay["forward 500"] = 250 * time.Millisecond // a long move, answered when done
	f.mu.Unlock()
	moved := make(chan error, 1)
	go func() { moved <- a.Command(ctx, "tello:tello", devices.Command{Action: "forward", Amount: 500}) }()
	waitFor(t, "move sent", func() bool {
		r := f.received()
		return r[len(r)-1] == "forward 500"
	})
	start := time.Now()
	if err := a.Command(ctx, "tello:tello", devices.Command{Action: "emergency"}); err != nil {
		t.Fatalf("emergency: %v", err)
	}
	if el := time.Since(start); el > 100*time.Millisecond {
		t.Errorf("emergency waited %s behind the move", el)
	}
	// The datagram is on its way; the drone takes it while the move is still running.
	waitFor(t, "emergency received", func() bool {
		r := f.received()
		return r[len(r)-1] == "emergency"
	})
	f.mu.Lock()
	flying := f.flying
	f.mu.Unlock()
	if flying {
		t.Error("drone still flying after emergency")
	}
	// The move's wait may take the emergency's "ok" (replies are not correlated); it ends
	// either way.
	<-moved
	// With nothing in flight, emergency waits for its own "ok".
	if err := a.Command(ctx, "tello:tello", devices.Command{Action: "emergency"}); err != nil {
		t.Errorf("emergency when idle: %v", err)
	}
}

func TestBadCommands(t *testing.T) {
	a, f, _ := start(t, nil)
	ctx := context.Background()
	on := true
	for _, c := range []struct {
		id   string
		cmd  devices.Command
		want error
	}{
		{"tello:other", devices.Command{Action: "land"}, ErrUnknownDevice},
		{"tello:tello", devices.Command{On: &on}, ErrInvalidCommand},
		{"tello:tello", devices.Command{Action: "flip"}, ErrInvalidCommand},
		{"tello:tello", devices.Command{}, ErrInvalidCommand},
		{"tello:tello", devices.Command{Action: "up", Amount: 5000}, ErrInvalidCommand},
		{"tello:tello", devices.Command{Action: "up", Amount: -3}, ErrInvalidCommand},
		{"tello:tello", devices.Command{Action: "cw", Amount: 400}, ErrInvalidCommand},
		{"tello:tello", devices.Command{Action: "speed", Amount: 500}, ErrInvalidCommand},
	} {
		if err := a.Command(ctx, c.id, c.cmd); !errors.Is(err, c.want) {
			t.Errorf("Command(%s, %+v) = %v, want %v", c.id, c.cmd, err, c.want)
		}
	}
	if got := f.received(); len(got) != 2 { // "command" and the first "battery?"
		t.Errorf("bad commands reached the drone: %q", got)
	}
}

func TestKeepAliveAndReconnect(t *testing.T) {
	_, f, sink := start(t, func(c *Config) { c.KeepAlive = 30 * time.Millisecond })
	waitFor(t, "keep-alive queries", func() bool {
		n := 0
		for _, l := range f.received() {
			if l == "battery?" {
				n++
			}
		}
		return n >= 3
	})
	// The drone reboots: it forgets SDK mode and stops answering until told "command" again.
	f.mu.Lock()
	f.sdk = false
	f.got = nil
	f.mu.Unlock()
	waitFor(t, "SDK mode re-entered", func() bool {
		for _, l := range f.received() {
			if l == "command" {
				return true
			}
		}
		return false
	})
	waitFor(t, "available again", func() bool { st, _ := sink.snapshot(); return st.Available })
}

func TestCommandWithoutRun(t *testing.T) {
	a, err := New(Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Command(context.Background(), "tello:tello", devices.Command{Action: "land"}); !errors.Is(err, ErrNotRunning) {
		t.Errorf("Command before Run = %v, want ErrNotRunning", err)
	}
	if _, err := New(Config{Addr: "[::1"}, nil); err == nil {
		t.Error("malformed address accepted")
	}
	if c, err := New(Config{Addr: "192.168.10.5"}, nil); err != nil {
		t.Errorf("bare host: %v", err)
	} else if c.cfg.Addr != "192.168.10.5:8889" {
		t.Errorf("bare host became %q, want port 8889 added", c.cfg.Addr)
	}
	if _, err := New(Config{Adapter: "tello:2"}, nil); err == nil {
		t.Error("adapter name with a colon accepted")
	}
	b, err := New(Config{Adapter: "tello2", ID: "garden"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d := b.Device(); b.Name() != "tello2" || d.ID != "tello2:garden" || d.Adapter != "tello2" {
		t.Errorf("second drone: name %q, device %+v", b.Name(), d)
	}
}

func TestParseState(t *testing.T) {
	r := parseState("pitch:0;roll:0;yaw:0;vgx:0;vgy:0;vgz:0;templ:83;temph:85;tof:6553;h:0;bat:87;baro:185.35;time:0;agx:-8.00;agy:-9.00;agz:-999.00;\r\n")
	if len(r) != 16 || r["bat"] != 87 || r["baro"] != 185.35 || r["agz"] != -999 || r["tof"] != 6553 {
		t.Errorf("parseState = %v", r)
	}
	if r := parseState("garbage"); len(r) != 0 {
		t.Errorf("parseState(garbage) = %v", r)
	}
}
