package sync

import (
	"cmp"
	"context"
	"slices"
	gosync "sync"
	"time"

	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/appliance/bus"
	"github.com/hearth-home/hearth/matrix/change"
	"github.com/hearth-home/hearth/matrix/clientapi"
	"github.com/hearth-home/hearth/matrix/filter"
	"github.com/hearth-home/hearth/matrix/ignore"
	"github.com/hearth-home/hearth/matrix/merr"
	"github.com/hearth-home/hearth/matrix/store"
)

// Presence (spec: "Presence") lives in memory only: it is ephemeral by definition, and a
// store write per state change would cost an fsync on an SD card. It is off unless the
// appliance calls EnablePresence (config `presence`); then:
//
//   - PUT /presence and /sync's set_presence set a user's state (and status message);
//     a sync with set_presence omitted or "online" marks the user online unless they pinned
//     unavailable or offline through PUT; set_presence=offline does not touch presence.
//   - A user with no sync in progress and no sync or PUT for presenceTimeout goes offline.
//     A running sync counts as activity (last_active_ago, currently_active), as do the events
//     the user sends; so there is no separate idle timer: idleness is what clients report.
//   - Every change others should hear of takes the next presence serial, the third part of
//     the sync token ("s<pos>_<typing>_<presence>"), and is announced on the bus as
//     change.Presence, which wakes the users sharing a room with its subject. /sync sends
//     m.presence events for users sharing a room with the syncing user (and the user
//     themselves) whose serial is past the token's.
//
// Memory: one map entry per tracked user, at most presenceMaxUsers, plus a change log of at
// most 2*presenceLogMax entries; BenchmarkPresenceMemory measures ~165 bytes per user with its
// ID and a status message. Offline users without a status message are forgotten after
// presenceForget.

// Presence states.
const (
	presOffline uint8 = iota
	presOnline
	presUnavailable
)

var presenceNames = [...]string{presOffline: "offline", presOnline: "online", presUnavailable: "unavailable"}

func presenceState(s string) (uint8, bool) {
	for i, n := range presenceNames {
		if n == s {
			return uint8(i), true
		}
	}
	return 0, false
}

const (
	presenceTimeout      = 30 * time.Second // offline this long after the last sync or PUT
	presenceActiveWindow = time.Minute      // currently_active while last active this recently
	presenceSweepEvery   = 5 * time.Second
	presenceForget       = time.Hour // offline entries without a status message are dropped after this
	presenceMaxUsers     = 20000
	presenceLogMax       = 4096 // recent changes kept for /sync; older tokens scan the table
)

// presenceEntry is one user's presence. Kept by value in the map: no pointer per user.
type presenceEntry struct {
	lastActive int64  // unix ms of the last pro-active event (0: never)
	lastSeen   int64  // unix ms of the last sync or PUT, for the offline timeout
	serial     uint64 // serial of the last change others were told of
	changedAt  int64  // unix ms of that change
	statusMsg  string
	syncing    int32 // syncs in progress
	state      uint8
	hasMsg     bool
	pinned     bool // unavailable or offline set by PUT: a sync's default "online" does not override it
}

// presenceChange is one entry of the change log.
type presenceChange struct {
	serial uint64
	user   string
}

// presenceTracker is the in-memory presence table.
type presenceTracker struct {
	mu     gosync.Mutex
	serial uint64
	users  map[string]presenceEntry
	max    int
	now    func() time.Time
	log    []presenceChange // recent changes in serial order (contiguous serials)
	// publish announces a change (set by EnablePresence; tests leave it nil).
	publish func(user string)
}

func newPresenceTracker(max int) *presenceTracker {
	return &presenceTracker{users: map[string]presenceEntry{}, max: max, now: time.Now}
}

// entry returns a user's entry for update, making room for a new one if needed; ok is false
// when the table is full of users who are not offline.
func (t *presenceTracker) entry(user string) (presenceEntry, bool) {
	if e, ok := t.users[user]; ok {
		return e, true
	}
	if len(t.users) >= t.max && !t.evictLocked() {
		return presenceEntry{}, false
	}
	return presenceEntry{}, true
}

// evictLocked drops the offline entry that changed longest ago.
func (t *presenceTracker) evictLocked() bool {
	victim, best := "", uint64(0)
	for u, e := range t.users {
		if e.state == presOffline && e.syncing == 0 && (victim == "" || e.serial < best) {
			victim, best = u, e.serial
		}
	}
	if victim == "" {
		return false
	}
	delete(t.users, victim)
	return true
}

// bump records a change others should hear of.
func (t *presenceTracker) bump(user string, e *presenceEntry, now int64) {
	t.serial++
	e.serial = t.serial
	e.changedAt = now
	t.log = append(t.log, presenceChange{serial: t.serial, user: user})
	if len(t.log) > 2*presenceLogMax {
		t.log = append([]presenceChange(nil), t.log[len(t.log)-presenceLogMax:]...)
	}
}

// set applies PUT /presence. It reports whether anything others see changed.
func (t *presenceTracker) set(user string, state uint8, msg *string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.entry(user)
	if !ok {
		return false
	}
	now := t.now().UnixMilli()
	e.lastSeen = now
	newMsg, hasMsg := "", msg != nil
	if hasMsg {
		newMsg = *msg
	}
	changed := e.serial == 0 || e.state != state || e.hasMsg != hasMsg || e.statusMsg != newMsg
	if state == presOnline && (e.lastActive == 0 || e.state != presOnline) {
		changed = true // last_active_ago restarts
	}
	if state == presOnline {
		e.lastActive = now
	}
	e.state, e.statusMsg, e.hasMsg, e.pinned = state, newMsg, hasMsg, state != presOnline
	if changed {
		t.bump(user, &e, now)
	}
	t.users[user] = e
	return changed
}

// syncStart marks a sync in progress with set_presence online or unavailable.
func (t *presenceTracker) syncStart(user string, state uint8) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.entry(user)
	if !ok {
		return false
	}
	now := t.now().UnixMilli()
	e.syncing++
	e.lastSeen = now
	changed := false
	switch {
	case state == presUnavailable:
		changed = e.state != presUnavailable
		e.state, e.pinned = presUnavailable, false
	case e.pinned:
		// PUT said unavailable or offline; the sync's default does not override it.
	default:
		changed = e.state != presOnline
		e.state = presOnline
		e.lastActive = now
	}
	if changed {
		t.bump(user, &e, now)
	}
	t.users[user] = e
	return changed
}

// syncEnd ends a sync begun with syncStart.
func (t *presenceTracker) syncEnd(user string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.users[user]
	if !ok {
		return
	}
	if e.syncing > 0 {
		e.syncing--
	}
	e.lastSeen = t.now().UnixMilli()
	t.users[user] = e
}

// active records a pro-active event (the user sent something); no one is told.
func (t *presenceTracker) active(user string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if e, ok := t.users[user]; ok && e.state == presOnline {
		e.lastActive = t.now().UnixMilli()
		t.users[user] = e
	}
}

// sweep times out users who stopped syncing and forgets old offline entries; it returns the
// users whose presence changed.
func (t *presenceTracker) sweep() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now().UnixMilli()
	var changed []string
	for u, e := range t.users {
		switch {
		case e.state != presOffline && e.syncing == 0 && now-e.lastSeen > presenceTimeout.Milliseconds():
			e.state, e.pinned = presOffline, false
			t.bump(u, &e, now)
			t.users[u] = e
			changed = append(changed, u)
		case e.state == presOffline && e.syncing == 0 && !e.hasMsg && now-e.changedAt > presenceForget.Milliseconds():
			delete(t.users, u)
		}
	}
	return changed
}

func (t *presenceTracker) announce(user string) {
	if t.publish != nil {
		t.publish(user)
	}
}

func (t *presenceTracker) current() uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.serial
}

// presenceView is a copy of an entry taken under the lock.
type presenceView struct {
	user string
	presenceEntry
}

// changedSince copies the entries changed in (since, upto]: from the change log when it
// reaches back far enough, else by scanning the table.
func (t *presenceTracker) changedSince(since, upto uint64) []presenceView {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.serial <= since {
		return nil
	}
	var out []presenceView
	if len(t.log) > 0 && t.log[0].serial <= since+1 {
		i, _ := slices.BinarySearchFunc(t.log, since+1, func(c presenceChange, s uint64) int {
			return cmp.Compare(c.serial, s)
		})
		seen := map[string]bool{}
		for _, c := range t.log[i:] {
			if c.serial > upto {
				break
			}
			if seen[c.user] {
				continue
			}
			seen[c.user] = true
			if e, ok := t.users[c.user]; ok && e.serial > since && e.serial <= upto {
				out = append(out, presenceView{user: c.user, presenceEntry: e})
			}
		}
		return out
	}
	for u, e := range t.users {
		if e.serial > since && e.serial <= upto {
			out = append(out, presenceView{user: u, presenceEntry: e})
		}
	}
	return out
}

func (t *presenceTracker) get(user string) (presenceEntry, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.users[user]
	return e, ok
}

// status renders an entry for GET /presence and m.presence events.
func (e presenceEntry) status(now int64) *clientapi.PresenceStatus {
	st := &clientapi.PresenceStatus{Presence: presenceNames[e.state]}
	if e.lastActive > 0 {
		ago := max(now-e.lastActive, 0)
		st.LastActiveAgo = &ago
		if e.state == presOnline {
			active := ago < presenceActiveWindow.Milliseconds()
			st.CurrentlyActive = &active
		}
	}
	if e.hasMsg {
		msg := e.statusMsg
		st.StatusMsg = &msg
	}
	return st
}

// presenceEvent is an m.presence event in /sync.
type presenceEvent struct {
	Type    string                    `json:"type"`
	Sender  string                    `json:"sender"`
	Content *clientapi.PresenceStatus `json:"content"`
}

// EnablePresence switches presence on (config `presence`): changes are announced on b as
// change.Presence, the events users send count as activity, and a sweeper times out users
// who stopped syncing. Call before serving.
func (s *Service) EnablePresence(b *bus.Bus[change.Change]) {
	t := newPresenceTracker(presenceMaxUsers)
	t.publish = func(user string) { b.Publish(change.Change{Kind: change.Presence, User: user}) }
	s.presence = t
	b.Subscribe(func(c change.Change) {
		if c.Kind == change.Event && c.Sender != "" {
			t.active(c.Sender) // inline on the bus: a map update, never blocks
		}
	})
	go func() {
		tick := time.NewTicker(presenceSweepEvery)
		defer tick.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-tick.C:
				for _, u := range t.sweep() {
					t.announce(u)
				}
			}
		}
	}()
}

// SetPresence implements clientapi.Presence.
func (s *Service) SetPresence(ctx context.Context, user id.UserID, presence string, statusMsg *string) error {
	st, ok := presenceState(presence)
	if !ok {
		return merr.InvalidParam("presence must be online, offline or unavailable")
	}
	if s.presence == nil {
		return nil // switched off: accepted and ignored
	}
	if s.presence.set(user.String(), st, statusMsg) {
		s.presence.announce(user.String())
	}
	return nil
}

// GetPresence implements clientapi.Presence: users see their own presence and that of users
// they share a room with (M_FORBIDDEN otherwise); offline when presence is switched off.
func (s *Service) GetPresence(ctx context.Context, viewer, user id.UserID) (*clientapi.PresenceStatus, error) {
	if s.presence == nil {
		return &clientapi.PresenceStatus{Presence: "offline"}, nil
	}
	if viewer != user && !s.n.sharesRoom(viewer.String(), user.String()) {
		return nil, merr.Forbidden("you are not allowed to see their presence")
	}
	e, ok := s.presence.get(user.String())
	if !ok {
		return &clientapi.PresenceStatus{Presence: "offline"}, nil
	}
	return e.status(time.Now().UnixMilli()), nil
}

// presenceSync applies /sync's set_presence for the duration of one sync; call the returned
// function when the sync ends.
func (s *Service) presenceSync(user id.UserID, setPresence string) (func(), error) {
	st := presOnline
	if setPresence != "" {
		var ok bool
		if st, ok = presenceState(setPresence); !ok {
			return nil, merr.InvalidParam("set_presence must be online, offline or unavailable")
		}
	}
	if s.presence == nil || st == presOffline {
		return func() {}, nil
	}
	if s.presence.syncStart(user.String(), st) {
		s.presence.announce(user.String())
	}
	return func() { s.presence.syncEnd(user.String()) }, nil
}

// presenceSerial is the current presence serial for the sync token (0 when switched off).
func (s *Service) presenceSerial() uint64 {
	if s.presence == nil {
		return 0
	}
	return s.presence.current()
}

// addPresence puts into resp the m.presence events of users sharing a room with user whose
// presence changed in (since, upto] (every tracked one on an initial sync).
func (s *Service) addPresence(txn *store.Txn, user string, since *token, upto uint64, f *filter.Filter, resp *Response, newlyVisible map[string]bool) error {
	if s.presence == nil {
		return nil
	}
	var from uint64
	if since != nil && since.presence <= upto {
		from = since.presence // a larger serial is from before a restart: send everything
	}
	changed := s.presence.changedSince(from, upto)
	// Users who just came into view get their current presence even if it is old news.
	for u := range newlyVisible {
		if slices.ContainsFunc(changed, func(v presenceView) bool { return v.user == u }) {
			continue
		}
		if e, ok := s.presence.get(u); ok {
			changed = append(changed, presenceView{user: u, presenceEntry: e})
		}
	}
	if len(changed) == 0 {
		return nil
	}
	share := s.n.sharing(user)
	ign, err := ignore.Load(txn, user)
	if err != nil {
		return err
	}
	var pf *filter.EventFilter
	if f != nil {
		pf = f.Presence
	}
	slices.SortFunc(changed, func(a, b presenceView) int {
		switch {
		case a.user < b.user:
			return -1
		case a.user > b.user:
			return 1
		}
		return 0
	})
	now := time.Now().UnixMilli()
	for _, c := range changed {
		if _, ok := share[c.user]; (!ok && c.user != user) || ign.Has(c.user) || !pf.Match("m.presence", c.user) {
			continue
		}
		if pf != nil && pf.Limit != nil && len(resp.Presence.Events) >= *pf.Limit {
			break
		}
		resp.Presence.Events = append(resp.Presence.Events, presenceEvent{Type: "m.presence", Sender: c.user, Content: c.status(now)})
	}
	return nil
}

// sharesRoom reports whether two users are joined to or invited into a common room.
func (n *notifier) sharesRoom(a, b string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, m := range n.members {
		if _, ok := m[a]; ok {
			if _, ok := m[b]; ok {
				return true
			}
		}
	}
	return false
}

// sharing returns the users sharing a room with user.
func (n *notifier) sharing(user string) map[string]struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := map[string]struct{}{}
	for _, m := range n.members {
		if _, ok := m[user]; ok {
			for u := range m {
				out[u] = struct{}{}
			}
		}
	}
	return out
}
