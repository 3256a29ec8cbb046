package keyring

import (
	stdtls "crypto/tls"
	"net"
	"net/http"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"maunium.net/go/mautrix/federation"

	"github.com/hearth-home/hearth/matrix/store"
	htls "github.com/hearth-home/hearth/tls"
)

// wkServer is a real HTTPS server answering for host:443 in the fake net.
type wkServer struct {
	hits atomic.Int64
}

func newWK(t *testing.T, ca *testCA, fn *fakeNet, host string, h http.HandlerFunc) *wkServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	w := &wkServer{}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
			w.hits.Add(1)
			h(rw, r)
		}),
		TLSConfig:         &stdtls.Config{Certificates: []stdtls.Certificate{*ca.leaf(t, host)}},
		ReadHeaderTimeout: 5 * time.Second,
	}
	go func() { _ = srv.ServeTLS(ln, "", "") }()
	t.Cleanup(func() { _ = srv.Close() })
	fn.route(host+":443", ln.Addr().String())
	return w
}

func serveJSON(body string, headers ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/.well-known/matrix/server" {
			http.NotFound(w, r)
			return
		}
		for i := 0; i+1 < len(headers); i += 2 {
			w.Header().Set(headers[i], headers[i+1])
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(body))
	}
}

func newTestResolver(t *testing.T, ca *testCA, fn *fakeNet, clk *clock) *Resolver {
	t.Helper()
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return NewResolver(ResolverConfig{Store: st, Net: fn.net(ca.pool), Now: clk.Now})
}

func expectResolved(t *testing.T, r *Resolver, name, host string, targets []string, ttl time.Duration, now time.Time) {
	t.Helper()
	res, err := r.Resolve(ctxT(t), name)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if res.HostHeader != host || !slices.Equal(res.IPPort, targets) {
		t.Fatalf("%s: host %q targets %v, want %q %v", name, res.HostHeader, res.IPPort, host, targets)
	}
	if got := res.Expires.Sub(now); ttl != 0 && (got < ttl-time.Second || got > ttl+time.Second) {
		t.Fatalf("%s: cached for %s, want %s", name, got, ttl)
	}
}

func TestDiscoveryLiteralsAndPorts(t *testing.T) {
	ca, fn, clk := newTestCA(t), newFakeNet(), newClock()
	r := newTestResolver(t, ca, fn, clk)
	// A .well-known on hs.test must not be consulted when the name has a port.
	wk := newWK(t, ca, fn, "hs.test", serveJSON(`{"m.server":"elsewhere.test:1"}`))
	now := clk.Now()
	expectResolved(t, r, "192.0.2.7", "192.0.2.7", []string{"192.0.2.7:8448"}, 24*time.Hour, now)
	expectResolved(t, r, "192.0.2.7:8000", "192.0.2.7:8000", []string{"192.0.2.7:8000"}, 24*time.Hour, now)
	expectResolved(t, r, "[2001:db8::1]", "[2001:db8::1]", []string{"[2001:db8::1]:8448"}, 24*time.Hour, now)
	expectResolved(t, r, "[2001:db8::1]:9", "[2001:db8::1]:9", []string{"[2001:db8::1]:9"}, 24*time.Hour, now)
	expectResolved(t, r, "hs.test:1234", "hs.test:1234", []string{"hs.test:1234"}, 24*time.Hour, now)
	if wk.hits.Load() != 0 || fn.lookup.Load() != 0 {
		t.Fatalf("literal names caused %d well-known fetches and %d SRV lookups", wk.hits.Load(), fn.lookup.Load())
	}
	for _, bad := range []string{"", "bad name", "[::1", "a_b.test", "host:99999x"} {
		if _, err := r.Resolve(ctxT(t), bad); err == nil {
			t.Errorf("%q resolved", bad)
		}
	}
}

func TestDiscoveryWellKnown(t *testing.T) {
	ca, fn, clk := newTestCA(t), newFakeNet(), newClock()
	r := newTestResolver(t, ca, fn, clk)
	now := clk.Now()

	// 3.2: delegated name with port; Cache-Control max-age honoured (minus Age).
	newWK(t, ca, fn, "port.test", serveJSON(`{"m.server":"deleg.test:9000"}`, "Cache-Control", "public, max-age=7200", "Age", "3600"))
	expectResolved(t, r, "port.test", "deleg.test:9000", []string{"deleg.test:9000"}, time.Hour, now)

	// 3.1: delegated IP literal, no port.
	newWK(t, ca, fn, "ip.test", serveJSON(`{"m.server":"192.0.2.9"}`))
	expectResolved(t, r, "ip.test", "192.0.2.9", []string{"192.0.2.9:8448"}, 24*time.Hour, now)

	// 3.3: delegated name without port, SRV _matrix-fed on the delegated name; Host is the
	// delegated name. Several targets are kept in order.
	newWK(t, ca, fn, "srv.test", serveJSON(`{"m.server":"deleg2.test"}`, "Cache-Control", "max-age=999999"))
	fn.setSRV("matrix-fed", "deleg2.test", &net.SRV{Target: "a.deleg2.test.", Port: 8500}, &net.SRV{Target: "b.deleg2.test.", Port: 8501})
	expectResolved(t, r, "srv.test", "deleg2.test", []string{"a.deleg2.test:8500", "b.deleg2.test:8501"}, 48*time.Hour, now)

	// 3.4: only the deprecated _matrix._tcp record.
	newWK(t, ca, fn, "old.test", serveJSON(`{"m.server":"deleg3.test"}`, "Cache-Control", "no-store"))
	fn.setSRV("matrix", "deleg3.test", &net.SRV{Target: "x.deleg3.test.", Port: 7000})
	expectResolved(t, r, "old.test", "deleg3.test", []string{"x.deleg3.test:7000"}, 5*time.Minute, now)

	// 3.5: no SRV at all: port 8448 of the delegated name. Expires header used without Cache-Control.
	exp := time.Now().Add(3 * time.Hour).UTC()
	newWK(t, ca, fn, "plain.test", serveJSON(`{"m.server":"deleg4.test"}`, "Expires", exp.Format(http.TimeFormat), "Date", time.Now().UTC().Format(http.TimeFormat)))
	res, err := r.Resolve(ctxT(t), "plain.test")
	if err != nil || res.HostHeader != "deleg4.test" || !slices.Equal(res.IPPort, []string{"deleg4.test:8448"}) {
		t.Fatalf("plain.test: %+v %v", res, err)
	}
	if ttl := res.Expires.Sub(now); ttl < 3*time.Hour-5*time.Second || ttl > 3*time.Hour+5*time.Second {
		t.Fatalf("Expires header: cached for %s, want about 3h", ttl)
	}

	// Redirects are followed, to another host.
	newWK(t, ca, fn, "redir.test", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "https://target.test/.well-known/matrix/server", http.StatusFound)
	})
	newWK(t, ca, fn, "target.test", serveJSON(`{"m.server":"final.test:4444"}`))
	expectResolved(t, r, "redir.test", "final.test:4444", []string{"final.test:4444"}, 24*time.Hour, now)
}

func TestDiscoveryWellKnownCache(t *testing.T) {
	ca, fn, clk := newTestCA(t), newFakeNet(), newClock()
	r := newTestResolver(t, ca, fn, clk)
	wk := newWK(t, ca, fn, "cached.test", serveJSON(`{"m.server":"deleg.test:1"}`, "Cache-Control", "max-age=3600"))
	for i := 0; i < 3; i++ {
		if _, err := r.Resolve(ctxT(t), "cached.test"); err != nil {
			t.Fatal(err)
		}
	}
	if wk.hits.Load() != 1 {
		t.Fatalf("well-known fetched %d times within its max-age, want 1", wk.hits.Load())
	}
	clk.Advance(61 * time.Minute)
	if _, err := r.Resolve(ctxT(t), "cached.test"); err != nil {
		t.Fatal(err)
	}
	if wk.hits.Load() != 2 {
		t.Fatalf("well-known fetched %d times after expiry, want 2", wk.hits.Load())
	}
	// A new resolver over the same store (a restart) still has the answer.
	r2 := NewResolver(ResolverConfig{Store: r.cache.st, Net: fn.net(ca.pool), Now: clk.Now})
	if res, err := r2.Resolve(ctxT(t), "cached.test"); err != nil || res.HostHeader != "deleg.test:1" || wk.hits.Load() != 2 {
		t.Fatalf("after restart: %+v %v, %d fetches", res, err, wk.hits.Load())
	}
}

func TestDiscoveryWellKnownErrors(t *testing.T) {
	ca, fn, clk := newTestCA(t), newFakeNet(), newClock()
	r := newTestResolver(t, ca, fn, clk)
	now := clk.Now()
	cases := map[string]http.HandlerFunc{
		"badjson.test":   serveJSON(`{"m.server":`),
		"notobject.test": serveJSON(`["m.server"]`),
		"noserver.test":  serveJSON(`{"m.other":"x.test"}`),
		"badname.test":   serveJSON(`{"m.server":"not a name"}`),
		"status.test":    func(w http.ResponseWriter, r *http.Request) { http.Error(w, "nope", http.StatusNotFound) },
	}
	hits := map[string]*wkServer{}
	for host, h := range cases {
		hits[host] = newWK(t, ca, fn, host, h)
		// No delegation: SRV on the server's own name, Host is that name, cached one hour.
		fn.setSRV("matrix-fed", host, &net.SRV{Target: "fed." + host + ".", Port: 443})
		expectResolved(t, r, host, host, []string{"fed." + host + ":443"}, time.Hour, now)
	}
	// The failure is cached: asking again within the hour does not refetch.
	for host := range cases {
		if _, err := r.Resolve(ctxT(t), host); err != nil {
			t.Fatal(err)
		}
		if n := hits[host].hits.Load(); n != 1 {
			t.Fatalf("%s: well-known fetched %d times, want 1", host, n)
		}
	}
	// No well-known server at all (connection refused).
	fn.setSRV("matrix", "depr.test", &net.SRV{Target: "old.depr.test.", Port: 8008})
	expectResolved(t, r, "depr.test", "depr.test", []string{"old.depr.test:8008"}, time.Hour, now)
	// Neither well-known nor SRV: port 8448. A "." SRV target means "no service" and is skipped.
	fn.setSRV("matrix-fed", "dot.test", &net.SRV{Target: ".", Port: 0})
	expectResolved(t, r, "dot.test", "dot.test", []string{"dot.test:8448"}, time.Hour, now)
	expectResolved(t, r, "nothing.test", "nothing.test", []string{"nothing.test:8448"}, time.Hour, now)
}

func TestCacheLifetime(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	h := func(kv ...string) http.Header {
		out := http.Header{}
		for i := 0; i+1 < len(kv); i += 2 {
			out.Add(kv[i], kv[i+1])
		}
		return out
	}
	cases := []struct {
		h    http.Header
		want time.Duration
	}{
		{h(), 24 * time.Hour},
		{h("Cache-Control", "max-age=600"), 10 * time.Minute},
		{h("Cache-Control", "max-age=60"), 5 * time.Minute},
		{h("Cache-Control", "max-age=9999999"), 48 * time.Hour},
		{h("Cache-Control", "private", "Cache-Control", "max-age=7200"), 2 * time.Hour},
		{h("Cache-Control", "no-cache"), 5 * time.Minute},
		{h("Cache-Control", "max-age=oops"), 24 * time.Hour},
		{h("Expires", now.Add(6*time.Hour).Format(http.TimeFormat), "Date", now.Format(http.TimeFormat)), 6 * time.Hour},
		{h("Expires", "0"), 5 * time.Minute},
	}
	for _, tc := range cases {
		if got := cacheLifetime(tc.h, now); got != tc.want {
			t.Errorf("%v: %s, want %s", tc.h, got, tc.want)
		}
	}
}

func TestClientFollowsSRVToSecondTarget(t *testing.T) {
	ca, fn, clk := newTestCA(t), newFakeNet(), newClock()
	a := newNode(t, ca, fn, clk, nodeOpts{})
	// The node's name is srv-e2e.test; its certificate is for that name. SRV lists a dead
	// target first and the node second.
	b := newNode(t, ca, fn, clk, nodeOpts{name: "srv-e2e.test"})
	fn.setSRV("matrix-fed", "srv-e2e.test",
		&net.SRV{Target: "dead.test.", Port: 1},
		&net.SRV{Target: "live.test.", Port: 8448})
	fn.route("live.test:8448", b.addr)

	resp, err := a.client.ServerKeys(ctxT(t), "srv-e2e.test")
	if err != nil {
		t.Fatal(err)
	}
	if resp.ServerName != "srv-e2e.test" || resp.VerifyKeys[b.key.ID].Key != b.key.Pub {
		t.Fatalf("keys: %s", resp.Raw)
	}
	pk, err := a.kr.VerifyKey(ctxT(t), "srv-e2e.test", b.key.ID, clk.Now())
	if err != nil || pk.Key != b.key.Pub {
		t.Fatalf("VerifyKey: %+v %v", pk, err)
	}
	// And B authenticates A's signed requests over the same path in reverse.
	var out echoReply
	if _, _, err := a.client.MakeFullRequest(ctxT(t), federation.RequestParams{
		ServerName: "srv-e2e.test", Method: http.MethodGet, Path: federation.URLPath{"v1", "echo", "x"}, Authenticate: true, ResponseJSON: &out,
	}); err != nil || out.Origin != a.name {
		t.Fatalf("signed request via SRV: %+v %v", out, err)
	}
}

func TestClientRefusesUntrustedCertificates(t *testing.T) {
	ca, fn, clk := newTestCA(t), newFakeNet(), newClock()
	a := newNode(t, ca, fn, clk, nodeOpts{})

	serve := func(host string, cert *stdtls.Certificate) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: http.NotFoundHandler(), TLSConfig: &stdtls.Config{Certificates: []stdtls.Certificate{*cert}}, ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = srv.ServeTLS(ln, "", "") }()
		t.Cleanup(func() { _ = srv.Close() })
		fn.route(host+":8448", ln.Addr().String())
	}
	self, err := htls.SelfSigned("selfsigned.test")
	if err != nil {
		t.Fatal(err)
	}
	serve("selfsigned.test", self)
	serve("wrongname.test", ca.leaf(t, "someone-else.test"))

	for _, host := range []string{"selfsigned.test", "wrongname.test"} {
		_, err := a.client.ServerKeys(ctxT(t), host)
		if err == nil || !contains(err.Error(), "certificate") {
			t.Fatalf("%s: %v, want a certificate error", host, err)
		}
	}
}

func TestResolutionForgottenAfterDialFailure(t *testing.T) {
	ca, fn, clk := newTestCA(t), newFakeNet(), newClock()
	a := newNode(t, ca, fn, clk, nodeOpts{})
	b := newNode(t, ca, fn, clk, nodeOpts{name: "moving.test"})
	fn.route("moving.test:8448", b.addr)
	if _, err := a.client.ServerKeys(ctxT(t), "moving.test"); err != nil {
		t.Fatal(err)
	}
	if res, _ := a.resolver.Cache().LoadResolution(ctxT(t), "moving.test"); res == nil {
		t.Fatal("resolution not cached")
	}
	b.stop()
	// A reset on a pooled connection says nothing about the address; only a failed dial does.
	a.client.HTTP.CloseIdleConnections()
	if _, err := a.client.ServerKeys(ctxT(t), "moving.test"); err == nil {
		t.Fatal("request to a stopped server succeeded")
	}
	// Nobody answered at the cached address: the entry is dropped so the next request
	// re-resolves instead of waiting out its lifetime.
	if res, _ := a.resolver.Cache().LoadResolution(ctxT(t), "moving.test"); res != nil {
		t.Fatalf("stale resolution kept: %+v", res)
	}
}
