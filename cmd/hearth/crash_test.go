package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestCrashRecovery checks the durability promise end to end with the real binary: a message
// send acknowledged with 200 survives `kill -9` of the server. It builds hearth, runs
// `hearth serve` as a child process, creates a user through the CLI (over the control socket),
// then, three times over, sends messages as fast as it can from concurrent senders, kills the
// server with SIGKILL mid-flight, restarts it on the same data directory and checks that every
// acknowledged event can be fetched and is in /messages in the order it was acknowledged.
func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary; skipped with -short")
	}
	const (
		cycles      = 3
		senders     = 2
		sendFor     = 1500 * time.Millisecond
		maxAcks     = 3000 // per cycle, all senders together
		password    = "crash-test-password"
		serverName  = "localhost"
		readyWithin = 20 * time.Second
	)
	bin := buildHearth(t)
	dataDir := t.TempDir()

	srv := startHearth(t, bin, dataDir, serverName, readyWithin)
	userAdd(t, bin, dataDir, "bob", password)
	token := login(t, srv.url, "bob", password)
	var created struct {
		RoomID string `json:"room_id"`
	}
	mustJSON(t, srv.url, http.MethodPost, "/_matrix/client/v3/createRoom", token, map[string]any{"name": "crash test"}, &created)
	if created.RoomID == "" {
		t.Fatal("createRoom returned no room_id")
	}
	roomID := created.RoomID

	// acked[s] is every event ID that sender s had acknowledged, in acknowledgement order,
	// over all cycles.
	acked := make([][]string, senders)
	for cycle := 1; cycle <= cycles; cycle++ {
		got := sendUntilKilled(t, srv, token, roomID, cycle, senders, sendFor, maxAcks)
		n := 0
		for s := range got {
			acked[s] = append(acked[s], got[s]...)
			n += len(got[s])
		}
		if n == 0 {
			t.Fatalf("cycle %d: no send was acknowledged in %v\nserver log:\n%s", cycle, sendFor, srv.log.tail(4000))
		}
		t.Logf("cycle %d: %d sends acknowledged before SIGKILL", cycle, n)

		srv = startHearth(t, bin, dataDir, serverName, readyWithin)
		token = login(t, srv.url, "bob", password)
		verifyAcked(t, srv, token, roomID, cycle, got, acked)
	}
	srv.stop(t)
}

// sendUntilKilled runs the senders for about d (or until maxAcks), SIGKILLs the server while
// they are still sending, and returns each sender's acknowledged event IDs in order.
func sendUntilKilled(t *testing.T, srv *hearthProc, token, roomID string, cycle, senders int, d time.Duration, maxAcks int) [][]string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var (
		mu       sync.Mutex
		total    int
		full     = make(chan struct{})
		wg       sync.WaitGroup
		inFlight atomic.Int64
	)
	got := make([][]string, senders)
	for s := range senders {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				txn := fmt.Sprintf("crash-c%d-s%d-%d", cycle, s, i)
				path := "/_matrix/client/v3/rooms/" + url.PathEscape(roomID) + "/send/m.room.message/" + txn
				body := map[string]any{"msgtype": "m.text", "body": txn}
				inFlight.Add(1)
				status, b, err := doJSON(ctx, srv.url, http.MethodPut, path, token, body)
				inFlight.Add(-1)
				if err != nil || status != http.StatusOK {
					// Not acknowledged: expected once the server is dead. Before that, a
					// refusal is a bug, but the verification below reports what matters.
					if err == nil && ctx.Err() == nil {
						t.Errorf("cycle %d: PUT %s: %d %s", cycle, path, status, b)
						return
					}
					if ctx.Err() != nil {
						return
					}
					time.Sleep(time.Millisecond)
					continue
				}
				var r struct {
					EventID string `json:"event_id"`
				}
				if err := json.Unmarshal(b, &r); err != nil || r.EventID == "" {
					t.Errorf("cycle %d: PUT %s: 200 without event_id: %s", cycle, path, b)
					return
				}
				got[s] = append(got[s], r.EventID)
				mu.Lock()
				total++
				if total == maxAcks {
					close(full)
				}
				mu.Unlock()
			}
		})
	}
	select {
	case <-time.After(d):
	case <-full:
	}
	pending := inFlight.Load()
	srv.kill(t) // senders are mid-request: some sends are in flight
	cancel()
	wg.Wait()
	t.Logf("cycle %d: SIGKILL with %d of %d senders mid-request", cycle, pending, senders)
	return got
}

// verifyAcked checks, on a freshly restarted server, that the events acknowledged in this
// cycle are each readable, and that /messages holds every event acknowledged so far with
// each sender's events in acknowledgement order.
func verifyAcked(t *testing.T, srv *hearthProc, token, roomID string, cycle int, thisCycle, all [][]string) {
	t.Helper()
	missing := 0
	for s := range thisCycle {
		for _, eid := range thisCycle[s] {
			path := "/_matrix/client/v3/rooms/" + url.PathEscape(roomID) + "/event/" + url.PathEscape(eid)
			status, b, err := doJSON(context.Background(), srv.url, http.MethodGet, path, token, nil)
			if err != nil {
				t.Fatalf("cycle %d: GET %s: %v", cycle, path, err)
			}
			if status != http.StatusOK {
				if missing++; missing <= 5 {
					t.Errorf("cycle %d: acknowledged event %s lost after SIGKILL: GET /event: %d %s", cycle, eid, status, b)
				}
				continue
			}
			var ev struct {
				EventID string `json:"event_id"`
				Type    string `json:"type"`
			}
			if err := json.Unmarshal(b, &ev); err != nil || ev.EventID != eid || ev.Type != "m.room.message" {
				t.Errorf("cycle %d: GET /event/%s returned %s", cycle, eid, b)
			}
		}
	}
	if missing > 0 {
		t.Fatalf("cycle %d: %d acknowledged events are not readable after restart\nserver log:\n%s", cycle, missing, srv.log.tail(4000))
	}

	timeline := messagesBackwards(t, srv, token, roomID)
	pos := make(map[string]int, len(timeline))
	for i, eid := range timeline {
		pos[eid] = i
	}
	want := 0
	for s := range all {
		want += len(all[s])
		last := -1
		for i, eid := range all[s] {
			p, ok := pos[eid]
			if !ok {
				t.Fatalf("cycle %d: acknowledged event %s (sender %d, #%d) is missing from /messages (%d messages)", cycle, eid, s, i, len(timeline))
			}
			if p <= last {
				t.Fatalf("cycle %d: sender %d's event #%d %s is at /messages position %d, before its predecessor at %d", cycle, s, i, eid, p, last)
			}
			last = p
		}
	}
	if len(timeline) < want {
		t.Fatalf("cycle %d: /messages has %d messages, fewer than the %d acknowledged", cycle, len(timeline), want)
	}
	t.Logf("cycle %d: restart clean; %d acknowledged events readable; /messages has %d messages", cycle, want, len(timeline))
}

// messagesBackwards pages /messages from the end of the room back to its start and returns
// the m.room.message event IDs oldest first.
func messagesBackwards(t *testing.T, srv *hearthProc, token, roomID string) []string {
	t.Helper()
	var ids []string
	from := ""
	for page := 0; ; page++ {
		if page > 1000 {
			t.Fatalf("/messages: still paginating after %d pages (from=%q)", page, from)
		}
		q := url.Values{"dir": {"b"}, "limit": {"500"}}
		if from != "" {
			q.Set("from", from)
		}
		var resp struct {
			Chunk []struct {
				EventID string `json:"event_id"`
				Type    string `json:"type"`
			} `json:"chunk"`
			End string `json:"end"`
		}
		mustJSON(t, srv.url, http.MethodGet, "/_matrix/client/v3/rooms/"+url.PathEscape(roomID)+"/messages?"+q.Encode(), token, nil, &resp)
		for _, ev := range resp.Chunk {
			if ev.Type == "m.room.message" {
				ids = append(ids, ev.EventID)
			}
		}
		if resp.End == "" || len(resp.Chunk) == 0 {
			break
		}
		if resp.End == from {
			t.Fatalf("/messages: end token %q did not advance", from)
		}
		from = resp.End
	}
	slices.Reverse(ids)
	return ids
}

// hearthProc is one `hearth serve` child process.
type hearthProc struct {
	cmd    *exec.Cmd
	url    string
	log    *lockedBuffer
	exited chan struct{}
	err    error // Wait's result, once exited is closed
}

// buildHearth builds the binary of this package into a temporary directory.
func buildHearth(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go") // go test puts its own GOROOT/bin first in PATH
	if err != nil {
		t.Fatalf("go tool not found: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "hearth")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goBin, "build", "-buildvcs=false", "-o", bin, ".")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// childEnv is this process's environment without HEARTH_* settings, plus the given ones.
func childEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HEARTH_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

func startHearth(t *testing.T, bin, dataDir, serverName string, readyWithin time.Duration) *hearthProc {
	t.Helper()
	addr := freeAddr(t)
	p := &hearthProc{url: "http://" + addr, log: &lockedBuffer{}, exited: make(chan struct{})}
	p.cmd = exec.Command(bin, "serve", "--data", dataDir, "--listen", addr, "--server-name", serverName)
	p.cmd.Env = childEnv("HEARTH_LIMITS_RATE_LIMIT=false", "HEARTH_LOG_LEVEL=warn")
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start hearth serve: %v", err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
	})

	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{}}
	deadline := time.Now().Add(readyWithin)
	for {
		select {
		case <-p.exited:
			t.Fatalf("hearth serve exited during start-up: %v\nlog:\n%s", p.err, p.log.tail(4000))
		default:
		}
		resp, err := client.Get(p.url + "/_matrix/client/versions")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("hearth serve not ready within %v (last error %v)\nlog:\n%s", readyWithin, err, p.log.tail(4000))
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *hearthProc) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("SIGKILL hearth: %v", err)
	}
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		t.Fatal("hearth still running 10 s after SIGKILL")
	}
}

// stop asks for a clean shutdown with SIGTERM and expects exit status 0.
func (p *hearthProc) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM hearth: %v", err)
	}
	select {
	case <-p.exited:
		if p.err != nil {
			t.Errorf("hearth serve after SIGTERM: %v\nlog:\n%s", p.err, p.log.tail(4000))
		}
	case <-time.After(20 * time.Second):
		t.Errorf("hearth serve did not stop within 20 s of SIGTERM\nlog:\n%s", p.log.tail(4000))
	}
}

// userAdd runs `hearth user add` against the running server's control socket.
func userAdd(t *testing.T, bin, dataDir, name, password string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "user", "add", name, "--password-stdin", "--data", dataDir)
	cmd.Env = childEnv()
	cmd.Stdin = strings.NewReader(password + "\n")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("hearth user add %s: %v\nstdout: %s\nstderr: %s", name, err, stdout.String(), stderr.String())
	}
	if !strings.HasPrefix(strings.TrimSpace(stdout.String()), "@"+name+":") {
		t.Fatalf("hearth user add printed %q, want the user ID", stdout.String())
	}
}

func login(t *testing.T, base, user, password string) string {
	t.Helper()
	var resp struct {
		AccessToken string `json:"access_token"`
	}
	mustJSON(t, base, http.MethodPost, "/_matrix/client/v3/login", "", map[string]any{
		"type":       "m.login.password",
		"identifier": map[string]any{"type": "m.id.user", "user": user},
		"password":   password,
	}, &resp)
	if resp.AccessToken == "" {
		t.Fatal("login returned no access_token")
	}
	return resp.AccessToken
}

// httpClient talks to the child only: no proxy from the environment.
var httpClient = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 8}}

func doJSON(ctx context.Context, base, method, path, token string, body any) (int, []byte, error) {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, r)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, err
	}
	return resp.StatusCode, b, nil
}

func mustJSON(t *testing.T, base, method, path, token string, body, out any) {
	t.Helper()
	status, b, err := doJSON(context.Background(), base, method, path, token, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	if status != http.StatusOK {
		t.Fatalf("%s %s: %d %s", method, path, status, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: decode %s: %v", method, path, b, err)
		}
	}
}

// freeAddr finds a free loopback port. Another process could take it before hearth binds it;
// on this test machine that race is rare enough not to need retries.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// lockedBuffer collects a child's output for failure messages.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) tail(n int) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.buf.String()
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}
