package appliance

import (
	"crypto/x509"
	"fmt"
	"path/filepath"

	hearthtls "github.com/hearth-home/hearth/tls"
)

// openCerts builds the federation listener's certificate manager from the configuration (tls_*
// and acme_* keys). It needs the store (ACME keeps its account and certificates there) and
// must be closed before the store: certmagic's renewals write to it.
func (a *Appliance) openCerts() error {
	c := a.cfg
	// The extra CAs also verify the ACME directory, so a private ACME CA on the LAN
	// (step-ca, a router's) works once its root is listed in tls_extra_ca.
	var acmeRoots *x509.CertPool
	if len(c.TLSExtraCA) > 0 {
		roots, err := hearthtls.ExtraRoots(c.TLSExtraCA)
		if err != nil {
			return fmt.Errorf("federation certificate: %w", err)
		}
		acmeRoots = roots
	}
	m, err := hearthtls.New(hearthtls.Options{
		Mode:       hearthtls.Mode(c.TLS.Mode),
		ServerName: c.ServerName,
		DataDir:    c.DataDir,
		Store:      a.st,
		CertFile:   c.TLSCert,
		KeyFile:    c.TLSKey,
		CAFile:     c.TLSCA,
		CAKeyFile:  c.TLSCAKey,
		LANNames:   c.TLS.LANNames,
		ACME: hearthtls.ACME{
			DirectoryURL: c.TLS.ACMECA,
			Email:        c.TLS.ACMEEmail,
			Agreed:       c.TLS.ACMEAgree,
			Domains:      c.TLS.ACMEDomains,
			TrustedRoots: acmeRoots,
		},
		Logger: a.log,
	})
	if err != nil {
		return fmt.Errorf("federation certificate: %w", err)
	}
	a.certs = m
	if pem := m.CACertificatePEM(); pem != nil {
		a.log.Info("local CA for LAN clients", "file", filepath.Join(c.DataDir, "tls", "ca.crt"), "url_path", hearthtls.CACertPath)
	}
	return nil
}
