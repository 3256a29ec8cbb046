package keys

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/change"
	"github.com/hearth-home/hearth/matrix/merr"
	"github.com/hearth-home/hearth/matrix/store"
)

// SignatureFailures maps user ID -> key ID -> error body for signatures that were refused.
type SignatureFailures map[string]map[string]map[string]string

func (f SignatureFailures) add(user, keyID string, e *merr.Error) {
	if f[user] == nil {
		f[user] = map[string]map[string]string{}
	}
	f[user][keyID] = map[string]string{"errcode": e.Code, "error": e.Message}
}

// UploadSignatures stores signer's signatures of keys (user ID -> key ID -> signed object).
// What signer may sign: their own devices with their self-signing key, their own master key
// with one of their devices, and another user's master key with their user-signing key. Each
// signature is verified; the object must equal the stored key apart from its signatures.
func (s *Service) UploadSignatures(ctx context.Context, signer id.UserID, body map[string]map[string]json.RawMessage) (SignatureFailures, error) {
	failures := SignatureFailures{}
	sg := signer.String()
	err := s.st.Update(func(txn *store.Txn) error {
		for k := range failures {
			delete(failures, k) // a conflict retry starts afresh
		}
		marked := map[string]bool{}
		for target, objs := range body {
			for keyID, obj := range objs {
				n, ferr, err := s.signOne(txn, sg, target, keyID, obj)
				if err != nil {
					return err
				}
				if ferr != nil {
					failures.add(target, keyID, ferr)
					continue
				}
				if n == 0 {
					continue
				}
				// A signature of one's own key concerns everyone who sees the key; a signature
				// of someone else's master key is visible to the signer only.
				who := target
				if target != sg {
					who = sg
				}
				// A signed device of one's own is announced as that device (other servers get
				// its keys with the new signature); anything else as a cross-signing change.
				dev := ""
				if target == sg {
					if _, err := txn.Device(sg, keyID); err == nil {
						dev = keyID
					}
				}
				if mk := who + "\x00" + dev; !marked[mk] {
					marked[mk] = true
					pos, err := txn.MarkDeviceListChanged(who)
					if err != nil {
						return err
					}
					txn.Notify(pos, change.Change{Pos: pos, Kind: change.DeviceKeys, User: who, Device: dev})
				}
			}
		}
		return nil
	})
	return failures, err
}

// signOne checks and stores the new signatures in one signed object. It returns how many it
// stored, or a failure for the client.
func (s *Service) signOne(txn *store.Txn, signer, target, keyID string, obj json.RawMessage) (int, *merr.Error, error) {
	if !s.isLocal(target) {
		return 0, merr.InvalidParam("signing keys of remote users is not supported yet"), nil
	}
	if keyID == "" || strings.IndexByte(keyID, 0) >= 0 {
		return 0, merr.InvalidParam("invalid key ID"), nil
	}
	stored, kind, err := targetKey(txn, signer, target, keyID)
	if err != nil {
		return 0, nil, err
	}
	if stored == nil {
		return 0, merr.NotFound("unknown key %s of %s", keyID, target), nil
	}
	a, err1 := signedPart(obj)
	b, err2 := signedPart(stored)
	if err1 != nil || err2 != nil || !bytes.Equal(a, b) {
		return 0, errInvalidSignature("the signed object does not match the stored key"), nil
	}
	sigs, err := signaturesOf(obj)
	if err != nil {
		return 0, merr.BadJSON("malformed signatures"), nil
	}
	have, err := signaturesOf(stored)
	if err != nil {
		return 0, nil, err
	}
	n := 0
	for signerKeyID, sig := range sigs[signer] {
		if have[signer][signerKeyID] == sig {
			continue // already part of the key (e.g. a device's self-signature)
		}
		pub, err := signingKey(txn, signer, kind, signerKeyID)
		if err != nil {
			return 0, nil, err
		}
		if pub == "" {
			return 0, errInvalidSignature("%s may not sign this key", signerKeyID), nil
		}
		name := strings.TrimPrefix(signerKeyID, "ed25519:")
		if !verify(obj, signer, name, pub) {
			return 0, errInvalidSignature("invalid signature by %s", signerKeyID), nil
		}
		if err := txn.PutKeySignature(target, keyID, signer, signerKeyID, sig); err != nil {
			return 0, nil, err
		}
		n++
	}
	return n, nil, nil
}

// Kinds of signed keys.
const (
	kindOwnDevice   = iota + 1 // signed by the owner's self-signing key
	kindOwnMaster              // signed by one of the owner's devices
	kindOtherMaster            // signed by the signer's user-signing key
)

// targetKey finds the key that keyID names: one of signer's devices or their master key, or
// another user's master key.
func targetKey(txn *store.Txn, signer, target, keyID string) (json.RawMessage, int, error) {
	if target == signer {
		rec, err := txn.DeviceKeys(target, keyID)
		if err == nil {
			return rec.Keys, kindOwnDevice, nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return nil, 0, err
		}
	}
	raw, err := txn.CrossSigningKey(target, UsageMaster)
	if errors.Is(err, store.ErrNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	k, err := parseCrossSigningKey(raw)
	if err != nil {
		return nil, 0, fmt.Errorf("stored master key of %s: %w", target, err)
	}
	if k.pub != keyID {
		return nil, 0, nil
	}
	if target == signer {
		return raw, kindOwnMaster, nil
	}
	return raw, kindOtherMaster, nil
}

// signingKey returns the public key behind signerKeyID if it may sign a key of the kind, or "".
func signingKey(txn *store.Txn, signer string, kind int, signerKeyID string) (string, error) {
	alg, name, _ := strings.Cut(signerKeyID, ":")
	if alg != "ed25519" || name == "" {
		return "", nil
	}
	switch kind {
	case kindOwnDevice, kindOtherMaster:
		usage := UsageSelfSigning
		if kind == kindOtherMaster {
			usage = UsageUserSigning
		}
		raw, err := txn.CrossSigningKey(signer, usage)
		if errors.Is(err, store.ErrNotFound) {
			return "", nil
		}
		if err != nil {
			return "", err
		}
		k, err := parseCrossSigningKey(raw)
		if err != nil || k.pub != name {
			return "", nil
		}
		return k.pub, nil
	case kindOwnMaster:
		rec, err := txn.DeviceKeys(signer, name)
		if errors.Is(err, store.ErrNotFound) {
			return "", nil
		}
		if err != nil {
			return "", err
		}
		var dk deviceKeys
		if err := json.Unmarshal(rec.Keys, &dk); err != nil {
			return "", nil
		}
		return dk.Keys["ed25519:"+name], nil
	}
	return "", nil
}
