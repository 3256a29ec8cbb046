package store

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	badger "github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
)

// ErrNotFound is returned by getters when a record does not exist.
var ErrNotFound = errors.New("store: not found")

// schemaVersion is bumped with every migration in migrate.go.
const schemaVersion = 1

// Options tune the store. The zero value is the small-board profile.
type Options struct {
	// InMemory keeps everything in RAM (tests of pure logic only; nothing survives Close).
	InMemory bool
	// CacheBytes is Badger's block cache budget. Default 8 MiB.
	CacheBytes int64
	Logger     *slog.Logger
}

// Store is the open database.
type Store struct {
	db     *badger.DB
	stream *Stream
	log    *slog.Logger

	seqMu sync.Mutex
	seqs  map[string]*badger.Sequence
}

// Open opens (creating if needed) the store in dir.
func Open(dir string, o Options) (*Store, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.CacheBytes == 0 {
		o.CacheBytes = 8 << 20
	}
	bo := badger.DefaultOptions(dir)
	if o.InMemory {
		bo = badger.DefaultOptions("").WithInMemory(true)
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create store dir: %w", err)
	}
	// Small-board profile: Badger's defaults assume a server (64 MiB memtables, 256 MiB block cache,
	// 1 GiB value-log files). These keep the resident set in the tens of MiB.
	bo = bo.
		WithSyncWrites(true). // an acknowledged write survives power loss; concurrent commits share an fsync
		WithMemTableSize(8 << 20).
		WithNumMemtables(2).
		WithNumLevelZeroTables(3).
		WithNumLevelZeroTablesStall(8).
		WithBaseTableSize(2 << 20).
		WithValueLogFileSize(64 << 20).
		WithValueThreshold(4 << 10).
		WithBlockCacheSize(o.CacheBytes).
		WithIndexCacheSize(4 << 20).
		WithNumCompactors(2).
		WithCompression(options.ZSTD).
		WithDetectConflicts(true).
		WithLogger(badgerLogger{o.Logger})
	db, err := badger.Open(bo)
	if err != nil {
		return nil, fmt.Errorf("open badger at %s: %w", dir, err)
	}
	s := &Store{db: db, log: o.Logger, seqs: map[string]*badger.Sequence{}}
	if err := s.migrate(); err != nil {
		db.Close()
		return nil, err
	}
	last, err := s.lastPosition()
	if err != nil {
		db.Close()
		return nil, err
	}
	s.stream = newStream(last)
	return s, nil
}

// Close releases sequences and closes the database.
func (s *Store) Close() error {
	s.seqMu.Lock()
	for _, q := range s.seqs {
		_ = q.Release()
	}
	s.seqs = map[string]*badger.Sequence{}
	s.seqMu.Unlock()
	return s.db.Close()
}

// Stream returns the global stream.
func (s *Store) Stream() *Stream { return s.stream }

// Size reports the on-disk size of the LSM tree and value log.
func (s *Store) Size() (lsm, vlog int64) { return s.db.Size() }

// DirSize walks dir and sums file sizes (Badger's own figures lag behind).
func DirSize(dir string) int64 {
	var n int64
	_ = filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			n += fi.Size()
		}
		return nil
	})
	return n
}

func (s *Store) lastPosition() (uint64, error) {
	var last uint64
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Reverse: true, Prefix: []byte{pStreamLog}})
		defer it.Close()
		it.Seek(streamLogKey(^uint64(0)))
		if it.Valid() {
			last = U64(it.Item().Key()[1:])
		}
		return nil
	})
	return last, err
}

// NextNID returns the next value of a named NID sequence (rooms, state keys, snapshots).
func (s *Store) nextNID(name string) (uint64, error) {
	s.seqMu.Lock()
	defer s.seqMu.Unlock()
	q, ok := s.seqs[name]
	if !ok {
		var err error
		// A lease of 32 keeps writes rare; a crash only leaves a gap in the numbering.
		q, err = s.db.GetSequence(seqKey(name), 32)
		if err != nil {
			return 0, fmt.Errorf("sequence %s: %w", name, err)
		}
		s.seqs[name] = q
	}
	for {
		n, err := q.Next()
		if err != nil {
			return 0, fmt.Errorf("sequence %s next: %w", name, err)
		}
		if n != 0 { // 0 means "none" in records
			return n, nil
		}
	}
}

// View runs fn in a read-only transaction.
func (s *Store) View(fn func(*Txn) error) error {
	return s.db.View(func(bt *badger.Txn) error {
		return fn(&Txn{t: bt, s: s})
	})
}

// Update runs fn in a read-write transaction and commits it durably. On a conflict with a
// concurrent transaction it runs fn again from scratch. Positions allocated by fn are released
// (and their notes delivered, in order) whether or not the commit succeeds.
func (s *Store) Update(fn func(*Txn) error) error {
	for attempt := 0; ; attempt++ {
		bt := s.db.NewTransaction(true)
		t := &Txn{t: bt, s: s, write: true}
		err := fn(t)
		if err == nil {
			err = bt.Commit()
		} else {
			bt.Discard()
		}
		if err != nil {
			t.notes = nil
		}
		s.stream.finish(t.positions, t.notes)
		if errors.Is(err, badger.ErrConflict) && attempt < 10 {
			continue
		}
		if err != nil && errors.Is(err, badger.ErrTxnTooBig) {
			return fmt.Errorf("store: transaction too big: %w", err)
		}
		return err
	}
}

type badgerLogger struct{ l *slog.Logger }

func (b badgerLogger) Errorf(f string, a ...any) {
	b.l.Error(fmt.Sprintf(f, a...), "component", "badger")
}
func (b badgerLogger) Warningf(f string, a ...any) {
	b.l.Warn(fmt.Sprintf(f, a...), "component", "badger")
}
func (b badgerLogger) Infof(f string, a ...any) {
	b.l.Debug(fmt.Sprintf(f, a...), "component", "badger")
}
func (b badgerLogger) Debugf(string, ...any) {}
