package main

import (
	"os"
	"runtime/debug"
	"strconv"
	"testing"
)

// The comparison as Go benchmarks (one engine per benchmark, GOGC taken from the environment):
//
//	go test -run x -bench . -benchtime 1x
//	GOGC=20 go test -run x -bench . -benchtime 1x
func benchEngine(b *testing.B, name string) {
	gogc := 100
	if v, err := strconv.Atoi(os.Getenv("GOGC")); err == nil {
		gogc = v
	}
	defer debug.SetGCPercent(debug.SetGCPercent(gogc))
	for range b.N {
		r, err := measure(name, gogc, 100_000)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(r.IndexSeconds, "index-s")
		b.ReportMetric(r.PeakHeapMiB, "index-peak-heap-MiB")
		b.ReportMetric(r.LiveHeapMiB, "live-heap-MiB")
		b.ReportMetric(r.SearchPeakMiB, "search-peak-heap-MiB")
		b.ReportMetric(r.DiskMiB, "disk-MiB")
		for _, q := range r.Queries {
			b.Logf("%s: %d hits, median %.2f ms", q.Name, q.Hits, q.MedianMS)
		}
	}
}

func BenchmarkBadger100k(b *testing.B) { benchEngine(b, "badger") }
func BenchmarkBleve100k(b *testing.B)  { benchEngine(b, "bleve") }

// TestCompareSmall runs both engines on a small corpus and checks that they agree on what
// matches, so that the benchmark compares like with like.
func TestCompareSmall(t *testing.T) {
	var hits [2][]int
	for i, name := range []string{"badger", "bleve"} {
		r, err := measure(name, 100, 2_000)
		if err != nil {
			t.Fatal(err)
		}
		if r.DiskMiB <= 0 {
			t.Errorf("%s: no index on disk", name)
		}
		for _, q := range r.Queries {
			hits[i] = append(hits[i], q.Hits)
		}
	}
	for i := range hits[0] {
		if hits[0][i] != hits[1][i] || hits[0][i] == 0 && i < 3 {
			t.Errorf("query %q: badger %d hits, bleve %d", queries[i].Name, hits[0][i], hits[1][i])
		}
	}
}
