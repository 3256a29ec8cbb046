package federation_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	stdtls "crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	mfed "maunium.net/go/mautrix/federation"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/appliance/testserver"
	"github.com/hearth-home/hearth/matrix/events"
)

// peer takes the place of server b once b has joined a room on a and been stopped: same server
// name, address and signing key, so a trusts it as b. It answers the federation requests a makes
// (get_missing_events, state_ids, event, event_auth) from what the test put in it, records them,
// and builds events as b. This is how the tests put a in front of histories that no honest
// server would produce.
type peer struct {
	t      *testing.T
	rogue  *rogue
	signer events.Signer
	depth  int64

	mu         sync.Mutex
	events     map[id.EventID]json.RawMessage // what /event serves
	authChains map[id.EventID][]json.RawMessage
	stateAt    map[id.EventID]mfed.RespGetStateIDs
	gmeAnswer  []json.RawMessage
	gmeReqs    []mfed.ReqGetMissingEvents
	stateReqs  []id.EventID
	received   []json.RawMessage // PDUs a sent to b
}

// startPeer stops b and serves its federation address in its place.
func startPeer(t *testing.T, b *testserver.Server, ca testserver.CA) *peer {
	t.Helper()
	r := newRogue(t, b, ca)
	p := &peer{
		t: t, rogue: r, depth: 1000,
		signer:     events.Signer{ServerName: r.name, KeyID: r.key.ID, Key: r.key.Priv},
		events:     map[id.EventID]json.RawMessage{},
		authChains: map[id.EventID][]json.RawMessage{},
		stateAt:    map[id.EventID]mfed.RespGetStateIDs{},
	}
	b.Stop()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /_matrix/key/v2/server", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, r.key.GenerateKeyResponse(r.name, nil))
	})
	mux.HandleFunc("PUT /_matrix/federation/v1/send/{txn}", p.send)
	mux.HandleFunc("POST /_matrix/federation/v1/get_missing_events/{room}", p.getMissingEvents)
	mux.HandleFunc("GET /_matrix/federation/v1/state_ids/{room}", p.stateIDs)
	mux.HandleFunc("GET /_matrix/federation/v1/event/{event}", p.event)
	mux.HandleFunc("GET /_matrix/federation/v1/event_auth/{room}/{event}", p.eventAuth)
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]string{"errcode": "M_UNRECOGNIZED", "error": "not served by the test peer"})
	})
	l, err := stdtls.Listen("tcp", b.Config.FederationListen, &stdtls.Config{Certificates: []stdtls.Certificate{leafCert(t, ca)}})
	if err != nil {
		t.Fatalf("peer listen on %s: %v", b.Config.FederationListen, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return p
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func notFound(w http.ResponseWriter) {
	writeJSON(w, http.StatusNotFound, map[string]string{"errcode": "M_NOT_FOUND", "error": "unknown to the test peer"})
}

func (p *peer) send(w http.ResponseWriter, r *http.Request) {
	var txn struct {
		PDUs []json.RawMessage `json:"pdus"`
	}
	if err := json.NewDecoder(r.Body).Decode(&txn); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"errcode": "M_BAD_JSON", "error": err.Error()})
		return
	}
	p.mu.Lock()
	p.received = append(p.received, txn.PDUs...)
	p.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"pdus": map[string]any{}})
}

func (p *peer) getMissingEvents(w http.ResponseWriter, r *http.Request) {
	var req mfed.ReqGetMissingEvents
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"errcode": "M_BAD_JSON", "error": err.Error()})
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.gmeReqs = append(p.gmeReqs, req)
	writeJSON(w, http.StatusOK, map[string]any{"events": p.gmeAnswer})
}

func (p *peer) stateIDs(w http.ResponseWriter, r *http.Request) {
	at := id.EventID(r.URL.Query().Get("event_id"))
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stateReqs = append(p.stateReqs, at)
	resp, ok := p.stateAt[at]
	if !ok {
		notFound(w)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

func (p *peer) event(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ev, ok := p.events[id.EventID(r.PathValue("event"))]
	if !ok {
		notFound(w)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"origin": p.signer.ServerName, "origin_server_ts": time.Now().UnixMilli(), "pdus": []json.RawMessage{ev}})
}

func (p *peer) eventAuth(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	defer p.mu.Unlock()
	chain, ok := p.authChains[id.EventID(r.PathValue("event"))]
	if !ok {
		notFound(w)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"auth_chain": chain})
}

func stateIDsResp(authChain, state []id.EventID) mfed.RespGetStateIDs {
	return mfed.RespGetStateIDs{AuthChain: slices.Clone(authChain), PDUs: slices.Clone(state)}
}

// serve makes /event answer with these events.
func (p *peer) serve(evs ...*events.Built) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, e := range evs {
		p.events[e.ID] = e.JSON
	}
}

// build signs an event as b's user sender. Each event gets a greater depth than the last.
func (p *peer) build(rv id.RoomVersion, room id.RoomID, sender id.UserID, typ string, stateKey *string, content map[string]any, prev, auth []id.EventID) *events.Built {
	p.t.Helper()
	c, err := json.Marshal(content)
	if err != nil {
		p.t.Fatal(err)
	}
	p.depth++
	built, err := events.Build(rv, room, events.Template{Type: typ, StateKey: stateKey, Sender: sender, Content: c}, prev, auth, p.depth, time.Now(), p.signer)
	if err != nil {
		p.t.Fatal(err)
	}
	return built
}

// receivedWithBody returns the prev events of the PDU with this body that a sent to b.
func (p *peer) receivedWithBody(body string) (prevs []id.EventID, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, raw := range p.received {
		var ev struct {
			PrevEvents []id.EventID `json:"prev_events"`
			Content    struct {
				Body string `json:"body"`
			} `json:"content"`
		}
		if json.Unmarshal(raw, &ev) == nil && ev.Content.Body == body {
			return ev.PrevEvents, true
		}
	}
	return nil, false
}

func (p *peer) requests() ([]mfed.ReqGetMissingEvents, []id.EventID) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.gmeReqs), slices.Clone(p.stateReqs)
}

// roomState names the events of a room's state on a's side and the room version.
type roomState struct {
	rv                    id.RoomVersion
	create, pl, joinRules id.EventID
	ids                   []id.EventID
	byKey                 map[string]id.EventID
	latest                id.EventID
	createAuth            []id.EventID // the create event as auth_events carry it (none in v12)
}

// stateOf reads the room's current state and latest event through alice's client.
func stateOf(t *testing.T, alice *mautrix.Client, room id.RoomID) *roomState {
	t.Helper()
	by := stateIDs(t, alice, room)
	s := &roomState{byKey: by, create: by["m.room.create|"], pl: by["m.room.power_levels|"], joinRules: by["m.room.join_rules|"]}
	for _, e := range by {
		s.ids = append(s.ids, e)
	}
	slices.Sort(s.ids)
	s.rv = id.RoomV12
	if strings.Contains(string(room), ":") {
		s.rv = id.RoomV10
		s.createAuth = []id.EventID{s.create}
	}
	resp, err := alice.Messages(context.Background(), room, "", "", mautrix.DirectionBackward, nil, 1)
	if err != nil || len(resp.Chunk) == 0 {
		t.Fatalf("latest event: %v", err)
	}
	s.latest = resp.Chunk[0].ID
	return s
}

// auth returns auth_events for an event: the create event where the room version wants it,
// then the given events.
func (s *roomState) auth(evs ...id.EventID) []id.EventID {
	return append(slices.Clone(s.createAuth), evs...)
}

// eventMissing reports whether a's client API answers 404 for an event.
func eventMissing(t *testing.T, c *mautrix.Client, room id.RoomID, e id.EventID) bool {
	t.Helper()
	_, err := c.GetEvent(context.Background(), room, e)
	var herr mautrix.HTTPError
	return errors.As(err, &herr) && herr.Response != nil && herr.Response.StatusCode == http.StatusNotFound
}

// leafCert issues a certificate for localhost from the test CA, as b's own would be.
func leafCert(t *testing.T, ca testserver.CA) stdtls.Certificate {
	t.Helper()
	caPEM, err := os.ReadFile(ca.Cert)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := os.ReadFile(ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	cb, _ := pem.Decode(caPEM)
	kb, _ := pem.Decode(keyPEM)
	if cb == nil || kb == nil {
		t.Fatal("test CA files are not PEM")
	}
	caCert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	caKey, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, key.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	return stdtls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}
