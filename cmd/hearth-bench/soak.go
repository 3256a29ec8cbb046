package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// The soak: SIGKILL Hearth under write load, restart it on the same data, and check the
// durability promise against the client's own ledger of what was acknowledged.
const (
	soakSenders = 4
	soakRooms   = 3
)

// ledgerEntry is one message the client sent.
type ledgerEntry struct {
	Tag     string // also the transaction ID
	Room    int
	EventID string // empty while unacknowledged
	// Retried: acknowledged on a retry after a restart; its place in the order is not the
	// ledger's, so only its presence is checked.
	Retried bool
}

// soakSender is one user sending; its ledger is in acknowledgement order.
type soakSender struct {
	s        *session
	acked    []ledgerEntry
	inflight []ledgerEntry // sent but never answered (the server died): committed or not
}

type soakState struct {
	c       *client
	rooms   []string
	senders []*soakSender
	// tags of events the client sent that were not acknowledged but showed up later (allowed:
	// committed just before the kill); their retries must return the same event ID.
	lateCommits int
}

func runSoak(ctx context.Context, hearthBin string, o options) error {
	dir := filepath.Join(o.work, "soak")
	_ = os.RemoveAll(dir)
	_ = os.Remove(dir + ".log")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if !o.keep {
		defer os.RemoveAll(dir)
	}
	t := hearthTarget(hearthBin, "")
	secret := randomHex(16)
	srv, _, err := t.start(dir, secret, time.Minute)
	if err != nil {
		return err
	}
	defer func() { srv.kill() }()
	st := &soakState{c: newClient(srv.URL, newErrorLog())}
	for i := range soakSenders {
		s, err := st.c.register(ctx, secret, fmt.Sprintf("soak%d", i), benchPassword)
		if err != nil {
			return fmt.Errorf("register: %w", err)
		}
		st.senders = append(st.senders, &soakSender{s: s})
	}
	for r := range soakRooms {
		id, err := st.c.createRoom(ctx, st.senders[0].s, fmt.Sprintf("soak %d", r))
		if err != nil {
			return fmt.Errorf("createRoom: %w", err)
		}
		for _, snd := range st.senders[1:] {
			if err := st.c.join(ctx, snd.s, id); err != nil {
				return fmt.Errorf("join: %w", err)
			}
		}
		st.rooms = append(st.rooms, id)
	}
	logf("soak: %d cycles of SIGKILL under write load (%d senders, %d rooms); log %s", o.soakCycles, soakSenders, soakRooms, srv.logPath)
	passed, failed := 0, 0
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	for cycle := 1; cycle <= o.soakCycles; cycle++ {
		if ctx.Err() != nil {
			break
		}
		load := time.Duration(300+rng.IntN(1200)) * time.Millisecond
		acked, before := st.loadUntilKilled(ctx, srv, cycle, load)
		logSize := fileSize(srv.logPath)
		var problems []string
		srv, _, err = t.start(dir, secret, time.Minute)
		if err != nil {
			problems = append(problems, "restart: "+err.Error())
			logf("soak cycle %2d: FAILED: %s", cycle, strings.Join(problems, "; "))
			failed++
			break // nothing to verify against
		}
		st.c = newClient(srv.URL, newErrorLog())
		if n, ex := logLinesSince(srv.logPath, logSize, "panic", "level=error", "fatal", "corrupt"); n > 0 {
			problems = append(problems, fmt.Sprintf("store did not open cleanly: %d error lines, e.g. %s", n, strings.Join(ex, " / ")))
		}
		if before != "" {
			problems = append(problems, "before the kill: "+before)
		}
		problems = append(problems, st.verify(ctx, cycle)...)
		total := 0
		for _, s := range st.senders {
			total += len(s.acked)
		}
		if len(problems) == 0 {
			passed++
			logf("soak cycle %2d: ok: load %v, %d sends acknowledged (ledger %d, %d committed without ack so far)", cycle, load, acked, total, st.lateCommits)
		} else {
			failed++
			logf("soak cycle %2d: FAILED: %s", cycle, strings.Join(problems, "; "))
		}
	}
	_ = srv.stop(30 * time.Second)
	fmt.Printf("soak: %d passed, %d failed\n", passed, failed)
	if failed > 0 {
		return errors.New("soak failed")
	}
	return nil
}

// loadUntilKilled sends from every sender for about d, then SIGKILLs the server while the
// senders are mid-request. It returns the number of sends acknowledged in this cycle and a
// description of any refusal before the kill.
func (st *soakState) loadUntilKilled(ctx context.Context, srv *proc, cycle int, d time.Duration) (int, string) {
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		acked  int
		killed = make(chan struct{})
		before []string
	)
	for si, snd := range st.senders {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-killed:
					return
				default:
				}
				e := ledgerEntry{Tag: fmt.Sprintf("c%d-s%d-%d", cycle, si, i), Room: (si + i) % len(st.rooms)}
				content := messageContent(200, e.Tag)
				content["soak_tag"] = e.Tag
				id, err := st.c.send(lctx, snd.s, st.rooms[e.Room], e.Tag, content)
				if err != nil {
					var ae *apiError
					select {
					case <-killed:
					default:
						if errors.As(err, &ae) {
							mu.Lock()
							before = append(before, ae.Error())
							mu.Unlock()
						}
					}
					snd.inflight = append(snd.inflight, e) // unanswered or refused: may or may not exist
					if errors.As(err, &ae) {
						continue
					}
					return
				}
				e.EventID = id
				snd.acked = append(snd.acked, e)
				mu.Lock()
				acked++
				mu.Unlock()
			}
		})
	}
	select {
	case <-time.After(d):
	case <-ctx.Done():
	}
	srv.kill()
	close(killed)
	wg.Wait()
	if len(before) > 0 {
		return acked, fmt.Sprintf("%d sends refused, e.g. %s", len(before), before[0])
	}
	return acked, ""
}

// verify checks the restarted server against the ledger and returns the problems found.
func (st *soakState) verify(ctx context.Context, cycle int) []string {
	var problems []string
	// 1. The timeline of every room, oldest first: tag -> event ID, in order.
	type seen struct {
		pos int
		id  string
	}
	timeline := make([]map[string]seen, len(st.rooms))
	for r, room := range st.rooms {
		tags, ids, err := st.roomTags(ctx, room)
		if err != nil {
			return append(problems, fmt.Sprintf("/messages of room %d: %v", r, err))
		}
		timeline[r] = map[string]seen{}
		for i, tag := range tags {
			if prev, dup := timeline[r][tag]; dup {
				problems = append(problems, fmt.Sprintf("room %d: message %s appears twice (%s and %s)", r, tag, prev.id, ids[i]))
			}
			timeline[r][tag] = seen{i, ids[i]}
		}
	}
	// 2. Every acknowledged event is there, with its ID, in acknowledgement order per room.
	known := map[string]bool{}
	missing := 0
	for si, snd := range st.senders {
		last := make([]int, len(st.rooms))
		for i := range last {
			last[i] = -1
		}
		for _, e := range snd.acked {
			known[e.Tag] = true
			got, ok := timeline[e.Room][e.Tag]
			switch {
			case !ok:
				if missing++; missing <= 3 {
					problems = append(problems, fmt.Sprintf("acknowledged %s (%s, sender %d) is missing from /messages", e.Tag, e.EventID, si))
				}
			case got.id != e.EventID:
				problems = append(problems, fmt.Sprintf("acknowledged %s was %s, /messages has %s", e.Tag, e.EventID, got.id))
			case e.Retried:
			case got.pos <= last[e.Room]:
				problems = append(problems, fmt.Sprintf("sender %d: %s is out of acknowledgement order in room %d", si, e.Tag, e.Room))
			default:
				last[e.Room] = got.pos
			}
		}
	}
	if missing > 3 {
		problems = append(problems, fmt.Sprintf("%d acknowledged events missing in all", missing))
	}
	// 3. This cycle's acknowledged events are each readable by ID.
	prefix := fmt.Sprintf("c%d-", cycle)
	for _, snd := range st.senders {
		for _, e := range snd.acked {
			if !strings.HasPrefix(e.Tag, prefix) {
				continue
			}
			var ev struct {
				EventID string         `json:"event_id"`
				Content map[string]any `json:"content"`
			}
			if err := st.c.getEvent(ctx, snd.s, st.rooms[e.Room], e.EventID, &ev); err != nil {
				problems = append(problems, fmt.Sprintf("GET /event %s: %v", e.EventID, err))
				break
			}
			if ev.EventID != e.EventID || ev.Content["soak_tag"] != e.Tag {
				problems = append(problems, fmt.Sprintf("GET /event %s returned %s with tag %v", e.EventID, ev.EventID, ev.Content["soak_tag"]))
				break
			}
		}
	}
	// 4. The unanswered sends: retry each with the same transaction ID and token. One that was
	// committed must come back with the same event ID; one that was not is sent now.
	for si, snd := range st.senders {
		for _, e := range snd.inflight {
			known[e.Tag] = true
			got, committed := timeline[e.Room][e.Tag]
			content := messageContent(200, e.Tag)
			content["soak_tag"] = e.Tag
			id, err := st.c.send(ctx, snd.s, st.rooms[e.Room], e.Tag, content)
			if err != nil {
				problems = append(problems, fmt.Sprintf("retry of %s (sender %d): %v", e.Tag, si, err))
				continue
			}
			if committed {
				st.lateCommits++
				if id != got.id {
					problems = append(problems, fmt.Sprintf("retry of committed %s returned a new event %s (stored: %s): transaction ID lost", e.Tag, id, got.id))
				}
			}
			e.EventID, e.Retried = id, true
			snd.acked = append(snd.acked, e)
		}
		snd.inflight = nil
	}
	// 5. Nothing in the rooms that the client did not send.
	for r := range st.rooms {
		for tag, s := range timeline[r] {
			if !known[tag] {
				problems = append(problems, fmt.Sprintf("room %d holds %s (%s) that the client never sent", r, tag, s.id))
				break
			}
		}
	}
	return problems
}

// roomTags pages /messages from the end of a room to its start and returns the soak tags and
// event IDs of its messages, oldest first.
func (st *soakState) roomTags(ctx context.Context, room string) ([]string, []string, error) {
	var tags, ids []string
	from := ""
	for page := 0; page < 10000; page++ {
		var mp messagesPage
		if err := st.c.messages(ctx, st.senders[0].s, room, from, 500, &mp); err != nil {
			return nil, nil, err
		}
		for _, ev := range mp.Chunk {
			if tag, ok := ev.Content["soak_tag"].(string); ok && ev.Type == "m.room.message" {
				tags = append(tags, tag)
				ids = append(ids, ev.EventID)
			}
		}
		if mp.End == "" || len(mp.Chunk) == 0 || mp.End == from {
			slices.Reverse(tags)
			slices.Reverse(ids)
			return tags, ids, nil
		}
		from = mp.End
	}
	return nil, nil, errors.New("still paginating after 10000 pages")
}

func fileSize(path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return st.Size()
}

// logLinesSince counts lines after offset that contain any of the words (case-insensitive).
func logLinesSince(path string, offset int64, words ...string) (int, []string) {
	b, err := os.ReadFile(path)
	if err != nil || int64(len(b)) < offset {
		return 0, nil
	}
	n := 0
	var ex []string
	for _, line := range strings.Split(string(b[offset:]), "\n") {
		l := strings.ToLower(line)
		for _, w := range words {
			if strings.Contains(l, w) {
				n++
				if len(ex) < 3 {
					ex = append(ex, truncate(line, 200))
				}
				break
			}
		}
	}
	return n, ex
}
