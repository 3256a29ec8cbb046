package sync

import (
	"sort"
	gosync "sync"
	"time"
)

// typing keeps who is typing where, in memory only.
type typing struct {
	mu     gosync.Mutex
	serial uint64
	rooms  map[uint64]*roomTyping
}

type roomTyping struct {
	serial  uint64 // serial of the last change in this room
	changed time.Time
	users   map[string]time.Time
}

// typingKeep is how long a room nobody types in keeps its entry: a sync whose token predates
// the last change must still be told that everyone stopped.
const typingKeep = 5 * time.Minute

func newTyping() *typing { return &typing{rooms: map[uint64]*roomTyping{}} }

// set starts or stops a user typing; it reports whether anything changed.
func (t *typing) set(room uint64, user string, on bool, until time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	r := t.rooms[room]
	if r == nil {
		if !on {
			return false
		}
		r = &roomTyping{users: map[string]time.Time{}}
		t.rooms[room] = r
	}
	_, was := r.users[user]
	if on {
		r.users[user] = until
	} else {
		delete(r.users, user)
	}
	if was == on {
		return false // a refreshed timeout, or stopping twice, is not news
	}
	t.serial++
	r.serial, r.changed = t.serial, time.Now()
	return true
}

// typer is a user typing (or who was) in a room.
type typer struct {
	room uint64
	user string
}

// expire drops timed-out typers and returns the rooms that changed and who stopped typing.
func (t *typing) expire(now time.Time) ([]uint64, []typer) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var changed []uint64
	var gone []typer
	for id, r := range t.rooms {
		dirty := false
		for u, until := range r.users {
			if now.After(until) {
				delete(r.users, u)
				gone = append(gone, typer{id, u})
				dirty = true
			}
		}
		if dirty {
			t.serial++
			r.serial, r.changed = t.serial, now
			changed = append(changed, id)
		}
		if len(r.users) == 0 && !dirty && now.Sub(r.changed) > typingKeep {
			delete(t.rooms, id)
		}
	}
	return changed, gone
}

// is reports whether user is typing in room now.
func (t *typing) is(room uint64, user string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	r := t.rooms[room]
	if r == nil {
		return false
	}
	until, ok := r.users[user]
	return ok && time.Now().Before(until)
}

// current returns the global serial.
func (t *typing) current() uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.serial
}

// since reports the typers of a room if it changed after serial (or always when initial).
func (t *typing) since(room, serial uint64, initial bool) ([]string, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	r := t.rooms[room]
	if r == nil {
		return nil, false
	}
	if !initial && r.serial <= serial {
		return nil, false
	}
	users := make([]string, 0, len(r.users))
	for u := range r.users {
		users = append(users, u)
	}
	sort.Strings(users)
	if initial && len(users) == 0 {
		return nil, false
	}
	return users, true
}
