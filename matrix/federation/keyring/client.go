package keyring

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"go.mau.fi/util/exhttp"
	"maunium.net/go/mautrix/federation"
)

// ClientConfig configures the outbound federation client.
type ClientConfig struct {
	ServerName string
	Key        *federation.SigningKey
	Resolver   *Resolver
	Net        Net
	// Timeout bounds one whole request. Default 60 s.
	Timeout time.Duration
}

// NewClient builds a mautrix federation client that signs requests as cfg.ServerName, finds
// servers through cfg.Resolver (its Badger cache) and verifies their certificates against
// cfg.Net.Roots.
//
// mautrix's own ServerResolvingTransport is replaced: it would resolve with mautrix's
// ResolveServerName on a cache miss (see Resolver for where that departs from the spec) and
// dials only the first SRV target. Request signing, JSON handling and the typed endpoint
// methods are mautrix's.
func NewClient(cfg ClientConfig) (*federation.Client, error) {
	if cfg.ServerName == "" || cfg.Key == nil || cfg.Resolver == nil {
		return nil, errors.New("keyring: client needs a server name, a signing key and a resolver")
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 60 * time.Second
	}
	settings := exhttp.SensibleClientSettings.
		WithGlobalTimeout(cfg.Timeout).
		WithTLSConfig(cfg.Net.tlsConfig()).
		WithDial(exhttp.DialerFunc(cfg.Net.dialer()))
	c := federation.NewClient(cfg.ServerName, cfg.Key, federation.NoopCache, settings)
	dial := cfg.Net.dialer()
	inner := settings.Configure(&http.Transport{MaxIdleConnsPerHost: 4})
	inner.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		targets, _ := ctx.Value(targetsKey{}).([]string)
		if len(targets) == 0 {
			return nil, errors.New("keyring: no resolved targets for this request")
		}
		var errs []error
		for _, t := range targets {
			conn, err := dial(ctx, network, t)
			if err == nil {
				return conn, nil
			}
			errs = append(errs, err)
		}
		return nil, fmt.Errorf("keyring: every target failed: %w", errors.Join(errs...))
	}
	c.HTTP.Transport = &resolvingTransport{resolver: cfg.Resolver, inner: inner}
	// Our own dialer applies Net.AllowIP; mautrix's default filter would refuse private
	// addresses, which on a home LAN are where the other appliances are.
	c.AllowIP = nil
	c.ExtHTTP = settings.Compile()
	return c, nil
}

type targetsKey struct{}

// resolvingTransport serves the matrix-federation:// URLs mautrix's client builds.
type resolvingTransport struct {
	resolver *Resolver
	inner    *http.Transport
}

func (t *resolvingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme != "matrix-federation" {
		return nil, fmt.Errorf("keyring: unsupported scheme %q", req.URL.Scheme)
	}
	res, err := t.resolver.Resolve(req.Context(), req.URL.Host)
	if err != nil {
		return nil, fmt.Errorf("keyring: resolve %s: %w", req.URL.Host, err)
	}
	ctx := context.WithValue(req.Context(), targetsKey{}, res.IPPort)
	out := req.Clone(ctx)
	out.URL.Scheme = "https"
	// The URL host decides the Host header, the SNI (none for an IP) and the certificate name
	// that must match, which is exactly what discovery says; the targets decide where to dial.
	out.URL.Host = res.HostHeader
	out.Host = res.HostHeader
	// mautrix's client sends JSON bodies without a Content-Type; Dendrite (gomatrixserverlib)
	// rejects such requests with 400, so every PUT/POST to it (send, send_join, invite) failed.
	if out.Body != nil && out.Body != http.NoBody && out.Header.Get("Content-Type") == "" {
		out.Header.Set("Content-Type", "application/json")
	}
	resp, err := t.inner.RoundTrip(out)
	if err != nil {
		var opErr *net.OpError
		if errors.As(err, &opErr) && opErr.Op == "dial" {
			// Nobody answered where discovery pointed: ask again next time instead of waiting
			// out a 24 h cache entry.
			_ = t.resolver.cache.Forget(req.URL.Host)
		}
		return nil, err
	}
	return resp, nil
}

// CloseIdleConnections lets http.Client.CloseIdleConnections reach the pooled connections.
func (t *resolvingTransport) CloseIdleConnections() { t.inner.CloseIdleConnections() }
