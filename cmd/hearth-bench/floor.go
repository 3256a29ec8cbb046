package main

import (
	"crypto/rand"
	"encoding/binary"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/dgraph-io/badger/v4"
	badgeropts "github.com/dgraph-io/badger/v4/options"
)

// floorResult is the physical limit of this disk for Hearth's kind of write.
type floorResult struct {
	ValueBytes int `json:"value_bytes"`
	// SerialTxnPerSec: one writer, one Badger transaction (one key, one value) at a time, each
	// committed with SyncWrites: an unbatched durable write path.
	SerialTxnPerSec float64 `json:"serial_txn_per_second"`
	// ConcurrentTxnPerSec: Writers writers at once; Badger batches concurrent commits into one
	// fsync (group commit). Same concurrency as the send phase.
	Writers             int     `json:"writers"`
	ConcurrentTxnPerSec float64 `json:"concurrent_txn_per_second"`
	// GroupCommitTxnPerSec: Writers writers, SyncWrites off, each commit followed by a shared
	// db.Sync() that started after it (a group commit done by the caller). Badger v4 with
	// SyncWrites syncs its memtable WAL once per transaction even inside a batch, so without
	// this concurrency buys little.
	GroupCommitTxnPerSec float64 `json:"group_commit_txn_per_second"`
	// FdatasyncPerSec: 1 KiB appended to a plain file and fdatasync'd, in a loop.
	FdatasyncPerSec float64 `json:"fdatasync_1k_per_second"`
	Dir             string  `json:"dir"`
}

// measureFloor measures Badger's durable transaction rate for values of valueBytes on the disk
// holding dir, with the options of Hearth's store (matrix/store: the small-board profile,
// SyncWrites on).
func measureFloor(dir string, d time.Duration, writers, valueBytes int) (*floorResult, error) {
	_ = os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	fr := &floorResult{ValueBytes: valueBytes, Writers: writers, Dir: dir}

	fsyncs, err := fdatasyncRate(filepath.Join(dir, "fsync.dat"), min(d, 3*time.Second))
	if err != nil {
		return nil, err
	}
	fr.FdatasyncPerSec = fsyncs

	if err := floorBadger(fr, filepath.Join(dir, "badger"), d, writers, valueBytes, true); err != nil {
		return fr, err
	}
	if err := floorBadger(fr, filepath.Join(dir, "badger-group"), d, writers, valueBytes, false); err != nil {
		return fr, err
	}
	logf("floor: fdatasync(1 KiB) %.0f/s; Badger txn of %d B with SyncWrites: serial %.0f/s, %d writers %.0f/s; %d writers with a shared Sync: %.0f/s",
		fr.FdatasyncPerSec, valueBytes, fr.SerialTxnPerSec, writers, fr.ConcurrentTxnPerSec, writers, fr.GroupCommitTxnPerSec)
	return fr, nil
}

// floorBadger measures one Badger configuration: with syncWrites, serial and concurrent
// transactions; without, concurrent transactions each made durable by a group sync.
func floorBadger(fr *floorResult, dir string, d time.Duration, writers, valueBytes int, syncWrites bool) error {
	bo := badger.DefaultOptions(dir).
		WithSyncWrites(syncWrites).
		WithMemTableSize(8 << 20).
		WithNumMemtables(2).
		WithNumLevelZeroTables(3).
		WithNumLevelZeroTablesStall(8).
		WithBaseTableSize(2 << 20).
		WithValueLogFileSize(64 << 20).
		WithValueThreshold(4 << 10).
		WithBlockCacheSize(8 << 20).
		WithIndexCacheSize(4 << 20).
		WithNumCompactors(2).
		WithCompression(badgeropts.ZSTD).
		WithDetectConflicts(true).
		WithLogger(nil)
	db, err := badger.Open(bo)
	if err != nil {
		return err
	}
	defer db.Close()
	var gs groupSync
	var seq atomic.Uint64
	write := func() error {
		k := make([]byte, 9)
		k[0] = 'f'
		binary.BigEndian.PutUint64(k[1:], seq.Add(1))
		v := make([]byte, valueBytes)
		_, _ = rand.Read(v)
		if err := db.Update(func(txn *badger.Txn) error { return txn.Set(k, v) }); err != nil {
			return err
		}
		if !syncWrites {
			return gs.sync(db)
		}
		return nil
	}
	rate := func(n int) (float64, error) {
		var (
			count atomic.Int64
			wg    sync.WaitGroup
			first error
			mu    sync.Mutex
		)
		start := time.Now()
		deadline := start.Add(d)
		for range n {
			wg.Go(func() {
				for time.Now().Before(deadline) {
					if err := write(); err != nil {
						mu.Lock()
						first = err
						mu.Unlock()
						return
					}
					count.Add(1)
				}
			})
		}
		wg.Wait()
		return float64(count.Load()) / time.Since(start).Seconds(), first
	}
	if !syncWrites {
		fr.GroupCommitTxnPerSec, err = rate(writers)
		return err
	}
	if fr.SerialTxnPerSec, err = rate(1); err != nil {
		return err
	}
	fr.ConcurrentTxnPerSec, err = rate(writers)
	return err
}

// groupSync makes concurrent commits durable with as few db.Sync calls as possible: a caller
// waits for a sync that started after its call; whoever finds none running starts one.
type groupSync struct {
	mu      sync.Mutex
	cond    *sync.Cond
	started uint64 // syncs started
	done    uint64 // highest sync finished
	running bool
	err     error
}

func (g *groupSync) sync(db *badger.DB) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.cond == nil {
		g.cond = sync.NewCond(&g.mu)
	}
	need := g.started + 1 // a sync running now may have started before our commit
	for g.done < need {
		if g.running {
			g.cond.Wait()
			continue
		}
		g.running = true
		g.started++
		mine := g.started
		g.mu.Unlock()
		err := db.Sync()
		g.mu.Lock()
		g.running, g.done, g.err = false, mine, err
		g.cond.Broadcast()
	}
	return g.err
}

func fdatasyncRate(path string, d time.Duration) (float64, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	buf := make([]byte, 1024)
	n := 0
	start := time.Now()
	for time.Since(start) < d {
		if _, err := f.Write(buf); err != nil {
			return 0, err
		}
		if err := syscall.Fdatasync(int(f.Fd())); err != nil {
			return 0, err
		}
		n++
	}
	return float64(n) / time.Since(start).Seconds(), nil
}
