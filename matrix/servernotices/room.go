package servernotices

import (
	"context"
	"encoding/json"
	"encoding/json/jsontext"
	"fmt"

	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/rooms"
	"github.com/hearth-home/hearth/matrix/store"
)

// Tag is the room tag that marks a notices room in the recipient's account data.
const Tag = "m.server_notice"

// roomFor returns the recipient's notices room with the recipient invited or joined, making
// the room on the first notice. The caller holds the recipient's lock.
func (s *Service) roomFor(ctx context.Context, user id.UserID) (id.RoomID, error) {
	roomID, cur, err := s.findRoom(ctx, user)
	if err != nil {
		return "", err
	}
	if roomID == "" {
		if roomID, err = s.createRoom(ctx, user); err != nil {
			return "", err
		}
	} else if cur != "join" && cur != "invite" {
		// The recipient left (allowed once joined): a new notice invites them back into the
		// same room, so the history of notices stays in one place.
		if _, err := s.rooms.ChangeMembership(ctx, roomID, rooms.MemberChange{Sender: s.system, Target: user, Membership: "invite"}); err != nil {
			return "", fmt.Errorf("server notices: invite %s to %s again: %w", user, roomID, err)
		}
	}
	if err := s.tagRoom(ctx, user, roomID); err != nil {
		return "", err
	}
	s.mu.Lock()
	s.byUser[user] = roomID
	s.mu.Unlock()
	return roomID, nil
}

// findRoom finds the recipient's notices room and their membership in it ("" room: none yet).
// A notices room is one the system user is joined to and the recipient has a membership in.
func (s *Service) findRoom(ctx context.Context, user id.UserID) (id.RoomID, string, error) {
	s.mu.Lock()
	cached := s.byUser[user]
	s.mu.Unlock()
	if cached != "" {
		if cur, ok, err := s.noticesMembership(ctx, cached, user); err != nil || ok {
			return cached, cur, err
		}
	}
	joined, err := s.rooms.JoinedRooms(ctx, s.system)
	if err != nil {
		return "", "", fmt.Errorf("server notices: rooms of %s: %w", s.system, err)
	}
	for _, r := range joined {
		cur, ok, err := s.noticesMembership(ctx, r, user)
		if err != nil {
			return "", "", err
		}
		if ok {
			return r, cur, nil
		}
	}
	return "", "", nil
}

// noticesMembership reports the user's membership in a room and whether the room is still the
// user's notices room (the system user joined, the user with some membership).
func (s *Service) noticesMembership(ctx context.Context, roomID id.RoomID, user id.UserID) (string, bool, error) {
	if sys, err := s.isNoticesRoom(ctx, roomID); err != nil || !sys {
		return "", false, err
	}
	cur, _, err := s.rooms.Membership(ctx, roomID, user)
	if err != nil {
		return "", false, fmt.Errorf("server notices: membership of %s in %s: %w", user, roomID, err)
	}
	return cur, cur != "", nil
}

// isNoticesRoom reports whether the system user is joined to the room. It joins no room it did
// not make (inviting it is refused), so that makes the room a notices room.
func (s *Service) isNoticesRoom(ctx context.Context, roomID id.RoomID) (bool, error) {
	m, _, err := s.rooms.Membership(ctx, roomID, s.system)
	if isNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("server notices: membership of %s in %s: %w", s.system, roomID, err)
	}
	return m == "join", nil
}

// createRoom makes a notices room with the recipient invited, in one transaction.
func (s *Service) createRoom(ctx context.Context, user id.UserID) (id.RoomID, error) {
	req := rooms.CreateRequest{
		Creator: s.system,
		Preset:  "private_chat",
		Invite:  []id.UserID{user},
		// The room never leaves this server.
		CreationContent: map[string]any{"m.federate": false},
		// Below every default level: the recipient can read and leave, nothing more (no
		// messages, invites or state), as on Synapse.
		PowerLevelOverride: map[string]any{"users_default": -10},
	}
	if s.cfg.RoomName != "" {
		name := s.cfg.RoomName
		req.Name = &name
	}
	if s.cfg.RoomTopic != "" {
		topic := s.cfg.RoomTopic
		req.Topic = &topic
	}
	if s.cfg.RoomAvatarURL != "" {
		b, err := json.Marshal(map[string]string{"url": s.cfg.RoomAvatarURL})
		if err != nil {
			return "", fmt.Errorf("server notices: room avatar: %w", err)
		}
		req.InitialState = append(req.InitialState, rooms.StateEvent{Type: "m.room.avatar", Content: jsontext.Value(b)})
	}
	roomID, err := s.rooms.CreateRoom(ctx, req)
	if err != nil {
		return "", fmt.Errorf("server notices: create room for %s: %w", user, err)
	}
	s.log.Info("server notices room created", "user", user, "room", roomID)
	return roomID, nil
}

// tagRoom adds the m.server_notice tag to the recipient's tags of the room, keeping others.
func (s *Service) tagRoom(ctx context.Context, user id.UserID, roomID id.RoomID) error {
	var nid uint64
	if err := s.st.View(func(txn *store.Txn) error {
		var err error
		nid, err = txn.RoomNID(roomID.String())
		return err
	}); err != nil {
		return fmt.Errorf("server notices: room %s: %w", roomID, err)
	}
	var cur struct {
		Tags map[string]json.RawMessage `json:"tags"`
	}
	raw, err := s.acc.AccountData(ctx, user, nid, "m.tag")
	switch {
	case isNotFound(err):
	case err != nil:
		return fmt.Errorf("server notices: tags of %s in %s: %w", user, roomID, err)
	default:
		// A broken stored value is replaced rather than failing every later notice.
		_ = json.Unmarshal(raw, &cur)
	}
	if _, ok := cur.Tags[Tag]; ok {
		return nil
	}
	if cur.Tags == nil {
		cur.Tags = map[string]json.RawMessage{}
	}
	cur.Tags[Tag] = json.RawMessage(`{}`)
	b, err := json.Marshal(map[string]any{"tags": cur.Tags})
	if err != nil {
		return fmt.Errorf("server notices: encode tags: %w", err)
	}
	if err := s.acc.PutServerAccountData(ctx, user, nid, roomID.String(), "m.tag", b); err != nil {
		return fmt.Errorf("server notices: tag %s for %s: %w", roomID, user, err)
	}
	return nil
}
