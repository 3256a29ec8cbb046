package search_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/rooms"
	"github.com/hearth-home/hearth/matrix/search"
	"github.com/hearth-home/hearth/matrix/store"
)

func TestTokens(t *testing.T) {
	got := fmt.Sprint(search.Tokens("Hello, WORLD! ünï-cödé 42x ÉTÉ   日本語テキスト"))
	if got != "[hello world ünï cödé 42x été 日本語テキスト]" {
		t.Fatal(got)
	}
}

// corpus writes n messages spread over rooms into st, returning the user joined to all rooms.
// Words are drawn from a Zipf distribution over a vocabulary of vocab words, as in real chat.
func corpus(tb testing.TB, st *store.Store, n, nRooms, vocab int) string {
	tb.Helper()
	const user = "@bench:example.org"
	r := rand.New(rand.NewPCG(1, 2))
	z := rand.NewZipf(rand.New(rand.NewPCG(3, 4)), 1.1, 2, uint64(vocab-1))
	words := make([]string, vocab)
	for i := range words {
		words[i] = fmt.Sprintf("w%x%s", i, []string{"", "a", "er", "ing", "ed"}[i%5])
	}
	var nids []uint64
	if err := st.Update(func(txn *store.Txn) error {
		for i := 0; i < nRooms; i++ {
			nid, err := txn.CreateRoom(&store.RoomRecord{ID: fmt.Sprintf("!room%d:example.org", i), Version: "11"})
			if err != nil {
				return err
			}
			nids = append(nids, nid)
			if err := txn.SetMembership(user, nid, "join", 1); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		tb.Fatal(err)
	}
	const batch = 1000
	for done := 0; done < n; done += batch {
		if err := st.Update(func(txn *store.Txn) error {
			for i := done; i < min(done+batch, n); i++ {
				pos, err := txn.AllocPos(store.KindEvent)
				if err != nil {
					return err
				}
				body := ""
				for w := 0; w < 4+r.IntN(16); w++ {
					body += words[z.Uint64()] + " "
				}
				pdu, _ := json.Marshal(map[string]any{"type": "m.room.message", "sender": user, "origin_server_ts": 1700000000000 + int64(i), "depth": i,
					"content": map[string]any{"msgtype": "m.text", "body": body}, "prev_events": []string{}, "auth_events": []string{}})
				room := nids[r.IntN(len(nids))]
				if err := txn.PutEvent(pos, &store.EventRecord{Room: room, ID: fmt.Sprintf("$e%d", pos), PDU: pdu}); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			tb.Fatal(err)
		}
	}
	return user
}

// peak samples the heap in the background; stop returns the highest HeapInuse seen.
func peak() (stop func() uint64) {
	var hi atomic.Uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var m runtime.MemStats
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			runtime.ReadMemStats(&m)
			if m.HeapInuse > hi.Load() {
				hi.Store(m.HeapInuse)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() uint64 { close(done); wg.Wait(); return hi.Load() }
}

// BenchmarkSearchMemory100k indexes a 100,000-message corpus (20 rooms, Zipf words) in a
// small-board Badger store and runs searches over it, reporting the peak Go heap above the
// baseline (store open, corpus written) while indexing and while searching.
// Run: go test ./matrix/search -run x -bench SearchMemory -benchtime 1x
func BenchmarkSearchMemory100k(b *testing.B) {
	dir := b.TempDir()
	st, err := store.Open(dir, store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	user := corpus(b, st, 100_000, 20, 20_000)
	svc := search.New(st, nil)

	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	indexBase := base.HeapInuse
	stop := peak()
	t0 := time.Now()
	if err := svc.CatchUp(); err != nil {
		b.Fatal(err)
	}
	indexTime := time.Since(t0)
	indexPeak := stop()
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	retained := int64(after.HeapAlloc) - int64(base.HeapAlloc)

	runtime.GC()
	runtime.ReadMemStats(&base)
	queries := []*search.RoomEvents{
		{SearchTerm: "w2"},                     // the commonest word (prefix: matches w2*, i.e. many tokens)
		{SearchTerm: "w3a", OrderBy: "recent"}, // a common exact word
		{SearchTerm: "w1f4 w3"},                // two terms
		{SearchTerm: "w4e2"},                   // a rare word
	}
	who := rooms.Requester{User: id.UserID(user)}
	b.ResetTimer()
	stop = peak()
	var counts []int
	for i := 0; i < b.N; i++ {
		for _, q := range queries {
			res, err := svc.Search(context.Background(), who, q, "")
			if err != nil {
				b.Fatal(err)
			}
			if i == 0 {
				counts = append(counts, res.Count)
			}
		}
	}
	searchPeak := stop()
	b.StopTimer()
	mib := func(v uint64, baseline uint64) float64 {
		if v < baseline {
			return 0
		}
		return float64(v-baseline) / (1 << 20)
	}
	b.ReportMetric(mib(indexPeak, indexBase), "index-peak-heap-MiB")
	b.ReportMetric(mib(searchPeak, base.HeapInuse), "search-peak-heap-MiB")
	b.ReportMetric(indexTime.Seconds(), "index-s")
	b.ReportMetric(float64(store.DirSize(dir))/(1<<20), "store-MiB")
	b.Logf("counts %v; index %.1fs; peak heap while indexing %.1f MiB (retained afterwards %.1f MiB), while searching %.1f MiB, above a baseline of %.1f MiB",
		counts, indexTime.Seconds(), mib(indexPeak, indexBase), float64(retained)/(1<<20), mib(searchPeak, base.HeapInuse), float64(indexBase)/(1<<20))
}
