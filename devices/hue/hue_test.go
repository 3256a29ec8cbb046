package hue

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hearth-home/hearth/devices"
)

func pairFast(t *testing.T, f *fakeBridge) Credentials {
	t.Helper()
	var msgs []string
	p := Pairer{Interval: 10 * time.Millisecond, Timeout: 5 * time.Second, Host: "testhost"}
	creds, err := p.Pair(context.Background(), f.addr(), func(msg string) {
		msgs = append(msgs, msg)
		f.press() // the user walks to the bridge
	})
	if err != nil {
		t.Fatalf("Pair: %v", err)
	}
	if len(msgs) != 1 || !strings.Contains(msgs[0], "link button") {
		t.Fatalf("notify messages = %q, want one asking to press the link button", msgs)
	}
	return creds
}

func TestPairWaitsForLinkButton(t *testing.T) {
	f := newFakeBridge(t, nil)
	creds := pairFast(t, f)
	if creds.AppKey != f.key || creds.ClientKey != "0123456789ABCDEF0123456789ABCDEF" {
		t.Errorf("creds = %+v, want the fake's key and client key", creds)
	}
	if creds.Address != f.addr() {
		t.Errorf("Address = %q, want %q", creds.Address, f.addr())
	}
	if creds.Fingerprint != f.fingerprint() {
		t.Errorf("Fingerprint = %q, want the bridge certificate's %q", creds.Fingerprint, f.fingerprint())
	}
	f.mu.Lock()
	bodies := f.pairBody
	f.mu.Unlock()
	if len(bodies) < 2 {
		t.Fatalf("bridge saw %d pairing requests, want a refused one and a granted one", len(bodies))
	}
	for _, b := range bodies {
		if b["devicetype"] != "hearth#testhost" || b["generateclientkey"] != true {
			t.Errorf("pairing body = %v", b)
		}
	}
}

func TestPairTimesOutWithoutButton(t *testing.T) {
	f := newFakeBridge(t, nil)
	told := 0
	p := Pairer{Interval: 10 * time.Millisecond, Timeout: 600 * time.Millisecond}
	_, err := p.Pair(context.Background(), f.addr(), func(string) { told++ })
	if !errors.Is(err, ErrPairTimeout) {
		t.Fatalf("Pair err = %v, want ErrPairTimeout", err)
	}
	if told != 1 {
		t.Errorf("notify called %d times, want once", told)
	}
}

func TestPairRejectsBadAddress(t *testing.T) {
	if _, err := Pair(context.Background(), "http://x/y", nil); err == nil {
		t.Fatal("Pair accepted a URL with a path")
	}
}

// startAdapter pairs with the fake, runs an adapter into a recording sink and waits until the
// fixture's devices are announced.
func startAdapter(t *testing.T, f *fakeBridge) (*Adapter, *recSink, chan error) {
	t.Helper()
	creds := pairFast(t, f)
	a, err := New(Config{Credentials: creds, RetryMin: 10 * time.Millisecond, RetryMax: 50 * time.Millisecond})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	sink := newRecSink()
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx, sink) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run returned %v after cancel", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
	waitFor(t, "fixture devices", func() bool {
		_, l1 := sink.device("hue:" + lightLiving)
		_, l2 := sink.device("hue:" + lightKitch)
		_, s := sink.device("hue:scene:" + sceneRelax)
		return l1 && l2 && s && f.openStreams() == 1
	})
	return a, sink, done
}

func TestAdapterListsLightsWithRoomsAsAreas(t *testing.T) {
	f := newFakeBridge(t, nil)
	a, sink, _ := startAdapter(t, f)
	if a.Name() != "hue" {
		t.Errorf("Name = %q", a.Name())
	}
	living, _ := sink.device("hue:" + lightLiving)
	want := devices.Device{ID: "hue:" + lightLiving, Name: "Sofa lamp", Kind: devices.Light, Adapter: "hue",
		Area: "Living room", Model: "Hue color lamp", Caps: devices.Caps{Brightness: true, ColorTemp: true, Color: true}}
	if living != want {
		t.Errorf("living room light = %+v\nwant %+v", living, want)
	}
	kitchen, _ := sink.device("hue:" + lightKitch)
	if kitchen.Area != "Kitchen" || kitchen.Caps.Color || !kitchen.Caps.ColorTemp || kitchen.Name != "Kitchen ceiling" {
		t.Errorf("kitchen light = %+v", kitchen)
	}
	scene, _ := sink.device("hue:scene:" + sceneRelax)
	if scene.Kind != devices.Switch || scene.Name != "Relax" || scene.Area != "Living room" {
		t.Errorf("scene = %+v", scene)
	}

	ls := sink.state("hue:" + lightLiving)
	if !ls.Available || !ptrEq(ls.On, true) || !ptrEq(ls.Brightness, 50) || ls.ColorTemp != nil ||
		ls.Color == nil || *ls.Color != (devices.Color{R: 255, G: 0, B: 0}) {
		t.Errorf("living room state = %+v (colour %v)", ls, ls.Color)
	}
	ks := sink.state("hue:" + lightKitch)
	if !ks.Available || !ptrEq(ks.On, false) || !ptrEq(ks.Brightness, 100) || !ptrEq(ks.ColorTemp, 2732) {
		t.Errorf("kitchen state = %+v", ks)
	}
	if ss := sink.state("hue:scene:" + sceneRelax); !ptrEq(ss.On, false) {
		t.Errorf("scene state = %+v, want off (inactive)", ss)
	}
}

func TestAdapterCommandsSendDocumentedBodies(t *testing.T) {
	f := newFakeBridge(t, nil)
	a, sink, _ := startAdapter(t, f)
	ctx := context.Background()
	on, fifty, k4000, zero := true, 40, 4000, 0
	cases := []struct {
		id   string
		cmd  devices.Command
		path string
		body string
	}{
		{"hue:" + lightKitch, devices.Command{On: &on, Brightness: &fifty},
			"/clip/v2/resource/light/" + lightKitch, `{"on":{"on":true},"dimming":{"brightness":40}}`},
		{"hue:" + lightKitch, devices.Command{ColorTemp: &k4000},
			"/clip/v2/resource/light/" + lightKitch, `{"color_temperature":{"mirek":250}}`},
		{"hue:" + lightLiving, devices.Command{Color: &devices.Color{R: 0, G: 0, B: 255}},
			"/clip/v2/resource/light/" + lightLiving, `{"color":{"xy":{"x":0.15,"y":0.06}}}`},
		{"hue:" + lightLiving, devices.Command{Brightness: &zero},
			"/clip/v2/resource/light/" + lightLiving, `{"on":{"on":false}}`},
		{"hue:scene:" + sceneRelax, devices.Command{On: &on},
			"/clip/v2/resource/scene/" + sceneRelax, `{"recall":{"action":"active"}}`},
	}
	for i, c := range cases {
		if err := a.Command(ctx, c.id, c.cmd); err != nil {
			t.Fatalf("case %d: Command: %v", i, err)
		}
		puts := f.lastPuts()
		if len(puts) != i+1 {
			t.Fatalf("case %d: bridge saw %d PUTs, want %d", i, len(puts), i+1)
		}
		if got := puts[i]; got.Path != c.path || got.Body != c.body {
			t.Errorf("case %d: PUT %s %s\nwant PUT %s %s", i, got.Path, got.Body, c.path, c.body)
		}
	}

	// The bridge announced each change on the event stream; the sink follows.
	waitFor(t, "state from events", func() bool {
		ks := sink.state("hue:" + lightKitch)
		ls := sink.state("hue:" + lightLiving)
		ss := sink.state("hue:scene:" + sceneRelax)
		return ptrEq(ks.On, true) && ptrEq(ks.Brightness, 40) && ptrEq(ks.ColorTemp, 4000) &&
			ptrEq(ls.On, false) && ls.Color != nil && *ls.Color == (devices.Color{B: 255}) &&
			ptrEq(ss.On, true)
	})
}

func TestAdapterRejectsBadCommands(t *testing.T) {
	f := newFakeBridge(t, nil)
	a, _, _ := startAdapter(t, f)
	ctx := context.Background()
	too, neg, on := 150, -5, false
	for _, c := range []struct {
		id   string
		cmd  devices.Command
		want error
	}{
		{"hue:" + lightKitch, devices.Command{Brightness: &too}, ErrInvalidCommand},
		{"hue:" + lightKitch, devices.Command{ColorTemp: &neg}, ErrInvalidCommand},
		{"hue:" + lightKitch, devices.Command{}, ErrInvalidCommand},
		{"hue:" + lightKitch, devices.Command{Action: "takeoff"}, ErrInvalidCommand},
		{"hue:scene:" + sceneRelax, devices.Command{On: &on}, ErrInvalidCommand},
		{"hue:no-such-light", devices.Command{On: &on}, ErrUnknownDevice},
		{"hue:scene:no-such", devices.Command{Action: "recall"}, ErrUnknownDevice},
		{"z2m:kitchen", devices.Command{On: &on}, ErrUnknownDevice},
	} {
		if err := a.Command(ctx, c.id, c.cmd); !errors.Is(err, c.want) {
			t.Errorf("Command(%s, %+v) = %v, want %v", c.id, c.cmd, err, c.want)
		}
	}
	if n := len(f.lastPuts()); n != 0 {
		t.Errorf("bad commands reached the bridge: %d PUTs", n)
	}
}

func TestAdapterFollowsEventStream(t *testing.T) {
	f := newFakeBridge(t, nil)
	_, sink, _ := startAdapter(t, f)

	// Someone switches the kitchen light in the Hue app.
	f.push("update", map[string]any{"id": lightKitch, "id_v1": "/lights/2", "type": "light",
		"owner": map[string]any{"rid": devKitchen, "rtype": "device"},
		"on":    map[string]any{"on": true}, "dimming": map[string]any{"brightness": 12.6}})
	waitFor(t, "kitchen update", func() bool {
		s := sink.state("hue:" + lightKitch)
		return ptrEq(s.On, true) && ptrEq(s.Brightness, 13)
	})

	// The lamp is unplugged: the bridge loses it on Zigbee.
	f.push("update", map[string]any{"id": zbKitchen, "type": "zigbee_connectivity", "status": "connectivity_issue"})
	waitFor(t, "kitchen unreachable", func() bool { return !sink.state("hue:" + lightKitch).Available })
	if !sink.state("hue:" + lightLiving).Available {
		t.Error("living room light went unavailable with the kitchen lamp")
	}

	// A new lamp is added to the living room: the adapter re-lists and announces it.
	const newLight, newDev = "3f2a9c1e-0000-4000-8000-000000000003", "1c5e4a0e-0000-4000-8000-000000000003"
	f.mu.Lock()
	f.resources["light"] = append(f.resources["light"], map[string]any{"id": newLight, "type": "light",
		"owner": map[string]any{"rid": newDev, "rtype": "device"}, "metadata": map[string]any{"name": "Reading lamp"},
		"on": map[string]any{"on": true}})
	f.resources["device"] = append(f.resources["device"], map[string]any{"id": newDev, "type": "device",
		"metadata": map[string]any{"name": "Reading lamp"}, "product_data": map[string]any{"model_id": "LWB010", "product_name": "Hue white lamp"}})
	room := f.find("room", roomLiving)
	room["children"] = append(room["children"].([]any), map[string]any{"rid": newDev, "rtype": "device"})
	// The scene is deleted at the same time.
	f.resources["scene"] = nil
	f.mu.Unlock()
	f.push("add", map[string]any{"id": newLight, "type": "light"})
	waitFor(t, "new lamp", func() bool {
		d, ok := sink.device("hue:" + newLight)
		return ok && d.Area == "Living room" && d.Name == "Reading lamp" && !d.Caps.Brightness
	})
	waitFor(t, "scene removed", func() bool {
		_, ok := sink.device("hue:scene:" + sceneRelax)
		return !ok
	})
}

func TestAdapterReconnects(t *testing.T) {
	f := newFakeBridge(t, nil)
	_, sink, _ := startAdapter(t, f)
	f.dropStreams()
	waitFor(t, "unavailable after drop", func() bool { return !sink.state("hue:" + lightLiving).Available })
	waitFor(t, "reconnect", func() bool {
		return f.streamCount() >= 2 && f.openStreams() == 1 && sink.state("hue:"+lightLiving).Available
	})
	// The new stream delivers again.
	f.push("update", map[string]any{"id": lightLiving, "type": "light", "on": map[string]any{"on": false}})
	waitFor(t, "update after reconnect", func() bool { return ptrEq(sink.state("hue:"+lightLiving).On, false) })
}

func TestAdapterRefusesOtherCertificate(t *testing.T) {
	genuine := newFakeBridge(t, nil)
	creds := pairFast(t, genuine)
	impostor := newFakeBridge(t, otherCert(t))
	if impostor.fingerprint() == creds.Fingerprint {
		t.Fatal("test setup: impostor has the genuine certificate")
	}
	creds.Address = impostor.addr() // someone else now answers at the bridge's address
	a, err := New(Config{Credentials: creds, RetryMin: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	// Generous: the refusal is immediate, but a loaded machine may make handshakes slow.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = a.Run(ctx, newRecSink())
	if !errors.Is(err, ErrCertMismatch) {
		t.Fatalf("Run err = %v, want ErrCertMismatch", err)
	}
	impostor.mu.Lock()
	n := impostor.requests
	impostor.mu.Unlock()
	if n != 0 {
		t.Errorf("impostor received %d requests carrying the key", n)
	}
	on := true
	if err := a.Command(ctx, "hue:"+lightKitch, devices.Command{On: &on}); err == nil {
		t.Error("Command succeeded against an impostor")
	}
}

func TestAdapterStopsOnRefusedKey(t *testing.T) {
	f := newFakeBridge(t, nil)
	creds := pairFast(t, f)
	creds.AppKey = "revoked"
	a, err := New(Config{Credentials: creds})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := a.Run(ctx, newRecSink()); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("Run err = %v, want ErrUnauthorized", err)
	}
}

func TestNewValidatesCredentials(t *testing.T) {
	good := Credentials{Address: "192.168.1.2", AppKey: "k", Fingerprint: strings.Repeat("ab", 32)}
	if _, err := New(Config{Credentials: good}); err != nil {
		t.Fatalf("New(good) = %v", err)
	}
	for _, c := range []Credentials{
		{Address: "", AppKey: "k", Fingerprint: good.Fingerprint},
		{Address: "192.168.1.2", AppKey: "", Fingerprint: good.Fingerprint},
		{Address: "192.168.1.2", AppKey: "k", Fingerprint: "abc"},
	} {
		if _, err := New(Config{Credentials: c}); err == nil {
			t.Errorf("New(%+v) accepted bad credentials", c)
		}
	}
}

func TestSecondBridgeHasItsOwnName(t *testing.T) {
	f := newFakeBridge(t, nil)
	creds := pairFast(t, f)
	if _, err := New(Config{Credentials: creds, Name: "hue:2"}); err == nil {
		t.Error("adapter name with a colon accepted")
	}
	a, err := New(Config{Credentials: creds, Name: "hue2"})
	if err != nil {
		t.Fatal(err)
	}
	if a.Name() != "hue2" {
		t.Errorf("Name = %q", a.Name())
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sink := newRecSink()
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx, sink) }()
	waitFor(t, "devices under the second name", func() bool {
		d, ok := sink.device("hue2:" + lightKitch)
		_, s := sink.device("hue2:scene:" + sceneRelax)
		return ok && s && d.Adapter == "hue2"
	})
	on := true
	if err := a.Command(ctx, "hue2:"+lightKitch, devices.Command{On: &on}); err != nil {
		t.Errorf("Command: %v", err)
	}
	if err := a.Command(ctx, "hue:"+lightKitch, devices.Command{On: &on}); !errors.Is(err, ErrUnknownDevice) {
		t.Errorf("Command under the default prefix = %v, want ErrUnknownDevice", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
}
