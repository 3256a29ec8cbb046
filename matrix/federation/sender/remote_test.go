package sender

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mau.fi/util/exhttp"
	"maunium.net/go/mautrix/crypto/canonicaljson"
	"maunium.net/go/mautrix/federation"
	"maunium.net/go/mautrix/federation/signutil"

	"github.com/hearth-home/hearth/matrix/store"
)

const origin = "origin.test"

// received is one PUT /send as the remote saw it.
type received struct {
	At    time.Time // when the request arrived
	TxnID string
	Body  []byte
	Req   struct {
		Origin         string            `json:"origin"`
		OriginServerTS int64             `json:"origin_server_ts"`
		PDUs           []json.RawMessage `json:"pdus"`
		EDUs           []EDU             `json:"edus"`
	}
}

// remote is a real HTTPS server on loopback implementing PUT /_matrix/federation/v1/send/{txnId}
// the way a homeserver does: it checks the X-Matrix signature against the sender's key and
// applies a transaction ID once, answering a repeat from its cache.
type remote struct {
	t    testing.TB
	srv  *httptest.Server
	name string // host:port, used as the server name (resolution steps 1-2: literal IP and port)
	pub  *federation.SigningKey

	mu       sync.Mutex
	attempts []received
	applied  []received
	seen     map[string]bool
	failNext int             // answer 500 to this many further requests
	failAll  bool            // answer 500 until cleared
	loseAck  int             // apply, then answer 500 (the 200 "lost") this many times
	block    chan struct{}   // non-nil: requests wait for it to close
	rejectN  map[string]bool // PDUs (by "n" field) answered with a per-PDU error
	notify   chan struct{}
}

func newRemote(t testing.TB, key *federation.SigningKey) *remote {
	r := &remote{t: t, pub: key, seen: map[string]bool{}, notify: make(chan struct{}, 1000)}
	mux := http.NewServeMux()
	mux.HandleFunc("PUT /_matrix/federation/v1/send/{txnId}", r.handle)
	r.srv = httptest.NewTLSServer(mux)
	r.name = strings.TrimPrefix(r.srv.URL, "https://")
	t.Cleanup(r.srv.Close)
	return r
}

func (r *remote) handle(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		http.Error(w, "read", http.StatusBadRequest)
		return
	}
	if err := r.verify(req, body); err != nil {
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprintf(w, `{"errcode":"M_UNAUTHORIZED","error":%q}`, err.Error())
		return
	}
	var rec received
	rec.At = time.Now()
	rec.TxnID = req.PathValue("txnId")
	rec.Body = body
	if err := json.Unmarshal(body, &rec.Req); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"errcode":"M_NOT_JSON","error":"bad body"}`)
		return
	}
	r.mu.Lock()
	r.attempts = append(r.attempts, rec)
	block := r.block
	r.mu.Unlock()
	if block != nil {
		select {
		case <-block:
		case <-req.Context().Done():
			return
		}
	}
	r.mu.Lock()
	if r.failAll || r.failNext > 0 {
		if r.failNext > 0 {
			r.failNext--
		}
		r.mu.Unlock()
		w.WriteHeader(http.StatusInternalServerError)
		fmt.Fprint(w, `{"errcode":"M_UNKNOWN","error":"down"}`)
		r.signal()
		return
	}
	results := map[string]map[string]string{}
	if !r.seen[rec.TxnID] {
		r.seen[rec.TxnID] = true
		r.applied = append(r.applied, rec)
		for _, p := range rec.Req.PDUs {
			if n := pduN(p); r.rejectN[n] {
				results["$"+n] = map[string]string{"error": "rejected by test"}
			}
		}
	}
	lose := r.loseAck > 0
	if lose {
		r.loseAck--
	}
	r.mu.Unlock()
	r.signal()
	if lose {
		w.WriteHeader(http.StatusBadGateway)
		fmt.Fprint(w, `{"errcode":"M_UNKNOWN","error":"answer lost"}`)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"pdus": results})
}

func (r *remote) signal() {
	select {
	case r.notify <- struct{}{}:
	default:
	}
}

// verify checks the X-Matrix Authorization header as the server-server API defines it.
func (r *remote) verify(req *http.Request, body []byte) error {
	auth := federation.ParseXMatrixAuth(req.Header.Get("Authorization"))
	if auth.Origin != origin || auth.Destination != r.name || auth.KeyID != r.pub.ID {
		return fmt.Errorf("bad X-Matrix header %q", req.Header.Get("Authorization"))
	}
	msg, err := canonicaljson.Marshal(map[string]any{
		"method": req.Method, "uri": req.URL.RequestURI(), "origin": auth.Origin,
		"destination": auth.Destination, "content": json.RawMessage(body),
	})
	if err != nil {
		return err
	}
	return signutil.VerifyJSONCanonical(r.pub.Pub, auth.Signature, msg)
}

func (r *remote) set(fn func(r *remote)) {
	r.mu.Lock()
	fn(r)
	r.mu.Unlock()
}

func (r *remote) snapshot() (attempts, applied []received) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.attempts...), append([]received(nil), r.applied...)
}

// appliedItems flattens what the remote applied into "p<n>" and "e<n>" in arrival order.
func (r *remote) appliedItems() []string {
	_, applied := r.snapshot()
	var out []string
	for _, rec := range applied {
		for _, p := range rec.Req.PDUs {
			out = append(out, "p"+pduN(p))
		}
		for _, e := range rec.Req.EDUs {
			out = append(out, "e"+eduN(e))
		}
	}
	return out
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func pduN(p json.RawMessage) string {
	var v struct {
		Content struct {
			N string `json:"n"`
		} `json:"content"`
	}
	_ = json.Unmarshal(p, &v)
	return v.Content.N
}

func eduN(e EDU) string {
	var v struct {
		N string `json:"n"`
	}
	_ = json.Unmarshal(e.Content, &v)
	return v.N
}

func testPDU(n string) []byte {
	return []byte(fmt.Sprintf(`{"type":"m.room.message","room_id":"!r:origin.test","sender":"@a:origin.test","content":{"body":"hi","n":%q}}`, n))
}

// testEDU is a persistent EDU (a to-device message) carrying a marker.
func testEDU(n string) EDU {
	return EDU{Type: TypeDirectToDevice, Content: json.RawMessage(fmt.Sprintf(`{"sender":"@a:origin.test","type":"m.test","message_id":%q,"messages":{},"n":%q}`, n, n))}
}

func testTyping(n string) EDU {
	return EDU{Type: TypeTyping, Content: json.RawMessage(fmt.Sprintf(`{"room_id":"!r:origin.test","user_id":"@a:origin.test","typing":true,"n":%q}`, n))}
}

// testWriter sends log lines to the test log (shown for failing tests and with -v).
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// harness is a store directory and a signing key shared by the senders of one test (a
// restart opens the same directory again).
type harness struct {
	t   testing.TB
	dir string
	key *federation.SigningKey
	st  *store.Store
}

func newHarness(t testing.TB) *harness {
	h := &harness{t: t, dir: t.TempDir(), key: federation.GenerateSigningKey()}
	h.open()
	t.Cleanup(func() {
		if h.st != nil {
			_ = h.st.Close()
		}
	})
	return h
}

func (h *harness) open() {
	st, err := store.Open(h.dir, store.Options{})
	if err != nil {
		h.t.Fatalf("open store: %v", err)
	}
	h.st = st
}

func (h *harness) reopen() {
	if err := h.st.Close(); err != nil {
		h.t.Fatalf("close store: %v", err)
	}
	h.st = nil
	h.open()
}

// client is a real mautrix federation client; a server name that is an IP literal with a
// port resolves to itself, so it reaches the loopback test servers over TLS.
func (h *harness) client(t testing.TB, r *remote) *federation.Client {
	pool := r.srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	c := federation.NewClient(origin, h.key, nil, exhttp.SensibleClientSettings.WithTLSConfig(&tls.Config{RootCAs: pool}))
	c.AllowIP = func(net.IP) bool { return true } // loopback is refused by default
	t.Cleanup(func() { closeIdle(c) })
	return c
}

// closeIdle drops kept-alive connections. http.Client.CloseIdleConnections does not reach
// them: mautrix's resolving RoundTripper wraps the *http.Transport without forwarding it.
func closeIdle(c *federation.Client) {
	c.HTTP.Transport.(*federation.ServerResolvingTransport).Transport.CloseIdleConnections()
}

func (h *harness) sender(t testing.TB, tr Transport, mod func(*Options)) *Sender {
	o := Options{ServerName: origin, Store: h.st, Transport: tr, Logger: slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})), BackoffBase: 10 * time.Millisecond, BackoffMax: 80 * time.Millisecond, CloseGrace: 200 * time.Millisecond}
	if mod != nil {
		mod(&o)
	}
	s, err := New(o)
	if err != nil {
		t.Fatalf("new sender: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}
