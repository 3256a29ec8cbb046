package rooms

import (
	"context"
	"encoding/json"
	"encoding/json/jsontext"
	"errors"

	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/events"
	"github.com/hearth-home/hearth/matrix/merr"
	"github.com/hearth-home/hearth/matrix/store"
)

// SendRedaction sends an m.room.redaction event whose content the client wrote (PUT /send with
// that type), keeping every content field. content must be a JSON object naming the target in
// "redacts". Rooms before v11 carry redacts at the top level, so it is moved there; the sender
// must be allowed to redact the target exactly as with Redact.
func (s *Service) SendRedaction(ctx context.Context, roomID id.RoomID, sender id.UserID, content jsontext.Value, o SendOpts) (*Appended, error) {
	rv, err := s.Version(roomID)
	if err != nil {
		return nil, err
	}
	var c map[string]json.RawMessage
	if err := json.Unmarshal(content, &c); err != nil || c == nil {
		return nil, merr.BadJSON("content must be a JSON object")
	}
	var target id.EventID
	if raw, ok := c["redacts"]; !ok || json.Unmarshal(raw, &target) != nil || len(target) < 2 || target[0] != '$' {
		return nil, merr.BadJSON("content.redacts must be the ID of the event to redact")
	}
	if err := s.mayRedact(roomID, sender, target); err != nil {
		return nil, err
	}
	if !events.Base(rv).RedactsInContent() {
		delete(c, "redacts")
	}
	b, err := json.Marshal(c)
	if err != nil {
		return nil, merr.BadJSON("content cannot be encoded: %v", err)
	}
	return s.Send(ctx, roomID, events.Template{Type: "m.room.redaction", Sender: sender, Content: b, Redacts: target}, o)
}

// mayRedact applies Redact's rule: the sender's own event, or the room's redact power level.
func (s *Service) mayRedact(roomID id.RoomID, sender id.UserID, target id.EventID) error {
	return s.st.View(func(txn *store.Txn) error {
		pos, err := txn.EventPos(target.String())
		if errors.Is(err, store.ErrNotFound) {
			// An event this server never received (another server's, in a federated
			// room) may still be redacted by someone with the redact power level: the
			// redaction is kept and applies if the event arrives.
			nid, nerr := txn.RoomNID(roomID.String())
			if nerr != nil {
				return merr.NotFound("event %s not found", target)
			}
			pl, perr := s.powerLevels(txn, nid)
			if perr != nil || pl.GetUserLevel(sender) < pl.Redact() {
				return merr.NotFound("event %s not found", target)
			}
			return nil
		}
		if err != nil {
			return err
		}
		ev, err := loadEvent(txn, pos, "")
		if err != nil {
			return err
		}
		if ev.RoomID != roomID.String() {
			return merr.NotFound("event %s not found in this room", target)
		}
		if ev.Lite.Sender == sender.String() {
			return nil
		}
		pl, err := s.powerLevels(txn, ev.Rec.Room)
		if err != nil {
			return err
		}
		if pl.GetUserLevel(sender) < pl.Redact() {
			return merr.Forbidden("you may not redact events sent by others")
		}
		return nil
	})
}
