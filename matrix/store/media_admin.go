package store

import (
	"encoding/json"
	"errors"
	"fmt"
)

// Accessors for the admin side of the content repository (matrix/admin, matrix/media
// admin.go): quarantine marks and whole-repository scans. A quarantine mark lives beside the
// media record rather than inside it, so that uploads, which rewrite the record, can never
// clear it by accident.

// QuarantineRecord says who quarantined a media ID and when.
type QuarantineRecord struct {
	By string `json:"by"` // the admin's user ID
	TS int64  `json:"ts"` // unix milliseconds
}

// SetMediaQuarantine marks a media ID as quarantined.
func (t *Txn) SetMediaQuarantine(mediaID string, q QuarantineRecord) error {
	return t.setJSON(mediaQuarKey(mediaID), q)
}

// ClearMediaQuarantine lifts a quarantine (a no-op when there is none).
func (t *Txn) ClearMediaQuarantine(mediaID string) error { return t.del(mediaQuarKey(mediaID)) }

// MediaQuarantine returns the quarantine of a media ID, or nil when it is not quarantined.
func (t *Txn) MediaQuarantine(mediaID string) (*QuarantineRecord, error) {
	q, err := getJSON[QuarantineRecord](t, mediaQuarKey(mediaID))
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &q, nil
}

// AllMedia calls fn with every local media record in ID order; fn returns false to stop.
func (t *Txn) AllMedia(fn func(r *MediaRecord) (bool, error)) error {
	return t.scan([]byte{pMedia}, nil, false, true, func(k, v []byte) (bool, error) {
		var r MediaRecord
		if err := json.Unmarshal(v, &r); err != nil {
			return false, fmt.Errorf("store: decode media %q: %w", k[1:], err)
		}
		return fn(&r)
	})
}
