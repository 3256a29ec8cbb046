package hue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/hearth-home/hearth/devices"
)

// AdapterName is the default adapter name, the prefix of its device IDs.
const AdapterName = "hue"

// scenePrefix marks scene IDs among the adapter's devices: "hue:scene:<id>".
const scenePrefix = "scene:"

var (
	// ErrUnknownDevice is returned by Command for an ID this bridge did not announce.
	ErrUnknownDevice = errors.New("hue: unknown device")
	// ErrInvalidCommand is returned for a command this device cannot carry out as given.
	ErrInvalidCommand = errors.New("hue: invalid command")
)

// Config builds an Adapter.
type Config struct {
	// Credentials from Pair, as stored by the caller.
	Credentials Credentials
	// Name is the adapter's name and device ID prefix (default "hue"). Adapter names are
	// unique in the registry, so a second bridge needs its own ("hue2").
	Name string
	// Log receives connection trouble; nil discards.
	Log *slog.Logger
	// RetryMin and RetryMax bound the back-off between reconnects (defaults 1s and 60s).
	RetryMin, RetryMax time.Duration
}

var hexFingerprint = regexp.MustCompile(`^[0-9a-f]{64}$`)

// Adapter is one paired Hue bridge.
type Adapter struct {
	cfg  Config
	name string
	log  *slog.Logger
	c    *client

	mu     sync.Mutex
	lights map[string]*lightInfo // by Hue light id
	scenes map[string]bool       // Hue scene ids
	zigbee map[string]string     // zigbee_connectivity id -> Hue device id
}

// lightInfo is what the adapter remembers about a light between events.
type lightInfo struct {
	device    string       // owning Hue device id
	schema    *mirekSchema // accepted colour temperature range, nil when unknown
	reachable bool         // from the device's zigbee_connectivity
}

// New builds the adapter for a paired bridge. It does not connect; Run does.
func New(cfg Config) (*Adapter, error) {
	base, err := baseURL(cfg.Credentials.Address)
	if err != nil {
		return nil, err
	}
	if cfg.Credentials.AppKey == "" {
		return nil, errors.New("hue: credentials have no application key: pair first")
	}
	fp := strings.ToLower(strings.ReplaceAll(cfg.Credentials.Fingerprint, ":", ""))
	if !hexFingerprint.MatchString(fp) {
		return nil, fmt.Errorf("hue: credentials have no valid certificate fingerprint (%q): pair again", cfg.Credentials.Fingerprint)
	}
	if cfg.RetryMin <= 0 {
		cfg.RetryMin = time.Second
	}
	if cfg.RetryMax < cfg.RetryMin {
		cfg.RetryMax = max(60*time.Second, cfg.RetryMin)
	}
	name := cfg.Name
	if name == "" {
		name = AdapterName
	}
	if strings.ContainsAny(name, ": \t") {
		return nil, fmt.Errorf("hue: adapter name %q has spaces or colons", name)
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Adapter{
		cfg:    cfg,
		name:   name,
		log:    log.With("adapter", name, "bridge", cfg.Credentials.Address),
		c:      &client{base: base, key: cfg.Credentials.AppKey, http: newHTTPClient(pinnedTLS(fp))},
		lights: map[string]*lightInfo{},
		scenes: map[string]bool{},
	}, nil
}

// Name implements devices.Adapter.
func (a *Adapter) Name() string { return a.name }

// Run implements devices.Adapter: it keeps one event stream open, lists everything after each
// (re)connect and reports changes until ctx ends. A pinned-certificate mismatch or a refused key
// ends it with an error, since only pairing again can fix those.
func (a *Adapter) Run(ctx context.Context, sink devices.Sink) error {
	defer a.c.http.CloseIdleConnections()
	delay := a.cfg.RetryMin
	for {
		connected, err := a.session(ctx, sink)
		a.markUnavailable(sink)
		if ctx.Err() != nil {
			return nil
		}
		if permanent(err) {
			return fmt.Errorf("hue: bridge %s: %w", a.cfg.Credentials.Address, err)
		}
		if connected {
			delay = a.cfg.RetryMin
		}
		a.log.Warn("hue bridge connection lost, retrying", "err", err, "in", delay)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(delay):
		}
		delay = min(2*delay, a.cfg.RetryMax)
	}
}

// session opens the event stream, then lists all resources (so no change between the listing
// and the stream is lost) and follows the stream until it fails. connected says whether the
// listing succeeded, which resets the back-off.
func (a *Adapter) session(ctx context.Context, sink devices.Sink) (connected bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := a.openStream(ctx)
	if err != nil {
		return false, err
	}
	defer stream.Close()
	if err := a.sync(ctx, sink); err != nil {
		return false, err
	}
	return true, a.follow(ctx, stream, sink)
}

// markUnavailable reports every known device as unavailable, when the bridge is out of reach.
func (a *Adapter) markUnavailable(sink devices.Sink) {
	a.mu.Lock()
	ids := make([]string, 0, len(a.lights)+len(a.scenes))
	for id := range a.lights {
		ids = append(ids, a.lightID(id))
	}
	for id := range a.scenes {
		ids = append(ids, a.sceneID(id))
	}
	a.mu.Unlock()
	for _, id := range ids {
		sink.Report(id, devices.State{Available: false})
	}
}

func (a *Adapter) lightID(hueID string) string { return a.name + ":" + hueID }
func (a *Adapter) sceneID(hueID string) string { return a.name + ":" + scenePrefix + hueID }

// Command implements devices.Adapter. Lights take on/off, brightness (0 turns the light off, a
// positive value also turns it on), colour temperature and colour; scenes are recalled by
// turning them on or with Action "recall". The call returns when the bridge accepted the
// change; the new state arrives through the event stream.
func (a *Adapter) Command(ctx context.Context, id string, c devices.Command) error {
	local, ok := strings.CutPrefix(id, a.name+":")
	if !ok {
		return fmt.Errorf("%w: %q", ErrUnknownDevice, id)
	}
	if sc, ok := strings.CutPrefix(local, scenePrefix); ok {
		return a.recall(ctx, sc, c)
	}
	a.mu.Lock()
	info, ok := a.lights[local]
	var schema *mirekSchema
	if ok {
		schema = info.schema
	}
	a.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w: %q", ErrUnknownDevice, id)
	}
	body, err := lightCommand(c, schema)
	if err != nil {
		return fmt.Errorf("%s: %w", id, err)
	}
	if err := a.c.put(ctx, "/clip/v2/resource/light/"+local, body); err != nil {
		return fmt.Errorf("hue: command %s: %w", id, err)
	}
	return nil
}

// lightCommand translates a command into a CLIP v2 light update.
func lightCommand(c devices.Command, schema *mirekSchema) (lightUpdate, error) {
	var u lightUpdate
	if c.Action != "" {
		return u, fmt.Errorf("%w: lights take no action %q", ErrInvalidCommand, c.Action)
	}
	if c.On != nil {
		u.On = &onState{On: *c.On}
	}
	if c.Brightness != nil {
		b := *c.Brightness
		switch {
		case b < 0 || b > 100:
			return u, fmt.Errorf("%w: brightness %d is outside 0-100", ErrInvalidCommand, b)
		case b == 0:
			// Hue's dimming cannot go to zero: zero means off.
			if u.On == nil {
				u.On = &onState{On: false}
			}
		default:
			u.Dimming = &dimming{Brightness: float64(b)}
			if u.On == nil {
				u.On = &onState{On: true}
			}
		}
	}
	if c.ColorTemp != nil {
		if *c.ColorTemp <= 0 {
			return u, fmt.Errorf("%w: colour temperature %d K", ErrInvalidCommand, *c.ColorTemp)
		}
		u.ColorTemperature = &mirekUpdate{Mirek: kelvinToMirek(*c.ColorTemp, schema)}
	}
	if c.Color != nil {
		u.Color = &color{XY: rgbToXY(*c.Color)}
	}
	if u == (lightUpdate{}) {
		return u, fmt.Errorf("%w: nothing to change", ErrInvalidCommand)
	}
	return u, nil
}

// recall activates a scene.
func (a *Adapter) recall(ctx context.Context, sc string, c devices.Command) error {
	a.mu.Lock()
	known := a.scenes[sc]
	a.mu.Unlock()
	if !known {
		return fmt.Errorf("%w: scene %q", ErrUnknownDevice, sc)
	}
	wants := (c.On != nil && *c.On) || c.Action == "recall" || c.Action == "activate"
	if !wants {
		return fmt.Errorf("%w: a scene can only be recalled (turn it on)", ErrInvalidCommand)
	}
	body := sceneUpdate{Recall: sceneRecall{Action: "active"}}
	if err := a.c.put(ctx, "/clip/v2/resource/scene/"+sc, body); err != nil {
		return fmt.Errorf("hue: recall scene %s: %w", sc, err)
	}
	return nil
}
