package mqtt

import (
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/hearth-home/hearth/devices"
)

// maxCachedPayload bounds the last-payload cache: device state messages are small, and a
// bigger one is simply not replayed to entities added later.
const maxCachedPayload = 16 << 10

// registry holds the adapter's entities, the topics they read, and their last state. It owns
// the dynamic subscriptions: a topic is subscribed when the first entity needs it and dropped
// with the last one. All sink calls and (un)subscriptions happen outside the lock, in the
// order the changes were made.
type registry struct {
	log   *slog.Logger
	sink  devices.Sink
	subFn func(topics []string) // subscribe (non-blocking)
	unsub func(topics []string) // unsubscribe (non-blocking)

	emitMu sync.Mutex // keeps emitted batches in the order their changes were made

	mu        sync.Mutex
	entries   map[string]*entry          // by device ID
	byTopic   map[string]map[string]bool // topic -> device IDs reading it
	last      map[string][]byte          // last payload per subscribed topic, replayed to newcomers
	connected bool
	timers    map[string]*time.Timer // off_delay timers by device ID
	closed    bool
}

type entry struct {
	ent   entity
	owner string // what announced it: "ha:<discovery topic>" or "z2m:<ieee>"
	state devices.State
}

// change is one thing to tell the sink.
type change struct {
	upsert *devices.Device
	remove string
	report string
	state  devices.State
}

type batch struct {
	changes []change
	sub     []string
	unsub   []string
}

func newRegistry(log *slog.Logger, sink devices.Sink, sub, unsub func([]string)) *registry {
	return &registry{
		log: log, sink: sink, subFn: sub, unsub: unsub,
		entries: make(map[string]*entry),
		byTopic: make(map[string]map[string]bool),
		last:    make(map[string][]byte),
		timers:  make(map[string]*time.Timer),
	}
}

// emit delivers a batch. The emit lock keeps batches in order even though they are computed
// under mu and delivered after releasing it.
func (r *registry) emit(b batch) {
	if len(b.sub) > 0 {
		r.subFn(b.sub)
	}
	for _, c := range b.changes {
		switch {
		case c.upsert != nil:
			r.sink.Upsert(*c.upsert)
		case c.remove != "":
			r.sink.Remove(c.remove)
		default:
			r.sink.Report(c.report, c.state)
		}
	}
	if len(b.unsub) > 0 {
		r.unsub(b.unsub)
	}
}

// locked runs fn under the lock and emits what it produced, in order.
func (r *registry) locked(fn func(b *batch)) {
	r.emitMu.Lock()
	defer r.emitMu.Unlock()
	var b batch
	r.mu.Lock()
	if !r.closed {
		fn(&b)
	}
	r.mu.Unlock()
	r.emit(b)
}

// put replaces everything owner announced with ents: entities no longer listed are removed,
// new ones are added and changed ones re-announced. An ID already owned by someone else is
// refused (two discovery topics claiming one unique_id), as HA does.
func (r *registry) put(owner string, ents []entity) {
	r.locked(func(b *batch) {
		keep := make(map[string]bool, len(ents))
		for _, e := range ents {
			id := e.device().ID
			if old, ok := r.entries[id]; ok && old.owner != owner {
				r.log.Warn("mqtt: device ID already announced elsewhere; ignoring", "id", id, "by", owner, "owner", old.owner)
				continue
			}
			keep[id] = true
		}
		for id, en := range r.entries {
			if en.owner == owner && !keep[id] {
				r.removeLocked(b, id)
			}
		}
		for _, e := range ents {
			id := e.device().ID
			if !keep[id] {
				continue
			}
			var oldTopics []string
			if old, ok := r.entries[id]; ok { // a config update: same ID, maybe other topics
				oldTopics = dedupe(old.ent.topics())
			}
			en := &entry{ent: e, owner: owner}
			r.entries[id] = en
			dev := e.device()
			b.changes = append(b.changes, change{upsert: &dev})
			newTopics := dedupe(e.topics())
			for _, t := range newTopics {
				ids := r.byTopic[t]
				if ids == nil {
					ids = make(map[string]bool)
					r.byTopic[t] = ids
					b.sub = append(b.sub, t)
				}
				ids[id] = true
				if p, ok := r.last[t]; ok { // the retained message already arrived for another entity
					e.handle(t, p, &en.state)
				}
			}
			for _, t := range oldTopics {
				if !slices.Contains(newTopics, t) {
					r.dropTopicLocked(b, t, id)
				}
			}
			en.state.Available = r.connected && e.available()
			b.changes = append(b.changes, change{report: id, state: cloneState(en.state)})
		}
		b.unsub = slices.DeleteFunc(b.unsub, func(t string) bool { return r.byTopic[t] != nil })
	})
}

// removeOwner removes every entity owner announced (empty discovery payload, device gone).
func (r *registry) removeOwner(owner string) {
	r.locked(func(b *batch) {
		for id, en := range r.entries {
			if en.owner == owner {
				r.removeLocked(b, id)
			}
		}
	})
}

// owners returns the owners whose name starts with prefix.
func (r *registry) owners(prefix string) map[string]bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]bool)
	for _, en := range r.entries {
		if len(en.owner) >= len(prefix) && en.owner[:len(prefix)] == prefix {
			out[en.owner] = true
		}
	}
	return out
}

func (r *registry) removeLocked(b *batch, id string) {
	r.removeTopicsLocked(b, id)
	delete(r.entries, id)
	if t := r.timers[id]; t != nil {
		t.Stop()
		delete(r.timers, id)
	}
	b.changes = append(b.changes, change{remove: id})
}

func (r *registry) removeTopicsLocked(b *batch, id string) {
	for _, t := range dedupe(r.entries[id].ent.topics()) {
		r.dropTopicLocked(b, t, id)
	}
}

func (r *registry) dropTopicLocked(b *batch, t, id string) {
	ids := r.byTopic[t]
	delete(ids, id)
	if len(ids) == 0 {
		delete(r.byTopic, t)
		delete(r.last, t)
		b.unsub = append(b.unsub, t)
	}
}

// dispatch hands a message to every entity reading topic and reports the ones that changed.
func (r *registry) dispatch(topic string, payload []byte) {
	now := time.Now()
	r.locked(func(b *batch) {
		ids := r.byTopic[topic]
		if ids == nil {
			return
		}
		if len(payload) <= maxCachedPayload {
			r.last[topic] = slices.Clone(payload)
		} else {
			delete(r.last, topic)
		}
		for _, id := range sortedKeys(ids) {
			en := r.entries[id]
			wasAvail := en.state.Available
			changed := en.ent.handle(topic, payload, &en.state)
			en.state.Available = r.connected && en.ent.available()
			if !changed && wasAvail == en.state.Available {
				continue
			}
			if changed {
				en.state.LastSeen = now
			}
			r.armOffDelayLocked(id, en)
			b.changes = append(b.changes, change{report: id, state: cloneState(en.state)})
		}
	})
}

// armOffDelayLocked starts (or restarts) the timer that resets a binary sensor's detection.
func (r *registry) armOffDelayLocked(id string, en *entry) {
	od, ok := en.ent.(offDelayer)
	if !ok || od.offDelay() <= 0 || en.state.Detected == nil || !*en.state.Detected {
		return
	}
	if t := r.timers[id]; t != nil {
		t.Stop()
	}
	ent := en.ent
	r.timers[id] = time.AfterFunc(od.offDelay(), func() {
		r.update(id, ent, func(st *devices.State) bool {
			if st.Detected == nil || !*st.Detected {
				return false
			}
			f := false
			st.Detected = &f
			return true
		})
	})
}

// update changes one entity's state outside a message (optimistic commands, off_delay). ent
// guards against the entity having been replaced meanwhile.
func (r *registry) update(id string, ent entity, fn func(st *devices.State) bool) {
	r.locked(func(b *batch) {
		en := r.entries[id]
		if en == nil || en.ent != ent || !fn(&en.state) {
			return
		}
		en.state.LastSeen = time.Now()
		b.changes = append(b.changes, change{report: id, state: cloneState(en.state)})
	})
}

// setConnected marks every entity unavailable while the adapter has no broker connection and
// recomputes availability when it is back.
func (r *registry) setConnected(up bool) {
	r.locked(func(b *batch) {
		r.connected = up
		for _, id := range sortedKeys(r.entries) {
			en := r.entries[id]
			avail := up && en.ent.available()
			if avail == en.state.Available {
				continue
			}
			en.state.Available = avail
			b.changes = append(b.changes, change{report: id, state: cloneState(en.state)})
		}
	})
}

// lookup returns the entity with that ID.
func (r *registry) lookup(id string) (entity, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	en := r.entries[id]
	if en == nil {
		return nil, false
	}
	return en.ent, true
}

// topics returns every dynamic topic currently subscribed, for resubscribing after a reconnect.
func (r *registry) topics() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return sortedKeys(r.byTopic)
}

// close stops timers; later calls do nothing.
func (r *registry) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	for _, t := range r.timers {
		t.Stop()
	}
}

func cloneState(s devices.State) devices.State {
	out := s
	if s.On != nil {
		v := *s.On
		out.On = &v
	}
	if s.Brightness != nil {
		v := *s.Brightness
		out.Brightness = &v
	}
	if s.ColorTemp != nil {
		v := *s.ColorTemp
		out.ColorTemp = &v
	}
	if s.Color != nil {
		v := *s.Color
		out.Color = &v
	}
	if s.Value != nil {
		v := *s.Value
		out.Value = &v
	}
	if s.Detected != nil {
		v := *s.Detected
		out.Detected = &v
	}
	if s.Readings != nil {
		out.Readings = make(map[string]float64, len(s.Readings))
		for k, v := range s.Readings {
			out.Readings[k] = v
		}
	}
	return out
}

func dedupe(ts []string) []string {
	out := make([]string, 0, len(ts))
	seen := make(map[string]bool, len(ts))
	for _, t := range ts {
		if t != "" && !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
