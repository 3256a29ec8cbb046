package keys

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"

	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/change"
	"github.com/hearth-home/hearth/matrix/merr"
	"github.com/hearth-home/hearth/matrix/store"
)

// CrossSigningUpload is the key part of POST /keys/device_signing/upload.
type CrossSigningUpload struct {
	MasterKey      json.RawMessage `json:"master_key"`
	SelfSigningKey json.RawMessage `json:"self_signing_key"`
	UserSigningKey json.RawMessage `json:"user_signing_key"`
}

func (r *CrossSigningUpload) byUsage() map[string]json.RawMessage {
	m := map[string]json.RawMessage{}
	for usage, k := range map[string]json.RawMessage{UsageMaster: r.MasterKey, UsageSelfSigning: r.SelfSigningKey, UsageUserSigning: r.UserSigningKey} {
		if len(k) > 0 && string(k) != "null" {
			m[usage] = k
		}
	}
	return m
}

// csKey is a parsed CrossSigningKey object.
type csKey struct {
	user  string
	usage []string
	pub   string // the unpadded base64 ed25519 public key (also its key ID after "ed25519:")
	raw   json.RawMessage
}

func parseCrossSigningKey(raw json.RawMessage) (*csKey, error) {
	var v struct {
		UserID string            `json:"user_id"`
		Usage  []string          `json:"usage"`
		Keys   map[string]string `json:"keys"`
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, merr.BadJSON("cross-signing key is malformed: %v", err)
	}
	if v.UserID == "" || len(v.Usage) == 0 || len(v.Keys) != 1 {
		return nil, merr.BadJSON("a cross-signing key needs user_id, usage and exactly one key")
	}
	var pub string
	for kid, val := range v.Keys {
		alg, name, _ := strings.Cut(kid, ":")
		if alg != "ed25519" || name == "" || name != val {
			return nil, merr.InvalidParam("cross-signing key ID must be ed25519:<public key>")
		}
		pub = name
	}
	if err := checkIDPart("cross-signing public key", pub); err != nil {
		return nil, err
	}
	return &csKey{user: v.UserID, usage: v.Usage, pub: pub, raw: raw}, nil
}

// CrossSigningNeedsAuth reports whether an upload must pass user-interactive authentication:
// it need not when the user has no master key yet, or when the upload only repeats keys the
// server already holds (a retried request).
func (s *Service) CrossSigningNeedsAuth(ctx context.Context, user id.UserID, req *CrossSigningUpload) (bool, error) {
	needs := false
	err := s.st.View(func(txn *store.Txn) error {
		if _, err := txn.CrossSigningKey(user.String(), UsageMaster); errors.Is(err, store.ErrNotFound) {
			return nil
		} else if err != nil {
			return err
		}
		for usage, k := range req.byUsage() {
			same, err := sameStoredKey(txn, user.String(), usage, k)
			if err != nil {
				return err
			}
			if !same {
				needs = true
			}
		}
		return nil
	})
	return needs, err
}

func sameStoredKey(txn *store.Txn, user, usage string, k json.RawMessage) (bool, error) {
	old, err := txn.CrossSigningKey(user, usage)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	c, err := canonical(k)
	if err != nil {
		return false, nil // malformed: the upload will refuse it after authentication
	}
	return bytes.Equal(old, c), nil
}

// UploadCrossSigning stores a user's cross-signing keys. The self-signing and user-signing
// keys must be signed by the master key of the same request, or else the stored one. The
// caller has done user-interactive authentication when CrossSigningNeedsAuth said so.
func (s *Service) UploadCrossSigning(ctx context.Context, user id.UserID, req *CrossSigningUpload) error {
	u := user.String()
	keys := map[string]*csKey{}
	for usage, raw := range req.byUsage() {
		k, err := parseCrossSigningKey(raw)
		if err != nil {
			return err
		}
		if k.user != u {
			return merr.InvalidParam("the %s key must belong to %s", usage, u)
		}
		if !slices.Contains(k.usage, usage) {
			return merr.InvalidParam("the %s key must have usage %q", usage, usage)
		}
		if k.raw, err = canonical(raw); err != nil {
			return err
		}
		keys[usage] = k
	}
	if len(keys) == 0 {
		return nil
	}
	return s.st.Update(func(txn *store.Txn) error {
		master := keys[UsageMaster]
		if master == nil {
			raw, err := txn.CrossSigningKey(u, UsageMaster)
			if errors.Is(err, store.ErrNotFound) {
				return merr.MissingParam("no master signing key is available")
			}
			if err != nil {
				return err
			}
			if master, err = parseCrossSigningKey(raw); err != nil {
				return err
			}
		}
		for _, usage := range []string{UsageSelfSigning, UsageUserSigning} {
			if k := keys[usage]; k != nil && !verify(k.raw, u, master.pub, master.pub) {
				return errInvalidSignature("the %s key is not signed by the master key", usage)
			}
		}
		devs, err := txn.Devices(u)
		if err != nil {
			return err
		}
		for _, k := range keys {
			for _, d := range devs {
				if d.ID == k.pub {
					return merr.Forbidden("a cross-signing public key equals the ID of one of your devices")
				}
			}
		}
		changed := false
		for _, usage := range []string{UsageMaster, UsageSelfSigning, UsageUserSigning} {
			k := keys[usage]
			if k == nil {
				continue
			}
			old, err := txn.CrossSigningKey(u, usage)
			switch {
			case err == nil:
				if bytes.Equal(old, k.raw) {
					continue
				}
				if ok, err := parseCrossSigningKey(old); err == nil && ok.pub != k.pub {
					// Signatures of the replaced key say nothing about the new one.
					if err := txn.DeleteKeySignatures(u, ok.pub); err != nil {
						return err
					}
				}
			case !errors.Is(err, store.ErrNotFound):
				return err
			}
			if err := txn.PutCrossSigningKey(u, usage, k.raw); err != nil {
				return err
			}
			changed = true
		}
		if !changed {
			return nil
		}
		pos, err := txn.MarkDeviceListChanged(u)
		if err != nil {
			return err
		}
		txn.Notify(pos, change.Change{Pos: pos, Kind: change.DeviceKeys, User: u})
		return nil
	})
}
