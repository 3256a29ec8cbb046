package sender

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// EDU types of the server-server API (spec v1.19, "Ephemeral Data Units").
const (
	TypeTyping           = "m.typing"
	TypeReceipt          = "m.receipt"
	TypePresence         = "m.presence"
	TypeDeviceListUpdate = "m.device_list_update"
	TypeSigningKeyUpdate = "m.signing_key_update"
	TypeDirectToDevice   = "m.direct_to_device"
)

// EDU is one ephemeral data unit as it goes into a transaction.
type EDU struct {
	Type    string          `json:"edu_type"`
	Content json.RawMessage `json:"content"`
}

// Ephemeral reports whether the EDU is worth sending only while it is fresh: typing and
// presence are held in memory only and may be dropped while a destination is unreachable.
// Everything else (receipts, device lists, to-device, signing keys) is persisted until sent.
func (e EDU) Ephemeral() bool { return e.Type == TypeTyping || e.Type == TypePresence }

func (e EDU) validate() error {
	if e.Type == "" {
		return errors.New("EDU without edu_type")
	}
	if len(e.Content) == 0 || e.Content[0] != '{' || !json.Valid(e.Content) {
		return fmt.Errorf("EDU %s: content must be a JSON object", e.Type)
	}
	return nil
}

func newEDU(typ string, content any) (EDU, error) {
	b, err := json.Marshal(content)
	if err != nil {
		return EDU{}, fmt.Errorf("encode %s: %w", typ, err)
	}
	return EDU{Type: typ, Content: b}, nil
}

// checkUserID accepts @localpart:server with both parts present.
func checkUserID(what, s string) error {
	if len(s) < 4 || s[0] != '@' || !strings.Contains(s[2:], ":") || strings.HasSuffix(s, ":") {
		return fmt.Errorf("%s %q is not a user ID", what, s)
	}
	return nil
}

func checkRoomID(s string) error {
	if len(s) < 2 || s[0] != '!' {
		return fmt.Errorf("room ID %q is not a room ID", s)
	}
	return nil
}

func checkObject(what string, raw json.RawMessage) error {
	if len(raw) == 0 || raw[0] != '{' || !json.Valid(raw) {
		return fmt.Errorf("%s must be a JSON object", what)
	}
	return nil
}

// ServerOf returns the server name of a user ID ("" if it is not one).
func ServerOf(userID string) string {
	if checkUserID("user", userID) != nil {
		return ""
	}
	_, server, _ := strings.Cut(userID[1:], ":")
	return server
}

// Typing builds m.typing: the user started (true) or stopped typing in the room.
func Typing(roomID, userID string, typing bool) (EDU, error) {
	if err := checkRoomID(roomID); err != nil {
		return EDU{}, err
	}
	if err := checkUserID("user", userID); err != nil {
		return EDU{}, err
	}
	return newEDU(TypeTyping, struct {
		RoomID string `json:"room_id"`
		UserID string `json:"user_id"`
		Typing bool   `json:"typing"`
	}{roomID, userID, typing})
}

// ReadReceipt is one public read receipt of a user.
type ReadReceipt struct {
	RoomID   string
	UserID   string
	EventIDs []string // the spec allows several; a client receipt names one
	TS       int64    // milliseconds since the epoch
	ThreadID string   // "" for an unthreaded receipt, "main" or a thread root
}

type receiptData struct {
	TS       int64  `json:"ts"`
	ThreadID string `json:"thread_id,omitempty"`
}

type userReceipt struct {
	Data     receiptData `json:"data"`
	EventIDs []string    `json:"event_ids"`
}

// Receipts builds m.receipt EDUs. Only m.read is federated (m.read.private never leaves the
// server). The content is keyed by room and user, so two receipts of one user in one room
// (different threads) go into separate EDUs.
func Receipts(rs []ReadReceipt) ([]EDU, error) {
	var out []map[string]map[string]map[string]userReceipt
	for _, r := range rs {
		if err := checkRoomID(r.RoomID); err != nil {
			return nil, err
		}
		if err := checkUserID("user", r.UserID); err != nil {
			return nil, err
		}
		if len(r.EventIDs) == 0 {
			return nil, fmt.Errorf("receipt of %s in %s names no event", r.UserID, r.RoomID)
		}
		for _, e := range r.EventIDs {
			if !strings.HasPrefix(e, "$") {
				return nil, fmt.Errorf("receipt event ID %q is not an event ID", e)
			}
		}
		placed := false
		for _, c := range out {
			room := c[r.RoomID]
			if room == nil {
				room = map[string]map[string]userReceipt{"m.read": {}}
				c[r.RoomID] = room
			}
			if _, taken := room["m.read"][r.UserID]; taken {
				continue
			}
			room["m.read"][r.UserID] = userReceipt{Data: receiptData{TS: r.TS, ThreadID: r.ThreadID}, EventIDs: r.EventIDs}
			placed = true
			break
		}
		if !placed {
			out = append(out, map[string]map[string]map[string]userReceipt{r.RoomID: {"m.read": {
				r.UserID: {Data: receiptData{TS: r.TS, ThreadID: r.ThreadID}, EventIDs: r.EventIDs},
			}}})
		}
	}
	edus := make([]EDU, 0, len(out))
	for _, c := range out {
		e, err := newEDU(TypeReceipt, c)
		if err != nil {
			return nil, err
		}
		edus = append(edus, e)
	}
	return edus, nil
}

// PresenceUpdate is one user's presence as m.presence carries it.
type PresenceUpdate struct {
	UserID          string  `json:"user_id"`
	Presence        string  `json:"presence"` // online, unavailable or offline
	StatusMsg       *string `json:"status_msg,omitempty"`
	LastActiveAgo   int64   `json:"last_active_ago"` // milliseconds
	CurrentlyActive bool    `json:"currently_active,omitempty"`
}

// Presence builds m.presence from one or more users' presence.
func Presence(ps []PresenceUpdate) (EDU, error) {
	if len(ps) == 0 {
		return EDU{}, errors.New("presence EDU without updates")
	}
	for _, p := range ps {
		if err := checkUserID("user", p.UserID); err != nil {
			return EDU{}, err
		}
		switch p.Presence {
		case "online", "unavailable", "offline":
		default:
			return EDU{}, fmt.Errorf("presence %q is not online, unavailable or offline", p.Presence)
		}
		if p.LastActiveAgo < 0 {
			return EDU{}, fmt.Errorf("negative last_active_ago for %s", p.UserID)
		}
	}
	return newEDU(TypePresence, struct {
		Push []PresenceUpdate `json:"push"`
	}{ps})
}

// DeviceListUpdate is one m.device_list_update: a device of a local user was added, changed
// (keys, display name) or deleted. StreamID increases per user; PrevID names the updates the
// receiver must have seen first (an unknown one makes it resync through /user/devices).
type DeviceListUpdate struct {
	UserID      string          `json:"user_id"`
	DeviceID    string          `json:"device_id"`
	DisplayName string          `json:"device_display_name,omitempty"`
	StreamID    int64           `json:"stream_id"`
	PrevID      []int64         `json:"prev_id"`
	Deleted     bool            `json:"deleted,omitempty"`
	Keys        json.RawMessage `json:"keys,omitempty"` // the signed device keys object
}

// DeviceList builds m.device_list_update.
func DeviceList(u DeviceListUpdate) (EDU, error) {
	if err := checkUserID("user", u.UserID); err != nil {
		return EDU{}, err
	}
	if u.DeviceID == "" {
		return EDU{}, errors.New("device list update without a device ID")
	}
	if u.StreamID <= 0 {
		return EDU{}, errors.New("device list update without a positive stream ID")
	}
	if u.PrevID == nil {
		u.PrevID = []int64{}
	}
	if len(u.Keys) > 0 {
		if u.Deleted {
			return EDU{}, errors.New("a deleted device carries no keys")
		}
		if err := checkObject("device keys", u.Keys); err != nil {
			return EDU{}, err
		}
	}
	return newEDU(TypeDeviceListUpdate, u)
}

// SigningKeyUpdate builds m.signing_key_update with the user's current master and/or
// self-signing keys (each a cross-signing key object; nil leaves it out).
func SigningKeyUpdate(userID string, master, selfSigning json.RawMessage) (EDU, error) {
	if err := checkUserID("user", userID); err != nil {
		return EDU{}, err
	}
	if len(master) == 0 && len(selfSigning) == 0 {
		return EDU{}, errors.New("signing key update without keys")
	}
	if len(master) > 0 {
		if err := checkObject("master key", master); err != nil {
			return EDU{}, err
		}
	}
	if len(selfSigning) > 0 {
		if err := checkObject("self-signing key", selfSigning); err != nil {
			return EDU{}, err
		}
	}
	return newEDU(TypeSigningKeyUpdate, struct {
		UserID      string          `json:"user_id"`
		Master      json.RawMessage `json:"master_key,omitempty"`
		SelfSigning json.RawMessage `json:"self_signing_key,omitempty"`
	}{userID, master, selfSigning})
}

// DirectToDevice builds m.direct_to_device: messages (user ID -> device ID or "*" -> content)
// for users of one destination server. messageID must be unique per sender so the receiver
// can drop a duplicate.
func DirectToDevice(sender, evType, messageID string, messages map[string]map[string]json.RawMessage) (EDU, error) {
	if err := checkUserID("sender", sender); err != nil {
		return EDU{}, err
	}
	if evType == "" || messageID == "" {
		return EDU{}, errors.New("to-device EDU needs an event type and a message ID")
	}
	if len(messages) == 0 {
		return EDU{}, errors.New("to-device EDU without messages")
	}
	for user, devs := range messages {
		if err := checkUserID("recipient", user); err != nil {
			return EDU{}, err
		}
		if len(devs) == 0 {
			return EDU{}, fmt.Errorf("to-device messages for %s name no device", user)
		}
		for dev, c := range devs {
			if dev == "" {
				return EDU{}, fmt.Errorf("empty device ID for %s", user)
			}
			if err := checkObject("to-device content", c); err != nil {
				return EDU{}, err
			}
		}
	}
	return newEDU(TypeDirectToDevice, struct {
		Sender    string                                `json:"sender"`
		Type      string                                `json:"type"`
		MessageID string                                `json:"message_id"`
		Messages  map[string]map[string]json.RawMessage `json:"messages"`
	}{sender, evType, messageID, messages})
}
