package tls

import (
	"bytes"
	"context"
	stdtls "crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"
)

// pebbleVersion is the Let's Encrypt test CA the ACME tests run against. It is built from
// source with `go install` (no prebuilt binary), once per machine, into the user cache.
const pebbleVersion = "v2.10.1"

var (
	pebbleOnce              sync.Once
	pebbleBin, challtestBin string
	pebbleBuildErr          error
	pebbleBuildOut          []byte
)

// pebbleBinaries builds (or finds already built) pebble and pebble-challtestsrv.
func pebbleBinaries(t *testing.T) (pebble, challtestsrv string) {
	t.Helper()
	pebbleOnce.Do(func() {
		cache, err := os.UserCacheDir()
		if err != nil {
			cache = os.TempDir()
		}
		dir := filepath.Join(cache, "hearth-test", "pebble-"+pebbleVersion)
		pebbleBin, challtestBin = filepath.Join(dir, "pebble"), filepath.Join(dir, "pebble-challtestsrv")
		if fileExists(pebbleBin) && fileExists(challtestBin) {
			return
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			pebbleBuildErr = err
			return
		}
		goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
		if !fileExists(goBin) {
			goBin = "go"
		}
		// Build into a private directory and rename, so that a concurrent or interrupted
		// build never leaves a half-written binary behind.
		tmp, err := os.MkdirTemp(dir, "build-")
		if err != nil {
			pebbleBuildErr = err
			return
		}
		defer os.RemoveAll(tmp)
		mod := "github.com/letsencrypt/pebble/v2/cmd/"
		cmd := exec.Command(goBin, "install", mod+"pebble@"+pebbleVersion, mod+"pebble-challtestsrv@"+pebbleVersion)
		cmd.Env = append(os.Environ(), "GOBIN="+tmp, "GOFLAGS=", "CGO_ENABLED=0")
		pebbleBuildOut, pebbleBuildErr = cmd.CombinedOutput()
		if pebbleBuildErr != nil {
			return
		}
		for _, n := range []string{"pebble", "pebble-challtestsrv"} {
			if err := os.Rename(filepath.Join(tmp, n), filepath.Join(dir, n)); err != nil {
				pebbleBuildErr = err
				return
			}
		}
	})
	if pebbleBuildErr != nil {
		t.Fatalf("build pebble %s: %v\n%s", pebbleVersion, pebbleBuildErr, pebbleBuildOut)
	}
	return pebbleBin, challtestBin
}

func fileExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir()
}

// pebbleCA is a running Pebble with its DNS (pebble-challtestsrv answers every name with
// 127.0.0.1, so the VA reaches the test's listeners).
type pebbleCA struct {
	Directory string         // ACME directory URL
	APIRoots  *x509.CertPool // verify Pebble's own HTTPS endpoints
	mgmt      string         // management address
	cmd       *exec.Cmd
	logFile   string
	stopOnce  sync.Once
}

// startPebble runs Pebble validating HTTP-01 on httpPort and TLS-ALPN-01 on tlsPort of
// 127.0.0.1 and issuing certificates valid for validity.
func startPebble(t *testing.T, httpPort, tlsPort int, validity time.Duration) *pebbleCA {
	t.Helper()
	pebble, challtest := pebbleBinaries(t)
	dir := t.TempDir()

	// Pebble's API serves HTTPS; give it a certificate from a CA made here.
	apiCert, apiKey, apiRoots := testServerCert(t, dir, "localhost", "127.0.0.1")

	dnsAddr := "127.0.0.1:" + strconv.Itoa(freePort(t, "udp"))
	challMgmt := "127.0.0.1:" + strconv.Itoa(freePort(t, "tcp"))
	startProcess(t, filepath.Join(dir, "challtestsrv.log"), nil, challtest,
		"-dnsserver", dnsAddr, "-management", challMgmt, "-http01", "", "-https01", "", "-tlsalpn01", "",
		"-doh", "", "-defaultIPv4", "127.0.0.1", "-defaultIPv6", "")

	api := "127.0.0.1:" + strconv.Itoa(freePort(t, "tcp"))
	mgmt := "127.0.0.1:" + strconv.Itoa(freePort(t, "tcp"))
	conf := map[string]any{"pebble": map[string]any{
		"listenAddress":                  api,
		"managementListenAddress":        mgmt,
		"certificate":                    apiCert,
		"privateKey":                     apiKey,
		"httpPort":                       httpPort,
		"tlsPort":                        tlsPort,
		"ocspResponderURL":               "",
		"externalAccountBindingRequired": false,
		"retryAfter":                     map[string]int{"authz": 1, "order": 1},
		"keyAlgorithm":                   "ecdsa",
		"profiles": map[string]any{"default": map[string]any{
			"description":    "short-lived for renewal tests",
			"validityPeriod": int(validity / time.Second),
		}},
	}}
	confFile := filepath.Join(dir, "pebble.json")
	data, _ := json.Marshal(conf)
	if err := os.WriteFile(confFile, data, 0o644); err != nil {
		t.Fatal(err)
	}
	p := &pebbleCA{Directory: "https://" + api + "/dir", APIRoots: apiRoots, mgmt: mgmt, logFile: filepath.Join(dir, "pebble.log")}
	p.cmd = startProcess(t, p.logFile, []string{
		"PEBBLE_VA_NOSLEEP=1",      // validate at once instead of after a random pause
		"PEBBLE_WFE_NONCEREJECT=0", // no random badNonce answers
		"PEBBLE_AUTHZREUSE=0",      // every order solves its challenge, renewals included
		"PEBBLE_CHAIN_LENGTH=2",    // root and one intermediate
	}, pebble, "-config", confFile, "-dnsserver", dnsAddr)

	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &stdtls.Config{RootCAs: apiRoots}}}
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := client.Get(p.Directory)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("pebble did not come up: %v\n%s", err, readTail(p.logFile))
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("pebble log:\n%s", readTail(p.logFile))
		}
	})
	return p
}

// Roots fetches the root that Pebble issues under, from its management interface.
func (p *pebbleCA) Roots(t *testing.T) *x509.CertPool {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &stdtls.Config{RootCAs: p.APIRoots}}}
	resp, err := client.Get("https://" + p.mgmt + "/roots/0")
	if err != nil {
		t.Fatalf("pebble root: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	pool := x509.NewCertPool()
	if resp.StatusCode != http.StatusOK || !pool.AppendCertsFromPEM(body) {
		t.Fatalf("pebble root: status %d, body %q", resp.StatusCode, body)
	}
	return pool
}

// Stop kills Pebble (the CA becomes unreachable).
func (p *pebbleCA) Stop() {
	p.stopOnce.Do(func() {
		_ = p.cmd.Process.Kill()
		_ = p.cmd.Wait()
	})
}

// startProcess runs a binary with its output in logFile; it is killed when the test ends.
func startProcess(t *testing.T, logFile string, env []string, bin string, args ...string) *exec.Cmd {
	t.Helper()
	out, err := os.Create(logFile)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	var once sync.Once
	t.Cleanup(func() {
		once.Do(func() {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			out.Close()
		})
	})
	return cmd
}

func readTail(file string) string {
	b, _ := os.ReadFile(file)
	if len(b) > 8000 {
		b = b[len(b)-8000:]
	}
	return string(b)
}

// freePort finds a port free on 127.0.0.1 for network ("tcp" or "udp"). The port is released
// before use; on a loopback-only test machine nothing else grabs it in between.
func freePort(t *testing.T, network string) int {
	t.Helper()
	if network == "udp" {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// testServerCert writes a leaf for names signed by a fresh CA into dir and returns the file
// names and a pool holding the CA.
func testServerCert(t *testing.T, dir string, names ...string) (certFile, keyFile string, roots *x509.CertPool) {
	t.Helper()
	caDir := filepath.Join(dir, "api-ca")
	if err := createLocalCA(caDir, filepath.Join(caDir, "ca.crt"), filepath.Join(caDir, "ca.key"), "test"); err != nil {
		t.Fatal(err)
	}
	caCert, err := loadCertificate(filepath.Join(caDir, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	caKey, err := loadPrivateKey(filepath.Join(caDir, "ca.key"))
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := issueNames(caCert, caKey, names, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = writePair(t, dir, "api", leaf)
	roots = x509.NewCertPool()
	roots.AddCert(caCert)
	return certFile, keyFile, roots
}

// writePair writes a certificate chain and its key as PEM files named prefix.crt/.key.
func writePair(t *testing.T, dir, prefix string, c *stdtls.Certificate) (certFile, keyFile string) {
	t.Helper()
	var chain bytes.Buffer
	for _, der := range c.Certificate {
		_ = pem.Encode(&chain, &pem.Block{Type: "CERTIFICATE", Bytes: der})
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, prefix+".crt"), filepath.Join(dir, prefix+".key")
	if err := os.WriteFile(certFile, chain.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// handshake connects to addr with SNI name and verifies the served chain against roots; it
// returns the leaf.
func handshake(addr, name string, roots *x509.CertPool) (*x509.Certificate, error) {
	d := &net.Dialer{Timeout: 5 * time.Second}
	conn, err := stdtls.DialWithDialer(d, "tcp", addr, &stdtls.Config{ServerName: name, RootCAs: roots})
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	st := conn.ConnectionState()
	if len(st.PeerCertificates) == 0 {
		return nil, fmt.Errorf("no peer certificate")
	}
	return st.PeerCertificates[0], nil
}

// waitFor polls cond until it holds or the context ends.
func waitFor(ctx context.Context, cond func() bool) bool {
	for {
		if cond() {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(50 * time.Millisecond):
		}
	}
}
