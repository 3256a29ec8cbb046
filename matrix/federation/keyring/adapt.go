package keyring

import (
	"context"
	jsonv2 "encoding/json/v2"
	"fmt"
	"time"

	"maunium.net/go/mautrix/federation/pdu"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/events"
)

// VerifyPDU is VerifyEvent in the shape the federation core's Verifier wants: the JSON to
// keep (the redacted form when the content hash does not match) or an error when the event
// must be dropped.
func (k *Keyring) VerifyPDU(ctx context.Context, rv id.RoomVersion, raw []byte) ([]byte, error) {
	verdict, err := k.VerifyEvent(ctx, rv, raw)
	switch verdict {
	case OK:
		return raw, nil
	case Redact:
		return redactedForm(rv, raw)
	}
	return nil, err
}

// redactedForm is the event reduced by the redaction algorithm, signatures and hashes kept.
func redactedForm(rv id.RoomVersion, raw []byte) ([]byte, error) {
	if !v1Format(rv) {
		b, err := events.Redact(rv, raw)
		if err != nil {
			return nil, fmt.Errorf("redact event with a bad content hash: %w", err)
		}
		return b, nil
	}
	var p pdu.RoomV1PDU
	if err := jsonv2.Unmarshal(raw, &p); err != nil {
		return nil, fmt.Errorf("decode v1 event: %w", err)
	}
	sigs, hashes := p.Signatures, p.Hashes
	r := p.Redact(rv)
	r.Signatures, r.Hashes = sigs, hashes
	b, err := jsonv2.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encode redacted v1 event: %w", err)
	}
	return b, nil
}

// GetKey adapts VerifyKey to mautrix's key callback (event auth's own signature checks:
// restricted joins, third-party invites). It has no context of its own, so ctx bounds it.
func (k *Keyring) GetKey(ctx context.Context) pdu.GetKeyFunc {
	return func(server string, keyID id.KeyID, minValidUntil time.Time) (id.SigningKey, time.Time, error) {
		pk, err := k.VerifyKey(ctx, server, keyID, minValidUntil)
		if err != nil {
			return "", time.Time{}, err
		}
		return pk.Key, pk.ValidUntil, nil
	}
}
