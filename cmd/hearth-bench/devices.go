package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/appliance"
	"github.com/hearth-home/hearth/appliance/config"
	"github.com/hearth-home/hearth/appliance/control"
	"github.com/hearth-home/hearth/devices/bridge"
	"github.com/hearth-home/hearth/devices/mqtt"
)

// The device-bridge benchmark (`hearth-bench -devices`): an in-process appliance with the
// bridge and the embedded MQTT broker, 100 Home Assistant sensors in 10 areas and 10 lights.
// A device client publishes 10 sensor updates a second; an admin's /sync long-poll receives
// the reading notices. Measured: MQTT publish -> reading event at the long-polling client, a
// command message (client send) -> the light's MQTT command at the device, and the heap growth
// of the whole appliance per bridged device.

type devicesParams struct {
	Sensors, Lights, Areas int
	UpdatesPerSec          int
	Duration               time.Duration
	CommandEvery           time.Duration
}

type devicesResult struct {
	Params          devicesParams
	Readings        []time.Duration
	Published       int
	Commands        []time.Duration
	CommandsStored  []time.Duration // from the send's response (event stored) to the MQTT command
	CommandSends    []time.Duration // the client's send request alone
	Queue, Sends    []time.Duration // readings: registry change -> bridge send; the bridge's send
	CommandsSent    int
	HeapPerDevice   float64 // bytes, first batch (includes the rooms and fixed costs)
	HeapBefore      uint64
	HeapAfter       uint64
	MarginalPer     float64 // bytes per device of a second batch into existing rooms
	MarginalN       int
	SetupSec        float64
	LoadAvg         [2]string // at start and end: other work on the machine inflates the tail
	GoVersion, Arch string
}

func devicesParamsFor(mode string) devicesParams {
	p := devicesParams{Sensors: 100, Lights: 10, Areas: 10, UpdatesPerSec: 10, Duration: 30 * time.Second, CommandEvery: 200 * time.Millisecond}
	if mode == "full" {
		p.Duration = 2 * time.Minute
	}
	return p
}

func runDevicesBench(ctx context.Context, repo string, o options) error {
	p := devicesParamsFor(o.mode)
	dir := filepath.Join(o.work, "devices")
	_ = os.RemoveAll(dir)
	if !o.keep {
		defer os.RemoveAll(dir)
	}
	cfg := config.Default()
	cfg.DataDir = dir
	cfg.Listen = "127.0.0.1:0"
	cfg.Limits.RateLimit = false
	cfg.Devices.Enabled = true
	// Each sensor gets an update every Sensors/UpdatesPerSec seconds (10 s): the interval is
	// shorter, so every update is posted and measured.
	cfg.Devices.MinInterval = time.Second
	cfg.Devices.MinDelta = 0.5
	cfg.Devices.MQTT = config.DevicesMQTT{Enabled: true, Listen: "127.0.0.1:0", Username: "device", Password: "device-secret",
		DiscoveryPrefix: "homeassistant", Z2MBaseTopic: "zigbee2mqtt"}
	app, err := appliance.New(cfg, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		return err
	}
	actx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- app.Run(actx) }()
	defer func() { cancel(); <-done }()
	base := "http://" + app.ClientAddr()
	if err := waitUp(ctx, base); err != nil {
		return err
	}
	res := &devicesResult{Params: p, GoVersion: runtime.Version(), Arch: runtime.GOARCH}
	res.LoadAvg[0] = loadAvg()
	began := time.Now()

	adm, err := control.Dial(control.SocketPath(dir))
	if err != nil {
		return err
	}
	if _, err := adm.AddUser(ctx, "owner", "bench-password", true); err != nil {
		return err
	}
	cli, err := mautrix.NewClient(base, "", "")
	if err != nil {
		return err
	}
	if _, err := cli.Login(ctx, &mautrix.ReqLogin{Type: mautrix.AuthTypePassword,
		Identifier: mautrix.UserIdentifier{Type: mautrix.IdentifierTypeUser, User: "owner"},
		Password:   "bench-password", StoreCredentials: true}); err != nil {
		return err
	}
	var url string
	if err := waitFor(ctx, "embedded broker", func() bool {
		if a, ok := app.Devices().Adapter("mqtt"); ok {
			url = a.(*mqtt.Adapter).BrokerURL()
		}
		return url != ""
	}); err != nil {
		return err
	}
	time.Sleep(500 * time.Millisecond) // the bridge's space exists: it is not per-device memory
	res.HeapBefore = heapAfterGC()

	dev, err := newBenchDevice(url, "bench/+/set")
	if err != nil {
		return err
	}
	defer dev.c.Disconnect(100)
	logf("devices: announcing %d sensors and %d lights in %d areas", p.Sensors, p.Lights, p.Areas)
	for i := range p.Sensors {
		cfgJSON := fmt.Sprintf(`{"name":"Sensor %d","uniq_id":"bench-s%03d","stat_t":"bench/s%03d/state","val_tpl":"{{ value_json.v }}",
			"unit_of_meas":"°C","dev_cla":"temperature","dev":{"ids":"bs%03d","name":"Area %d","sa":"Area %d"}}`, i, i, i, i, i%p.Areas, i%p.Areas)
		dev.pub(fmt.Sprintf("homeassistant/sensor/bench-s%03d/config", i), cfgJSON, true)
		dev.pub(fmt.Sprintf("bench/s%03d/state", i), `{"v":0}`, true)
	}
	for i := range p.Lights {
		cfgJSON := fmt.Sprintf(`{"schema":"json","name":"Lamp","uniq_id":"bench-l%02d","stat_t":"bench/l%02d/state","cmd_t":"bench/l%02d/set",
			"brightness":true,"dev":{"ids":"bl%02d","name":"Area %d","sa":"Area %d"}}`, i, i, i, i, i%p.Areas, i%p.Areas)
		dev.pub(fmt.Sprintf("homeassistant/light/bench-l%02d/config", i), cfgJSON, true)
		dev.pub(fmt.Sprintf("bench/l%02d/state", i), `{"state":"OFF"}`, true)
	}
	total := p.Sensors + p.Lights
	br := app.DeviceBridge()
	rooms := make([]id.RoomID, p.Areas)
	if err := waitFor(ctx, "area rooms", func() bool {
		for i := range rooms {
			if rooms[i] = br.AreaRoom(fmt.Sprintf("Area %d", i)); rooms[i] == "" {
				return false
			}
		}
		return true
	}); err != nil {
		return err
	}
	for _, r := range rooms {
		if err := waitFor(ctx, "join", func() bool { _, err := cli.JoinRoomByID(ctx, r); return err == nil }); err != nil {
			return err
		}
	}
	if err := waitFor(ctx, "every device's state event", func() bool {
		n := 0
		for _, r := range rooms {
			st, err := cli.State(ctx, r)
			if err != nil {
				return false
			}
			n += len(st[event.Type{Type: bridge.StateType, Class: event.StateEventType}])
		}
		return n >= total
	}); err != nil {
		return err
	}
	res.SetupSec = time.Since(began).Seconds()
	res.HeapAfter = heapAfterGC()
	res.HeapPerDevice = (float64(res.HeapAfter) - float64(res.HeapBefore)) / float64(total)
	logf("devices: %d devices bridged in %.1fs; heap %.1f MiB -> %.1f MiB (%.1f KiB per device)",
		total, res.SetupSec, float64(res.HeapBefore)/(1<<20), float64(res.HeapAfter)/(1<<20), res.HeapPerDevice/1024)

	// The long-polling client.
	first, err := cli.SyncRequest(ctx, 0, "", "", false, "")
	if err != nil {
		return err
	}
	var mu sync.Mutex
	published := map[string]time.Time{} // "device value" -> publish time
	var readings []time.Duration
	sctx, stopSync := context.WithCancel(ctx)
	defer stopSync()
	syncDone := make(chan struct{})
	go func() {
		defer close(syncDone)
		since := first.NextBatch
		for sctx.Err() == nil {
			resp, err := cli.SyncRequest(sctx, 30000, since, "", false, "")
			if err != nil {
				continue
			}
			now := time.Now()
			since = resp.NextBatch
			for _, jr := range resp.Rooms.Join {
				for _, evt := range jr.Timeline.Events {
					var c struct {
						R *struct {
							Device string `json:"device"`
							State  struct {
								Value *float64 `json:"value"`
							} `json:"state"`
						} `json:"org.hearth.device.reading"`
					}
					if json.Unmarshal(evt.Content.VeryRaw, &c) != nil || c.R == nil || c.R.State.Value == nil {
						continue
					}
					key := fmt.Sprintf("%s %g", c.R.Device, *c.R.State.Value)
					mu.Lock()
					if t0, ok := published[key]; ok {
						readings = append(readings, now.Sub(t0))
						delete(published, key)
					}
					mu.Unlock()
				}
			}
		}
	}()
	time.Sleep(300 * time.Millisecond) // the long-poll is parked
	br.SetPostObserver(func(_ string, changed, sendStart, sent time.Time) {
		mu.Lock()
		res.Queue = append(res.Queue, sendStart.Sub(changed))
		res.Sends = append(res.Sends, sent.Sub(sendStart))
		mu.Unlock()
	})

	logf("devices: %d sensor updates/s and a command every %s for %s", p.UpdatesPerSec, p.CommandEvery, p.Duration)
	var cmdLat []time.Duration
	cmdDone := make(chan struct{})
	deadline := time.Now().Add(p.Duration)
	go func() {
		defer close(cmdDone)
		for n := 0; time.Now().Before(deadline) && ctx.Err() == nil; n++ {
			light := n % p.Lights
			pct := 1 + n%99
			topic := fmt.Sprintf("bench/l%02d/set", light)
			text := fmt.Sprintf("area %d lamp %d%%", light%p.Areas, pct)
			dev.reset()
			t0 := time.Now()
			if _, err := cli.SendText(ctx, rooms[light%p.Areas], text); err != nil {
				logf("devices: send command: %v", err)
				continue
			}
			t1 := time.Now()
			res.CommandsSent++
			if got := dev.wait(topic, 5*time.Second); !got.IsZero() {
				cmdLat = append(cmdLat, got.Sub(t0))
				res.CommandSends = append(res.CommandSends, t1.Sub(t0))
				res.CommandsStored = append(res.CommandsStored, max(got.Sub(t1), 0))
			}
			time.Sleep(time.Until(t0.Add(p.CommandEvery)))
		}
	}()
	if f := os.Getenv("DEVICES_CPUPROFILE"); f != "" { // where the time goes, for whoever tunes this
		pf, err := os.Create(f)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(pf); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	tick := time.NewTicker(time.Second / time.Duration(p.UpdatesPerSec))
	seq := 0
	for time.Now().Before(deadline) && ctx.Err() == nil {
		<-tick.C
		seq++
		i := seq % p.Sensors
		v := float64(seq)
		key := fmt.Sprintf("mqtt:ha/bench-s%03d %g", i, v)
		mu.Lock()
		published[key] = time.Now()
		mu.Unlock()
		dev.pub(fmt.Sprintf("bench/s%03d/state", i), fmt.Sprintf(`{"v":%g}`, v), false)
		res.Published++
	}
	tick.Stop()
	<-cmdDone
	time.Sleep(2 * time.Second) // the last readings arrive
	stopSync()
	<-syncDone
	br.SetPostObserver(nil)
	mu.Lock()
	res.Readings = slices.Clone(readings)
	mu.Unlock()
	res.Commands = cmdLat
	// Marginal memory: a second batch of idle sensors into the existing rooms.
	const extra = 100
	before := heapAfterGC()
	for i := range extra {
		cfgJSON := fmt.Sprintf(`{"name":"Idle %d","uniq_id":"bench-m%03d","stat_t":"bench/m%03d/state","val_tpl":"{{ value_json.v }}",
			"unit_of_meas":"%%","dev_cla":"humidity","dev":{"ids":"bm%03d","name":"Area %d","sa":"Area %d"}}`, i, i, i, i, i%p.Areas, i%p.Areas)
		dev.pub(fmt.Sprintf("homeassistant/sensor/bench-m%03d/config", i), cfgJSON, true)
		dev.pub(fmt.Sprintf("bench/m%03d/state", i), `{"v":50}`, true)
	}
	if err := waitFor(ctx, "the second batch's state events", func() bool {
		n := 0
		for _, r := range rooms {
			st, err := cli.State(ctx, r)
			if err != nil {
				return false
			}
			n += len(st[event.Type{Type: bridge.StateType, Class: event.StateEventType}])
		}
		return n >= total+extra
	}); err != nil {
		return err
	}
	time.Sleep(time.Second)
	res.MarginalN = extra
	res.MarginalPer = (float64(heapAfterGC()) - float64(before)) / extra
	logf("devices: second batch of %d: %.1f KiB per device", extra, res.MarginalPer/1024)
	res.LoadAvg[1] = loadAvg()
	for _, l := range [][]time.Duration{res.Readings, res.Commands, res.CommandsStored, res.CommandSends, res.Queue, res.Sends} {
		slices.Sort(l)
	}
	report := res.markdown()
	fmt.Println(report)
	out := o.out
	if !filepath.IsAbs(out) {
		out = filepath.Join(repo, out)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	path := filepath.Join(out, "devices.md")
	if err := os.WriteFile(path, []byte(report), 0o644); err != nil {
		return err
	}
	logf("wrote %s", path)
	return nil
}

func heapAfterGC() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

func waitUp(ctx context.Context, base string) error {
	return waitFor(ctx, "server", func() bool {
		resp, err := http.Get(base + "/_matrix/client/versions")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
}

func waitFor(ctx context.Context, what string, cond func() bool) error {
	deadline := time.Now().Add(2 * time.Minute)
	for !cond() {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil
}

// benchDevice is the MQTT client playing every device.
type benchDevice struct {
	c    paho.Client
	mu   sync.Mutex
	seen map[string]time.Time // topic -> first arrival since reset
	wake chan struct{}
}

func newBenchDevice(url, subscribe string) (*benchDevice, error) {
	d := &benchDevice{seen: map[string]time.Time{}, wake: make(chan struct{}, 1)}
	d.c = paho.NewClient(paho.NewClientOptions().AddBroker(url).SetUsername("device").SetPassword("device-secret").
		SetClientID("bench-devices"))
	if tok := d.c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		return nil, fmt.Errorf("device connect: %v", tok.Error())
	}
	tok := d.c.Subscribe(subscribe, 1, func(_ paho.Client, m paho.Message) {
		now := time.Now()
		d.mu.Lock()
		if _, ok := d.seen[m.Topic()]; !ok {
			d.seen[m.Topic()] = now
		}
		d.mu.Unlock()
		select {
		case d.wake <- struct{}{}:
		default:
		}
	})
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		return nil, fmt.Errorf("subscribe: %v", tok.Error())
	}
	return d, nil
}

func (d *benchDevice) pub(topic, payload string, retained bool) {
	d.c.Publish(topic, 1, retained, payload).WaitTimeout(10 * time.Second)
}

func (d *benchDevice) reset() {
	d.mu.Lock()
	clear(d.seen)
	d.mu.Unlock()
}

// wait returns when a message arrived on topic since the last reset (zero on timeout).
func (d *benchDevice) wait(topic string, timeout time.Duration) time.Time {
	end := time.After(timeout)
	for {
		d.mu.Lock()
		t, ok := d.seen[topic]
		d.mu.Unlock()
		if ok {
			return t
		}
		select {
		case <-d.wake:
		case <-end:
			return time.Time{}
		}
	}
}

func msText(d time.Duration) string { return fmt.Sprintf("%.1f", ms(d)) }

func (r *devicesResult) markdown() string {
	var b strings.Builder
	p := r.Params
	fmt.Fprintf(&b, "# Device bridge benchmark\n\n")
	m := readMachine()
	fmt.Fprintf(&b, "`make bench-devices` (`go run ./cmd/hearth-bench -devices`), %s, %s/%s, %d CPUs (%s).\n\n",
		time.Now().UTC().Format(time.RFC3339), r.GoVersion, r.Arch, m.CPUs, m.CPUModel)
	fmt.Fprintf(&b, "Load average at start and end: %s / %s (with more runnable work than CPUs, the tail latencies "+
		"include waiting for a CPU).\n\n", r.LoadAvg[0], r.LoadAvg[1])
	fmt.Fprintf(&b, "In-process appliance with the device bridge and the embedded MQTT broker; %d Home Assistant "+
		"sensors and %d lights in %d areas (one room each); one MQTT client plays every device; the "+
		"owner's /sync long-poll receives the readings. %d sensor updates per second for %s "+
		"(min_interval 1 s, each sensor updated every %d s, so every update is posted); a command "+
		"(\"area N lamp P%%\") every %s at the same time.\n\n",
		p.Sensors, p.Lights, p.Areas, p.UpdatesPerSec, p.Duration, p.Sensors/p.UpdatesPerSec, p.CommandEvery)
	fmt.Fprintf(&b, "| measure | n | p50 ms | p99 ms | max ms | target |\n| --- | --- | --- | --- | --- | --- |\n")
	row := func(name string, d []time.Duration, sent int, target string) {
		if len(d) == 0 {
			fmt.Fprintf(&b, "| %s | 0 of %d | - | - | - | %s |\n", name, sent, target)
			return
		}
		fmt.Fprintf(&b, "| %s | %d of %d | %s | %s | %s | %s |\n", name, len(d), sent,
			msText(percentile(d, 50)), msText(percentile(d, 99)), msText(d[len(d)-1]), target)
	}
	row("**MQTT publish -> reading at the long-polling client**", r.Readings, r.Published, "p99 < 25 ms")
	row("  of which: registry change -> bridge starts its send", r.Queue, r.Published, "")
	row("  of which: the bridge's send (homeserver write)", r.Sends, r.Published, "")
	row("**command message sent -> MQTT command at the device**", r.Commands, r.CommandsSent, "p99 < 25 ms")
	row("  of which: the client's send request (homeserver write)", r.CommandSends, r.CommandsSent, "")
	row("  of which: send answered -> MQTT command (appservice transaction, bridge, adapter, broker)", r.CommandsStored, r.CommandsSent, "")
	fmt.Fprintf(&b, "\nMemory (Go heap after GC, the whole appliance: MQTT adapter, registry, bridge, mautrix "+
		"state store and clients, the homeserver's caches for the rooms and virtual users; an upper bound "+
		"for the bridge alone):\n\n"+
		"- a second batch of %d idle sensors into the existing rooms: **%.1f KiB per device** (target < 20 KB);\n"+
		"- the first %d devices, including the %d area rooms and the space: %.1f MiB -> %.1f MiB, %.1f KiB per device.\n\n"+
		"Setup (discovery to every state event in its room): %.1f s.\n",
		r.MarginalN, r.MarginalPer/1024, p.Sensors+p.Lights, p.Areas,
		float64(r.HeapBefore)/(1<<20), float64(r.HeapAfter)/(1<<20), r.HeapPerDevice/1024, r.SetupSec)
	fmt.Fprintf(&b, "\nWhere the time goes. The bridge's own work is the \"registry change -> bridge starts its "+
		"send\" row (the MQTT adapter, the registry's coalescing and the bridge's gate). Everything else is the "+
		"homeserver: each reading is one event write (notice; the state event follows separately and, for "+
		"sensor numbers, at most once per devices.state_interval), then the owner's /sync wake-up: push "+
		"evaluation up to the new position (unread counts), one read transaction for the whole response, "+
		"and the HTTP round trip. Each new Badger transaction, read or write, first waits for the commits "+
		"already in flight (each with its fsync), so the tail follows the disk and the number of writes in "+
		"flight; each command is the client's write plus the application-service transaction to the bridge, "+
		"whose worker persists its position with a durable write after every transaction.\n")
	return b.String()
}
