package federation

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	mfed "maunium.net/go/mautrix/federation"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/rooms"
)

// Remote spaces for the client /hierarchy walk: GET /_matrix/federation/v1/hierarchy/{roomId}
// asked of the servers in a child link's via, in turn. Successful answers are kept a short
// while, so that paging through a space (each page walks the tree again) and several users
// browsing it cost one request per room; failures are not kept, so a room that becomes
// accessible (the remote server learns of a membership) shows on the next walk.

const (
	hierarchyCacheTTL     = time.Minute
	hierarchyCacheEntries = 256 // bounded memory: answers are at most a few KiB each
	hierarchyViaMax       = 5   // servers tried per room
	hierarchyTimeout      = 10 * time.Second
)

type hierarchyKey struct {
	room      id.RoomID
	suggested bool
}

type hierarchyEntry struct {
	h       *rooms.RemoteHierarchy
	expires time.Time
}

// hierarchyFetcher asks remote servers for spaces and caches their answers.
type hierarchyFetcher struct {
	self   string
	client Client
	now    func() time.Time

	mu    sync.Mutex
	cache map[hierarchyKey]hierarchyEntry
}

func newHierarchyFetcher(self string, client Client, now func() time.Time) *hierarchyFetcher {
	return &hierarchyFetcher{self: self, client: client, now: now, cache: map[hierarchyKey]hierarchyEntry{}}
}

// fetch is the rooms.HierarchyFetcher.
func (f *hierarchyFetcher) fetch(ctx context.Context, via []string, roomID id.RoomID, suggestedOnly bool) (*rooms.RemoteHierarchy, error) {
	k := hierarchyKey{roomID, suggestedOnly}
	if h := f.cached(k); h != nil {
		return h, nil
	}
	servers := candidates(f.self, via)
	if len(servers) > hierarchyViaMax {
		servers = servers[:hierarchyViaMax]
	}
	lastErr := errors.New("no server to ask")
	for _, srv := range servers {
		h, err := f.ask(ctx, srv, roomID, suggestedOnly)
		if err != nil {
			lastErr = err
			if ctx.Err() != nil {
				break
			}
			continue
		}
		f.store(k, h)
		return h, nil
	}
	return nil, fmt.Errorf("hierarchy of %s: %w", roomID, lastErr)
}

func (f *hierarchyFetcher) ask(ctx context.Context, srv string, roomID id.RoomID, suggestedOnly bool) (*rooms.RemoteHierarchy, error) {
	ctx, cancel := context.WithTimeout(ctx, hierarchyTimeout)
	defer cancel()
	body, _, err := f.client.MakeFullRequest(ctx, mfed.RequestParams{
		ServerName:   srv,
		Method:       http.MethodGet,
		Path:         mfed.URLPath{"v1", "hierarchy", roomID},
		Query:        url.Values{"suggested_only": {strconv.FormatBool(suggestedOnly)}},
		Authenticate: true,
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", srv, err)
	}
	h, err := rooms.ParseRemoteHierarchy(body, roomID)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", srv, err)
	}
	return h, nil
}

func (f *hierarchyFetcher) cached(k hierarchyKey) *rooms.RemoteHierarchy {
	f.mu.Lock()
	defer f.mu.Unlock()
	e, ok := f.cache[k]
	if !ok {
		return nil
	}
	if !f.now().Before(e.expires) {
		delete(f.cache, k)
		return nil
	}
	return e.h
}

func (f *hierarchyFetcher) store(k hierarchyKey, h *rooms.RemoteHierarchy) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.now()
	if len(f.cache) >= hierarchyCacheEntries {
		// Drop the expired entries, then if still full the one closest to expiry.
		var oldest hierarchyKey
		var oldestAt time.Time
		for key, e := range f.cache {
			if !now.Before(e.expires) {
				delete(f.cache, key)
				continue
			}
			if oldestAt.IsZero() || e.expires.Before(oldestAt) {
				oldest, oldestAt = key, e.expires
			}
		}
		if len(f.cache) >= hierarchyCacheEntries {
			delete(f.cache, oldest)
		}
	}
	f.cache[k] = hierarchyEntry{h: h, expires: now.Add(hierarchyCacheTTL)}
}
