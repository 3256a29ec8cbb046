package mqtt

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/hearth-home/hearth/devices"
)

const waitTimeout = 15 * time.Second

// recSink records what the adapter reports and lets tests wait for a condition.
type recSink struct {
	mu      sync.Mutex
	devs    map[string]devices.Device
	states  map[string]devices.State
	removed map[string]int
	reports map[string]int
	history map[string][]devices.State // every report, in order
	changed chan struct{}
}

func newRecSink() *recSink {
	return &recSink{
		devs: map[string]devices.Device{}, states: map[string]devices.State{},
		removed: map[string]int{}, reports: map[string]int{}, history: map[string][]devices.State{},
		changed: make(chan struct{}),
	}
}

func (s *recSink) notify() {
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *recSink) Upsert(d devices.Device) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.devs[d.ID] = d
	s.notify()
}

func (s *recSink) Remove(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.devs, id)
	delete(s.states, id)
	s.removed[id]++
	s.notify()
}

func (s *recSink) Report(id string, st devices.State) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.devs[id]; !ok {
		panic("Report before Upsert for " + id)
	}
	s.states[id] = st
	s.reports[id]++
	s.history[id] = append(s.history[id], st)
	s.notify()
}

// waitFor waits until cond holds (checked under the sink's lock after every change).
func (s *recSink) waitFor(t *testing.T, what string, cond func(s *recSink) bool) {
	t.Helper()
	deadline := time.After(waitTimeout)
	for {
		s.mu.Lock()
		ok := cond(s)
		ch := s.changed
		s.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			s.mu.Lock()
			defer s.mu.Unlock()
			t.Fatalf("timed out waiting for %s; devices=%v states=%v removed=%v", what, s.devs, fmtStates(s.states), s.removed)
		}
	}
}

func fmtStates(m map[string]devices.State) string {
	out := "{"
	for id, st := range m {
		out += fmt.Sprintf("%s:%s ", id, fmtState(st))
	}
	return out + "}"
}

func fmtState(st devices.State) string {
	s := fmt.Sprintf("avail=%v", st.Available)
	if st.On != nil {
		s += fmt.Sprintf(" on=%v", *st.On)
	}
	if st.Brightness != nil {
		s += fmt.Sprintf(" bri=%d", *st.Brightness)
	}
	if st.ColorTemp != nil {
		s += fmt.Sprintf(" ct=%d", *st.ColorTemp)
	}
	if st.Color != nil {
		s += fmt.Sprintf(" color=%v", *st.Color)
	}
	if st.Value != nil {
		s += fmt.Sprintf(" value=%v", *st.Value)
	}
	if st.Detected != nil {
		s += fmt.Sprintf(" detected=%v", *st.Detected)
	}
	return s
}

func (s *recSink) state(id string) (devices.State, bool) {
	st, ok := s.states[id]
	return st, ok
}

// brokerEnv is one broker the integration tests run against.
type brokerEnv struct {
	name       string
	url        string
	user, pass string // for the adapter
	devUser    string // for simulated devices
	devPass    string
	restart    func(t *testing.T) // stop, then start again on the same port
}

// eachBroker runs fn against the embedded broker and against a real Mosquitto.
func eachBroker(t *testing.T, fn func(t *testing.T, env *brokerEnv)) {
	t.Run("embedded", func(t *testing.T) {
		t.Parallel()
		fn(t, startEmbeddedEnv(t))
	})
	t.Run("mosquitto", func(t *testing.T) {
		t.Parallel()
		fn(t, startMosquittoEnv(t))
	})
}

func testUsers() []User {
	return []User{{Username: "hearth", Password: "adapter-secret"}, {Username: "device", Password: "device-secret"}}
}

func startEmbeddedEnv(t *testing.T) *brokerEnv {
	t.Helper()
	b, err := StartBroker(BrokerConfig{Listen: "127.0.0.1:0", Users: testUsers()})
	if err != nil {
		t.Fatal(err)
	}
	addr := b.Addr().String()
	var mu sync.Mutex
	cur := b
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		if cur != nil {
			cur.Close()
		}
	})
	return &brokerEnv{
		name: "embedded", url: b.URL(), user: "hearth", pass: "adapter-secret",
		devUser: "device", devPass: "device-secret",
		restart: func(t *testing.T) {
			mu.Lock()
			defer mu.Unlock()
			cur.Close()
			cur = nil
			time.Sleep(300 * time.Millisecond) // let clients notice the drop
			for i := 0; ; i++ {
				nb, err := StartBroker(BrokerConfig{Listen: addr, Users: testUsers()})
				if err == nil {
					cur = nb
					return
				}
				if i > 50 {
					t.Fatalf("restart embedded broker: %v", err)
				}
				time.Sleep(100 * time.Millisecond)
			}
		},
	}
}

// mosquittoBinary finds mosquitto, installing the Debian package when possible. In CI a missing
// binary fails the test (make deps installs it).
func mosquittoBinary(t *testing.T) (string, string) {
	t.Helper()
	find := func() (string, string) {
		bin, err1 := exec.LookPath("mosquitto")
		if err1 != nil {
			if _, err := os.Stat("/usr/sbin/mosquitto"); err == nil {
				bin, err1 = "/usr/sbin/mosquitto", nil
			}
		}
		pw, err2 := exec.LookPath("mosquitto_passwd")
		if err1 != nil || err2 != nil {
			return "", ""
		}
		return bin, pw
	}
	if bin, pw := find(); bin != "" {
		return bin, pw
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("mosquitto is not installed; run `make deps` (APT_PACKAGES includes mosquitto)")
	}
	if os.Geteuid() == 0 {
		out, err := exec.Command("apt-get", "install", "-y", "-q", "mosquitto").CombinedOutput()
		if err != nil {
			t.Fatalf("mosquitto is missing and apt-get install failed: %v\n%s", err, out)
		}
		if bin, pw := find(); bin != "" {
			return bin, pw
		}
	}
	t.Fatal("mosquitto is not installed: install the Debian package mosquitto (make deps)")
	return "", ""
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func startMosquittoEnv(t *testing.T) *brokerEnv { return startMosquittoEnvWith(t, nil) }

// startMosquittoEnvWith starts Mosquitto with a password file and a plain listener, plus the
// configuration lines extra returns (more listeners) given the temp dir.
func startMosquittoEnvWith(t *testing.T, extra func(dir string) string) *brokerEnv {
	t.Helper()
	bin, pwBin := mosquittoBinary(t)
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "passwd")
	for i, u := range testUsers() {
		args := []string{"-b", pwFile, u.Username, u.Password}
		if i == 0 {
			args = append([]string{"-c"}, args...)
		}
		if out, err := exec.Command(pwBin, args...).CombinedOutput(); err != nil {
			t.Fatalf("mosquitto_passwd: %v\n%s", err, out)
		}
	}
	port := freePort(t)
	conf := fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous false\npassword_file %s\npersistence false\nlog_dest stderr\n", port, pwFile)
	if os.Geteuid() == 0 {
		// Run as root would otherwise drop to the mosquitto user, which cannot read the temp dir.
		if u, err := user.Current(); err == nil {
			conf += "user " + u.Username + "\n"
		}
	}
	if extra != nil {
		conf += extra(dir)
	}
	confFile := filepath.Join(dir, "mosquitto.conf")
	if err := os.WriteFile(confFile, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var cmd *exec.Cmd
	var exited chan struct{}
	logFile := filepath.Join(dir, "mosquitto.log")
	start := func(t *testing.T) {
		lf, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		c := exec.Command(bin, "-c", confFile)
		c.Stdout, c.Stderr = lf, lf
		if err := c.Start(); err != nil {
			t.Fatalf("start mosquitto: %v", err)
		}
		ex := make(chan struct{})
		go func() { c.Wait(); lf.Close(); close(ex) }()
		cmd, exited = c, ex
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		for i := 0; ; i++ {
			conn, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				conn.Close()
				return
			}
			if i > 100 {
				log, _ := os.ReadFile(logFile)
				t.Fatalf("mosquitto did not start listening on %s: %v\n%s", addr, err, log)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	stop := func() {
		if cmd != nil && cmd.Process != nil {
			cmd.Process.Signal(os.Interrupt)
			select {
			case <-exited:
			case <-time.After(5 * time.Second):
				cmd.Process.Kill()
				<-exited
			}
			cmd = nil
		}
	}
	start(t)
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		stop()
	})
	return &brokerEnv{
		name: "mosquitto", url: fmt.Sprintf("tcp://127.0.0.1:%d", port),
		user: "hearth", pass: "adapter-secret", devUser: "device", devPass: "device-secret",
		restart: func(t *testing.T) {
			mu.Lock()
			defer mu.Unlock()
			stop()
			time.Sleep(300 * time.Millisecond)
			start(t)
		},
	}
}

// startAdapter runs an adapter against env until the test ends.
func startAdapter(t *testing.T, env *brokerEnv, mod func(*Config)) (*Adapter, *recSink) {
	t.Helper()
	cfg := Config{
		BrokerURL: env.url, Username: env.user, Password: env.pass,
		MaxReconnectInterval: 500 * time.Millisecond,
		Logger:               testLogger(t),
	}
	if mod != nil {
		mod(&cfg)
	}
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	sink := newRecSink()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx, sink) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	deadline := time.Now().Add(waitTimeout)
	for !a.Connected() {
		if time.Now().After(deadline) {
			t.Fatal("adapter did not connect")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return a, sink
}

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// simDevice is a device (or Zigbee2MQTT) played by the test: it publishes configs and state
// and records what it receives on the topics it listens to.
type simDevice struct {
	t      *testing.T
	client paho.Client
	msgs   chan recvMsg
	onMsg  func(d *simDevice, topic, payload string) // optional: reply like a device would
}

type recvMsg struct{ topic, payload string }

func newSimDevice(t *testing.T, env *brokerEnv, listen []string, onMsg func(d *simDevice, topic, payload string)) *simDevice {
	t.Helper()
	d := &simDevice{t: t, msgs: make(chan recvMsg, 100), onMsg: onMsg}
	log := testLogger(t) // not t.Logf: OnConnect may run after the test returned
	opts := paho.NewClientOptions().AddBroker(env.url).
		SetClientID(fmt.Sprintf("sim-%d", time.Now().UnixNano())).
		SetUsername(env.devUser).SetPassword(env.devPass).
		SetCleanSession(true).SetAutoReconnect(true).SetConnectRetry(true).
		SetConnectRetryInterval(200 * time.Millisecond).SetMaxReconnectInterval(500 * time.Millisecond).
		SetOrderMatters(true)
	handler := func(_ paho.Client, m paho.Message) {
		d.msgs <- recvMsg{m.Topic(), string(m.Payload())}
		if d.onMsg != nil {
			go d.onMsg(d, m.Topic(), string(m.Payload()))
		}
	}
	ready := make(chan struct{})
	var readyOnce sync.Once
	opts.SetOnConnectHandler(func(c paho.Client) {
		defer readyOnce.Do(func() { close(ready) })
		if len(listen) == 0 {
			return
		}
		filters := map[string]byte{}
		for _, l := range listen {
			filters[l] = 1
		}
		// Retry refusals: see subscribeQoS for the embedded broker's packet-ID quirk.
		for i := 0; i < 20; i++ {
			tok := c.SubscribeMultiple(filters, handler)
			tok.WaitTimeout(waitTimeout)
			err := subscribeError(tok)
			if err == nil {
				return
			}
			log.Warn("sim device subscribe refused; retrying", "attempt", i, "err", err)
			time.Sleep(50 * time.Millisecond)
		}
	})
	d.client = paho.NewClient(opts)
	tok := d.client.Connect()
	if !tok.WaitTimeout(waitTimeout) || tok.Error() != nil {
		t.Fatalf("sim device connect: %v", tok.Error())
	}
	// The subscriptions are made in OnConnect, which runs in its own goroutine.
	select {
	case <-ready:
	case <-time.After(waitTimeout):
		t.Fatal("sim device did not subscribe")
	}
	t.Cleanup(func() { d.client.Disconnect(100) })
	return d
}

func (d *simDevice) pub(topic string, retain bool, payload string) {
	d.t.Helper()
	tok := d.client.Publish(topic, 1, retain, payload)
	if !tok.WaitTimeout(waitTimeout) || tok.Error() != nil {
		d.t.Fatalf("publish %s: %v", topic, tok.Error())
	}
}

// reply publishes a retained state message from a message handler. It runs outside the test
// goroutine, so it must not fail the test: a reply racing the end of a test is dropped.
func (d *simDevice) reply(topic, payload string) {
	d.client.Publish(topic, 1, true, payload).WaitTimeout(waitTimeout)
}

// next returns the next message the device received.
func (d *simDevice) next() recvMsg {
	d.t.Helper()
	select {
	case m := <-d.msgs:
		return m
	case <-time.After(waitTimeout):
		d.t.Fatal("device received nothing")
	}
	return recvMsg{}
}

// expect asserts the next messages, in order.
func (d *simDevice) expect(want ...recvMsg) {
	d.t.Helper()
	for _, w := range want {
		got := d.next()
		if got != w {
			d.t.Fatalf("device received %s %q, want %s %q", got.topic, got.payload, w.topic, w.payload)
		}
	}
}

// quiet asserts that nothing more arrives for a short while.
func (d *simDevice) quiet() {
	d.t.Helper()
	select {
	case m := <-d.msgs:
		d.t.Fatalf("unexpected message %s %q", m.topic, m.payload)
	case <-time.After(200 * time.Millisecond):
	}
}

func ptr[T any](v T) *T { return &v }

func command(t *testing.T, a *Adapter, id string, c devices.Command) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := a.Command(ctx, id, c); err != nil {
		t.Fatalf("Command(%s): %v", id, err)
	}
}
