package store

import (
	"encoding/json"
	"fmt"
)

// Stream-log kinds: what wrote a position (kept for restart and for debugging a store by hand).
const (
	KindEvent       byte = 'e'
	KindAccountData byte = 'a'
	KindReceipt     byte = 'r'
	KindMembership  byte = 'm' // a membership change that is not an event (forget)
	KindDevice      byte = 'd'
)

// Event flags.
const (
	FlagRedacted      uint8 = 1 << iota // content was redacted; PDU holds the redacted form
	FlagRejected                        // failed auth; kept for reference, never served
	FlagOutlier                         // known without its place in the DAG (auth chain, join state, invite); not in the timeline
	FlagSoftFailed                      // passed auth against its own state but not the current state: stored, never shown or extended
	FlagBackfilled                      // history older than the timeline, fetched with /backfill: ordered by the backfill index, not the timeline
	FlagViaFederation                   // our own event that entered the room through another server (a send_join): never fanned out
	FlagGap                             // timeline event stored without all of its prev events (a re-join, a gap get_missing_events could not close): history before it may be missing (dag_gaps.go)
)

// Hidden reports whether events with these flags stay out of the timeline and the extremities.
func Hidden(flags uint8) bool { return flags&(FlagRejected|FlagOutlier|FlagSoftFailed) != 0 }

// EventRecord is one stored event. Its NID is its stream position.
type EventRecord struct {
	Room     uint64          `json:"r"`
	Snapshot uint64          `json:"s"`            // state snapshot before this event
	After    uint64          `json:"a,omitempty"`  // state snapshot after this event (state events)
	Flags    uint8           `json:"f,omitempty"`  //
	Device   string          `json:"d,omitempty"`  // sending device (for unsigned.transaction_id)
	TxnID    string          `json:"t,omitempty"`  // client transaction ID
	Redacted string          `json:"rb,omitempty"` // event ID of the redaction that redacted this
	ID       string          `json:"i"`            // event ID
	PDU      json.RawMessage `json:"p"`            // the signed PDU as JSON
}

// RoomRecord is the per-room summary kept beside the timeline.
type RoomRecord struct {
	ID          string   `json:"id"`
	Version     string   `json:"v"`
	Snapshot    uint64   `json:"s"`  // current state snapshot
	Extremities []string `json:"x"`  // forward extremities (prev_events of the next event)
	Depth       int64    `json:"dp"` // depth of the newest event
	Latest      uint64   `json:"l"`  // stream position of the newest event
	// Stub marks a room known only through an invite or knock from another server: no state
	// and no timeline yet, just the membership event and the stripped state that came with it.
	Stub        bool            `json:"stub,omitempty"`
	InviteState json.RawMessage `json:"is,omitempty"` // stripped state events (JSON array) of a stub room
	// BackfillSeq is the highest backfill sequence used (dag.go); BackfillDone is set once
	// /backfill reached the room's create event or answered nothing more.
	BackfillSeq  uint64 `json:"bs,omitempty"`
	BackfillDone bool   `json:"bd,omitempty"`
}

// UserRecord is a local account.
type UserRecord struct {
	Localpart    string `json:"l"`
	PasswordHash string `json:"p,omitempty"`
	Admin        bool   `json:"a,omitempty"`
	Deactivated  bool   `json:"x,omitempty"`
	Guest        bool   `json:"g,omitempty"`
	DisplayName  string `json:"dn,omitempty"`
	AvatarURL    string `json:"av,omitempty"`
	CreatedMS    int64  `json:"c"`
}

// DeviceRecord is one device (login session) of a user.
type DeviceRecord struct {
	ID          string `json:"id"`
	DisplayName string `json:"dn,omitempty"`
	TokenHash   []byte `json:"th"`
	LastSeenMS  int64  `json:"ls,omitempty"`
	LastSeenIP  string `json:"ip,omitempty"`
}

// TokenRecord maps an access token hash to its owner.
type TokenRecord struct {
	User   string `json:"u"`
	Device string `json:"d"`
	// Refreshable tokens only (login or register with refresh_token): when the token expires
	// (Unix ms), the refresh token issued with it, and the refresh token it replaced, which is
	// revoked when this token is first used.
	ExpiresMS   int64  `json:"x,omitempty"`
	Refresh     []byte `json:"rf,omitempty"`
	PrevRefresh []byte `json:"pr,omitempty"`
}

// AccountDataRecord is one account-data item (global when Room is 0).
type AccountDataRecord struct {
	Pos     uint64          `json:"p"`
	Content json.RawMessage `json:"c"`
}

// RegTokenRecord is a registration token.
type RegTokenRecord struct {
	Token       string `json:"t"`
	UsesAllowed *int   `json:"ua"`
	Pending     int    `json:"pe"`
	Completed   int    `json:"co"`
	ExpiryMS    *int64 `json:"ex"`
}

// ReceiptRecord is the latest receipt of one user of one type (and thread) in a room.
type ReceiptRecord struct {
	Type    string `json:"ty"`
	User    string `json:"u"`
	Thread  string `json:"th,omitempty"`
	EventID string `json:"e"`
	TS      int64  `json:"ts"`
	Pos     uint64 `json:"p"`
	Private bool   `json:"pr,omitempty"`
	RoomNID uint64 `json:"r"`
}

// AliasRecord is a room alias.
type AliasRecord struct {
	RoomID  string `json:"r"`
	Creator string `json:"c"`
}

// Membership is a user's membership in a room as the per-user index records it.
type Membership struct {
	Room       uint64
	Membership string
	Pos        uint64 // stream position of the membership event
}

func getJSON[T any](t *Txn, k []byte) (T, error) {
	var v T
	b, err := t.get(k)
	if err != nil {
		return v, err
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return v, fmt.Errorf("store: decode %x: %w", k[:1], err)
	}
	return v, nil
}

func (t *Txn) setJSON(k []byte, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("store: encode: %w", err)
	}
	return t.set(k, b)
}
