package push

import (
	"context"
	"encoding/json"

	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/rooms"
)

// roomRuleCopy is a user's room-kind rules to carry from a predecessor room to its successor.
type roomRuleCopy struct {
	user     id.UserID
	old, new string
}

// noteUpgradeJoin remembers, when a local user joins a room that replaced another (its create
// event names a predecessor), to copy their room rule for the old room to the new one: a user
// who muted a room keeps it muted after an upgrade. Called by evaluate inside its transaction;
// the copy is written after it.
func (s *Service) noteUpgradeJoin(state map[[2]string]*rooms.Event, user, roomID string) {
	create, ok := state[[2]string{"m.room.create", ""}]
	if !ok {
		return
	}
	var c struct {
		Predecessor struct {
			RoomID string `json:"room_id"`
		} `json:"predecessor"`
	}
	if json.Unmarshal(create.Lite.Content, &c) != nil || c.Predecessor.RoomID == "" {
		return
	}
	s.copyMu.Lock()
	s.copies = append(s.copies, roomRuleCopy{user: id.UserID(user), old: c.Predecessor.RoomID, new: roomID})
	s.copyMu.Unlock()
}

// copyUpgradedRoomRules writes the noted copies. A user without a rule for the old room, or
// with one already for the new room, is left alone.
func (s *Service) copyUpgradedRoomRules() {
	s.copyMu.Lock()
	copies := s.copies
	s.copies = nil
	s.copyMu.Unlock()
	ctx := context.Background()
	for _, c := range copies {
		old, err := s.Rule(ctx, c.user, "room", c.old)
		if err != nil {
			continue // no rule for the old room
		}
		if _, err := s.Rule(ctx, c.user, "room", c.new); err == nil {
			continue
		}
		body, err := json.Marshal(map[string]any{"actions": old.Actions})
		if err != nil {
			continue
		}
		if err := s.PutRule(ctx, c.user, "room", c.new, "", "", body); err != nil {
			s.log.Warn("push: copy room rule to upgraded room", "user", c.user, "room", c.new, "err", err)
			continue
		}
		if !old.Enabled {
			_ = s.SetEnabled(ctx, c.user, "room", c.new, false)
		}
	}
}
