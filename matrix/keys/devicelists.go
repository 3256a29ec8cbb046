package keys

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"

	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/merr"
	"github.com/hearth-home/hearth/matrix/store"
)

// memberScanLimit bounds the timeline events read per room when looking for membership
// changes in a sync window; past it the room's joined members are all reported as changed.
const memberScanLimit = 500

// ParseSyncPos reads the stream position of a sync token ("s<pos>_<typing>").
func ParseSyncPos(tok string) (uint64, error) {
	t, ok := strings.CutPrefix(tok, "s")
	if !ok {
		return 0, merr.InvalidParam("invalid sync token %q", tok)
	}
	p, _, _ := strings.Cut(t, "_")
	n, err := strconv.ParseUint(p, 10, 64)
	if err != nil {
		return 0, merr.InvalidParam("invalid sync token %q", tok)
	}
	return n, nil
}

// Changes answers /keys/changes: the users whose device lists changed between two sync
// tokens, and those who no longer share a room with user.
func (s *Service) Changes(ctx context.Context, user id.UserID, from, to string) (changed, left []string, err error) {
	f, err := ParseSyncPos(from)
	if err != nil {
		return nil, nil, err
	}
	t := s.st.Stream().Watermark()
	if to != "" {
		tp, err := ParseSyncPos(to)
		if err != nil {
			return nil, nil, err
		}
		t = min(t, tp)
	}
	err = s.st.View(func(txn *store.Txn) error {
		changed, left, err = s.DeviceLists(txn, user.String(), f, t)
		return err
	})
	if changed == nil {
		changed = []string{}
	}
	if left == nil {
		left = []string{}
	}
	return changed, left, err
}

// DeviceLists computes the device_lists section for user over the window (since, upto]:
//
//   - changed: users sharing a joined room with user (and user themselves) whose device or
//     cross-signing keys changed in the window, and users who came to share a room with user
//     (either joined one of user's rooms, or user joined theirs: user is then listed too);
//   - left: users who left a room user is in, or whose room user left, and now share no room
//     with user.
//
// Sharing is judged on the current memberships, which is close enough for a window.
func (s *Service) DeviceLists(txn *store.Txn, user string, since, upto uint64) (changed, left []string, err error) {
	d := &dlPass{txn: txn, user: user, server: s.server, since: since, upto: upto, shares: map[string]bool{}, mine: map[uint64]string{},
		changed: map[string]bool{}, left: map[string]bool{}}
	return d.run()
}

type dlPass struct {
	txn           *store.Txn
	user          string
	server        string // this server: other users have no membership index (remote.go)
	since, upto   uint64
	mine          map[uint64]string // the user's rooms -> membership
	shares        map[string]bool   // cache: other user -> shares a joined room with user
	changed, left map[string]bool   // candidates
}

func (d *dlPass) run() ([]string, []string, error) {
	if d.upto <= d.since {
		return nil, nil, nil
	}
	var mems []store.Membership
	err := d.txn.Memberships(d.user, func(m store.Membership) (bool, error) {
		d.mine[m.Room] = m.Membership
		mems = append(mems, m)
		return true, nil
	})
	if err != nil {
		return nil, nil, err
	}
	err = d.txn.DeviceListChanges(d.since, d.upto, func(_ uint64, u string) (bool, error) {
		d.changed[u] = true
		return true, nil
	})
	if err != nil {
		return nil, nil, err
	}
	for _, m := range mems {
		switch {
		case m.Membership == "join":
			if err := d.scanRoom(m.Room); err != nil {
				return nil, nil, err
			}
		case (m.Membership == "leave" || m.Membership == "ban") && m.Pos > d.since && m.Pos <= d.upto:
			// The user left this room in the window: its members may no longer share a room.
			members, err := joinedMembers(d.txn, m.Room)
			if err != nil {
				return nil, nil, err
			}
			for _, u := range members {
				d.left[u] = true
			}
		}
	}
	var changed, left []string
	for u := range d.changed {
		ok, err := d.sharesRoom(u)
		if err != nil {
			return nil, nil, err
		}
		if u == d.user || ok {
			changed = append(changed, u)
		}
	}
	for u := range d.left {
		if u == d.user {
			continue
		}
		ok, err := d.sharesRoom(u)
		if err != nil {
			return nil, nil, err
		}
		if !ok {
			left = append(left, u)
		}
	}
	slices.Sort(changed)
	slices.Sort(left)
	return changed, left, nil
}

// scanRoom looks at the membership events of a joined room in the window.
func (d *dlPass) scanRoom(room uint64) error {
	n := 0
	overflow := false
	var joinedNow bool
	err := d.txn.Timeline(room, d.since+1, false, func(pos uint64) (bool, error) {
		if pos > d.upto {
			return false, nil
		}
		if n++; n > memberScanLimit {
			overflow = true
			return false, nil
		}
		ev, err := d.txn.Event(pos)
		if err != nil {
			return false, err
		}
		target, membership, ok := memberChange(ev.PDU)
		if !ok {
			return true, nil
		}
		switch {
		case target == d.user:
			if membership == "join" {
				joinedNow = true
			}
		case membership == "join":
			d.changed[target] = true
			delete(d.left, target)
		case membership == "leave" || membership == "ban":
			d.left[target] = true
		}
		return true, nil
	})
	if err != nil {
		return err
	}
	if overflow || joinedNow {
		members, err := joinedMembers(d.txn, room)
		if err != nil {
			return err
		}
		for _, u := range members {
			if u != d.user {
				d.changed[u] = true
			}
		}
	}
	if joinedNow {
		// The user's own list counts as changed too: their other devices learn that the
		// room's members (possibly on new servers) now need the user's keys (Synapse and
		// Complement expect the joiner in their own device_lists.changed).
		d.changed[d.user] = true
	}
	return nil
}

// sharesRoom reports whether u is joined to a room the user is joined to.
func (d *dlPass) sharesRoom(u string) (bool, error) {
	if v, ok := d.shares[u]; ok {
		return v, nil
	}
	if id.UserID(u).Homeserver() != d.server {
		ok, err := d.remoteSharesRoom(u)
		d.shares[u] = ok
		return ok, err
	}
	found := false
	err := d.txn.Memberships(u, func(m store.Membership) (bool, error) {
		if m.Membership == "join" && d.mine[m.Room] == "join" {
			found = true
			return false, nil
		}
		return true, nil
	})
	d.shares[u] = found
	return found, err
}

// remoteSharesRoom reports whether a user of another server is joined to one of the rooms
// the user is joined to, from those rooms' state.
func (d *dlPass) remoteSharesRoom(u string) (bool, error) {
	sk, err := d.txn.StateKeyNID("m.room.member", u, false)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	for room, m := range d.mine {
		if m != "join" {
			continue
		}
		if ok, err := joinedBy(d.txn, room, sk); err != nil || ok {
			return ok, err
		}
	}
	return false, nil
}

// memberChange reads the target and membership of an m.room.member event.
func memberChange(pdu json.RawMessage) (target, membership string, ok bool) {
	var e struct {
		Type     string  `json:"type"`
		StateKey *string `json:"state_key"`
		Content  struct {
			Membership string `json:"membership"`
		} `json:"content"`
	}
	if json.Unmarshal(pdu, &e) != nil || e.Type != "m.room.member" || e.StateKey == nil {
		return "", "", false
	}
	return *e.StateKey, e.Content.Membership, true
}

// joinedMembers lists the users currently joined to a room, from its current state.
func joinedMembers(txn *store.Txn, room uint64) ([]string, error) {
	var out []string
	err := txn.AllCurrentState(room, func(sk, pos uint64) (bool, error) {
		typ, _, err := txn.StateKeyOf(sk)
		if err != nil {
			return false, err
		}
		if typ != "m.room.member" {
			return true, nil
		}
		ev, err := txn.Event(pos)
		if err != nil {
			return false, err
		}
		if target, m, ok := memberChange(ev.PDU); ok && m == "join" {
			out = append(out, target)
		}
		return true, nil
	})
	return out, err
}
