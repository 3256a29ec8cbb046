package events

import (
	"encoding/json"
	"fmt"
)

// Lite is the part of a PDU the client API and sync need, decoded without the full PDU machinery.
type Lite struct {
	Type           string          `json:"type"`
	StateKey       *string         `json:"state_key,omitempty"`
	Sender         string          `json:"sender"`
	Content        json.RawMessage `json:"content"`
	OriginServerTS int64           `json:"origin_server_ts"`
	RoomID         string          `json:"room_id,omitempty"`
	Redacts        string          `json:"redacts,omitempty"`
	Depth          int64           `json:"depth"`
	PrevEvents     EventRefs       `json:"prev_events"` // v1.go: both event formats
	AuthEvents     EventRefs       `json:"auth_events"`
}

// ParseLite decodes the client-relevant fields of a stored PDU.
func ParseLite(b []byte) (*Lite, error) {
	var l Lite
	if err := json.Unmarshal(b, &l); err != nil {
		return nil, fmt.Errorf("decode event: %w", err)
	}
	return &l, nil
}

// IsState reports whether the event is a state event.
func (l *Lite) IsState() bool { return l.StateKey != nil }

// Membership reads content.membership of an m.room.member event.
func (l *Lite) Membership() string {
	var c struct {
		Membership string `json:"membership"`
	}
	_ = json.Unmarshal(l.Content, &c)
	return c.Membership
}

// ClientEvent is the client-server API's event shape.
type ClientEvent struct {
	Content        json.RawMessage `json:"content"`
	EventID        string          `json:"event_id"`
	OriginServerTS int64           `json:"origin_server_ts"`
	RoomID         string          `json:"room_id,omitempty"`
	Sender         string          `json:"sender"`
	StateKey       *string         `json:"state_key,omitempty"`
	Type           string          `json:"type"`
	Redacts        string          `json:"redacts,omitempty"`
	Unsigned       *Unsigned       `json:"unsigned,omitempty"`
}

// Unsigned is the unsigned block of a client event.
type Unsigned struct {
	Age             int64           `json:"age,omitempty"`
	TransactionID   string          `json:"transaction_id,omitempty"`
	PrevContent     json.RawMessage `json:"prev_content,omitempty"`
	PrevSender      string          `json:"prev_sender,omitempty"`
	ReplacesState   string          `json:"replaces_state,omitempty"`
	RedactedBecause *ClientEvent    `json:"redacted_because,omitempty"`
	Membership      string          `json:"membership,omitempty"`
	InviteRoomState []StrippedState `json:"invite_room_state,omitempty"`
	Relations       json.RawMessage `json:"m.relations,omitempty"`
}

// StrippedState is a state event reduced for invites and knocks.
type StrippedState struct {
	OriginServerTS int64           `json:"origin_server_ts,omitempty"` // create events only (MSC4311)
	Content        json.RawMessage `json:"content"`
	Sender         string          `json:"sender"`
	StateKey       string          `json:"state_key"`
	Type           string          `json:"type"`
}

// ToClient builds the client shape. roomID is passed in because v12 create events carry none.
func (l *Lite) ToClient(eventID, roomID string) *ClientEvent {
	content := l.Content
	if len(content) == 0 {
		content = json.RawMessage("{}")
	}
	redacts := l.Redacts
	if redacts == "" && l.Type == "m.room.redaction" {
		var c struct {
			Redacts string `json:"redacts"`
		}
		_ = json.Unmarshal(l.Content, &c)
		redacts = c.Redacts
	}
	return &ClientEvent{
		Content:        content,
		EventID:        eventID,
		OriginServerTS: l.OriginServerTS,
		RoomID:         roomID,
		Sender:         l.Sender,
		StateKey:       l.StateKey,
		Type:           l.Type,
		Redacts:        redacts,
	}
}

// Stripped returns the stripped-state form.
func (l *Lite) Stripped() StrippedState {
	sk := ""
	if l.StateKey != nil {
		sk = *l.StateKey
	}
	st := StrippedState{Content: l.Content, Sender: l.Sender, StateKey: sk, Type: l.Type}
	if l.Type == "m.room.create" {
		// MSC4311: the create event in stripped state carries its timestamp (and, over
		// federation, is the full event), so that invitees can judge the room's age.
		st.OriginServerTS = l.OriginServerTS
	}
	return st
}
