package push

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/hearth-home/hearth/matrix/store"
)

// Threaded read receipts (spec "Threaded read receipts"): a receipt with a thread_id reads the
// events of that thread up to it; "main" reads the main timeline (thread roots included); an
// unthreaded receipt reads everything up to it. A notification therefore counts when it is
// newer than both the unthreaded receipt and the receipt of its own thread.

// threadRoot is the thread an event belongs to: the root named by an m.thread relation, "" for
// the main timeline.
func threadRoot(content json.RawMessage) string {
	var c struct {
		RelatesTo struct {
			RelType string `json:"rel_type"`
			EventID string `json:"event_id"`
		} `json:"m.relates_to"`
	}
	if json.Unmarshal(content, &c) != nil || c.RelatesTo.RelType != "m.thread" {
		return ""
	}
	return c.RelatesTo.EventID
}

// receiptPos is the position of the user's newest public or private read receipt in a room
// for one thread ("" unthreaded, "main", or a thread root); 0 when there is none.
func receiptPos(txn *store.Txn, user string, room uint64, thread string) (uint64, error) {
	var best uint64
	for _, typ := range []string{"m.read", "m.read.private"} {
		r, err := txn.Receipt(room, typ, user, thread)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return 0, err
		}
		p, err := txn.EventPos(r.EventID)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return 0, err
		}
		best = max(best, p)
	}
	return best, nil
}

// notif is what counting needs of one notification.
type notif struct {
	pos       uint64
	thread    string
	highlight bool
}

// roomNotifs reads the user's notification list once (newest first) and groups it by room.
func roomNotifs(txn *store.Txn, user string, only uint64) (map[uint64][]notif, error) {
	out := map[uint64][]notif{}
	err := txn.Notifications(user, 0, func(pos uint64, r *store.NotificationRecord) (bool, error) {
		if only == 0 || r.Room == only {
			out[r.Room] = append(out[r.Room], notif{pos: pos, thread: r.Thread, highlight: r.Highlight})
		}
		return true, nil
	})
	return out, err
}

// threadCounts calls add for every notification of a room (ns, newest first) that its
// thread's receipts have not read.
func threadCounts(txn *store.Txn, user string, room uint64, ns []notif, add func(thread string, highlight bool)) error {
	unthreaded, err := receiptPos(txn, user, room, "")
	if err != nil {
		return err
	}
	reads := map[string]uint64{}
	for _, n := range ns {
		if n.pos <= unthreaded {
			break // the unthreaded receipt read everything older
		}
		rp, ok := reads[n.thread]
		if !ok {
			key := n.thread
			if key == "" {
				key = "main"
			}
			p, err := receiptPos(txn, user, room, key)
			if err != nil {
				return err
			}
			rp = max(p, unthreaded)
			reads[n.thread] = rp
		}
		if n.pos > rp {
			add(n.thread, n.highlight)
		}
	}
	return nil
}

// recount rebuilds a room's stored counts from the notification list; rp is the main or
// unthreaded read position the record remembers (see counts).
func recount(txn *store.Txn, user string, room uint64, rp uint64) (store.PushCountRecord, error) {
	out := store.PushCountRecord{Read: rp}
	ns, err := roomNotifs(txn, user, room)
	if err != nil {
		return out, err
	}
	err = threadCounts(txn, user, room, ns[room], func(_ string, highlight bool) {
		out.Notification++
		if highlight {
			out.Highlight++
		}
	})
	return out, err
}

// ThreadCounter returns, for one /sync of a user whose filter asks for
// unread_thread_notifications, a function splitting a room's unread counts into the main
// timeline (highlight, notification) and each thread with something unread (root ->
// [highlight, notification]). The notification list is read once, on the first call, for all
// rooms; everything is read inside the caller's transaction, after AwaitCounts.
func (s *Service) ThreadCounter(txn *store.Txn, user string) func(room uint64) (highlight, notification int, threads map[string][2]int, err error) {
	var byRoom map[uint64][]notif
	return func(room uint64) (highlight, notification int, threads map[string][2]int, err error) {
		if byRoom == nil {
			if byRoom, err = roomNotifs(txn, user, 0); err != nil {
				byRoom = nil
				return 0, 0, nil, fmt.Errorf("push: notifications of %s: %w", user, err)
			}
		}
		threads = map[string][2]int{}
		err = threadCounts(txn, user, room, byRoom[room], func(thread string, hl bool) {
			h := 0
			if hl {
				h = 1
			}
			if thread == "" {
				highlight += h
				notification++
				return
			}
			c := threads[thread]
			threads[thread] = [2]int{c[0] + h, c[1] + 1}
		})
		if err != nil {
			return 0, 0, nil, fmt.Errorf("push: thread counts of %s: %w", user, err)
		}
		return highlight, notification, threads, nil
	}
}
