package devices

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"
)

// Registry is the one Sink every adapter reports into. It keeps each device's description and
// merged state, remembers which adapter owns which device (so a command goes back to the
// adapter that announced the device), tells subscribers what changed and keeps the adapters
// running, restarting one that stops with a growing pause.
//
// Subscribers are never waited on: a change marks the device dirty in each subscription and
// wakes it; however many reports arrive before the subscriber looks, it sees the device once,
// with its latest state. A chatty sensor therefore costs a subscriber one map entry, not a
// queue.
type Registry struct {
	log *slog.Logger

	// MinBackoff and MaxBackoff bound the pause before an adapter that stopped is run again;
	// the pause doubles per failure and resets after a run that lasted longer than MaxBackoff.
	MinBackoff, MaxBackoff time.Duration

	mu       sync.RWMutex
	entries  map[string]*entry
	adapters map[string]Adapter
	subs     map[*Subscription]struct{}
	now      func() time.Time
	runCtx   context.Context // set while Run runs: adapters added then start at once
	runWG    sync.WaitGroup
}

type entry struct {
	dev   Device
	state State
	owner string // Name of the adapter whose sink announced the device
}

// Entry is one device with its merged state, as a subscriber or the CLI sees it.
type Entry struct {
	Device Device `json:"device"`
	State  State  `json:"state"`
}

// Change says what happened to a device since the subscriber last looked. Several kinds
// coalesce into one Change.
type Change struct {
	ID       string
	Upserted bool // the description is new or changed
	Reported bool // the state changed
	Removed  bool // the device is gone (Upserted/Reported may be set if it came back since)
	// First is when the oldest change in this batch was recorded; latency measurements use it.
	First time.Time
}

// ErrUnknownDevice is returned (wrapped) by Command for an ID no adapter announced.
var ErrUnknownDevice = errors.New("unknown device")

// NewRegistry makes an empty registry.
func NewRegistry(log *slog.Logger) *Registry {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Registry{
		log:        log,
		MinBackoff: time.Second,
		MaxBackoff: time.Minute,
		entries:    map[string]*entry{},
		adapters:   map[string]Adapter{},
		subs:       map[*Subscription]struct{}{},
		now:        time.Now,
	}
}

// Add registers an adapter. Names must be unique. While Run runs, the adapter starts at once
// (a Hue bridge paired from the command line).
func (r *Registry) Add(a Adapter) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	name := a.Name()
	if name == "" || strings.Contains(name, ":") {
		return fmt.Errorf("adapter name %q: must be non-empty and without ':'", name)
	}
	if _, dup := r.adapters[name]; dup {
		return fmt.Errorf("adapter %q added twice", name)
	}
	r.adapters[name] = a
	if r.runCtx != nil {
		ctx := r.runCtx
		r.runWG.Go(func() { r.runAdapter(ctx, a) })
	}
	return nil
}

// Adapter returns a registered adapter by name (the CLI's pair-hue reaches the Hue adapter so).
func (r *Registry) Adapter(name string) (Adapter, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	a, ok := r.adapters[name]
	return a, ok
}

// Run runs every adapter until ctx ends and returns once they all returned.
func (r *Registry) Run(ctx context.Context) {
	r.mu.Lock()
	r.runCtx = ctx
	for _, a := range r.adapters {
		r.runWG.Go(func() { r.runAdapter(ctx, a) })
	}
	r.mu.Unlock()
	<-ctx.Done()
	r.runWG.Wait()
	r.mu.Lock()
	r.runCtx = nil
	r.mu.Unlock()
}

func (r *Registry) runAdapter(ctx context.Context, a Adapter) {
	log := r.log.With("adapter", a.Name())
	sink := &adapterSink{r: r, name: a.Name()}
	backoff := time.Duration(0)
	for ctx.Err() == nil {
		started := time.Now()
		err := runSafely(ctx, a, sink)
		if ctx.Err() != nil {
			return
		}
		// An adapter that stops while we still want it ran into something it could not retry:
		// its devices are unreachable until it is back.
		r.markUnavailable(a.Name())
		if time.Since(started) > r.MaxBackoff {
			backoff = 0
		}
		backoff = min(max(backoff*2, r.MinBackoff), r.MaxBackoff)
		log.Warn("device adapter stopped; restarting", "err", err, "in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
	}
}

// runSafely turns an adapter's panic into an error so one broken adapter cannot take the
// appliance down with it.
func runSafely(ctx context.Context, a Adapter, sink Sink) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("adapter %s panicked: %v", a.Name(), p)
		}
	}()
	err = a.Run(ctx, sink)
	if err == nil {
		err = errors.New("returned without error")
	}
	return err
}

// adapterSink is the Sink one adapter sees: it records the adapter as the owner of what it
// announces, which is how Command finds the adapter for devices whose ID prefix is not the
// adapter's name (the MQTT adapter announces "z2m:" and "mqtt:" devices).
type adapterSink struct {
	r    *Registry
	name string
}

func (s *adapterSink) Upsert(d Device)            { s.r.upsert(s.name, d) }
func (s *adapterSink) Remove(id string)           { s.r.Remove(id) }
func (s *adapterSink) Report(id string, st State) { s.r.Report(id, st) }

// Upsert implements Sink for callers outside an adapter's Run (tests, the CLI): the owner is
// taken from the ID's prefix.
func (r *Registry) Upsert(d Device) {
	owner, _, _ := strings.Cut(d.ID, ":")
	r.upsert(owner, d)
}

func (r *Registry) upsert(owner string, d Device) {
	if d.ID == "" {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.entries[d.ID]
	if ok && e.dev == d && e.owner == owner {
		return // rediscovery of the same thing (retained MQTT config) is no change
	}
	if !ok {
		e = &entry{}
		r.entries[d.ID] = e
	}
	e.dev, e.owner = d, owner
	r.mark(d.ID, func(c *Change) { c.Upserted = true })
}

// Remove implements Sink.
func (r *Registry) Remove(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.entries[id]; !ok {
		return
	}
	delete(r.entries, id)
	r.mark(id, func(c *Change) { c.Removed, c.Upserted, c.Reported = true, false, false })
}

// Report implements Sink: non-nil fields replace the stored ones, Readings merge key by key,
// Available is taken as reported and LastSeen defaults to now. A report for a device nobody
// announced is dropped (an MQTT state topic may arrive before its discovery message).
func (r *Registry) Report(id string, s State) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.entries[id]
	if !ok {
		return
	}
	if s.LastSeen.IsZero() {
		s.LastSeen = r.now()
	}
	if !merge(&e.state, s) {
		return
	}
	r.mark(id, func(c *Change) { c.Reported = true })
}

// merge folds s into into and reports whether anything but LastSeen changed.
func merge(into *State, s State) bool {
	changed := into.Available != s.Available
	into.Available = s.Available
	into.LastSeen = s.LastSeen
	changed = setPtr(&into.On, s.On) || changed
	changed = setPtr(&into.Brightness, s.Brightness) || changed
	changed = setPtr(&into.ColorTemp, s.ColorTemp) || changed
	changed = setPtr(&into.Color, s.Color) || changed
	changed = setPtr(&into.Value, s.Value) || changed
	changed = setPtr(&into.Detected, s.Detected) || changed
	for k, v := range s.Readings {
		if into.Readings == nil {
			into.Readings = map[string]float64{}
		}
		if old, ok := into.Readings[k]; !ok || old != v {
			into.Readings[k] = v
			changed = true
		}
	}
	return changed
}

func setPtr[T comparable](dst **T, src *T) bool {
	if src == nil {
		return false
	}
	if *dst != nil && **dst == *src {
		return false
	}
	v := *src // a copy: the adapter may reuse its value
	*dst = &v
	return true
}

func (r *Registry) markUnavailable(owner string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, e := range r.entries {
		if e.owner == owner && e.state.Available {
			e.state.Available = false
			r.mark(id, func(c *Change) { c.Reported = true })
		}
	}
}

// Get returns one device and its state.
func (r *Registry) Get(id string) (Entry, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	e, ok := r.entries[id]
	if !ok {
		return Entry{}, false
	}
	return Entry{Device: e.dev, State: e.state.Clone()}, true
}

// List returns every device, ordered by ID.
func (r *Registry) List() []Entry {
	r.mu.RLock()
	out := make([]Entry, 0, len(r.entries))
	for _, e := range r.entries {
		out = append(out, Entry{Device: e.dev, State: e.state.Clone()})
	}
	r.mu.RUnlock()
	slices.SortFunc(out, func(a, b Entry) int { return cmp.Compare(a.Device.ID, b.Device.ID) })
	return out
}

// Clone copies the pointers' targets so a caller can keep a state while reports go on.
func (s State) Clone() State {
	c := s
	c.On = clonePtr(s.On)
	c.Brightness = clonePtr(s.Brightness)
	c.ColorTemp = clonePtr(s.ColorTemp)
	c.Color = clonePtr(s.Color)
	c.Value = clonePtr(s.Value)
	c.Detected = clonePtr(s.Detected)
	if s.Readings != nil {
		c.Readings = maps.Clone(s.Readings)
	}
	return c
}

func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

// Command sends c to the adapter that owns the device.
func (r *Registry) Command(ctx context.Context, id string, c Command) error {
	r.mu.RLock()
	e, ok := r.entries[id]
	var a Adapter
	if ok {
		a = r.adapters[e.owner]
	}
	r.mu.RUnlock()
	if !ok {
		return fmt.Errorf("command %s: %w", id, ErrUnknownDevice)
	}
	if a == nil {
		return fmt.Errorf("command %s: no adapter %q is running", id, e.owner)
	}
	if err := a.Command(ctx, id, c); err != nil {
		return fmt.Errorf("command %s: %w", id, err)
	}
	return nil
}

// Subscription collects the IDs of changed devices until its owner takes them.
type Subscription struct {
	r       *Registry
	wake    chan struct{}
	pending map[string]*Change // guarded by r.mu
}

// Subscribe starts collecting changes. Every device already known is reported as upserted,
// so a subscriber needs no separate initial listing.
func (r *Registry) Subscribe() *Subscription {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := &Subscription{r: r, wake: make(chan struct{}, 1), pending: map[string]*Change{}}
	now := r.now()
	for id := range r.entries {
		s.pending[id] = &Change{ID: id, Upserted: true, Reported: true, First: now}
	}
	if len(s.pending) > 0 {
		s.wake <- struct{}{}
	}
	r.subs[s] = struct{}{}
	return s
}

// mark records a change for every subscriber; r.mu is held.
func (r *Registry) mark(id string, f func(*Change)) {
	now := r.now()
	for s := range r.subs {
		c, ok := s.pending[id]
		if !ok {
			c = &Change{ID: id, First: now}
			s.pending[id] = c
		}
		f(c)
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// Wait returns a channel that receives when changes are pending.
func (s *Subscription) Wait() <-chan struct{} { return s.wake }

// Take returns the pending changes (in ID order) and clears them.
func (s *Subscription) Take() []Change {
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	out := make([]Change, 0, len(s.pending))
	for _, c := range s.pending {
		out = append(out, *c)
	}
	clear(s.pending)
	slices.SortFunc(out, func(a, b Change) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// Close stops the subscription.
func (s *Subscription) Close() {
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	delete(s.r.subs, s)
}
