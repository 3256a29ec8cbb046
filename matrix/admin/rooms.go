package admin

import (
	"context"
	"encoding/json"
	"errors"
	"sort"
	"strings"

	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/merr"
	"github.com/hearth-home/hearth/matrix/rooms"
	"github.com/hearth-home/hearth/matrix/store"
)

// Room is a room as Synapse's admin API lists it.
type Room struct {
	RoomID             string  `json:"room_id"`
	Name               *string `json:"name"`
	Topic              *string `json:"topic,omitempty"`
	Avatar             *string `json:"avatar,omitempty"`
	CanonicalAlias     *string `json:"canonical_alias"`
	JoinedMembers      int     `json:"joined_members"`
	JoinedLocalMembers int     `json:"joined_local_members"`
	JoinedLocalDevices int     `json:"joined_local_devices,omitempty"`
	Version            string  `json:"version"`
	Creator            string  `json:"creator"`
	Encryption         *string `json:"encryption"`
	Federatable        bool    `json:"federatable"`
	Public             bool    `json:"public"`
	JoinRules          *string `json:"join_rules"`
	GuestAccess        *string `json:"guest_access"`
	HistoryVisibility  *string `json:"history_visibility"`
	StateEvents        int     `json:"state_events"`
	RoomType           *string `json:"room_type"`
	Forgotten          bool    `json:"forgotten,omitempty"`
}

func strp(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// room builds the admin view of one room from its current state.
func (s *Service) room(ctx context.Context, roomID id.RoomID) (*Room, error) {
	state, err := s.rooms.AllCurrentState(ctx, roomID)
	if err != nil {
		return nil, err
	}
	if len(state) == 0 {
		return nil, merr.NotFound("room not found")
	}
	r := &Room{RoomID: roomID.String(), StateEvents: len(state), Federatable: true}
	server := s.acc.ServerName()
	field := func(c json.RawMessage, k string) string {
		var m map[string]any
		_ = json.Unmarshal(c, &m)
		v, _ := m[k].(string)
		return v
	}
	for _, e := range state {
		c := e.Lite.Content
		switch e.Lite.Type {
		case "m.room.create":
			r.Creator = field(c, "creator")
			if r.Creator == "" {
				r.Creator = e.Lite.Sender
			}
			r.Version = field(c, "room_version")
			if r.Version == "" {
				r.Version = "1"
			}
			r.RoomType = strp(field(c, "type"))
			var f struct {
				Federate *bool `json:"m.federate"`
			}
			_ = json.Unmarshal(c, &f)
			r.Federatable = f.Federate == nil || *f.Federate
		case "m.room.name":
			r.Name = strp(field(c, "name"))
		case "m.room.topic":
			r.Topic = strp(rooms.PlainTopic(c))
		case "m.room.avatar":
			r.Avatar = strp(field(c, "url"))
		case "m.room.canonical_alias":
			r.CanonicalAlias = strp(field(c, "alias"))
		case "m.room.encryption":
			r.Encryption = strp(field(c, "algorithm"))
		case "m.room.join_rules":
			r.JoinRules = strp(field(c, "join_rule"))
		case "m.room.guest_access":
			r.GuestAccess = strp(field(c, "guest_access"))
		case "m.room.history_visibility":
			r.HistoryVisibility = strp(field(c, "history_visibility"))
		case "m.room.member":
			if e.Lite.Membership() == "join" {
				r.JoinedMembers++
				if id.UserID(*e.Lite.StateKey).Homeserver() == server {
					r.JoinedLocalMembers++
				}
			}
		}
	}
	if r.Public, err = s.rooms.Visibility(ctx, roomID); err != nil {
		return nil, err
	}
	return r, nil
}

// RoomQuery is GET /_synapse/admin/v1/rooms.
type RoomQuery struct {
	From       int
	Limit      int
	OrderBy    string // name (default), size/joined_members, joined_local_members, version, creator, state_events, ...
	Backwards  bool
	SearchTerm string
}

// Rooms lists every room the server knows.
func (s *Service) Rooms(ctx context.Context, q RoomQuery) (list []*Room, total int, err error) {
	var ids []id.RoomID
	if err := s.st.View(func(txn *store.Txn) error {
		return txn.Rooms(func(_ uint64, rec *store.RoomRecord) (bool, error) {
			ids = append(ids, id.RoomID(rec.ID))
			return true, nil
		})
	}); err != nil {
		return nil, 0, err
	}
	term := strings.ToLower(q.SearchTerm)
	list = []*Room{}
	for _, rid := range ids {
		r, err := s.room(ctx, rid)
		if err != nil {
			if merrIsNotFound(err) {
				continue
			}
			return nil, 0, err
		}
		if term != "" && !strings.Contains(strings.ToLower(deref(r.Name)), term) && !strings.Contains(strings.ToLower(deref(r.CanonicalAlias)), term) && !strings.Contains(strings.ToLower(r.RoomID), term) {
			continue
		}
		list = append(list, r)
	}
	var less func(a, b *Room) bool
	switch q.OrderBy {
	case "", "name":
		less = func(a, b *Room) bool { return strings.ToLower(deref(a.Name)) < strings.ToLower(deref(b.Name)) }
	case "size", "joined_members":
		less = func(a, b *Room) bool { return a.JoinedMembers > b.JoinedMembers }
	case "joined_local_members":
		less = func(a, b *Room) bool { return a.JoinedLocalMembers > b.JoinedLocalMembers }
	case "state_events":
		less = func(a, b *Room) bool { return a.StateEvents > b.StateEvents }
	case "version":
		less = func(a, b *Room) bool { return a.Version < b.Version }
	case "creator":
		less = func(a, b *Room) bool { return a.Creator < b.Creator }
	case "canonical_alias":
		less = func(a, b *Room) bool { return deref(a.CanonicalAlias) < deref(b.CanonicalAlias) }
	case "public":
		less = func(a, b *Room) bool { return a.Public && !b.Public }
	default:
		return nil, 0, merr.InvalidParam("unknown order_by %q", q.OrderBy)
	}
	sort.SliceStable(list, func(i, j int) bool {
		if q.Backwards {
			return less(list[j], list[i])
		}
		return less(list[i], list[j])
	})
	total = len(list)
	if q.From >= len(list) {
		return []*Room{}, total, nil
	}
	list = list[q.From:]
	if q.Limit > 0 && len(list) > q.Limit {
		list = list[:q.Limit]
	}
	return list, total, nil
}

// GetRoom returns one room.
func (s *Service) GetRoom(ctx context.Context, roomID string) (*Room, error) {
	if !strings.HasPrefix(roomID, "!") {
		return nil, merr.InvalidParam("invalid room ID %q", roomID)
	}
	r, err := s.room(ctx, id.RoomID(roomID))
	if errors.Is(err, store.ErrNotFound) {
		return nil, merr.NotFound("room not found")
	}
	return r, err
}

// Members lists the joined members of a room.
func (s *Service) Members(ctx context.Context, roomID string) ([]string, error) {
	if _, err := s.GetRoom(ctx, roomID); err != nil {
		return nil, err
	}
	m, err := s.rooms.Members(ctx, id.RoomID(roomID), "join")
	if m == nil {
		m = []string{}
	}
	sort.Strings(m)
	return m, err
}

// DeleteResult is the answer to DELETE /_synapse/admin/v1/rooms/{roomId}.
type DeleteResult struct {
	KickedUsers       []string `json:"kicked_users"`
	FailedToKickUsers []string `json:"failed_to_kick_users"`
	LocalAliases      []string `json:"local_aliases"`
	NewRoomID         *string  `json:"new_room_id"`
}

// DeleteRoom shuts a room down on this server: every local member (joined, invited or
// knocking) leaves, its local aliases are removed and it is taken out of the directory. The
// events stay (purging history is a separate operation).
func (s *Service) DeleteRoom(ctx context.Context, admin id.UserID, roomID string) (*DeleteResult, error) {
	if _, err := s.GetRoom(ctx, roomID); err != nil {
		return nil, err
	}
	rid := id.RoomID(roomID)
	res := &DeleteResult{KickedUsers: []string{}, FailedToKickUsers: []string{}, LocalAliases: []string{}}
	evs, err := s.rooms.MemberEvents(ctx, rid)
	if err != nil {
		return nil, err
	}
	for _, e := range evs {
		u := id.UserID(*e.Lite.StateKey)
		m := e.Lite.Membership()
		if !s.rooms.IsLocal(u) || (m != "join" && m != "invite" && m != "knock") {
			continue
		}
		if _, err := s.rooms.ChangeMembership(ctx, rid, rooms.MemberChange{Sender: u, Target: u, Membership: "leave", Reason: "room deleted by the server administrator", System: true}); err != nil {
			res.FailedToKickUsers = append(res.FailedToKickUsers, u.String())
			continue
		}
		res.KickedUsers = append(res.KickedUsers, u.String())
	}
	aliases, err := s.rooms.Aliases(ctx, rid)
	if err != nil {
		return nil, err
	}
	for _, a := range aliases {
		if err := s.rooms.DeleteAlias(ctx, admin, true, a); err == nil {
			res.LocalAliases = append(res.LocalAliases, a)
		}
	}
	if err := s.rooms.SetVisibility(ctx, rid, false); err != nil {
		return nil, err
	}
	return res, nil
}
