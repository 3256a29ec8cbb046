package federation

import (
	"context"
	"encoding/json"
	"errors"

	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/merr"
	"github.com/hearth-home/hearth/matrix/rooms"
)

// HandleTxnPDU takes one PDU of a /send transaction: HandlePDU for rooms this server is in,
// and, for a room it is not in, the one event such a room can still send us: the inviter
// withdrawing a local user's invite (rooms.AcceptRescindedInvite). Every other event for a room
// we are not in gets HandlePDU's answer (not found).
func (s *Service) HandleTxnPDU(ctx context.Context, origin string, raw json.RawMessage) (id.EventID, error) {
	if eid, done, err := s.rescindedInvite(ctx, origin, raw); done {
		return eid, err
	}
	return s.HandlePDU(ctx, origin, raw)
}

// rescindedInvite handles a leave of a local user in a room this server knows (a stub holding
// the user's invite, or a room all our users left) but is not joined to. done is false for
// any other PDU, which then goes down the normal path.
func (s *Service) rescindedInvite(ctx context.Context, origin string, raw json.RawMessage) (eid id.EventID, done bool, err error) {
	var head struct {
		RoomID   id.RoomID `json:"room_id"`
		Type     string    `json:"type"`
		StateKey *string   `json:"state_key"`
		Content  struct {
			Membership string `json:"membership"`
		} `json:"content"`
	}
	if json.Unmarshal(raw, &head) != nil || head.RoomID == "" || head.Type != "m.room.member" ||
		head.StateKey == nil || head.Content.Membership != "leave" || id.UserID(*head.StateKey).Homeserver() != s.server {
		return "", false, nil
	}
	if resident, rerr := s.rooms.IsResident(head.RoomID); rerr != nil || resident {
		return "", false, nil
	}
	rv, verr := s.rooms.Version(head.RoomID)
	if verr != nil {
		return "", false, nil // unknown room: HandlePDU says so
	}
	ev, err := s.parse(ctx, rv, raw)
	if err != nil {
		return "", true, err
	}
	if ev.PDU.Sender.Homeserver() != origin {
		return ev.ID, true, merr.Forbidden("%s cannot send an event of %s into a room this server is not in", origin, ev.PDU.Sender)
	}
	if err := s.rooms.AcceptRescindedInvite(ctx, ev); err != nil {
		if errors.Is(err, rooms.ErrNotRescindable) {
			return ev.ID, true, merr.Forbidden("this server is not in room %s: %v", head.RoomID, err)
		}
		return ev.ID, true, err
	}
	s.log.Info("invite rescinded by its sender", "room_id", head.RoomID, "user", *head.StateKey, "sender", ev.PDU.Sender)
	return ev.ID, true, nil
}
