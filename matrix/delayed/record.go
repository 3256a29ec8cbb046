package delayed

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Record is one scheduled delayed event, stored as JSON under its delay ID.
type Record struct {
	DelayID  string          `json:"delay_id"`
	User     string          `json:"user"`
	Device   string          `json:"device,omitempty"`
	RoomID   string          `json:"room_id"`
	Type     string          `json:"type"`
	StateKey *string         `json:"state_key,omitempty"`
	Content  json.RawMessage `json:"content"`
	// DelayMS is the delay asked for; a restart runs it again from the restart time.
	DelayMS int64 `json:"delay_ms"`
	// RunningSince is when the timer (re)started, Unix milliseconds.
	RunningSince int64 `json:"running_since"`
	// Pos is the stream position when the timer (re)started: only state changes after it can
	// overwrite the delayed event's state and so cancel it.
	Pos uint64 `json:"pos"`
}

// DueMS is the Unix millisecond time the event is to be sent at.
func (r *Record) DueMS() int64 { return r.RunningSince + r.DelayMS }

// Due is DueMS as a time.
func (r *Record) Due() time.Time { return time.UnixMilli(r.DueMS()) }

func (r *Record) encode() ([]byte, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encode delayed event %s: %w", r.DelayID, err)
	}
	return b, nil
}

func decodeRecord(b []byte) (*Record, error) {
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("decode delayed event: %w", err)
	}
	return &r, nil
}

// newDelayID makes an unguessable ID: the unstable management endpoints are unauthenticated
// (so that an SFU can restart or send on the client's behalf), which makes the ID a bearer
// capability for that one event. 128 random bits.
func newDelayID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("delay id: %w", err)
	}
	return "hd_" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:])), nil
}
