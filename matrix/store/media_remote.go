package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// Records and accessors of the remote media cache (matrix/media/remote*.go): other servers'
// media fetched over federation. The bytes share the content-addressed files of local media;
// a record says which file an (origin, media ID) is, and two indexes serve the sweeper: one in
// last-access order (what to evict first, with the size in the value so a scan of the index
// alone gives the cache's total) and one by hash (whether an evicted file is still used).

// RemoteMediaRecord is one cached remote media.
type RemoteMediaRecord struct {
	Origin       string `json:"o"`
	ID           string `json:"id"`
	Hash         string `json:"h"`            // hex SHA-256 of the content
	ContentType  string `json:"ct,omitempty"` //
	Filename     string `json:"fn,omitempty"` //
	Size         int64  `json:"sz"`           //
	FetchedMS    int64  `json:"f"`            // when it was fetched from the origin
	LastAccessMS int64  `json:"a"`            // when it was last served (coarse, see matrix/media)
}

// RemoteMediaEntry is one entry of the last-access index.
type RemoteMediaEntry struct {
	Origin, ID   string
	LastAccessMS int64
	Size         int64
}

// RemoteMedia reads a cached remote media record, or ErrNotFound.
func (t *Txn) RemoteMedia(origin, mediaID string) (RemoteMediaRecord, error) {
	return getJSON[RemoteMediaRecord](t, mediaRemoteKey(origin, mediaID))
}

// PutRemoteMedia writes a record and keeps both indexes in step with it (an older version of
// the record has its index entries replaced).
func (t *Txn) PutRemoteMedia(r *RemoteMediaRecord) error {
	if r.Origin == "" || r.ID == "" || r.Hash == "" {
		return fmt.Errorf("store: remote media record needs origin, ID and hash")
	}
	if err := t.dropRemoteIndexes(r.Origin, r.ID); err != nil {
		return err
	}
	if err := t.setJSON(mediaRemoteKey(r.Origin, r.ID), r); err != nil {
		return err
	}
	if err := t.set(mediaRemoteLRUKey(r.LastAccessMS, r.Origin, r.ID), be64(uint64(r.Size))); err != nil {
		return err
	}
	return t.set(mediaRemoteHashKey(r.Hash, r.Origin, r.ID), nil)
}

// DeleteRemoteMedia removes a record and its index entries (not the file, which other records,
// local or remote, may share). A missing record is not an error.
func (t *Txn) DeleteRemoteMedia(origin, mediaID string) error {
	if err := t.dropRemoteIndexes(origin, mediaID); err != nil {
		return err
	}
	return t.del(mediaRemoteKey(origin, mediaID))
}

func (t *Txn) dropRemoteIndexes(origin, mediaID string) error {
	old, err := t.RemoteMedia(origin, mediaID)
	if errors.Is(err, ErrNotFound) {
		return nil
	} else if err != nil {
		return err
	}
	if err := t.del(mediaRemoteLRUKey(old.LastAccessMS, origin, mediaID)); err != nil {
		return err
	}
	return t.del(mediaRemoteHashKey(old.Hash, origin, mediaID))
}

// RemoteMediaByAccess calls fn with every cached remote media, least recently used first.
func (t *Txn) RemoteMediaByAccess(fn func(e RemoteMediaEntry) (bool, error)) error {
	prefix := []byte{pMediaRemoteLRU}
	return t.scan(prefix, nil, false, true, func(k, v []byte) (bool, error) {
		rest := k[len(prefix):]
		if len(rest) < 9 || len(v) != 8 {
			return false, fmt.Errorf("store: malformed remote media index key %q", k)
		}
		e := RemoteMediaEntry{LastAccessMS: int64(binary.BigEndian.Uint64(rest[:8])), Size: int64(binary.BigEndian.Uint64(v))}
		rest = rest[8:]
		i := bytes.IndexByte(rest, 0)
		if i < 0 {
			return false, fmt.Errorf("store: malformed remote media index key %q", k)
		}
		e.Origin, e.ID = string(rest[:i]), string(rest[i+1:])
		return fn(e)
	})
}

// RemoteMediaUsesHash says whether any cached remote media is the file with this hash.
func (t *Txn) RemoteMediaUsesHash(hash string) (bool, error) {
	used := false
	err := t.scan(mediaRemoteHashPrefix(hash), nil, false, false, func(_, _ []byte) (bool, error) {
		used = true
		return false, nil
	})
	return used, err
}
