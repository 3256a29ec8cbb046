package sync

import (
	"errors"

	"github.com/hearth-home/hearth/matrix/invitefilter"
	"github.com/hearth-home/hearth/matrix/merr"
	"github.com/hearth-home/hearth/matrix/rooms"
	"github.com/hearth-home/hearth/matrix/store"
)

// The parts of /sync that concern relations, threads and ignored users; build.go calls them.
// Bundled aggregations need nothing here: timelines are rendered by rooms.RenderInTxn, which
// bundles every event it renders.

// Bounds on the thread-notification approximation per room.
const (
	unreadThreadsMax = 50  // threads looked at
	unreadCountMax   = 100 // events counted per thread
)

// hidesInvite reports whether an invite came from a user the syncing user ignores (spec:
// "Servers must not send room invites from ignored users to clients") or one the user's invite
// permission ignores or blocks (matrix/invitefilter).
func (p *pass) hidesInvite(m store.Membership) (bool, error) {
	ev, err := rooms.LoadEvent(p.txn, m.Pos, "-")
	if err != nil {
		return false, err
	}
	if p.ignored.Has(ev.Lite.Sender) {
		return true, nil
	}
	return invitefilter.Hides(p.txn, p.user, ev.Lite.Sender)
}

// unreadThreads approximates unread_thread_notifications until push rules land: for each
// thread with activity after the user's read receipt (threaded or unthreaded, whichever is
// later), the number of thread events from other, un-ignored users after it. Highlights are
// not counted. Threads without unread events are omitted, as the spec allows.
func (p *pass) unreadThreads(nid uint64) (map[string]Unread, error) {
	mainRead, err := p.readPos(nid, "")
	if err != nil {
		return nil, err
	}
	out := map[string]Unread{}
	looked := 0
	err = p.txn.Threads(nid, 0, func(latest uint64, root string) (bool, error) {
		if latest <= mainRead || looked >= unreadThreadsMax {
			return false, nil // the list is newest first: the rest are read
		}
		looked++
		read, err := p.readPos(nid, root)
		if err != nil {
			return false, err
		}
		read = max(read, mainRead)
		n := 0
		err = p.txn.Relations(nid, root, rooms.RelThread, 0, true, func(r store.Relation) (bool, error) {
			if r.Pos > p.upto {
				return true, nil
			}
			if r.Pos <= read {
				return false, nil
			}
			if r.Sender != p.user && !p.ignored.Has(r.Sender) {
				n++
			}
			return n < unreadCountMax, nil
		})
		if err != nil {
			return false, err
		}
		if n > 0 {
			out[root] = Unread{Notification: n}
		}
		return true, nil
	})
	if err != nil || len(out) == 0 {
		return nil, err
	}
	return out, nil
}

// readPos is the position of the user's latest public or private read receipt in a thread
// ("" is unthreaded; "main" receipts count for the main timeline only).
func (p *pass) readPos(nid uint64, thread string) (uint64, error) {
	var best uint64
	for _, typ := range []string{"m.read", "m.read.private"} {
		r, err := p.txn.Receipt(nid, typ, p.user, thread)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return 0, err
		}
		pos, err := p.txn.EventPos(r.EventID)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return 0, err
		}
		best = max(best, pos)
	}
	return best, nil
}

// checkThreadID validates a receipt's thread_id inside the receipt's transaction: "main", or
// an event of this room that can be a thread root (it has no relation itself).
func checkThreadID(txn *store.Txn, nid uint64, threadID string) error {
	if threadID == "" || threadID == "main" {
		return nil
	}
	pos, err := txn.EventPos(threadID)
	if errors.Is(err, store.ErrNotFound) {
		return merr.InvalidParam("thread_id %s is not an event in this room", threadID)
	}
	if err != nil {
		return err
	}
	rec, err := txn.Event(pos)
	if err != nil {
		return err
	}
	if rec.Room != nid {
		return merr.InvalidParam("thread_id %s is not an event in this room", threadID)
	}
	if _, err := txn.RelationOf(pos); err == nil {
		return merr.InvalidParam("thread_id %s relates to another event and cannot be a thread root", threadID)
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	return nil
}
