package tls

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	stdtls "crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// serveTLS runs a TLS listener with m's configuration until the test ends and returns its
// address.
func serveTLS(t *testing.T, m *Manager) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tl := stdtls.NewListener(ln, m.TLSConfig())
	go func() {
		for {
			c, err := tl.Accept()
			if err != nil {
				return
			}
			go func() {
				_ = c.(*stdtls.Conn).Handshake()
				c.Close()
			}()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().String()
}

// signedPair makes a CA and writes a leaf for name signed by it; it returns the files and the
// CA pool.
func signedPair(t *testing.T, dir, prefix, name string) (certFile, keyFile string, pool *x509.CertPool, serial string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalECPrivateKey(key)
	caCert, caKey := writeCA(t, t.TempDir(), key, &pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
	leaf, pool, err := SignWithCA(caCert, caKey, name)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = writePair(t, dir, prefix, leaf)
	return certFile, keyFile, pool, leaf.Leaf.SerialNumber.String()
}

func TestFilesModeReloads(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, pool1, serial1 := signedPair(t, dir, "fed", "hs.example.org")
	m, err := New(Options{ServerName: "hs.example.org", CertFile: certFile, KeyFile: keyFile, ReloadInterval: 20 * time.Millisecond, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.Mode() != ModeFiles {
		t.Fatalf("mode %s, want files (tls_cert set)", m.Mode())
	}
	addr := serveTLS(t, m)
	leaf, err := handshake(addr, "hs.example.org", pool1)
	if err != nil || leaf.SerialNumber.String() != serial1 {
		t.Fatalf("first handshake: %v, serial %v want %s", err, leaf, serial1)
	}

	// A half-written replacement (new certificate, old key) does not load: the old pair serves.
	other := t.TempDir()
	newCert, newKey, pool2, serial2 := signedPair(t, other, "fed", "hs.example.org")
	copyFile(t, newCert, certFile)
	time.Sleep(100 * time.Millisecond) // several reload ticks
	if leaf, err := handshake(addr, "hs.example.org", pool1); err != nil || leaf.SerialNumber.String() != serial1 {
		t.Fatalf("mismatched pair replaced the certificate: %v", err)
	}

	// The key arrives too: the new certificate serves without a restart.
	copyFile(t, newKey, keyFile)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if !waitFor(ctx, func() bool {
		leaf, err := handshake(addr, "hs.example.org", pool2)
		return err == nil && leaf.SerialNumber.String() == serial2
	}) {
		t.Fatal("new certificate files not picked up")
	}

	// Files that vanish leave the last good certificate serving.
	os.Remove(certFile)
	time.Sleep(100 * time.Millisecond)
	if leaf, err := handshake(addr, "hs.example.org", pool2); err != nil || leaf.SerialNumber.String() != serial2 {
		t.Fatalf("after the files vanished: %v", err)
	}
}

func TestFilesModeBadStart(t *testing.T) {
	dir := t.TempDir()
	if _, err := New(Options{Mode: ModeFiles, CertFile: filepath.Join(dir, "no.crt"), KeyFile: filepath.Join(dir, "no.key")}); err == nil {
		t.Error("files mode started without its files")
	}
	if _, err := New(Options{Mode: ModeFiles}); err == nil || !strings.Contains(err.Error(), "tls_cert") {
		t.Errorf("files mode without file names: %v", err)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestLocalCAPersistsAndServes(t *testing.T) {
	data := t.TempDir()
	o := Options{ServerName: "hs.local:8448", DataDir: data, LANNames: []string{"hearth.local", "192.168.1.20", "hs.local"}, Logger: testLogger(t)}
	m, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	if m.Mode() != ModeLocalCA {
		t.Fatalf("mode %s, want localca (nothing configured)", m.Mode())
	}
	caPEM := m.CACertificatePEM()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatalf("CACertificatePEM is not a PEM certificate: %q", caPEM)
	}
	addr := serveTLS(t, m)
	for _, name := range []string{"hs.local", "hearth.local"} {
		if _, err := handshake(addr, name, pool); err != nil {
			t.Errorf("handshake for %s verified against the local CA: %v", name, err)
		}
	}
	cert, err := m.Certificate("hs.local")
	if err != nil {
		t.Fatal(err)
	}
	leaf := cert.Leaf
	if !slices.Equal(leaf.DNSNames, []string{"hs.local", "hearth.local"}) || len(leaf.IPAddresses) != 1 || !leaf.IPAddresses[0].Equal(net.ParseIP("192.168.1.20")) {
		t.Errorf("leaf names %v %v", leaf.DNSNames, leaf.IPAddresses)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: "192.168.1.20", Roots: pool}); err != nil {
		t.Errorf("leaf does not verify for its LAN IP: %v", err)
	}
	fi, err := os.Stat(filepath.Join(data, "tls", "ca.key"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("CA key file: %v, mode %v", err, fi.Mode())
	}
	if m.TrustedCA() == nil {
		t.Error("localca mode gives no TrustedCA")
	}
	m.Close()

	// Reopen: the same CA, a leaf that chains to it.
	m2, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	if string(m2.CACertificatePEM()) != string(caPEM) {
		t.Error("a restart made a new CA; LAN clients would have to trust it again")
	}
	if _, err := handshake(serveTLS(t, m2), "hs.local", pool); err != nil {
		t.Errorf("after restart: %v", err)
	}

	// Half a CA (key lost) is refused rather than silently replaced.
	os.Remove(filepath.Join(data, "tls", "ca.key"))
	if _, err := New(o); err == nil || !strings.Contains(err.Error(), "incomplete") {
		t.Errorf("CA without its key: %v", err)
	}
}

func TestLocalCADownloadAndHandlerPassThrough(t *testing.T) {
	m, err := New(Options{Mode: ModeLocalCA, ServerName: "hs1", DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	h := m.HTTPHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTeapot)
	}))
	srv := httptest.NewServer(h)
	defer srv.Close()

	resp, err := http.Get(srv.URL + CACertPath)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/x-x509-ca-cert" || string(body) != string(m.CACertificatePEM()) {
		t.Errorf("GET %s: %d %q, %d bytes", CACertPath, resp.StatusCode, resp.Header.Get("Content-Type"), len(body))
	}
	resp, err = http.Post(srv.URL+CACertPath, "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST %s: %d, want 405", CACertPath, resp.StatusCode)
	}
	for _, p := range []string{"/_matrix/client/versions", "/.well-known/acme-challenge/abc"} {
		resp, err := http.Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusTeapot {
			t.Errorf("GET %s: %d, want the wrapped handler's 418", p, resp.StatusCode)
		}
	}
}

func TestCAModeComplementContract(t *testing.T) {
	caCert, caKey := complementCA(t)
	// tls_ca wins over everything else, as the Complement image relies on.
	m, err := New(Options{ServerName: "hs1:8448", CAFile: caCert, CAKeyFile: caKey, CertFile: "ignored.crt", ACME: ACME{Email: "a@b.org", Agreed: true}})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.Mode() != ModeCA {
		t.Fatalf("mode %s, want ca", m.Mode())
	}
	if _, err := handshake(serveTLS(t, m), "hs1", m.TrustedCA()); err != nil {
		t.Errorf("leaf does not verify against the Complement CA: %v", err)
	}
	if m.CACertificatePEM() != nil {
		t.Error("ca mode offers a CA download (the CA is Complement's, not ours)")
	}
}

func TestSelfSignedMode(t *testing.T) {
	m, err := New(Options{Mode: ModeSelfSigned, ServerName: "hs1"})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	c, err := m.Certificate("hs1")
	if err != nil || c.Leaf.Subject.CommonName != "hs1" {
		t.Fatalf("self-signed: %v", err)
	}
	if _, err := New(Options{Mode: "bogus", ServerName: "hs1"}); err == nil {
		t.Error("unknown mode accepted")
	}
	if _, err := New(Options{Mode: ModeACME, ServerName: "hs.example.org", ACME: ACME{Email: "a@b.org", Agreed: true}}); err == nil {
		t.Error("acme mode without a store accepted")
	}
}

func TestResolveAndPublicNames(t *testing.T) {
	acme := ACME{Email: "a@example.org", Agreed: true}
	cases := []struct {
		name string
		o    Options
		want Mode
	}{
		{"nothing", Options{ServerName: "hs.example.org"}, ModeLocalCA},
		{"complement", Options{ServerName: "hs1", CAFile: "ca.crt"}, ModeCA},
		{"files", Options{ServerName: "hs.example.org", CertFile: "c.pem"}, ModeFiles},
		{"acme public", Options{ServerName: "hs.example.org:8448", ACME: acme}, ModeACME},
		{"acme no agreement", Options{ServerName: "hs.example.org", ACME: ACME{Email: "a@example.org"}}, ModeLocalCA},
		{"acme LAN name", Options{ServerName: "hearth.local", ACME: acme}, ModeLocalCA},
		{"acme IP", Options{ServerName: "203.0.113.7", ACME: acme}, ModeLocalCA},
		{"acme explicit domains", Options{ServerName: "hearth.local", ACME: ACME{Email: "a@example.org", Agreed: true, Domains: []string{"matrix.example.org"}}}, ModeACME},
		{"explicit wins", Options{Mode: ModeSelfSigned, CAFile: "ca.crt"}, ModeSelfSigned},
	}
	for _, c := range cases {
		if got := Resolve(c.o); got != c.want {
			t.Errorf("%s: Resolve = %s, want %s", c.name, got, c.want)
		}
	}
	for host, want := range map[string]bool{
		"matrix.example.org": true, "example.org:8448": true, "localhost": false, "hs1": false,
		"hearth.local": false, "nas.home.arpa": false, "box.lan": false, "10.0.0.1": false, "[::1]:8448": false,
	} {
		if got := IsPublicName(host); got != want {
			t.Errorf("IsPublicName(%q) = %v, want %v", host, got, want)
		}
	}
}

func TestExtraRoots(t *testing.T) {
	dir := t.TempDir()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalECPrivateKey(key)
	caCert, caKey := writeCA(t, dir, key, &pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
	leaf, _, err := SignWithCA(caCert, caKey, "peer.lan")
	if err != nil {
		t.Fatal(err)
	}
	pool, err := ExtraRoots([]string{caCert})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := leaf.Leaf.Verify(x509.VerifyOptions{DNSName: "peer.lan", Roots: pool}); err != nil {
		t.Errorf("peer signed by an extra CA does not verify: %v", err)
	}
	empty, err := ExtraRoots(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := leaf.Leaf.Verify(x509.VerifyOptions{DNSName: "peer.lan", Roots: empty}); err == nil {
		t.Error("peer verifies without its CA: the system pool should not know it")
	}
	if _, err := ExtraRoots([]string{filepath.Join(dir, "missing.pem")}); err == nil {
		t.Error("missing extra CA file accepted")
	}
	if _, err := ExtraRoots([]string{caKey}); err == nil || !strings.Contains(err.Error(), "no PEM CERTIFICATE") {
		t.Errorf("key file as extra CA: %v", err)
	}
}
