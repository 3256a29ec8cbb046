package rooms

import (
	"context"
	"encoding/json"
	"errors"

	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/merr"
	"github.com/hearth-home/hearth/matrix/store"
)

// Summary is a room as the published room directory shows it (the spec's PublishedRoomsChunk),
// plus the fields the room summary API adds on top of it.
type Summary struct {
	RoomID           string `json:"room_id"`
	Name             string `json:"name,omitempty"`
	Topic            string `json:"topic,omitempty"`
	CanonicalAlias   string `json:"canonical_alias,omitempty"`
	AvatarURL        string `json:"avatar_url,omitempty"`
	NumJoinedMembers int    `json:"num_joined_members"`
	WorldReadable    bool   `json:"world_readable"`
	GuestCanJoin     bool   `json:"guest_can_join"`
	JoinRule         string `json:"join_rule,omitempty"`
	RoomType         string `json:"room_type,omitempty"`

	// Room summary API only (not part of a /publicRooms chunk).
	AllowedRoomIDs []string `json:"-"`
	Encryption     string   `json:"-"`
	RoomVersion    string   `json:"-"`
}

// RoomSummary summarises one room from its current state.
func (s *Service) RoomSummary(ctx context.Context, roomID id.RoomID) (*Summary, error) {
	var out *Summary
	err := s.st.View(func(txn *store.Txn) error {
		nid, err := txn.RoomNID(roomID.String())
		if err != nil {
			return err
		}
		out, err = s.summary(txn, nid)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, merr.NotFound("room %s is not known here", roomID)
	}
	return out, err
}

// summary reads the handful of state events a summary needs, and counts joined members by
// walking the current state index (member events only are loaded).
func (s *Service) summary(txn *store.Txn, nid uint64) (*Summary, error) {
	rec, err := txn.Room(nid)
	if err != nil {
		return nil, err
	}
	sum := &Summary{RoomID: rec.ID, RoomVersion: rec.Version, JoinRule: "invite"}
	read := func(typ string, v any) (bool, error) {
		ev, err := s.currentStateEvent(txn, nid, typ, "")
		if err != nil || ev == nil {
			return false, err
		}
		var p struct {
			Content json.RawMessage `json:"content"`
		}
		if json.Unmarshal(ev.PDU, &p) != nil {
			return false, nil
		}
		// Content of the wrong shape (a client may send anything) is treated as absent.
		return json.Unmarshal(p.Content, v) == nil, nil
	}
	var create struct {
		Type any `json:"type"`
	}
	var name struct {
		Name any `json:"name"`
	}
	var alias struct {
		Alias any `json:"alias"`
	}
	var avatar struct {
		URL any `json:"url"`
	}
	var jr struct {
		JoinRule any `json:"join_rule"`
		Allow    []struct {
			Type   any `json:"type"`
			RoomID any `json:"room_id"`
		} `json:"allow"`
	}
	var hv struct {
		HistoryVisibility any `json:"history_visibility"`
	}
	var ga struct {
		GuestAccess any `json:"guest_access"`
	}
	var enc struct {
		Algorithm any `json:"algorithm"`
	}
	var topic json.RawMessage
	steps := []struct {
		typ string
		v   any
	}{
		{"m.room.create", &create}, {"m.room.name", &name}, {"m.room.canonical_alias", &alias},
		{"m.room.avatar", &avatar}, {"m.room.join_rules", &jr}, {"m.room.history_visibility", &hv},
		{"m.room.guest_access", &ga}, {"m.room.encryption", &enc}, {"m.room.topic", &topic},
	}
	for _, st := range steps {
		if _, err := read(st.typ, st.v); err != nil {
			return nil, err
		}
	}
	sum.RoomType = str(create.Type)
	sum.Name = str(name.Name)
	sum.CanonicalAlias = str(alias.Alias)
	sum.AvatarURL = str(avatar.URL)
	if r := str(jr.JoinRule); r != "" {
		sum.JoinRule = r
	}
	if sum.JoinRule == "restricted" || sum.JoinRule == "knock_restricted" {
		for _, a := range jr.Allow {
			if str(a.Type) == "m.room_membership" && str(a.RoomID) != "" {
				sum.AllowedRoomIDs = append(sum.AllowedRoomIDs, str(a.RoomID))
			}
		}
	}
	sum.WorldReadable = str(hv.HistoryVisibility) == "world_readable"
	sum.GuestCanJoin = str(ga.GuestAccess) == "can_join"
	sum.Encryption = str(enc.Algorithm)
	sum.Topic = PlainTopic(topic)
	sum.NumJoinedMembers, err = joinedCount(txn, nid)
	if err != nil {
		return nil, err
	}
	return sum, nil
}

// joinedCount counts the room's joined members from its current state.
func joinedCount(txn *store.Txn, nid uint64) (int, error) {
	n := 0
	err := txn.AllCurrentState(nid, func(sk, pos uint64) (bool, error) {
		typ, _, err := txn.StateKeyOf(sk)
		if err != nil {
			return false, err
		}
		if typ != "m.room.member" {
			return true, nil
		}
		ev, err := txn.Event(pos)
		if err != nil {
			return false, err
		}
		var p struct {
			Content struct {
				Membership any `json:"membership"`
			} `json:"content"`
		}
		_ = json.Unmarshal(ev.PDU, &p)
		if str(p.Content.Membership) == "join" {
			n++
		}
		return true, nil
	})
	return n, err
}

// PlainTopic extracts the plain-text topic from m.room.topic content: the first text/plain
// representation in m.topic (a missing mimetype means text/plain), or else the legacy topic
// field. Empty when the room has no plain-text topic.
func PlainTopic(content json.RawMessage) string {
	if len(content) == 0 {
		return ""
	}
	var c struct {
		Topic  any `json:"topic"`
		MTopic *struct {
			Text []struct {
				Mimetype any `json:"mimetype"`
				Body     any `json:"body"`
			} `json:"m.text"`
		} `json:"m.topic"`
	}
	if json.Unmarshal(content, &c) != nil {
		return ""
	}
	if c.MTopic != nil && len(c.MTopic.Text) > 0 {
		for _, t := range c.MTopic.Text {
			mt := str(t.Mimetype)
			if mt == "" || mt == "text/plain" {
				return str(t.Body)
			}
		}
		return ""
	}
	return str(c.Topic)
}

// str returns v if it is a string, else "".
func str(v any) string {
	s, _ := v.(string)
	return s
}
