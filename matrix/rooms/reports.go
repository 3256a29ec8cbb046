package rooms

import (
	"context"
	"errors"

	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/merr"
	"github.com/hearth-home/hearth/matrix/store"
)

// Content reports (spec: report_content.yaml). Reports are kept in the store for the server's
// admins; nothing is sent anywhere.

// ReportEvent records a report of an event by a member of its room. An event the reporter
// cannot see, or in a room they are not joined to, is M_NOT_FOUND as an unknown one is.
func (s *Service) ReportEvent(ctx context.Context, reporter id.UserID, roomID id.RoomID, eventID id.EventID, reason string) error {
	ev, err := s.EventForUser(ctx, reporter, roomID, eventID)
	if err != nil {
		if me, ok := merr.As(err); ok && me.Status == 403 {
			return merr.NotFound("event not found or you are not joined to the room")
		}
		return err
	}
	return s.st.Update(func(txn *store.Txn) error {
		m, err := txn.GetMembership(reporter.String(), ev.Rec.Room)
		if err != nil {
			return err
		}
		if m.Membership != "join" {
			return merr.NotFound("event not found or you are not joined to the room")
		}
		_, err = txn.PutReport(&store.ReportRecord{Kind: store.ReportEvent, Reporter: reporter.String(), RoomID: roomID.String(),
			EventID: eventID.String(), UserID: ev.Lite.Sender, Reason: reason, TS: s.now().UnixMilli()})
		return err
	})
}

// ReportRoom records a report of a room; the reporter need not be in it.
func (s *Service) ReportRoom(ctx context.Context, reporter id.UserID, roomID id.RoomID, reason string) error {
	err := s.st.Update(func(txn *store.Txn) error {
		if _, err := txn.RoomNID(roomID.String()); err != nil {
			return err
		}
		_, err := txn.PutReport(&store.ReportRecord{Kind: store.ReportRoom, Reporter: reporter.String(), RoomID: roomID.String(), Reason: reason, TS: s.now().UnixMilli()})
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return merr.NotFound("room %s not found", roomID)
	}
	return err
}

// Reports lists every stored report, oldest first (for the server's admins).
func (s *Service) Reports(ctx context.Context) ([]*store.ReportRecord, error) {
	out := []*store.ReportRecord{}
	err := s.st.View(func(txn *store.Txn) error {
		return txn.Reports(func(r *store.ReportRecord) (bool, error) {
			out = append(out, r)
			return true, nil
		})
	})
	return out, err
}
