package sync

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/appliance/bus"
	"github.com/hearth-home/hearth/matrix/accounts"
	"github.com/hearth-home/hearth/matrix/change"
	"github.com/hearth-home/hearth/matrix/clientapi"
	"github.com/hearth-home/hearth/matrix/filter"
	"github.com/hearth-home/hearth/matrix/merr"
	"github.com/hearth-home/hearth/matrix/rooms"
	"github.com/hearth-home/hearth/matrix/store"
)

// Service answers /sync and holds typing and receipts.
type Service struct {
	st       *store.Store
	rooms    *rooms.Service
	accounts *accounts.Service
	log      *slog.Logger
	n        *notifier
	typing   *typing
	server   string
	stop     chan struct{}
	sliding  slidingRegistry // Simplified Sliding Sync connections (sliding_conn.go)

	contributors []Contributor

	presence *presenceTracker // nil while presence is switched off (presence.go)
	unread   UnreadCounter    // unread_notifications (unread.go); nil = zero counts

	publish func(change.Change) // announces local typing changes (the federation sender hears them)
}

// Window is the stream range one sync covers: (Since, Upto]; Initial when there is no since.
type Window struct {
	Since, Upto uint64
	Initial     bool
	// NoAck: Since is not a to-device token (sliding sync's e2ee extension without to_device),
	// so to-device messages at or below it must not be acknowledged.
	NoAck bool
}

// Contributor adds per-user, per-device sections to a sync response (to-device messages,
// device lists, one-time-key counts, presence). It reads the store inside the sync's
// transaction, up to w.Upto, and must leave resp.empty() false only when it added news.
type Contributor interface {
	Contribute(txn *store.Txn, sess *accounts.Session, w Window, resp *Response) error
}

// AddContributor registers a contributor; call before serving.
func (s *Service) AddContributor(c Contributor) { s.contributors = append(s.contributors, c) }

// New builds the sync service and subscribes its notifier to the bus.
func New(st *store.Store, rm *rooms.Service, acc *accounts.Service, b *bus.Bus[change.Change], log *slog.Logger) (*Service, error) {
	s := &Service{st: st, rooms: rm, accounts: acc, log: log, n: newNotifier(), typing: newTyping(), server: rm.ServerName(), stop: make(chan struct{})}
	err := st.View(func(txn *store.Txn) error {
		return txn.AllMemberships(func(user string, m store.Membership) (bool, error) {
			s.n.setMember(m.Room, user, m.Membership)
			return true, nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("load memberships: %w", err)
	}
	isLocal := func(u string) bool { return strings.HasSuffix(u, ":"+s.server) }
	b.Subscribe(func(c change.Change) { s.n.onChange(c, isLocal) })
	s.publish = b.Publish
	go s.expireTyping()
	return s, nil
}

// Shutdown releases every waiting sync and stops background work.
func (s *Service) Shutdown() {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	s.n.wakeAll()
}

// Waiting is the number of parked long-polls (a metric).
func (s *Service) Waiting() int64 { return s.n.waiting.Load() }

func (s *Service) expireTyping() {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case now := <-t.C:
			rooms, gone := s.typing.expire(now)
			for _, room := range rooms {
				s.n.wakeRoom(room)
			}
			for _, g := range gone {
				s.publishTyping(g.room, "", g.user)
			}
		}
	}
}

type token struct {
	pos      uint64
	typing   uint64
	presence uint64 // presence serial (presence.go); tokens without it read as 0
}

func (t token) String() string {
	return "s" + strconv.FormatUint(t.pos, 10) + "_" + strconv.FormatUint(t.typing, 10) + "_" + strconv.FormatUint(t.presence, 10)
}

// advanced is t with its stream position moved up to pos (never down).
func (t *token) advanced(pos uint64) *token {
	a := *t
	a.pos = max(a.pos, pos)
	return &a
}

func parseToken(s string) (token, error) {
	if !strings.HasPrefix(s, "s") {
		return token{}, merr.InvalidParam("invalid since token")
	}
	a, b, _ := strings.Cut(s[1:], "_")
	p, err := strconv.ParseUint(a, 10, 64)
	if err != nil {
		return token{}, merr.InvalidParam("invalid since token")
	}
	b, c, _ := strings.Cut(b, "_")
	ty, _ := strconv.ParseUint(b, 10, 64)
	pr, _ := strconv.ParseUint(c, 10, 64)
	return token{pos: p, typing: ty, presence: pr}, nil
}

// Sync implements clientapi.Syncer.
func (s *Service) Sync(ctx context.Context, sess *accounts.Session, q clientapi.SyncQuery) (any, error) {
	var since *token
	if q.Since != "" {
		t, err := parseToken(q.Since)
		if err != nil {
			return nil, err
		}
		since = &t
	}
	f := &filter.Filter{}
	if len(q.Filter) > 0 {
		var err error
		if f, err = filter.Parse(q.Filter); err != nil {
			return nil, err
		}
	}
	presenceDone, err := s.presenceSync(sess.User, q.SetPresence) // presence.go
	if err != nil {
		return nil, err
	}
	defer presenceDone()
	deadline := time.Now().Add(q.Timeout)
	for {
		ch := s.n.channel(sess.User.String())
		resp, err := s.build(ctx, sess, since, f, q.FullState, q.UseStateAfter)
		if err != nil {
			return nil, err
		}
		if since == nil || q.FullState || !resp.empty() || q.Timeout <= 0 {
			return resp, nil
		}
		wait := time.Until(deadline)
		if wait <= 0 {
			return resp, nil
		}
		stopped, err := s.park(ctx, ch, wait)
		if err != nil {
			return nil, err
		}
		if stopped {
			return resp, nil
		}
		// A wake-up only says "look again": the next build reads up to the new watermark.
		// The build just made found nothing for this request in (since, upto], so the next
		// one starts at upto. Each wake-up then costs what arrived since the last look, not
		// everything since the request began: a client whose filter drops most changes (a
		// bridge bot's keys-only sync) is woken by every event in its rooms for the whole
		// long-poll, and rescanning the growing window made each wake-up slower and took the
		// CPU from the clients the events were for. Typing and presence keep their serials.
		since = since.advanced(resp.upto)
	}
}

// park waits for a wake-up on ch, the timeout, the client going away or shutdown. It reports
// whether the service is stopping (answer what you have) or the client's context error.
func (s *Service) park(ctx context.Context, ch <-chan struct{}, wait time.Duration) (stopping bool, err error) {
	timer := time.NewTimer(wait)
	defer timer.Stop()
	s.n.waiting.Add(1)
	defer s.n.waiting.Add(-1)
	select {
	case <-ch:
	case <-timer.C:
	case <-ctx.Done():
		return false, ctx.Err()
	case <-s.stop:
		return true, nil
	}
	return false, nil
}

// SetTyping implements clientapi.Ephemeral.
func (s *Service) SetTyping(ctx context.Context, roomID id.RoomID, user id.UserID, on bool, timeout time.Duration) error {
	nid, err := s.joinedRoom(ctx, roomID, user)
	if err != nil {
		return err
	}
	if timeout <= 0 || timeout > 2*time.Minute {
		timeout = 30 * time.Second
	}
	if s.typing.set(nid, user.String(), on, time.Now().Add(timeout)) {
		s.n.wakeRoom(nid)
		s.publishTyping(nid, roomID.String(), user.String())
	}
	return nil
}

// joinedRoom checks the user is joined and returns the room NID.
func (s *Service) joinedRoom(ctx context.Context, roomID id.RoomID, user id.UserID) (uint64, error) {
	var nid uint64
	err := s.st.View(func(txn *store.Txn) error {
		var err error
		nid, err = txn.RoomNID(roomID.String())
		if errors.Is(err, store.ErrNotFound) {
			return merr.Forbidden("you are not in this room")
		}
		if err != nil {
			return err
		}
		m, err := txn.GetMembership(user.String(), nid)
		if err != nil {
			return err
		}
		if m.Membership != "join" {
			return merr.Forbidden("you are not in this room")
		}
		return nil
	})
	return nid, err
}

// PutReceipt implements clientapi.Ephemeral: stores the user's receipt of a type (m.read,
// m.read.private), optionally per thread.
func (s *Service) PutReceipt(ctx context.Context, roomID id.RoomID, user id.UserID, typ string, eventID id.EventID, threadID string) error {
	nid, err := s.joinedRoom(ctx, roomID, user)
	if err != nil {
		return err
	}
	return s.st.Update(func(txn *store.Txn) error {
		epos, err := txn.EventPos(eventID.String())
		if errors.Is(err, store.ErrNotFound) {
			return merr.NotFound("event %s not found", eventID)
		}
		if err != nil {
			return err
		}
		ev, err := txn.Event(epos)
		if err != nil {
			return err
		}
		if ev.Room != nid {
			return merr.NotFound("event %s is not in this room", eventID)
		}
		if err := checkThreadID(txn, nid, threadID); err != nil { // relations.go
			return err
		}
		pos, err := txn.AllocPos(store.KindReceipt)
		if err != nil {
			return err
		}
		r := &store.ReceiptRecord{Type: typ, User: user.String(), Thread: threadID, EventID: eventID.String(), TS: time.Now().UnixMilli(), Pos: pos, Private: typ == "m.read.private", RoomNID: nid}
		if err := txn.PutReceipt(r); err != nil {
			return err
		}
		txn.Notify(pos, change.Change{Pos: pos, Kind: change.Receipt, Room: nid, RoomID: roomID.String(), User: user.String()})
		return nil
	})
}

// RoomNID resolves a room for handlers that store per-room data (account data, tags).
func (s *Service) RoomNID(roomID id.RoomID) (uint64, error) {
	var nid uint64
	err := s.st.View(func(txn *store.Txn) error {
		var err error
		nid, err = txn.RoomNID(roomID.String())
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return 0, merr.NotFound("room %s is not known here", roomID)
	}
	return nid, err
}
