package keyring

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.mau.fi/util/exsync"
	"maunium.net/go/mautrix/federation"

	"github.com/hearth-home/hearth/matrix/store"
)

// Cache lifetimes of server discovery ("Resolving server names", step 3).
const (
	wellKnownDefault  = 24 * time.Hour   // no cache headers
	wellKnownMax      = 48 * time.Hour   // spec's recommended cap (mautrix uses 72 h)
	wellKnownMin      = 5 * time.Minute  // floor for max-age=0 / no-cache, so a busy peer is not re-asked per request
	wellKnownErrorTTL = 1 * time.Hour    // errors (and "no delegation") are cached up to an hour
	literalTTL        = 24 * time.Hour   // IP literals and explicit ports need no lookups; re-derive daily
	wellKnownMaxBytes = 64 * 1024        // same limit as mautrix.WellKnownMaxSize
	wellKnownTimeout  = 10 * time.Second // one .well-known fetch, redirects included
	defaultFedPort    = "8448"
)

// Resolver turns server names into where to connect (targets), the Host header and the name
// the certificate must carry. Results are cached in the store.
//
// mautrix's ResolveServerName implements the same steps, but: its Cache-Control parsing never
// reads max-age (strings.SplitN(..., 1)) and it always caches 24 h; it caps at 72 h instead of
// 48 h; it does not cache .well-known errors; it takes a concrete *net.Resolver; and its
// transport dials only the first SRV target. Hence this replacement, which returns mautrix's
// ResolvedServerName type so that the rest of mautrix keeps working with it.
type Resolver struct {
	cache *ResolutionCache
	dns   DNS
	wk    *http.Client
	now   func() time.Time
	log   *slog.Logger
	locks exsync.KeyedMutex[string]
}

// ResolverConfig configures a Resolver.
type ResolverConfig struct {
	Store  *store.Store
	Net    Net
	Now    func() time.Time // nil: time.Now
	Logger *slog.Logger
}

// NewResolver builds a resolver whose .well-known fetches follow cfg.Net's policy.
func NewResolver(cfg ResolverConfig) *Resolver {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	tr := &http.Transport{
		DialContext:         cfg.Net.dialer(),
		TLSClientConfig:     cfg.Net.tlsConfig(),
		TLSHandshakeTimeout: 10 * time.Second,
		ForceAttemptHTTP2:   true,
		MaxIdleConns:        8,
		IdleConnTimeout:     30 * time.Second,
	}
	return &Resolver{
		cache: NewResolutionCache(cfg.Store, cfg.Now),
		dns:   cfg.Net.dns(),
		// Redirects are followed (spec step 3); http.Client stops after 10, which also ends
		// redirect loops.
		wk:  &http.Client{Transport: tr, Timeout: wellKnownTimeout},
		now: cfg.Now,
		log: cfg.Logger,
	}
}

// Cache exposes the resolution cache (a mautrix federation.ResolutionCache).
func (r *Resolver) Cache() *ResolutionCache { return r.cache }

// Resolve returns where serverName's federation API is, from the cache when it is fresh.
func (r *Resolver) Resolve(ctx context.Context, serverName string) (*federation.ResolvedServerName, error) {
	if _, _, ok := federation.ParseServerName(serverName); !ok {
		return nil, fmt.Errorf("resolve %q: %w", serverName, federation.ErrInvalidServerName)
	}
	if res, err := r.cache.LoadResolution(ctx, serverName); err != nil || res != nil {
		return res, err
	}
	// One discovery per name at a time: concurrent senders to a new server wait for the first.
	r.locks.Lock(serverName)
	defer r.locks.Unlock(serverName)
	if res, err := r.cache.LoadResolution(ctx, serverName); err != nil || res != nil {
		return res, err
	}
	res, err := r.Discover(ctx, serverName)
	if err != nil {
		return nil, err
	}
	if err := r.cache.StoreResolution(ctx, res); err != nil {
		r.log.Warn("cache server resolution", "server", serverName, "err", err)
	}
	return res, nil
}

// Discover runs the spec's algorithm without the cache.
func (r *Resolver) Discover(ctx context.Context, serverName string) (*federation.ResolvedServerName, error) {
	host, port, ok := federation.ParseServerName(serverName)
	if !ok {
		return nil, fmt.Errorf("resolve %q: %w", serverName, federation.ErrInvalidServerName)
	}
	now := r.now()
	out := &federation.ResolvedServerName{ServerName: serverName, HostHeader: serverName}
	// Steps 1 and 2: an IP literal, or any hostname with an explicit port, is used as it is,
	// with the server name (port included) as Host and certificate name.
	if net.ParseIP(host) != nil || port != 0 {
		out.IPPort = []string{joinHostPort(host, port)}
		out.Expires = now.Add(literalTTL)
		return out, nil
	}
	// Step 3: .well-known delegation.
	delegated, expires, err := r.wellKnown(ctx, host)
	if err == nil {
		out.Expires = expires
		dHost, dPort, _ := federation.ParseServerName(delegated)
		out.HostHeader = delegated
		// 3.1 and 3.2: a delegated IP literal or explicit port is used directly.
		if net.ParseIP(dHost) != nil || dPort != 0 {
			out.IPPort = []string{joinHostPort(dHost, dPort)}
			return out, nil
		}
		// 3.3 to 3.5: SRV on the delegated name, else its port 8448; Host is the delegated name.
		out.HostHeader = dHost
		out.IPPort = r.srvOrDefault(ctx, dHost)
		return out, nil
	}
	r.log.Debug("no .well-known delegation", "server", serverName, "err", err)
	// Steps 4 to 6: SRV on the server's own hostname, else port 8448. Errors are cached for
	// an hour, after which the .well-known is asked again.
	out.Expires = now.Add(wellKnownErrorTTL)
	out.HostHeader = host
	out.IPPort = r.srvOrDefault(ctx, host)
	return out, nil
}

func joinHostPort(host string, port uint16) string {
	p := defaultFedPort
	if port != 0 {
		p = strconv.Itoa(int(port))
	}
	return net.JoinHostPort(host, p)
}

// srvOrDefault looks up _matrix-fed._tcp, then the deprecated _matrix._tcp, and falls back
// to port 8448. All SRV targets are returned in the resolver's order (priority, then
// weighted random) so that the transport can try the next one when a target is down.
func (r *Resolver) srvOrDefault(ctx context.Context, host string) []string {
	for _, service := range []string{"matrix-fed", "matrix"} {
		_, recs, err := r.dns.LookupSRV(ctx, service, "tcp", host)
		if err != nil {
			var dnsErr *net.DNSError
			if !errors.As(err, &dnsErr) || !dnsErr.IsNotFound {
				r.log.Debug("SRV lookup failed", "service", service, "host", host, "err", err)
			}
			continue
		}
		var targets []string
		for _, rec := range recs {
			t := strings.TrimSuffix(rec.Target, ".")
			if t == "" { // RFC 2782: a target of "." means "no such service here"
				continue
			}
			targets = append(targets, net.JoinHostPort(t, strconv.Itoa(int(rec.Port))))
		}
		if len(targets) > 0 {
			return targets
		}
	}
	return []string{net.JoinHostPort(host, defaultFedPort)}
}
