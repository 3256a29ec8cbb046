package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// target is one server under test: how to start it on a data directory.
type target struct {
	Name       string // "Hearth", "Hearth (GOMEMLIMIT=96MiB)", "Dendrite"
	Binary     string
	BinarySize int64
	Version    string
	// prepare lays out a fresh data directory (config, keys); it runs once per workload.
	prepare func(dataDir, secret string) error
	// command builds the command that serves dataDir on addr.
	command func(dataDir, addr, secret string) *exec.Cmd
	// storeDir is the part of dataDir that holds the server's data.
	storeDir func(dataDir string) string
}

// proc is one running server process.
type proc struct {
	cmd     *exec.Cmd
	URL     string
	Addr    string
	logPath string
	logFile *os.File
	exited  chan struct{}
	waitErr error
	once    sync.Once
}

func (p *proc) Pid() int { return p.cmd.Process.Pid }

// start runs the target on dataDir, on a free loopback port, and waits until
// /_matrix/client/versions answers 200. It returns the time that took.
func (t *target) start(dataDir, secret string, readyWithin time.Duration) (*proc, time.Duration, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, 0, err
	}
	logPath := filepath.Join(dataDir, "..", filepath.Base(dataDir)+".log")
	lf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, 0, err
	}
	fmt.Fprintf(lf, "\n=== start %s on %s at %s\n", t.Name, addr, time.Now().Format(time.RFC3339))
	cmd := t.command(dataDir, addr, secret)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // never outlive the harness
	p := &proc{cmd: cmd, URL: "http://" + addr, Addr: addr, logPath: logPath, logFile: lf, exited: make(chan struct{})}
	began := time.Now()
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, 0, fmt.Errorf("start %s: %w", t.Name, err)
	}
	go func() {
		p.waitErr = cmd.Wait()
		lf.Close()
		close(p.exited)
	}()
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{Proxy: nil}}
	deadline := began.Add(readyWithin)
	for {
		select {
		case <-p.exited:
			return nil, 0, fmt.Errorf("%s exited during start-up: %v (log: %s)\n%s", t.Name, p.waitErr, logPath, tailFile(logPath, 3000))
		default:
		}
		resp, err := hc.Get(p.URL + "/_matrix/client/versions")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p, time.Since(began), nil
			}
		}
		if time.Now().After(deadline) {
			p.kill()
			return nil, 0, fmt.Errorf("%s not ready within %v (last error %v; log %s)", t.Name, readyWithin, err, logPath)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// stop asks for a clean shutdown (SIGTERM) and waits; after grace it kills.
func (p *proc) stop(grace time.Duration) error {
	if p == nil {
		return nil
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		var ee *exec.ExitError
		if p.waitErr != nil && !errors.As(p.waitErr, &ee) {
			return p.waitErr
		}
		if p.waitErr != nil {
			return fmt.Errorf("exit after SIGTERM: %v", p.waitErr)
		}
		return nil
	case <-time.After(grace):
		p.kill()
		return fmt.Errorf("did not stop within %v of SIGTERM; killed", grace)
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *proc) kill() {
	if p == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
	}
}

func (p *proc) alive() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// tailFile returns the last n bytes of a file.
func tailFile(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return ""
	}
	off := max(st.Size()-n, 0)
	b := make([]byte, st.Size()-off)
	_, _ = f.ReadAt(b, off)
	return string(b)
}

// countLogLines counts lines of a log file that contain any of the words (case-insensitive),
// leaving out cancelled requests.
func countLogLines(path string, words ...string) (int, []string) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, nil
	}
	n := 0
	var ex []string
	for _, line := range strings.Split(string(b), "\n") {
		l := strings.ToLower(line)
		// The harness cancels its long-polls at the end of the wake phase; Dendrite logs each.
		if strings.Contains(l, "context canceled") {
			continue
		}
		for _, w := range words {
			if strings.Contains(l, w) {
				n++
				if len(ex) < 5 {
					ex = append(ex, truncate(line, 300))
				}
				break
			}
		}
	}
	return n, ex
}

// runCmd runs a helper command with a deadline and returns its combined output on failure.
func runCmd(ctx context.Context, dir string, env []string, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	if env != nil {
		cmd.Env = env
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, truncate(string(out), 4000))
	}
	return nil
}

// envWithout is os.Environ minus variables with the given prefixes, plus extra.
func envWithout(prefixes []string, extra ...string) []string {
	var env []string
outer:
	for _, kv := range os.Environ() {
		for _, p := range prefixes {
			if strings.HasPrefix(kv, p) {
				continue outer
			}
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}
