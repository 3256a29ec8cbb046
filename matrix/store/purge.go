package store

// Accessors for purging room history (matrix/rooms/purge.go) and for remembering the outcome
// of an admin purge_history request (matrix/admin/purge.go).

// Purge outcomes kept in PurgeRecord.Status (the values Synapse's admin API reports).
const (
	PurgeActive   = "active"
	PurgeComplete = "complete"
	PurgeFailed   = "failed"
)

// PurgeRecord is the outcome of one purge_history request.
type PurgeRecord struct {
	RoomID string `json:"r"`
	Status string `json:"s"`
	Error  string `json:"e,omitempty"`
	Purged int    `json:"n"`  // events deleted
	TS     int64  `json:"ts"` // when the purge finished, unix milliseconds
}

// PutPurge records the outcome of a purge.
func (t *Txn) PutPurge(purgeID string, r PurgeRecord) error { return t.setJSON(purgeKey(purgeID), r) }

// Purge reads the outcome of a purge, or ErrNotFound.
func (t *Txn) Purge(purgeID string) (PurgeRecord, error) {
	return getJSON[PurgeRecord](t, purgeKey(purgeID))
}

// DeleteEvent removes a stored event, its event-ID index entry and its timeline entry. The
// caller removes what else points at it (relations, search postings).
func (t *Txn) DeleteEvent(pos uint64, rec *EventRecord) error {
	for _, k := range [][]byte{eventKey(pos), eventIDKey(rec.ID), timelineKey(rec.Room, pos)} {
		if err := t.del(k); err != nil {
			return err
		}
	}
	return nil
}

// DeletePosting removes one posting of the search index (a no-op when it is absent).
func (t *Txn) DeletePosting(tok string, pos uint64) error {
	return t.del(searchPostingKey(tok, pos))
}
