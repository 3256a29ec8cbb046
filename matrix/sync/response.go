package sync

import (
	"encoding/json"

	"github.com/hearth-home/hearth/matrix/events"
)

// Response is the /sync response body.
type Response struct {
	NextBatch   string         `json:"next_batch"`
	Rooms       Rooms          `json:"rooms"`
	AccountData EventList      `json:"account_data"`
	Presence    EventList      `json:"presence"`
	ToDevice    EventList      `json:"to_device"`
	DeviceLists DeviceLists    `json:"device_lists"`
	OTKCount    map[string]int `json:"device_one_time_keys_count"`
	// FallbackKeys is device_unused_fallback_key_types; nil is omitted for servers without E2EE.
	FallbackKeys []string `json:"device_unused_fallback_key_types,omitzero"`

	upto uint64 // the stream position the response was read up to (next_batch's)
}

// Rooms groups rooms by the user's membership.
type Rooms struct {
	Join   map[string]*JoinedRoom  `json:"join"`
	Invite map[string]*InvitedRoom `json:"invite,omitempty"` // omitted when empty: a hidden invite leaves no trace
	Leave  map[string]*LeftRoom    `json:"leave"`
	Knock  map[string]*KnockedRoom `json:"knock"`
}

// EventList is {"events": [...]}.
type EventList struct {
	Events []any `json:"events"`
}

// DeviceLists is the E2EE device-list block.
type DeviceLists struct {
	Changed []string `json:"changed,omitempty"`
	Left    []string `json:"left,omitempty"`
}

// Timeline is a room timeline slice.
type Timeline struct {
	Events    []*events.ClientEvent `json:"events"`
	Limited   bool                  `json:"limited"`
	PrevBatch string                `json:"prev_batch,omitempty"`
}

// StateList is {"events": [...]} of client events.
type StateList struct {
	Events []*events.ClientEvent `json:"events"`
}

// Summary is the room summary.
type Summary struct {
	Heroes  []string `json:"m.heroes,omitempty"`
	Joined  *int     `json:"m.joined_member_count,omitempty"`
	Invited *int     `json:"m.invited_member_count,omitempty"`
}

// Unread is unread_notifications.
type Unread struct {
	Highlight    int `json:"highlight_count"`
	Notification int `json:"notification_count"`
}

// JoinedRoom is one joined room's update.
type JoinedRoom struct {
	Summary Summary `json:"summary"`
	// State is omitted, and StateAfter set, when the client asked for use_state_after.
	State       StateList  `json:"state,omitzero"`
	StateAfter  *StateList `json:"state_after,omitempty"`
	Timeline    Timeline   `json:"timeline"`
	Ephemeral   EventList  `json:"ephemeral"`
	AccountData EventList  `json:"account_data"`
	Unread      Unread     `json:"unread_notifications"`
	// UnreadThread is unread_thread_notifications, keyed by thread root (relations.go).
	UnreadThread map[string]Unread `json:"unread_thread_notifications,omitempty"`
}

// InvitedRoom is an invite (or a knock).
type InvitedRoom struct {
	InviteState struct {
		Events []events.StrippedState `json:"events"`
	} `json:"invite_state"`
}

// KnockedRoom is a room the user knocked on: the same stripped state, under knock_state.
type KnockedRoom struct {
	KnockState struct {
		Events []events.StrippedState `json:"events"`
	} `json:"knock_state"`
}

// LeftRoom is a room the user left or was removed from.
type LeftRoom struct {
	State       StateList  `json:"state,omitzero"`
	StateAfter  *StateList `json:"state_after,omitempty"`
	Timeline    Timeline   `json:"timeline"`
	AccountData EventList  `json:"account_data"`
}

func newResponse() *Response {
	return &Response{
		Rooms:       Rooms{Join: map[string]*JoinedRoom{}, Invite: map[string]*InvitedRoom{}, Leave: map[string]*LeftRoom{}, Knock: map[string]*KnockedRoom{}},
		AccountData: EventList{Events: []any{}},
		Presence:    EventList{Events: []any{}},
		ToDevice:    EventList{Events: []any{}},
		OTKCount:    map[string]int{},
	}
}

func (r *Response) empty() bool {
	return len(r.Rooms.Join) == 0 && len(r.Rooms.Invite) == 0 && len(r.Rooms.Leave) == 0 && len(r.Rooms.Knock) == 0 &&
		len(r.AccountData.Events) == 0 && len(r.ToDevice.Events) == 0 && len(r.DeviceLists.Changed) == 0 && len(r.DeviceLists.Left) == 0 &&
		len(r.Presence.Events) == 0
}

// accountDataEvent is {type, content}.
type accountDataEvent struct {
	Type    string          `json:"type"`
	Content json.RawMessage `json:"content"`
}

func emptyJoined() *JoinedRoom {
	return &JoinedRoom{
		State:       StateList{Events: []*events.ClientEvent{}},
		Timeline:    Timeline{Events: []*events.ClientEvent{}},
		Ephemeral:   EventList{Events: []any{}},
		AccountData: EventList{Events: []any{}},
	}
}
