package main

import (
	"bufio"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat; 100 on every Linux
// that Go runs on here.
const clockTicks = 100

// memStatus reads VmRSS and VmHWM (peak RSS) of a process, in bytes.
func memStatus(pid int) (rss, hwm int64, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		var dst *int64
		switch {
		case strings.HasPrefix(line, "VmRSS:"):
			dst = &rss
		case strings.HasPrefix(line, "VmHWM:"):
			dst = &hwm
		default:
			continue
		}
		fields := strings.Fields(line)
		if len(fields) >= 2 {
			kb, _ := strconv.ParseInt(fields[1], 10, 64)
			*dst = kb << 10
		}
	}
	return rss, hwm, sc.Err()
}

// cpuTicks is utime+stime of a process (all its threads), in clock ticks.
func cpuTicks(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may contain spaces: split after it.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("short /proc/%d/stat", pid)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("bad /proc/%d/stat", pid)
	}
	return ut + st, nil
}

// idleResult is what waitIdle saw.
type idleResult struct {
	Wait     time.Duration // from the call until the quiet window began
	CPU      time.Duration // CPU time the process used during Wait
	TimedOut bool
}

// waitIdle polls the process's CPU time until it stays below threshold (fraction of one core)
// for a whole window, or until max. The reported wait ends where the quiet window began, so
// it does not include the window itself.
func waitIdle(pid int, window, max time.Duration, threshold float64) (idleResult, error) {
	const step = 200 * time.Millisecond
	start := time.Now()
	t0, err := cpuTicks(pid)
	if err != nil {
		return idleResult{}, err
	}
	type sample struct {
		at    time.Time
		ticks int64
	}
	samples := []sample{{start, t0}}
	for {
		time.Sleep(step)
		now := time.Now()
		t, err := cpuTicks(pid)
		if err != nil {
			return idleResult{}, err
		}
		samples = append(samples, sample{now, t})
		// Find the sample at the start of the window.
		j := len(samples) - 1
		for j > 0 && now.Sub(samples[j-1].at) <= window+step/2 {
			j--
		}
		if now.Sub(samples[j].at) >= window-step/2 {
			used := float64(t-samples[j].ticks) / clockTicks
			if used <= threshold*now.Sub(samples[j].at).Seconds() {
				return idleResult{
					Wait: samples[j].at.Sub(start),
					CPU:  time.Duration(float64(samples[j].ticks-t0) / clockTicks * float64(time.Second)),
				}, nil
			}
		}
		if now.Sub(start) > max {
			return idleResult{Wait: now.Sub(start), CPU: time.Duration(float64(t-t0) / clockTicks * float64(time.Second)), TimedOut: true}, nil
		}
	}
}

// diskUsage is the space the files under dir take: allocated blocks (what `du` shows) and
// apparent sizes (sparse, preallocated files differ).
func diskUsage(dir string) (allocated, apparent int64, err error) {
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type()&fs.ModeSocket != 0 || d.IsDir() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		apparent += info.Size()
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			allocated += st.Blocks * 512
		}
		return nil
	})
	return allocated, apparent, err
}

// dropPageCache asks the kernel to drop clean caches so that a cold start reads from disk.
// It needs root and a writable /proc/sys; when it fails the cold start runs with a warm cache.
func dropPageCache() error {
	syscall.Sync()
	return os.WriteFile("/proc/sys/vm/drop_caches", []byte("3\n"), 0o200)
}

// percentile of sorted durations (nearest rank).
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p/100*float64(len(sorted))+0.5) - 1
	i = min(max(i, 0), len(sorted)-1)
	return sorted[i]
}

// latencyStats summarises a set of latencies.
type latencyStats struct {
	N    int     `json:"n"`
	P50  float64 `json:"p50_ms"`
	P90  float64 `json:"p90_ms"`
	P99  float64 `json:"p99_ms"`
	Max  float64 `json:"max_ms"`
	Mean float64 `json:"mean_ms"`
}

func summarize(d []time.Duration) latencyStats {
	if len(d) == 0 {
		return latencyStats{}
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	var sum time.Duration
	for _, x := range s {
		sum += x
	}
	ms := func(x time.Duration) float64 { return float64(x) / float64(time.Millisecond) }
	return latencyStats{
		N: len(s), P50: ms(percentile(s, 50)), P90: ms(percentile(s, 90)), P99: ms(percentile(s, 99)),
		Max: ms(s[len(s)-1]), Mean: ms(sum / time.Duration(len(s))),
	}
}

// machineInfo describes the machine for the report.
type machineInfo struct {
	CPUs     int    `json:"cpus"`
	CPUModel string `json:"cpu_model"`
	MemTotal int64  `json:"mem_total_bytes"`
	Kernel   string `json:"kernel"`
}

func readMachine() machineInfo {
	m := machineInfo{CPUs: numCPU()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "MemTotal:") {
				f := strings.Fields(line)
				if len(f) >= 2 {
					kb, _ := strconv.ParseInt(f[1], 10, 64)
					m.MemTotal = kb << 10
				}
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	return m
}

// loadAvg is the first three fields of /proc/loadavg.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
