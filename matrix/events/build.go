package events

import (
	"crypto/ed25519"
	"encoding/json/jsontext"
	jsonv2 "encoding/json/v2"
	"errors"
	"fmt"
	"strings"
	"time"

	"maunium.net/go/mautrix/crypto/canonicaljson"
	"maunium.net/go/mautrix/federation/eventauth"
	"maunium.net/go/mautrix/federation/pdu"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/merr"
)

// MaxPDUSize is the spec's limit on a whole event in canonical JSON.
const MaxPDUSize = 65536

// supportedVersions are the room versions this server creates locally. Version 2 is built in
// the v1 event format (server-chosen IDs, [id, hashes] references: v1.go) and resolved with
// state resolution v2 like version 3. Version 1 differs from 2 only by state resolution v1
// (stateres/v1.go), so it could be created the same way; it is only joined over federation
// (Joinable) for now, as the federation tests with Dendrite still expect createRoom to refuse
// it (docs/architecture.md).
var supportedVersions = []id.RoomVersion{id.RoomV2, id.RoomV3, id.RoomV4, id.RoomV5, id.RoomV6, id.RoomV7, id.RoomV8, id.RoomV9, id.RoomV10, id.RoomV11, id.RoomV12, RoomVMSC3757v10, RoomVMSC3757v11}

// Supported reports whether a room version can be created here.
func Supported(v id.RoomVersion) bool {
	for _, s := range supportedVersions {
		if s == v {
			return true
		}
	}
	return false
}

// SupportedVersions lists the versions for /capabilities.
func SupportedVersions() []id.RoomVersion { return append([]id.RoomVersion(nil), supportedVersions...) }

// DefaultVersion is the version createRoom uses when the client names none.
const DefaultVersion = id.RoomV12

// Signer signs events as this server.
type Signer struct {
	ServerName string
	KeyID      id.KeyID
	Key        ed25519.PrivateKey
}

// Template is what a caller wants to send.
type Template struct {
	Type     string
	StateKey *string
	Sender   id.UserID
	Content  jsontext.Value
	Redacts  id.EventID
	// RefHashes gives the reference hashes of prev/auth events; only rooms of versions 1 and 2
	// carry them (RefHashesFrom). Nil leaves them empty.
	RefHashes func(id.EventID) []byte
}

// Built is a signed PDU ready to store.
type Built struct {
	PDU  *pdu.PDU
	ID   id.EventID
	JSON []byte
}

// Build fills in a PDU from a template and the room's position, hashes and signs it.
// roomID is empty for a v12 create event (the room ID is derived from the event ID).
func Build(rv id.RoomVersion, roomID id.RoomID, t Template, prev, auth []id.EventID, depth int64, now time.Time, s Signer) (*Built, error) {
	if len(t.Content) == 0 {
		t.Content = jsontext.Value("{}")
	}
	if prev == nil {
		prev = []id.EventID{}
	}
	if auth == nil {
		auth = []id.EventID{}
	}
	p := &pdu.PDU{
		AuthEvents:     auth,
		Content:        t.Content,
		Depth:          depth,
		OriginServerTS: now.UnixMilli(),
		PrevEvents:     prev,
		RoomID:         roomID,
		Sender:         t.Sender,
		StateKey:       t.StateKey,
		Type:           t.Type,
	}
	if t.Redacts != "" {
		r := t.Redacts
		p.Redacts = &r
	}
	var eventID id.EventID
	var wire any = p
	rv = Base(rv) // the event format, hashes and redaction are the base version's (msc3757.go)
	if V1Format(rv) {
		if err := MarkV1(p, s.ServerName, t.RefHashes); err != nil {
			return nil, err
		}
		eid, _, err := SignPDU(rv, p, s)
		if err != nil {
			return nil, err
		}
		eventID, wire = eid, toV1(p)
	} else {
		if err := p.Sign(rv, s.ServerName, s.KeyID, s.Key); err != nil {
			// Signing fails only when the content has no canonical JSON form (a number
			// beyond 2^53, a float): the sender's content, so a bad request.
			return nil, merr.BadJSON("event content cannot be encoded as canonical JSON: %v", err)
		}
		eid, err := p.GetEventID(rv)
		if err != nil {
			return nil, fmt.Errorf("event id: %w", err)
		}
		eventID = eid
	}
	canon, err := canonicaljson.Marshal(wire)
	if err != nil {
		return nil, merr.BadJSON("event cannot be encoded as canonical JSON: %v", err)
	}
	if len(canon) > MaxPDUSize {
		return nil, merr.TooLarge("event is %d bytes; the limit is %d", len(canon), MaxPDUSize)
	}
	return &Built{PDU: p, ID: eventID, JSON: canon}, nil
}

// Parse decodes a stored PDU of either event format (v1.go: versions 1 and 2).
func Parse(b []byte) (*pdu.PDU, error) {
	if looksV1(b) {
		return parseV1(b)
	}
	var p pdu.PDU
	if err := jsonv2.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("decode pdu: %w", err)
	}
	return &p, nil
}

// Encode encodes a PDU for storage.
func Encode(p *pdu.PDU) ([]byte, error) {
	var wire any = p
	if IsV1(p) {
		wire = toV1(p)
	}
	b, err := jsonv2.Marshal(wire)
	if err != nil {
		return nil, fmt.Errorf("encode pdu: %w", err)
	}
	return b, nil
}

// Authorize runs the spec's auth rules. getEvents resolves event IDs (auth events, and the create
// event of v12 rooms). A failure is an M_FORBIDDEN naming the rule.
func Authorize(rv id.RoomVersion, p *pdu.PDU, getEvents eventauth.GetEventsFunc) error {
	err := AuthorizeEvent(rv, p, nil, getEvents, noKeys)
	if err == nil {
		return nil
	}
	if errors.Is(err, ErrMalformedOwnedStateKey) {
		return merr.BadJSON("%s", humanAuthMessage(err))
	}
	var afe eventauth.AuthFailError
	if errors.As(err, &afe) {
		return merr.Forbidden("event not authorised (auth rule %s): %s", afe.Index, humanAuthMessage(err))
	}
	return fmt.Errorf("authorise event: %w", err)
}

func humanAuthMessage(err error) string {
	s := err.Error()
	if i := strings.Index(s, ": "); i > 0 && strings.HasPrefix(s, "fail ") {
		return s[i+2:]
	}
	return s
}

// noKeys refuses key lookups: local events never carry third-party-invite signatures from
// servers we would need to ask (that path belongs to federation).
func noKeys(serverName string, keyID id.KeyID, _ time.Time) (id.SigningKey, time.Time, error) {
	return "", time.Time{}, fmt.Errorf("no key %s for %s", keyID, serverName)
}

// RoomIDFor derives the room ID of a v12 room from its create event.
func RoomIDFor(create *pdu.PDU) (id.RoomID, error) { return create.GetRoomID() }

// Redact returns the redacted form of a stored PDU (signatures and hashes kept).
func Redact(rv id.RoomVersion, b []byte) ([]byte, error) {
	rv = Base(rv)
	if V1Format(rv) {
		return redactV1(rv, b)
	}
	p, err := Parse(b)
	if err != nil {
		return nil, err
	}
	sigs, hashes := p.Signatures, p.Hashes
	p = p.Redact(rv)
	p.Signatures, p.Hashes = sigs, hashes
	return Encode(p)
}
