package keys

import (
	"bytes"
	"encoding/json"
	"fmt"

	"maunium.net/go/mautrix/crypto/canonicaljson"
	"maunium.net/go/mautrix/crypto/signatures"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/merr"
)

// Signatures is the spec's signatures object: user ID -> key ID ("ed25519:X") -> signature.
type Signatures map[string]map[string]string

// canonical returns the canonical JSON form of a JSON value, or M_BAD_JSON.
func canonical(raw json.RawMessage) (json.RawMessage, error) {
	c, err := canonicaljson.CanonicalJSON(bytes.Clone(raw))
	if err != nil {
		return nil, merr.BadJSON("invalid JSON value: %v", err)
	}
	return c, nil
}

// object decodes a JSON object into its members.
func object(raw json.RawMessage) (map[string]json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return nil, merr.BadJSON("expected a JSON object")
	}
	return m, nil
}

// signedPart is the canonical JSON of an object without signatures and unsigned: what a
// signature covers, and what two uploads of the same key have in common.
func signedPart(raw json.RawMessage) (json.RawMessage, error) {
	m, err := object(raw)
	if err != nil {
		return nil, err
	}
	delete(m, "signatures")
	delete(m, "unsigned")
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	return canonical(b)
}

// signaturesOf reads an object's signatures (nil when absent).
func signaturesOf(raw json.RawMessage) (Signatures, error) {
	var v struct {
		Signatures Signatures `json:"signatures"`
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, merr.BadJSON("signatures must map user IDs to key IDs to strings")
	}
	return v.Signatures, nil
}

// withSignatures returns raw with extra signatures merged in and, when unsigned is non-nil,
// an unsigned object set.
func withSignatures(raw json.RawMessage, extra Signatures, unsigned any) (json.RawMessage, error) {
	if len(extra) == 0 && unsigned == nil {
		return raw, nil
	}
	m, err := object(raw)
	if err != nil {
		return nil, err
	}
	if len(extra) > 0 {
		sigs, err := signaturesOf(raw)
		if err != nil {
			return nil, err
		}
		if sigs == nil {
			sigs = Signatures{}
		}
		for u, ks := range extra {
			if sigs[u] == nil {
				sigs[u] = map[string]string{}
			}
			for k, v := range ks {
				sigs[u][k] = v
			}
		}
		if m["signatures"], err = json.Marshal(sigs); err != nil {
			return nil, err
		}
	}
	if unsigned != nil {
		if m["unsigned"], err = json.Marshal(unsigned); err != nil {
			return nil, err
		}
	}
	return json.Marshal(m)
}

// verify checks user's signature by key ID "ed25519:<keyName>" on raw with the given public key.
func verify(raw json.RawMessage, user, keyName, pub string) bool {
	ok, err := signatures.VerifySignatureJSON(json.RawMessage(bytes.Clone(raw)), id.UserID(user), keyName, id.Ed25519(pub))
	return err == nil && ok
}
