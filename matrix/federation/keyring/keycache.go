package keyring

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"maunium.net/go/mautrix/federation"

	"github.com/hearth-home/hearth/matrix/store"
)

// Key cache policy.
const (
	maxKeyValidity   = 7 * 24 * time.Hour // spec: use the lesser of valid_until_ts and now + 7 days
	minRefetch       = 5 * time.Minute    // a server whose keys we fetched this recently is not asked again for a missing or stale key
	firstErrBackoff  = 30 * time.Second   // after one failed fetch; doubles per failure
	maxErrBackoff    = 1 * time.Hour
	maxErrorTextSize = 300
)

// KeyCache keeps remote servers' keys in the store: each key with its validity (valid_until_ts
// capped at 7 days, or expired_ts for old keys), the newest raw key response per server (a
// notary reply must carry the server's own signature), and fetch failures with exponential
// backoff. It implements mautrix's federation.KeyCache.
type KeyCache struct {
	st  *store.Store
	now func() time.Time
}

var _ federation.KeyCache = (*KeyCache)(nil)

// NewKeyCache returns a cache over st; now nil means time.Now.
func NewKeyCache(st *store.Store, now func() time.Time) *KeyCache {
	if now == nil {
		now = time.Now
	}
	return &KeyCache{st: st, now: now}
}

// StoreKeys stores a key response. The caller must have verified it (server name and
// self-signatures); Keyring does before calling.
func (c *KeyCache) StoreKeys(_ context.Context, resp *federation.ServerKeyResponse) error {
	return c.store(resp, "")
}

func (c *KeyCache) store(resp *federation.ServerKeyResponse, via string) error {
	now := c.now()
	validUntil := resp.ValidUntilTS.Time
	if limit := now.Add(maxKeyValidity); validUntil.After(limit) {
		validUntil = limit
	}
	raw := resp.Raw
	if len(raw) == 0 {
		var err error
		if raw, err = json.Marshal(resp); err != nil {
			return fmt.Errorf("encode key response of %s: %w", resp.ServerName, err)
		}
	}
	err := c.st.Update(func(t *store.Txn) error {
		for keyID, k := range resp.OldVerifyKeys {
			rec := store.RemoteKeyRecord{Key: string(k.Key), ExpiredMS: k.ExpiredTS.UnixMilli(), FetchedMS: now.UnixMilli(), Via: via}
			if rec.ExpiredMS == 0 {
				rec.ExpiredMS = 1 // an old key without expired_ts is no use for anything after 1970
			}
			if err := t.PutRemoteKey(resp.ServerName, string(keyID), rec); err != nil {
				return err
			}
		}
		for keyID, k := range resp.VerifyKeys {
			rec := store.RemoteKeyRecord{Key: string(k.Key), ValidUntilMS: validUntil.UnixMilli(), FetchedMS: now.UnixMilli(), Via: via}
			// A notary may hand us an older response than the one we have: never shorten a
			// key's known validity.
			if old, err := t.RemoteKey(resp.ServerName, string(keyID)); err == nil && old.Key == rec.Key && old.ExpiredMS == 0 && old.ValidUntilMS > rec.ValidUntilMS {
				rec.ValidUntilMS = old.ValidUntilMS
			}
			if err := t.PutRemoteKey(resp.ServerName, string(keyID), rec); err != nil {
				return err
			}
		}
		cur, err := t.KeyResponse(resp.ServerName)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if err != nil || cur.ValidUntilMS <= resp.ValidUntilTS.UnixMilli() {
			if err := t.PutKeyResponse(resp.ServerName, store.KeyResponseRecord{Raw: raw, ValidUntilMS: resp.ValidUntilTS.UnixMilli(), FetchedMS: now.UnixMilli()}); err != nil {
				return err
			}
		}
		if err := t.DeleteFetchError(resp.ServerName); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store keys of %s: %w", resp.ServerName, err)
	}
	return nil
}

// StoreFetchError counts a failed fetch.
func (c *KeyCache) StoreFetchError(_ context.Context, serverName string, fetchErr error) error {
	err := c.st.Update(func(t *store.Txn) error {
		rec, err := t.FetchError(serverName)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		rec.Count++
		rec.LastMS = c.now().UnixMilli()
		rec.Error = fetchErr.Error()
		if len(rec.Error) > maxErrorTextSize {
			rec.Error = rec.Error[:maxErrorTextSize]
		}
		return t.PutFetchError(serverName, rec)
	})
	if err != nil {
		return fmt.Errorf("store key fetch error of %s: %w", serverName, err)
	}
	return nil
}

// backoff says how long after the last failure a server must not be asked again (0: ask).
func (c *KeyCache) backoff(serverName string, maxBackoff time.Duration) (time.Duration, store.FetchErrorRecord, error) {
	var rec store.FetchErrorRecord
	err := c.st.View(func(t *store.Txn) error {
		var err error
		rec, err = t.FetchError(serverName)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return 0, rec, nil
	}
	if err != nil {
		return 0, rec, fmt.Errorf("load key fetch error of %s: %w", serverName, err)
	}
	wait := firstErrBackoff << min(rec.Count-1, 10)
	wait = min(wait, maxErrBackoff)
	if maxBackoff >= 0 {
		wait = min(wait, maxBackoff)
	}
	left := time.UnixMilli(rec.LastMS).Add(wait).Sub(c.now())
	return max(left, 0), rec, nil
}

// LoadKeys returns the newest unexpired key response of a server, or nil. While a failed fetch
// is within its backoff, it returns an error wrapping federation.ErrRecentKeyQueryFailed.
func (c *KeyCache) LoadKeys(_ context.Context, serverName string, maxBackoff time.Duration) (*federation.ServerKeyResponse, error) {
	rec, err := c.response(serverName)
	if err != nil {
		return nil, err
	}
	if rec != nil && time.UnixMilli(rec.ValidUntilMS).After(c.now()) {
		var resp federation.ServerKeyResponse
		if err := json.Unmarshal(rec.Raw, &resp); err != nil {
			return nil, fmt.Errorf("decode cached keys of %s: %w", serverName, err)
		}
		return &resp, nil
	}
	left, fe, err := c.backoff(serverName, maxBackoff)
	if err != nil {
		return nil, err
	}
	if left > 0 {
		return nil, fmt.Errorf("%w (%d failures, retry in %s): %s", federation.ErrRecentKeyQueryFailed, fe.Count, left.Round(time.Second), fe.Error)
	}
	return nil, nil
}

// ShouldReQuery says whether a response lacking a wanted key ID is worth asking for again.
func (c *KeyCache) ShouldReQuery(_ context.Context, serverName string) (bool, error) {
	rec, err := c.response(serverName)
	if err != nil || rec == nil {
		return err == nil, err
	}
	return c.now().Sub(time.UnixMilli(rec.FetchedMS)) >= minRefetch, nil
}

func (c *KeyCache) response(serverName string) (*store.KeyResponseRecord, error) {
	var rec store.KeyResponseRecord
	err := c.st.View(func(t *store.Txn) error {
		var err error
		rec, err = t.KeyResponse(serverName)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load key response of %s: %w", serverName, err)
	}
	return &rec, nil
}

// key reads one stored key, or nil.
func (c *KeyCache) key(serverName, keyID string) (*store.RemoteKeyRecord, error) {
	var rec store.RemoteKeyRecord
	err := c.st.View(func(t *store.Txn) error {
		var err error
		rec, err = t.RemoteKey(serverName, keyID)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load key %s of %s: %w", keyID, serverName, err)
	}
	return &rec, nil
}
