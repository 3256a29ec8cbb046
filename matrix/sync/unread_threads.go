package sync

import "github.com/hearth-home/hearth/matrix/store"

// ThreadUnreadCounter is an UnreadCounter that can also split a room's counts by thread
// (matrix/push does, from its notification list and the threaded read receipts).
type ThreadUnreadCounter interface {
	// ThreadCounter returns, for one build, a function giving a room's main-timeline counts
	// and, per thread root with something unread, [highlight, notification].
	ThreadCounter(txn *store.Txn, user string) func(room uint64) (highlight, notification int, threads map[string][2]int, err error)
}

// threadUnread fills, for a filter with unread_thread_notifications, unread_notifications with
// the main timeline's counts and unread_thread_notifications per thread. It reports false when
// the counter cannot split counts (relations.go's approximation is used then).
func (p *pass) threadUnread(nid uint64, jr *JoinedRoom) bool {
	tc, ok := p.s.unread.(ThreadUnreadCounter)
	if !ok {
		return false
	}
	if p.threadCounter == nil { // one per build: the notification list is read once
		p.threadCounter = tc.ThreadCounter(p.txn, p.user)
	}
	h, n, threads, err := p.threadCounter(nid)
	if err != nil {
		p.s.log.Warn("sync: thread unread counts", "user", p.user, "room", nid, "err", err)
		return true // the counts read as they were; the next sync tries again
	}
	jr.Unread.Highlight, jr.Unread.Notification = h, n
	if len(threads) > 0 {
		jr.UnreadThread = make(map[string]Unread, len(threads))
		for root, c := range threads {
			jr.UnreadThread[root] = Unread{Highlight: c[0], Notification: c[1]}
		}
	}
	return true
}
