package sync

import (
	"encoding/json"
	"errors"

	"github.com/hearth-home/hearth/matrix/rooms"
	"github.com/hearth-home/hearth/matrix/store"
)

// matchFilters applies a list's filters to a room.
func (sp *slidingPass) matchFilters(r *slidingRoomRef, f *slidingFiltersReq) (bool, error) {
	if f == nil {
		return true, nil
	}
	if f.IsDM != nil && sp.dm[r.rec.ID] != *f.IsDM {
		return false, nil
	}
	invite := f.IsInvite
	if invite == nil {
		invite = f.IsInvited
	}
	if invite != nil && (r.m.Membership == "invite") != *invite {
		return false, nil
	}
	if f.IsEncrypted != nil || len(f.RoomTypes) > 0 || len(f.NotRoomTypes) > 0 || len(f.Tags) > 0 || len(f.NotTags) > 0 {
		a, err := sp.attrs(r)
		if err != nil {
			return false, err
		}
		if f.IsEncrypted != nil && a.encrypted != *f.IsEncrypted {
			return false, nil
		}
		typeIn := func(list []*string) bool {
			for _, t := range list {
				if (t == nil && a.roomType == nil) || (t != nil && a.roomType != nil && *t == *a.roomType) {
					return true
				}
			}
			return false
		}
		if len(f.RoomTypes) > 0 && !typeIn(f.RoomTypes) {
			return false, nil
		}
		if len(f.NotRoomTypes) > 0 && typeIn(f.NotRoomTypes) {
			return false, nil
		}
		for _, t := range f.NotTags {
			if a.tags[t] {
				return false, nil
			}
		}
		if len(f.Tags) > 0 {
			any := false
			for _, t := range f.Tags {
				any = any || a.tags[t]
			}
			if !any {
				return false, nil
			}
		}
	}
	if len(f.Spaces) > 0 {
		in := false
		for _, space := range f.Spaces {
			children, err := sp.spaceChildren(space)
			if err != nil {
				return false, err
			}
			in = in || children[r.rec.ID]
		}
		if !in {
			return false, nil
		}
	}
	return true, nil
}

// attrs loads what the filters ask about a room: encryption, room type and tags.
func (sp *slidingPass) attrs(r *slidingRoomRef) (*roomAttrs, error) {
	if r.attrs != nil {
		return r.attrs, nil
	}
	a := &roomAttrs{tags: map[string]bool{}}
	current := func(typ string) (*rooms.Event, error) {
		sk, err := sp.txn.StateKeyNID(typ, "", false)
		if errors.Is(err, store.ErrNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		pos, err := sp.txn.CurrentState(r.nid, sk)
		if errors.Is(err, store.ErrNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		return rooms.LoadEvent(sp.txn, pos, r.rec.ID)
	}
	enc, err := current("m.room.encryption")
	if err != nil {
		return nil, err
	}
	a.encrypted = enc != nil
	create, err := current("m.room.create")
	if err != nil {
		return nil, err
	}
	if create != nil {
		var c struct {
			Type any `json:"type"`
		}
		_ = json.Unmarshal(create.Lite.Content, &c)
		if t, ok := c.Type.(string); ok {
			a.roomType = &t
		}
	}
	rec, err := sp.txn.AccountData(sp.user, r.nid, "m.tag")
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	if err == nil {
		var c struct {
			Tags map[string]json.RawMessage `json:"tags"`
		}
		_ = json.Unmarshal(rec.Content, &c)
		for t := range c.Tags {
			a.tags[t] = true
		}
	}
	r.attrs = a
	return a, nil
}

// spaceChildren lists the rooms a space names in m.space.child events with a non-empty via.
// Only spaces the user is joined to count; subspaces are not followed (MSC4186).
func (sp *slidingPass) spaceChildren(space string) (map[string]bool, error) {
	if sp.spaces == nil {
		sp.spaces = map[string]map[string]bool{}
	}
	if c, ok := sp.spaces[space]; ok {
		return c, nil
	}
	out := map[string]bool{}
	sp.spaces[space] = out
	nid, err := sp.txn.RoomNID(space)
	if errors.Is(err, store.ErrNotFound) {
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	m, err := sp.txn.GetMembership(sp.user, nid)
	if errors.Is(err, store.ErrNotFound) || (err == nil && m.Membership != "join") {
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	err = sp.txn.AllCurrentState(nid, func(sk, pos uint64) (bool, error) {
		typ, key, err := sp.s.sliding.cache.stateKeyOf(sp.txn, sk)
		if err != nil || typ != "m.space.child" {
			return err == nil, err
		}
		ev, err := rooms.LoadEvent(sp.txn, pos, space)
		if err != nil {
			return false, err
		}
		var c struct {
			Via []any `json:"via"`
		}
		if json.Unmarshal(ev.Lite.Content, &c) == nil && len(c.Via) > 0 {
			out[key] = true
		}
		return true, nil
	})
	return out, err
}
