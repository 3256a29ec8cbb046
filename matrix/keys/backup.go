package keys

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strconv"

	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/merr"
	"github.com/hearth-home/hearth/matrix/store"
)

// Server-side key backups. A user's versions are numbered 1, 2, ... and never reused; the
// newest existing one is the current version, the only one keys may be written to. Every
// version carries an etag (a counter bumped by every change of its keys) and the number of
// sessions it holds.

// backupBatch bounds the sessions written or deleted in one transaction, so a large backup
// never makes a transaction too big for a small board's memtable.
const backupBatch = 256

// BackupInfo describes one backup version (GET /room_keys/version).
type BackupInfo struct {
	Algorithm string          `json:"algorithm"`
	AuthData  json.RawMessage `json:"auth_data"`
	Count     int             `json:"count"`
	Etag      string          `json:"etag"`
	Version   string          `json:"version"`
}

// BackupCounts is the answer to a change of backed-up keys.
type BackupCounts struct {
	Etag  string `json:"etag"`
	Count int    `json:"count"`
}

// KeyBackupData is the spec's KeyBackupData (the fields the server compares).
type KeyBackupData struct {
	FirstMessageIndex *int64          `json:"first_message_index"`
	ForwardedCount    *int64          `json:"forwarded_count"`
	IsVerified        *bool           `json:"is_verified"`
	SessionData       json.RawMessage `json:"session_data"`
}

func etag(n uint64) string { return strconv.FormatUint(n, 10) }

func parseVersion(v string) (uint64, bool) {
	n, err := strconv.ParseUint(v, 10, 64)
	return n, err == nil && n > 0
}

func errUnknownVersion() error { return merr.NotFound("unknown backup version") }

// CreateBackup creates a new backup version, which becomes the current one.
func (s *Service) CreateBackup(ctx context.Context, user id.UserID, algorithm string, authData json.RawMessage) (string, error) {
	if algorithm == "" {
		return "", merr.MissingParam("algorithm is required")
	}
	if _, err := object(authData); err != nil {
		return "", merr.BadJSON("auth_data must be a JSON object")
	}
	var ver uint64
	err := s.st.Update(func(txn *store.Txn) error {
		var err error
		if ver, err = txn.NewBackupVersion(user.String()); err != nil {
			return err
		}
		return txn.PutBackupVersion(user.String(), ver, &store.BackupVersionRecord{Algorithm: algorithm, AuthData: authData})
	})
	return strconv.FormatUint(ver, 10), err
}

// Backup describes a version, or the current one when version is "".
func (s *Service) Backup(ctx context.Context, user id.UserID, version string) (*BackupInfo, error) {
	var out *BackupInfo
	err := s.st.View(func(txn *store.Txn) error {
		var ver uint64
		var rec *store.BackupVersionRecord
		var err error
		if version == "" {
			ver, rec, err = txn.LatestBackupVersion(user.String())
			if errors.Is(err, store.ErrNotFound) {
				return merr.NotFound("no current backup version")
			}
		} else {
			var ok bool
			if ver, ok = parseVersion(version); !ok {
				return errUnknownVersion()
			}
			rec, err = txn.BackupVersion(user.String(), ver)
			if errors.Is(err, store.ErrNotFound) {
				return errUnknownVersion()
			}
		}
		if err != nil {
			return err
		}
		out = &BackupInfo{Algorithm: rec.Algorithm, AuthData: rec.AuthData, Count: rec.Count, Etag: etag(rec.Etag), Version: strconv.FormatUint(ver, 10)}
		return nil
	})
	return out, err
}

// UpdateBackup replaces a version's auth_data; the algorithm must stay the same and a version
// in the body must equal the one in the path.
func (s *Service) UpdateBackup(ctx context.Context, user id.UserID, version, algorithm string, authData json.RawMessage, bodyVersion string) error {
	ver, ok := parseVersion(version)
	if !ok {
		return errUnknownVersion()
	}
	if bodyVersion != "" && bodyVersion != version {
		return merr.InvalidParam("the version in the body does not match the path")
	}
	if _, err := object(authData); err != nil {
		return merr.BadJSON("auth_data must be a JSON object")
	}
	return s.st.Update(func(txn *store.Txn) error {
		rec, err := txn.BackupVersion(user.String(), ver)
		if errors.Is(err, store.ErrNotFound) {
			return errUnknownVersion()
		}
		if err != nil {
			return err
		}
		if algorithm != rec.Algorithm {
			return merr.InvalidParam("the algorithm does not match the backup's")
		}
		rec.AuthData = authData
		return txn.PutBackupVersion(user.String(), ver, rec)
	})
}

// DeleteBackup deletes a version and its keys. Deleting a version that was already deleted
// succeeds; one that never existed is M_NOT_FOUND.
func (s *Service) DeleteBackup(ctx context.Context, user id.UserID, version string) error {
	ver, ok := parseVersion(version)
	if !ok {
		return errUnknownVersion()
	}
	u := user.String()
	err := s.st.Update(func(txn *store.Txn) error {
		last, err := txn.LastBackupVersionNumber(u)
		if err != nil {
			return err
		}
		if ver > last {
			return errUnknownVersion()
		}
		return txn.DeleteBackupVersion(u, ver)
	})
	if err != nil {
		return err
	}
	// The version is gone; its keys follow in bounded batches. A crash in between leaves
	// keys under a version number that is never reused, and a later delete removes them.
	for {
		n := 0
		err := s.st.Update(func(txn *store.Txn) error {
			var err error
			n, err = txn.DeleteBackupKeys(u, ver, "", backupBatch)
			return err
		})
		if err != nil || n < backupBatch {
			return err
		}
	}
}

// currentVersion loads the version keys may be written to: it must exist and be the newest.
func currentVersion(txn *store.Txn, user, version string) (uint64, *store.BackupVersionRecord, error) {
	latest, rec, err := txn.LatestBackupVersion(user)
	if errors.Is(err, store.ErrNotFound) {
		return 0, nil, errUnknownVersion()
	}
	if err != nil {
		return 0, nil, err
	}
	ver, ok := parseVersion(version)
	if !ok || ver != latest {
		return 0, nil, errWrongVersion(strconv.FormatUint(latest, 10))
	}
	return ver, rec, nil
}

// existingVersion loads any existing version (reads and deletes may address old versions).
func existingVersion(txn *store.Txn, user, version string) (uint64, *store.BackupVersionRecord, error) {
	ver, ok := parseVersion(version)
	if !ok {
		return 0, nil, errUnknownVersion()
	}
	rec, err := txn.BackupVersion(user, ver)
	if errors.Is(err, store.ErrNotFound) {
		return 0, nil, errUnknownVersion()
	}
	return ver, rec, err
}

// backupEntry is one session to store.
type backupEntry struct {
	room, session string
	data          *KeyBackupData
	raw           json.RawMessage
}

// PutBackupKeys stores sessions (room ID -> session ID -> KeyBackupData) in the current
// version. A session already backed up is replaced only by a better key: a verified one over
// an unverified one, then a lower first_message_index, then a lower forwarded_count.
func (s *Service) PutBackupKeys(ctx context.Context, user id.UserID, version string, rooms map[string]map[string]json.RawMessage) (*BackupCounts, error) {
	var entries []backupEntry
	for room, sessions := range rooms {
		if err := checkIDPart("room ID", room); err != nil {
			return nil, err
		}
		for sess, raw := range sessions {
			if err := checkIDPart("session ID", sess); err != nil {
				return nil, err
			}
			var d KeyBackupData
			if err := json.Unmarshal(raw, &d); err != nil {
				return nil, merr.BadJSON("malformed key backup data for session %s: %v", sess, err)
			}
			if d.FirstMessageIndex == nil || d.ForwardedCount == nil || d.IsVerified == nil || len(d.SessionData) == 0 {
				return nil, merr.BadJSON("key backup data needs first_message_index, forwarded_count, is_verified and session_data")
			}
			if _, err := object(d.SessionData); err != nil {
				return nil, merr.BadJSON("session_data must be a JSON object")
			}
			entries = append(entries, backupEntry{room: room, session: sess, data: &d, raw: raw})
		}
	}
	slices.SortFunc(entries, func(a, b backupEntry) int {
		if a.room != b.room {
			if a.room < b.room {
				return -1
			}
			return 1
		}
		if a.session < b.session {
			return -1
		}
		if a.session > b.session {
			return 1
		}
		return 0
	})
	u := user.String()
	var out *BackupCounts
	for start := 0; start == 0 || start < len(entries); start += backupBatch {
		batch := entries[start:min(start+backupBatch, len(entries))]
		err := s.st.Update(func(txn *store.Txn) error {
			ver, rec, err := currentVersion(txn, u, version)
			if err != nil {
				return err
			}
			changed := false
			for _, e := range batch {
				old, err := txn.BackupKey(u, ver, e.room, e.session)
				switch {
				case err == nil:
					var od KeyBackupData
					if json.Unmarshal(old, &od) == nil && !better(e.data, &od) {
						continue
					}
				case errors.Is(err, store.ErrNotFound):
					rec.Count++
				default:
					return err
				}
				if err := txn.PutBackupKey(u, ver, e.room, e.session, e.raw); err != nil {
					return err
				}
				changed = true
			}
			if changed {
				rec.Etag++
				if err := txn.PutBackupVersion(u, ver, rec); err != nil {
					return err
				}
			}
			out = &BackupCounts{Etag: etag(rec.Etag), Count: rec.Count}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// better reports whether key n should replace key o (spec: server-side key backups).
func better(n, o *KeyBackupData) bool {
	nv, ov := deref(n.IsVerified), deref(o.IsVerified)
	if nv != ov {
		return nv
	}
	nf, of := derefInt(n.FirstMessageIndex), derefInt(o.FirstMessageIndex)
	if nf != of {
		return nf < of
	}
	return derefInt(n.ForwardedCount) < derefInt(o.ForwardedCount)
}

func deref(b *bool) bool {
	return b != nil && *b
}

func derefInt(n *int64) int64 {
	if n == nil {
		return 0
	}
	return *n
}

// BackupKeys returns the backed-up sessions of a version: all rooms (room ""), one room, or
// one session (room and session set). A missing session is M_NOT_FOUND; an empty room or
// backup is an empty map.
func (s *Service) BackupKeys(ctx context.Context, user id.UserID, version, room, session string) (map[string]map[string]json.RawMessage, error) {
	out := map[string]map[string]json.RawMessage{}
	u := user.String()
	err := s.st.View(func(txn *store.Txn) error {
		ver, _, err := existingVersion(txn, u, version)
		if err != nil {
			return err
		}
		if session != "" {
			d, err := txn.BackupKey(u, ver, room, session)
			if errors.Is(err, store.ErrNotFound) {
				return merr.NotFound("key not found")
			}
			if err != nil {
				return err
			}
			out[room] = map[string]json.RawMessage{session: d}
			return nil
		}
		return txn.BackupKeys(u, ver, room, func(r, sess string, d json.RawMessage) (bool, error) {
			if out[r] == nil {
				out[r] = map[string]json.RawMessage{}
			}
			out[r][sess] = d
			return true, nil
		})
	})
	return out, err
}

// DeleteBackupKeys deletes backed-up sessions of a version: all (room ""), one room's, or one
// session.
func (s *Service) DeleteBackupKeys(ctx context.Context, user id.UserID, version, room, session string) (*BackupCounts, error) {
	u := user.String()
	var out *BackupCounts
	for {
		n := 0
		err := s.st.Update(func(txn *store.Txn) error {
			ver, rec, err := existingVersion(txn, u, version)
			if err != nil {
				return err
			}
			n = 0
			if session != "" {
				ok, err := txn.DeleteBackupKey(u, ver, room, session)
				if err != nil {
					return err
				}
				if ok {
					n = 1
				}
			} else if n, err = txn.DeleteBackupKeys(u, ver, room, backupBatch); err != nil {
				return err
			}
			if n > 0 {
				rec.Count = max(0, rec.Count-n)
				rec.Etag++
				if err := txn.PutBackupVersion(u, ver, rec); err != nil {
					return err
				}
			}
			out = &BackupCounts{Etag: etag(rec.Etag), Count: rec.Count}
			return nil
		})
		if err != nil {
			return nil, err
		}
		if session != "" || n < backupBatch {
			return out, nil
		}
	}
}
