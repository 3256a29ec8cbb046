package gpio

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"periph.io/x/conn/v3/gpio"

	"github.com/hearth-home/hearth/devices"
)

// AdapterName is the prefix of this adapter's device IDs.
const AdapterName = "gpio"

// pollEvery bounds how long a sensor goroutine waits for an edge before checking whether it
// should stop: periph's WaitForEdge takes a timeout, not a context.
const pollEvery = 250 * time.Millisecond

var (
	// ErrUnknownDevice is returned by Command for an ID this adapter does not manage.
	ErrUnknownDevice = errors.New("gpio: unknown device")
	// ErrInvalidCommand is returned for a command the device cannot carry out.
	ErrInvalidCommand = errors.New("gpio: invalid command")
)

// Adapter drives switch pins and watches sensor pins.
type Adapter struct {
	log      *slog.Logger
	switches map[string]*outPin // by local ID
	sensors  []*inPin

	mu   sync.Mutex
	sink devices.Sink // set by Run; Command reports through it
}

type outPin struct {
	dev       devices.Device
	pin       gpio.PinIO
	activeLow bool
	mu        sync.Mutex // orders the level change and its report
}

type inPin struct {
	dev       devices.Device
	pin       gpio.PinIO
	pull      gpio.Pull
	debounce  time.Duration
	edge      reportEdge
	activeLow bool
}

// New checks the configuration and finds every pin through pins. It does not touch the pins'
// levels or modes; Run does.
func New(cfg Config, pins PinSource, log *slog.Logger) (*Adapter, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	a := &Adapter{log: log.With("adapter", AdapterName), switches: map[string]*outPin{}}
	seenID, seenPin := map[string]bool{}, map[string]bool{}
	claim := func(id, pin string) error {
		switch {
		case pin == "":
			return fmt.Errorf("%w: a pin has no name", ErrConfig)
		case strings.ContainsAny(id, " \t:"):
			return fmt.Errorf("%w: id %q has spaces or colons", ErrConfig, id)
		case seenID[id]:
			return fmt.Errorf("%w: id %q used twice", ErrConfig, id)
		case seenPin[pin]:
			return fmt.Errorf("%w: pin %s used twice", ErrConfig, pin)
		}
		seenID[id], seenPin[pin] = true, true
		return nil
	}
	for _, s := range cfg.Switches {
		id := localID(s.ID, s.Pin)
		if err := claim(id, s.Pin); err != nil {
			return nil, err
		}
		p, err := pins(s.Pin)
		if err != nil {
			return nil, fmt.Errorf("gpio: switch %s: %w", id, err)
		}
		a.switches[id] = &outPin{
			dev:       devices.Device{ID: AdapterName + ":" + id, Name: nameOr(s.Name, s.Pin), Kind: devices.Switch, Adapter: AdapterName, Area: s.Area, Model: "GPIO " + s.Pin},
			pin:       p,
			activeLow: s.ActiveLow,
		}
	}
	for _, s := range cfg.Sensors {
		id := localID(s.ID, s.Pin)
		if err := claim(id, s.Pin); err != nil {
			return nil, err
		}
		pull, err := parsePull(s.Pull)
		if err != nil {
			return nil, fmt.Errorf("gpio: sensor %s: %w", id, err)
		}
		edge, err := parseEdge(s.Edge)
		if err != nil {
			return nil, fmt.Errorf("gpio: sensor %s: %w", id, err)
		}
		if s.Debounce < 0 {
			return nil, fmt.Errorf("%w: sensor %s: negative debounce", ErrConfig, id)
		}
		debounce := s.Debounce
		if debounce == 0 {
			debounce = DefaultDebounce
		}
		p, err := pins(s.Pin)
		if err != nil {
			return nil, fmt.Errorf("gpio: sensor %s: %w", id, err)
		}
		a.sensors = append(a.sensors, &inPin{
			dev: devices.Device{ID: AdapterName + ":" + id, Name: nameOr(s.Name, s.Pin), Kind: devices.BinarySensor,
				Adapter: AdapterName, Area: s.Area, DeviceClass: s.DeviceClass, Model: "GPIO " + s.Pin},
			pin: p, pull: pull, debounce: debounce, edge: edge, activeLow: s.ActiveLow,
		})
	}
	return a, nil
}

func nameOr(name, pin string) string {
	if name != "" {
		return name
	}
	return pin
}

// Name implements devices.Adapter.
func (a *Adapter) Name() string { return AdapterName }

// Run implements devices.Adapter: it sets switches off, configures the sensor inputs, reports
// everything and then watches the sensors until ctx ends. A pin that refuses its mode is an
// error at start, since retrying cannot fix the board.
func (a *Adapter) Run(ctx context.Context, sink devices.Sink) error {
	a.mu.Lock()
	a.sink = sink
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		a.sink = nil
		a.mu.Unlock()
	}()
	for _, s := range a.switches {
		sink.Upsert(s.dev)
		if err := a.drive(s, false, sink); err != nil {
			return err
		}
	}
	for _, s := range a.sensors {
		// Both edges always: the level must be tracked to debounce and to know the state,
		// whichever transitions are reported.
		if err := s.pin.In(s.pull, gpio.BothEdges); err != nil {
			return fmt.Errorf("gpio: configure %s as input: %w", s.dev.ID, err)
		}
		sink.Upsert(s.dev)
	}
	var wg sync.WaitGroup
	for _, s := range a.sensors {
		wg.Go(func() { s.watch(ctx, sink) })
	}
	<-ctx.Done() // switches need Run alive too, even without sensors
	wg.Wait()
	// The pins keep their levels, but nothing answers for them any more.
	for _, s := range a.switches {
		sink.Report(s.dev.ID, devices.State{Available: false, LastSeen: time.Now()})
	}
	return nil
}

// Command implements devices.Adapter: switches take On; sensors take nothing.
func (a *Adapter) Command(_ context.Context, id string, c devices.Command) error {
	local, ok := strings.CutPrefix(id, AdapterName+":")
	s := a.switches[local]
	if !ok || s == nil {
		for _, in := range a.sensors {
			if in.dev.ID == id {
				return fmt.Errorf("%w: %s is a sensor", ErrInvalidCommand, id)
			}
		}
		return fmt.Errorf("%w: %q", ErrUnknownDevice, id)
	}
	if c.On == nil || c.Brightness != nil || c.ColorTemp != nil || c.Color != nil || c.Action != "" {
		return fmt.Errorf("%w: %s is a switch and takes only on/off", ErrInvalidCommand, id)
	}
	a.mu.Lock()
	sink := a.sink
	a.mu.Unlock()
	return a.drive(s, *c.On, sink)
}

// drive sets a switch's level and reports it: an output has no feedback, so the level set is
// the state.
func (a *Adapter) drive(s *outPin, on bool, sink devices.Sink) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	level := gpio.Level(on != s.activeLow)
	if err := s.pin.Out(level); err != nil {
		return fmt.Errorf("gpio: set %s %s: %w", s.dev.ID, level, err)
	}
	if sink != nil {
		sink.Report(s.dev.ID, devices.State{Available: true, LastSeen: time.Now(), On: &on})
	}
	return nil
}

// watch reports the sensor's level now and after every settled change.
func (s *inPin) watch(ctx context.Context, sink devices.Sink) {
	last := s.pin.Read()
	s.report(sink, last)
	for ctx.Err() == nil {
		if !s.pin.WaitForEdge(pollEvery) {
			continue
		}
		// Debounce: wait until the pin has been quiet for the debounce time.
		for ctx.Err() == nil && s.pin.WaitForEdge(s.debounce) {
		}
		level := s.pin.Read()
		if level == last {
			continue // bounced back to where it was
		}
		last = level
		if s.edge.reports(level) {
			s.report(sink, level)
		}
	}
	sink.Report(s.dev.ID, devices.State{Available: false, LastSeen: time.Now()})
}

func (s *inPin) report(sink devices.Sink, level gpio.Level) {
	detected := (level == gpio.High) != s.activeLow
	sink.Report(s.dev.ID, devices.State{Available: true, LastSeen: time.Now(), Detected: &detected})
}
