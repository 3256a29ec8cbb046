package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"time"

	"github.com/hearth-home/hearth/appliance"
	"github.com/hearth-home/hearth/appliance/config"
)

// inProcess is an appliance served by this process (for profiling only: RSS and CPU then
// include the load generator).
type inProcess struct{ url string }

func (s inProcess) Pid() int        { return os.Getpid() }
func (s inProcess) BaseURL() string { return s.url }

// runProfile runs the workload against an in-process Hearth and writes a CPU profile of each
// phase group and a heap profile at the end into WORK/profile. Read them with
// `go tool pprof -top WORK/profile/messages.cpu.pprof`.
func runProfile(ctx context.Context, p params, o options) error {
	dir := filepath.Join(o.work, "profile")
	_ = os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	cfg := config.Default()
	cfg.DataDir = filepath.Join(dir, "data")
	cfg.Listen = "127.0.0.1:0"
	cfg.ServerName = "localhost"
	secret := randomHex(16)
	cfg.Registration.SharedSecret = secret
	cfg.Limits.RateLimit = false
	app, err := appliance.New(cfg, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		return err
	}
	actx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- app.Run(actx) }()
	defer func() {
		cancel()
		<-done
	}()
	time.Sleep(200 * time.Millisecond)
	res := &result{Target: "Hearth (in-process)"}
	r := newRunner(p, inProcess{url: "http://" + app.ClientAddr()}, secret, res)

	profiled := func(name string, fn func() error) error {
		f, err := os.Create(filepath.Join(dir, name+".cpu.pprof"))
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
		return fn()
	}
	if err := profiled("setup", func() error {
		if err := r.register(ctx); err != nil {
			return err
		}
		return r.createRooms(ctx)
	}); err != nil {
		return err
	}
	if err := profiled("messages", func() error { r.sendMessages(ctx); return nil }); err != nil {
		return err
	}
	if err := writeHeap(filepath.Join(dir, "heap-after-messages.pprof")); err != nil {
		return err
	}
	if err := profiled("sync", func() error { r.syncWake(ctx); r.initialSync(ctx); return nil }); err != nil {
		return err
	}
	// Initial syncs alone, repeated, so the profile has enough samples.
	if err := profiled("initialsync", func() error {
		path := "/_matrix/client/v3/sync?filter=" + url.QueryEscape(initialSyncFilter)
		for range 20 {
			var raw []byte
			if err := r.c.do(ctx, "GET /sync", http.MethodGet, path, r.users[0].Token, nil, &raw); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return err
	}
	runtime.GC()
	if err := writeHeap(filepath.Join(dir, "heap.pprof")); err != nil {
		return err
	}
	fmt.Printf("in-process Hearth: %.1f msg/s (incl. catch-up %.1f), send p50 %.1f ms p99 %.1f ms, wake p99 %.1f ms, initial sync %.0f ms\n",
		res.SendPerSec, res.SendPerSecCaught, res.SendLatency.P50, res.SendLatency.P99, res.WakeLatency.P99, res.InitialSyncMedianMs)
	fmt.Printf("profiles in %s: {setup,messages,sync,initialsync}.cpu.pprof, heap-after-messages.pprof, heap.pprof (after a GC at the end)\n", dir)
	return nil
}

// writeHeap writes the heap profile (in-use and allocated since start).
func writeHeap(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
