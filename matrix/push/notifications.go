package push

import (
	"context"
	"encoding/json"
	"strconv"
	"time"

	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/events"
	"github.com/hearth-home/hearth/matrix/merr"
	"github.com/hearth-home/hearth/matrix/rooms"
	"github.com/hearth-home/hearth/matrix/store"
)

// Notification is one entry of GET /notifications.
type Notification struct {
	Actions    json.RawMessage     `json:"actions"`
	Event      *events.ClientEvent `json:"event"`
	ProfileTag string              `json:"profile_tag,omitempty"`
	Read       bool                `json:"read"`
	RoomID     string              `json:"room_id"`
	TS         int64               `json:"ts"`
}

// NotificationsPage is the response of GET /notifications.
type NotificationsPage struct {
	Notifications []Notification `json:"notifications"`
	NextToken     string         `json:"next_token,omitempty"`
}

// Notifications lists the user's notifications, newest first: from is a next_token of an
// earlier page ("" = the newest), limit at most 100 (0 = 20), highlightOnly for only=highlight.
func (s *Service) Notifications(ctx context.Context, user id.UserID, from string, limit int, highlightOnly bool) (*NotificationsPage, error) {
	var before uint64
	if from != "" {
		n, err := strconv.ParseUint(from, 10, 64)
		if err != nil {
			return nil, merr.InvalidParam("invalid from token")
		}
		before = n
	}
	if limit <= 0 {
		limit = 20
	}
	limit = min(limit, 100)
	page := &NotificationsPage{Notifications: []Notification{}}
	now := time.Now().UnixMilli()
	err := s.st.View(func(txn *store.Txn) error {
		reads := map[uint64]uint64{}
		var last uint64
		return txn.Notifications(user.String(), before, func(pos uint64, r *store.NotificationRecord) (bool, error) {
			if len(page.Notifications) == limit {
				page.NextToken = strconv.FormatUint(last, 10)
				return false, nil
			}
			if highlightOnly && !r.Highlight {
				return true, nil
			}
			rec, err := txn.Event(pos)
			if err != nil || store.Hidden(rec.Flags) || rec.Flags&store.FlagRedacted != 0 {
				return true, nil // gone or redacted since: skip
			}
			ev, err := rooms.LoadEvent(txn, pos, r.RoomID)
			if err != nil {
				return false, err
			}
			ces, err := rooms.RenderInTxn(txn, rooms.Requester{User: user}, []*rooms.Event{ev}, now)
			if err != nil {
				return false, err
			}
			rp, ok := reads[r.Room]
			if !ok {
				if rp, err = readPos(txn, user.String(), r.Room); err != nil {
					return false, err
				}
				reads[r.Room] = rp
			}
			page.Notifications = append(page.Notifications, Notification{Actions: r.Actions, Event: ces[0], Read: pos <= rp, RoomID: r.RoomID, TS: r.TS})
			last = pos
			return true, nil
		})
	})
	return page, err
}
