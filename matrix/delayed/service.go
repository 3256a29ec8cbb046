package delayed

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"sync"
	"time"

	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/events"
	"github.com/hearth-home/hearth/matrix/merr"
	"github.com/hearth-home/hearth/matrix/rooms"
	"github.com/hearth-home/hearth/matrix/store"
)

// Rooms is what the service needs from matrix/rooms: the same send path as a client's, and
// membership to refuse scheduling into rooms the user is not in.
type Rooms interface {
	Send(ctx context.Context, roomID id.RoomID, t events.Template, o rooms.SendOpts) (*rooms.Appended, error)
	Membership(ctx context.Context, roomID id.RoomID, user id.UserID) (string, uint64, error)
}

// Options bound what users may schedule.
type Options struct {
	// MaxDelay is the longest delay accepted (config delayed_events.max_delay).
	MaxDelay time.Duration
	// MaxPerUser is how many delayed events one user may have scheduled at once
	// (config delayed_events.max_per_user); it also bounds the memory the timers use.
	MaxPerUser int
}

// Service schedules, manages and sends delayed events.
type Service struct {
	st    *store.Store
	rooms Rooms
	opts  Options
	log   *slog.Logger
	now   func() time.Time

	mu      sync.Mutex
	pending map[string]*Record // scheduled and not being sent, by delay ID
	sending map[string]*Record // being sent: still listed (not sent yet) but out of reach of cancel and restart
	perUser map[string]int     // scheduled count per user, in-flight sends included

	wake chan struct{} // nudges the timer loop after a change of due times
	ctx  context.Context
	stop context.CancelFunc
	once sync.Once
	wg   sync.WaitGroup
}

// New loads the scheduled delayed events from the store. Start arms the timers.
func New(st *store.Store, r Rooms, opts Options, log *slog.Logger) (*Service, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.MaxDelay <= 0 {
		return nil, errors.New("delayed events: max delay must be positive")
	}
	if opts.MaxPerUser <= 0 {
		return nil, errors.New("delayed events: max per user must be positive")
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Service{st: st, rooms: r, opts: opts, log: log, now: time.Now,
		pending: map[string]*Record{}, sending: map[string]*Record{}, perUser: map[string]int{},
		wake: make(chan struct{}, 1), ctx: ctx, stop: cancel}
	err := st.View(func(txn *store.Txn) error {
		return txn.EachDelayedEvent(func(delayID string, b []byte) error {
			rec, err := decodeRecord(b)
			if err != nil {
				// One damaged record must not keep the server down; it is left for inspection.
				log.Error("delayed events: skip unreadable record", "delay_id", delayID, "err", err)
				return nil
			}
			s.pending[delayID] = rec
			s.perUser[rec.User]++
			return nil
		})
	})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("load delayed events: %w", err)
	}
	return s, nil
}

// Start runs the timer loop; events whose time passed while the server was down go out now.
func (s *Service) Start() {
	s.wg.Add(1)
	go s.run()
}

// Close stops the timer loop and the conflict watcher and waits for a send in progress, so
// that nothing writes the store after it closes. Idempotent; safe without Start.
func (s *Service) Close() {
	s.once.Do(func() {
		s.stop()
		s.wg.Wait()
	})
}

// MaxDelay is the longest delay accepted.
func (s *Service) MaxDelay() time.Duration { return s.opts.MaxDelay }

// Request is one delayed event to schedule.
type Request struct {
	User     id.UserID
	Device   string
	TxnID    string // PUT /send's transaction ID; empty for state events
	RoomID   id.RoomID
	Type     string
	StateKey *string
	Content  json.RawMessage
	Delay    time.Duration
}

// TxnScope names a /send transaction: the same ID in another room or for another type is
// another transaction.
func TxnScope(roomID id.RoomID, typ, txnID string) string {
	return roomID.String() + "\x00" + typ + "\x00" + txnID
}

// ByTxn returns the delay ID an earlier PUT with the same transaction got ("" when none), so a
// retried request answers the same without reading its body again.
func (s *Service) ByTxn(user id.UserID, device, scope string) (string, error) {
	var delayID string
	err := s.st.View(func(txn *store.Txn) error {
		var err error
		delayID, err = txn.DelayedTxn(user.String(), device, scope)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("delayed events: read transaction: %w", err)
	}
	return delayID, nil
}

// MaxDelayExceeded is the error for a delay above the maximum. The shape is the one MatrixRTC
// clients look for (Synapse's): M_UNKNOWN with the unstable errcode and the maximum in
// prefixed fields, so that a client can retry with the largest allowed delay.
func MaxDelayExceeded(maxDelay time.Duration) *merr.Error {
	return &merr.Error{Status: http.StatusBadRequest, Code: "M_UNKNOWN",
		Message: fmt.Sprintf("the requested delay exceeds the allowed maximum of %d ms", maxDelay.Milliseconds()),
		Extra: map[string]any{
			"org.matrix.msc4140.errcode":   "M_MAX_DELAY_EXCEEDED",
			"org.matrix.msc4140.max_delay": maxDelay.Milliseconds(),
		}}
}

// Schedule stores a delayed event and arms its timer. The user must be joined to the room
// now; whether the event is allowed is decided when it is sent.
func (s *Service) Schedule(ctx context.Context, r Request) (string, error) {
	if r.Delay <= 0 {
		return "", merr.InvalidParam("the delay must be a positive number of milliseconds")
	}
	if r.Delay > s.opts.MaxDelay {
		return "", MaxDelayExceeded(s.opts.MaxDelay)
	}
	m, _, err := s.rooms.Membership(ctx, r.RoomID, r.User)
	if err != nil {
		return "", err
	}
	if m != "join" {
		return "", merr.Forbidden("you are not joined to %s", r.RoomID)
	}
	delayID, err := newDelayID()
	if err != nil {
		return "", err
	}
	now := s.now()
	rec := &Record{DelayID: delayID, User: r.User.String(), Device: r.Device, RoomID: r.RoomID.String(),
		Type: r.Type, StateKey: r.StateKey, Content: r.Content, DelayMS: r.Delay.Milliseconds(),
		RunningSince: now.UnixMilli(), Pos: s.st.Stream().Watermark()}
	b, err := rec.encode()
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.perUser[rec.User] >= s.opts.MaxPerUser {
		return "", merr.LimitExceeded("at most %d delayed events may be scheduled at once", s.opts.MaxPerUser).
			With("retry_after_ms", s.nextDueLocked(rec.User, now).Milliseconds())
	}
	err = s.st.Update(func(txn *store.Txn) error {
		if r.TxnID != "" {
			// Checked again inside the write: two identical requests racing get one event.
			scope := TxnScope(r.RoomID, r.Type, r.TxnID)
			if prev, err := txn.DelayedTxn(rec.User, r.Device, scope); err == nil {
				delayID = prev
				return nil
			} else if !errors.Is(err, store.ErrNotFound) {
				return err
			}
			if err := txn.SetDelayedTxn(rec.User, r.Device, scope, delayID); err != nil {
				return err
			}
		}
		return txn.PutDelayedEvent(rec.User, delayID, b)
	})
	if err != nil {
		return "", fmt.Errorf("store delayed event: %w", err)
	}
	if delayID != rec.DelayID {
		return delayID, nil // an earlier request with the same transaction won
	}
	s.pending[delayID] = rec
	s.perUser[rec.User]++
	s.nudge()
	return delayID, nil
}

// nextDueLocked is how long until the user's next delayed event is due (the Retry-After of
// the per-user limit).
func (s *Service) nextDueLocked(user string, now time.Time) time.Duration {
	best := time.Duration(0)
	for _, r := range s.pending {
		if r.User != user {
			continue
		}
		if d := r.Due().Sub(now); best == 0 || d < best {
			best = d
		}
	}
	return max(best, time.Second)
}

// List returns the user's scheduled delayed events, soonest due first.
func (s *Service) List(user id.UserID) []Record {
	s.mu.Lock()
	var out []Record
	for _, m := range []map[string]*Record{s.pending, s.sending} {
		for _, r := range m {
			if r.User == user.String() {
				out = append(out, *r)
			}
		}
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].DueMS() != out[j].DueMS() {
			return out[i].DueMS() < out[j].DueMS()
		}
		return out[i].DelayID < out[j].DelayID
	})
	return out
}

func notFound(delayID string) error {
	return merr.NotFound("no scheduled delayed event has the ID %q", delayID)
}

// Cancel removes a scheduled delayed event so that it is never sent.
func (s *Service) Cancel(delayID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, ok := s.pending[delayID]
	if !ok {
		return notFound(delayID)
	}
	return s.removeLocked(rec)
}

// removeLocked deletes a pending record from the store and memory.
func (s *Service) removeLocked(rec *Record) error {
	if err := s.st.Update(func(txn *store.Txn) error { return txn.DeleteDelayedEvent(rec.User, rec.DelayID) }); err != nil {
		return fmt.Errorf("delete delayed event %s: %w", rec.DelayID, err)
	}
	delete(s.pending, rec.DelayID)
	s.dropCountLocked(rec.User)
	return nil
}

func (s *Service) dropCountLocked(user string) {
	if s.perUser[user] <= 1 {
		delete(s.perUser, user)
	} else {
		s.perUser[user]--
	}
}

// Restart runs a scheduled event's delay again from now.
func (s *Service) Restart(delayID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, ok := s.pending[delayID]
	if !ok {
		return notFound(delayID)
	}
	upd := *rec
	upd.RunningSince = s.now().UnixMilli()
	upd.Pos = s.st.Stream().Watermark()
	b, err := upd.encode()
	if err != nil {
		return err
	}
	if err := s.st.Update(func(txn *store.Txn) error { return txn.PutDelayedEvent(upd.User, upd.DelayID, b) }); err != nil {
		return fmt.Errorf("restart delayed event %s: %w", delayID, err)
	}
	s.pending[delayID] = &upd
	s.nudge()
	return nil
}

// SendNow sends a scheduled event at once. When sending fails the event stays scheduled (the
// cause may be gone by its time) and the error is the one a direct send would have given.
func (s *Service) SendNow(ctx context.Context, delayID string) error {
	rec, ok := s.claim(delayID)
	if !ok {
		return notFound(delayID)
	}
	err := s.deliver(ctx, rec)
	if err != nil {
		s.unclaim(rec)
		return err
	}
	return s.finish(rec)
}

// claim takes a pending record out of the timer's and the managers' reach while it is sent.
func (s *Service) claim(delayID string) (*Record, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, ok := s.pending[delayID]
	if ok {
		delete(s.pending, delayID)
		s.sending[delayID] = rec
	}
	return rec, ok
}

func (s *Service) unclaim(rec *Record) {
	s.mu.Lock()
	delete(s.sending, rec.DelayID)
	s.pending[rec.DelayID] = rec
	s.mu.Unlock()
	s.nudge()
}

// finish removes a sent record from the store.
func (s *Service) finish(rec *Record) error {
	err := s.st.Update(func(txn *store.Txn) error { return txn.DeleteDelayedEvent(rec.User, rec.DelayID) })
	s.mu.Lock()
	delete(s.sending, rec.DelayID)
	s.dropCountLocked(rec.User)
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("delete sent delayed event %s: %w", rec.DelayID, err)
	}
	return nil
}

// deliver appends the event through the rooms service as the user who scheduled it.
func (s *Service) deliver(ctx context.Context, rec *Record) error {
	content := rec.Content
	if len(content) == 0 {
		content = json.RawMessage("{}")
	}
	t := events.Template{Type: rec.Type, StateKey: rec.StateKey, Sender: id.UserID(rec.User), Content: []byte(content)}
	if _, err := s.rooms.Send(ctx, id.RoomID(rec.RoomID), t, rooms.SendOpts{Device: rec.Device}); err != nil {
		return fmt.Errorf("send delayed event %s: %w", rec.DelayID, err)
	}
	return nil
}

// nudge wakes the timer loop without blocking.
func (s *Service) nudge() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}
