package tls

import (
	"bytes"
	"context"
	stdtls "crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// defaultReloadInterval is how often ModeFiles looks at its files. Renewal tools (certbot,
// acme.sh, a router's ACME client) replace them at most daily, so a short delay is harmless.
const defaultReloadInterval = 30 * time.Second

// fileSource serves a PEM certificate and key from files and reloads them when their content
// changes. It compares content rather than modification times: some tools restore old times and
// some file systems keep them coarse. A pair that does not load (half-written, mismatched) is
// logged and the previous certificate keeps serving.
type fileSource struct {
	certFile, keyFile string
	interval          time.Duration
	log               *slog.Logger

	mu        sync.RWMutex
	cur       *stdtls.Certificate
	certPEM   []byte // the content cur came from
	keyPEM    []byte
	lastError string // last failed reload, logged once per distinct failure
}

func newFileSource(certFile, keyFile string, interval time.Duration, log *slog.Logger) (*fileSource, error) {
	if certFile == "" || keyFile == "" {
		return nil, errors.New("tls: files mode needs tls_cert and tls_key")
	}
	if interval <= 0 {
		interval = defaultReloadInterval
	}
	f := &fileSource{certFile: certFile, keyFile: keyFile, interval: interval, log: log}
	if _, err := f.reload(); err != nil {
		return nil, err
	}
	return f, nil
}

func (f *fileSource) getCertificate(*stdtls.ClientHelloInfo) (*stdtls.Certificate, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.cur, nil
}

// reload reads both files and swaps the certificate in when their content changed.
func (f *fileSource) reload() (changed bool, err error) {
	certPEM, err := os.ReadFile(f.certFile)
	if err != nil {
		return false, fmt.Errorf("tls: read %s: %w", f.certFile, err)
	}
	keyPEM, err := os.ReadFile(f.keyFile)
	if err != nil {
		return false, fmt.Errorf("tls: read %s: %w", f.keyFile, err)
	}
	f.mu.RLock()
	same := f.cur != nil && bytes.Equal(certPEM, f.certPEM) && bytes.Equal(keyPEM, f.keyPEM)
	f.mu.RUnlock()
	if same {
		return false, nil
	}
	cert, err := stdtls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return false, fmt.Errorf("tls: load %s and %s: %w", f.certFile, f.keyFile, err)
	}
	f.mu.Lock()
	f.cur, f.certPEM, f.keyPEM = &cert, certPEM, keyPEM
	f.mu.Unlock()
	return true, nil
}

// watch reloads every interval until ctx ends.
func (f *fileSource) watch(ctx context.Context) {
	t := time.NewTicker(f.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		changed, err := f.reload()
		switch {
		case err != nil:
			if err.Error() != f.lastError {
				f.log.Warn("federation certificate files did not load; the previous certificate keeps serving", "err", err)
			}
			f.lastError = err.Error()
		case changed:
			f.lastError = ""
			f.log.Info("federation certificate reloaded", "cert", f.certFile)
		}
	}
}
