package federation_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	stdtls "crypto/tls"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	mfed "maunium.net/go/mautrix/federation"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/appliance/testserver"
	"github.com/hearth-home/hearth/matrix/events"
	hearthtls "github.com/hearth-home/hearth/tls"
)

// What another server sends is checked before anything is stored: the test plays server b with
// b's own signing key (read from its data directory) and sends crafted transactions and
// requests to a over a's TLS federation listener.

type rogue struct {
	t    *testing.T
	name string
	key  *mfed.SigningKey
	http *http.Client
}

func newRogue(t *testing.T, as *testserver.Server, ca testserver.CA) *rogue {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(as.DataDir, "signing.key"))
	if err != nil {
		t.Fatal(err)
	}
	key, err := mfed.ParseSynapseKey(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	roots, err := hearthtls.ExtraRoots([]string{ca.Cert})
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &stdtls.Config{RootCAs: roots, ServerName: "localhost"}}}
	return &rogue{t: t, name: as.ServerName, key: key, http: hc}
}

// request sends a request to dest's federation listener. signer nil sends it unsigned;
// claimedDest is the destination named in the X-Matrix header.
func (r *rogue) request(dest *testserver.Server, method, path string, body any, signer *mfed.SigningKey, claimedDest string) (int, []byte) {
	r.t.Helper()
	var raw []byte
	if body != nil {
		raw, _ = json.Marshal(body)
	}
	req, err := http.NewRequest(method, "https://"+dest.Config.FederationListen+path, bytes.NewReader(raw))
	if err != nil {
		r.t.Fatal(err)
	}
	req.Host = dest.ServerName
	if signer != nil {
		toSign := map[string]any{"method": method, "uri": path, "origin": r.name, "destination": claimedDest}
		if body != nil {
			toSign["content"] = json.RawMessage(raw)
		}
		sig, err := signer.SignJSON(toSign)
		if err != nil {
			r.t.Fatal(err)
		}
		req.Header.Set("Authorization", fmt.Sprintf(`X-Matrix origin="%s",destination="%s",key="%s",sig="%s"`, r.name, claimedDest, r.key.ID, sig))
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := r.http.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

// sendTxn sends pdus to dest and returns each PDU's error ("" when accepted).
func (r *rogue) sendTxn(dest *testserver.Server, pdus ...json.RawMessage) map[id.EventID]string {
	r.t.Helper()
	body := map[string]any{"origin": r.name, "origin_server_ts": time.Now().UnixMilli(), "pdus": pdus}
	code, resp := r.request(dest, http.MethodPut, "/_matrix/federation/v1/send/"+fmt.Sprint(time.Now().UnixNano()), body, r.key, dest.ServerName)
	if code != 200 {
		r.t.Fatalf("send: %d %s", code, resp)
	}
	var out struct {
		PDUs map[id.EventID]struct {
			Error string `json:"error"`
		} `json:"pdus"`
	}
	if err := json.Unmarshal(resp, &out); err != nil {
		r.t.Fatal(err)
	}
	errs := map[id.EventID]string{}
	for k, v := range out.PDUs {
		errs[k] = v.Error
	}
	return errs
}

// stateIDs returns the event IDs of a room's current state on a's side.
func stateIDs(t *testing.T, c *mautrix.Client, room id.RoomID) map[string]id.EventID {
	t.Helper()
	resp, err := c.State(context.Background(), room)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]id.EventID{}
	for typ, m := range resp {
		for sk, ev := range m {
			out[typ.Type+"|"+sk] = ev.ID
		}
	}
	return out
}

func TestFederationRejectsForgeries(t *testing.T) {
	a, b, ca := fedPair(t)
	ctx := context.Background()
	alice, bob, room := joinedPair(t, a, b)
	r := newRogue(t, b, ca)

	latest := func() id.EventID {
		resp, err := alice.Messages(ctx, room, "", "", mautrix.DirectionBackward, nil, 1)
		if err != nil || len(resp.Chunk) == 0 {
			t.Fatalf("latest event: %v", err)
		}
		return resp.Chunk[0].ID
	}
	build := func(typ string, stateKey *string, content map[string]any, signer *mfed.SigningKey) *events.Built {
		st := stateIDs(t, alice, room)
		auth := []id.EventID{st["m.room.create|"], st["m.room.power_levels|"], st["m.room.member|"+bob.UserID.String()]}
		c, _ := json.Marshal(content)
		rv := id.RoomV12
		if strings.Contains(string(room), ":") {
			rv = id.RoomV10
		}
		// v12 rooms leave the create event out of auth_events.
		if rv == id.RoomV12 {
			auth = auth[1:]
		}
		built, err := events.Build(rv, room, events.Template{Type: typ, StateKey: stateKey, Sender: bob.UserID, Content: c}, []id.EventID{latest()}, auth, 100, time.Now(), events.Signer{ServerName: r.name, KeyID: signer.ID, Key: signer.Priv})
		if err != nil {
			t.Fatal(err)
		}
		return built
	}
	body := func(c *mautrix.Client) []string { return bodies(t, c, room) }

	// A well-formed event from b is accepted: the harness itself works.
	good := build("m.room.message", nil, map[string]any{"msgtype": "m.text", "body": "genuine"}, r.key)
	if errs := r.sendTxn(a, good.JSON); errs[good.ID] != "" {
		t.Fatalf("genuine event refused: %s", errs[good.ID])
	}
	waitFor(t, "the genuine event on a", func() bool { return contains(body(alice), "genuine") })

	// Forged signature: signed by another key under b's key ID.
	_, otherPriv, _ := ed25519.GenerateKey(rand.Reader)
	forger := &mfed.SigningKey{ID: r.key.ID, Pub: id.SigningKey(base64.RawStdEncoding.EncodeToString(otherPriv.Public().(ed25519.PublicKey))), Priv: otherPriv}
	forged := build("m.room.message", nil, map[string]any{"msgtype": "m.text", "body": "forged"}, forger)
	if errs := r.sendTxn(a, forged.JSON); errs[forged.ID] == "" {
		t.Fatal("an event with a forged signature was accepted")
	}

	// Wrong content hash: the signature covers the redacted form, so it verifies, but the
	// content was changed after hashing. The spec keeps such an event redacted.
	tampered := build("m.room.message", nil, map[string]any{"msgtype": "m.text", "body": "original"}, r.key)
	var obj map[string]any
	_ = json.Unmarshal(tampered.JSON, &obj)
	obj["content"] = map[string]any{"msgtype": "m.text", "body": "tampered"}
	tamperedJSON, _ := json.Marshal(obj)
	if errs := r.sendTxn(a, tamperedJSON); errs[tampered.ID] != "" {
		t.Fatalf("hash mismatch should be stored redacted, got error %s", errs[tampered.ID])
	}
	waitFor(t, "the tampered event on a, redacted", func() bool {
		ev, err := alice.GetEvent(ctx, room, tampered.ID)
		return err == nil && len(ev.Content.Raw) == 0
	})
	if contains(body(alice), "tampered") || contains(body(alice), "original") {
		t.Fatal("the tampered content is visible")
	}

	// Failing the auth rules: bob (power 0) raises himself to 100.
	empty := ""
	grab := build("m.room.power_levels", &empty, map[string]any{"users": map[string]int{bob.UserID.String(): 100, alice.UserID.String(): 100}}, r.key)
	if errs := r.sendTxn(a, grab.JSON); errs[grab.ID] == "" {
		t.Fatal("a power-level grab that fails the auth rules was accepted")
	}
	var pl event.PowerLevelsEventContent
	if err := alice.StateEvent(ctx, room, event.StatePowerLevels, "", &pl); err != nil {
		t.Fatal(err)
	}
	if pl.GetUserLevel(bob.UserID) != 0 {
		t.Fatalf("bob's power is %d after a rejected grab", pl.GetUserLevel(bob.UserID))
	}

	// Bad X-Matrix headers never reach a handler.
	path := "/_matrix/federation/v1/query/profile?user_id=" + alice.UserID.String()
	if code, _ := r.request(a, http.MethodGet, path, nil, r.key, a.ServerName); code != 200 {
		t.Fatalf("a correctly signed request got %d", code)
	}
	for name, tc := range map[string]struct {
		key  *mfed.SigningKey
		dest string
	}{
		"unsigned":          {nil, a.ServerName},
		"wrong destination": {r.key, "elsewhere.example"},
		"forged signature":  {forger, a.ServerName},
	} {
		code, resp := r.request(a, http.MethodGet, path, nil, tc.key, tc.dest)
		if code != http.StatusUnauthorized || !strings.Contains(string(resp), "M_UNAUTHORIZED") {
			t.Errorf("%s: got %d %s, want 401 M_UNAUTHORIZED", name, code, resp)
		}
	}
}
