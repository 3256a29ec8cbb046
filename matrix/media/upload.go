package media

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/merr"
	"github.com/hearth-home/hearth/matrix/store"
)

// Upload stores content under a new media ID and returns its mxc:// URI.
func (s *Service) Upload(ctx context.Context, uploader id.UserID, contentType, filename string, body io.Reader) (id.ContentURI, error) {
	hash, size, err := s.receive(body)
	if err != nil {
		return id.ContentURI{}, err
	}
	now := s.nowMS()
	rec := store.MediaRecord{
		Hash: hash, ContentType: cleanContentType(contentType), Filename: cleanFilename(filename),
		Size: size, Uploader: uploader.String(), CreatedMS: now, UploadedMS: now,
	}
	err = s.st.Update(func(t *store.Txn) error {
		mid, err := s.freeID(t)
		if err != nil {
			return err
		}
		rec.ID = mid
		return t.PutMedia(&rec)
	})
	if err != nil {
		return id.ContentURI{}, err
	}
	return id.ContentURI{Homeserver: s.opts.ServerName, FileID: rec.ID}, nil
}

// Create reserves a media ID for a later asynchronous upload. It returns the URI and when the
// reservation expires (ms since the epoch).
func (s *Service) Create(ctx context.Context, uploader id.UserID) (id.ContentURI, int64, error) {
	now := s.now()
	rec := store.MediaRecord{Uploader: uploader.String(), CreatedMS: now.UnixMilli(), ExpiresMS: now.Add(PendingLifetime).UnixMilli()}
	err := s.st.Update(func(t *store.Txn) error {
		var pending []string
		if err := t.PendingMediaByUser(rec.Uploader, func(mid string) (bool, error) {
			pending = append(pending, mid)
			return true, nil
		}); err != nil {
			return err
		}
		live := 0
		for _, mid := range pending { // drop expired reservations on the way
			r, err := t.Media(mid)
			if errors.Is(err, store.ErrNotFound) {
				continue
			} else if err != nil {
				return err
			}
			if r.Pending() && r.ExpiresMS <= rec.CreatedMS {
				if err := t.DeleteMedia(&r); err != nil {
					return err
				}
				continue
			}
			live++
		}
		if live >= MaxPendingPerUser {
			return merr.LimitExceeded("too many pending uploads").With("retry_after_ms", 60_000)
		}
		mid, err := s.freeID(t)
		if err != nil {
			return err
		}
		rec.ID = mid
		return t.PutMedia(&rec)
	})
	if err != nil {
		return id.ContentURI{}, 0, err
	}
	return id.ContentURI{Homeserver: s.opts.ServerName, FileID: rec.ID}, rec.ExpiresMS, nil
}

// UploadTo completes an asynchronous upload: PUT /_matrix/media/v3/upload/{serverName}/{mediaId}.
func (s *Service) UploadTo(ctx context.Context, uploader id.UserID, serverName, mediaID, contentType, filename string, body io.Reader) error {
	if serverName != s.opts.ServerName || !validID(mediaID) {
		return errNotFound()
	}
	check := func(t *store.Txn) (store.MediaRecord, error) {
		r, err := t.Media(mediaID)
		if errors.Is(err, store.ErrNotFound) {
			return r, errNotFound()
		} else if err != nil {
			return r, err
		}
		if r.Uploader != uploader.String() {
			return r, merr.Forbidden("this media ID was created by another user")
		}
		if !r.Pending() {
			return r, errCannotOverwrite()
		}
		if r.ExpiresMS <= s.nowMS() {
			return r, errNotFound()
		}
		return r, nil
	}
	// Check before reading the body, so a refused upload costs no disk writes; check again
	// in the transaction, since another upload may have raced this one.
	if err := s.st.View(func(t *store.Txn) error { _, err := check(t); return err }); err != nil {
		return err
	}
	hash, size, err := s.receive(body)
	if err != nil {
		return err
	}
	err = s.st.Update(func(t *store.Txn) error {
		r, err := check(t)
		if err != nil {
			return err
		}
		r.Hash, r.Size = hash, size
		r.ContentType, r.Filename = cleanContentType(contentType), cleanFilename(filename)
		r.UploadedMS, r.ExpiresMS = s.nowMS(), 0
		return t.PutMedia(&r)
	})
	if err != nil {
		return err
	}
	s.wake(mediaID)
	return nil
}

// receive writes an upload body to disk within the size limit.
func (s *Service) receive(body io.Reader) (string, int64, error) {
	hash, size, err := s.writeBlob(body, s.opts.MaxUploadBytes)
	if errors.Is(err, errTooLarge) {
		return "", 0, merr.TooLarge("upload is larger than %d bytes", s.opts.MaxUploadBytes)
	}
	if err != nil {
		if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
			return "", 0, merr.TooLarge("upload is larger than %d bytes", s.opts.MaxUploadBytes)
		}
		return "", 0, fmt.Errorf("media: store upload: %w", err)
	}
	return hash, size, nil
}

// freeID picks a media ID that is not taken.
func (s *Service) freeID(t *store.Txn) (string, error) {
	for range 8 {
		mid := newID()
		taken, err := t.HasMedia(mid)
		if err != nil {
			return "", err
		}
		if !taken {
			return mid, nil
		}
	}
	return "", errors.New("media: could not allocate a media ID")
}

// cleanContentType keeps a parseable media type (with its parameters), else nothing.
func cleanContentType(ct string) string {
	ct = strings.TrimSpace(ct)
	if ct == "" || len(ct) > 255 {
		return ""
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return ""
	}
	return mime.FormatMediaType(mt, params)
}

// cleanFilename drops path components and control characters and bounds the length.
func cleanFilename(fn string) string {
	if i := strings.LastIndexAny(fn, `/\`); i >= 0 {
		fn = fn[i+1:]
	}
	fn = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, fn)
	if len(fn) > 255 {
		fn = strings.ToValidUTF8(fn[:255], "")
	}
	return fn
}

// waitFor returns a channel closed when mediaID's content arrives.
func (s *Service) waitFor(mediaID string) chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch, ok := s.waiters[mediaID]
	if !ok {
		ch = make(chan struct{})
		s.waiters[mediaID] = ch
	}
	return ch
}

func (s *Service) wake(mediaID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ch, ok := s.waiters[mediaID]; ok {
		close(ch)
		delete(s.waiters, mediaID)
	}
}

// clampWait turns a timeout_ms parameter (negative: absent) into a wait.
func clampWait(ms int64) time.Duration {
	if ms < 0 {
		return DefaultWait
	}
	return min(time.Duration(ms)*time.Millisecond, MaxWait)
}
