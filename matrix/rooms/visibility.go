package rooms

import (
	"encoding/json"

	"maunium.net/go/mautrix/event"

	"github.com/hearth-home/hearth/matrix/store"
)

func eventType(t string) event.Type { return event.Type{Type: t, Class: event.StateEventType} }

// Viewer decides which events one user may see, caching per state snapshot because
// consecutive events share snapshots.
type Viewer struct {
	txn     *store.Txn
	user    string
	memSK   uint64 // state-key NID of the user's member event (0 = never a member)
	visSK   uint64
	current string // the user's current membership
	curPos  uint64
	cache   map[uint64][2]string // snapshot -> (membership, history_visibility)
}

// NewViewer prepares visibility checks for user in room.
func NewViewer(txn *store.Txn, room uint64, user string) (*Viewer, error) {
	v := &Viewer{txn: txn, user: user, cache: map[uint64][2]string{}}
	var err error
	if v.memSK, err = txn.StateKeyNID("m.room.member", user, false); err != nil && err != store.ErrNotFound {
		return nil, err
	}
	if v.visSK, err = txn.StateKeyNID("m.room.history_visibility", "", false); err != nil && err != store.ErrNotFound {
		return nil, err
	}
	m, err := txn.GetMembership(user, room)
	if err != nil {
		return nil, err
	}
	v.current, v.curPos = m.Membership, m.Pos
	return v, nil
}

func (v *Viewer) at(snapshot uint64) ([2]string, error) {
	if r, ok := v.cache[snapshot]; ok {
		return r, nil
	}
	var r [2]string
	r[1] = "shared"
	read := func(sk uint64, field string) (string, error) {
		if sk == 0 {
			return "", nil
		}
		pos, err := snapshotLookup(v.txn, snapshot, sk)
		if err != nil || pos == 0 {
			return "", err
		}
		rec, err := v.txn.Event(pos)
		if err != nil {
			return "", err
		}
		var c struct {
			Content map[string]any `json:"content"`
		}
		_ = json.Unmarshal(rec.PDU, &c)
		s, _ := c.Content[field].(string)
		return s, nil
	}
	var err error
	if r[0], err = read(v.memSK, "membership"); err != nil {
		return r, err
	}
	if hv, err := read(v.visSK, "history_visibility"); err != nil {
		return r, err
	} else if hv != "" {
		r[1] = hv
	}
	v.cache[snapshot] = r
	return r, nil
}

// CanSee applies the spec's history-visibility rules to one event.
func (v *Viewer) CanSee(e *Event) (bool, error) {
	st, err := v.at(e.Rec.Snapshot)
	if err != nil {
		return false, err
	}
	membership, vis := st[0], st[1]
	if e.Lite.Type == "m.room.member" && e.Lite.StateKey != nil && *e.Lite.StateKey == v.user {
		membership = e.Lite.Membership() // a user always sees their own membership changes
		if membership == "leave" || membership == "ban" {
			return true, nil
		}
	}
	switch {
	case vis == "world_readable":
		return true, nil
	case membership == "join":
		return true, nil
	case vis == "shared" && v.current == "join":
		return true, nil
	case vis == "shared" && (v.current == "leave" || v.current == "ban") && e.Pos < v.curPos:
		return true, nil
	case vis == "invited" && membership == "invite":
		return true, nil
	}
	return false, nil
}
