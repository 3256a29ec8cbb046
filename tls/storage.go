package tls

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"

	"github.com/hearth-home/hearth/matrix/store"
)

// defaultLockLease is how long a lock record stays valid without renewal. Its holder renews it
// every third of that while it works, so only a crashed holder's lock ever runs out; a restart
// after a crash waits at most this long for certmagic's lock.
const defaultLockLease = time.Minute

// lockPoll is how often Lock looks again at a lock record held by another Storage.
const lockPoll = 250 * time.Millisecond

// Storage is certmagic's key-value storage kept in the Badger store, so that the ACME account,
// the certificates and their keys live in the one database the appliance backs up.
//
// Keys are slash-separated paths; directories exist only as prefixes of keys. Locks are records
// with an owner and an expiry (renewed while held) plus an in-process semaphore per name, so
// that goroutines of one process queue without polling the store.
type Storage struct {
	st    *store.Store
	owner string        // identifies this Storage's lock records
	lease time.Duration // lock record lifetime without renewal

	mu    sync.Mutex
	sems  map[string]chan struct{} // per lock name; a buffered slot of one is the in-process mutex
	held  map[string]func()        // per lock name: stops the renewal of a held record
	clock func() time.Time

	// gate lets Close wait for store calls in flight and refuse later ones: certmagic's
	// background jobs may outlive the manager, and the store closes right after it.
	gate   sync.RWMutex
	closed bool
}

// errStorageClosed is returned by every method once Close has run.
var errStorageClosed = errors.New("tls storage: closed")

// Close stops lock renewals and makes every later call fail, after waiting for calls in
// flight. Lock records still held are left to expire.
func (s *Storage) Close() {
	s.mu.Lock()
	stops := make([]func(), 0, len(s.held))
	for name, stop := range s.held {
		stops = append(stops, stop)
		delete(s.held, name)
	}
	s.mu.Unlock()
	for _, stop := range stops {
		stop()
	}
	s.gate.Lock()
	s.closed = true
	s.gate.Unlock()
}

// update and view run a store transaction unless the Storage is closed.
func (s *Storage) update(fn func(*store.Txn) error) error {
	s.gate.RLock()
	defer s.gate.RUnlock()
	if s.closed {
		return errStorageClosed
	}
	return s.st.Update(fn)
}

func (s *Storage) view(fn func(*store.Txn) error) error {
	s.gate.RLock()
	defer s.gate.RUnlock()
	if s.closed {
		return errStorageClosed
	}
	return s.st.View(fn)
}

var (
	_ certmagic.Storage   = (*Storage)(nil)
	_ certmagic.TryLocker = (*Storage)(nil)
)

// NewStorage returns a certmagic Storage on st. lease is the lock record lifetime (0 means one
// minute); tests shorten it to see a crashed holder's lock expire.
func NewStorage(st *store.Store, lease time.Duration) (*Storage, error) {
	if lease <= 0 {
		lease = defaultLockLease
	}
	var id [8]byte
	if _, err := rand.Read(id[:]); err != nil {
		return nil, fmt.Errorf("tls storage: owner id: %w", err)
	}
	return &Storage{
		st: st, owner: hex.EncodeToString(id[:]), lease: lease,
		sems: map[string]chan struct{}{}, held: map[string]func(){}, clock: time.Now,
	}, nil
}

// String names the storage in certmagic's logs.
func (s *Storage) String() string { return "hearth-store" }

// Store puts value at key, overwriting any previous value.
func (s *Storage) Store(ctx context.Context, key string, value []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	key, err := cleanKey(key)
	if err != nil {
		return err
	}
	v := append([]byte(nil), value...) // the caller may reuse its slice once we return
	if err := s.update(func(t *store.Txn) error {
		return t.PutCertFile(key, store.CertFile{Value: v, Modified: s.clock()})
	}); err != nil {
		return fmt.Errorf("tls storage: store %s: %w", key, err)
	}
	return nil
}

// Load returns the value at key, or an error wrapping fs.ErrNotExist.
func (s *Storage) Load(ctx context.Context, key string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	key, err := cleanKey(key)
	if err != nil {
		return nil, err
	}
	var f store.CertFile
	err = s.view(func(t *store.Txn) error {
		var err error
		f, err = t.CertFile(key)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("tls storage: load %s: %w", key, fs.ErrNotExist)
	}
	if err != nil {
		return nil, fmt.Errorf("tls storage: load %s: %w", key, err)
	}
	return f.Value, nil
}

// Delete removes key and, when key is a directory, everything under it. A missing key is not
// an error.
func (s *Storage) Delete(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	key, err := cleanKey(key)
	if err != nil {
		return err
	}
	err = s.update(func(t *store.Txn) error {
		if err := t.DeleteCertFile(key); err != nil {
			return err
		}
		var under []string
		if err := t.CertFileKeys(dirPrefix(key), func(k string) (bool, error) {
			under = append(under, k)
			return true, nil
		}); err != nil {
			return err
		}
		for _, k := range under {
			if err := t.DeleteCertFile(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("tls storage: delete %s: %w", key, err)
	}
	return nil
}

// Exists reports whether key is a file or a directory.
func (s *Storage) Exists(ctx context.Context, key string) bool {
	_, err := s.Stat(ctx, key)
	return err == nil
}

// Stat describes key: a file with its size and write time, or a directory.
func (s *Storage) Stat(ctx context.Context, key string) (certmagic.KeyInfo, error) {
	if err := ctx.Err(); err != nil {
		return certmagic.KeyInfo{}, err
	}
	key, err := cleanKey(key)
	if err != nil {
		return certmagic.KeyInfo{}, err
	}
	var info certmagic.KeyInfo
	err = s.view(func(t *store.Txn) error {
		f, err := t.CertFile(key)
		if err == nil {
			info = certmagic.KeyInfo{Key: key, Modified: f.Modified, Size: int64(len(f.Value)), IsTerminal: true}
			return nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		dir, err := t.HasCertFilePrefix(dirPrefix(key))
		if err != nil {
			return err
		}
		if !dir {
			return fs.ErrNotExist
		}
		info = certmagic.KeyInfo{Key: key, IsTerminal: false}
		return nil
	})
	if err != nil {
		return certmagic.KeyInfo{}, fmt.Errorf("tls storage: stat %s: %w", key, err)
	}
	return info, nil
}

// List returns the keys under dir: its direct children (files and subdirectories) or, when
// recursive, every file and directory below it. An empty dir is the root.
func (s *Storage) List(ctx context.Context, dir string, recursive bool) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	dir = strings.Trim(dir, "/")
	var out []string
	seen := map[string]bool{}
	add := func(k string) {
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	err := s.view(func(t *store.Txn) error {
		pre := dirPrefix(dir)
		if err := t.CertFileKeys(pre, func(k string) (bool, error) {
			if err := ctx.Err(); err != nil {
				return false, err
			}
			parts := strings.Split(k[len(pre):], "/")
			if !recursive {
				add(path.Join(dir, parts[0]))
				return true, nil
			}
			for i := range parts {
				add(path.Join(dir, path.Join(parts[:i+1]...)))
			}
			return true, nil
		}); err != nil {
			return err
		}
		if len(out) > 0 || dir == "" {
			return nil
		}
		// Nothing below: a file lists as empty (as in certmagic's FileStorage), anything
		// else does not exist.
		if _, err := t.CertFile(dir); errors.Is(err, store.ErrNotFound) {
			return fs.ErrNotExist
		} else if err != nil {
			return err
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("tls storage: list %s: %w", dir, err)
	}
	return out, nil
}

// dirPrefix is the key prefix of everything inside directory dir ("" is the root).
func dirPrefix(dir string) string {
	if dir == "" {
		return ""
	}
	return dir + "/"
}

// cleanKey rejects keys certmagic never makes, so that a bug shows instead of writing a key that
// List could not give back.
func cleanKey(key string) (string, error) {
	k := strings.Trim(key, "/")
	if k == "" {
		return "", errors.New("tls storage: empty key")
	}
	return k, nil
}
