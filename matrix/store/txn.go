package store

import (
	"errors"
	"fmt"

	badger "github.com/dgraph-io/badger/v4"
)

// Txn is one transaction. Methods on it read and write typed records; keys never leave the package.
type Txn struct {
	t         *badger.Txn
	s         *Store
	write     bool
	positions []uint64
	notes     []Note
}

// AllocPos reserves a stream position for something this transaction writes. The position is
// logged in the stream log so that a restart resumes above it.
func (t *Txn) AllocPos(kind byte) (uint64, error) {
	if !t.write {
		return 0, errors.New("store: AllocPos in a read-only transaction")
	}
	p := t.s.stream.Alloc()
	t.positions = append(t.positions, p)
	return p, t.t.Set(streamLogKey(p), []byte{kind})
}

// Notify attaches a note to be delivered after commit, once the watermark passes pos.
func (t *Txn) Notify(pos uint64, v any) { t.notes = append(t.notes, Note{Pos: pos, Value: v}) }

// NextNID allocates a short numeric ID from a named sequence. Sequences are independent of the
// transaction: an aborted transaction leaves a gap, never a duplicate.
func (t *Txn) NextNID(name string) (uint64, error) { return t.s.nextNID(name) }

func (t *Txn) get(k []byte) ([]byte, error) {
	it, err := t.t.Get(k)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("store get: %w", err)
	}
	return it.ValueCopy(nil)
}

func (t *Txn) has(k []byte) (bool, error) {
	_, err := t.t.Get(k)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return false, nil
	}
	return err == nil, err
}

func (t *Txn) set(k, v []byte) error {
	if err := t.t.Set(k, v); err != nil {
		return fmt.Errorf("store set: %w", err)
	}
	return nil
}

func (t *Txn) del(k []byte) error {
	if err := t.t.Delete(k); err != nil {
		return fmt.Errorf("store delete: %w", err)
	}
	return nil
}

// scan iterates keys with prefix, from start (inclusive, nil = beginning of prefix), forwards or
// backwards. fn returns false to stop. Values are fetched only when wantValue is set.
func (t *Txn) scan(prefix, start []byte, reverse, wantValue bool, fn func(k, v []byte) (bool, error)) error {
	it := t.t.NewIterator(badger.IteratorOptions{Prefix: prefix, Reverse: reverse, PrefetchValues: wantValue, PrefetchSize: 16})
	defer it.Close()
	if start == nil {
		start = prefix
		if reverse {
			start = append(append([]byte{}, prefix...), 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF)
		}
	}
	for it.Seek(start); it.Valid(); it.Next() {
		item := it.Item()
		var v []byte
		if wantValue {
			var err error
			if v, err = item.ValueCopy(nil); err != nil {
				return fmt.Errorf("store scan value: %w", err)
			}
		}
		more, err := fn(item.KeyCopy(nil), v)
		if err != nil {
			return err
		}
		if !more {
			return nil
		}
	}
	return nil
}
