package media

import (
	"errors"
	"fmt"
	"time"

	"github.com/hearth-home/hearth/matrix/store"
)

// The sweeper keeps the remote cache within its byte budget (least recently used first) and
// drops media not used for the retention period. It runs after every fetch and on a ticker.
// Evicting a record deletes its file only when no other record, local or remote, is that file.

// sweepBatch bounds the records deleted in one store transaction.
const sweepBatch = 256

func (s *Service) sweepLoop(rc *remoteCache) {
	defer close(rc.done)
	if err := s.sweepRemote(rc, ""); err != nil { // retention may have passed while we were off
		s.log.Warn("remote media sweep", "err", err)
	}
	t := time.NewTicker(rc.opts.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-rc.stop:
			return
		case <-t.C:
			if err := s.sweepRemote(rc, ""); err != nil {
				s.log.Warn("remote media sweep", "err", err)
			}
		}
	}
}

// sweepRemote evicts what is over budget or past retention, sparing the media named by spare
// ("origin/mediaID", the one just fetched).
func (s *Service) sweepRemote(rc *remoteCache, spare string) error {
	rc.sweepMu.Lock()
	defer rc.sweepMu.Unlock()
	var entries []store.RemoteMediaEntry
	var total int64
	err := s.st.View(func(t *store.Txn) error {
		return t.RemoteMediaByAccess(func(e store.RemoteMediaEntry) (bool, error) {
			entries = append(entries, e)
			total += e.Size
			return true, nil
		})
	})
	if err != nil {
		return fmt.Errorf("media: scan remote cache: %w", err)
	}
	cutoff := s.now().Add(-rc.opts.Retention).UnixMilli()
	var victims []store.RemoteMediaEntry
	for _, e := range entries { // oldest first
		if e.LastAccessMS >= cutoff && total <= rc.opts.MaxBytes {
			break // everything after this is newer and fits
		}
		if e.Origin+"/"+e.ID == spare {
			continue
		}
		victims = append(victims, e)
		total -= e.Size
	}
	if len(victims) == 0 {
		return nil
	}
	hashes := map[string]bool{}
	for len(victims) > 0 {
		batch := victims[:min(len(victims), sweepBatch)]
		victims = victims[len(batch):]
		err := s.st.Update(func(t *store.Txn) error {
			for _, e := range batch {
				r, err := t.RemoteMedia(e.Origin, e.ID)
				if err != nil {
					if errors.Is(err, store.ErrNotFound) {
						continue
					}
					return err
				}
				if r.LastAccessMS != e.LastAccessMS {
					continue // used since the scan: keep it
				}
				if err := t.DeleteRemoteMedia(e.Origin, e.ID); err != nil {
					return err
				}
				hashes[r.Hash] = true
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("media: evict remote media: %w", err)
		}
	}
	return s.removeUnused(rc, hashes)
}

// removeUnused deletes the files (and thumbnails) of hashes that no record refers to any more.
func (s *Service) removeUnused(rc *remoteCache, hashes map[string]bool) error {
	rc.contentMu.Lock() // no fetch places a file between the checks and the removal
	defer rc.contentMu.Unlock()
	err := s.st.View(func(t *store.Txn) error {
		for h := range hashes {
			used, err := t.RemoteMediaUsesHash(h)
			if err != nil {
				return err
			}
			if used {
				delete(hashes, h)
			}
		}
		if len(hashes) == 0 {
			return nil
		}
		// One scan of local media answers for every hash left.
		return t.AllMedia(func(r *store.MediaRecord) (bool, error) {
			delete(hashes, r.Hash)
			return len(hashes) > 0, nil
		})
	})
	if err != nil {
		return fmt.Errorf("media: find shared content: %w", err)
	}
	for h := range hashes {
		if err := s.removeContent(h); err != nil {
			return err
		}
	}
	return nil
}
