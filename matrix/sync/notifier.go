package sync

import (
	gosync "sync"
	"sync/atomic"

	"github.com/hearth-home/hearth/matrix/change"
)

// notifier parks waiting syncs per user and wakes them when something that concerns the user
// is visible in the store. It keeps, for every room, the local users joined or invited, so an
// event wakes exactly the users who may receive it.
type notifier struct {
	mu      gosync.Mutex
	waiters map[string]chan struct{}
	members map[uint64]map[string]struct{}
	waiting atomic.Int64
}

func newNotifier() *notifier {
	return &notifier{waiters: map[string]chan struct{}{}, members: map[uint64]map[string]struct{}{}}
}

// setMember records a local user's membership in a room for routing wake-ups.
func (n *notifier) setMember(room uint64, user, membership string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	m := n.members[room]
	if membership == "join" || membership == "invite" {
		if m == nil {
			m = map[string]struct{}{}
			n.members[room] = m
		}
		m[user] = struct{}{}
		return
	}
	if m != nil {
		delete(m, user)
		if len(m) == 0 {
			delete(n.members, room)
		}
	}
}

// known reports whether the user is routed in any room.
func (n *notifier) known(user string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, m := range n.members {
		if _, ok := m[user]; ok {
			return true
		}
	}
	return false
}

// channel returns the channel closed at the user's next wake-up. Take it before reading the
// store, so a change committed while building the response is never missed.
func (n *notifier) channel(user string) <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	ch, ok := n.waiters[user]
	if !ok {
		ch = make(chan struct{})
		n.waiters[user] = ch
	}
	return ch
}

func (n *notifier) wakeLocked(user string) {
	if ch, ok := n.waiters[user]; ok {
		close(ch)
		delete(n.waiters, user)
	}
}

func (n *notifier) wakeRoom(room uint64, extra ...string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for u := range n.members[room] {
		n.wakeLocked(u)
	}
	for _, u := range extra {
		n.wakeLocked(u)
	}
}

func (n *notifier) wakeUser(user string) {
	n.mu.Lock()
	n.wakeLocked(user)
	n.mu.Unlock()
}

// wakeSharing wakes the user and every local user sharing a room with them.
func (n *notifier) wakeSharing(user string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.wakeLocked(user)
	for _, m := range n.members {
		if _, ok := m[user]; ok {
			for u := range m {
				n.wakeLocked(u)
			}
		}
	}
}

// wakeAll releases every parked sync (shutdown).
func (n *notifier) wakeAll() {
	n.mu.Lock()
	for u := range n.waiters {
		n.wakeLocked(u)
	}
	n.mu.Unlock()
}

// onChange routes one committed change. It runs inline on the bus and must not block.
func (n *notifier) onChange(c change.Change, isLocal func(string) bool) {
	switch c.Kind {
	case change.Event:
		var extra []string
		if c.EventType == "m.room.member" && c.StateKey != nil && isLocal(*c.StateKey) {
			// Wake the target before the routing table forgets them (a kick must reach them).
			extra = append(extra, *c.StateKey)
			n.wakeRoom(c.Room, extra...)
			n.setMember(c.Room, *c.StateKey, c.Membership)
			return
		}
		n.wakeRoom(c.Room)
		if c.EventType == "m.room.member" && c.StateKey != nil {
			// Remote members are routed too, so that their presence and device-list changes
			// wake the local users sharing a room with them (from their next member event on).
			n.setMember(c.Room, *c.StateKey, c.Membership)
		}
	case change.Receipt, change.Typing:
		n.wakeRoom(c.Room)
	case change.AccountData, change.Devices, change.Membership, change.ToDevice:
		n.wakeUser(c.User)
	case change.DeviceKeys, change.Presence:
		// Everyone who shares a room with the user may need to hear of it; the contributor
		// decides what each of them gets. A remote user's change names the shared room.
		if c.Room != 0 {
			n.wakeRoom(c.Room)
		}
		n.wakeSharing(c.User)
	}
}
