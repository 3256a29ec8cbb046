package federation

import (
	"context"
	"encoding/json"
	"time"

	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/keys"
	"github.com/hearth-home/hearth/matrix/merr"
)

// Ephemeral takes other servers' typing notifications and read receipts (the sync service).
type Ephemeral interface {
	SetRemoteTyping(ctx context.Context, roomID id.RoomID, user id.UserID, on bool, timeout time.Duration) error
	PutRemoteReceipt(ctx context.Context, roomID id.RoomID, user id.UserID, typ string, eventID id.EventID, threadID string, ts int64) error
}

// ToDevice delivers direct to-device messages to local devices (the keys service).
type ToDevice interface {
	SendToDevice(ctx context.Context, sender id.UserID, senderDevice, evType, txnID string, messages map[string]map[string]json.RawMessage) error
}

// RemotePresence takes other servers' users' presence (the sync service).
type RemotePresence interface {
	SetRemotePresence(ctx context.Context, user id.UserID, presence string, statusMsg *string, lastActiveAgo int64) error
}

// RemoteDevices takes other servers' users' device-list and cross-signing changes (the keys
// service, which caches their device lists).
type RemoteDevices interface {
	ApplyDeviceListUpdate(ctx context.Context, u keys.RemoteDeviceUpdate) error
	ApplySigningKeyUpdate(ctx context.Context, u keys.RemoteSigningKeyUpdate) error
}

// remoteStates are the takers of the EDUs about remote users' state.
type remoteStates struct {
	presence RemotePresence
	devices  RemoteDevices
}

// SetRemoteStateHandlers connects the services that take m.presence, m.device_list_update
// and m.signing_key_update; unset ones drop theirs.
func (s *Service) SetRemoteStateHandlers(p RemotePresence, d RemoteDevices) {
	s.states = remoteStates{presence: p, devices: d}
}

// Alive is told when a server contacts us, so that its outbound queue retries at once.
type Alive interface{ MarkAlive(server string) }

// SetEDUHandlers connects the services that take EDUs; unset ones drop theirs.
func (s *Service) SetEDUHandlers(e Ephemeral, td ToDevice, alive Alive) {
	s.eph, s.todev, s.alive = e, td, alive
}

// Contacted notes that origin reached us.
func (s *Service) Contacted(origin string) {
	if s.alive != nil {
		s.alive.MarkAlive(origin)
	}
}

type edu struct {
	Type    string          `json:"edu_type"`
	Content json.RawMessage `json:"content"`
}

// HandleEDU applies one EDU from origin. Each EDU only speaks for users of its origin.
func (s *Service) HandleEDU(ctx context.Context, origin string, raw json.RawMessage) error {
	var e edu
	if err := json.Unmarshal(raw, &e); err != nil {
		return merr.BadJSON("malformed EDU: %v", err)
	}
	switch e.Type {
	case "m.typing":
		return s.typingEDU(ctx, origin, e.Content)
	case "m.receipt":
		return s.receiptEDU(ctx, origin, e.Content)
	case "m.direct_to_device":
		return s.toDeviceEDU(ctx, origin, e.Content)
	case "m.presence":
		return s.presenceEDU(ctx, origin, e.Content)
	case "m.device_list_update":
		return s.deviceListEDU(ctx, origin, e.Content)
	case "m.signing_key_update":
		return s.signingKeyEDU(ctx, origin, e.Content)
	default:
		s.log.Debug("EDU ignored", "type", e.Type, "origin", origin)
		return nil
	}
}

func (s *Service) presenceEDU(ctx context.Context, origin string, c json.RawMessage) error {
	var p struct {
		Push []struct {
			UserID        id.UserID `json:"user_id"`
			Presence      string    `json:"presence"`
			StatusMsg     *string   `json:"status_msg"`
			LastActiveAgo int64     `json:"last_active_ago"`
		} `json:"push"`
	}
	if err := json.Unmarshal(c, &p); err != nil {
		return merr.BadJSON("m.presence: %v", err)
	}
	if s.states.presence == nil {
		return nil
	}
	for _, u := range p.Push {
		if u.UserID.Homeserver() != origin {
			s.log.Info("presence for another server's user ignored", "origin", origin, "user", u.UserID)
			continue
		}
		if err := s.states.presence.SetRemotePresence(ctx, u.UserID, u.Presence, u.StatusMsg, u.LastActiveAgo); err != nil {
			s.log.Info("remote presence not applied", "user", u.UserID, "err", err)
		}
	}
	return nil
}

func (s *Service) deviceListEDU(ctx context.Context, origin string, c json.RawMessage) error {
	var u keys.RemoteDeviceUpdate
	if err := json.Unmarshal(c, &u); err != nil {
		return merr.BadJSON("m.device_list_update: %v", err)
	}
	if id.UserID(u.UserID).Homeserver() != origin {
		return merr.Forbidden("%s cannot speak for %s", origin, u.UserID)
	}
	if s.states.devices == nil {
		return nil
	}
	return s.states.devices.ApplyDeviceListUpdate(ctx, u)
}

func (s *Service) signingKeyEDU(ctx context.Context, origin string, c json.RawMessage) error {
	var u keys.RemoteSigningKeyUpdate
	if err := json.Unmarshal(c, &u); err != nil {
		return merr.BadJSON("m.signing_key_update: %v", err)
	}
	if id.UserID(u.UserID).Homeserver() != origin {
		return merr.Forbidden("%s cannot speak for %s", origin, u.UserID)
	}
	if s.states.devices == nil {
		return nil
	}
	return s.states.devices.ApplySigningKeyUpdate(ctx, u)
}

func (s *Service) typingEDU(ctx context.Context, origin string, c json.RawMessage) error {
	var t struct {
		RoomID id.RoomID `json:"room_id"`
		UserID id.UserID `json:"user_id"`
		Typing bool      `json:"typing"`
	}
	if err := json.Unmarshal(c, &t); err != nil {
		return merr.BadJSON("m.typing: %v", err)
	}
	if t.UserID.Homeserver() != origin {
		return merr.Forbidden("%s cannot speak for %s", origin, t.UserID)
	}
	if err := s.rooms.CheckServerACL(t.RoomID, origin); err != nil {
		return err
	}
	if s.eph == nil {
		return nil
	}
	return s.eph.SetRemoteTyping(ctx, t.RoomID, t.UserID, t.Typing, 30*time.Second)
}

func (s *Service) receiptEDU(ctx context.Context, origin string, c json.RawMessage) error {
	var rooms map[id.RoomID]map[string]map[id.UserID]struct {
		EventIDs []id.EventID `json:"event_ids"`
		Data     struct {
			TS       int64  `json:"ts"`
			ThreadID string `json:"thread_id"`
		} `json:"data"`
	}
	if err := json.Unmarshal(c, &rooms); err != nil {
		return merr.BadJSON("m.receipt: %v", err)
	}
	if s.eph == nil {
		return nil
	}
	for roomID, types := range rooms {
		if err := s.rooms.CheckServerACL(roomID, origin); err != nil {
			s.log.Info("receipts from a server denied by the room's ACL dropped", "room_id", roomID, "origin", origin)
			continue
		}
		for typ, users := range types {
			for user, r := range users {
				if user.Homeserver() != origin || len(r.EventIDs) == 0 {
					continue
				}
				if err := s.eph.PutRemoteReceipt(ctx, roomID, user, typ, r.EventIDs[0], r.Data.ThreadID, r.Data.TS); err != nil {
					s.log.Info("remote receipt not stored", "room_id", roomID, "user", user, "err", err)
				}
			}
		}
	}
	return nil
}

func (s *Service) toDeviceEDU(ctx context.Context, origin string, c json.RawMessage) error {
	var t struct {
		Sender    id.UserID                             `json:"sender"`
		Type      string                                `json:"type"`
		MessageID string                                `json:"message_id"`
		Messages  map[string]map[string]json.RawMessage `json:"messages"`
	}
	if err := json.Unmarshal(c, &t); err != nil {
		return merr.BadJSON("m.direct_to_device: %v", err)
	}
	if t.Sender.Homeserver() != origin {
		return merr.Forbidden("%s cannot speak for %s", origin, t.Sender)
	}
	if s.todev == nil {
		return nil
	}
	return s.todev.SendToDevice(ctx, t.Sender, "", t.Type, t.MessageID, t.Messages)
}
