package keyring

import (
	"context"
	jsonv2 "encoding/json/v2"
	"errors"
	"fmt"
	"sort"
	"time"

	"maunium.net/go/mautrix/crypto/canonicaljson"
	"maunium.net/go/mautrix/federation/pdu"
	"maunium.net/go/mautrix/federation/signutil"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/events"
)

// Verdict is the outcome of the signature and hash checks on a received PDU.
type Verdict int

const (
	// OK: signed by every required server and the content hash matches.
	OK Verdict = iota
	// Redact: signatures are good but the content hash is not: keep only the redacted form
	// (events.Redact) and process that.
	Redact
	// Reject: invalid format or a missing or bad signature; the event is dropped. The error
	// says why (ErrInvalidPDU, ErrBadSignature, or ErrKeyNotFound when keys could not be had,
	// which a caller may retry later).
	Reject
)

func (v Verdict) String() string {
	switch v {
	case OK:
		return "ok"
	case Redact:
		return "redact"
	case Reject:
		return "reject"
	}
	return fmt.Sprintf("verdict(%d)", int(v))
}

// ErrBadSignature means a required signature is missing or does not verify.
var ErrBadSignature = errors.New("bad or missing signature")

// signedPDU is what both PDU formats offer for these checks.
type signedPDU interface {
	VerifyContentHash() bool
}

// VerifyEvent performs checks 1 to 3 of "Checks performed on receipt of a PDU" on raw (the
// event as received, in the federation format of room version rv):
//  1. the format of the room version (else Reject, ErrInvalidPDU);
//  2. signatures: the sender's server, the event ID's server in v1/v2, and for restricted
//     joins (v8+) the server of join_authorised_via_users_server must each have signed the
//     redacted event with a key known to be valid at origin_server_ts (v5+ enforce
//     valid_until_ts; keys expired before the event are ignored; any signature from a
//     valid key that does not verify rejects the event);
//  3. the content hash (else Redact).
//
// mautrix's (*pdu.PDU).VerifySignature is not used: its key callback has no context (key
// fetches could not be cancelled), and a key lookup failure aborts instead of the key being
// skipped as the spec says. Redaction, canonical JSON and the content hash are mautrix's.
func (k *Keyring) VerifyEvent(ctx context.Context, rv id.RoomVersion, raw []byte) (Verdict, error) {
	// Experimental versions (MSC3757) share their base version's format, hashes and redaction.
	rv = events.Base(rv)
	if !rv.IsKnown() {
		return Reject, fmt.Errorf("%w: unknown room version %q", ErrInvalidPDU, rv)
	}
	obj, err := checkFormat(rv, raw)
	if err != nil {
		return Reject, err
	}
	var (
		p       signedPDU
		sigs    map[string]map[id.KeyID]string
		tsMS    int64
		redForm any
	)
	if v1Format(rv) {
		var e pdu.RoomV1PDU
		if err := jsonv2.Unmarshal(raw, &e); err != nil {
			return Reject, fmt.Errorf("%w: %v", ErrInvalidPDU, err)
		}
		p, sigs, tsMS, redForm = &e, e.Signatures, e.OriginServerTS, e.Clone().RedactForSignature(rv)
	} else {
		var e pdu.PDU
		if err := jsonv2.Unmarshal(raw, &e); err != nil {
			return Reject, fmt.Errorf("%w: %v", ErrInvalidPDU, err)
		}
		p, sigs, tsMS, redForm = &e, e.Signatures, e.OriginServerTS, e.Clone().RedactForSignature(rv)
	}
	signed, err := canonicaljson.Marshal(redForm)
	if err != nil {
		return Reject, fmt.Errorf("%w: redacted form cannot be encoded: %v", ErrInvalidPDU, err)
	}
	ts := time.UnixMilli(tsMS)
	for _, server := range requiredSigners(rv, obj) {
		if err := k.checkServerSignatures(ctx, rv, server, sigs[server], signed, ts); err != nil {
			return Reject, err
		}
	}
	if !p.VerifyContentHash() {
		return Redact, nil
	}
	return OK, nil
}

// requiredSigners lists the servers whose signatures the event must carry.
func requiredSigners(rv id.RoomVersion, obj map[string]any) []string {
	set := map[string]bool{}
	if sender, ok := obj["sender"].(string); ok {
		set[id.UserID(sender).Homeserver()] = true
	}
	if v1Format(rv) {
		if evID, ok := obj["event_id"].(string); ok {
			if _, server, ok := cutColon(evID); ok {
				set[server] = true
			}
		}
	}
	if rv.RestrictedJoins() && obj["type"] == memberType {
		if content, ok := obj["content"].(map[string]any); ok && content["membership"] == "join" {
			if via, ok := content[joinAuthField].(string); ok && via != "" {
				set[id.UserID(via).Homeserver()] = true
			}
		}
	}
	out := make([]string, 0, len(set))
	for s := range set {
		if s != "" {
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out
}

func cutColon(s string) (string, string, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == ':' {
			return s[:i], s[i+1:], true
		}
	}
	return "", "", false
}

// checkServerSignatures verifies server's signatures on the redacted, canonical event.
func (k *Keyring) checkServerSignatures(ctx context.Context, rv id.RoomVersion, server string, sigs map[id.KeyID]string, signed []byte, ts time.Time) error {
	if len(sigs) == 0 {
		return fmt.Errorf("%w: no signature from %s", ErrBadSignature, server)
	}
	keyIDs := make([]id.KeyID, 0, len(sigs))
	for keyID := range sigs {
		keyIDs = append(keyIDs, keyID)
	}
	sort.Slice(keyIDs, func(i, j int) bool { return keyIDs[i] < keyIDs[j] })
	var skipped []error
	verified := false
	for _, keyID := range keyIDs {
		if alg, _ := keyID.Parse(); alg != id.KeyAlgorithmEd25519 {
			continue
		}
		pk, err := k.VerifyKey(ctx, server, keyID, ts)
		if err != nil {
			// Unknown keys are ignored (spec); if nothing else verifies, this is the reason.
			skipped = append(skipped, err)
			continue
		}
		if pk.Old && pk.ValidUntil.Before(ts) {
			skipped = append(skipped, fmt.Errorf("key %s of %s expired at %s, before the event (%s)", keyID, server, pk.ValidUntil.UTC().Format(time.RFC3339), ts.UTC().Format(time.RFC3339)))
			continue
		}
		if !pk.Old && rv.EnforceSigningKeyValidity() && pk.ValidUntil.Before(ts) {
			skipped = append(skipped, fmt.Errorf("key %s of %s is valid until %s, before the event (%s)", keyID, server, pk.ValidUntil.UTC().Format(time.RFC3339), ts.UTC().Format(time.RFC3339)))
			continue
		}
		if err := signutil.VerifyJSONCanonical(pk.Key, sigs[keyID], signed); err != nil {
			return fmt.Errorf("%w: %s's signature with %s: %v", ErrBadSignature, server, keyID, err)
		}
		verified = true
	}
	if !verified {
		return fmt.Errorf("%w: no signature of %s from a key valid at the event's time: %w", ErrBadSignature, server, errors.Join(skipped...))
	}
	return nil
}
