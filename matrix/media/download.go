package media

import (
	"context"
	"errors"
	"os"
	"time"

	"github.com/hearth-home/hearth/matrix/store"
)

// Open finds local media and opens its file. While an asynchronous upload is pending it waits
// up to wait for the content, then answers 504 M_NOT_YET_UPLOADED. Remote media is served from
// the cache, fetched from its origin first when needed (remote.go). The caller closes the file.
func (s *Service) Open(ctx context.Context, serverName, mediaID string, wait time.Duration) (store.MediaRecord, *os.File, error) {
	rec, err := s.Lookup(ctx, serverName, mediaID, wait)
	if err != nil {
		return rec, nil, err
	}
	f, err := os.Open(s.blobPath(rec.Hash))
	if errors.Is(err, os.ErrNotExist) {
		s.log.Warn("media file missing", "media_id", mediaID, "hash", rec.Hash)
		return rec, nil, errNotFound()
	}
	return rec, f, err
}

// Lookup returns the record of uploaded local media, waiting for a pending upload as Open does.
func (s *Service) Lookup(ctx context.Context, serverName, mediaID string, wait time.Duration) (store.MediaRecord, error) {
	if serverName != s.opts.ServerName {
		return s.lookupRemote(ctx, serverName, mediaID, wait) // remote.go: cached or fetched
	}
	if !validID(mediaID) {
		return store.MediaRecord{}, errNotFound()
	}
	read := func() (store.MediaRecord, error) {
		var rec store.MediaRecord
		err := s.st.View(func(t *store.Txn) error {
			var err error
			if rec, err = t.Media(mediaID); err != nil {
				return err
			}
			// Quarantined media is kept for the admins but served to nobody (admin.go).
			if q, err := t.MediaQuarantine(mediaID); err != nil || q != nil {
				if err == nil {
					err = store.ErrNotFound
				}
				return err
			}
			return nil
		})
		if errors.Is(err, store.ErrNotFound) {
			return rec, errNotFound()
		} else if err != nil {
			return rec, err
		}
		if rec.Pending() && rec.ExpiresMS <= s.nowMS() {
			return rec, errNotFound()
		}
		return rec, nil
	}
	rec, err := read()
	if err != nil || !rec.Pending() {
		return rec, err
	}
	if wait <= 0 {
		return rec, errNotYetUploaded()
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		// Register, then read again: an upload between the two is seen by the read, one
		// after it closes the channel. Waiters exist only for pending IDs.
		ch := s.waitFor(mediaID)
		rec, err = read()
		if err != nil || !rec.Pending() {
			s.wake(mediaID) // nobody else will close this channel
			return rec, err
		}
		select {
		case <-ch:
		case <-timer.C:
			return rec, errNotYetUploaded()
		case <-ctx.Done():
			return rec, errNotYetUploaded()
		}
	}
}

// Wait turns a timeout_ms query parameter (negative when absent) into a bounded wait.
func Wait(timeoutMS int64) time.Duration { return clampWait(timeoutMS) }
