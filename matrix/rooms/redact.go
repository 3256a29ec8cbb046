package rooms

import (
	"context"
	"encoding/json"
	"errors"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/events"
	"github.com/hearth-home/hearth/matrix/merr"
	"github.com/hearth-home/hearth/matrix/store"
)

// Redact sends an m.room.redaction for target after checking that the sender may redact it:
// its own event, or with at least the room's redact power level.
func (s *Service) Redact(ctx context.Context, roomID id.RoomID, sender id.UserID, target id.EventID, reason string, o SendOpts) (*Appended, error) {
	rv, err := s.Version(roomID)
	if err != nil {
		return nil, err
	}
	if err := s.mayRedact(roomID, sender, target); err != nil {
		return nil, err
	}
	c := map[string]any{}
	if reason != "" {
		c["reason"] = reason
	}
	t := events.Template{Type: "m.room.redaction", Sender: sender}
	if events.Base(rv).RedactsInContent() {
		c["redacts"] = target
	}
	// Older room versions carry redacts at the top level; send both where the version allows.
	t.Redacts = target
	t.Content = content(c)
	return s.Send(ctx, roomID, t, o)
}

// applyRedaction redacts the target of a stored redaction event when it is in the same room.
func (s *Service) applyRedaction(txn *store.Txn, r *room, b *events.Built) error {
	target := ""
	if b.PDU.Redacts != nil {
		target = b.PDU.Redacts.String()
	}
	if target == "" {
		var c struct {
			Redacts string `json:"redacts"`
		}
		_ = json.Unmarshal(b.PDU.Content, &c)
		target = c.Redacts
	}
	pos, err := txn.EventPos(target)
	if errors.Is(err, store.ErrNotFound) {
		return nil // redactions of unknown events are kept and applied if the event arrives
	}
	if err != nil {
		return err
	}
	rec, err := txn.Event(pos)
	if err != nil {
		return err
	}
	if rec.Room != r.nid || rec.Flags&store.FlagRedacted != 0 {
		return nil
	}
	// Since room v3 the auth rules accept every redaction; whether it takes effect is decided
	// here (spec: "Redactions"): the redaction's sender has the redact power level, or is on the
	// same server as the target's sender (that server vouches for its own users; locally the
	// client API checked the user's right before sending).
	target0, err := events.ParseLite(rec.PDU)
	if err != nil {
		return err
	}
	if id.UserID(target0.Sender).Homeserver() != b.PDU.Sender.Homeserver() {
		pl, err := s.powerLevels(txn, r.nid)
		if err != nil {
			return err
		}
		if pl.GetUserLevel(b.PDU.Sender) < pl.Redact() {
			return nil // kept, not applied
		}
	}
	red, err := events.Redact(id.RoomVersion(r.rec.Version), rec.PDU)
	if err != nil {
		return err
	}
	rec.PDU = red
	rec.Flags |= store.FlagRedacted
	rec.Redacted = b.ID.String()
	return txn.ReplaceEvent(pos, rec)
}

// powerLevels loads the room's current power levels with creators applied (v12).
func (s *Service) powerLevels(txn *store.Txn, nid uint64) (*event.PowerLevelsEventContent, error) {
	pl := &event.PowerLevelsEventContent{}
	rec, err := s.currentStateEvent(txn, nid, "m.room.power_levels", "")
	if err != nil {
		return nil, err
	}
	if rec != nil {
		l, err := events.ParseLite(rec.PDU)
		if err != nil {
			return nil, err
		}
		if err := json.Unmarshal(l.Content, pl); err != nil {
			return nil, merr.Internal("room power levels unreadable")
		}
	}
	create, err := s.currentStateEvent(txn, nid, "m.room.create", "")
	if err != nil || create == nil {
		return pl, err
	}
	cl, err := events.ParseLite(create.PDU)
	if err != nil {
		return nil, err
	}
	room, err := txn.Room(nid)
	if err != nil {
		return nil, err
	}
	rv := events.Base(id.RoomVersion(room.Version))
	if rv.PrivilegedRoomCreators() {
		var cc struct {
			Additional []id.UserID `json:"additional_creators"`
		}
		_ = json.Unmarshal(cl.Content, &cc)
		pl.CreateEvent = &event.Event{Sender: id.UserID(cl.Sender), Type: event.StateCreate, Content: event.Content{Parsed: &event.CreateEventContent{AdditionalCreators: cc.Additional, RoomVersion: rv}}}
	} else if rec == nil {
		// No power levels yet: the creator has 100 (auth rules, "if no power levels event").
		if pl.Users == nil {
			pl.Users = map[id.UserID]int{}
		}
		pl.Users[id.UserID(cl.Sender)] = 100
	}
	return pl, nil
}

// PowerLevels returns a room's effective power levels.
func (s *Service) PowerLevels(ctx context.Context, roomID id.RoomID) (*event.PowerLevelsEventContent, error) {
	var pl *event.PowerLevelsEventContent
	err := s.st.View(func(txn *store.Txn) error {
		nid, err := txn.RoomNID(roomID.String())
		if err != nil {
			return err
		}
		pl, err = s.powerLevels(txn, nid)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, merr.NotFound("room %s is not known here", roomID)
	}
	return pl, err
}
