package testserver

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/hearth-home/hearth/appliance/config"
)

// CA is a test certificate authority on disk: servers started with Federated sign their
// federation certificates with it (the Complement contract, tls_ca) and trust it outbound.
type CA struct{ Cert, Key string }

// NewCA writes a fresh CA for one test.
func NewCA(t testing.TB) CA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "Hearth test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ca := CA{Cert: filepath.Join(dir, "ca.crt"), Key: filepath.Join(dir, "ca.key")}
	if err := os.WriteFile(ca.Cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ca.Key, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	return ca
}

// FreePort returns a loopback port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Federated makes the server federate on loopback: server name localhost:PORT, the federation
// listener on that port with a certificate from ca, and short retry delays.
func Federated(t testing.TB, ca CA) Option {
	port := FreePort(t)
	return func(c *config.Config) {
		c.ServerName = "localhost:" + strconv.Itoa(port)
		c.FederationListen = "127.0.0.1:" + strconv.Itoa(port)
		c.TLSCA, c.TLSCAKey = ca.Cert, ca.Key
		c.Federation.RetryBase = 100 * time.Millisecond
		c.Federation.RetryMax = 2 * time.Second
	}
}

// Restart stops the server and starts it again on the same data and addresses.
func (s *Server) Restart(t testing.TB) *Server {
	t.Helper()
	s.Stop()
	cfg := s.Config
	cfg.Listen = s.URL[len("http://"):]
	return StartConfig(t, cfg)
}
