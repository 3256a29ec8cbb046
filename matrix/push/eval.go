package push

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
	"maunium.net/go/mautrix/pushrules"

	"github.com/hearth-home/hearth/appliance/bus"
	"github.com/hearth-home/hearth/matrix/change"
	"github.com/hearth-home/hearth/matrix/rooms"
	"github.com/hearth-home/hearth/matrix/store"
)

// evalBatch is how many stream positions one evaluation transaction covers.
const evalBatch = 64

// Watch subscribes to the bus and starts evaluation and delivery. Subscribe before the sync
// notifier if possible, so a woken /sync finds the change already queued here.
func (s *Service) Watch(b *bus.Bus[change.Change]) {
	s.evaluated.Store(s.st.Stream().Watermark())
	sub := b.SubscribeQueue(4096)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer b.Unsubscribe(sub)
		s.run(sub)
	}()
	for range 2 {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.deliverLoop()
		}()
	}
}

func (s *Service) run(sub *bus.Sub[change.Change]) {
	for {
		select {
		case <-s.stop:
			return
		case c := <-sub.C():
			if c.Kind == change.Receipt {
				if err := s.onReceipt(c.User, c.Room); err != nil {
					s.log.Warn("push: receipt", "err", err)
				}
			}
			if c.Kind == change.Devices {
				if err := s.dropOrphanPushers(c.User); err != nil {
					s.log.Warn("push: drop pushers of removed devices", "err", err)
				}
			}
		case <-s.kick:
		}
		if sub.Lagged() {
			s.log.Warn("push: bus queue overflowed; receipts may reset counts late")
		}
		s.catchUp()
	}
}

// catchUp evaluates every event position up to the watermark not yet evaluated.
func (s *Service) catchUp() {
	w := s.st.Stream().Watermark()
	for from := s.evaluated.Load(); from < w; {
		upto := min(from+evalBatch, w)
		var out []delivery
		err := s.st.Update(func(txn *store.Txn) error {
			out = out[:0]
			for pos := from + 1; pos <= upto; pos++ {
				d, err := s.evaluate(txn, pos)
				if err != nil {
					return err
				}
				out = append(out, d...)
			}
			return nil
		})
		if err != nil {
			s.log.Error("push: evaluate", "from", from+1, "upto", upto, "err", err)
		}
		from = upto
		s.copyUpgradedRoomRules()
		s.advance(upto)
		for _, d := range out {
			s.enqueue(d)
		}
	}
}

func (s *Service) advance(pos uint64) {
	s.evaluated.Store(pos)
	s.progMu.Lock()
	close(s.progress)
	s.progress = make(chan struct{})
	s.progMu.Unlock()
}

// waitEvaluated waits (at most d) until events up to pos have been evaluated.
func (s *Service) waitEvaluated(pos uint64, d time.Duration) {
	if s.evaluated.Load() >= pos || time.Now().UnixNano() < s.slowUntil.Load() {
		return
	}
	select {
	case s.kick <- struct{}{}:
	default:
	}
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for s.evaluated.Load() < pos {
		s.progMu.Lock()
		ch := s.progress
		s.progMu.Unlock()
		if s.evaluated.Load() >= pos {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			// Evaluation is behind: answer with the counts as they are for a while rather
			// than hold every room of every sync.
			s.slowUntil.Store(time.Now().Add(5 * time.Second).UnixNano())
			return
		case <-s.stop:
			return
		}
	}
}

func (s *Service) isLocal(user string) bool { return strings.HasSuffix(user, ":"+s.server) }

// evalRoom is the room as the push rule conditions see it.
type evalRoom struct {
	members int
	display string
	pl      *event.PowerLevelsEventContent
}

func (r *evalRoom) GetOwnDisplayname() string                      { return r.display }
func (r *evalRoom) GetMemberCount() int                            { return r.members }
func (r *evalRoom) GetPowerLevels() *event.PowerLevelsEventContent { return r.pl }

var _ pushrules.PowerLevelfulRoom = (*evalRoom)(nil)

type memberContent struct {
	Membership  string `json:"membership"`
	DisplayName string `json:"displayname"`
}

// evaluate runs the rules of every local member (and a local invitee) for the event at pos,
// if there is one, storing notifications and counts. It returns the pushes to deliver.
func (s *Service) evaluate(txn *store.Txn, pos uint64) ([]delivery, error) {
	rec, err := txn.Event(pos)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if store.Hidden(rec.Flags) || rec.Flags&store.FlagRedacted != 0 {
		return nil, nil
	}
	ev, err := rooms.LoadEvent(txn, pos, "")
	if err != nil {
		return nil, err
	}
	l := ev.Lite
	snap := rec.After
	if snap == 0 {
		snap = rec.Snapshot
	}
	if l.Type == "m.room.member" && l.StateKey != nil && s.isLocal(*l.StateKey) && l.Membership() == "join" {
		state, err := rooms.StateMap(txn, snap, ev.RoomID)
		if err != nil {
			return nil, err
		}
		s.noteUpgradeJoin(state, *l.StateKey, ev.RoomID)
	}
	view, err := s.views.get(txn, snap, ev.RoomID) // evalroom.go
	if err != nil {
		return nil, err
	}
	members, pl, roomName := view.members, view.pl, view.name
	joined := 0
	var recipients []string
	for u, m := range members {
		if m.Membership == "join" {
			joined++
			if u != l.Sender && s.isLocal(u) && !s.skipped(u) {
				recipients = append(recipients, u)
			}
		}
	}
	if l.Type == "m.room.member" && l.StateKey != nil && *l.StateKey != l.Sender && s.isLocal(*l.StateKey) && members[*l.StateKey].Membership == "invite" && !s.skipped(*l.StateKey) {
		recipients = append(recipients, *l.StateKey)
	}
	if len(recipients) == 0 {
		return nil, nil
	}
	evt := &event.Event{
		Sender: id.UserID(l.Sender), Type: event.Type{Type: l.Type}, StateKey: l.StateKey,
		Timestamp: l.OriginServerTS, ID: id.EventID(rec.ID), RoomID: id.RoomID(ev.RoomID),
		Content: event.Content{VeryRaw: l.Content},
	}
	if err := json.Unmarshal(l.Content, &evt.Content.Raw); err != nil || evt.Content.Raw == nil {
		evt.Content.Raw = map[string]any{}
	}
	var out []delivery
	for _, u := range recipients {
		rs, err := s.evalRules(txn, u)
		if err != nil {
			return nil, err
		}
		room := &evalRoom{members: joined, display: members[u].DisplayName, pl: pl}
		actions := rs.GetActions(room, evt)
		should := actions.Should()
		if !should.Notify {
			continue
		}
		rawActions, err := json.Marshal(actionsJSON(actions))
		if err != nil {
			return nil, err
		}
		nr := &store.NotificationRecord{Room: rec.Room, RoomID: ev.RoomID, Actions: rawActions, Highlight: should.Highlight, TS: time.Now().UnixMilli(), Thread: threadRoot(l.Content)}
		if err := txn.PutNotification(u, pos, nr, MaxNotifications); err != nil {
			return nil, err
		}
		cnt, err := s.counts(txn, u, rec.Room)
		if err != nil {
			return nil, err
		}
		if pos > cnt.Read {
			cnt.Notification++
			if should.Highlight {
				cnt.Highlight++
			}
		}
		if err := txn.PutPushCount(u, rec.Room, cnt); err != nil {
			return nil, err
		}
		ds, err := s.deliveriesFor(txn, u, ev, roomName, members[l.Sender].DisplayName, actions)
		if err != nil {
			return nil, err
		}
		out = append(out, ds...)
	}
	return out, nil
}

// actionsJSON renders actions the way the spec writes them (no "value" on a bare highlight).
func actionsJSON(actions pushrules.PushActionArray) []any {
	out := make([]any, 0, len(actions))
	for _, a := range actions {
		if a.Action != pushrules.ActionSetTweak {
			out = append(out, string(a.Action))
			continue
		}
		t := map[string]any{"set_tweak": string(a.Tweak)}
		if a.Value != nil {
			t["value"] = a.Value
		}
		out = append(out, t)
	}
	return out
}

// readPos is the position of the newest event covered by the user's unthreaded or main-thread
// read receipts (public or private) in the room.
func readPos(txn *store.Txn, user string, room uint64) (uint64, error) {
	unthreaded, err := receiptPos(txn, user, room, "")
	if err != nil {
		return 0, err
	}
	main, err := receiptPos(txn, user, room, "main")
	return max(unthreaded, main), err
}

// counts returns the user's counts in a room against the current read receipt, recounting from
// the notification list when the receipt has moved since they were stored.
func (s *Service) counts(txn *store.Txn, user string, room uint64) (store.PushCountRecord, error) {
	cnt, err := txn.PushCount(user, room)
	if err != nil {
		return cnt, err
	}
	rp, err := readPos(txn, user, room)
	if err != nil {
		return cnt, err
	}
	if rp == cnt.Read {
		return cnt, nil
	}
	return recount(txn, user, room, rp)
}

func (s *Service) onReceipt(user string, room uint64) error {
	if !s.isLocal(user) {
		return nil
	}
	return s.st.Update(func(txn *store.Txn) error {
		// Always recount: a threaded receipt reads part of a room without moving the
		// main/unthreaded position that counts() compares (threads.go).
		rp, err := readPos(txn, user, room)
		if err != nil {
			return err
		}
		cnt, err := recount(txn, user, room, rp)
		if err != nil {
			return err
		}
		return txn.PutPushCount(user, room, cnt)
	})
}

// AwaitCounts waits (at most two seconds) until the counts cover every event up to the stream
// position upto. A /sync calls it once, before opening the read transaction it builds the
// whole response in, so the counts it reads there match the events it returns.
func (s *Service) AwaitCounts(upto uint64) { s.waitEvaluated(upto, 2*time.Second) }

// UnreadIn is the user's (highlight, notification) counts in a room, read inside the caller's
// transaction (after AwaitCounts): a /sync reads every room in one transaction, since each new
// Badger transaction waits for the commits in flight.
func (s *Service) UnreadIn(txn *store.Txn, user string, room uint64) (highlight, notification int, err error) {
	cnt, err := s.counts(txn, user, room)
	if err != nil {
		return 0, 0, fmt.Errorf("push: unread counts of %s: %w", user, err)
	}
	return cnt.Highlight, cnt.Notification, nil
}
