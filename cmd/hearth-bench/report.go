package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
)

// report is one benchmark run: what results.json holds and results.md shows.
type report struct {
	Date    string             `json:"date"`
	Commit  string             `json:"commit"`
	Built   string             `json:"hearth_built_from"`
	Go      string             `json:"harness_go"`
	Machine machineInfo        `json:"machine"`
	Params  params             `json:"params"`
	Floor   *floorResult       `json:"floor"`
	Order   []string           `json:"order"`
	Targets map[string]*result `json:"targets"`
	// LoadAvg is /proc/loadavg at the start and the end of the run: other work on the machine
	// shows here.
	LoadAvg [2]string `json:"loadavg_start_end"`
}

const (
	nameHearth   = "Hearth"
	nameDendrite = "Dendrite"
)

// row is one line of a comparison table.
type row struct {
	label string
	unit  string
	get   func(*result) float64
	// target on the ratio a/b: ">=" or "<=" with the bound; empty for none.
	op    string
	bound float64
	prec  int
}

func mibF(b int64) float64 { return float64(b) / (1 << 20) }

var mainRows = []row{
	{label: "Binary size", unit: "MiB", get: func(r *result) float64 { return mibF(r.BinaryBytes) }, op: "<=", bound: 0.6, prec: 1},
	{label: "Start, empty store", unit: "s", get: func(r *result) float64 { return r.FreshStartSec }, prec: 2},
	{label: "Idle RSS after start", unit: "MiB", get: func(r *result) float64 { return mibF(r.IdleRSS) }, op: "<=", bound: 0.35, prec: 1},
	{label: "Register (shared secret, 4 at a time)", unit: "users/s", get: func(r *result) float64 { return r.RegisterPerSec }, prec: 1},
	{label: "createRoom p50", unit: "ms", get: func(r *result) float64 { return r.CreateRoom.P50 }, prec: 1},
	{label: "join p50", unit: "ms", get: func(r *result) float64 { return r.Join.P50 }, prec: 1},
	{label: "Sends acknowledged", unit: "msg/s", get: func(r *result) float64 { return r.SendPerSec }, prec: 1},
	{label: "Catch-up after sends (CPU idle)", unit: "s", get: func(r *result) float64 { return r.SendCatchUpSec }, prec: 1},
	{label: "Send throughput incl. catch-up", unit: "msg/s", get: func(r *result) float64 { return r.SendPerSecCaught }, op: ">=", bound: 20, prec: 1},
	{label: "Send latency p50", unit: "ms", get: func(r *result) float64 { return r.SendLatency.P50 }, prec: 1},
	{label: "Send latency p99", unit: "ms", get: func(r *result) float64 { return r.SendLatency.P99 }, prec: 1},
	{label: "Sync wake p50", unit: "ms", get: func(r *result) float64 { return r.WakeLatency.P50 }, prec: 1},
	{label: "Sync wake p99", unit: "ms", get: func(r *result) float64 { return r.WakeLatency.P99 }, op: "<=", bound: 0.05, prec: 1},
	{label: "Sync wake deliveries missing", unit: "", get: func(r *result) float64 { return float64(r.WakeExpected - r.WakeReceived) }, prec: 0},
	{label: "Initial sync, user in every room (median of 3)", unit: "ms", get: func(r *result) float64 { return r.InitialSyncMedianMs }, op: "<=", bound: 0.05, prec: 1},
	{label: "Initial sync, first", unit: "ms", get: func(r *result) float64 { return r.InitialSyncFirstMs }, prec: 1},
	{label: "Initial sync size", unit: "KiB", get: func(r *result) float64 { return float64(r.InitialSyncBytes) / 1024 }, prec: 0},
	{label: "RSS peak (VmHWM)", unit: "MiB", get: func(r *result) float64 { return mibF(r.PeakRSS) }, prec: 1},
	{label: "RSS after the workload", unit: "MiB", get: func(r *result) float64 { return mibF(r.AfterRSS) }, op: "<=", bound: 0.1, prec: 1},
	{label: "Store size on disk", unit: "MiB", get: func(r *result) float64 { return mibF(r.StoreBytes) }, op: "<=", bound: 0.5, prec: 1},
	{label: "Cold start with that data", unit: "s", get: func(r *result) float64 { return r.ColdStartSec }, prec: 2},
	{label: "First initial sync after cold start", unit: "ms", get: func(r *result) float64 { return r.ColdFirstSyncMs }, prec: 0},
	{label: "Idle RSS after cold start", unit: "MiB", get: func(r *result) float64 { return mibF(r.ColdIdleRSS) }, prec: 1},
	{label: "Failed requests", unit: "", get: func(r *result) float64 { return float64(errCount(r)) }, prec: 0},
}

var memRows = []row{
	{label: "RSS peak (VmHWM)", unit: "MiB", get: func(r *result) float64 { return mibF(r.PeakRSS) }, prec: 1},
	{label: "RSS after the workload", unit: "MiB", get: func(r *result) float64 { return mibF(r.AfterRSS) }, prec: 1},
	{label: "Idle RSS after start", unit: "MiB", get: func(r *result) float64 { return mibF(r.IdleRSS) }, prec: 1},
	{label: "Send throughput incl. catch-up", unit: "msg/s", get: func(r *result) float64 { return r.SendPerSecCaught }, prec: 1},
	{label: "Send latency p99", unit: "ms", get: func(r *result) float64 { return r.SendLatency.P99 }, prec: 1},
	{label: "Sync wake p99", unit: "ms", get: func(r *result) float64 { return r.WakeLatency.P99 }, prec: 1},
	{label: "Initial sync (median)", unit: "ms", get: func(r *result) float64 { return r.InitialSyncMedianMs }, prec: 1},
	{label: "Failed requests", unit: "", get: func(r *result) float64 { return float64(errCount(r)) }, prec: 0},
}

func errCount(r *result) int {
	n := 0
	for _, e := range r.Errors {
		n += e.Count
	}
	return n
}

func num(v float64, prec int) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "–"
	}
	return fmt.Sprintf("%.*f", prec, v)
}

func ratioStr(a, b float64) string {
	if b == 0 {
		return "–"
	}
	q := a / b
	switch {
	case q >= 10:
		return fmt.Sprintf("%.0f", q)
	case q >= 1:
		return fmt.Sprintf("%.2f", q)
	default:
		return fmt.Sprintf("%.3f", q)
	}
}

// compare renders a markdown table of rows for results a and b.
func compare(rows []row, a, b *result, withTargets bool) string {
	var sb strings.Builder
	if withTargets {
		fmt.Fprintf(&sb, "| | %s | %s | ratio | target | |\n|---|---:|---:|---:|---|---|\n", a.Target, b.Target)
	} else {
		fmt.Fprintf(&sb, "| | %s | %s | ratio |\n|---|---:|---:|---:|\n", a.Target, b.Target)
	}
	for _, r := range rows {
		va, vb := r.get(a), r.get(b)
		label := r.label
		if r.unit != "" {
			label += " (" + r.unit + ")"
		}
		fmt.Fprintf(&sb, "| %s | %s | %s | %s |", label, num(va, r.prec), num(vb, r.prec), ratioStr(va, vb))
		if withTargets {
			verdict, tgt := "", ""
			if r.op != "" {
				tgt = fmt.Sprintf("%s %g", r.op, r.bound)
				q := va / vb
				ok := vb != 0 && ((r.op == "<=" && q <= r.bound) || (r.op == ">=" && q >= r.bound))
				verdict = map[bool]string{true: "met", false: "**missed**"}[ok]
			}
			fmt.Fprintf(&sb, " %s | %s |", tgt, verdict)
		}
		sb.WriteString("\n")
	}
	return sb.String()
}

// table is the headline comparison (Hearth, Dendrite) for the terminal.
func (rep *report) table() string {
	h, d := rep.Targets[nameHearth], rep.Targets[nameDendrite]
	if h == nil || d == nil {
		var sb strings.Builder
		for _, name := range rep.Order {
			r := rep.Targets[name]
			fmt.Fprintf(&sb, "%s: %.1f msg/s (incl. catch-up %.1f), send p99 %.1f ms, wake p99 %.1f ms, initial sync %.0f ms, RSS idle %s after %s peak %s, store %s\n",
				name, r.SendPerSec, r.SendPerSecCaught, r.SendLatency.P99, r.WakeLatency.P99, r.InitialSyncMedianMs,
				mib(r.IdleRSS), mib(r.AfterRSS), mib(r.PeakRSS), mib(r.StoreBytes))
		}
		return sb.String()
	}
	return compare(mainRows, h, d, true)
}

func (rep *report) markdown() string {
	var sb strings.Builder
	p := rep.Params
	sb.WriteString("# Hearth and Dendrite side by side\n\n")
	sb.WriteString("Generated by `make bench` (`go run ./cmd/hearth-bench`); see README.md beside this file.\n\n")
	fmt.Fprintf(&sb, "- Date: %s\n- Commit: `%s` (Hearth built from %s)\n- Machine: %d CPUs, %s, %.1f GiB RAM, Linux %s\n- Mode: **%s**: %d users, %d rooms of %d members, %d messages of ~%d bytes from %d concurrent senders, %d long-polling syncers woken by %d sends (one every %v)\n",
		rep.Date, rep.Commit, rep.Built, rep.Machine.CPUs, rep.Machine.CPUModel, float64(rep.Machine.MemTotal)/(1<<30), rep.Machine.Kernel,
		p.Mode, p.Users, p.Rooms, p.RoomSize, p.Messages, p.MessageBytes, p.Senders, p.Syncers, p.WakeSends, p.WakeInterval)
	fmt.Fprintf(&sb, "- Load average (1, 5, 15 min) at start: %s; at end: %s\n", rep.LoadAvg[0], rep.LoadAvg[1])
	fmt.Fprintf(&sb, "- After each phase the harness waits until the server used at most %.0f%% of one core over %v (at most %v) and reports that wait.\n",
		p.IdleThreshold*100, p.IdleWindow, p.IdleMax)
	if d := rep.Targets[nameDendrite]; d != nil {
		fmt.Fprintf(&sb, "- Dendrite %s: SQLite, its own generated config with rate limiting and federation off; Hearth: release build (`-trimpath -s -w`, static), rate limiting off.\n", d.Version)
	}
	sb.WriteString("\n")

	h, d := rep.Targets[nameHearth], rep.Targets[nameDendrite]
	if h != nil && d != nil {
		sb.WriteString("## Hearth and Dendrite\n\nRatio is Hearth/Dendrite; targets are issue 8's.\n\n")
		sb.WriteString(compare(mainRows, h, d, true))
		if rep.Floor != nil && rep.Floor.ConcurrentTxnPerSec > 0 {
			frac := h.SendPerSecCaught / rep.Floor.ConcurrentTxnPerSec
			fmt.Fprintf(&sb, "\nSend throughput against the Badger floor: Hearth %.1f msg/s is %.2f of Badger's %.0f durable txn/s with %d writers and SyncWrites (target >= 0.5: %s), %.2f of its %.0f serial txn/s, and %.2f of the %.0f txn/s a caller-side group commit reaches.\n",
				h.SendPerSecCaught, frac, rep.Floor.ConcurrentTxnPerSec, rep.Floor.Writers,
				map[bool]string{true: "met", false: "**missed**"}[frac >= 0.5],
				h.SendPerSecCaught/rep.Floor.SerialTxnPerSec, rep.Floor.SerialTxnPerSec,
				h.SendPerSecCaught/rep.Floor.GroupCommitTxnPerSec, rep.Floor.GroupCommitTxnPerSec)
		}
	}
	if rep.Floor != nil {
		f := rep.Floor
		fmt.Fprintf(&sb, "\n## Floor: this disk\n\nSame disk as the servers' data, Badger with Hearth's store options.\n\n| | per second |\n|---|---:|\n| fdatasync of 1 KiB appends | %.0f |\n| Badger txn, %d-byte value, SyncWrites, 1 writer | %.0f |\n| Badger txn, %d-byte value, SyncWrites, %d writers | %.0f |\n| Badger txn, %d-byte value, no SyncWrites, %d writers, each waiting for a shared `db.Sync()` (group commit by the caller) | %.0f |\n",
			f.FdatasyncPerSec, f.ValueBytes, f.SerialTxnPerSec, f.ValueBytes, f.Writers, f.ConcurrentTxnPerSec, f.ValueBytes, f.Writers, f.GroupCommitTxnPerSec)
		sb.WriteString("\nWith SyncWrites, Badger v4 msyncs its memtable WAL once per transaction even when it writes concurrent commits as one batch, so 20 writers gain little over one; a caller-side group commit is the ceiling for this disk.\n")
	}
	for _, name := range rep.Order {
		if m := rep.Targets[name]; h != nil && m != h && strings.HasPrefix(name, nameHearth) {
			fmt.Fprintf(&sb, "\n## Memory budget: %s\n\nRatio is budget/unbounded.\n\n", name)
			sb.WriteString(compare(memRows, m, h, false))
			if lim := memLimitBytes(name); lim > 0 && m.PeakRSS < lim {
				sb.WriteString("\nThe peak RSS stayed below the limit, so the limit never made the collector work harder: differences here are run-to-run noise (mostly the disk).\n")
			}
		}
	}
	sb.WriteString("\n## Phases\n\nIdle wait: time after the phase until the server's CPU went idle; CPU: what it used meanwhile.\n\n")
	sb.WriteString("| server | phase | ops | failed | s | idle wait s | CPU s | RSS after MiB |\n|---|---|---:|---:|---:|---:|---:|---:|\n")
	for _, name := range rep.Order {
		r := rep.Targets[name]
		fmt.Fprintf(&sb, "| %s | start | | | %.2f | %.2f | | %.1f |\n", name, r.FreshStartSec, r.IdleWaitSec, mibF(r.IdleRSS))
		for _, ph := range r.Phases {
			to := ""
			if ph.IdleTimedOut {
				to = " (timed out)"
			}
			fmt.Fprintf(&sb, "| %s | %s | %d | %d | %.2f | %.2f%s | %.2f | %.1f |\n", name, ph.Name, ph.Ops, ph.Errors, ph.Seconds, ph.IdleWaitSec, to, ph.IdleCPUSec, mibF(ph.RSSAfter))
		}
	}
	sb.WriteString("\n## Latency percentiles (ms)\n\n![latency percentiles](latency.png)\n\n| server | measure |")
	for _, pc := range percentilePoints {
		fmt.Fprintf(&sb, " p%g |", pc)
	}
	sb.WriteString("\n|---|---|" + strings.Repeat("---:|", len(percentilePoints)) + "\n")
	for _, name := range rep.Order {
		r := rep.Targets[name]
		for _, m := range []struct {
			n string
			v []float64
		}{{"send", r.SendPercentiles}, {"sync wake", r.WakePercentiles}} {
			fmt.Fprintf(&sb, "| %s | %s |", name, m.n)
			for _, v := range m.v {
				fmt.Fprintf(&sb, " %.1f |", v)
			}
			sb.WriteString("\n")
		}
	}
	sb.WriteString("\n## Failures and errors\n\n")
	any := false
	for _, name := range rep.Order {
		r := rep.Targets[name]
		if r.Failure != "" {
			any = true
			fmt.Fprintf(&sb, "- %s: run failed: %s\n", name, r.Failure)
		}
		for _, e := range r.Errors {
			any = true
			fmt.Fprintf(&sb, "- %s: `%s` status %d × %d, e.g. `%s`\n", name, e.Endpoint, e.Status, e.Count, strings.ReplaceAll(truncate(e.Example, 200), "`", "'"))
		}
		if r.LogProblems > 0 {
			any = true
			fmt.Fprintf(&sb, "- %s: %d warning/error lines in its log, e.g. `%s`\n", name, r.LogProblems, strings.ReplaceAll(truncate(strings.Join(r.LogExamples, " / "), 300), "`", "'"))
		}
	}
	if !any {
		sb.WriteString("None: every request succeeded and no server logged a warning or error.\n")
	}
	if h != nil && d != nil {
		sb.WriteString("\n## Targets missed\n\n")
		missed := false
		for _, r := range mainRows {
			if r.op == "" {
				continue
			}
			va, vb := r.get(h), r.get(d)
			q := va / vb
			if vb == 0 || (r.op == "<=" && q > r.bound) || (r.op == ">=" && q < r.bound) {
				missed = true
				fmt.Fprintf(&sb, "- %s: Hearth/Dendrite = %s, target %s %g.\n", r.label, ratioStr(va, vb), r.op, r.bound)
			}
		}
		if f := rep.Floor; f != nil && f.ConcurrentTxnPerSec > 0 && h.SendPerSecCaught/f.ConcurrentTxnPerSec < 0.5 {
			missed = true
			fmt.Fprintf(&sb, "- Send throughput against the Badger floor: %.2f, target >= 0.5.\n", h.SendPerSecCaught/f.ConcurrentTxnPerSec)
		}
		if !missed {
			sb.WriteString("None.\n")
		}
		sb.WriteString("\nWhy, what the profiles show and what would close each miss: \"Findings\" in README.md beside this file (`go run ./cmd/hearth-bench -profile` writes CPU and heap profiles of the Hearth workload).\n")
	}
	return sb.String()
}

func writeReport(rep *report, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	j, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "results.json"), append(j, '\n'), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "results.md"), []byte(rep.markdown()), 0o644); err != nil {
		return err
	}
	return writePlot(rep, filepath.Join(dir, "latency.png"))
}

// memLimitBytes reads the GOMEMLIMIT out of a target name like "Hearth (GOMEMLIMIT=96MiB)";
// 0 when there is none or it is not in MiB or GiB.
func memLimitBytes(name string) int64 {
	_, v, ok := strings.Cut(name, "GOMEMLIMIT=")
	if !ok {
		return 0
	}
	v = strings.TrimSuffix(v, ")")
	var n int64
	var unit string
	if _, err := fmt.Sscanf(v, "%d%s", &n, &unit); err != nil {
		return 0
	}
	switch unit {
	case "MiB":
		return n << 20
	case "GiB":
		return n << 30
	}
	return 0
}

// rerender rewrites results.md and latency.png from results.json.
func rerender(repo, out string) error {
	if !filepath.IsAbs(out) {
		out = filepath.Join(repo, out)
	}
	b, err := os.ReadFile(filepath.Join(out, "results.json"))
	if err != nil {
		return err
	}
	var rep report
	if err := json.Unmarshal(b, &rep); err != nil {
		return err
	}
	return writeReport(&rep, out)
}
