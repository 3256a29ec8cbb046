package tls

import (
	"context"
	"crypto/rand"
	stdtls "crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hearth-home/hearth/matrix/store"
)

// uniqueDomain is a fresh name per test run. certmagic keeps some state per name at package
// level (the renewal back-off after a failure, challenge data), which would otherwise carry
// from one run to the next under -count.
func uniqueDomain(t *testing.T) string {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("m%x.hearth-acme.net", b)
}

// acmeEvents records certmagic's issuance events for the test to wait on.
type acmeEvents struct {
	mu     sync.Mutex
	events []string // "cert_obtained", "cert_obtained renewal", "cert_failed", ...
}

func (e *acmeEvents) record(event string, data map[string]any) {
	if r, _ := data["renewal"].(bool); r {
		event += " renewal"
	}
	e.mu.Lock()
	e.events = append(e.events, event)
	e.mu.Unlock()
}

// count counts events equal to event or to event followed by a qualifier (" renewal").
func (e *acmeEvents) count(event string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, ev := range e.events {
		if ev == event || strings.HasPrefix(ev, event+" ") {
			n++
		}
	}
	return n
}

func (e *acmeEvents) String() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return fmt.Sprint(e.events)
}

// acmeServer is the appliance's two listeners as the test stands them up: plain HTTP (wrapped
// with the manager's HTTP-01 handler) and the federation TLS listener.
type acmeServer struct {
	plain, fed net.Listener
}

func newACMEServer(t *testing.T) *acmeServer {
	t.Helper()
	plain, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return &acmeServer{plain: plain, fed: fed}
}

func port(l net.Listener) int { return l.Addr().(*net.TCPAddr).Port }

// serve runs both listeners with m until the test ends. With servePlain false the plain
// listener accepts nothing, so only TLS-ALPN-01 can succeed.
func (s *acmeServer) serve(t *testing.T, m *Manager, servePlain bool) {
	t.Helper()
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hearth") })
	quiet := log.New(io.Discard, "", 0) // handshakes the test's own probes abort on purpose
	fedSrv := &http.Server{Handler: app, ReadHeaderTimeout: 5 * time.Second, ErrorLog: quiet}
	go fedSrv.Serve(stdtls.NewListener(s.fed, m.TLSConfig()))
	t.Cleanup(func() { fedSrv.Close() })
	if servePlain {
		plainSrv := &http.Server{Handler: m.HTTPHandler(app), ReadHeaderTimeout: 5 * time.Second, ErrorLog: quiet}
		go plainSrv.Serve(s.plain)
		t.Cleanup(func() { plainSrv.Close() })
	}
}

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func acmeOptions(t *testing.T, domain string, st *store.Store, p *pebbleCA, s *acmeServer, ev *acmeEvents) Options {
	return Options{
		Mode:       ModeAuto, // resolves to acme: e-mail, agreement and a public name
		ServerName: domain + ":8448",
		DataDir:    t.TempDir(),
		Store:      st,
		Logger:     testLogger(t),
		ACME: ACME{
			DirectoryURL:       p.Directory,
			Email:              "admin@hearth-acme.net",
			Agreed:             true,
			TrustedRoots:       p.APIRoots,
			ListenHost:         "127.0.0.1",
			HTTPPort:           port(s.plain),
			TLSALPNPort:        port(s.fed),
			RenewCheckInterval: time.Second,
			RenewalWindowRatio: 0.5,
			OnEvent:            ev.record,
		},
	}
}

// TestACMEHTTP01IssueServeRenewFail gets a certificate from Pebble over HTTP-01, serves it,
// lets certmagic renew it on its schedule (short validity), then stops Pebble and checks that a
// failed renewal leaves the last certificate serving.
func TestACMEHTTP01IssueServeRenewFail(t *testing.T) {
	st := openStore(t, t.TempDir())
	defer st.Close()
	srv := newACMEServer(t)
	p := startPebble(t, port(srv.plain), port(srv.fed), 14*time.Second)
	// The deadline starts after Pebble is up: its first build on a fresh machine is slow.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	ev := &acmeEvents{}
	acmeDomain := uniqueDomain(t)
	o := acmeOptions(t, acmeDomain, st, p, srv, ev)
	o.ACME.DisableTLSALPN01 = true // only HTTP-01 can pass
	m, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.Mode() != ModeACME {
		t.Fatalf("mode %s, want acme", m.Mode())
	}
	srv.serve(t, m, true)
	roots := p.Roots(t)
	fedAddr := srv.fed.Addr().String()

	// Issue and serve.
	var first *x509.Certificate
	if !waitFor(ctx, func() bool {
		first, err = handshake(fedAddr, acmeDomain, roots)
		return err == nil
	}) {
		t.Fatalf("no certificate verified against Pebble's root: %v (events %s)", err, ev)
	}
	if ev.count("cert_obtained") < 1 {
		t.Errorf("events %s, want a cert_obtained", ev)
	}
	if got := first.DNSNames; len(got) != 1 || got[0] != acmeDomain {
		t.Errorf("certificate names %v, want [%s]", got, acmeDomain)
	}
	// A handshake without SNI (a peer dialling the IP) gets the ACME certificate too, not the
	// self-signed fallback. (Its serial may differ: a renewal can land in between.)
	conn, err := stdtls.Dial("tcp", fedAddr, &stdtls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	noSNI := conn.ConnectionState().PeerCertificates
	conn.Close()
	inter := x509.NewCertPool()
	for _, c := range noSNI[1:] {
		inter.AddCert(c)
	}
	if _, err := noSNI[0].Verify(x509.VerifyOptions{DNSName: acmeDomain, Roots: roots, Intermediates: inter}); err != nil {
		t.Errorf("no-SNI handshake: certificate does not verify for %s against Pebble's root: %v", acmeDomain, err)
	}

	// Renew: certmagic's maintenance finds the short-lived certificate in its renewal window.
	var renewed *x509.Certificate
	if !waitFor(ctx, func() bool {
		renewed, err = handshake(fedAddr, acmeDomain, roots)
		return err == nil && renewed.SerialNumber.Cmp(first.SerialNumber) != 0
	}) {
		t.Fatalf("certificate not renewed: last err %v, events %s", err, ev)
	}
	if !waitFor(ctx, func() bool { return ev.count("cert_obtained renewal") > 0 }) {
		t.Errorf("served a new serial without a renewal event: %s", ev)
	}
	if m2, err := m.Certificate(acmeDomain); err != nil || m2.Leaf == nil {
		t.Errorf("Manager.Certificate: %v", err)
	}

	// A CA that does not answer: the renewal fails and the last certificate keeps serving.
	// Once Pebble is gone nothing can be issued, so the serial seen now is the one to keep.
	p.Stop()
	last, err := handshake(fedAddr, acmeDomain, roots)
	if err != nil {
		t.Fatalf("handshake after stopping Pebble: %v", err)
	}
	failedBefore := ev.count("cert_failed")
	if !waitFor(ctx, func() bool { return ev.count("cert_failed") > failedBefore }) {
		t.Fatalf("no failed renewal after stopping Pebble: events %s", ev)
	}
	after, err := handshake(fedAddr, acmeDomain, roots)
	if err != nil {
		t.Fatalf("after a failed renewal the listener does not serve a valid certificate: %v", err)
	}
	if after.SerialNumber.Cmp(last.SerialNumber) != 0 {
		t.Errorf("serial changed across a failed renewal: %s -> %s", last.SerialNumber, after.SerialNumber)
	}
	t.Logf("events: %s", ev)
}

// TestACMETLSALPN01AndRestart gets a certificate over TLS-ALPN-01 only (the plain listener
// answers nothing), then restarts the manager on the same store with the CA gone: the stored
// certificate serves at once.
func TestACMETLSALPN01AndRestart(t *testing.T) {
	dir := t.TempDir()
	st := openStore(t, dir)
	srv := newACMEServer(t)
	p := startPebble(t, port(srv.plain), port(srv.fed), time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	ev := &acmeEvents{}
	acmeDomain := uniqueDomain(t)
	o := acmeOptions(t, acmeDomain, st, p, srv, ev)
	o.ACME.DisableHTTP01 = true
	m, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	srv.serve(t, m, false)
	roots := p.Roots(t)
	fedAddr := srv.fed.Addr().String()
	var first *x509.Certificate
	if !waitFor(ctx, func() bool {
		first, err = handshake(fedAddr, acmeDomain, roots)
		return err == nil
	}) {
		t.Fatalf("no certificate over TLS-ALPN-01: %v (events %s)", err, ev)
	}
	m.Close()
	p.Stop()
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	// Restart: new store handle, new manager, new listener; the CA is unreachable.
	st = openStore(t, dir)
	defer st.Close()
	srv2 := newACMEServer(t)
	o2 := acmeOptions(t, acmeDomain, st, p, srv2, &acmeEvents{})
	m2, err := New(o2)
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	srv2.serve(t, m2, false)
	var again *x509.Certificate
	if !waitFor(ctx, func() bool {
		again, err = handshake(srv2.fed.Addr().String(), acmeDomain, roots)
		return err == nil
	}) {
		t.Fatalf("stored certificate not served after restart: %v", err)
	}
	if again.SerialNumber.Cmp(first.SerialNumber) != 0 {
		t.Errorf("after restart serial %s, want the stored %s", again.SerialNumber, first.SerialNumber)
	}
}
