package tls

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	stdtls "crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// caValidity is the local CA's lifetime. LAN clients install it once; it should outlive the
// appliance's SD card.
const caValidity = 10 * 365 * 24 * time.Hour

// Local CA file names inside <data>/tls.
const (
	localCACertFile = "ca.crt"
	localCAKeyFile  = "ca.key"
)

// localCA is a certificate authority made on first start and kept in <data>/tls, and a leaf it
// signs at start for the server name and the LAN names. LAN clients that install the CA
// certificate (served at CACertPath) trust the leaf; the leaf is reissued in memory when a
// third of its life remains, so a long-running appliance never serves an expired one.
type localCA struct {
	cert    *x509.Certificate
	key     crypto.Signer
	certPEM []byte
	names   []string
	log     *slog.Logger

	mu   sync.Mutex
	leaf *stdtls.Certificate
}

// openLocalCA loads the CA from dataDir/tls, creating it when neither file exists, and issues
// the first leaf.
func openLocalCA(dataDir string, names []string, log *slog.Logger) (*localCA, error) {
	if dataDir == "" {
		return nil, errors.New("tls: localca mode needs the data directory")
	}
	if len(names) == 0 {
		return nil, errors.New("tls: localca mode needs a server name or LAN names")
	}
	dir := filepath.Join(dataDir, "tls")
	certFile, keyFile := filepath.Join(dir, localCACertFile), filepath.Join(dir, localCAKeyFile)
	_, certErr := os.Stat(certFile)
	_, keyErr := os.Stat(keyFile)
	switch {
	case errors.Is(certErr, fs.ErrNotExist) && errors.Is(keyErr, fs.ErrNotExist):
		if err := createLocalCA(dir, certFile, keyFile, names[0]); err != nil {
			return nil, err
		}
		log.Info("created local CA; install its certificate on LAN clients", "cert", certFile, "download", CACertPath)
	case certErr != nil || keyErr != nil:
		// One file without the other: never overwrite a key someone may still need.
		return nil, fmt.Errorf("tls: local CA in %s is incomplete (%s: %v, %s: %v); restore or remove both files",
			dir, localCACertFile, certErr, localCAKeyFile, keyErr)
	}
	cert, err := loadCertificate(certFile)
	if err != nil {
		return nil, fmt.Errorf("tls: local CA certificate: %w", err)
	}
	key, err := loadPrivateKey(keyFile)
	if err != nil {
		return nil, fmt.Errorf("tls: local CA key: %w", err)
	}
	if !publicKeysEqual(cert.PublicKey, key.Public()) {
		return nil, fmt.Errorf("tls: local CA key %s does not match %s", keyFile, certFile)
	}
	if time.Now().After(cert.NotAfter) {
		return nil, fmt.Errorf("tls: local CA %s expired on %s; remove both files to make a new one (LAN clients must then trust the new CA)",
			certFile, cert.NotAfter.Format(time.DateOnly))
	}
	ca := &localCA{
		cert: cert, key: key, names: names, log: log,
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}),
	}
	if ca.leaf, err = issueNames(cert, key, names, leafValidity); err != nil {
		return nil, err
	}
	return ca, nil
}

// createLocalCA writes a new P-256 CA: the key first (mode 0600), then the certificate, each
// through a temporary file and a rename so that a crash never leaves half a file.
func createLocalCA(dir, certFile, keyFile, host string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("tls: create %s: %w", dir, err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("tls: generate CA key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return fmt.Errorf("tls: serial number: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "Hearth local CA " + host, Organization: []string{"Hearth"}},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(caValidity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true, // signs leaves only
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return fmt.Errorf("tls: self-sign local CA: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("tls: encode CA key: %w", err)
	}
	if err := writeFileAtomic(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return err
	}
	return writeFileAtomic(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

func writeFileAtomic(name string, data []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".*")
	if err != nil {
		return fmt.Errorf("tls: write %s: %w", name, err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("tls: write %s: %w", name, err)
	}
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return fmt.Errorf("tls: chmod %s: %w", name, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("tls: sync %s: %w", name, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("tls: close %s: %w", name, err)
	}
	if err := os.Rename(tmp.Name(), name); err != nil {
		return fmt.Errorf("tls: rename to %s: %w", name, err)
	}
	return nil
}

// getCertificate serves the leaf, reissuing it first when a third of its life remains.
func (ca *localCA) getCertificate(*stdtls.ClientHelloInfo) (*stdtls.Certificate, error) {
	ca.mu.Lock()
	defer ca.mu.Unlock()
	l := ca.leaf.Leaf
	if time.Until(l.NotAfter) < l.NotAfter.Sub(l.NotBefore)/3 {
		leaf, err := issueNames(ca.cert, ca.key, ca.names, leafValidity)
		if err != nil {
			ca.log.Error("reissue local CA leaf; the current one keeps serving", "err", err)
		} else {
			ca.leaf = leaf
		}
	}
	return ca.leaf, nil
}

// serveCA answers GET and HEAD with the CA certificate in PEM, as a file to install.
func (ca *localCA) serveCA(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	w.Header().Set("Content-Type", "application/x-x509-ca-cert")
	w.Header().Set("Content-Disposition", `attachment; filename="hearth-ca.crt"`)
	w.Header().Set("Cache-Control", "no-cache")
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(ca.certPEM)
}
