package media

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/hearth-home/hearth/matrix/merr"
	"github.com/hearth-home/hearth/matrix/store"
)

// The sweeper on a real store and real files: records are written as a fetch writes them,
// then the clock moves and sweeps run.

func newRemoteTestService(t *testing.T, budget int64, retention time.Duration) (*Service, *remoteCache, *time.Time) {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(dir+"/db", store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	s := New(st, Options{ServerName: "here.example", DataDir: dir}, slog.New(slog.DiscardHandler))
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s.now = func() time.Time { return now }
	rc := &remoteCache{opts: RemoteOptions{MaxBytes: budget, Retention: retention}, inflight: map[string]*remoteCall{}}
	s.remote = rc
	return s, rc, &now
}

// cacheRemote stores content as a fetch does and returns its file path.
func cacheRemote(t *testing.T, s *Service, origin, mediaID string, content []byte) string {
	t.Helper()
	tmp, hash, size, err := s.streamTemp(bytes.NewReader(content), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.placeFile(tmp, s.blobPath(hash)); err != nil {
		t.Fatal(err)
	}
	now := s.nowMS()
	rec := store.RemoteMediaRecord{Origin: origin, ID: mediaID, Hash: hash, Size: size, FetchedMS: now, LastAccessMS: now}
	if err := s.st.Update(func(tx *store.Txn) error { return tx.PutRemoteMedia(&rec) }); err != nil {
		t.Fatal(err)
	}
	return s.blobPath(hash)
}

func cached(t *testing.T, s *Service, origin, mediaID string) bool {
	t.Helper()
	err := s.st.View(func(tx *store.Txn) error { _, err := tx.RemoteMedia(origin, mediaID); return err })
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		t.Fatal(err)
	}
	return err == nil
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

func TestRemoteSweepLRU(t *testing.T) {
	s, rc, now := newRemoteTestService(t, 250, time.Hour*24*365)
	step := func(d time.Duration) { *now = now.Add(d) }
	pa := cacheRemote(t, s, "o.example", "A", bytes.Repeat([]byte("a"), 100))
	step(2 * time.Minute)
	pb := cacheRemote(t, s, "o.example", "B", bytes.Repeat([]byte("b"), 100))
	step(2 * time.Minute)
	// A is read again: it becomes the most recently used.
	if _, ok, err := s.cachedRemote("o.example", "A"); err != nil || !ok {
		t.Fatalf("cachedRemote A: %v %v", ok, err)
	}
	step(2 * time.Minute)
	pc := cacheRemote(t, s, "o.example", "C", bytes.Repeat([]byte("c"), 100))
	if err := s.sweepRemote(rc, "o.example/C"); err != nil {
		t.Fatal(err)
	}
	if cached(t, s, "o.example", "B") || fileExists(pb) {
		t.Fatal("B, the least recently used, should be evicted with its file")
	}
	if !cached(t, s, "o.example", "A") || !fileExists(pa) || !cached(t, s, "o.example", "C") || !fileExists(pc) {
		t.Fatal("A (read recently) and C (just fetched) should stay")
	}
	// The just-fetched media is spared even when it alone is over budget; the next sweep
	// takes it back within budget.
	step(2 * time.Minute)
	pd := cacheRemote(t, s, "o.example", "D", bytes.Repeat([]byte("d"), 300))
	if err := s.sweepRemote(rc, "o.example/D"); err != nil {
		t.Fatal(err)
	}
	if !fileExists(pd) || cached(t, s, "o.example", "A") || cached(t, s, "o.example", "C") {
		t.Fatal("a fetch over budget evicts everything else and keeps the new file")
	}
	if err := s.sweepRemote(rc, ""); err != nil {
		t.Fatal(err)
	}
	if fileExists(pd) || cached(t, s, "o.example", "D") {
		t.Fatal("an unspared sweep brings the cache within budget")
	}
}

func TestRemoteSweepRetentionAndSharedFiles(t *testing.T) {
	s, rc, now := newRemoteTestService(t, 1<<30, 24*time.Hour)
	shared := []byte("same bytes on two servers and uploaded here too")
	p1 := cacheRemote(t, s, "one.example", "X", shared)
	p2 := cacheRemote(t, s, "two.example", "Y", shared)
	if p1 != p2 {
		t.Fatal("identical content should be one file")
	}
	*now = now.Add(12 * time.Hour)
	solo := cacheRemote(t, s, "one.example", "Z", []byte("only remote"))
	*now = now.Add(13 * time.Hour) // X and Y are 25 h old, Z 13 h
	// A local upload of the same bytes shares the file.
	if _, err := s.Upload(context.Background(), "@u:here.example", "text/plain", "", bytes.NewReader(shared)); err != nil {
		t.Fatal(err)
	}
	if err := s.sweepRemote(rc, ""); err != nil {
		t.Fatal(err)
	}
	if cached(t, s, "one.example", "X") || cached(t, s, "two.example", "Y") {
		t.Fatal("media unused past the retention should be dropped")
	}
	if !fileExists(p1) {
		t.Fatal("a file that local media uses must survive eviction of remote records")
	}
	if !cached(t, s, "one.example", "Z") || !fileExists(solo) {
		t.Fatal("media within retention should stay")
	}
	*now = now.Add(12 * time.Hour)
	if err := s.sweepRemote(rc, ""); err != nil {
		t.Fatal(err)
	}
	if cached(t, s, "one.example", "Z") || fileExists(solo) {
		t.Fatal("Z past retention should be dropped with its file")
	}
}

func TestRemoteMissingFileIsRefetched(t *testing.T) {
	s, _, _ := newRemoteTestService(t, 1<<30, time.Hour)
	p := cacheRemote(t, s, "o.example", "M", []byte("content"))
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := s.cachedRemote("o.example", "M"); err != nil || ok {
		t.Fatalf("a record whose file is gone must read as not cached (ok=%v err=%v)", ok, err)
	}
	if cached(t, s, "o.example", "M") {
		t.Fatal("the stale record should be dropped")
	}
}

func TestRemoteLookupRefusesBadNames(t *testing.T) {
	s, _, _ := newRemoteTestService(t, 1<<30, time.Hour)
	for _, tc := range [][2]string{{"o.example", "../x"}, {"o.example", ""}, {"bad/host", "abc"}, {"", "abc"}, {"a b", "abc"}} {
		_, err := s.Lookup(context.Background(), tc[0], tc[1], 0)
		if me, ok := merr.As(err); !ok || me.Code != "M_NOT_FOUND" {
			t.Errorf("Lookup(%q, %q) = %v, want M_NOT_FOUND", tc[0], tc[1], err)
		}
	}
}

func TestRemoteErrorMapping(t *testing.T) {
	if e, _ := merr.As(remoteError(context.DeadlineExceeded)); e.Status != 504 || e.Code != "M_UNKNOWN" {
		t.Errorf("timeout -> %d %s", e.Status, e.Code)
	}
	if e, _ := merr.As(remoteError(errors.New("connection refused"))); e.Status != 502 || e.Code != "M_UNKNOWN" {
		t.Errorf("refused -> %d %s", e.Status, e.Code)
	}
	if e, _ := merr.As(remoteError(errNotFound())); e.Status != 404 {
		t.Errorf("not found -> %d", e.Status)
	}
}
