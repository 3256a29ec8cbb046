package keys

import (
	"errors"
	"fmt"
	"slices"

	"github.com/hearth-home/hearth/matrix/change"
	"github.com/hearth-home/hearth/matrix/rooms"
	"github.com/hearth-home/hearth/matrix/store"
)

// Which remote users' device lists the cache may hold. A server hears of a remote user's
// device changes only while it shares a room with them (their server sends
// m.device_list_update to the servers in their rooms), so a cached list is only as good as
// that sharing:
//
//   - it is used and stored only while a local user shares a joined room with the owner;
//   - it is dropped whenever the owner's membership changes anywhere, and when a local user
//     leaves a room the owner is in and no other room is shared: across a gap in sharing the
//     list may have changed without a word reaching us, so the next query asks the owner.
//
// A remote user who joins a room and so comes to share one with us for the first time is
// "fresh" until their list is fetched here: their join already put them in the
// device_lists.changed of every local member of the room, no client here holds a list of
// theirs obtained since, and whoever asks gets it from the owner. An update arriving for them
// meanwhile (their server announces their devices to a room's new servers on a join) is no
// news, and is not written to the device-list stream: otherwise clients would see the user
// "changed" a second time for nothing. The mark is memory only; after a restart every update
// counts as news, which is the safe side.

// localJoinedRooms lists the rooms at least one local user is joined to, from the local
// membership index (only local users have one), without duplicates.
func localJoinedRooms(txn *store.Txn) ([]uint64, error) {
	seen := map[uint64]bool{}
	var out []uint64
	err := txn.AllMemberships(func(_ string, m store.Membership) (bool, error) {
		if m.Membership == "join" && !seen[m.Room] {
			seen[m.Room] = true
			out = append(out, m.Room)
		}
		return true, nil
	})
	if err != nil {
		return nil, fmt.Errorf("local memberships: %w", err)
	}
	slices.Sort(out)
	return out, nil
}

// sharesRoomWithLocal reports whether a remote user is joined to a room a local user is
// joined to.
func (s *Service) sharesRoomWithLocal(user string) (bool, error) {
	shared := false
	err := s.st.View(func(txn *store.Txn) error {
		rooms, err := s.sharedRooms(txn, user)
		shared = len(rooms) > 0
		return err
	})
	return shared, err
}

// trackable reports whether a remote user's device list may be served from (or put into) the
// cache; a failed check counts as no, which costs only a request to the owner.
func (s *Service) trackable(user string) bool {
	ok, err := s.sharesRoomWithLocal(user)
	if err != nil {
		s.log.Warn("shared rooms of a remote user", "user", user, "err", err)
		return false
	}
	return ok
}

// trackableSet is trackable for many users at once, reading the local memberships once: a
// key query may name many remote users.
func (s *Service) trackableSet(users []string) map[string]bool {
	out := make(map[string]bool, len(users))
	err := s.st.View(func(txn *store.Txn) error {
		local, err := localJoinedRooms(txn)
		if err != nil {
			return err
		}
		for _, u := range users {
			shared, err := sharedRoomsIn(txn, u, local)
			if err != nil {
				return err
			}
			out[u] = len(shared) > 0
		}
		return nil
	})
	if err != nil {
		s.log.Warn("shared rooms of remote users", "err", err)
		return map[string]bool{}
	}
	return out
}

// drop forgets a remote user's cached device list (and that they were fresh).
func (r *remoteState) drop(user string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.users, user)
	delete(r.fresh, user)
}

// markFresh notes that a remote user came to share a room with us and nothing of theirs has
// been fetched since. The set is bounded like the cache; past the bound a user is simply not
// marked, and their updates count as news.
func (r *remoteState) markFresh(user string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.fresh) < r.o.MaxUsers {
		r.fresh[user] = true
	}
}

// cachedUsers lists the users the cache holds.
func (r *remoteState) cachedUsers() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, 0, len(r.users))
	for u := range r.users {
		out = append(out, u)
	}
	return out
}

// forgetOnMembership keeps the cache to users we keep hearing about (see the top of this
// file). It is called from the bus for every membership event.
func (s *Service) forgetOnMembership(c change.Change) error {
	if s.remote == nil || c.Kind != change.Event || c.EventType != "m.room.member" || c.StateKey == nil {
		return nil
	}
	target := *c.StateKey
	if !s.isLocal(target) {
		// The owner joined, left or was removed somewhere: whether or not a room is still
		// shared, updates may have been missed while they were away.
		s.remote.drop(target)
		if c.Membership != "join" {
			return nil
		}
		fresh := false
		if err := s.st.View(func(txn *store.Txn) error {
			shared, err := s.sharedRooms(txn, target)
			if err != nil || len(shared) != 1 || shared[0] != c.Room {
				return err
			}
			// A join after a join is a profile change, not someone arriving: whoever
			// fetched their list before still holds it, and must hear of changes.
			prev, err := membershipBefore(txn, c.Pos, target)
			fresh = prev != "join"
			return err
		}); err != nil {
			return fmt.Errorf("rooms shared with %s: %w", target, err)
		}
		if fresh {
			s.remote.markFresh(target) // this join is what makes them share a room with us
		}
		return nil
	}
	if c.Membership == "join" {
		return nil
	}
	// A local user left (or was never in) a room: the remote users it shared with them may
	// now share no room with this server at all.
	users := s.remote.cachedUsers()
	if len(users) == 0 {
		return nil
	}
	var gone []string
	err := s.st.View(func(txn *store.Txn) error {
		local, err := localJoinedRooms(txn)
		if err != nil {
			return err
		}
		for _, u := range users {
			rooms, err := sharedRoomsIn(txn, u, local)
			if err != nil {
				return err
			}
			if len(rooms) == 0 {
				gone = append(gone, u)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("remote users still sharing a room: %w", err)
	}
	for _, u := range gone {
		s.remote.drop(u)
	}
	return nil
}

// membershipBefore reads user's membership in the room state before the event at pos ("" for
// none).
func membershipBefore(txn *store.Txn, pos uint64, user string) (string, error) {
	ev, err := txn.Event(pos)
	if err != nil {
		return "", fmt.Errorf("event at %d: %w", pos, err)
	}
	sk, err := txn.StateKeyNID("m.room.member", user, false)
	if errors.Is(err, store.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	before, err := rooms.SnapshotPositions(txn, ev.Snapshot)
	if err != nil {
		return "", fmt.Errorf("state before event %s: %w", ev.ID, err)
	}
	p, ok := before[sk]
	if !ok {
		return "", nil
	}
	prev, err := txn.Event(p)
	if err != nil {
		return "", fmt.Errorf("event at %d: %w", p, err)
	}
	_, m, _ := memberChange(prev.PDU)
	return m, nil
}
