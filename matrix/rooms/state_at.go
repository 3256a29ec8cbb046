package rooms

import (
	"context"
	"errors"
	"sort"

	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/merr"
	"github.com/hearth-home/hearth/matrix/store"
)

// StateAt returns the room's full state as of stream position pos: the state after the last
// event of the room at or before pos (empty before the room's first event). Events are sorted
// by position. The caller decides whether the user may see it.
func (s *Service) StateAt(ctx context.Context, roomID id.RoomID, pos uint64) ([]*Event, error) {
	var out []*Event
	err := s.st.View(func(txn *store.Txn) error {
		nid, err := txn.RoomNID(roomID.String())
		if err != nil {
			return err
		}
		var last uint64
		err = txn.Timeline(nid, pos+1, true, func(p uint64) (bool, error) {
			last = p
			return false, nil
		})
		if err != nil || last == 0 {
			return err
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
