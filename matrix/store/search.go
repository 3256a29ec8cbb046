package store

import (
	"bytes"
	"errors"
)

// Posting is one entry of the search index: a token occurred Count times in field Field of the
// event at Pos in room Room.
type Posting struct {
	Token string
	Pos   uint64
	Room  uint64
	Field byte
	Count byte
}

// PutPosting records one posting of the inverted index.
func (t *Txn) PutPosting(p Posting) error {
	v := make([]byte, 10)
	copy(v, be64(p.Room))
	v[8], v[9] = p.Field, p.Count
	return t.set(searchPostingKey(p.Token, p.Pos), v)
}

// Postings calls fn for the postings of tok, newest first. With prefix set, every token
// starting with tok matches (in token order, each token newest first).
func (t *Txn) Postings(tok string, prefix bool, fn func(p Posting) (bool, error)) error {
	pre := searchTokenPrefix(tok, !prefix)
	return t.scan(pre, nil, true, true, func(k, v []byte) (bool, error) {
		rest := k[1:]
		i := bytes.IndexByte(rest, 0)
		if i < 0 || len(rest) < i+9 || len(v) < 10 {
			return true, nil
		}
		return fn(Posting{Token: string(rest[:i]), Pos: U64(rest[i+1:]), Room: U64(v), Field: v[8], Count: v[9]})
	})
}

// SearchMeta reads a search-index bookkeeping value (0 when unset).
func (t *Txn) SearchMeta(name string) (uint64, error) {
	v, err := t.get(searchMetaKey(name))
	if errors.Is(err, ErrNotFound) {
		return 0, nil
	}
	return U64(v), err
}

// SetSearchMeta writes a search-index bookkeeping value.
func (t *Txn) SetSearchMeta(name string, v uint64) error { return t.set(searchMetaKey(name), be64(v)) }

// AppServiceState reads an application service's bookkeeping value (0 when unset).
func (t *Txn) AppServiceState(as, name string) (uint64, error) {
	v, err := t.get(asStateKey(as, name))
	if errors.Is(err, ErrNotFound) {
		return 0, nil
	}
	return U64(v), err
}

// SetAppServiceState writes an application service's bookkeeping value.
func (t *Txn) SetAppServiceState(as, name string, v uint64) error {
	return t.set(asStateKey(as, name), be64(v))
}
