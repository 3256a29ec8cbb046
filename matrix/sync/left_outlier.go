package sync

import (
	"github.com/hearth-home/hearth/matrix/events"
	"github.com/hearth-home/hearth/matrix/rooms"
	"github.com/hearth-home/hearth/matrix/store"
)

// leftOutOfBand shows a leave that reached this server outside the room's DAG: a rejected
// invite (send_leave through the inviting server), or an invite the inviter rescinded, in a
// room this server is not in (a stub; rooms/remote_invite.go). Such a leave is an outlier, so
// the timeline window holds nothing, and a stub has no state snapshot to show either; the
// leave event itself is the whole timeline, where clients (and Complement's SyncLeftFrom) look
// for it. done is false for any other left room, which the caller renders as usual.
func (p *pass) leftOutOfBand(resp *Response, lr *LeftRoom, m store.Membership, rec *store.RoomRecord, inWindow, limit int) (done bool, err error) {
	if inWindow > 0 || limit <= 0 {
		return false, nil
	}
	ev, err := rooms.LoadEvent(p.txn, m.Pos, rec.ID)
	if err != nil {
		return false, err
	}
	if ev.Rec.Flags&store.FlagOutlier == 0 {
		return false, nil
	}
	lr.Timeline.Events = p.clientEvents([]*rooms.Event{ev})
	if lr.Timeline.Events == nil {
		lr.Timeline.Events = []*events.ClientEvent{}
	}
	lr.Timeline.PrevBatch = rooms.Token(m.Pos)
	resp.Rooms.Leave[rec.ID] = lr
	return true, nil
}
