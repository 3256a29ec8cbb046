package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
)

func TestPercentileAndSummary(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	s := summarize(d)
	if s.N != 100 || s.P50 != 50 || s.P99 != 99 || s.Max != 100 {
		t.Fatalf("summarize = %+v", s)
	}
	if got := summarize(nil); got.N != 0 {
		t.Fatalf("summarize(nil) = %+v", got)
	}
}

func TestProcReadings(t *testing.T) {
	rss, hwm, err := memStatus(os.Getpid())
	if err != nil || rss <= 0 || hwm < rss {
		t.Fatalf("memStatus = %d, %d, %v", rss, hwm, err)
	}
	if _, err := cpuTicks(os.Getpid()); err != nil {
		t.Fatal(err)
	}
	// This test process is idle apart from the sampling itself.
	ir, err := waitIdle(os.Getpid(), 400*time.Millisecond, 5*time.Second, 0.5)
	if err != nil || ir.TimedOut {
		t.Fatalf("waitIdle = %+v, %v", ir, err)
	}
}

func TestMessageContentSize(t *testing.T) {
	b, err := json.Marshal(messageContent(200, "s01 m000001"))
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 190 || len(b) > 210 {
		t.Fatalf("content is %d bytes: %s", len(b), b)
	}
}

func TestMemLimitBytes(t *testing.T) {
	for name, want := range map[string]int64{
		"Hearth (GOMEMLIMIT=96MiB)": 96 << 20,
		"Hearth (GOMEMLIMIT=1GiB)":  1 << 30,
		"Hearth":                    0,
	} {
		if got := memLimitBytes(name); got != want {
			t.Errorf("memLimitBytes(%q) = %d, want %d", name, got, want)
		}
	}
}

// TestGroupSync checks that concurrent callers share syncs and that every commit is followed
// by a sync.
func TestGroupSync(t *testing.T) {
	db, err := badger.Open(badger.DefaultOptions(filepath.Join(t.TempDir(), "db")).WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var g groupSync
	done := make(chan error)
	for range 8 {
		go func() { done <- g.sync(db) }()
	}
	for range 8 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if g.started == 0 || g.started > 8 || g.done != g.started {
		t.Fatalf("started %d, done %d", g.started, g.done)
	}
}
