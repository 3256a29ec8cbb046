package sync

import "github.com/hearth-home/hearth/matrix/store"

// UnreadCounter supplies unread_notifications (implemented by matrix/push).
//
// A build calls AwaitCounts once, before it opens its read transaction, and then UnreadIn for
// every joined room inside that transaction. One transaction matters for latency: every new
// Badger transaction waits until the commits already in flight (each with its fsync) are
// applied, so a read per room made a woken /sync wait behind one write after another.
type UnreadCounter interface {
	// AwaitCounts waits (bounded) until the counts cover every event up to the position upto.
	AwaitCounts(upto uint64)
	// UnreadIn reads a user's highlight and notification counts in a room.
	UnreadIn(txn *store.Txn, user string, room uint64) (highlight, notification int, err error)
}

// SetUnreadCounter sets the source of unread_notifications; call before serving. Without one
// the counts are zero.
func (s *Service) SetUnreadCounter(u UnreadCounter) { s.unread = u }

// awaitCounts lets the unread counter catch up with upto before the build's transaction opens.
func (s *Service) awaitCounts(upto uint64) {
	if s.unread != nil {
		s.unread.AwaitCounts(upto)
	}
}

// unreadCounts fills jr.Unread for a joined room. A failure costs only the counts (they read
// as zero until the next sync), not the whole response.
func (p *pass) unreadCounts(nid uint64, jr *JoinedRoom) {
	if p.s.unread == nil {
		return
	}
	h, n, err := p.s.unread.UnreadIn(p.txn, p.user, nid)
	if err != nil {
		p.s.log.Warn("sync: unread counts", "user", p.user, "room", nid, "err", err)
		return
	}
	jr.Unread.Highlight, jr.Unread.Notification = h, n
}
