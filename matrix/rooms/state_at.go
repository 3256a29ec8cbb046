package rooms

import (
	"context"
	"errors"
	"math"
	"sort"

	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/events"
	"github.com/hearth-home/hearth/matrix/merr"
	"github.com/hearth-home/hearth/matrix/store"
)

// firstJoinScan bounds the walk from a room's start to its first join: createRoom writes the
// creator's join second, and a room joined over federation starts with the joined state, so
// the join is found within a few events unless the room has none at all.
const firstJoinScan = 64

// StateAt returns the room's full state as of stream position pos: the state after the last
// event of the room at or before pos. Events are sorted by position. The caller decides
// whether the user may see it.
//
// A point before the room's first join (a sync whose timeline shows the room from its create
// event hands one out as prev_batch) answers the state after that join instead: the room is
// created in one transaction, so no client ever saw it without its creator, and "the members
// at the start of this timeline" means the creator there, not nobody (the spec's members?at,
// Complement's TestGetRoomMembersAtPoint). A room with no join at all answers empty.
func (s *Service) StateAt(ctx context.Context, roomID id.RoomID, pos uint64) ([]*Event, error) {
	var out []*Event
	err := s.st.View(func(txn *store.Txn) error {
		nid, err := txn.RoomNID(roomID.String())
		if err != nil {
			return err
		}
		from := pos + 1
		if from == 0 { // pos is the largest token there is: everything is before it
			from = math.MaxUint64
		}
		var last uint64
		err = txn.Timeline(nid, from, true, func(p uint64) (bool, error) {
			last = p
			return false, nil
		})
		if err != nil {
			return err
		}
		join, err := firstJoin(txn, nid)
		if err != nil {
			return err
		}
		if last < join {
			last = join
		}
		if last == 0 {
			return nil
		}
		ev, err := txn.Event(last)
		if err != nil {
			return err
		}
		m, err := StateMap(txn, ev.After, roomID.String())
		if err != nil {
			return err
		}
		for _, e := range m {
			out = append(out, e)
		}
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, merr.NotFound("room %s is not known here", roomID)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Pos < out[j].Pos })
	return out, err
}

// firstJoin is the position of the room's first join event, 0 when none is among its first
// firstJoinScan events.
func firstJoin(txn *store.Txn, nid uint64) (uint64, error) {
	var found uint64
	n := 0
	err := txn.Timeline(nid, 0, false, func(p uint64) (bool, error) {
		n++
		ev, err := txn.Event(p)
		if err != nil {
			return false, err
		}
		l, err := events.ParseLite(ev.PDU)
		if err != nil {
			return false, err
		}
		if l.Type == "m.room.member" && l.Membership() == "join" {
			found = p
			return false, nil
		}
		return n < firstJoinScan, nil
	})
	return found, err
}
