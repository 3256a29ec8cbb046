package keyring

import (
	"context"
	"errors"
	"fmt"
	"time"

	"maunium.net/go/mautrix/federation"

	"github.com/hearth-home/hearth/matrix/store"
)

// ResolutionCache keeps server-discovery results in the store. It implements mautrix's
// federation.ResolutionCache, so a stock mautrix transport can use it too.
type ResolutionCache struct {
	st  *store.Store
	now func() time.Time
}

var _ federation.ResolutionCache = (*ResolutionCache)(nil)

// NewResolutionCache returns a cache over st; now nil means time.Now.
func NewResolutionCache(st *store.Store, now func() time.Time) *ResolutionCache {
	if now == nil {
		now = time.Now
	}
	return &ResolutionCache{st: st, now: now}
}

// StoreResolution saves a result until its Expires.
func (c *ResolutionCache) StoreResolution(_ context.Context, res *federation.ResolvedServerName) error {
	rec := store.ResolutionRecord{HostHeader: res.HostHeader, Targets: res.IPPort, ExpiresMS: res.Expires.UnixMilli()}
	if err := c.st.Update(func(t *store.Txn) error { return t.PutResolution(res.ServerName, rec) }); err != nil {
		return fmt.Errorf("store resolution of %s: %w", res.ServerName, err)
	}
	return nil
}

// LoadResolution returns a fresh cached result, or nil (expired entries are never returned).
func (c *ResolutionCache) LoadResolution(_ context.Context, serverName string) (*federation.ResolvedServerName, error) {
	var rec store.ResolutionRecord
	err := c.st.View(func(t *store.Txn) error {
		var err error
		rec, err = t.Resolution(serverName)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load resolution of %s: %w", serverName, err)
	}
	exp := time.UnixMilli(rec.ExpiresMS)
	if !c.now().Before(exp) || len(rec.Targets) == 0 {
		return nil, nil
	}
	return &federation.ResolvedServerName{ServerName: serverName, HostHeader: rec.HostHeader, IPPort: rec.Targets, Expires: exp}, nil
}

// Forget drops a cached result (after connection failures, so the next request re-resolves).
func (c *ResolutionCache) Forget(serverName string) error {
	if err := c.st.Update(func(t *store.Txn) error { return t.DeleteResolution(serverName) }); err != nil {
		return fmt.Errorf("forget resolution of %s: %w", serverName, err)
	}
	return nil
}
