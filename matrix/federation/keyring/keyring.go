package keyring

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"go.mau.fi/util/exsync"
	"go.mau.fi/util/jsontime"
	"maunium.net/go/mautrix/federation"
	"maunium.net/go/mautrix/federation/signutil"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/store"
)

// ErrKeyNotFound means neither the server nor any notary produced the key.
var ErrKeyNotFound = errors.New("signing key not found")

// Config configures a Keyring.
type Config struct {
	ServerName string
	Key        *federation.SigningKey
	// OldKeys are keys this server used to sign with, published under old_verify_keys.
	OldKeys map[id.KeyID]federation.OldVerifyKey
	Store   *store.Store
	// Client fetches remote keys (NewClient).
	Client *federation.Client
	// Notaries are asked, in order, when a server cannot be reached or lacks the key
	// (config federation.trusted_key_servers; default none).
	Notaries []string
	// AllowOrigin, when set, refuses authenticated requests from other origins with 403
	// M_FORBIDDEN (a federation allow-list).
	AllowOrigin func(serverName string) bool
	// MaxBodyBytes bounds inbound federation request bodies. Default 16 MiB.
	MaxBodyBytes int64
	Now          func() time.Time
	Logger       *slog.Logger
}

// Keyring knows servers' signing keys. It is safe for concurrent use.
type Keyring struct {
	cfg   Config
	cache *KeyCache
	now   func() time.Time
	log   *slog.Logger
	locks exsync.KeyedMutex[string]
}

// New builds a keyring.
func New(cfg Config) (*Keyring, error) {
	if cfg.ServerName == "" || cfg.Key == nil || cfg.Store == nil || cfg.Client == nil {
		return nil, errors.New("keyring: needs a server name, a signing key, a store and a client")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = 16 << 20
	}
	return &Keyring{cfg: cfg, cache: NewKeyCache(cfg.Store, cfg.Now), now: cfg.Now, log: cfg.Logger}, nil
}

// Cache exposes the key cache (a mautrix federation.KeyCache).
func (k *Keyring) Cache() *KeyCache { return k.cache }

// ServerName is the name this keyring signs as.
func (k *Keyring) ServerName() string { return k.cfg.ServerName }

// PublicKey is a verify key and how long it may be trusted.
type PublicKey struct {
	Key id.SigningKey
	// ValidUntil is valid_until_ts (capped at fetch time + 7 days) for a current key and
	// expired_ts for an old one.
	ValidUntil time.Time
	// Old says the key came from old_verify_keys: good for events before ValidUntil, never
	// for requests.
	Old bool
}

// VerifyKey returns server's key keyID, preferring a copy valid at at. It fetches from the
// server, then from the notaries, when the cache has no such key or only one that expired
// before at (and the server was not asked within the last few minutes). A stale key is
// still returned: whether it is acceptable depends on the room version, so callers compare
// ValidUntil themselves.
func (k *Keyring) VerifyKey(ctx context.Context, server string, keyID id.KeyID, at time.Time) (PublicKey, error) {
	return k.verifyKey(ctx, server, keyID, at, true)
}

func (k *Keyring) verifyKey(ctx context.Context, server string, keyID id.KeyID, at time.Time, viaNotaries bool) (PublicKey, error) {
	if server == k.cfg.ServerName {
		return k.ownKey(keyID)
	}
	if _, _, ok := federation.ParseServerName(server); !ok {
		return PublicKey{}, fmt.Errorf("key %s of %q: %w", keyID, server, federation.ErrInvalidServerName)
	}
	rec, err := k.cache.key(server, string(keyID))
	if err != nil {
		return PublicKey{}, err
	}
	if usable(rec, at) {
		return toPublic(rec), nil
	}
	if viaNotaries {
		// One fetch per server at a time. Lookups of a notary's own key (viaNotaries false)
		// take no lock: they happen while another server's lock is held, and two notaries
		// vouching for each other would otherwise deadlock.
		k.locks.Lock(server)
		defer k.locks.Unlock(server)
	}
	// Someone else may have fetched while we waited.
	if rec, err = k.cache.key(server, string(keyID)); err != nil {
		return PublicKey{}, err
	}
	if usable(rec, at) {
		return toPublic(rec), nil
	}
	if ok, err := k.mayFetch(server); err != nil || !ok {
		if rec != nil {
			return toPublic(rec), nil
		}
		if err == nil {
			err = fmt.Errorf("%w: %s of %s (asked recently)", ErrKeyNotFound, keyID, server)
		}
		return PublicKey{}, err
	}
	fetchErr := k.fetchDirect(ctx, server)
	if rec, err = k.cache.key(server, string(keyID)); err != nil {
		return PublicKey{}, err
	}
	if !usable(rec, at) && viaNotaries {
		for _, notary := range k.cfg.Notaries {
			if notary == server || notary == k.cfg.ServerName {
				continue
			}
			if err := k.fetchNotary(ctx, notary, server, keyID, at); err != nil {
				k.log.Debug("notary key query failed", "notary", notary, "server", server, "err", err)
				fetchErr = errors.Join(fetchErr, err)
				continue
			}
			if rec, err = k.cache.key(server, string(keyID)); err != nil {
				return PublicKey{}, err
			}
			if usable(rec, at) {
				break
			}
		}
	}
	if fetchErr != nil && !usable(rec, at) {
		if err := k.cache.StoreFetchError(ctx, server, fetchErr); err != nil {
			k.log.Warn("record key fetch failure", "server", server, "err", err)
		}
	}
	if rec == nil {
		if fetchErr != nil {
			return PublicKey{}, fmt.Errorf("%w: %s of %s: %w", ErrKeyNotFound, keyID, server, fetchErr)
		}
		return PublicKey{}, fmt.Errorf("%w: %s of %s", ErrKeyNotFound, keyID, server)
	}
	return toPublic(rec), nil
}

// usable says whether a cached key answers for time at without asking anyone: an old key
// (its expiry is final) or a current key still valid at at.
func usable(rec *store.RemoteKeyRecord, at time.Time) bool {
	if rec == nil {
		return false
	}
	return rec.ExpiredMS != 0 || rec.ValidUntilMS >= at.UnixMilli()
}

func toPublic(rec *store.RemoteKeyRecord) PublicKey {
	if rec.ExpiredMS != 0 {
		return PublicKey{Key: id.SigningKey(rec.Key), ValidUntil: time.UnixMilli(rec.ExpiredMS), Old: true}
	}
	return PublicKey{Key: id.SigningKey(rec.Key), ValidUntil: time.UnixMilli(rec.ValidUntilMS)}
}

func (k *Keyring) ownKey(keyID id.KeyID) (PublicKey, error) {
	if keyID == k.cfg.Key.ID {
		return PublicKey{Key: k.cfg.Key.Pub, ValidUntil: k.now().Add(maxKeyValidity)}, nil
	}
	if old, ok := k.cfg.OldKeys[keyID]; ok {
		return PublicKey{Key: old.Key, ValidUntil: old.ExpiredTS.Time, Old: true}, nil
	}
	return PublicKey{}, fmt.Errorf("%w: %s is not one of our keys", ErrKeyNotFound, keyID)
}

// mayFetch applies the failure backoff and the minimum refetch interval.
func (k *Keyring) mayFetch(server string) (bool, error) {
	left, _, err := k.cache.backoff(server, -1)
	if err != nil || left > 0 {
		return false, err
	}
	return k.cache.ShouldReQuery(context.Background(), server)
}

// fetchDirect asks server for its keys and stores a verified answer.
func (k *Keyring) fetchDirect(ctx context.Context, server string) error {
	resp, err := k.cfg.Client.ServerKeys(ctx, server)
	if err != nil {
		return fmt.Errorf("fetch keys of %s: %w", server, err)
	}
	if err := checkKeyResponse(server, resp); err != nil {
		return err
	}
	return k.cache.store(resp, "")
}

// fetchNotary asks a notary for server's keys. Each answer must be self-signed by server
// and signed by the notary with a key we got from the notary itself.
func (k *Keyring) fetchNotary(ctx context.Context, notary, server string, keyID id.KeyID, at time.Time) error {
	req := &federation.ReqQueryKeys{ServerKeys: map[string]map[id.KeyID]federation.QueryKeysCriteria{
		server: {keyID: {MinimumValidUntilTS: jsontime.UM(at)}},
	}}
	resp, err := k.cfg.Client.QueryKeys(ctx, notary, req)
	if err != nil {
		return fmt.Errorf("query notary %s for %s: %w", notary, server, err)
	}
	var errs []error
	stored := 0
	for _, r := range resp.ServerKeys {
		if r == nil || r.ServerName != server {
			continue // a notary may add other servers; we asked about this one only
		}
		if err := checkKeyResponse(server, r); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := k.checkNotarySignature(ctx, notary, r); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := k.cache.store(r, notary); err != nil {
			return err
		}
		stored++
	}
	if stored == 0 {
		return fmt.Errorf("notary %s had no valid keys for %s: %w", notary, server, errors.Join(errs...))
	}
	return nil
}

func (k *Keyring) checkNotarySignature(ctx context.Context, notary string, r *federation.ServerKeyResponse) error {
	sigs := r.Signatures[notary]
	if len(sigs) == 0 {
		return fmt.Errorf("notary %s did not sign the keys of %s", notary, r.ServerName)
	}
	for keyID := range sigs {
		// The notary's own key is fetched directly only: asking notaries about a notary
		// would recurse.
		pk, err := k.verifyKey(ctx, notary, keyID, k.now(), false)
		if err != nil || pk.Old {
			continue
		}
		if err := signutil.VerifyJSON(notary, keyID, pk.Key, r.Raw); err != nil {
			return fmt.Errorf("notary %s signature on keys of %s: %w", notary, r.ServerName, err)
		}
		return nil
	}
	return fmt.Errorf("no known key of notary %s signed the keys of %s", notary, r.ServerName)
}

// checkKeyResponse is what mautrix's ServerAuth skips: the answer must be about the server we
// asked (else a server could plant keys for another name in our cache), every current key
// must have signed it, and it must say how long it is valid.
func checkKeyResponse(server string, r *federation.ServerKeyResponse) error {
	if r.ServerName != server {
		return fmt.Errorf("keys of %s: response is for %q", server, r.ServerName)
	}
	if len(r.VerifyKeys) == 0 {
		return fmt.Errorf("keys of %s: no verify_keys", server)
	}
	if r.ValidUntilTS.IsZero() || r.ValidUntilTS.UnixMilli() <= 0 {
		return fmt.Errorf("keys of %s: no valid_until_ts", server)
	}
	if len(r.Raw) == 0 {
		return fmt.Errorf("keys of %s: no raw response to verify", server)
	}
	for keyID := range r.VerifyKeys {
		if alg, _ := keyID.Parse(); alg != id.KeyAlgorithmEd25519 {
			return fmt.Errorf("keys of %s: unsupported key %s", server, keyID)
		}
	}
	if err := r.VerifySelfSignature(); err != nil {
		return fmt.Errorf("keys of %s: %w", server, err)
	}
	return nil
}
