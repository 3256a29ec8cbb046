package rooms

import (
	"context"
	"encoding/json"
	"errors"
	"strings"

	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/events"
	"github.com/hearth-home/hearth/matrix/merr"
	"github.com/hearth-home/hearth/matrix/store"
)

func (s *Service) checkAlias(alias string) error {
	if !strings.HasPrefix(alias, "#") || !strings.Contains(alias, ":") || strings.ContainsAny(alias, " \t\n") || len(alias) > 255 {
		return merr.InvalidParam("%q is not a valid room alias", alias)
	}
	if alias[strings.Index(alias, ":")+1:] != s.server {
		return merr.InvalidParam("room alias must be on this server (%s)", s.server)
	}
	return nil
}

// CreateAlias maps a local alias to a room the sender is joined to.
func (s *Service) CreateAlias(ctx context.Context, sender id.UserID, alias string, roomID id.RoomID) error {
	if err := s.checkAlias(alias); err != nil {
		return err
	}
	return s.st.Update(func(txn *store.Txn) error {
		nid, err := txn.RoomNID(roomID.String())
		if errors.Is(err, store.ErrNotFound) {
			return merr.NotFound("room %s is not known here", roomID)
		}
		if err != nil {
			return err
		}
		if _, err := txn.Alias(alias); err == nil {
			return &merr.Error{Status: 409, Code: "M_UNKNOWN", Message: "room alias " + alias + " already exists"}
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		return txn.PutAlias(alias, nid, store.AliasRecord{RoomID: roomID.String(), Creator: sender.String()})
	})
}

// ResolveAlias returns the room an alias points to.
func (s *Service) ResolveAlias(ctx context.Context, alias string) (id.RoomID, error) {
	var rec store.AliasRecord
	err := s.st.View(func(txn *store.Txn) error {
		var err error
		rec, err = txn.Alias(alias)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return "", merr.NotFound("room alias %s not found", alias)
	}
	return id.RoomID(rec.RoomID), err
}

// DeleteAlias removes an alias if the sender created it, is a server admin, or may change the
// room's canonical alias.
func (s *Service) DeleteAlias(ctx context.Context, sender id.UserID, admin bool, alias string) error {
	if err := s.checkAlias(alias); err != nil {
		return err
	}
	var roomID string
	err := s.st.Update(func(txn *store.Txn) error {
		rec, err := txn.Alias(alias)
		if errors.Is(err, store.ErrNotFound) {
			return merr.NotFound("room alias %s not found", alias)
		}
		if err != nil {
			return err
		}
		nid, err := txn.RoomNID(rec.RoomID)
		if err != nil {
			return err
		}
		if rec.Creator != sender.String() && !admin {
			pl, err := s.powerLevels(txn, nid)
			if err != nil {
				return err
			}
			if pl.GetUserLevel(sender) < pl.GetEventLevel(canonicalAliasType) {
				return merr.Forbidden("you may not delete this alias")
			}
		}
		roomID = rec.RoomID
		return txn.DeleteAlias(alias, nid)
	})
	if err != nil {
		return err
	}
	s.dropFromCanonicalAlias(ctx, sender, id.RoomID(roomID), alias)
	return nil
}

// dropFromCanonicalAlias removes a deleted alias from the room's m.room.canonical_alias, so
// the room stops advertising an alias that no longer resolves. It is sent as the deleting user
// and skipped when they may not change that state: the alias itself is gone either way.
func (s *Service) dropFromCanonicalAlias(ctx context.Context, sender id.UserID, roomID id.RoomID, alias string) {
	cur, err := s.CurrentState(ctx, roomID, "m.room.canonical_alias", "")
	if err != nil || cur == nil {
		return
	}
	var c map[string]any
	if json.Unmarshal(cur.Lite.Content, &c) != nil {
		return
	}
	changed := false
	if c["alias"] == alias {
		delete(c, "alias")
		changed = true
	}
	if alts, ok := c["alt_aliases"].([]any); ok {
		kept := alts[:0]
		for _, a := range alts {
			if a != alias {
				kept = append(kept, a)
			}
		}
		if len(kept) != len(alts) {
			changed = true
			if len(kept) == 0 {
				delete(c, "alt_aliases")
			} else {
				c["alt_aliases"] = kept
			}
		}
	}
	if !changed {
		return
	}
	sk := ""
	if _, err := s.Send(ctx, roomID, events.Template{Type: "m.room.canonical_alias", StateKey: &sk, Sender: sender, Content: content(c)}, SendOpts{}); err != nil {
		s.log.Info("alias deleted; canonical alias left as it was", "room", roomID, "alias", alias, "err", err)
	}
}

// Aliases lists the local aliases of a room.
func (s *Service) Aliases(ctx context.Context, roomID id.RoomID) ([]string, error) {
	var out []string
	err := s.st.View(func(txn *store.Txn) error {
		nid, err := txn.RoomNID(roomID.String())
		if err != nil {
			return err
		}
		out, err = txn.RoomAliases(nid)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, merr.NotFound("room %s is not known here", roomID)
	}
	if out == nil {
		out = []string{}
	}
	return out, err
}

// SetVisibility publishes or hides a room in the directory.
func (s *Service) SetVisibility(ctx context.Context, roomID id.RoomID, public bool) error {
	return s.st.Update(func(txn *store.Txn) error {
		nid, err := txn.RoomNID(roomID.String())
		if errors.Is(err, store.ErrNotFound) {
			return merr.NotFound("room %s is not known here", roomID)
		}
		if err != nil {
			return err
		}
		return txn.SetPublished(nid, public)
	})
}

// Visibility reports whether a room is published.
func (s *Service) Visibility(ctx context.Context, roomID id.RoomID) (bool, error) {
	var pub bool
	err := s.st.View(func(txn *store.Txn) error {
		nid, err := txn.RoomNID(roomID.String())
		if err != nil {
			return err
		}
		pub, err = txn.Published(nid)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return false, merr.NotFound("room %s is not known here", roomID)
	}
	return pub, err
}

var canonicalAliasType = eventType("m.room.canonical_alias")
