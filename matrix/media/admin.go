package media

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/hearth-home/hearth/matrix/store"
)

// Helpers for the admin API (matrix/admin/media.go): listing, deletion and quarantine of
// local media. Deletion removes the file only when no remaining record, local or in the
// remote media cache, holds the same content hash, since files are shared by content address.

// deleteBatch bounds the records removed in one write transaction (Badger's size limit).
const deleteBatch = 500

// Entry is a media record with its quarantine mark, as the admin API lists it.
type Entry struct {
	store.MediaRecord
	Quarantine *store.QuarantineRecord
}

// ParseMXC splits an mxc:// URI into server name and media ID.
func ParseMXC(uri string) (server, mediaID string, ok bool) {
	rest, found := strings.CutPrefix(uri, "mxc://")
	if !found {
		return "", "", false
	}
	server, mediaID, found = strings.Cut(rest, "/")
	if !found || server == "" || mediaID == "" || strings.Contains(mediaID, "/") {
		return "", "", false
	}
	return server, mediaID, true
}

// IsLocal says whether a media ID of this server name could be one of our records.
func (s *Service) IsLocal(serverName, mediaID string) bool {
	return serverName == s.opts.ServerName && validID(mediaID)
}

// Entry returns one local media record with its quarantine mark (ErrNotFound wrapped in a
// 404 when the ID is unknown). Pending uploads are included.
func (s *Service) Entry(ctx context.Context, serverName, mediaID string) (*Entry, error) {
	if !s.IsLocal(serverName, mediaID) {
		return nil, errNotFound()
	}
	var e Entry
	err := s.st.View(func(t *store.Txn) error {
		var err error
		if e.MediaRecord, err = t.Media(mediaID); err != nil {
			return err
		}
		e.Quarantine, err = t.MediaQuarantine(mediaID)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, errNotFound()
	}
	if err != nil {
		return nil, fmt.Errorf("media: read %s: %w", mediaID, err)
	}
	return &e, nil
}

// UserEntries returns every media ID a user uploaded or reserved (expired reservations
// left out), in media ID order.
func (s *Service) UserEntries(ctx context.Context, user string) ([]Entry, error) {
	out := []Entry{}
	now := s.nowMS()
	err := s.st.View(func(t *store.Txn) error {
		return t.MediaByUser(user, func(mediaID string) (bool, error) {
			r, err := t.Media(mediaID)
			if errors.Is(err, store.ErrNotFound) {
				return true, nil
			}
			if err != nil {
				return false, err
			}
			if r.Pending() && r.ExpiresMS <= now {
				return true, nil
			}
			q, err := t.MediaQuarantine(mediaID)
			if err != nil {
				return false, err
			}
			out = append(out, Entry{MediaRecord: r, Quarantine: q})
			return true, ctx.Err()
		})
	})
	if err != nil {
		return nil, fmt.Errorf("media: list %s: %w", user, err)
	}
	return out, nil
}

// Select returns the IDs of local media for which keep returns true.
func (s *Service) Select(ctx context.Context, keep func(r *store.MediaRecord) bool) ([]string, error) {
	var out []string
	err := s.st.View(func(t *store.Txn) error {
		return t.AllMedia(func(r *store.MediaRecord) (bool, error) {
			if keep(r) {
				out = append(out, r.ID)
			}
			return true, ctx.Err()
		})
	})
	if err != nil {
		return nil, fmt.Errorf("media: scan: %w", err)
	}
	return out, nil
}

// SetQuarantine quarantines (by is the admin) or releases (by empty) local media. It returns
// false when the media ID is unknown.
func (s *Service) SetQuarantine(ctx context.Context, mediaID, by string) (bool, error) {
	if !validID(mediaID) {
		return false, nil
	}
	found := true
	err := s.st.Update(func(t *store.Txn) error {
		ok, err := t.HasMedia(mediaID)
		if err != nil || !ok {
			found = false
			return err
		}
		if by == "" {
			return t.ClearMediaQuarantine(mediaID)
		}
		return t.SetMediaQuarantine(mediaID, store.QuarantineRecord{By: by, TS: s.nowMS()})
	})
	if err != nil {
		return false, fmt.Errorf("media: quarantine %s: %w", mediaID, err)
	}
	return found, nil
}

// Delete removes local media records (unknown IDs are skipped) and returns the IDs removed.
// Files (and their cached thumbnails) go once no remaining record refers to their content.
func (s *Service) Delete(ctx context.Context, ids []string) ([]string, error) {
	deleted := []string{}
	hashes := map[string]bool{}
	for len(ids) > 0 {
		n := min(len(ids), deleteBatch)
		batch := ids[:n]
		ids = ids[n:]
		var done []string
		err := s.st.Update(func(t *store.Txn) error {
			done = done[:0]
			for _, mid := range batch {
				if !validID(mid) {
					continue
				}
				r, err := t.Media(mid)
				if errors.Is(err, store.ErrNotFound) {
					continue
				}
				if err != nil {
					return err
				}
				if err := t.DeleteMedia(&r); err != nil {
					return err
				}
				if err := t.ClearMediaQuarantine(mid); err != nil {
					return err
				}
				if r.Hash != "" {
					hashes[r.Hash] = true
				}
				done = append(done, mid)
			}
			return nil
		})
		if err != nil {
			return deleted, fmt.Errorf("media: delete: %w", err)
		}
		deleted = append(deleted, done...)
	}
	if len(hashes) == 0 {
		return deleted, nil
	}
	// One scan answers "is this content still used" for every hash of the request.
	err := s.st.View(func(t *store.Txn) error {
		if err := t.AllMedia(func(r *store.MediaRecord) (bool, error) {
			delete(hashes, r.Hash)
			return len(hashes) > 0, nil
		}); err != nil {
			return err
		}
		for h := range hashes { // the remote media cache shares the content-addressed files
			used, err := t.RemoteMediaUsesHash(h)
			if err != nil {
				return err
			}
			if used {
				delete(hashes, h)
			}
		}
		return nil
	})
	if err != nil {
		return deleted, fmt.Errorf("media: delete: find shared content: %w", err)
	}
	for h := range hashes {
		if err := s.removeContent(h); err != nil {
			return deleted, err
		}
	}
	return deleted, nil
}

// removeContent deletes the file with this hash and its cached thumbnails.
func (s *Service) removeContent(hash string) error {
	if len(hash) < 4 {
		return nil
	}
	if err := os.Remove(s.blobPath(hash)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("media: remove content: %w", err)
	}
	thumbs, err := filepath.Glob(filepath.Join(s.dir, "thumbnails", hash[0:2], hash[2:4], hash+"-*"))
	if err != nil {
		return fmt.Errorf("media: find thumbnails: %w", err)
	}
	for _, p := range thumbs {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("media: remove thumbnail: %w", err)
		}
	}
	return nil
}

// ContentPath is where the file of a record lives (tests check that deletion removed it).
func (s *Service) ContentPath(hash string) string { return s.blobPath(hash) }
