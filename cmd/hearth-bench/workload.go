package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"
)

// params sizes the workload.
type params struct {
	Mode         string        `json:"mode"`
	Users        int           `json:"users"`
	Rooms        int           `json:"rooms"`
	RoomSize     int           `json:"room_size"`
	Messages     int           `json:"messages"`
	Senders      int           `json:"senders"`
	Syncers      int           `json:"syncers"`
	WakeSends    int           `json:"wake_sends"`
	WakeInterval time.Duration `json:"wake_interval_ns"`
	MessageBytes int           `json:"message_bytes"`
	// CPU-idle detection after each phase: the process used at most IdleThreshold of one core
	// over IdleWindow; give up after IdleMax.
	IdleWindow    time.Duration `json:"idle_window_ns"`
	IdleMax       time.Duration `json:"idle_max_ns"`
	IdleThreshold float64       `json:"idle_threshold"`
	FloorDuration time.Duration `json:"floor_duration_ns"`
}

func modeParams(mode string) (params, error) {
	p := params{
		Mode: mode, RoomSize: 10, Senders: 20, MessageBytes: 200,
		WakeInterval: 100 * time.Millisecond, IdleWindow: 2 * time.Second, IdleThreshold: 0.03,
	}
	switch mode {
	case "quick":
		p.Users, p.Rooms, p.Messages, p.Syncers, p.WakeSends = 40, 40, 1000, 20, 40
		p.IdleMax, p.FloorDuration = 3*time.Minute, 3*time.Second
	case "full":
		p.Users, p.Rooms, p.Messages, p.Syncers, p.WakeSends = 100, 200, 20000, 100, 200
		p.IdleMax, p.FloorDuration = 30*time.Minute, 10*time.Second
	default:
		return p, fmt.Errorf("unknown mode %q (quick or full)", mode)
	}
	return p, nil
}

// phaseResult is one phase and the CPU-idle wait after it.
type phaseResult struct {
	Name         string  `json:"name"`
	Ops          int     `json:"ops"`
	Errors       int     `json:"errors"`
	Seconds      float64 `json:"seconds"`
	IdleWaitSec  float64 `json:"idle_wait_seconds"`
	IdleCPUSec   float64 `json:"idle_wait_cpu_seconds"`
	IdleTimedOut bool    `json:"idle_timed_out,omitempty"`
	RSSAfter     int64   `json:"rss_after_bytes"`
}

// result is everything measured for one target.
type result struct {
	Target      string `json:"target"`
	Version     string `json:"version"`
	BinaryBytes int64  `json:"binary_bytes"`

	FreshStartSec float64 `json:"fresh_start_seconds"`
	IdleRSS       int64   `json:"idle_rss_bytes"`
	IdleWaitSec   float64 `json:"idle_wait_after_start_seconds"`

	Phases []phaseResult `json:"phases"`

	RegisterPerSec   float64      `json:"register_per_second"`
	CreateRoom       latencyStats `json:"create_room_latency"`
	Join             latencyStats `json:"join_latency"`
	SendOK           int          `json:"sends_acknowledged"`
	SendErrors       int          `json:"send_errors"`
	SendSeconds      float64      `json:"send_seconds"`
	SendPerSec       float64      `json:"sends_per_second"`
	SendCatchUpSec   float64      `json:"send_catch_up_seconds"`
	SendPerSecCaught float64      `json:"sends_per_second_incl_catch_up"`
	SendLatency      latencyStats `json:"send_latency"`
	SendPercentiles  []float64    `json:"send_latency_percentiles_ms"`

	WakeExpected    int          `json:"wake_expected"`
	WakeReceived    int          `json:"wake_received"`
	WakeEarly       int          `json:"wake_before_send_response"`
	WakeLatency     latencyStats `json:"wake_latency"`
	WakePercentiles []float64    `json:"wake_latency_percentiles_ms"`
	SendWake        latencyStats `json:"send_latency_during_wake"`

	InitialSyncFirstMs  float64 `json:"initial_sync_first_ms"`
	InitialSyncMedianMs float64 `json:"initial_sync_median_ms"`
	InitialSyncBytes    int     `json:"initial_sync_bytes"`
	InitialSyncRooms    int     `json:"initial_sync_rooms"`

	PeakRSS  int64 `json:"peak_rss_bytes"`
	AfterRSS int64 `json:"rss_after_bytes"`

	StoreBytes         int64   `json:"store_bytes"`
	StoreApparentBytes int64   `json:"store_apparent_bytes"`
	ColdStartSec       float64 `json:"cold_start_seconds"`
	ColdCacheDropped   bool    `json:"cold_start_page_cache_dropped"`
	ColdFirstSyncMs    float64 `json:"cold_first_initial_sync_ms"`
	ColdIdleRSS        int64   `json:"cold_idle_rss_bytes"`

	TotalSec    float64      `json:"total_seconds"`
	Errors      []errorEntry `json:"errors"`
	LogProblems int          `json:"log_problem_lines"`
	LogExamples []string     `json:"log_problem_examples,omitempty"`
	Failure     string       `json:"failure,omitempty"`
}

// percentilePoints are the x axis of the latency plot.
var percentilePoints = []float64{50, 75, 90, 95, 99, 99.9}

func percentilesMs(d []time.Duration) []float64 {
	s := slices.Clone(d)
	slices.Sort(s)
	out := make([]float64, len(percentilePoints))
	for i, p := range percentilePoints {
		out[i] = float64(percentile(s, p)) / float64(time.Millisecond)
	}
	return out
}

// live is a running server as the workload sees it.
type live interface {
	Pid() int
	BaseURL() string
}

func (p *proc) BaseURL() string { return p.URL }

// runner drives one workload against one live server.
type runner struct {
	p      params
	srv    live
	c      *client
	errs   *errorLog
	secret string
	res    *result

	users   []*session
	rooms   []string
	members [][]int // room index -> user indexes; members[r][0] created the room
	userIn  [][]int // user index -> room indexes
}

const benchPassword = "bench-password-1"

func newRunner(p params, srv live, secret string, res *result) *runner {
	errs := newErrorLog()
	return &runner{p: p, srv: srv, c: newClient(srv.BaseURL(), errs), errs: errs, secret: secret, res: res}
}

// settle waits for the server's CPU to go idle and records the phase.
func (r *runner) settle(name string, ops, errs int, took time.Duration) phaseResult {
	ir, err := waitIdle(r.srv.Pid(), r.p.IdleWindow, r.p.IdleMax, r.p.IdleThreshold)
	if err != nil {
		logf("  %s: idle wait: %v", name, err)
	}
	rss, _, _ := memStatus(r.srv.Pid())
	ph := phaseResult{
		Name: name, Ops: ops, Errors: errs, Seconds: took.Seconds(),
		IdleWaitSec: ir.Wait.Seconds(), IdleCPUSec: ir.CPU.Seconds(), IdleTimedOut: ir.TimedOut, RSSAfter: rss,
	}
	r.res.Phases = append(r.res.Phases, ph)
	logf("  %-14s %6d ops %4d errors in %7.2fs; idle after %6.2fs (%.2fs CPU%s); RSS %s",
		name, ops, errs, took.Seconds(), ir.Wait.Seconds(), ir.CPU.Seconds(), map[bool]string{true: ", TIMED OUT"}[ir.TimedOut], mib(rss))
	return ph
}

// parallel runs fn(i) for i in [0,n) on workers goroutines and returns the first error count.
func parallel(n, workers int, fn func(i int)) {
	var wg sync.WaitGroup
	next := make(chan int)
	for range workers {
		wg.Go(func() {
			for i := range next {
				fn(i)
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}

// register creates the users.
func (r *runner) register(ctx context.Context) error {
	r.users = make([]*session, r.p.Users)
	var failed int
	var mu sync.Mutex
	start := time.Now()
	parallel(r.p.Users, 4, func(i int) {
		s, err := r.c.register(ctx, r.secret, fmt.Sprintf("bench%03d", i), benchPassword)
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			failed++
			return
		}
		r.users[i] = s
	})
	took := time.Since(start)
	r.res.RegisterPerSec = float64(r.p.Users-failed) / took.Seconds()
	r.settle("register", r.p.Users, failed, took)
	if failed > 0 {
		return fmt.Errorf("%d of %d registrations failed: %v", failed, r.p.Users, r.errs.list())
	}
	return nil
}

// planRooms decides the members of every room: user 0 is in every room (the initial-sync
// user), and RoomSize-1 others taken round-robin from the rest, the first of whom creates it.
func (r *runner) planRooms() {
	r.members = make([][]int, r.p.Rooms)
	r.userIn = make([][]int, r.p.Users)
	others := r.p.Users - 1
	for room := range r.p.Rooms {
		var m []int
		for j := 0; j < r.p.RoomSize-1 && j < others; j++ {
			m = append(m, 1+(room*(r.p.RoomSize-1)+j)%others)
		}
		m = append(m, 0)
		r.members[room] = m
		for _, u := range m {
			r.userIn[u] = append(r.userIn[u], room)
		}
	}
}

// createRooms creates the rooms and joins their members.
func (r *runner) createRooms(ctx context.Context) error {
	r.planRooms()
	r.rooms = make([]string, r.p.Rooms)
	var (
		mu             sync.Mutex
		creates, joins []time.Duration
		failed, ops    int
	)
	start := time.Now()
	parallel(r.p.Rooms, 10, func(room int) {
		m := r.members[room]
		t0 := time.Now()
		id, err := r.c.createRoom(ctx, r.users[m[0]], fmt.Sprintf("bench room %d", room))
		d := time.Since(t0)
		mu.Lock()
		ops++
		if err != nil {
			failed++
			mu.Unlock()
			return
		}
		creates = append(creates, d)
		r.rooms[room] = id
		mu.Unlock()
		for _, u := range m[1:] {
			t0 := time.Now()
			err := r.c.join(ctx, r.users[u], id)
			d := time.Since(t0)
			mu.Lock()
			ops++
			if err != nil {
				failed++
			} else {
				joins = append(joins, d)
			}
			mu.Unlock()
		}
	})
	took := time.Since(start)
	r.res.CreateRoom, r.res.Join = summarize(creates), summarize(joins)
	r.settle("rooms+joins", ops, failed, took)
	if failed > 0 {
		return fmt.Errorf("%d of %d createRoom/join calls failed: %v", failed, ops, r.errs.list())
	}
	return nil
}

// messageContent is an m.text message whose JSON is about size bytes.
func messageContent(size int, tag string) map[string]any {
	body := tag + " "
	// {"msgtype":"m.text","body":""} is 30 bytes.
	for len(body) < size-30 {
		body += "lorem ipsum dolor sit amet "
	}
	return map[string]any{"msgtype": "m.text", "body": body[:max(size-30, len(tag))]}
}

// sendMessages sends p.Messages messages from p.Senders concurrent senders (distinct users,
// each into its own rooms in turn) and measures latency and throughput, including the time
// the server needs afterwards until its CPU is idle.
func (r *runner) sendMessages(ctx context.Context) {
	senders := min(r.p.Senders, r.p.Users)
	lat := make([][]time.Duration, senders)
	fails := make([]int, senders)
	var wg sync.WaitGroup
	start := time.Now()
	for s := range senders {
		u := (1 + s) % r.p.Users
		n := r.p.Messages / senders
		if s < r.p.Messages%senders {
			n++
		}
		wg.Go(func() {
			rooms := r.userIn[u]
			for i := range n {
				room := r.rooms[rooms[i%len(rooms)]]
				txn := fmt.Sprintf("m%d-%d-%d", s, i, start.UnixNano())
				content := messageContent(r.p.MessageBytes, fmt.Sprintf("s%02d m%06d", s, i))
				t0 := time.Now()
				_, err := r.c.send(ctx, r.users[u], room, txn, content)
				if err != nil {
					fails[s]++
					continue
				}
				lat[s] = append(lat[s], time.Since(t0))
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	var all []time.Duration
	failed := 0
	for s := range senders {
		all = append(all, lat[s]...)
		failed += fails[s]
	}
	ph := r.settle("messages", r.p.Messages, failed, took)
	r.res.SendOK, r.res.SendErrors = len(all), failed
	r.res.SendSeconds = took.Seconds()
	r.res.SendPerSec = float64(len(all)) / took.Seconds()
	r.res.SendCatchUpSec = ph.IdleWaitSec
	r.res.SendPerSecCaught = float64(len(all)) / (took.Seconds() + ph.IdleWaitSec)
	r.res.SendLatency = summarize(all)
	r.res.SendPercentiles = percentilesMs(all)
}

// syncWake runs p.Syncers long-polling /sync loops (users 0..Syncers-1), then sends
// p.WakeSends messages one at a time and measures, for every syncer in the room, the time from
// the send's response to that syncer's /sync returning the event.
func (r *runner) syncWake(ctx context.Context) {
	nSync := min(r.p.Syncers, r.p.Users)
	const initialFilter = `{"room":{"timeline":{"limit":1}}}`
	const pollFilter = `{"room":{"timeline":{"limit":100}}}`
	type key struct {
		id   string
		user int
	}
	var (
		mu     sync.Mutex
		acked  = map[string]time.Time{}
		recv   = map[key]time.Time{}
		ready  sync.WaitGroup
		done   sync.WaitGroup
		failed int
	)
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ready.Add(nSync)
	start := time.Now()
	for u := range nSync {
		done.Go(func() {
			var resp syncResponse
			var since string
			for attempt := 0; ; attempt++ {
				err := r.c.sync(sctx, r.users[u], "", initialFilter, 0, &resp)
				if err == nil {
					since = resp.NextBatch
					break
				}
				if sctx.Err() != nil || attempt == 3 {
					mu.Lock()
					failed++
					mu.Unlock()
					ready.Done()
					return
				}
			}
			ready.Done()
			for sctx.Err() == nil {
				resp = syncResponse{}
				err := r.c.sync(sctx, r.users[u], since, pollFilter, 30*time.Second, &resp)
				now := time.Now()
				if err != nil {
					if sctx.Err() != nil {
						return
					}
					mu.Lock()
					failed++
					mu.Unlock()
					time.Sleep(100 * time.Millisecond)
					continue
				}
				since = resp.NextBatch
				mu.Lock()
				for _, room := range resp.Rooms.Join {
					for _, ev := range room.Timeline.Events {
						if id, ok := ev.Content["bench_id"].(string); ok {
							if _, dup := recv[key{id, u}]; !dup {
								recv[key{id, u}] = now
							}
						}
					}
				}
				mu.Unlock()
			}
		})
	}
	ready.Wait()
	initialDone := time.Since(start)
	time.Sleep(time.Second) // let every syncer park its long-poll

	expected := 0
	var sendLat []time.Duration
	sendFailed := 0
	for k := range r.p.WakeSends {
		room := k % r.p.Rooms
		m := r.members[room]
		id := fmt.Sprintf("w%d", k)
		content := messageContent(r.p.MessageBytes, "wake "+id)
		content["bench_id"] = id
		t0 := time.Now()
		_, err := r.c.send(ctx, r.users[m[0]], r.rooms[room], fmt.Sprintf("wake-%d-%d", k, start.UnixNano()), content)
		t1 := time.Now()
		if err != nil {
			sendFailed++
		} else {
			sendLat = append(sendLat, t1.Sub(t0))
			mu.Lock()
			acked[id] = t1
			mu.Unlock()
			for _, u := range m {
				if u < nSync {
					expected++
				}
			}
		}
		time.Sleep(r.p.WakeInterval)
	}
	// Wait for every delivery, at most 30 s after the last send.
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		mu.Lock()
		n := len(recv)
		mu.Unlock()
		if n >= expected {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	done.Wait()
	took := time.Since(start)

	var lat []time.Duration
	early := 0
	for k, at := range recv {
		a, ok := acked[k.id]
		if !ok {
			continue
		}
		d := at.Sub(a)
		if d < 0 { // /sync returned before the send's response was read: count as 0
			early++
			d = 0
		}
		lat = append(lat, d)
	}
	r.res.WakeExpected, r.res.WakeReceived, r.res.WakeEarly = expected, len(lat), early
	r.res.WakeLatency = summarize(lat)
	r.res.WakePercentiles = percentilesMs(lat)
	r.res.SendWake = summarize(sendLat)
	logf("  sync wake: %d syncers ready in %.2fs; %d of %d deliveries; p50 %.1f ms p99 %.1f ms",
		nSync, initialDone.Seconds(), len(lat), expected, r.res.WakeLatency.P50, r.res.WakeLatency.P99)
	r.settle("sync wake", r.p.WakeSends+nSync, failed+sendFailed, took)
}

const initialSyncFilter = `{"room":{"timeline":{"limit":10}}}`

// initialSync times a full initial /sync of user 0, who is in every room, three times (the
// time until the whole body is read; decoding is not timed).
func (r *runner) initialSync(ctx context.Context) {
	var times []time.Duration
	start := time.Now()
	failed := 0
	path := "/_matrix/client/v3/sync?filter=" + url.QueryEscape(initialSyncFilter)
	for i := range 3 {
		var raw []byte
		t0 := time.Now()
		err := r.c.do(ctx, "GET /sync", http.MethodGet, path, r.users[0].Token, nil, &raw)
		d := time.Since(t0)
		if err != nil {
			failed++
			continue
		}
		times = append(times, d)
		if i == 0 {
			r.res.InitialSyncFirstMs = ms(d)
			var resp syncResponse
			_ = json.Unmarshal(raw, &resp)
			r.res.InitialSyncBytes, r.res.InitialSyncRooms = len(raw), len(resp.Rooms.Join)
		}
	}
	slices.Sort(times)
	if len(times) > 0 {
		r.res.InitialSyncMedianMs = ms(times[len(times)/2])
	}
	logf("  initial sync: %d rooms, %d bytes, first %.0f ms, median %.0f ms",
		r.res.InitialSyncRooms, r.res.InitialSyncBytes, r.res.InitialSyncFirstMs, r.res.InitialSyncMedianMs)
	r.settle("initial sync", 3, failed, time.Since(start))
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// runWorkload runs every phase against a running server.
func (r *runner) runWorkload(ctx context.Context) error {
	if err := r.register(ctx); err != nil {
		return err
	}
	if err := r.createRooms(ctx); err != nil {
		return err
	}
	r.sendMessages(ctx)
	r.syncWake(ctx)
	r.initialSync(ctx)
	if r.res.SendOK == 0 {
		return errors.New("no message send was acknowledged")
	}
	return nil
}
