package sync

// UnreadCounter supplies unread_notifications (implemented by matrix/push): a user's highlight
// and notification counts in a room for a sync that reads up to the stream position upto.
type UnreadCounter interface {
	Unread(user string, room uint64, upto uint64) (highlight, notification int)
}

// SetUnreadCounter sets the source of unread_notifications; call before serving. Without one
// the counts are zero.
func (s *Service) SetUnreadCounter(u UnreadCounter) { s.unread = u }

// unreadCounts fills jr.Unread for a joined room.
func (p *pass) unreadCounts(nid uint64, jr *JoinedRoom) {
	if p.s.unread != nil {
		jr.Unread.Highlight, jr.Unread.Notification = p.s.unread.Unread(p.user, nid, p.upto)
	}
}
