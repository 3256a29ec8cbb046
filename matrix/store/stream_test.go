package store

import (
	"errors"
	"sync"
	"testing"
)

func TestWatermarkWaitsForEarlierCommits(t *testing.T) {
	s := newStream(10)
	var got []uint64
	s.SetSink(func(ns []Note) {
		for _, n := range ns {
			got = append(got, n.Pos)
		}
	})
	a, b := s.Alloc(), s.Alloc()
	if a != 11 || b != 12 {
		t.Fatalf("alloc = %d, %d", a, b)
	}
	s.finish([]uint64{b}, []Note{{Pos: b, Value: "b"}})
	if w := s.Watermark(); w != 10 {
		t.Fatalf("watermark passed an unfinished position: %d", w)
	}
	if len(got) != 0 {
		t.Fatalf("note delivered before earlier position finished: %v", got)
	}
	s.finish([]uint64{a}, []Note{{Pos: a, Value: "a"}})
	if w := s.Watermark(); w != 12 {
		t.Fatalf("watermark = %d, want 12", w)
	}
	if len(got) != 2 || got[0] != 11 || got[1] != 12 {
		t.Fatalf("notes out of order: %v", got)
	}
}

func TestFailedTransactionReleasesPositions(t *testing.T) {
	st, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	boom := errors.New("boom")
	err = st.Update(func(txn *Txn) error {
		if _, err := txn.AllocPos(KindEvent); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	if w := st.Stream().Watermark(); w != 1 {
		t.Fatalf("watermark stuck at %d after a failed transaction", w)
	}
}

func TestPositionsSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	st, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = st.Update(func(txn *Txn) error {
				_, err := txn.AllocPos(KindEvent)
				return err
			})
		}()
	}
	wg.Wait()
	if w := st.Stream().Watermark(); w != 20 {
		t.Fatalf("watermark = %d, want 20", w)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st, err = Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if w := st.Stream().Watermark(); w != 20 {
		t.Fatalf("after restart watermark = %d, want 20", w)
	}
	if p := st.Stream().Alloc(); p != 21 {
		t.Fatalf("after restart next position = %d, want 21", p)
	}
}

func TestSnapshotRoundTrip(t *testing.T) {
	st, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	err = st.Update(func(txn *Txn) error {
		nid, err := txn.PutSnapshot(&Snapshot{Parent: 7, Depth: 3, Entries: map[uint64]uint64{1: 100, 2: 0, 300: 1 << 40}})
		if err != nil {
			return err
		}
		s, err := txn.GetSnapshot(nid)
		if err != nil {
			return err
		}
		if s.Parent != 7 || s.Depth != 3 || len(s.Entries) != 3 || s.Entries[300] != 1<<40 || s.Entries[2] != 0 {
			t.Fatalf("snapshot mangled: %+v", s)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
