package tls

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	stdtls "crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeCA makes a CA certificate and writes it and its key (in the given PEM form) to dir.
func writeCA(t *testing.T, dir string, key crypto.Signer, keyPEM *pem.Block) (certFile, keyFile string) {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "Test CA", Organization: []string{"Test"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	certFile = filepath.Join(dir, "ca.crt")
	keyFile = filepath.Join(dir, "ca.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(keyPEM), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// complementCA writes an RSA CA with a PKCS#1 key, as Complement does.
func complementCA(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return writeCA(t, t.TempDir(), key, &pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
}

func verify(leaf *stdtls.Certificate, pool *x509.CertPool, host string) error {
	_, err := leaf.Leaf.Verify(x509.VerifyOptions{
		DNSName:   host,
		Roots:     pool,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	return err
}

func TestSignWithCAComplementRSA(t *testing.T) {
	certFile, keyFile := complementCA(t)
	leaf, pool, err := SignWithCA(certFile, keyFile, "hs1")
	if err != nil {
		t.Fatalf("SignWithCA: %v", err)
	}
	if len(leaf.Certificate) != 2 {
		t.Errorf("chain has %d certificates, want leaf and CA", len(leaf.Certificate))
	}
	if _, ok := leaf.PrivateKey.(*ecdsa.PrivateKey); !ok {
		t.Errorf("leaf key is %T, want *ecdsa.PrivateKey", leaf.PrivateKey)
	}
	if err := verify(leaf, pool, "hs1"); err != nil {
		t.Errorf("verify for hs1: %v", err)
	}
	if err := verify(leaf, pool, "hs2"); err == nil {
		t.Error("verify for hs2 succeeded, want a hostname error")
	}
	if err := verify(leaf, x509.NewCertPool(), "hs1"); err == nil {
		t.Error("verify against an empty pool succeeded")
	}
	if d := leaf.Leaf.NotAfter.Sub(time.Now()); d < 364*24*time.Hour || d > 366*24*time.Hour {
		t.Errorf("leaf valid for %v, want about a year", d)
	}
}

// TestSignWithCAHandshake runs a real TLS handshake: server with the issued leaf, client trusting
// only the returned pool, as outbound federation does.
func TestSignWithCAHandshake(t *testing.T) {
	certFile, keyFile := complementCA(t)
	leaf, pool, err := SignWithCA(certFile, keyFile, "hs1:8448")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := stdtls.Listen("tcp", "127.0.0.1:0", &stdtls.Config{Certificates: []stdtls.Certificate{*leaf}})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		_ = c.(*stdtls.Conn).Handshake()
		c.Close()
	}()
	c, err := stdtls.Dial("tcp", ln.Addr().String(), &stdtls.Config{RootCAs: pool, ServerName: "hs1"})
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	c.Close()
}

func TestSignWithCAPortAndIP(t *testing.T) {
	certFile, keyFile := complementCA(t)
	leaf, pool, err := SignWithCA(certFile, keyFile, "hs1:8448")
	if err != nil {
		t.Fatal(err)
	}
	if got := leaf.Leaf.DNSNames; len(got) != 1 || got[0] != "hs1" {
		t.Errorf("DNS SANs = %v, want [hs1]", got)
	}
	if err := verify(leaf, pool, "hs1"); err != nil {
		t.Errorf("verify: %v", err)
	}

	leaf, pool, err = SignWithCA(certFile, keyFile, "[::1]:8448")
	if err != nil {
		t.Fatal(err)
	}
	if got := leaf.Leaf.IPAddresses; len(got) != 1 || !got[0].Equal(net.IPv6loopback) {
		t.Errorf("IP SANs = %v, want [::1]", got)
	}
	if len(leaf.Leaf.DNSNames) != 0 {
		t.Errorf("DNS SANs = %v, want none for an IP", leaf.Leaf.DNSNames)
	}
	if err := verify(leaf, pool, "::1"); err != nil {
		t.Errorf("verify ::1: %v", err)
	}

	leaf, pool, err = SignWithCA(certFile, keyFile, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	if err := verify(leaf, pool, "127.0.0.1"); err != nil {
		t.Errorf("verify 127.0.0.1: %v", err)
	}
}

func TestSignWithCAKeyFormats(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8 := func(k crypto.Signer) []byte {
		b, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	sec1, err := x509.MarshalECPrivateKey(ecKey)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		key  crypto.Signer
		pem  *pem.Block
	}{
		{"pkcs8-rsa", rsaKey, &pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8(rsaKey)}},
		{"pkcs8-ec", ecKey, &pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8(ecKey)}},
		{"sec1-ec", ecKey, &pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			certFile, keyFile := writeCA(t, t.TempDir(), tc.key, tc.pem)
			leaf, pool, err := SignWithCA(certFile, keyFile, "example.org")
			if err != nil {
				t.Fatalf("SignWithCA: %v", err)
			}
			if err := verify(leaf, pool, "example.org"); err != nil {
				t.Errorf("verify: %v", err)
			}
		})
	}
}

func TestSignWithCABadInput(t *testing.T) {
	certFile, keyFile := complementCA(t)
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.key")
	if err := os.WriteFile(garbage, []byte("not a key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	corrupt := filepath.Join(dir, "corrupt.key")
	if err := os.WriteFile(corrupt, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: []byte{1, 2, 3}}), 0o600); err != nil {
		t.Fatal(err)
	}
	_, otherKey := complementCA(t)

	cases := []struct {
		name, cert, key, want string
	}{
		{"garbage key", certFile, garbage, "CA key: " + garbage + ": no PEM private key block"},
		{"corrupt key", certFile, corrupt, "CA key: " + corrupt + ": PKCS#1"},
		{"missing key", certFile, filepath.Join(dir, "nope.key"), "CA key: open"},
		{"missing cert", filepath.Join(dir, "nope.crt"), keyFile, "CA certificate: open"},
		{"key is not a cert", keyFile, keyFile, "no PEM CERTIFICATE block"},
		{"mismatched key", certFile, otherKey, "does not match"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := SignWithCA(tc.cert, tc.key, "hs1")
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.HasPrefix(err.Error(), "tls: ") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to contain %q", err, tc.want)
			}
		})
	}
	if _, _, err := SignWithCA(certFile, keyFile, ""); err == nil {
		t.Error("empty server name: no error")
	}
	if _, _, err := SignWithCA(certFile, filepath.Join(dir, "missing"), "hs1"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing key error %v does not wrap fs.ErrNotExist", err)
	}
}

func TestLoadFilesAndSelfSigned(t *testing.T) {
	ss, err := SelfSigned("hearth.local:8448")
	if err != nil {
		t.Fatalf("SelfSigned: %v", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ss.Leaf)
	if err := verify(ss, pool, "hearth.local"); err != nil {
		t.Errorf("verify self-signed: %v", err)
	}

	dir := t.TempDir()
	certFile := filepath.Join(dir, "tls.crt")
	keyFile := filepath.Join(dir, "tls.key")
	keyDER, err := x509.MarshalPKCS8PrivateKey(ss.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ss.Certificate[0]}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := LoadFiles(certFile, keyFile)
	if err != nil {
		t.Fatalf("LoadFiles: %v", err)
	}
	if len(c.Certificate) != 1 {
		t.Errorf("loaded %d certificates, want 1", len(c.Certificate))
	}
	if _, err := LoadFiles(certFile, filepath.Join(dir, "missing.key")); err == nil || !strings.Contains(err.Error(), "missing.key") {
		t.Errorf("LoadFiles with a missing key: %v", err)
	}
}

func TestHostOnly(t *testing.T) {
	for in, want := range map[string]string{
		"hs1":             "hs1",
		"hs1:8448":        "hs1",
		"example.org:443": "example.org",
		"[::1]:8448":      "::1",
		"[::1]":           "::1",
		"::1":             "::1",
		"10.0.0.1:8448":   "10.0.0.1",
		" hs1 ":           "hs1",
	} {
		if got := HostOnly(in); got != want {
			t.Errorf("HostOnly(%q) = %q, want %q", in, got, want)
		}
	}
}
