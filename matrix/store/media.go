package store

import "strings"

// Records and accessors of the content repository (matrix/media). The bytes live on disk,
// content-addressed by SHA-256; Badger holds what a media ID means.

// MediaRecord is one local media ID. Hash is empty while an asynchronous upload
// (POST /_matrix/media/v1/create) has not been completed.
type MediaRecord struct {
	ID          string `json:"id"`
	Hash        string `json:"h,omitempty"`  // hex SHA-256 of the content
	ContentType string `json:"ct,omitempty"` //
	Filename    string `json:"fn,omitempty"` //
	Size        int64  `json:"sz,omitempty"` //
	Uploader    string `json:"u"`            // user ID
	CreatedMS   int64  `json:"c"`            // when the ID was allocated
	UploadedMS  int64  `json:"up,omitempty"` // when the content arrived
	ExpiresMS   int64  `json:"x,omitempty"`  // a pending ID is dropped after this
}

// Pending says whether the content has not been uploaded yet.
func (r *MediaRecord) Pending() bool { return r.Hash == "" }

// PutMedia writes a media record with its uploader index entry, and keeps the per-user list
// of pending IDs in step with it.
func (t *Txn) PutMedia(r *MediaRecord) error {
	if err := t.setJSON(mediaKey(r.ID), r); err != nil {
		return err
	}
	if err := t.set(mediaUserKey(r.Uploader, r.ID), nil); err != nil {
		return err
	}
	if r.Pending() {
		return t.set(mediaPendKey(r.Uploader, r.ID), nil)
	}
	return t.del(mediaPendKey(r.Uploader, r.ID))
}

// Media reads a media record, or ErrNotFound.
func (t *Txn) Media(mediaID string) (MediaRecord, error) {
	return getJSON[MediaRecord](t, mediaKey(mediaID))
}

// HasMedia says whether a media ID is taken.
func (t *Txn) HasMedia(mediaID string) (bool, error) { return t.has(mediaKey(mediaID)) }

// DeleteMedia removes a media record and its index entries (the file may be shared by others).
func (t *Txn) DeleteMedia(r *MediaRecord) error {
	for _, k := range [][]byte{mediaKey(r.ID), mediaUserKey(r.Uploader, r.ID), mediaPendKey(r.Uploader, r.ID)} {
		if err := t.del(k); err != nil {
			return err
		}
	}
	return nil
}

// MediaByUser calls fn with the media IDs a user uploaded or reserved, in ID order.
func (t *Txn) MediaByUser(user string, fn func(mediaID string) (bool, error)) error {
	return t.scanIDs(mediaUserPrefix(user), fn)
}

// PendingMediaByUser calls fn with the media IDs a user reserved and has not uploaded yet.
func (t *Txn) PendingMediaByUser(user string, fn func(mediaID string) (bool, error)) error {
	return t.scanIDs(mediaPendPrefix(user), fn)
}

func (t *Txn) scanIDs(prefix []byte, fn func(string) (bool, error)) error {
	return t.scan(prefix, nil, false, false, func(k, _ []byte) (bool, error) {
		return fn(strings.Clone(string(k[len(prefix):])))
	})
}
