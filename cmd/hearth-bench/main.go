package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "hearth-bench:", err)
		os.Exit(1)
	}
}

var benchStart = time.Now()

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[%6.1fs] %s\n", time.Since(benchStart).Seconds(), fmt.Sprintf(format, args...))
}

func numCPU() int { return runtime.NumCPU() }

type options struct {
	mode, out, cache, work, only string
	soak, profile, keep, render  bool
	devices                      bool
	soakCycles                   int
	memLimit, hearthBin, rev     string
}

func run() error {
	if len(os.Args) > 1 && os.Args[1] == "large-join" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		return runLargeJoin(ctx, os.Args[2:]) // largejoin.go
	}
	home, _ := os.UserHomeDir()
	defMode := os.Getenv("BENCH_MODE")
	if defMode == "" {
		defMode = "quick"
	}
	var o options
	flag.StringVar(&o.mode, "mode", defMode, "workload size: quick (a few minutes) or full (issue 8's numbers); default from BENCH_MODE")
	flag.StringVar(&o.out, "out", "docs/bench", "where results.md, results.json and latency.png go (relative to the repository)")
	flag.StringVar(&o.cache, "cache", filepath.Join(home, ".cache", "hearth-bench"), "cache folder: binaries, Dendrite install")
	flag.StringVar(&o.work, "work", "", "folder for the servers' data directories and logs (default CACHE/run; same disk as the floor)")
	flag.StringVar(&o.only, "only", "hearth,hearth-memlimit,dendrite", "comma-separated targets to run: hearth, hearth-memlimit, dendrite")
	flag.StringVar(&o.memLimit, "memlimit", "96MiB", "GOMEMLIMIT of the memory-budget run")
	flag.StringVar(&o.rev, "rev", os.Getenv("BENCH_REV"), "build Hearth from this commit (git archive) instead of the work tree; default $BENCH_REV")
	flag.StringVar(&o.hearthBin, "hearth-bin", "", "use this hearth binary instead of building one from the work tree")
	flag.BoolVar(&o.keep, "keep", false, "keep the data directories after the run")
	flag.BoolVar(&o.soak, "soak", false, "run the durability soak (SIGKILL cycles) instead of the benchmark")
	flag.IntVar(&o.soakCycles, "cycles", 20, "soak: number of SIGKILL cycles")
	flag.BoolVar(&o.render, "render", false, "only rewrite results.md and latency.png from OUT/results.json (after a change to the report)")
	flag.BoolVar(&o.devices, "devices", false, "run the device-bridge benchmark (in-process, embedded MQTT) and write OUT/devices.md")
	flag.BoolVar(&o.profile, "profile", false, "run the Hearth workload in-process and write CPU and heap profiles to WORK/profile")
	flag.Parse()
	if o.work == "" {
		o.work = filepath.Join(o.cache, "run")
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	repo, err := findRepo()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(o.work, 0o755); err != nil {
		return err
	}
	p, err := modeParams(o.mode)
	if err != nil {
		return err
	}
	if o.profile {
		return runProfile(ctx, p, o)
	}
	if o.devices {
		return runDevicesBench(ctx, repo, o) // devices.go
	}
	if o.render {
		return rerender(repo, o.out)
	}
	hearthBin := o.hearthBin
	if hearthBin == "" {
		logf("building Hearth")
		if o.rev != "" {
			o.rev = revCommit(repo, o.rev)
			logf("building Hearth at %s", o.rev)
		}
		if hearthBin, err = buildHearth(ctx, repo, o.cache, o.rev); err != nil {
			return err
		}
	}
	if o.soak {
		return runSoak(ctx, hearthBin, o)
	}
	return runBench(ctx, repo, hearthBin, p, o)
}

func runBench(ctx context.Context, repo, hearthBin string, p params, o options) error {
	want := map[string]bool{}
	for _, s := range strings.Split(o.only, ",") {
		want[strings.TrimSpace(s)] = true
	}
	load0 := loadAvg()
	rep := &report{
		Date:    time.Now().UTC().Format(time.RFC3339),
		Commit:  gitCommit(repo, false),
		Built:   "the work tree",
		Machine: readMachine(),
		Go:      runtime.Version(),
		Params:  p,
		Targets: map[string]*result{},
	}
	switch {
	case o.hearthBin != "":
		rep.Built = "the binary " + o.hearthBin
	case o.rev != "":
		rep.Commit, rep.Built = o.rev, "that commit (git archive), not the work tree"
	}
	var targets []*target
	if want["hearth"] {
		targets = append(targets, hearthTarget(hearthBin, ""))
	}
	if want["hearth-memlimit"] {
		targets = append(targets, hearthTarget(hearthBin, o.memLimit))
	}
	if want["dendrite"] {
		binDir, err := installDendrite(ctx, o.cache)
		if err != nil {
			return fmt.Errorf("install Dendrite: %w", err)
		}
		targets = append(targets, dendriteTarget(binDir))
	}

	logf("floor: Badger durable transactions (%v each, serial and %d concurrent)", p.FloorDuration, p.Senders)
	fl, err := measureFloor(filepath.Join(o.work, "floor"), p.FloorDuration, p.Senders, p.MessageBytes)
	if err != nil {
		logf("floor: %v", err)
	}
	rep.Floor = fl

	for _, t := range targets {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		logf("%s: %s workload", t.Name, p.Mode)
		res := runTarget(ctx, t, p, o)
		rep.Targets[t.Name] = res
		rep.Order = append(rep.Order, t.Name)
		if res.Failure != "" {
			logf("%s: FAILED: %s", t.Name, res.Failure)
		}
	}
	rep.LoadAvg = [2]string{load0, loadAvg()}
	outDir := o.out
	if !filepath.IsAbs(outDir) {
		outDir = filepath.Join(repo, outDir)
	}
	if err := writeReport(rep, outDir); err != nil {
		return err
	}
	logf("wrote %s", filepath.Join(outDir, "results.md"))
	fmt.Println(rep.table())
	return nil
}

// runTarget runs the whole workload against a fresh instance of t and measures it.
func runTarget(ctx context.Context, t *target, p params, o options) *result {
	res := &result{Target: t.Name, Version: t.Version, BinaryBytes: t.BinarySize}
	began := time.Now()
	defer func() { res.TotalSec = time.Since(began).Seconds() }()
	slug := strings.NewReplacer(" ", "-", "(", "", ")", "", "=", "-").Replace(strings.ToLower(t.Name))
	dataDir := filepath.Join(o.work, slug)
	_ = os.RemoveAll(dataDir)
	_ = os.Remove(dataDir + ".log")
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		res.Failure = err.Error()
		return res
	}
	if !o.keep {
		defer os.RemoveAll(dataDir)
	}
	secret := randomHex(16)
	if err := t.prepare(dataDir, secret); err != nil {
		res.Failure = "prepare: " + err.Error()
		return res
	}
	srv, took, err := t.start(dataDir, secret, 2*time.Minute)
	if err != nil {
		res.Failure = err.Error()
		return res
	}
	defer srv.kill()
	res.FreshStartSec = took.Seconds()
	ir, _ := waitIdle(srv.Pid(), p.IdleWindow, p.IdleMax, p.IdleThreshold)
	res.IdleWaitSec = ir.Wait.Seconds()
	res.IdleRSS, _, _ = memStatus(srv.Pid())
	logf("  started in %.2fs; idle after %.2fs; idle RSS %s", took.Seconds(), ir.Wait.Seconds(), mib(res.IdleRSS))

	r := newRunner(p, srv, secret, res)
	werr := r.runWorkload(ctx)
	res.AfterRSS, res.PeakRSS, _ = memStatus(srv.Pid())
	res.Errors = r.errs.list()
	if werr != nil {
		res.Failure = werr.Error()
	}
	if !srv.alive() {
		res.Failure = strings.TrimSpace(res.Failure + "; server exited during the workload: " + fmt.Sprint(srv.waitErr))
		return res
	}
	if err := srv.stop(60 * time.Second); err != nil {
		logf("  stop: %v", err)
	}
	res.StoreBytes, res.StoreApparentBytes, _ = diskUsage(t.storeDir(dataDir))
	logf("  RSS peak %s, after %s; store %s on disk (%s apparent)", mib(res.PeakRSS), mib(res.AfterRSS), mib(res.StoreBytes), mib(res.StoreApparentBytes))

	if werr == nil {
		res.ColdCacheDropped = dropPageCache() == nil
		srv2, took, err := t.start(dataDir, secret, 5*time.Minute)
		if err != nil {
			res.Failure = "cold start: " + err.Error()
		} else {
			res.ColdStartSec = took.Seconds()
			var raw []byte
			c2 := newClient(srv2.URL, r.errs)
			t0 := time.Now()
			path := "/_matrix/client/v3/sync?filter=" + url.QueryEscape(initialSyncFilter)
			if err := c2.do(ctx, "GET /sync (after cold start)", "GET", path, r.users[0].Token, nil, &raw); err == nil {
				res.ColdFirstSyncMs = ms(time.Since(t0))
			}
			_, _ = waitIdle(srv2.Pid(), p.IdleWindow, p.IdleMax, p.IdleThreshold)
			res.ColdIdleRSS, _, _ = memStatus(srv2.Pid())
			logf("  cold start %.2fs (page cache dropped: %v); first initial sync %.0f ms; idle RSS %s",
				res.ColdStartSec, res.ColdCacheDropped, res.ColdFirstSyncMs, mib(res.ColdIdleRSS))
			if err := srv2.stop(60 * time.Second); err != nil {
				logf("  stop: %v", err)
			}
		}
		res.Errors = r.errs.list()
	}
	res.LogProblems, res.LogExamples = countLogLines(srv.logPath, "panic", "level=error", "fatal", "level=warn")
	return res
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
