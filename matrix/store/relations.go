package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	badger "github.com/dgraph-io/badger/v4"
)

// Relation is one child event in the relations index: the event at Pos relates to Parent
// (an event ID, which need not be known yet) with RelType.
type Relation struct {
	Room    uint64
	Parent  string
	RelType string
	Pos     uint64 // the child's stream position (its NID)
	Type    string // the child's event type
	Sender  string // the child's sender
}

// ThreadRecord summarises one thread: the position of its newest event and how many events
// point at the root with m.thread.
type ThreadRecord struct {
	Latest uint64 `json:"l"`
	Count  int64  `json:"c"`
}

// indexable reports whether s can sit in a key before a 0x00 separator.
func indexable(s string) bool { return s != "" && !strings.ContainsRune(s, 0) }

// PutRelation indexes a child event under its parent and remembers the reverse link so that a
// redaction can remove it again. Strings holding NUL bytes cannot be indexed and are skipped.
func (t *Txn) PutRelation(r Relation) error {
	if !indexable(r.Parent) || !indexable(r.RelType) || strings.ContainsRune(r.Type, 0) || strings.ContainsRune(r.Sender, 0) {
		return nil
	}
	if err := t.set(relationKey(r.Room, r.Parent, r.RelType, r.Pos), []byte(r.Type+"\x00"+r.Sender)); err != nil {
		return err
	}
	rev := append(be64(r.Room), []byte(r.Parent+"\x00"+r.RelType+"\x00"+r.Type+"\x00"+r.Sender)...)
	return t.set(relationRevKey(r.Pos), rev)
}

// RelationOf returns how the event at pos relates to its parent (ErrNotFound when it does not,
// or no longer does after a redaction).
func (t *Txn) RelationOf(pos uint64) (*Relation, error) {
	b, err := t.get(relationRevKey(pos))
	if err != nil {
		return nil, err
	}
	if len(b) < 8 {
		return nil, errors.New("store: short relation record")
	}
	parts := strings.SplitN(string(b[8:]), "\x00", 4)
	if len(parts) != 4 {
		return nil, errors.New("store: bad relation record")
	}
	return &Relation{Room: U64(b), Parent: parts[0], RelType: parts[1], Pos: pos, Type: parts[2], Sender: parts[3]}, nil
}

// DeleteRelation removes the event at pos from the index and returns what it was (nil when
// it was not indexed).
func (t *Txn) DeleteRelation(pos uint64) (*Relation, error) {
	r, err := t.RelationOf(pos)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if err := t.del(relationKey(r.Room, r.Parent, r.RelType, pos)); err != nil {
		return nil, err
	}
	return r, t.del(relationRevKey(pos))
}

// Relations walks the children of parent with one rel_type in stream order. Forwards it starts
// at from (inclusive); backwards at from and below (inclusive); from 0 backwards means "from
// the newest". fn returns false to stop.
func (t *Txn) Relations(room uint64, parent, relType string, from uint64, backwards bool, fn func(Relation) (bool, error)) error {
	if !indexable(parent) || !indexable(relType) {
		return nil
	}
	prefix := relationPrefix(room, parent, relType)
	var start []byte
	switch {
	case backwards && from == 0:
		start = nil
	default:
		start = relationKey(room, parent, relType, from)
	}
	return t.scan(prefix, start, backwards, true, func(k, v []byte) (bool, error) {
		typ, sender, _ := strings.Cut(string(v), "\x00")
		return fn(Relation{Room: room, Parent: parent, RelType: relType, Pos: U64(k[len(prefix):]), Type: typ, Sender: sender})
	})
}

// RelationTypes lists the rel_types that children of parent use, skipping from one rel_type
// to the next without reading the children in between.
func (t *Txn) RelationTypes(room uint64, parent string) ([]string, error) {
	if !indexable(parent) {
		return nil, nil
	}
	prefix := relationParentPrefix(room, parent)
	it := t.t.NewIterator(badger.IteratorOptions{Prefix: prefix})
	defer it.Close()
	var out []string
	for it.Seek(prefix); it.Valid(); {
		k := it.Item().Key()
		rest := k[len(prefix):]
		i := bytes.IndexByte(rest, 0)
		if i < 0 {
			it.Next()
			continue
		}
		rt := string(rest[:i])
		out = append(out, rt)
		// The next rel_type sorts after every key of this one: rel_type 0x01.
		it.Seek(append(append(append([]byte{}, prefix...), rest[:i]...), 1))
	}
	return out, nil
}

// Thread loads a thread's summary (ErrNotFound when the event is no thread root).
func (t *Txn) Thread(room uint64, root string) (*ThreadRecord, error) {
	r, err := getJSON[ThreadRecord](t, threadRootKey(room, root))
	if err != nil {
		return nil, err
	}
	return &r, nil
}

// PutThread stores a thread's summary and moves it in the room's thread list, which is kept
// in order of latest activity. oldLatest is the summary's previous Latest (0 for a new thread).
func (t *Txn) PutThread(room uint64, root string, rec ThreadRecord, oldLatest uint64) error {
	if !indexable(root) {
		return nil
	}
	if oldLatest != 0 && oldLatest != rec.Latest {
		if err := t.del(threadListKey(room, oldLatest, root)); err != nil {
			return err
		}
	}
	if err := t.set(threadListKey(room, rec.Latest, root), nil); err != nil {
		return err
	}
	return t.setJSON(threadRootKey(room, root), rec)
}

// DeleteThread removes a thread that no longer has any events.
func (t *Txn) DeleteThread(room uint64, root string, latest uint64) error {
	if err := t.del(threadListKey(room, latest, root)); err != nil {
		return err
	}
	return t.del(threadRootKey(room, root))
}

// Threads walks a room's threads newest activity first, starting with those whose latest
// event is at or below before (0: from the newest). fn returns false to stop.
func (t *Txn) Threads(room, before uint64, fn func(latest uint64, root string) (bool, error)) error {
	prefix := threadListPrefix(room)
	var start []byte
	if before != 0 {
		// Every key of position before sorts below before+1.
		start = threadListPrefixAt(room, before+1)
	}
	return t.scan(prefix, start, true, false, func(k, _ []byte) (bool, error) {
		rest := k[len(prefix):]
		if len(rest) < 8 {
			return true, nil
		}
		latest := U64(rest)
		if before != 0 && latest > before {
			return true, nil
		}
		return fn(latest, string(rest[8:]))
	})
}

// ThreadParticipation is how many events a user has sent into a thread (0 when none).
func (t *Txn) ThreadParticipation(room uint64, root, user string) (int64, error) {
	b, err := t.get(threadUserKey(room, root, user))
	if errors.Is(err, ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return int64(U64(b)), nil
}

// AddThreadParticipation adds delta to a user's event count in a thread.
func (t *Txn) AddThreadParticipation(room uint64, root, user string, delta int64) error {
	if !indexable(root) || strings.ContainsRune(user, 0) {
		return nil
	}
	n, err := t.ThreadParticipation(room, root, user)
	if err != nil {
		return err
	}
	n += delta
	if n <= 0 {
		return t.del(threadUserKey(room, root, user))
	}
	return t.set(threadUserKey(room, root, user), be64(uint64(n)))
}

// EventsFrom walks stored events in stream order from position from (inclusive). fn returns
// false to stop. For one-off passes over the whole store (index back-fills).
func (t *Txn) EventsFrom(from uint64, fn func(pos uint64, rec *EventRecord) (bool, error)) error {
	return t.scan([]byte{pEvent}, eventKey(from), false, true, func(k, v []byte) (bool, error) {
		var rec EventRecord
		if err := json.Unmarshal(v, &rec); err != nil {
			return false, fmt.Errorf("store: decode event %d: %w", U64(k[1:]), err)
		}
		return fn(U64(k[1:]), &rec)
	})
}

// Flag reports whether a named one-off task (a back-fill) has completed.
func (t *Txn) Flag(name string) (bool, error) { return t.has(metaKey("flag:" + name)) }

// SetFlag records that a named one-off task has completed.
func (t *Txn) SetFlag(name string) error { return t.set(metaKey("flag:"+name), []byte{1}) }
