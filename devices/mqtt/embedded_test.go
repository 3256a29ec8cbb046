package mqtt

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/hearth-home/hearth/devices"
)

// TestEmbeddedBrokerDefault runs the adapter the way the appliance does by default: no broker
// URL, so it starts its own broker, logs in with a generated internal user, and devices log in
// with the configured users.
func TestEmbeddedBrokerDefault(t *testing.T) {
	a, err := New(Config{
		Listen: "127.0.0.1:0",
		Users:  []User{{Username: "device", Password: "device-secret"}},
		Logger: testLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	sink := newRecSink()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx, sink) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		if a.BrokerURL() != "" {
			t.Error("broker URL still set after Run returned")
		}
	}()
	deadline := time.Now().Add(waitTimeout)
	for !a.Connected() {
		if time.Now().After(deadline) {
			t.Fatal("adapter did not connect to its embedded broker")
		}
		time.Sleep(10 * time.Millisecond)
	}
	url := a.BrokerURL()
	if url == "" {
		t.Fatal("no embedded broker URL")
	}

	// Wrong password and unknown user are refused.
	for _, c := range []struct{ user, pass string }{{"device", "wrong"}, {"nobody", "device-secret"}, {"", ""}} {
		cl := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID("bad-" + c.user).
			SetUsername(c.user).SetPassword(c.pass).SetConnectRetry(false).SetAutoReconnect(false))
		tok := cl.Connect()
		tok.WaitTimeout(waitTimeout)
		if tok.Error() == nil {
			cl.Disconnect(10)
			t.Fatalf("login %q/%q accepted", c.user, c.pass)
		}
	}

	env := &brokerEnv{url: url, devUser: "device", devPass: "device-secret"}
	dev := newSimDevice(t, env, []string{"plug/set"}, func(d *simDevice, topic, payload string) {
		d.reply("plug/state", payload)
	})
	dev.pub("homeassistant/switch/plug/config", true, `{"name":"Plug","cmd_t":"plug/set","stat_t":"plug/state","uniq_id":"plug-1"}`)
	sink.waitFor(t, "switch", func(s *recSink) bool { _, ok := s.state("mqtt:ha/plug-1"); return ok })
	command(t, a, "mqtt:ha/plug-1", devices.Command{On: ptr(true)})
	dev.expect(recvMsg{"plug/set", "ON"})
	sink.waitFor(t, "switch on", func(s *recSink) bool {
		st, _ := s.state("mqtt:ha/plug-1")
		return st.On != nil && *st.On
	})

	// A second Run while the first is active is refused; the port is taken anyway.
	if err := a.Run(context.Background(), sink); err == nil {
		t.Fatal("second Run succeeded")
	}
}

func TestEmbeddedBrokerPortInUse(t *testing.T) {
	b, err := StartBroker(BrokerConfig{Listen: "127.0.0.1:0", Users: testUsers()})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	a, err := New(Config{Listen: b.Addr().String()})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Run(context.Background(), newRecSink()); err == nil {
		t.Fatal("Run succeeded on a port that is in use")
	}
}

func TestCommandNotRunning(t *testing.T) {
	a, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Command(context.Background(), "mqtt:ha/x", devices.Command{On: ptr(true)}); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("err = %v, want ErrNotRunning", err)
	}
}

func TestConfigValidation(t *testing.T) {
	bad := []Config{
		{Name: "a:b"},
		{BrokerURL: "http://x:1883"},
		{BrokerURL: "tcp://"},
		{Users: []User{{Username: "u"}}},
		{Users: []User{{Username: "u", Password: "p"}, {Username: "u", Password: "q"}}},
		{DiscoveryPrefix: "ha/#"},
		{Z2MBaseTopic: "z2m/"},
	}
	for _, c := range bad {
		if _, err := New(c); err == nil {
			t.Errorf("New(%+v) accepted", c)
		}
	}
	for _, u := range []string{"tcp://h:1883", "ssl://h:8883", "ws://h:9001/mqtt", "wss://h/mqtt"} {
		if _, err := New(Config{BrokerURL: u}); err != nil {
			t.Errorf("New(%s): %v", u, err)
		}
	}
	a, err := New(Config{BrokerURL: "ssl://127.0.0.1:1", CAFile: "/nonexistent/ca.pem"})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Run(context.Background(), newRecSink()); err == nil {
		t.Fatal("Run with an unreadable CA file succeeded")
	}
}

// TestEmbeddedRetainedPersistence restarts the adapter (and with it the embedded broker) and
// checks that retained discovery configs and the Zigbee2MQTT device list survive in the
// retained file while device state is not written to disk.
func TestEmbeddedRetainedPersistence(t *testing.T) {
	file := filepath.Join(t.TempDir(), "retained.json")
	port := freePort(t)
	run := func() (*recSink, func()) {
		a, err := New(Config{
			Listen: fmt.Sprintf("127.0.0.1:%d", port), RetainedFile: file,
			Users:  []User{{Username: "device", Password: "device-secret"}},
			Logger: testLogger(t), MaxReconnectInterval: 500 * time.Millisecond,
		})
		if err != nil {
			t.Fatal(err)
		}
		sink := newRecSink()
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- a.Run(ctx, sink) }()
		for deadline := time.Now().Add(waitTimeout); !a.Connected(); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("adapter did not connect")
			}
		}
		return sink, func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		}
	}
	sink, stop := run()
	env := &brokerEnv{url: fmt.Sprintf("tcp://127.0.0.1:%d", port), devUser: "device", devPass: "device-secret"}
	dev := newSimDevice(t, env, nil, nil)
	dev.pub("homeassistant/switch/plug/config", true, `{"name":"Plug","cmd_t":"plug/set","stat_t":"plug/state","uniq_id":"plug-1"}`)
	dev.pub("homeassistant/switch/gone/config", true, `{"cmd_t":"gone/set","uniq_id":"gone"}`)
	dev.pub("homeassistant/switch/gone/config", true, ``) // cleared: must not come back
	dev.pub("plug/state", true, "ON")
	dev.pub("zigbee2mqtt/bridge/devices", true, z2mDeviceList)
	sink.waitFor(t, "plug and zigbee light", func(s *recSink) bool {
		st, ok := s.state("mqtt:ha/plug-1")
		_, okZ := s.state("mqtt:z2m/0x0017880100000001")
		return ok && okZ && st.On != nil
	})
	dev.client.Disconnect(10)
	stop() // closing the broker writes the file

	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "homeassistant/switch/plug/config") || strings.Contains(string(b), "plug/state") ||
		strings.Contains(string(b), "gone") || !strings.Contains(string(b), "zigbee2mqtt/bridge/devices") {
		t.Fatalf("retained file holds the wrong topics: %s", b)
	}

	sink, stop = run()
	defer stop()
	sink.waitFor(t, "devices back from the retained file", func(s *recSink) bool {
		_, ok := s.state("mqtt:ha/plug-1")
		_, okZ := s.state("mqtt:z2m/0x0017880100000001")
		return ok && okZ
	})
	sink.mu.Lock()
	defer sink.mu.Unlock()
	if _, ok := sink.devs["mqtt:ha/gone"]; ok {
		t.Fatal("a cleared config came back")
	}
}
