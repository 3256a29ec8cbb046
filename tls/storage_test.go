package tls

import (
	"context"
	"errors"
	"io/fs"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hearth-home/hearth/matrix/store"
)

func openStore(t *testing.T, dir string) *store.Store {
	t.Helper()
	st, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func newTestStorage(t *testing.T, st *store.Store, lease time.Duration) *Storage {
	t.Helper()
	s, err := NewStorage(st, lease)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestStorageFiles(t *testing.T) {
	ctx := context.Background()
	st := openStore(t, t.TempDir())
	defer st.Close()
	s := newTestStorage(t, st, 0)

	files := map[string]string{
		"acme/ca/users/me/me.json":          "account",
		"acme/ca/users/me/me.key":           "account key",
		"certificates/ca/a.example/a.crt":   "cert a",
		"certificates/ca/a.example/a.key":   "key a",
		"certificates/ca/a.example/a.json":  "meta a",
		"certificates/ca/ab.example/ab.crt": "cert ab",
		"last_clean.json":                   "{}",
	}
	before := time.Now()
	for k, v := range files {
		if err := s.Store(ctx, k, []byte(v)); err != nil {
			t.Fatalf("Store %s: %v", k, err)
		}
	}
	for k, v := range files {
		got, err := s.Load(ctx, k)
		if err != nil || string(got) != v {
			t.Errorf("Load %s = %q, %v; want %q", k, got, err, v)
		}
	}
	if err := s.Store(ctx, "last_clean.json", []byte(`{"n":2}`)); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Load(ctx, "last_clean.json"); string(got) != `{"n":2}` {
		t.Errorf("overwrite: Load = %q", got)
	}

	if _, err := s.Load(ctx, "certificates/ca/nope.crt"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load missing: err = %v, want fs.ErrNotExist", err)
	}

	// Stat: files with size and time, directories as non-terminal, missing keys not at all.
	info, err := s.Stat(ctx, "certificates/ca/a.example/a.crt")
	if err != nil || !info.IsTerminal || info.Size != int64(len("cert a")) || info.Modified.Before(before.Add(-time.Second)) {
		t.Errorf("Stat file = %+v, %v", info, err)
	}
	info, err = s.Stat(ctx, "certificates/ca")
	if err != nil || info.IsTerminal || info.Key != "certificates/ca" {
		t.Errorf("Stat dir = %+v, %v", info, err)
	}
	// "certificates/ca/a" is a string prefix of real keys but not a directory.
	if _, err := s.Stat(ctx, "certificates/ca/a"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Stat of a string prefix: err = %v, want fs.ErrNotExist", err)
	}
	if !s.Exists(ctx, "acme") || !s.Exists(ctx, "acme/ca/users/me/me.key") || s.Exists(ctx, "acm") {
		t.Error("Exists disagrees with Stat")
	}

	// List: direct children, or everything below when recursive.
	got, err := s.List(ctx, "certificates/ca", false)
	want := []string{"certificates/ca/a.example", "certificates/ca/ab.example"}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("List = %v, %v; want %v", got, err, want)
	}
	got, err = s.List(ctx, "acme", true)
	want = []string{"acme/ca", "acme/ca/users", "acme/ca/users/me", "acme/ca/users/me/me.json", "acme/ca/users/me/me.key"}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("List recursive = %v, %v; want %v", got, err, want)
	}
	got, err = s.List(ctx, "", false)
	want = []string{"acme", "certificates", "last_clean.json"}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("List root = %v, %v; want %v", got, err, want)
	}
	if _, err := s.List(ctx, "nowhere", false); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("List missing: err = %v, want fs.ErrNotExist", err)
	}

	// Delete of a directory removes everything below it and nothing beside it.
	if err := s.Delete(ctx, "certificates/ca/a.example"); err != nil {
		t.Fatal(err)
	}
	if s.Exists(ctx, "certificates/ca/a.example") || s.Exists(ctx, "certificates/ca/a.example/a.key") {
		t.Error("directory still exists after Delete")
	}
	if !s.Exists(ctx, "certificates/ca/ab.example/ab.crt") {
		t.Error("Delete of a.example removed its neighbour ab.example")
	}
	if err := s.Delete(ctx, "certificates/ca/a.example"); err != nil {
		t.Errorf("Delete of a missing key: %v", err)
	}

	// Cancelled contexts are honoured.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.Store(cctx, "x", nil); !errors.Is(err, context.Canceled) {
		t.Errorf("Store with cancelled ctx: %v", err)
	}
}

func TestStoragePersists(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st := openStore(t, dir)
	if err := newTestStorage(t, st, 0).Store(ctx, "acme/account.json", []byte("kept")); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st = openStore(t, dir)
	defer st.Close()
	got, err := newTestStorage(t, st, 0).Load(ctx, "acme/account.json")
	if err != nil || string(got) != "kept" {
		t.Errorf("after reopen: %q, %v", got, err)
	}
}

func TestStorageLocksExclude(t *testing.T) {
	ctx := context.Background()
	st := openStore(t, t.TempDir())
	defer st.Close()
	// Two Storages on one store stand for two holders that share only the records; several
	// goroutines per Storage exercise the in-process semaphore too.
	a, b := newTestStorage(t, st, 0), newTestStorage(t, st, 0)
	var inside, maxInside, entries atomic.Int32
	var wg sync.WaitGroup
	for i := range 8 {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Go(func() {
			for range 5 {
				if err := s.Lock(ctx, "issue_cert_a.example"); err != nil {
					t.Error(err)
					return
				}
				n := inside.Add(1)
				if n > maxInside.Load() {
					maxInside.Store(n)
				}
				entries.Add(1)
				time.Sleep(time.Millisecond)
				inside.Add(-1)
				if err := s.Unlock(ctx, "issue_cert_a.example"); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if maxInside.Load() != 1 || entries.Load() != 40 {
		t.Errorf("max holders at once %d (want 1), entries %d (want 40)", maxInside.Load(), entries.Load())
	}

	// Different names do not exclude each other.
	if err := a.Lock(ctx, "one"); err != nil {
		t.Fatal(err)
	}
	if ok, err := b.TryLock(ctx, "two"); !ok || err != nil {
		t.Errorf("TryLock of another name = %v, %v", ok, err)
	}
	if ok, err := b.TryLock(ctx, "one"); ok || err != nil {
		t.Errorf("TryLock of a held name = %v, %v; want false", ok, err)
	}
	if ok, err := a.TryLock(ctx, "one"); ok || err != nil {
		t.Errorf("TryLock in-process of a held name = %v, %v; want false", ok, err)
	}
	// A waiter gives up with its context.
	tctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if err := b.Lock(tctx, "one"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Lock of a held name with a deadline: %v", err)
	}
	if err := a.Unlock(ctx, "one"); err != nil {
		t.Fatal(err)
	}
	if ok, err := b.TryLock(ctx, "one"); !ok || err != nil {
		t.Errorf("TryLock after Unlock = %v, %v", ok, err)
	}
	if err := a.Unlock(ctx, "never-locked"); err == nil {
		t.Error("Unlock of a lock never taken succeeded")
	}
}

func TestStorageLockHeldBeyondLeaseAndStaleTakeover(t *testing.T) {
	ctx := context.Background()
	st := openStore(t, t.TempDir())
	defer st.Close()
	const lease = 300 * time.Millisecond
	a, b := newTestStorage(t, st, lease), newTestStorage(t, st, lease)

	// A live holder renews its record: after several leases b still cannot take it.
	if err := a.Lock(ctx, "renew"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * lease)
	if ok, _ := b.TryLock(ctx, "renew"); ok {
		t.Fatal("a renewed lock was taken over")
	}
	if err := a.Unlock(ctx, "renew"); err != nil {
		t.Fatal(err)
	}

	// A crashed holder (a record nobody renews) blocks until the record expires, then b
	// takes over.
	if err := st.Update(func(tx *store.Txn) error {
		return tx.PutCertLock("stale", store.CertLock{Owner: "dead process", Expires: time.Now().Add(lease)})
	}); err != nil {
		t.Fatal(err)
	}
	if ok, _ := b.TryLock(ctx, "stale"); ok {
		t.Fatal("took a lock whose record is still live")
	}
	start := time.Now()
	lctx, cancel := context.WithTimeout(ctx, 10*lease)
	defer cancel()
	if err := b.Lock(lctx, "stale"); err != nil {
		t.Fatalf("Lock after the stale record expired: %v", err)
	}
	if waited := time.Since(start); waited < lease/2 {
		t.Errorf("took the lock after %v, before the record expired", waited)
	}
	if err := b.Unlock(ctx, "stale"); err != nil {
		t.Fatal(err)
	}
}

func TestStorageClosed(t *testing.T) {
	ctx := context.Background()
	st := openStore(t, t.TempDir())
	defer st.Close()
	s := newTestStorage(t, st, 300*time.Millisecond)
	if err := s.Store(ctx, "a/b", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := s.Lock(ctx, "held"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if err := s.Store(ctx, "a/c", []byte("y")); !errors.Is(err, errStorageClosed) {
		t.Errorf("Store after Close: %v", err)
	}
	if _, err := s.Load(ctx, "a/b"); !errors.Is(err, errStorageClosed) {
		t.Errorf("Load after Close: %v", err)
	}
	if err := s.Lock(ctx, "other"); !errors.Is(err, errStorageClosed) {
		t.Errorf("Lock after Close: %v", err)
	}
	// The held lock's renewal stopped: its record runs out and another Storage takes it.
	b := newTestStorage(t, st, 300*time.Millisecond)
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := b.Lock(lctx, "held"); err != nil {
		t.Errorf("lock of a closed Storage never expired: %v", err)
	}
}
