package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
)

// RoomNID finds the NID of a room ID.
func (t *Txn) RoomNID(roomID string) (uint64, error) {
	b, err := t.get(roomIDKey(roomID))
	if err != nil {
		return 0, err
	}
	return U64(b), nil
}

// CreateRoom allocates a NID for a room ID and stores its record.
func (t *Txn) CreateRoom(rec *RoomRecord) (uint64, error) {
	nid, err := t.NextNID(seqRoom)
	if err != nil {
		return 0, err
	}
	if err := t.set(roomIDKey(rec.ID), be64(nid)); err != nil {
		return 0, err
	}
	return nid, t.PutRoom(nid, rec)
}

// PutRoom stores a room record.
func (t *Txn) PutRoom(nid uint64, rec *RoomRecord) error { return t.setJSON(roomKey(nid), rec) }

// Room loads a room record.
func (t *Txn) Room(nid uint64) (*RoomRecord, error) {
	r, err := getJSON[RoomRecord](t, roomKey(nid))
	if err != nil {
		return nil, err
	}
	return &r, nil
}

// Rooms calls fn for every room NID.
func (t *Txn) Rooms(fn func(nid uint64, rec *RoomRecord) (bool, error)) error {
	return t.scan([]byte{pRoom}, nil, false, true, func(k, v []byte) (bool, error) {
		r, err := getJSONBytes[RoomRecord](v)
		if err != nil {
			return false, err
		}
		return fn(U64(k[1:]), &r)
	})
}

// StateKeyNID returns the NID of (type, state_key), allocating one when create is set.
func (t *Txn) StateKeyNID(typ, sk string, create bool) (uint64, error) {
	b, err := t.get(stateKeyKey(typ, sk))
	if err == nil {
		return U64(b), nil
	}
	if err != ErrNotFound || !create {
		return 0, err
	}
	nid, err := t.NextNID(seqStateKey)
	if err != nil {
		return 0, err
	}
	if err := t.set(stateKeyKey(typ, sk), be64(nid)); err != nil {
		return 0, err
	}
	return nid, t.set(stateKeyRevKey(nid), []byte(typ+"\x00"+sk))
}

// StateKeyOf resolves a state-key NID back to its type and state key.
func (t *Txn) StateKeyOf(nid uint64) (typ, sk string, err error) {
	b, err := t.get(stateKeyRevKey(nid))
	if err != nil {
		return "", "", err
	}
	typ, sk, _ = strings.Cut(string(b), "\x00")
	return typ, sk, nil
}

// Snapshot is a room state snapshot: either a full map or a delta on top of a parent.
// A zero event position in Entries removes that state key.
type Snapshot struct {
	Parent  uint64
	Depth   int // how many deltas lie between this and the nearest full snapshot
	Entries map[uint64]uint64
}

// PutSnapshot stores a snapshot under a new NID.
func (t *Txn) PutSnapshot(s *Snapshot) (uint64, error) {
	nid, err := t.NextNID(seqSnapshot)
	if err != nil {
		return 0, err
	}
	var buf bytes.Buffer
	var tmp [binary.MaxVarintLen64]byte
	put := func(v uint64) { buf.Write(tmp[:binary.PutUvarint(tmp[:], v)]) }
	put(s.Parent)
	put(uint64(s.Depth))
	put(uint64(len(s.Entries)))
	for k, v := range s.Entries {
		put(k)
		put(v)
	}
	return nid, t.set(snapshotKey(nid), buf.Bytes())
}

// GetSnapshot loads one snapshot record (not resolved against its parents).
func (t *Txn) GetSnapshot(nid uint64) (*Snapshot, error) {
	b, err := t.get(snapshotKey(nid))
	if err != nil {
		return nil, err
	}
	r := bytes.NewReader(b)
	next := func() uint64 { v, _ := binary.ReadUvarint(r); return v }
	s := &Snapshot{Parent: next(), Depth: int(next())}
	n := next()
	if n > uint64(len(b)) {
		return nil, fmt.Errorf("store: corrupt snapshot %d", nid)
	}
	s.Entries = make(map[uint64]uint64, n)
	for i := uint64(0); i < n; i++ {
		k := next()
		s.Entries[k] = next()
	}
	return s, nil
}

// SetCurrentState points a room's current state for a state key at an event position.
func (t *Txn) SetCurrentState(room, sk, pos uint64) error {
	return t.set(curStateKey(room, sk), be64(pos))
}

// CurrentState returns the position of the current state event for a state key.
func (t *Txn) CurrentState(room, sk uint64) (uint64, error) {
	b, err := t.get(curStateKey(room, sk))
	if err != nil {
		return 0, err
	}
	return U64(b), nil
}

// AllCurrentState calls fn for every current state entry of a room.
func (t *Txn) AllCurrentState(room uint64, fn func(sk, pos uint64) (bool, error)) error {
	return t.scan(curStatePrefix(room), nil, false, true, func(k, v []byte) (bool, error) {
		return fn(U64(k[9:]), U64(v))
	})
}

// SetMembership records a user's membership in a room for the per-user index.
func (t *Txn) SetMembership(user string, room uint64, membership string, pos uint64) error {
	return t.set(membershipKey(user, room), append(be64(pos), membership...))
}

// GetMembership returns the user's membership in a room ("" if none).
func (t *Txn) GetMembership(user string, room uint64) (Membership, error) {
	b, err := t.get(membershipKey(user, room))
	if err == ErrNotFound {
		return Membership{Room: room}, nil
	}
	if err != nil {
		return Membership{}, err
	}
	return Membership{Room: room, Pos: U64(b), Membership: string(b[8:])}, nil
}

// Memberships calls fn for every room the user has a membership record in.
func (t *Txn) Memberships(user string, fn func(m Membership) (bool, error)) error {
	p := membershipPrefix(user)
	return t.scan(p, nil, false, true, func(k, v []byte) (bool, error) {
		return fn(Membership{Room: U64(k[len(p):]), Pos: U64(v), Membership: string(v[8:])})
	})
}

// AllMemberships calls fn for every (user, room) membership record of every user.
func (t *Txn) AllMemberships(fn func(user string, m Membership) (bool, error)) error {
	return t.scan([]byte{pMembership}, nil, false, true, func(k, v []byte) (bool, error) {
		i := bytes.IndexByte(k[1:], 0)
		if i < 0 {
			return true, nil
		}
		return fn(string(k[1:1+i]), Membership{Room: U64(k[2+i:]), Pos: U64(v), Membership: string(v[8:])})
	})
}

// SetForgotten marks or unmarks a room as forgotten by a user.
func (t *Txn) SetForgotten(user string, room uint64, forgotten bool) error {
	if forgotten {
		return t.set(forgottenKey(user, room), nil)
	}
	return t.del(forgottenKey(user, room))
}

// Forgotten reports whether the user forgot the room.
func (t *Txn) Forgotten(user string, room uint64) (bool, error) {
	return t.has(forgottenKey(user, room))
}

// PutAlias stores an alias, failing if it already exists.
func (t *Txn) PutAlias(alias string, room uint64, rec AliasRecord) error {
	if err := t.setJSON(aliasKey(alias), rec); err != nil {
		return err
	}
	return t.set(roomAliasKey(room, alias), nil)
}

// Alias looks an alias up.
func (t *Txn) Alias(alias string) (AliasRecord, error) {
	return getJSON[AliasRecord](t, aliasKey(alias))
}

// DeleteAlias removes an alias.
func (t *Txn) DeleteAlias(alias string, room uint64) error {
	if err := t.del(aliasKey(alias)); err != nil {
		return err
	}
	return t.del(roomAliasKey(room, alias))
}

// RoomAliases lists the local aliases pointing at a room.
func (t *Txn) RoomAliases(room uint64) ([]string, error) {
	var out []string
	p := roomAliasPrefix(room)
	err := t.scan(p, nil, false, false, func(k, _ []byte) (bool, error) {
		out = append(out, string(k[len(p):]))
		return true, nil
	})
	return out, err
}

// SetPublished publishes or unpublishes a room in the room directory.
func (t *Txn) SetPublished(room uint64, published bool) error {
	if published {
		return t.set(directoryKey(room), nil)
	}
	return t.del(directoryKey(room))
}

// Published reports whether a room is in the directory.
func (t *Txn) Published(room uint64) (bool, error) { return t.has(directoryKey(room)) }

// PublishedRooms lists the NIDs of published rooms.
func (t *Txn) PublishedRooms() ([]uint64, error) {
	var out []uint64
	err := t.scan([]byte{pDirectory}, nil, false, false, func(k, _ []byte) (bool, error) {
		out = append(out, U64(k[1:]))
		return true, nil
	})
	return out, err
}

// DelCurrentState removes a state key from a room's current state (a fork resolved without it).
func (t *Txn) DelCurrentState(room, sk uint64) error { return t.del(curStateKey(room, sk)) }
