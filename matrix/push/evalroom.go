package push

import (
	"encoding/json"

	"maunium.net/go/mautrix/event"

	"github.com/hearth-home/hearth/matrix/rooms"
	"github.com/hearth-home/hearth/matrix/store"
)

// roomCacheSize bounds the room views kept for evaluation. A message leaves its room's state
// as it was, so the events of a busy room share one snapshot; a few dozen entries cover the
// rooms that are active at once.
const roomCacheSize = 64

// roomView is what rule evaluation needs from a room's state at one snapshot: the members with
// their membership and display name, the power levels and the room name.
type roomView struct {
	members map[string]memberContent
	pl      *event.PowerLevelsEventContent
	name    string
}

// roomViews caches roomView by state snapshot NID. A snapshot never changes once written, so
// an entry never goes stale. Loading the whole state for every event (every member event and,
// in a device room, every device's state event) was most of the evaluation's cost, and /sync
// waits for evaluation before it answers (AwaitCounts). Used only by the evaluation goroutine.
type roomViews struct {
	bySnap map[uint64]*roomView
	order  []uint64 // insertion order, for eviction
}

func (c *roomViews) get(txn *store.Txn, snap uint64, roomID string) (*roomView, error) {
	if v, ok := c.bySnap[snap]; ok {
		return v, nil
	}
	state, err := rooms.StateMap(txn, snap, roomID)
	if err != nil {
		return nil, err
	}
	v := newRoomView(state)
	if c.bySnap == nil {
		c.bySnap = map[uint64]*roomView{}
	}
	if len(c.order) >= roomCacheSize {
		delete(c.bySnap, c.order[0])
		c.order = c.order[1:]
	}
	c.bySnap[snap] = v
	c.order = append(c.order, snap)
	return v, nil
}

func newRoomView(state map[[2]string]*rooms.Event) *roomView {
	v := &roomView{members: map[string]memberContent{}}
	for k, se := range state {
		switch k[0] {
		case "m.room.member":
			var mc memberContent
			_ = json.Unmarshal(se.Lite.Content, &mc)
			v.members[k[1]] = mc
		case "m.room.power_levels":
			v.pl = &event.PowerLevelsEventContent{}
			_ = json.Unmarshal(se.Lite.Content, v.pl)
		case "m.room.name":
			var n struct {
				Name string `json:"name"`
			}
			_ = json.Unmarshal(se.Lite.Content, &n)
			v.name = n.Name
		}
	}
	return v
}

// SkipUsers sets which local users get no push evaluation: the users held exclusively by an
// application service (its bots and puppets), as Synapse does. Nobody reads their counts or
// notifications, and in a bridged room they are most of the members: evaluating for each of
// them, and writing a notification for each, put a durable write behind every message that a
// woken /sync then waited for. Safe to call while evaluation runs.
func (s *Service) SkipUsers(skip func(user string) bool) { s.skipUser.Store(&skip) }

func (s *Service) skipped(user string) bool {
	f := s.skipUser.Load()
	return f != nil && (*f)(user)
}
