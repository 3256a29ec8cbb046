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

// threadCounts walks the user's notification list (newest first) for one room and calls add
// for every notification its thread's receipts have not read.
func threadCounts(txn *store.Txn, user string, room uint64, add func(thread string, highlight bool)) error {
	unthreaded, err := receiptPos(txn, user, room, "")
	if err != nil {
		return err
	}
	reads := map[string]uint64{}
	read := func(thread string) (uint64, error) {
		if p, ok := reads[thread]; ok {
			return p, nil
		}
		key := thread
		if key == "" {
			key = "main"
		}
		p, err := receiptPos(txn, user, room, key)
		if err != nil {
			return 0, err
		}
		reads[thread] = max(p, unthreaded)
		return reads[thread], nil
	}
	return txn.Notifications(user, 0, func(pos uint64, r *store.NotificationRecord) (bool, error) {
		if pos <= unthreaded {
			return false, nil // the unthreaded receipt read everything older
		}
		if r.Room != room {
			return true, nil
		}
		rp, err := read(r.Thread)
		if err != nil {
			return false, err
		}
		if pos > rp {
			add(r.Thread, r.Highlight)
		}
		return true, nil
	})
}

// recount rebuilds a room's stored counts from the notification list; rp is the main or
// unthreaded read position the record remembers (see counts).
func recount(txn *store.Txn, user string, room uint64, rp uint64) (store.PushCountRecord, error) {
	out := store.PushCountRecord{Read: rp}
	err := threadCounts(txn, user, room, func(_ string, highlight bool) {
		out.Notification++
		if highlight {
			out.Highlight++
		}
	})
	return out, err
}

// UnreadThreadsIn splits the user's unread counts in a room into the main timeline
// (highlight, notification) and each thread with something unread (root -> [highlight,
// notification]), for a /sync whose filter asks for unread_thread_notifications. It reads
// inside the caller's transaction, after AwaitCounts.
func (s *Service) UnreadThreadsIn(txn *store.Txn, user string, room uint64) (highlight, notification int, threads map[string][2]int, err error) {
	threads = map[string][2]int{}
	err = threadCounts(txn, user, room, func(thread string, hl bool) {
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
