package media

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/hearth-home/hearth/matrix/store"
)

// Remote media: another server's mxc:// URIs, fetched from the origin on first request,
// stored content-addressed like local media (so a remote file identical to a local upload is
// one file) with a store.RemoteMediaRecord, and served from that cache afterwards. The cache
// is bounded by a byte budget and a retention period (remote_sweep.go); an evicted file is
// simply fetched again on the next request.

// Remote cache defaults.
const (
	DefaultRemoteCacheMaxBytes = 1 << 30
	DefaultRemoteRetention     = 30 * 24 * time.Hour
	// DefaultRemoteSweepInterval is how often the sweeper runs besides after each fetch.
	DefaultRemoteSweepInterval = time.Hour
	// remoteFetchTimeout bounds one fetch (waiting for the origin's asynchronous upload
	// included). The fetch outlives the request that started it, so the others waiting for
	// the same media are not failed by the first client going away.
	remoteFetchTimeout = 2 * time.Minute
	// accessResolution is how stale a record's last-access time may get before a download
	// writes it again: LRU order at minute resolution, without a store write per download.
	accessResolution = time.Minute
)

// RemoteContent is what a RemoteSource found at the origin. Length is -1 when not announced.
type RemoteContent struct {
	ContentType string
	Filename    string
	Length      int64
	Body        io.ReadCloser
}

// RemoteSource fetches media from the server that holds it. Errors it returns are either
// *merr.Error values meant for the client (404 M_NOT_FOUND, 502 M_TOO_LARGE, 502/504
// M_UNKNOWN...) or plain errors, which the cache reports as 502 M_UNKNOWN.
type RemoteSource interface {
	FetchRemote(ctx context.Context, origin, mediaID string, wait time.Duration, maxBytes int64) (*RemoteContent, error)
}

// RemoteOptions configure the remote media cache.
type RemoteOptions struct {
	Source        RemoteSource
	MaxBytes      int64         // cache budget; 0 means DefaultRemoteCacheMaxBytes
	Retention     time.Duration // files unused this long are dropped; 0 means DefaultRemoteRetention
	SweepInterval time.Duration // 0 means DefaultRemoteSweepInterval
}

// remoteCache is the state of remote media serving.
type remoteCache struct {
	opts RemoteOptions

	mu       sync.Mutex
	inflight map[string]*remoteCall // origin "/" media ID -> the fetch under way

	// contentMu orders placing fetched files against the sweeper deleting unused ones, so a
	// file is never removed between a fetch putting it in place and recording it.
	contentMu sync.Mutex
	sweepMu   sync.Mutex // one sweep at a time
	stop      chan struct{}
	done      chan struct{}

	// Fetches run on this context (not the requests'), cancelled by Close, which then waits
	// for them: none writes the store after it closes.
	ctx     context.Context
	cancel  context.CancelFunc
	fetches sync.WaitGroup
}

// remoteCall is one fetch that concurrent requests for the same media wait on.
type remoteCall struct {
	done chan struct{}
	err  error
}

// EnableRemote turns on fetching and caching of remote media and starts the sweeper, which
// Close stops. Without it remote media answers 404 M_NOT_FOUND.
func (s *Service) EnableRemote(opts RemoteOptions) {
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultRemoteCacheMaxBytes
	}
	if opts.Retention <= 0 {
		opts.Retention = DefaultRemoteRetention
	}
	if opts.SweepInterval <= 0 {
		opts.SweepInterval = DefaultRemoteSweepInterval
	}
	rc := &remoteCache{opts: opts, inflight: map[string]*remoteCall{}, stop: make(chan struct{}), done: make(chan struct{})}
	rc.ctx, rc.cancel = context.WithCancel(context.Background())
	s.remote = rc
	go s.sweepLoop(rc)
}

// Close stops the remote cache's sweeper and fetches (they write the store, so before the
// store closes).
func (s *Service) Close() {
	rc := s.remote
	if rc == nil {
		return
	}
	rc.mu.Lock()
	select {
	case <-rc.stop:
	default:
		close(rc.stop)
	}
	rc.mu.Unlock()
	rc.cancel()
	rc.fetches.Wait()
	<-rc.done
}

// lookupRemote returns the record of remote media as a MediaRecord whose Hash names the cached
// file, fetching it from the origin when it is not cached.
func (s *Service) lookupRemote(ctx context.Context, origin, mediaID string, wait time.Duration) (store.MediaRecord, error) {
	rc := s.remote
	if rc == nil || !validServerName(origin) || !validRemoteID(mediaID) {
		return store.MediaRecord{}, errNotFound()
	}
	for attempt := 0; ; attempt++ {
		rec, ok, err := s.cachedRemote(origin, mediaID)
		if err != nil {
			return store.MediaRecord{}, err
		}
		if ok {
			return rec, nil
		}
		if attempt > 0 {
			// Fetched, then swept before we could read it (a race with a periodic sweep):
			// report it rather than loop.
			return store.MediaRecord{}, remoteUnavailable("remote media was evicted while being fetched")
		}
		if err := s.fetchOnce(ctx, rc, origin, mediaID, wait); err != nil {
			return store.MediaRecord{}, err
		}
	}
}

// cachedRemote reads the cache record, checks that its file is still there (an admin delete
// of identical local media may have removed it) and refreshes its last access.
func (s *Service) cachedRemote(origin, mediaID string) (store.MediaRecord, bool, error) {
	var r store.RemoteMediaRecord
	err := s.st.View(func(t *store.Txn) error {
		var err error
		r, err = t.RemoteMedia(origin, mediaID)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return store.MediaRecord{}, false, nil
	} else if err != nil {
		return store.MediaRecord{}, false, fmt.Errorf("media: read remote record: %w", err)
	}
	if _, err := os.Stat(s.blobPath(r.Hash)); errors.Is(err, os.ErrNotExist) {
		s.log.Warn("remote media file missing; fetching again", "origin", origin, "media_id", mediaID)
		if err := s.st.Update(func(t *store.Txn) error { return t.DeleteRemoteMedia(origin, mediaID) }); err != nil {
			return store.MediaRecord{}, false, fmt.Errorf("media: drop stale remote record: %w", err)
		}
		return store.MediaRecord{}, false, nil
	}
	now := s.nowMS()
	if now-r.LastAccessMS >= accessResolution.Milliseconds() {
		err := s.st.Update(func(t *store.Txn) error {
			cur, err := t.RemoteMedia(origin, mediaID)
			if err != nil || cur.Hash != r.Hash {
				return err // swept or replaced meanwhile: leave it
			}
			cur.LastAccessMS = now
			return t.PutRemoteMedia(&cur)
		})
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			s.log.Warn("remote media: record access", "origin", origin, "media_id", mediaID, "err", err)
		}
	}
	return store.MediaRecord{
		ID: mediaID, Hash: r.Hash, ContentType: r.ContentType, Filename: r.Filename, Size: r.Size,
		CreatedMS: r.FetchedMS, UploadedMS: r.FetchedMS,
	}, true, nil
}

// fetchOnce fetches origin/mediaID into the cache, or waits for the fetch another request
// started. The fetch runs on the cache's context: a client giving up does not cancel it for
// the others waiting.
func (s *Service) fetchOnce(ctx context.Context, rc *remoteCache, origin, mediaID string, wait time.Duration) error {
	k := origin + "/" + mediaID
	rc.mu.Lock()
	select {
	case <-rc.stop:
		rc.mu.Unlock()
		return remoteUnavailable("server is shutting down")
	default:
	}
	call, running := rc.inflight[k]
	if !running {
		call = &remoteCall{done: make(chan struct{})}
		rc.inflight[k] = call
		rc.fetches.Add(1)
		go func() {
			defer rc.fetches.Done()
			fctx, cancel := context.WithTimeout(rc.ctx, remoteFetchTimeout)
			defer cancel()
			call.err = s.fetchRemote(fctx, rc, origin, mediaID, wait)
			rc.mu.Lock()
			delete(rc.inflight, k)
			rc.mu.Unlock()
			close(call.done)
		}()
	}
	rc.mu.Unlock()
	select {
	case <-call.done:
		return call.err
	case <-ctx.Done():
		return remoteTimeout("request cancelled while fetching remote media")
	}
}

// fetchRemote streams the media from its origin to disk within the upload size limit, records
// it and sweeps the cache back within its budget.
func (s *Service) fetchRemote(ctx context.Context, rc *remoteCache, origin, mediaID string, wait time.Duration) error {
	limit := s.opts.MaxUploadBytes
	content, err := rc.opts.Source.FetchRemote(ctx, origin, mediaID, wait, limit)
	if err != nil {
		return remoteError(err)
	}
	defer content.Body.Close()
	if content.Length > limit {
		return errRemoteTooLarge(limit)
	}
	tmp, hash, size, err := s.streamTemp(content.Body, limit)
	if errors.Is(err, errTooLarge) {
		return errRemoteTooLarge(limit)
	} else if err != nil {
		return remoteError(fmt.Errorf("media: read remote media %s/%s: %w", origin, mediaID, err))
	}
	defer os.Remove(tmp) // no-op after the rename
	now := s.nowMS()
	rec := store.RemoteMediaRecord{
		Origin: origin, ID: mediaID, Hash: hash, ContentType: cleanContentType(content.ContentType),
		Filename: cleanFilename(content.Filename), Size: size, FetchedMS: now, LastAccessMS: now,
	}
	rc.contentMu.Lock()
	err = s.placeFile(tmp, s.blobPath(hash))
	if err == nil {
		err = s.st.Update(func(t *store.Txn) error { return t.PutRemoteMedia(&rec) })
	}
	rc.contentMu.Unlock()
	if err != nil {
		return fmt.Errorf("media: store remote media %s/%s: %w", origin, mediaID, err)
	}
	s.log.Debug("remote media cached", "origin", origin, "media_id", mediaID, "size", size)
	// Sweep now rather than on the next tick, so the budget holds after every fetch; the
	// new file itself is spared.
	if err := s.sweepRemote(rc, origin+"/"+mediaID); err != nil {
		s.log.Warn("remote media sweep", "err", err)
	}
	return nil
}

// validServerName accepts the characters of a server name (host, IPv4, [IPv6], optional
// port); anything else cannot be an origin and must not reach a URL.
func validServerName(s string) bool {
	if s == "" || len(s) > 255 {
		return false
	}
	for _, c := range []byte(s) {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9',
			c == '.', c == '-', c == ':', c == '[', c == ']':
		default:
			return false
		}
	}
	return !strings.HasPrefix(s, ".") && !strings.HasPrefix(s, "-")
}

// validRemoteID accepts the media IDs other servers may mint: the spec allows only
// [A-Za-z0-9_-], which also keeps them safe in keys and URL paths.
func validRemoteID(mediaID string) bool { return validID(mediaID) }
