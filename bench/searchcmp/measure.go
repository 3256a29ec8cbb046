package main

import (
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// heapInUse is the Go heap in use (objects plus unused space in in-use spans), read through
// runtime/metrics so that sampling does not stop the world.
func heapInUse() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/memory/classes/heap/unused:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64() + s[1].Value.Uint64()
}

// liveHeap collects garbage and returns the bytes still allocated.
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC() // the second cycle also frees what finalizers of the first released
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// sampler records the highest heap in use until stopped.
type sampler struct {
	hi   atomic.Uint64
	done chan struct{}
	wg   sync.WaitGroup
}

func startSampler() *sampler {
	s := &sampler{done: make(chan struct{})}
	s.hi.Store(heapInUse())
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			if v := heapInUse(); v > s.hi.Load() {
				s.hi.Store(v)
			}
			select {
			case <-s.done:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

func (s *sampler) stop() uint64 {
	close(s.done)
	s.wg.Wait()
	return s.hi.Load()
}

// resetPeakRSS clears the kernel's peak resident set size (VmHWM) so that a later read covers
// only what follows; false when the kernel does not allow it.
func resetPeakRSS() bool {
	return os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
}

// peakRSS reads VmHWM in bytes (0 when unavailable). Unlike the heap figures it includes
// memory-mapped index files that are resident, which matters for both Badger and bleve.
func peakRSS() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(rest)
			if len(f) == 2 {
				kb, _ := strconv.ParseUint(f[0], 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}

func mib(v uint64) float64 { return float64(v) / (1 << 20) }

func above(v, base uint64) float64 {
	if v < base {
		return 0
	}
	return mib(v - base)
}
