package keyring

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	stdtls "crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"maunium.net/go/mautrix/federation"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/merr"
	"github.com/hearth-home/hearth/matrix/store"
	htls "github.com/hearth-home/hearth/tls"
)

// clock is the keyrings' shared notion of now, so that tests can step past cache lifetimes.
// TLS keeps using the real clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now()} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// testCA is a throwaway CA on disk, used through the tls package the way the appliance does.
type testCA struct {
	certFile, keyFile string
	pool              *x509.CertPool
}

func newTestCA(t testing.TB) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "Keyring test CA"},
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
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ca := &testCA{certFile: filepath.Join(dir, "ca.crt"), keyFile: filepath.Join(dir, "ca.key")}
	if err := os.WriteFile(ca.certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ca.keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	// The extra-CA path of the appliance: system roots plus the configured PEM file.
	if ca.pool, err = htls.ExtraRoots([]string{ca.certFile}); err != nil {
		t.Fatal(err)
	}
	return ca
}

func (ca *testCA) leaf(t testing.TB, name string) *stdtls.Certificate {
	t.Helper()
	leaf, _, err := htls.SignWithCA(ca.certFile, ca.keyFile, name)
	if err != nil {
		t.Fatal(err)
	}
	return leaf
}

// fakeNet stands in for DNS and routing: SRV answers, and which loopback listener answers
// for a name:port. Everything behind it is a real TLS server.
type fakeNet struct {
	mu     sync.Mutex
	srv    map[string][]*net.SRV // "_service._proto.name"
	routes map[string]string     // "host:port" -> "127.0.0.1:port"
	lookup atomic.Int64          // SRV lookups made
	dials  atomic.Int64          // connections attempted
}

func newFakeNet() *fakeNet {
	return &fakeNet{srv: map[string][]*net.SRV{}, routes: map[string]string{}}
}

func (f *fakeNet) setSRV(service, name string, recs ...*net.SRV) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.srv["_"+service+"._tcp."+name] = recs
}

func (f *fakeNet) route(hostport, to string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.routes[hostport] = to
}

func (f *fakeNet) LookupSRV(_ context.Context, service, proto, name string) (string, []*net.SRV, error) {
	f.lookup.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	q := "_" + service + "._" + proto + "." + name
	recs, ok := f.srv[q]
	if !ok {
		return "", nil, &net.DNSError{Err: "no such host", Name: q, IsNotFound: true}
	}
	return q, recs, nil
}

func (f *fakeNet) LookupIPAddr(_ context.Context, host string) ([]net.IPAddr, error) {
	return nil, &net.DNSError{Err: "fake DNS resolves SRV only", Name: host, IsNotFound: true}
}

// dial connects names through the route table; IP literals on loopback are dialled as they are.
func (f *fakeNet) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	f.dials.Add(1)
	f.mu.Lock()
	to, ok := f.routes[addr]
	f.mu.Unlock()
	if !ok {
		host, _, _ := net.SplitHostPort(addr)
		if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
			return nil, &net.OpError{Op: "dial", Net: network, Err: errors.New("connection refused (no route in fake net)")}
		}
		to = addr
	}
	var d net.Dialer
	return d.DialContext(ctx, network, to)
}

func (f *fakeNet) net(roots *x509.CertPool) Net {
	return Net{DNS: f, Dial: f.dial, Roots: roots}
}

// node is one homeserver's federation trust layer on a real TLS listener: key server,
// authenticated test endpoint, keyring and outbound client.
type node struct {
	name     string
	key      *federation.SigningKey
	kr       *Keyring
	client   *federation.Client
	resolver *Resolver
	st       *store.Store
	addr     string
	keyHits  atomic.Int64 // GET /_matrix/key/v2/server
	srv      *http.Server
}

type nodeOpts struct {
	name     string // default 127.0.0.1:<port>
	oldKeys  map[id.KeyID]federation.OldVerifyKey
	notaries []string
	allow    func(string) bool
}

func newNode(t testing.TB, ca *testCA, fn *fakeNet, clk *clock, o nodeOpts) *node {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n := &node{name: o.name, key: federation.GenerateSigningKey(), addr: ln.Addr().String()}
	if n.name == "" {
		n.name = n.addr
	}
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	n.st = st
	nw := fn.net(ca.pool)
	n.resolver = NewResolver(ResolverConfig{Store: st, Net: nw, Now: clk.Now})
	n.client, err = NewClient(ClientConfig{ServerName: n.name, Key: n.key, Resolver: n.resolver, Net: nw, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	n.kr, err = New(Config{
		ServerName: n.name, Key: n.key, OldKeys: o.oldKeys, Store: st, Client: n.client,
		Notaries: o.notaries, AllowOrigin: o.allow, Now: clk.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = renderError
	e.Use(func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if c.Request().URL.Path == "/_matrix/key/v2/server" {
				n.keyHits.Add(1)
			}
			return next(c)
		}
	})
	n.kr.Register(e.Group("/_matrix/key"))
	fed := e.Group("/_matrix/federation", n.kr.Middleware())
	fed.Any("/v1/echo/*", func(c echo.Context) error {
		body, _ := io.ReadAll(c.Request().Body)
		return c.JSON(http.StatusOK, map[string]any{"origin": Origin(c), "body": string(body), "uri": c.Request().RequestURI})
	})
	cert := ca.leaf(t, n.name)
	n.srv = &http.Server{Handler: e, TLSConfig: &stdtls.Config{Certificates: []stdtls.Certificate{*cert}}, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = n.srv.ServeTLS(ln, "", "") }()
	t.Cleanup(func() {
		_ = n.srv.Close()
		_ = st.Close()
	})
	return n
}

// stop takes the node off the network (its listener closes; dials are refused).
func (n *node) stop() { _ = n.srv.Close() }

// renderError is the shape of clientapi's error handler: merr errors as Matrix JSON.
func renderError(err error, c echo.Context) {
	if me, ok := merr.As(err); ok {
		_ = c.JSON(me.Status, me.Body())
		return
	}
	var he *echo.HTTPError
	if errors.As(err, &he) {
		_ = c.JSON(he.Code, map[string]string{"errcode": "M_UNRECOGNIZED", "error": fmt.Sprint(he.Message)})
		return
	}
	_ = c.JSON(http.StatusInternalServerError, map[string]string{"errcode": "M_UNKNOWN", "error": err.Error()})
}

// httpsClient trusts the test CA, for raw requests to a node.
func httpsClient(ca *testCA) *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &stdtls.Config{RootCAs: ca.pool}}}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
