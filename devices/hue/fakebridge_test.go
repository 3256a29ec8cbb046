package hue

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeBridge serves the parts of the CLIP v2 API Hearth uses, as documented by Signify:
// POST /api pairing (error 101 until the link button is pressed), resource listings under
// /clip/v2/resource/{type} guarded by the hue-application-key header, PUT updates, and the
// server-sent event stream /eventstream/clip/v2 that announces every change.
type fakeBridge struct {
	t   *testing.T
	srv *httptest.Server
	key string

	mu        sync.Mutex
	pressed   bool
	pairBody  []map[string]any
	resources map[string][]map[string]any
	puts      []put
	requests  int
	subs      map[chan []byte]bool
	streams   int
	eventSeq  int
}

type put struct {
	Path string
	Body string
}

// newFakeBridge starts the fake over TLS (HTTP/2 enabled) with the given certificate, or
// httptest's own when cert is nil.
func newFakeBridge(t *testing.T, cert *tls.Certificate) *fakeBridge {
	t.Helper()
	f := &fakeBridge{t: t, key: "hearth-app-key-0123456789", subs: map[chan []byte]bool{}}
	f.resources = fixtures()
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api", f.pair)
	mux.HandleFunc("GET /clip/v2/resource/{type}", f.auth(f.list))
	mux.HandleFunc("PUT /clip/v2/resource/{type}/{id}", f.auth(f.update))
	mux.HandleFunc("GET /eventstream/clip/v2", f.auth(f.events))
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.requests++
		f.mu.Unlock()
		mux.ServeHTTP(w, r)
	}))
	f.srv.EnableHTTP2 = true
	// The impostor test makes handshakes fail on purpose; keep their log lines out of the output.
	f.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	if cert != nil {
		f.srv.TLS = &tls.Config{Certificates: []tls.Certificate{*cert}}
	}
	f.srv.StartTLS()
	t.Cleanup(f.close)
	return f
}

func (f *fakeBridge) addr() string { return strings.TrimPrefix(f.srv.URL, "https://") }

func (f *fakeBridge) fingerprint() string { return Fingerprint(f.srv.Certificate().Raw) }

func (f *fakeBridge) close() {
	f.dropStreams()
	f.srv.Close()
}

func (f *fakeBridge) press() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pressed = true
}

func (f *fakeBridge) pair(w http.ResponseWriter, r *http.Request) {
	var body map[string]any
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		writeJSON(w, http.StatusBadRequest, []any{map[string]any{"error": map[string]any{"type": 2, "address": "/", "description": "body contains invalid JSON"}}})
		return
	}
	f.mu.Lock()
	f.pairBody = append(f.pairBody, body)
	pressed := f.pressed
	f.mu.Unlock()
	if !pressed {
		writeJSON(w, http.StatusOK, []any{map[string]any{"error": map[string]any{"type": 101, "address": "", "description": "link button not pressed"}}})
		return
	}
	writeJSON(w, http.StatusOK, []any{map[string]any{"success": map[string]any{"username": f.key, "clientkey": "0123456789ABCDEF0123456789ABCDEF"}}})
}

func (f *fakeBridge) auth(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("hue-application-key") != f.key {
			writeJSON(w, http.StatusForbidden, map[string]any{"errors": []any{map[string]any{"description": "unauthorized user"}}, "data": []any{}})
			return
		}
		h(w, r)
	}
}

func (f *fakeBridge) list(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	items, ok := f.resources[r.PathValue("type")]
	if !ok {
		f.mu.Unlock()
		writeJSON(w, http.StatusNotFound, map[string]any{"errors": []any{map[string]any{"description": "Not Found"}}, "data": []any{}})
		return
	}
	b, err := json.Marshal(map[string]any{"errors": []any{}, "data": items})
	f.mu.Unlock()
	if err != nil {
		f.t.Errorf("fake bridge: marshal: %v", err)
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}

// update applies a PUT to the stored resource and announces the changed properties on the
// event stream, as the bridge does.
func (f *fakeBridge) update(w http.ResponseWriter, r *http.Request) {
	typ, id := r.PathValue("type"), r.PathValue("id")
	raw, _ := io.ReadAll(r.Body)
	var body map[string]any
	if err := json.Unmarshal(raw, &body); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"errors": []any{map[string]any{"description": "invalid JSON"}}, "data": []any{}})
		return
	}
	f.mu.Lock()
	f.puts = append(f.puts, put{Path: r.URL.Path, Body: string(raw)})
	res := f.find(typ, id)
	f.mu.Unlock()
	if res == nil {
		writeJSON(w, http.StatusNotFound, map[string]any{"errors": []any{map[string]any{"description": "Not Found"}}, "data": []any{}})
		return
	}
	change := map[string]any{"id": id, "type": typ}
	f.mu.Lock()
	for k, v := range body {
		switch {
		case typ == "light" && k == "color_temperature":
			ct := res[k].(map[string]any)
			ct["mirek"], ct["mirek_valid"] = v.(map[string]any)["mirek"], true
			change[k] = map[string]any{"mirek": ct["mirek"], "mirek_valid": true}
		case typ == "scene" && k == "recall":
			res["status"] = map[string]any{"active": "static"}
			change["status"] = res["status"]
		default:
			res[k] = v
			change[k] = v
		}
	}
	f.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"errors": []any{}, "data": []any{map[string]any{"rid": id, "rtype": typ}}})
	f.push("update", change)
}

// find returns the stored resource; f.mu must be held.
func (f *fakeBridge) find(typ, id string) map[string]any {
	for _, it := range f.resources[typ] {
		if it["id"] == id {
			return it
		}
	}
	return nil
}

func (f *fakeBridge) events(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Accept") != "text/event-stream" {
		http.Error(w, "want text/event-stream", http.StatusNotAcceptable)
		return
	}
	ch := make(chan []byte, 64)
	f.mu.Lock()
	f.subs[ch] = true
	f.streams++
	f.mu.Unlock()
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, ": hi\n\n")
	w.(http.Flusher).Flush()
	for {
		select {
		case <-r.Context().Done():
			f.mu.Lock()
			delete(f.subs, ch)
			f.mu.Unlock()
			return
		case data, ok := <-ch:
			if !ok {
				return
			}
			f.mu.Lock()
			f.eventSeq++
			seq := f.eventSeq
			f.mu.Unlock()
			_, _ = fmt.Fprintf(w, "id: %d:0\ndata: %s\n\n", 1700000000+seq, data)
			w.(http.Flusher).Flush()
		}
	}
}

// push sends one event container to every open stream.
func (f *fakeBridge) push(typ string, items ...map[string]any) {
	b, err := json.Marshal([]any{map[string]any{
		"creationtime": time.Now().UTC().Format(time.RFC3339),
		"id":           fmt.Sprintf("ev-%d", time.Now().UnixNano()),
		"type":         typ,
		"data":         items,
	}})
	if err != nil {
		f.t.Errorf("fake bridge: marshal event: %v", err)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for ch := range f.subs {
		ch <- b
	}
}

// dropStreams ends every open event stream, as a bridge reboot would.
func (f *fakeBridge) dropStreams() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for ch := range f.subs {
		close(ch)
		delete(f.subs, ch)
	}
}

func (f *fakeBridge) streamCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.streams
}

func (f *fakeBridge) openStreams() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.subs)
}

func (f *fakeBridge) lastPuts() []put {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]put(nil), f.puts...)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// Resource IDs of the fixture installation.
const (
	devLiving   = "1c5e4a0e-0000-4000-8000-000000000001"
	devKitchen  = "1c5e4a0e-0000-4000-8000-000000000002"
	lightLiving = "3f2a9c1e-0000-4000-8000-000000000001"
	lightKitch  = "3f2a9c1e-0000-4000-8000-000000000002"
	zbKitchen   = "5a5a5a5a-0000-4000-8000-000000000002"
	roomLiving  = "7e7e7e7e-0000-4000-8000-000000000001"
	roomKitchen = "7e7e7e7e-0000-4000-8000-000000000002"
	sceneRelax  = "9d9d9d9d-0000-4000-8000-000000000001"
)

// fixtures is a small installation in the documented CLIP v2 shapes: a colour lamp in the
// living room, a white-ambiance lamp in the kitchen and one scene.
func fixtures() map[string][]map[string]any {
	var m map[string][]map[string]any
	raw := `{
 "light": [
  {"id": "` + lightLiving + `", "id_v1": "/lights/1", "type": "light",
   "owner": {"rid": "` + devLiving + `", "rtype": "device"},
   "metadata": {"name": "Sofa lamp", "archetype": "sultan_bulb"},
   "on": {"on": true},
   "dimming": {"brightness": 49.8, "min_dim_level": 0.2},
   "color_temperature": {"mirek": null, "mirek_valid": false, "mirek_schema": {"mirek_minimum": 153, "mirek_maximum": 500}},
   "color": {"xy": {"x": 0.64, "y": 0.33}, "gamut_type": "C"}},
  {"id": "` + lightKitch + `", "id_v1": "/lights/2", "type": "light",
   "owner": {"rid": "` + devKitchen + `", "rtype": "device"},
   "metadata": {"name": "Kitchen ceiling", "archetype": "ceiling_round"},
   "on": {"on": false},
   "dimming": {"brightness": 100.0, "min_dim_level": 2.0},
   "color_temperature": {"mirek": 366, "mirek_valid": true, "mirek_schema": {"mirek_minimum": 153, "mirek_maximum": 454}}}
 ],
 "device": [
  {"id": "` + devLiving + `", "type": "device", "metadata": {"name": "Sofa lamp", "archetype": "sultan_bulb"},
   "product_data": {"model_id": "LCA001", "manufacturer_name": "Signify Netherlands B.V.", "product_name": "Hue color lamp"},
   "services": [{"rid": "` + lightLiving + `", "rtype": "light"}]},
  {"id": "` + devKitchen + `", "type": "device", "metadata": {"name": "Kitchen ceiling", "archetype": "ceiling_round"},
   "product_data": {"model_id": "LTA001", "manufacturer_name": "Signify Netherlands B.V.", "product_name": "Hue ambiance lamp"},
   "services": [{"rid": "` + lightKitch + `", "rtype": "light"}, {"rid": "` + zbKitchen + `", "rtype": "zigbee_connectivity"}]}
 ],
 "room": [
  {"id": "` + roomLiving + `", "type": "room", "metadata": {"name": "Living room", "archetype": "living_room"},
   "children": [{"rid": "` + devLiving + `", "rtype": "device"}], "services": []},
  {"id": "` + roomKitchen + `", "type": "room", "metadata": {"name": "Kitchen", "archetype": "kitchen"},
   "children": [{"rid": "` + devKitchen + `", "rtype": "device"}], "services": []}
 ],
 "scene": [
  {"id": "` + sceneRelax + `", "type": "scene", "metadata": {"name": "Relax"},
   "group": {"rid": "` + roomLiving + `", "rtype": "room"}, "actions": [], "status": {"active": "inactive"}}
 ],
 "zigbee_connectivity": [
  {"id": "` + zbKitchen + `", "type": "zigbee_connectivity", "owner": {"rid": "` + devKitchen + `", "rtype": "device"}, "status": "connected"}
 ]
}`
	if err := json.Unmarshal([]byte(raw), &m); err != nil {
		panic(err)
	}
	return m
}

// otherCert makes a self-signed certificate unlike httptest's, to play an impostor bridge.
func otherCert(t *testing.T) *tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(42),
		Subject:      pkix.Name{CommonName: "ecb5fafffe000000"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}
