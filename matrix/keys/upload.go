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

// UploadRequest is the body of POST /keys/upload.
type UploadRequest struct {
	DeviceKeys   json.RawMessage            `json:"device_keys"`
	OneTimeKeys  map[string]json.RawMessage `json:"one_time_keys"`
	FallbackKeys map[string]json.RawMessage `json:"fallback_keys"`
}

// deviceKeys is the part of the spec's DeviceKeys object the server checks.
type deviceKeys struct {
	UserID     string            `json:"user_id"`
	DeviceID   string            `json:"device_id"`
	Algorithms []string          `json:"algorithms"`
	Keys       map[string]string `json:"keys"`
	Signatures Signatures        `json:"signatures"`
}

// maxOneTimeKeys bounds the unclaimed one-time keys of one algorithm a device may hold.
const maxOneTimeKeys = 1000

// Upload stores a device's identity, one-time and fallback keys and returns the device's
// one-time-key counts. Re-uploading identical keys changes nothing (clients retry uploads).
func (s *Service) Upload(ctx context.Context, user id.UserID, device string, req *UploadRequest) (map[string]int, error) {
	u := user.String()
	var dk json.RawMessage
	if len(req.DeviceKeys) > 0 && string(req.DeviceKeys) != "null" {
		var err error
		if dk, err = checkDeviceKeys(req.DeviceKeys, u, device); err != nil {
			return nil, err
		}
	}
	otks, err := splitKeys(req.OneTimeKeys, "one_time_keys")
	if err != nil {
		return nil, err
	}
	fbks, err := splitKeys(req.FallbackKeys, "fallback_keys")
	if err != nil {
		return nil, err
	}
	var counts map[string]int
	err = s.st.Update(func(txn *store.Txn) error {
		if dk != nil {
			old, err := txn.DeviceKeys(u, device)
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
			if old == nil || !bytes.Equal(old.Keys, dk) {
				pos, err := txn.MarkDeviceListChanged(u)
				if err != nil {
					return err
				}
				if err := txn.PutDeviceKeys(u, device, &store.DeviceKeysRecord{Keys: dk, Pos: pos}); err != nil {
					return err
				}
				txn.Notify(pos, change.Change{Pos: pos, Kind: change.DeviceKeys, User: u, Device: device})
			}
		}
		if err := putOneTimeKeys(txn, u, device, otks); err != nil {
			return err
		}
		if err := putFallbackKeys(txn, u, device, fbks); err != nil {
			return err
		}
		c, err := txn.OTKCounts(u, device)
		if err != nil {
			return err
		}
		counts = countsWithDefault(c.Counts)
		return nil
	})
	return counts, err
}

func countsWithDefault(c map[string]int) map[string]int {
	out := map[string]int{AlgSignedCurve25519: 0}
	for k, v := range c {
		out[k] = v
	}
	return out
}

// checkDeviceKeys validates a DeviceKeys object and returns its canonical form.
func checkDeviceKeys(raw json.RawMessage, user, device string) (json.RawMessage, error) {
	var dk deviceKeys
	if err := json.Unmarshal(raw, &dk); err != nil {
		return nil, merr.BadJSON("device_keys is malformed: %v", err)
	}
	if dk.UserID == "" || dk.DeviceID == "" || dk.Algorithms == nil || dk.Keys == nil || dk.Signatures == nil {
		return nil, merr.BadJSON("device_keys needs user_id, device_id, algorithms, keys and signatures")
	}
	if dk.UserID != user || dk.DeviceID != device {
		return nil, merr.InvalidParam("device_keys must belong to %s's device %s", user, device)
	}
	if sig := dk.Signatures[user]["ed25519:"+device]; sig != "" {
		pub := dk.Keys["ed25519:"+device]
		if pub == "" || !verify(raw, user, device, pub) {
			return nil, errInvalidSignature("the device keys' self-signature is invalid")
		}
	}
	return canonical(raw)
}

// algKey is one uploaded key with its algorithm and ID split out.
type algKey struct {
	alg, id string
	key     json.RawMessage
}

// splitKeys splits a map of "<algorithm>:<key_id>" -> key into sorted entries with canonical keys.
func splitKeys(m map[string]json.RawMessage, field string) ([]algKey, error) {
	out := make([]algKey, 0, len(m))
	for name, k := range m {
		alg, kid, ok := strings.Cut(name, ":")
		if !ok || alg == "" || kid == "" {
			return nil, merr.InvalidParam("%s: %q is not <algorithm>:<key_id>", field, name)
		}
		if err := checkIDPart(field+" key ID", name); err != nil {
			return nil, err
		}
		t := bytes.TrimSpace(k)
		if len(t) == 0 || (t[0] != '{' && t[0] != '"') {
			return nil, merr.BadJSON("%s: %q must be a key object or string", field, name)
		}
		c, err := canonical(t)
		if err != nil {
			return nil, err
		}
		out = append(out, algKey{alg: alg, id: kid, key: c})
	}
	slices.SortFunc(out, func(a, b algKey) int { return strings.Compare(a.alg+":"+a.id, b.alg+":"+b.id) })
	return out, nil
}

func putOneTimeKeys(txn *store.Txn, user, device string, keys []algKey) error {
	byAlg := map[string]map[string]json.RawMessage{}
	for _, k := range keys {
		old, err := txn.OneTimeKey(user, device, k.alg, k.id)
		switch {
		case err == nil:
			if !bytes.Equal(old, k.key) {
				return merr.InvalidParam("one-time key %s:%s already exists with different content", k.alg, k.id)
			}
			continue // an identical re-upload
		case !errors.Is(err, store.ErrNotFound):
			return err
		}
		if byAlg[k.alg] == nil {
			byAlg[k.alg] = map[string]json.RawMessage{}
		}
		byAlg[k.alg][k.id] = k.key
	}
	if len(byAlg) == 0 {
		return nil
	}
	c, err := txn.OTKCounts(user, device)
	if err != nil {
		return err
	}
	for alg, m := range byAlg {
		if c.Counts[alg]+len(m) > maxOneTimeKeys {
			return merr.InvalidParam("a device may hold at most %d unclaimed %s keys", maxOneTimeKeys, alg)
		}
		if err := txn.AddOneTimeKeys(user, device, alg, m); err != nil {
			return err
		}
	}
	return nil
}

// putFallbackKeys keeps one fallback key per algorithm: a new key replaces the old one and is
// unused; re-uploading the current key keeps its used flag.
func putFallbackKeys(txn *store.Txn, user, device string, keys []algKey) error {
	latest := map[string]algKey{}
	for _, k := range keys {
		latest[k.alg] = k // sorted: the highest key ID of an algorithm wins
	}
	for alg, k := range latest {
		old, err := txn.FallbackKey(user, device, alg)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if old != nil && old.KeyID == k.id && bytes.Equal(old.Key, k.key) {
			continue
		}
		if err := txn.PutFallbackKey(user, device, &store.FallbackKeyRecord{Algorithm: alg, KeyID: k.id, Key: k.key}); err != nil {
			return err
		}
	}
	return nil
}
