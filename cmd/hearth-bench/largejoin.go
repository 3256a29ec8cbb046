package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"
)

// `hearth-bench large-join` measures what joining a large room over federation costs the
// joining server (issue 5: "measure peak RSS joining a generated room of 10,000 members"). A
// resident Hearth (A) gets a public room with N application-service members; then each joining
// server (B, a fresh process and data directory per binary) joins it for one local user, and
// the harness reads B's VmRSS and VmHWM from /proc before and after, and the join's wall time.

// ljOptions are the large-join flags.
type ljOptions struct {
	members, conc     int
	cache, work, out  string
	residentBin       string
	joiners, memLimit string
	roomVersion       string
	keep              bool
}

// ljResult is one joining server's figures.
type ljResult struct {
	Name                   string
	MemLimit               string
	IdleRSS, IdleHWM       int64
	AfterRSS, PeakHWM      int64
	SampledPeak            int64
	JoinSec                float64
	AnswerSec              float64 // until /join answered
	AnswerHWM              int64   // VmHWM when /join answered
	MembersSeen            int
	StoreBytes             int64
	Failure                string
	LogProblems            int
	LogExamples            []string
	ResidentRSS, ResidentH int64
}

func runLargeJoin(ctx context.Context, args []string) error {
	home, _ := os.UserHomeDir()
	var o ljOptions
	fs := flag.NewFlagSet("large-join", flag.ContinueOnError)
	fs.IntVar(&o.members, "members", 10000, "members of the generated room (besides its creator)")
	fs.IntVar(&o.conc, "conc", 16, "concurrent register+join requests while generating the room")
	fs.StringVar(&o.cache, "cache", filepath.Join(home, ".cache", "hearth-bench"), "cache folder (built binary)")
	fs.StringVar(&o.work, "work", "", "folder for data directories and logs (default CACHE/large-join)")
	fs.StringVar(&o.out, "out", "", "also write the result table (Markdown) to this file")
	fs.StringVar(&o.residentBin, "hearth-bin", "", "hearth binary for the resident server (default: build the work tree)")
	fs.StringVar(&o.joiners, "joiners", "", "comma-separated NAME=BINARY[@GOMEMLIMIT] joining servers, each run in turn against the same room; BINARY dendrite installs and runs Dendrite (default: Hearth=the resident's binary)")
	fs.StringVar(&o.memLimit, "memlimit", "", "GOMEMLIMIT of the joining servers (default none)")
	fs.StringVar(&o.roomVersion, "room-version", "", "room version of the generated room (default: the resident's default; Dendrite v0.13.8 cannot join v12 rooms)")
	fs.BoolVar(&o.keep, "keep", false, "keep data directories")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.work == "" {
		o.work = filepath.Join(o.cache, "large-join")
	}
	_ = os.RemoveAll(o.work)
	if err := os.MkdirAll(o.work, 0o755); err != nil {
		return err
	}
	if !o.keep {
		defer os.RemoveAll(o.work)
	}
	if o.residentBin == "" {
		repo, err := findRepo()
		if err != nil {
			return err
		}
		logf("building Hearth")
		if o.residentBin, err = buildHearth(ctx, repo, o.cache, ""); err != nil {
			return err
		}
	}
	joiners, err := parseJoiners(o.joiners, o.residentBin)
	if err != nil {
		return err
	}
	ca, err := newBenchCA(o.work)
	if err != nil {
		return err
	}

	// The resident server and its room.
	asDir := filepath.Join(o.work, "appservices")
	a, err := fedHearthTarget("resident", o.residentBin, ca, asDir, "")
	if err != nil {
		return err
	}
	asToken, err := writeBenchAppService(asDir, a.ServerName)
	if err != nil {
		return fmt.Errorf("appservice registration: %w", err)
	}
	secret := randomHex(16)
	aDir := filepath.Join(o.work, "resident")
	if err := os.MkdirAll(aDir, 0o700); err != nil {
		return err
	}
	srvA, _, err := a.start(aDir, secret, 2*time.Minute)
	if err != nil {
		return err
	}
	defer srvA.kill()
	errs := newErrorLog()
	ca1 := newClient(srvA.URL, errs)
	owner, err := ca1.register(ctx, secret, "owner", "owner-password")
	if err != nil {
		return fmt.Errorf("register the room owner: %w", err)
	}
	roomID, err := createLargeRoom(ctx, ca1, owner, o.roomVersion)
	if err != nil {
		return err
	}
	logf("resident %s: room %s; joining %d members (%d at a time)", a.ServerName, roomID, o.members, o.conc)
	genStart := time.Now()
	if err := populateRoom(ctx, ca1, asToken, a.ServerName, roomID, o.members, o.conc); err != nil {
		return fmt.Errorf("generate the room: %w", err)
	}
	genSec := time.Since(genStart).Seconds()
	if n, err := joinedMembers(ctx, ca1, owner, roomID); err != nil || n != o.members+1 {
		return fmt.Errorf("the resident sees %d joined members (want %d): %v", n, o.members+1, err)
	}
	aRSS, aHWM, _ := memStatus(srvA.Pid())

	var results []*ljResult
	for _, j := range joiners {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		logf("%s joins over federation", j.name)
		jo := o
		if j.memLimit != "" {
			jo.memLimit = j.memLimit
		}
		res := joinOnce(ctx, jo, ca, j.name, j.bin, roomID, a.ServerName)
		res.ResidentRSS, res.ResidentH = aRSS, aHWM
		if res.Failure != "" {
			logf("  %s: FAILED: %s", j.name, res.Failure)
		} else {
			logf("  %s: /join answered in %.2fs (peak %s), members listed after %.2fs; RSS idle %s, after %s; peak (VmHWM) %s, sampled %s; %d members seen",
				j.name, res.AnswerSec, mib(res.AnswerHWM), res.JoinSec, mib(res.IdleRSS), mib(res.AfterRSS), mib(res.PeakHWM), mib(res.SampledPeak), res.MembersSeen)
		}
		results = append(results, res)
	}
	table := ljTable(o, genSec, results)
	fmt.Println(table)
	if o.out != "" {
		return os.WriteFile(o.out, []byte(table), 0o644)
	}
	return nil
}

type ljJoiner struct{ name, bin, memLimit string }

func parseJoiners(spec, def string) ([]ljJoiner, error) {
	if spec == "" {
		return []ljJoiner{{"Hearth", def, ""}}, nil
	}
	var out []ljJoiner
	for _, part := range strings.Split(spec, ",") {
		name, bin, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || name == "" || bin == "" {
			return nil, fmt.Errorf("-joiners: %q is not NAME=BINARY[@GOMEMLIMIT]", part)
		}
		bin, memLimit, _ := strings.Cut(bin, "@")
		if bin == dendriteJoiner {
			out = append(out, ljJoiner{name, bin, memLimit})
			continue
		}
		if _, err := os.Stat(bin); err != nil {
			return nil, fmt.Errorf("-joiners %s: %w", name, err)
		}
		out = append(out, ljJoiner{name, bin, memLimit})
	}
	return out, nil
}

// joinOnce starts a fresh joining server from bin, lets it settle, joins one of its users to
// roomID through resident and measures it.
func joinOnce(ctx context.Context, o ljOptions, ca benchCA, name, bin, roomID, resident string) *ljResult {
	res := &ljResult{Name: name, MemLimit: o.memLimit}
	var b *fedHearth
	var err error
	if bin == dendriteJoiner {
		b, err = fedDendriteTarget(ctx, o.cache, name, ca)
	} else {
		b, err = fedHearthTarget(name, bin, ca, "", o.memLimit)
	}
	if err != nil {
		res.Failure = err.Error()
		return res
	}
	dir := filepath.Join(o.work, "joiner-"+strings.ToLower(strings.NewReplacer(" ", "-", "/", "-").Replace(name)))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		res.Failure = err.Error()
		return res
	}
	secret := randomHex(16)
	if err := b.prepare(dir, secret); err != nil {
		res.Failure = "prepare: " + err.Error()
		return res
	}
	srv, _, err := b.start(dir, secret, 2*time.Minute)
	if err != nil {
		res.Failure = err.Error()
		return res
	}
	defer srv.kill()
	errs := newErrorLog()
	c := newClient(srv.URL, errs)
	user, err := c.register(ctx, secret, "joiner", "joiner-password")
	if err != nil {
		res.Failure = "register: " + err.Error()
		return res
	}
	_, _ = waitIdle(srv.Pid(), 2*time.Second, 30*time.Second, 0.05)
	res.IdleRSS, res.IdleHWM, _ = memStatus(srv.Pid())

	// VmHWM is the authority on the peak; sampling VmRSS as well shows whether the peak
	// belongs to the join or to start-up.
	var sampled atomic.Int64
	stop := make(chan struct{})
	go func() {
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				if rss, _, err := memStatus(srv.Pid()); err == nil && rss > sampled.Load() {
					sampled.Store(rss)
				}
			}
		}
	}()
	jctx, cancel := context.WithTimeout(ctx, 20*time.Minute)
	defer cancel()
	t0 := time.Now()
	path := "/_matrix/client/v3/join/" + url.PathEscape(roomID) + "?server_name=" + url.QueryEscape(resident)
	err = c.do(jctx, "POST /join/{roomId} (federated)", http.MethodPost, path, user.Token, map[string]any{}, nil)
	res.AnswerSec = time.Since(t0).Seconds()
	_, res.AnswerHWM, _ = memStatus(srv.Pid())
	if err == nil {
		// Hearth has imported the room when /join answers; Dendrite answers first and
		// imports in the background. The join is done when the joiner lists the members
		// (and that listing, 10,000 members, costs memory of its own: hence both peaks).
		wctx, cancel := context.WithTimeout(jctx, 3*time.Minute)
		res.MembersSeen, err = waitMembers(wctx, c, user, roomID, o.members+2)
		cancel()
	}
	res.JoinSec = time.Since(t0).Seconds()
	close(stop)
	res.SampledPeak = sampled.Load()
	res.AfterRSS, res.PeakHWM, _ = memStatus(srv.Pid())
	if err != nil {
		res.Failure = "join: " + err.Error()
	}
	if err := srv.stop(60 * time.Second); err != nil {
		logf("  stop: %v", err)
	}
	res.StoreBytes, _, _ = diskUsage(dir)
	res.LogProblems, res.LogExamples = countLogLines(srv.logPath, "panic", "level=error", "fatal")
	return res
}

// ljTable renders the results as Markdown.
func ljTable(o ljOptions, genSec float64, rs []*ljResult) string {
	m := readMachine()
	var b strings.Builder
	fmt.Fprintf(&b, "Run %s on %s (%d CPUs, %s RAM), %s. Room: %d members, generated on the resident in %.1fs.\n\n",
		time.Now().UTC().Format(time.RFC3339), m.CPUModel, m.CPUs, mib(m.MemTotal), m.Kernel, o.members+1, genSec)
	b.WriteString("| joining server | GOMEMLIMIT | RSS idle | peak RSS when /join answered | peak RSS after listing the members | RSS after | /join answered after | members listed after | members seen | store | result |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rs {
		ml := r.MemLimit
		if ml == "" {
			ml = "none"
		}
		status := "ok"
		if r.Failure != "" {
			status = "FAILED: " + truncate(r.Failure, 200)
		}
		if r.LogProblems > 0 {
			status += fmt.Sprintf(" (%d error lines in log)", r.LogProblems)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %.2f s | %.2f s | %d | %s | %s |\n",
			r.Name, ml, mib(r.IdleRSS), mib(r.AnswerHWM), mib(r.PeakHWM), mib(r.AfterRSS), r.AnswerSec, r.JoinSec, r.MembersSeen, mib(r.StoreBytes), status)
	}
	if len(rs) > 0 {
		fmt.Fprintf(&b, "\nResident after generating the room: RSS %s, peak %s.\n", mib(rs[0].ResidentRSS), mib(rs[0].ResidentH))
	}
	return b.String()
}

// waitMembers polls joined_members until it lists at least want members.
func waitMembers(ctx context.Context, c *client, s *session, roomID string, want int) (int, error) {
	for {
		n, err := joinedMembers(ctx, c, s, roomID)
		if err == nil && n >= want {
			return n, nil
		}
		select {
		case <-ctx.Done():
			return n, fmt.Errorf("the joiner lists %d joined members, want at least %d (last error %v)", n, want, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
