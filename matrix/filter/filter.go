// Package filter parses Matrix filters (POST /user/{id}/filter, the filter parameter of /sync,
// /messages and /context) and matches events against them.
package filter

import (
	"encoding/json"
	"strings"

	"github.com/hearth-home/hearth/matrix/merr"
)

// EventFilter is the spec's EventFilter.
type EventFilter struct {
	Limit      *int     `json:"limit,omitempty"`
	Types      []string `json:"types,omitempty"`
	NotTypes   []string `json:"not_types,omitempty"`
	Senders    []string `json:"senders,omitempty"`
	NotSenders []string `json:"not_senders,omitempty"`
}

// RoomEventFilter is the spec's RoomEventFilter.
type RoomEventFilter struct {
	EventFilter
	Rooms                     []string `json:"rooms,omitempty"`
	NotRooms                  []string `json:"not_rooms,omitempty"`
	ContainsURL               *bool    `json:"contains_url,omitempty"`
	LazyLoadMembers           bool     `json:"lazy_load_members,omitempty"`
	IncludeRedundantMembers   bool     `json:"include_redundant_members,omitempty"`
	UnreadThreadNotifications bool     `json:"unread_thread_notifications,omitempty"`
	// RelTypes and NotRelTypes select events by their m.relates_to rel_type (MSC3874,
	// unstable prefix): with RelTypes only related events of those types pass.
	RelTypes    []string `json:"org.matrix.msc3874.rel_types,omitempty"`
	NotRelTypes []string `json:"org.matrix.msc3874.not_rel_types,omitempty"`
}

// RoomFilter is the spec's RoomFilter.
type RoomFilter struct {
	Rooms        []string         `json:"rooms,omitempty"`
	NotRooms     []string         `json:"not_rooms,omitempty"`
	IncludeLeave bool             `json:"include_leave,omitempty"`
	Timeline     *RoomEventFilter `json:"timeline,omitempty"`
	State        *RoomEventFilter `json:"state,omitempty"`
	Ephemeral    *RoomEventFilter `json:"ephemeral,omitempty"`
	AccountData  *RoomEventFilter `json:"account_data,omitempty"`
}

// Filter is the spec's Filter.
type Filter struct {
	EventFields []string     `json:"event_fields,omitempty"`
	EventFormat string       `json:"event_format,omitempty"`
	Presence    *EventFilter `json:"presence,omitempty"`
	AccountData *EventFilter `json:"account_data,omitempty"`
	Room        *RoomFilter  `json:"room,omitempty"`
}

// Parse decodes and validates a filter.
func Parse(b []byte) (*Filter, error) {
	var f Filter
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, merr.BadJSON("invalid filter: %v", err)
	}
	if f.EventFormat != "" && f.EventFormat != "client" && f.EventFormat != "federation" {
		return nil, merr.BadJSON("event_format must be client or federation")
	}
	if err := f.validate(); err != nil {
		return nil, err
	}
	return &f, nil
}

// validate checks the identifiers a filter names: room lists hold room IDs, sender lists user
// IDs (the spec's filter definition types them so).
func (f *Filter) validate() error {
	checkRooms := func(where string, ids []string) error {
		for _, r := range ids {
			if len(r) < 2 || r[0] != '!' {
				return merr.BadJSON("%s: %q is not a room ID", where, r)
			}
		}
		return nil
	}
	checkUsers := func(where string, ids []string) error {
		for _, u := range ids {
			if len(u) < 2 || u[0] != '@' || !strings.Contains(u, ":") {
				return merr.BadJSON("%s: %q is not a user ID", where, u)
			}
		}
		return nil
	}
	checkEvent := func(where string, e *EventFilter) error {
		if e == nil {
			return nil
		}
		if err := checkUsers(where+".senders", e.Senders); err != nil {
			return err
		}
		return checkUsers(where+".not_senders", e.NotSenders)
	}
	checkRoomEvent := func(where string, e *RoomEventFilter) error {
		if e == nil {
			return nil
		}
		if err := checkEvent(where, &e.EventFilter); err != nil {
			return err
		}
		if err := checkRooms(where+".rooms", e.Rooms); err != nil {
			return err
		}
		return checkRooms(where+".not_rooms", e.NotRooms)
	}
	if err := checkEvent("presence", f.Presence); err != nil {
		return err
	}
	if err := checkEvent("account_data", f.AccountData); err != nil {
		return err
	}
	if r := f.Room; r != nil {
		if err := checkRooms("room.rooms", r.Rooms); err != nil {
			return err
		}
		if err := checkRooms("room.not_rooms", r.NotRooms); err != nil {
			return err
		}
		for name, e := range map[string]*RoomEventFilter{"room.timeline": r.Timeline, "room.state": r.State, "room.ephemeral": r.Ephemeral, "room.account_data": r.AccountData} {
			if err := checkRoomEvent(name, e); err != nil {
				return err
			}
		}
	}
	return nil
}

// ParseRoomEventFilter decodes the filter parameter of /messages and /context.
func ParseRoomEventFilter(b []byte) (*RoomEventFilter, error) {
	var f RoomEventFilter
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, merr.BadJSON("invalid filter: %v", err)
	}
	return &f, nil
}

func matchType(pattern, t string) bool {
	if strings.HasSuffix(pattern, "*") {
		return strings.HasPrefix(t, strings.TrimSuffix(pattern, "*"))
	}
	return pattern == t
}

func anyMatch(patterns []string, t string) bool {
	for _, p := range patterns {
		if matchType(p, t) {
			return true
		}
	}
	return false
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Match reports whether an event passes an EventFilter.
func (f *EventFilter) Match(typ, sender string) bool {
	if f == nil {
		return true
	}
	if f.Types != nil && !anyMatch(f.Types, typ) {
		return false
	}
	if anyMatch(f.NotTypes, typ) {
		return false
	}
	if f.Senders != nil && !contains(f.Senders, sender) {
		return false
	}
	return !contains(f.NotSenders, sender)
}

// Match reports whether an event passes a RoomEventFilter. content may be nil when the filter
// has no contains_url or rel_types clause.
func (f *RoomEventFilter) Match(roomID, typ, sender string, content json.RawMessage) bool {
	if f == nil {
		return true
	}
	if !f.EventFilter.Match(typ, sender) || !f.MatchRoom(roomID) {
		return false
	}
	if f.ContainsURL != nil {
		var c map[string]json.RawMessage
		_ = json.Unmarshal(content, &c)
		_, has := c["url"]
		if has != *f.ContainsURL {
			return false
		}
	}
	if f.RelTypes != nil || len(f.NotRelTypes) > 0 {
		var c struct {
			RelatesTo struct {
				RelType string `json:"rel_type"`
			} `json:"m.relates_to"`
		}
		_ = json.Unmarshal(content, &c)
		rel := c.RelatesTo.RelType
		if f.RelTypes != nil && (rel == "" || !contains(f.RelTypes, rel)) {
			return false
		}
		if rel != "" && contains(f.NotRelTypes, rel) {
			return false
		}
	}
	return true
}

// MatchRoom applies the rooms/not_rooms clauses.
func (f *RoomEventFilter) MatchRoom(roomID string) bool {
	if f == nil {
		return true
	}
	if f.Rooms != nil && !contains(f.Rooms, roomID) {
		return false
	}
	return !contains(f.NotRooms, roomID)
}

// MatchRoom applies a RoomFilter's rooms/not_rooms clauses.
func (f *RoomFilter) MatchRoom(roomID string) bool {
	if f == nil {
		return true
	}
	if f.Rooms != nil && !contains(f.Rooms, roomID) {
		return false
	}
	return !contains(f.NotRooms, roomID)
}

// LimitOr returns the filter's limit or def.
func (f *RoomEventFilter) LimitOr(def int) int {
	if f == nil || f.Limit == nil {
		return def
	}
	if *f.Limit < 0 {
		return 0
	}
	return *f.Limit
}
