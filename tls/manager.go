package tls

import (
	"context"
	stdtls "crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hearth-home/hearth/matrix/store"
)

// Mode says where the federation listener's certificate comes from.
type Mode string

// The certificate sources. ModeAuto is resolved by Resolve before use.
const (
	ModeAuto       Mode = "auto"
	ModeACME       Mode = "acme"       // ACME v2 (Let's Encrypt by default) through certmagic
	ModeFiles      Mode = "files"      // PEM files, reloaded when they change
	ModeLocalCA    Mode = "localca"    // a CA made on first start in <data>/tls, for the LAN
	ModeCA         Mode = "ca"         // a leaf signed at start by a given CA (the Complement contract)
	ModeSelfSigned Mode = "selfsigned" // a throwaway self-signed leaf
)

// Modes lists every mode a configuration may name.
var Modes = []Mode{ModeAuto, ModeACME, ModeFiles, ModeLocalCA, ModeCA, ModeSelfSigned}

// Options configure a Manager.
type Options struct {
	Mode       Mode
	ServerName string // Matrix server name; its host is the default certificate name
	// DataDir is the appliance data directory; the local CA lives in DataDir/tls.
	DataDir string
	// Store keeps the ACME account and certificates (ModeACME).
	Store *store.Store

	// CertFile and KeyFile are the PEM pair of ModeFiles, looked at every ReloadInterval
	// (0 means 30 s) and reloaded when their content changes.
	CertFile, KeyFile string
	ReloadInterval    time.Duration

	// CAFile and CAKeyFile sign the leaf of ModeCA.
	CAFile, CAKeyFile string

	// LANNames are the extra DNS names and IP addresses of the local CA's leaf, besides the
	// server name's host; empty means DefaultLANName.
	LANNames []string

	ACME   ACME
	Logger *slog.Logger
}

// DefaultLANName is the local CA leaf's extra name when none is configured (the name an
// appliance answers to over mDNS).
const DefaultLANName = "hearth.local"

// Manager hands out the federation listener's certificate from the configured source.
type Manager struct {
	mode   Mode
	log    *slog.Logger
	get    func(*stdtls.ClientHelloInfo) (*stdtls.Certificate, error)
	acme   *acmeSource
	files  *fileSource
	local  *localCA
	trust  *x509.CertPool // the signing CA in ModeCA and ModeLocalCA
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Resolve turns ModeAuto into a concrete mode: "ca" when a signing CA is configured (the
// Complement contract wins over everything), "files" when a certificate file is, "acme" when an
// ACME e-mail is given, its terms are accepted and the names are public, else "localca". Any
// other mode is returned as it is.
func Resolve(o Options) Mode {
	if o.Mode != ModeAuto && o.Mode != "" {
		return o.Mode
	}
	switch {
	case o.CAFile != "":
		return ModeCA
	case o.CertFile != "":
		return ModeFiles
	case o.ACME.Email != "" && o.ACME.Agreed && allPublic(acmeDomains(o)):
		return ModeACME
	default:
		return ModeLocalCA
	}
}

// New builds the manager for o and starts its background work (ACME issuance and renewal, or
// watching the certificate files). Close stops it.
func New(o Options) (*Manager, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	m := &Manager{mode: Resolve(o), log: o.Logger.With("component", "tls")}
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	var err error
	switch m.mode {
	case ModeACME:
		m.acme, err = newACME(ctx, o, m.log)
		if err == nil {
			m.get = m.acme.getCertificate
		}
	case ModeFiles:
		m.files, err = newFileSource(o.CertFile, o.KeyFile, o.ReloadInterval, m.log)
		if err == nil {
			m.get = m.files.getCertificate
			m.wg.Go(func() { m.files.watch(ctx) })
		}
	case ModeLocalCA:
		m.local, err = openLocalCA(o.DataDir, localNames(o), m.log)
		if err == nil {
			m.get = m.local.getCertificate
			m.trust = x509.NewCertPool()
			m.trust.AddCert(m.local.cert)
		}
	case ModeCA:
		var cert *stdtls.Certificate
		cert, m.trust, err = SignWithCA(o.CAFile, o.CAKeyFile, o.ServerName)
		m.get = static(cert)
	case ModeSelfSigned:
		var cert *stdtls.Certificate
		cert, err = SelfSigned(o.ServerName)
		m.get = static(cert)
	default:
		err = fmt.Errorf("tls: unknown mode %q (want one of %v)", m.mode, Modes)
	}
	if err != nil {
		cancel()
		m.wg.Wait()
		return nil, err
	}
	m.log.Info("federation certificate source", "mode", m.mode)
	return m, nil
}

func static(cert *stdtls.Certificate) func(*stdtls.ClientHelloInfo) (*stdtls.Certificate, error) {
	return func(*stdtls.ClientHelloInfo) (*stdtls.Certificate, error) { return cert, nil }
}

// Mode is the resolved certificate source.
func (m *Manager) Mode() Mode { return m.mode }

// TLSConfig is the configuration of the federation listener. It offers acme-tls/1 besides
// HTTP/1.1 so that the TLS-ALPN-01 challenge can be answered on the same port.
func (m *Manager) TLSConfig() *stdtls.Config {
	return &stdtls.Config{
		GetCertificate: m.get,
		NextProtos:     []string{"http/1.1", acmeTLSALPN},
		MinVersion:     stdtls.VersionTLS12,
	}
}

// Certificate returns the certificate a handshake for serverName would get now.
// In ModeACME it is the managed certificate, or an error before the first one arrived.
func (m *Manager) Certificate(serverName string) (*stdtls.Certificate, error) {
	if m.acme != nil {
		return m.acme.current(HostOnly(serverName))
	}
	return m.get(&stdtls.ClientHelloInfo{ServerName: HostOnly(serverName)})
}

// TrustedCA is the CA that signs this server's certificate in ModeCA and ModeLocalCA (to be
// trusted for outbound connections to peers that the same CA signed), nil in other modes.
func (m *Manager) TrustedCA() *x509.CertPool { return m.trust }

// CACertificatePEM is the local CA certificate (ModeLocalCA) for LAN clients to install; nil
// in other modes.
func (m *Manager) CACertificatePEM() []byte {
	if m.local == nil {
		return nil
	}
	return slices.Clone(m.local.certPEM)
}

// CACertPath is where HTTPHandler serves the local CA certificate.
const CACertPath = "/_hearth/tls/ca.crt"

// HTTPHandler wraps the plain-HTTP handler: it answers ACME HTTP-01 challenges under
// /.well-known/acme-challenge/ (ModeACME) and serves the local CA certificate at CACertPath
// (ModeLocalCA); everything else goes to next.
func (m *Manager) HTTPHandler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if m.acme != nil && m.acme.handleHTTP(w, r) {
			return
		}
		if m.local != nil && r.URL.Path == CACertPath {
			m.local.serveCA(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// Close stops background work. Certificates already handed out stay usable.
func (m *Manager) Close() error {
	m.cancel()
	m.wg.Wait()
	if m.acme != nil {
		m.acme.close()
	}
	return nil
}

// acmeDomains are the names to get ACME certificates for: the configured list or the server
// name's host.
func acmeDomains(o Options) []string {
	var out []string
	for _, d := range o.ACME.Domains {
		if d = strings.TrimSpace(d); d != "" {
			out = append(out, d)
		}
	}
	if len(out) == 0 && o.ServerName != "" {
		out = []string{HostOnly(o.ServerName)}
	}
	return out
}

// localNames are the local CA leaf's names: the server name's host first, then the LAN names.
func localNames(o Options) []string {
	names := []string{HostOnly(o.ServerName)}
	lan := o.LANNames
	if len(lan) == 0 {
		lan = []string{DefaultLANName}
	}
	for _, n := range lan {
		n = HostOnly(n)
		if n != "" && !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	if names[0] == "" {
		names = names[1:]
	}
	return names
}

func allPublic(names []string) bool {
	if len(names) == 0 {
		return false
	}
	for _, n := range names {
		if !IsPublicName(n) {
			return false
		}
	}
	return true
}

// privateSuffixes are name endings that no public CA will issue for (RFC 6761, RFC 8375 and
// the names home routers use).
var privateSuffixes = []string{".local", ".lan", ".home", ".internal", ".localdomain", ".localhost",
	".test", ".example", ".invalid", ".home.arpa", ".corp", ".intranet", ".private"}

// IsPublicName reports whether a public ACME CA could issue for host: a dotted DNS name outside
// the reserved and home-network suffixes. IP addresses and single labels are not.
func IsPublicName(host string) bool {
	h := strings.ToLower(strings.TrimSuffix(HostOnly(host), "."))
	if h == "" || net.ParseIP(h) != nil || !strings.Contains(h, ".") || h == "localhost" {
		return false
	}
	for _, s := range privateSuffixes {
		if strings.HasSuffix(h, s) {
			return false
		}
	}
	return true
}
