package store

import (
	"encoding/json"
	"errors"
)

// E2EE records: device keys, one-time and fallback keys, cross-signing keys and signatures, the
// device-list change stream, to-device inboxes and server-side key backups. The keys package
// decides what they mean; this file only keeps them consistent (a one-time key and its index
// and count are written together).

// DeviceKeysRecord is a device's identity keys as uploaded (the spec's DeviceKeys object).
type DeviceKeysRecord struct {
	Keys json.RawMessage `json:"k"`
	Pos  uint64          `json:"p"` // stream position of the upload
}

// OTKCountRecord counts a device's unclaimed one-time keys per algorithm and numbers uploads.
type OTKCountRecord struct {
	Counts map[string]int `json:"c,omitempty"`
	Next   uint64         `json:"n"` // sequence number of the next upload (claim order)
}

// FallbackKeyRecord is a device's fallback key for one algorithm.
type FallbackKeyRecord struct {
	Algorithm string          `json:"a"`
	KeyID     string          `json:"i"`
	Key       json.RawMessage `json:"k"`
	Used      bool            `json:"u,omitempty"`
}

// ToDeviceRecord is one queued to-device message.
type ToDeviceRecord struct {
	Sender  string          `json:"s"`
	Type    string          `json:"t"`
	Content json.RawMessage `json:"c"`
}

// ToDeviceMessage is a queued message with its stream position.
type ToDeviceMessage struct {
	Pos uint64
	ToDeviceRecord
}

// BackupVersionRecord is one server-side key backup version of a user.
type BackupVersionRecord struct {
	Algorithm string          `json:"a"`
	AuthData  json.RawMessage `json:"d"`
	Etag      uint64          `json:"e"`
	Count     int             `json:"n"`
}

// ---- device keys

// PutDeviceKeys stores a device's identity keys.
func (t *Txn) PutDeviceKeys(user, device string, rec *DeviceKeysRecord) error {
	return t.setJSON(deviceKeysKey(user, device), rec)
}

// DeviceKeys loads a device's identity keys.
func (t *Txn) DeviceKeys(user, device string) (*DeviceKeysRecord, error) {
	r, err := getJSON[DeviceKeysRecord](t, deviceKeysKey(user, device))
	if err != nil {
		return nil, err
	}
	return &r, nil
}

// UserDeviceKeys calls fn for every device of user that has identity keys.
func (t *Txn) UserDeviceKeys(user string, fn func(device string, rec *DeviceKeysRecord) (bool, error)) error {
	p := deviceKeysPrefix(user)
	return t.scan(p, nil, false, true, func(k, v []byte) (bool, error) {
		r, err := getJSONBytes[DeviceKeysRecord](v)
		if err != nil {
			return false, err
		}
		return fn(string(k[len(p):]), &r)
	})
}

// DeleteDeviceE2EE removes everything end-to-end encryption keeps for one device: identity
// keys, one-time and fallback keys, signatures of its key, its to-device inbox and the
// transaction IDs it used. It reports whether the device had identity keys.
func (t *Txn) DeleteDeviceE2EE(user, device string) (hadKeys bool, err error) {
	hadKeys, err = t.has(deviceKeysKey(user, device))
	if err != nil {
		return false, err
	}
	if err := t.del(deviceKeysKey(user, device)); err != nil {
		return false, err
	}
	if err := t.del(otkCountKey(user, device)); err != nil {
		return false, err
	}
	for _, p := range [][]byte{oneTimeKeyDevPrefix(user, device), otkIndexDevPrefix(user, device),
		fallbackKeyDevPrefix(user, device), keySigPrefix(user, device), toDevicePrefix(user, device),
		toDeviceTxnDevPrefix(user, device)} {
		if _, err := t.deletePrefix(p, 0); err != nil {
			return false, err
		}
	}
	return hadKeys, nil
}

// deletePrefix deletes up to limit keys under prefix (0 = all) and reports how many it deleted.
func (t *Txn) deletePrefix(prefix []byte, limit int) (int, error) {
	var ks [][]byte
	err := t.scan(prefix, nil, false, false, func(k, _ []byte) (bool, error) {
		ks = append(ks, k)
		return limit == 0 || len(ks) < limit, nil
	})
	if err != nil {
		return 0, err
	}
	for _, k := range ks {
		if err := t.del(k); err != nil {
			return 0, err
		}
	}
	return len(ks), nil
}

// ---- one-time keys

// OTKCounts loads a device's one-time-key counts (zero record when none).
func (t *Txn) OTKCounts(user, device string) (OTKCountRecord, error) {
	r, err := getJSON[OTKCountRecord](t, otkCountKey(user, device))
	if errors.Is(err, ErrNotFound) {
		return OTKCountRecord{}, nil
	}
	return r, err
}

// OneTimeKey returns the queued one-time key alg:keyID of a device, or ErrNotFound.
func (t *Txn) OneTimeKey(user, device, alg, keyID string) (json.RawMessage, error) {
	b, err := t.get(otkIndexKey(user, device, alg, keyID))
	if err != nil {
		return nil, err
	}
	return t.get(oneTimeKeyKey(user, device, alg, U64(b), keyID))
}

// AddOneTimeKeys queues keys (key ID -> key object) of one algorithm as one upload; they are
// claimed after every key of earlier uploads. Keys already queued under the same ID are
// replaced in place.
func (t *Txn) AddOneTimeKeys(user, device, alg string, keys map[string]json.RawMessage) error {
	if len(keys) == 0 {
		return nil
	}
	c, err := t.OTKCounts(user, device)
	if err != nil {
		return err
	}
	seq := c.Next
	c.Next++
	if c.Counts == nil {
		c.Counts = map[string]int{}
	}
	for id, k := range keys {
		ik := otkIndexKey(user, device, alg, id)
		if old, err := t.get(ik); err == nil {
			if err := t.del(oneTimeKeyKey(user, device, alg, U64(old), id)); err != nil {
				return err
			}
		} else if errors.Is(err, ErrNotFound) {
			c.Counts[alg]++
		} else {
			return err
		}
		if err := t.set(ik, be64(seq)); err != nil {
			return err
		}
		if err := t.set(oneTimeKeyKey(user, device, alg, seq, id), k); err != nil {
			return err
		}
	}
	return t.setJSON(otkCountKey(user, device), c)
}

// ClaimOneTimeKey removes and returns the oldest queued one-time key of an algorithm.
// ok is false when the device has none.
func (t *Txn) ClaimOneTimeKey(user, device, alg string) (keyID string, k json.RawMessage, ok bool, err error) {
	p := oneTimeKeyAlgPrefix(user, device, alg)
	var full []byte
	err = t.scan(p, nil, false, true, func(key, v []byte) (bool, error) {
		full, k = key, v
		return false, nil
	})
	if err != nil || full == nil {
		return "", nil, false, err
	}
	keyID = string(full[len(p)+8:])
	if err := t.del(full); err != nil {
		return "", nil, false, err
	}
	if err := t.del(otkIndexKey(user, device, alg, keyID)); err != nil {
		return "", nil, false, err
	}
	c, err := t.OTKCounts(user, device)
	if err != nil {
		return "", nil, false, err
	}
	if c.Counts[alg] > 0 {
		c.Counts[alg]--
	}
	if c.Counts[alg] == 0 {
		delete(c.Counts, alg)
	}
	return keyID, k, true, t.setJSON(otkCountKey(user, device), c)
}

// ---- fallback keys

// PutFallbackKey stores (replaces) a device's fallback key for rec.Algorithm.
func (t *Txn) PutFallbackKey(user, device string, rec *FallbackKeyRecord) error {
	return t.setJSON(fallbackKeyKey(user, device, rec.Algorithm), rec)
}

// FallbackKey loads a device's fallback key for an algorithm.
func (t *Txn) FallbackKey(user, device, alg string) (*FallbackKeyRecord, error) {
	r, err := getJSON[FallbackKeyRecord](t, fallbackKeyKey(user, device, alg))
	if err != nil {
		return nil, err
	}
	return &r, nil
}

// FallbackKeys lists a device's fallback keys, one per algorithm, in algorithm order.
func (t *Txn) FallbackKeys(user, device string) ([]*FallbackKeyRecord, error) {
	var out []*FallbackKeyRecord
	err := t.scan(fallbackKeyDevPrefix(user, device), nil, false, true, func(_, v []byte) (bool, error) {
		r, err := getJSONBytes[FallbackKeyRecord](v)
		if err != nil {
			return false, err
		}
		out = append(out, &r)
		return true, nil
	})
	return out, err
}

// ---- cross-signing keys and signatures

// PutCrossSigningKey stores a user's cross-signing key of a usage (master, self_signing,
// user_signing).
func (t *Txn) PutCrossSigningKey(user, usage string, k json.RawMessage) error {
	return t.set(crossSigningKey(user, usage), k)
}

// CrossSigningKey loads a user's cross-signing key of a usage.
func (t *Txn) CrossSigningKey(user, usage string) (json.RawMessage, error) {
	return t.get(crossSigningKey(user, usage))
}

// PutKeySignature records signer's signature (by signerKeyID, e.g. "ed25519:ABC") of user's
// key keyID (a device ID or a cross-signing public key).
func (t *Txn) PutKeySignature(user, keyID, signer, signerKeyID, sig string) error {
	return t.set(keySigKey(user, keyID, signer, signerKeyID), []byte(sig))
}

// KeySignatures calls fn for every recorded signature of user's key keyID.
func (t *Txn) KeySignatures(user, keyID string, fn func(signer, signerKeyID, sig string) (bool, error)) error {
	p := keySigPrefix(user, keyID)
	return t.scan(p, nil, false, true, func(k, v []byte) (bool, error) {
		signer, rest := splitNul(k[len(p):])
		return fn(signer, string(rest), string(v))
	})
}

// DeleteKeySignatures forgets every recorded signature of user's key keyID.
func (t *Txn) DeleteKeySignatures(user, keyID string) error {
	_, err := t.deletePrefix(keySigPrefix(user, keyID), 0)
	return err
}

// ---- device-list change stream

// MarkDeviceListChanged records that user's device list or cross-signing keys changed, at a
// newly allocated position, which it returns for the note. Only the newest change of each user
// is kept: readers need to know whether a user changed in a window, not how often.
func (t *Txn) MarkDeviceListChanged(user string) (uint64, error) {
	if old, err := t.get(devListUserKey(user)); err == nil {
		if err := t.del(devListStreamKey(U64(old))); err != nil {
			return 0, err
		}
	} else if !errors.Is(err, ErrNotFound) {
		return 0, err
	}
	pos, err := t.AllocPos(KindDevice)
	if err != nil {
		return 0, err
	}
	if err := t.set(devListUserKey(user), be64(pos)); err != nil {
		return 0, err
	}
	return pos, t.set(devListStreamKey(pos), []byte(user))
}

// DeviceListChanges calls fn for every user whose newest device-list change lies in
// (since, upto], in position order.
func (t *Txn) DeviceListChanges(since, upto uint64, fn func(pos uint64, user string) (bool, error)) error {
	p := []byte{pDevListS}
	return t.scan(p, devListStreamKey(since+1), false, true, func(k, v []byte) (bool, error) {
		pos := U64(k[1:])
		if pos > upto {
			return false, nil
		}
		return fn(pos, string(v))
	})
}

// ---- to-device inboxes

// PutToDevice queues a message for a device at pos.
func (t *Txn) PutToDevice(user, device string, pos uint64, rec *ToDeviceRecord) error {
	return t.setJSON(toDeviceKey(user, device, pos), rec)
}

// ToDevice lists the messages queued for a device with positions in (since, upto], oldest
// first, at most limit of them (0 = no limit).
func (t *Txn) ToDevice(user, device string, since, upto uint64, limit int) ([]ToDeviceMessage, error) {
	var out []ToDeviceMessage
	p := toDevicePrefix(user, device)
	err := t.scan(p, toDeviceKey(user, device, since+1), false, true, func(k, v []byte) (bool, error) {
		pos := U64(k[len(p):])
		if pos > upto {
			return false, nil
		}
		r, err := getJSONBytes[ToDeviceRecord](v)
		if err != nil {
			return false, err
		}
		out = append(out, ToDeviceMessage{Pos: pos, ToDeviceRecord: r})
		return limit == 0 || len(out) < limit, nil
	})
	return out, err
}

// HasToDeviceUpTo reports whether any message at a position <= upto is queued for a device.
func (t *Txn) HasToDeviceUpTo(user, device string, upto uint64) (bool, error) {
	found := false
	p := toDevicePrefix(user, device)
	err := t.scan(p, nil, false, false, func(k, _ []byte) (bool, error) {
		found = U64(k[len(p):]) <= upto
		return false, nil
	})
	return found, err
}

// DeleteToDeviceUpTo deletes a device's messages at positions <= upto (acknowledged ones),
// at most limit of them (0 = all), and reports how many.
func (t *Txn) DeleteToDeviceUpTo(user, device string, upto uint64, limit int) (int, error) {
	var ks [][]byte
	p := toDevicePrefix(user, device)
	err := t.scan(p, nil, false, false, func(k, _ []byte) (bool, error) {
		if U64(k[len(p):]) > upto {
			return false, nil
		}
		ks = append(ks, k)
		return limit == 0 || len(ks) < limit, nil
	})
	if err != nil {
		return 0, err
	}
	for _, k := range ks {
		if err := t.del(k); err != nil {
			return 0, err
		}
	}
	return len(ks), nil
}

// TrimToDevice keeps only the newest keep messages of a device's inbox and reports how many
// older ones it dropped.
func (t *Txn) TrimToDevice(user, device string, keep int) (int, error) {
	var old [][]byte
	n := 0
	err := t.scan(toDevicePrefix(user, device), nil, true, false, func(k, _ []byte) (bool, error) {
		n++
		if n > keep {
			old = append(old, k)
		}
		return true, nil
	})
	if err != nil {
		return 0, err
	}
	for _, k := range old {
		if err := t.del(k); err != nil {
			return 0, err
		}
	}
	return len(old), nil
}

// ToDeviceTxnSeen reports whether a sendToDevice transaction was already processed, and
// records it when it was not.
func (t *Txn) ToDeviceTxnSeen(user, device, typ, txn string) (bool, error) {
	k := toDeviceTxnKey(user, device, typ, txn)
	seen, err := t.has(k)
	if err != nil || seen {
		return seen, err
	}
	return false, t.set(k, nil)
}

// ---- key backup

// NewBackupVersion allocates the next backup version number of a user. Numbers are never
// reused, so a deleted version stays distinguishable from one that never existed.
func (t *Txn) NewBackupVersion(user string) (uint64, error) {
	last, err := t.LastBackupVersionNumber(user)
	if err != nil {
		return 0, err
	}
	return last + 1, t.set(backupSeqKey(user), be64(last+1))
}

// LastBackupVersionNumber is the highest version number ever allocated for a user (0: none).
func (t *Txn) LastBackupVersionNumber(user string) (uint64, error) {
	b, err := t.get(backupSeqKey(user))
	if errors.Is(err, ErrNotFound) {
		return 0, nil
	}
	return U64(b), err
}

// PutBackupVersion stores a backup version record.
func (t *Txn) PutBackupVersion(user string, ver uint64, rec *BackupVersionRecord) error {
	return t.setJSON(backupVersionKey(user, ver), rec)
}

// BackupVersion loads a backup version record.
func (t *Txn) BackupVersion(user string, ver uint64) (*BackupVersionRecord, error) {
	r, err := getJSON[BackupVersionRecord](t, backupVersionKey(user, ver))
	if err != nil {
		return nil, err
	}
	return &r, nil
}

// LatestBackupVersion returns the newest existing backup version of a user, or ErrNotFound.
func (t *Txn) LatestBackupVersion(user string) (uint64, *BackupVersionRecord, error) {
	var ver uint64
	var rec *BackupVersionRecord
	p := backupVersionPrefix(user)
	err := t.scan(p, nil, true, true, func(k, v []byte) (bool, error) {
		r, err := getJSONBytes[BackupVersionRecord](v)
		if err != nil {
			return false, err
		}
		ver, rec = U64(k[len(p):]), &r
		return false, nil
	})
	if err == nil && rec == nil {
		err = ErrNotFound
	}
	return ver, rec, err
}

// DeleteBackupVersion removes a version record (its keys go with DeleteBackupKeys).
func (t *Txn) DeleteBackupVersion(user string, ver uint64) error {
	return t.del(backupVersionKey(user, ver))
}

// PutBackupKey stores the backup of one session.
func (t *Txn) PutBackupKey(user string, ver uint64, room, session string, data json.RawMessage) error {
	return t.set(backupKeyKey(user, ver, room, session), data)
}

// BackupKey loads the backup of one session.
func (t *Txn) BackupKey(user string, ver uint64, room, session string) (json.RawMessage, error) {
	return t.get(backupKeyKey(user, ver, room, session))
}

// DeleteBackupKey deletes the backup of one session and reports whether there was one.
func (t *Txn) DeleteBackupKey(user string, ver uint64, room, session string) (bool, error) {
	k := backupKeyKey(user, ver, room, session)
	ok, err := t.has(k)
	if err != nil || !ok {
		return false, err
	}
	return true, t.del(k)
}

// BackupKeys calls fn for every backed-up session of a version, of one room or ("") of all.
func (t *Txn) BackupKeys(user string, ver uint64, room string, fn func(room, session string, data json.RawMessage) (bool, error)) error {
	p := backupKeyPrefix(user, ver, "")
	start := backupKeyPrefix(user, ver, room)
	return t.scan(start, nil, false, true, func(k, v []byte) (bool, error) {
		r, s := splitNul(k[len(p):])
		return fn(r, string(s), v)
	})
}

// DeleteBackupKeys deletes up to limit (0 = all) backed-up sessions of a version, of one room
// or ("") of all, and reports how many.
func (t *Txn) DeleteBackupKeys(user string, ver uint64, room string, limit int) (int, error) {
	return t.deletePrefix(backupKeyPrefix(user, ver, room), limit)
}
