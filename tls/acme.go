package tls

import (
	"context"
	stdtls "crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/caddyserver/certmagic"
)

// acmeTLSALPN is the ALPN protocol of the TLS-ALPN-01 challenge (RFC 8737).
const acmeTLSALPN = "acme-tls/1"

// LetsEncryptProduction is the default ACME directory.
const LetsEncryptProduction = certmagic.LetsEncryptProductionCA

// ACME configures ModeACME.
type ACME struct {
	// DirectoryURL is the CA's ACME directory; empty means LetsEncryptProduction.
	DirectoryURL string
	// Email is the account contact the CA writes to about expiring certificates.
	Email string
	// Agreed records that the operator accepted the CA's terms of service.
	Agreed bool
	// Domains to get certificates for; empty means the server name's host.
	Domains []string
	// TrustedRoots verify the CA's own HTTPS endpoint; nil means the system roots (a private
	// or test CA needs its root here).
	TrustedRoots *x509.CertPool

	// ListenHost, HTTPPort and TLSALPNPort are where certmagic binds its own short-lived
	// challenge listeners when nothing else holds the port (defaults: all interfaces, 80 and
	// 443). When the port is taken, by Hearth's own plain listener wrapped with HTTPHandler or
	// by the federation listener, the challenge is answered there instead.
	ListenHost            string
	HTTPPort, TLSALPNPort int
	// DisableHTTP01 and DisableTLSALPN01 turn a challenge type off (both on by default).
	DisableHTTP01, DisableTLSALPN01 bool

	// RenewCheckInterval is how often certmagic checks for renewal (0 means its default,
	// 10 minutes); RenewalWindowRatio the remaining fraction of a certificate's lifetime at
	// which it renews (0 means 1/3). Renewal also follows the CA's ACME Renewal Info.
	RenewCheckInterval time.Duration
	RenewalWindowRatio float64

	// OnEvent, when set, hears certmagic's issuance events: "cert_obtaining", "cert_obtained"
	// (data["renewal"] tells a renewal) and "cert_failed".
	OnEvent func(event string, data map[string]any)

	// LockLease is the store lock lifetime (0 means one minute).
	LockLease time.Duration
}

// acmeSource gets and renews certificates through certmagic, keeping everything in the store.
// Until the first certificate arrives, and for names it does not manage, handshakes get a
// self-signed fallback so that the listener works (peers just will not trust it yet).
type acmeSource struct {
	cfg      *certmagic.Config
	cache    *certmagic.Cache
	issuer   *certmagic.ACMEIssuer
	storage  *Storage
	fallback *stdtls.Certificate
}

func newACME(ctx context.Context, o Options, log *slog.Logger) (*acmeSource, error) {
	a := o.ACME
	domains := acmeDomains(o)
	switch {
	case o.Store == nil:
		return nil, errors.New("tls: acme mode needs the store")
	case len(domains) == 0:
		return nil, errors.New("tls: acme mode needs a server name or acme_domains")
	case !a.Agreed:
		return nil, errors.New("tls: acme mode needs the CA's terms of service accepted (acme_agree)")
	}
	storage, err := NewStorage(o.Store, a.LockLease)
	if err != nil {
		return nil, err
	}
	fallback, err := SelfSigned(domains[0])
	if err != nil {
		return nil, err
	}
	zl := zapToSlog(log)
	var cfg *certmagic.Config
	cache := certmagic.NewCache(certmagic.CacheOptions{
		// One configuration manages every certificate of this cache.
		GetConfigForCert:   func(certmagic.Certificate) (*certmagic.Config, error) { return cfg, nil },
		RenewCheckInterval: a.RenewCheckInterval,
		Logger:             zl,
	})
	cfg = certmagic.New(cache, certmagic.Config{
		Storage:            storage,
		RenewalWindowRatio: a.RenewalWindowRatio,
		DefaultServerName:  domains[0], // handshakes without SNI
		FallbackServerName: domains[0], // handshakes naming a host we have no certificate for
		Logger:             zl,
		ShouldEmitFunc: func(event string) bool {
			return event == "cert_obtaining" || event == "cert_obtained" || event == "cert_failed"
		},
		OnEvent: func(_ context.Context, event string, data map[string]any) error {
			logEvent(log, event, data)
			if a.OnEvent != nil {
				a.OnEvent(event, data)
			}
			return nil // an error would abort the issuance
		},
	})
	dir := a.DirectoryURL
	if dir == "" {
		dir = LetsEncryptProduction
	}
	issuer := certmagic.NewACMEIssuer(cfg, certmagic.ACMEIssuer{
		CA:                      dir,
		Email:                   a.Email,
		Agreed:                  a.Agreed,
		TrustedRoots:            a.TrustedRoots,
		ListenHost:              a.ListenHost,
		AltHTTPPort:             a.HTTPPort,
		AltTLSALPNPort:          a.TLSALPNPort,
		DisableHTTPChallenge:    a.DisableHTTP01,
		DisableTLSALPNChallenge: a.DisableTLSALPN01,
		Logger:                  zl,
	})
	cfg.Issuers = []certmagic.Issuer{issuer}
	// Async: a certificate already in the store is loaded and served at once; a missing one is
	// obtained in the background with certmagic's retries, so an unreachable CA never blocks
	// the appliance's start.
	if err := cfg.ManageAsync(ctx, domains); err != nil {
		cache.Stop()
		storage.Close()
		return nil, fmt.Errorf("tls: manage %v: %w", domains, err)
	}
	return &acmeSource{cfg: cfg, cache: cache, issuer: issuer, storage: storage, fallback: fallback}, nil
}

func logEvent(log *slog.Logger, event string, data map[string]any) {
	switch event {
	case "cert_failed":
		log.Warn("ACME certificate failed; the current certificate keeps serving", "identifier", data["identifier"], "renewal", data["renewal"], "err", data["error"])
	case "cert_obtained":
		log.Info("ACME certificate obtained", "identifier", data["identifier"], "renewal", data["renewal"])
	}
}

// getCertificate serves the managed certificate (or a TLS-ALPN-01 challenge certificate), else
// the fallback. A challenge handshake never gets the fallback: the CA must see the failure.
func (s *acmeSource) getCertificate(hello *stdtls.ClientHelloInfo) (*stdtls.Certificate, error) {
	cert, err := s.cfg.GetCertificate(hello)
	if err == nil {
		return cert, nil
	}
	if len(hello.SupportedProtos) == 1 && hello.SupportedProtos[0] == acmeTLSALPN {
		return nil, err
	}
	return s.fallback, nil
}

// handleHTTP answers an HTTP-01 challenge request; false means r is not one.
func (s *acmeSource) handleHTTP(w http.ResponseWriter, r *http.Request) bool {
	return s.issuer.HandleHTTPChallenge(w, r)
}

// current is the managed certificate for name that expires last. It reads certmagic's cache
// rather than faking a handshake.
func (s *acmeSource) current(name string) (*stdtls.Certificate, error) {
	var best *certmagic.Certificate
	for _, c := range s.cache.AllMatchingCertificates(name) {
		if c.Leaf != nil && (best == nil || c.Leaf.NotAfter.After(best.Leaf.NotAfter)) {
			best = &c
		}
	}
	if best == nil {
		return nil, fmt.Errorf("tls: no ACME certificate for %q yet", name)
	}
	cert := best.Certificate
	return &cert, nil
}

// close stops certmagic's maintenance and shuts the storage, so that no job still running
// touches the store after the appliance closes it.
func (s *acmeSource) close() {
	s.cache.Stop()
	s.storage.Close()
}
