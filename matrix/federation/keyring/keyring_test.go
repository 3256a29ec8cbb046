package keyring

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/tidwall/sjson"
	"go.mau.fi/util/jsontime"
	"maunium.net/go/mautrix/federation"
	"maunium.net/go/mautrix/federation/signutil"
	"maunium.net/go/mautrix/id"
)

func TestOwnKeyResponse(t *testing.T) {
	ca, fn, clk := newTestCA(t), newFakeNet(), newClock()
	oldKey := federation.GenerateSigningKey()
	expired := clk.Now().Add(-24 * time.Hour)
	a := newNode(t, ca, fn, clk, nodeOpts{oldKeys: map[id.KeyID]federation.OldVerifyKey{
		oldKey.ID: {Key: oldKey.Pub, ExpiredTS: jsontime.UM(expired)},
	}})
	resp, err := httpsClient(ca).Get("https://" + a.addr + "/_matrix/key/v2/server")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	var skr federation.ServerKeyResponse
	if err := json.Unmarshal(body, &skr); err != nil {
		t.Fatal(err)
	}
	if skr.ServerName != a.name || skr.VerifyKeys[a.key.ID].Key != a.key.Pub {
		t.Fatalf("wrong keys: %s", body)
	}
	if err := skr.VerifySelfSignature(); err != nil {
		t.Fatalf("self-signature: %v", err)
	}
	if got := skr.ValidUntilTS.Sub(clk.Now()); got < 7*24*time.Hour-time.Minute || got > 7*24*time.Hour+time.Minute {
		t.Fatalf("valid_until_ts is %s from now, want 7 days", got)
	}
	old, ok := skr.OldVerifyKeys[oldKey.ID]
	if !ok || old.Key != oldKey.Pub || old.ExpiredTS.UnixMilli() != expired.UnixMilli() {
		t.Fatalf("old_verify_keys: %s", body)
	}
}

func TestFetchAndCacheKeys(t *testing.T) {
	ca, fn, clk := newTestCA(t), newFakeNet(), newClock()
	a := newNode(t, ca, fn, clk, nodeOpts{})
	b := newNode(t, ca, fn, clk, nodeOpts{})
	ctx := ctxT(t)

	pk, err := a.kr.VerifyKey(ctx, b.name, b.key.ID, clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	if pk.Key != b.key.Pub || pk.Old {
		t.Fatalf("got %+v, want B's current key", pk)
	}
	if d := pk.ValidUntil.Sub(clk.Now()); d > 7*24*time.Hour || d < 7*24*time.Hour-time.Minute {
		t.Fatalf("validity %s, want capped at 7 days", d)
	}
	if b.keyHits.Load() != 1 {
		t.Fatalf("B was asked %d times, want 1", b.keyHits.Load())
	}
	// Cached: no second request, even with B gone.
	b.stop()
	if pk2, err := a.kr.VerifyKey(ctx, b.name, b.key.ID, clk.Now()); err != nil || pk2.Key != b.key.Pub {
		t.Fatalf("cached key: %+v, %v", pk2, err)
	}
	if b.keyHits.Load() != 1 {
		t.Fatalf("B was asked %d times, want 1 (cache)", b.keyHits.Load())
	}
	// An unknown key ID of a server asked moments ago is not refetched.
	if _, err := a.kr.VerifyKey(ctx, b.name, "ed25519:nope", clk.Now()); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("unknown key: %v, want ErrKeyNotFound", err)
	}
	// The mautrix KeyCache view of the same store.
	cached, err := a.kr.Cache().LoadKeys(ctx, b.name, time.Minute)
	if err != nil || cached == nil || cached.VerifyKeys[b.key.ID].Key != b.key.Pub {
		t.Fatalf("LoadKeys: %+v, %v", cached, err)
	}
}

func TestFetchFailureBacksOff(t *testing.T) {
	ca, fn, clk := newTestCA(t), newFakeNet(), newClock()
	a := newNode(t, ca, fn, clk, nodeOpts{})
	b := newNode(t, ca, fn, clk, nodeOpts{})
	b.stop()
	ctx := ctxT(t)
	if _, err := a.kr.VerifyKey(ctx, b.name, b.key.ID, clk.Now()); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("offline server: %v", err)
	}
	// Within the backoff the cache answers with ErrRecentKeyQueryFailed and no dial is made.
	if _, err := a.kr.Cache().LoadKeys(ctx, b.name, time.Hour); !errors.Is(err, federation.ErrRecentKeyQueryFailed) {
		t.Fatalf("LoadKeys during backoff: %v", err)
	}
	dials := fn.dials.Load()
	if _, err := a.kr.VerifyKey(ctx, b.name, b.key.ID, clk.Now()); !errors.Is(err, ErrKeyNotFound) || !contains(err.Error(), "asked recently") {
		t.Fatalf("during backoff: %v", err)
	}
	if fn.dials.Load() != dials {
		t.Fatal("a backed-off lookup touched the network")
	}
	clk.Advance(2 * time.Minute)
	if _, err := a.kr.Cache().LoadKeys(ctx, b.name, time.Hour); err != nil {
		t.Fatalf("after the backoff: %v", err)
	}
}

func TestNotaryQuery(t *testing.T) {
	ca, fn, clk := newTestCA(t), newFakeNet(), newClock()
	b := newNode(t, ca, fn, clk, nodeOpts{})
	notary := newNode(t, ca, fn, clk, nodeOpts{})
	a := newNode(t, ca, fn, clk, nodeOpts{notaries: []string{notary.name}})
	hc := httpsClient(ca)
	ctx := ctxT(t)

	// GET /query/{server}: the notary fetches B and returns B's response signed by both.
	var got federation.QueryKeysResponse
	getJSON(t, hc, "https://"+notary.addr+"/_matrix/key/v2/query/"+url.PathEscape(b.name), http.StatusOK, &got)
	if len(got.ServerKeys) != 1 {
		t.Fatalf("server_keys: %+v", got)
	}
	r := got.ServerKeys[0]
	if r.ServerName != b.name || r.VerifyKeys[b.key.ID].Key != b.key.Pub {
		t.Fatalf("wrong response %s", r.Raw)
	}
	if err := signutil.VerifyJSON(b.name, b.key.ID, b.key.Pub, r.Raw); err != nil {
		t.Fatalf("B's own signature lost: %v", err)
	}
	if err := signutil.VerifyJSON(notary.name, notary.key.ID, notary.key.Pub, r.Raw); err != nil {
		t.Fatalf("notary signature: %v", err)
	}
	if b.keyHits.Load() != 1 {
		t.Fatalf("B asked %d times", b.keyHits.Load())
	}

	// minimum_valid_until_ts within the cached validity: served from cache.
	within := clk.Now().Add(24 * time.Hour).UnixMilli()
	postJSON(t, hc, "https://"+notary.addr+"/_matrix/key/v2/query", map[string]any{
		"server_keys": map[string]any{b.name: map[string]any{string(b.key.ID): map[string]any{"minimum_valid_until_ts": within}}},
	}, http.StatusOK, &got)
	if len(got.ServerKeys) != 1 || b.keyHits.Load() != 1 {
		t.Fatalf("cached answer: %d keys, B asked %d times", len(got.ServerKeys), b.keyHits.Load())
	}
	// Beyond it (and past the refetch interval): the notary asks B again.
	clk.Advance(10 * time.Minute)
	beyond := clk.Now().Add(8 * 24 * time.Hour).UnixMilli()
	getJSON(t, hc, "https://"+notary.addr+"/_matrix/key/v2/query/"+url.PathEscape(b.name)+"?minimum_valid_until_ts="+strconv.FormatInt(beyond, 10), http.StatusOK, &got)
	if b.keyHits.Load() != 2 || len(got.ServerKeys) != 1 {
		t.Fatalf("minimum_valid_until_ts beyond the cache: B asked %d times, %d keys", b.keyHits.Load(), len(got.ServerKeys))
	}

	// Querying the notary about itself returns its own keys.
	postJSON(t, hc, "https://"+notary.addr+"/_matrix/key/v2/query", map[string]any{
		"server_keys": map[string]any{notary.name: map[string]any{}},
	}, http.StatusOK, &got)
	if len(got.ServerKeys) != 1 || got.ServerKeys[0].VerifyKeys[notary.key.ID].Key != notary.key.Pub {
		t.Fatalf("self query: %+v", got)
	}

	// B goes offline: A cannot fetch directly and falls back to the notary's cached copy.
	b.stop()
	pk, err := a.kr.VerifyKey(ctx, b.name, b.key.ID, clk.Now())
	if err != nil || pk.Key != b.key.Pub {
		t.Fatalf("via notary: %+v, %v", pk, err)
	}
	var via string
	rec, _ := a.kr.Cache().key(b.name, string(b.key.ID))
	if rec != nil {
		via = rec.Via
	}
	if via != notary.name {
		t.Fatalf("key came via %q, want the notary", via)
	}

	// An escaped IPv6 literal in the path is a server name like any other; unreachable and
	// uncached, it gets an empty list rather than an error.
	getJSON(t, hc, "https://"+notary.addr+"/_matrix/key/v2/query/%5B%3A%3A1%5D%3A1", http.StatusOK, &got)
	if len(got.ServerKeys) != 0 {
		t.Fatalf("unreachable IPv6 server: %+v", got)
	}
	// An unreachable server without cached keys: empty list, not an error.
	postJSON(t, hc, "https://"+notary.addr+"/_matrix/key/v2/query", map[string]any{
		"server_keys": map[string]any{"127.0.0.1:1": map[string]any{}},
	}, http.StatusOK, &got)
	if len(got.ServerKeys) != 0 {
		t.Fatalf("unreachable server: %+v", got)
	}
}

func TestNotaryForgeryRejected(t *testing.T) {
	ca, fn, clk := newTestCA(t), newFakeNet(), newClock()
	b := newNode(t, ca, fn, clk, nodeOpts{})
	notary := newNode(t, ca, fn, clk, nodeOpts{})
	a := newNode(t, ca, fn, clk, nodeOpts{notaries: []string{notary.name}})
	// The notary's cache holds a response for B whose self-signature does not cover what it
	// says (validity stretched after signing). The notary countersigns it; A must still refuse.
	fake := federation.GenerateSigningKey()
	raw, err := json.Marshal(fake.GenerateKeyResponse(b.name, nil))
	if err != nil {
		t.Fatal(err)
	}
	var obj map[string]any
	_ = json.Unmarshal(raw, &obj)
	obj["valid_until_ts"] = clk.Now().Add(48 * time.Hour).UnixMilli()
	raw, _ = json.Marshal(obj)
	var tampered federation.ServerKeyResponse
	if err := json.Unmarshal(raw, &tampered); err != nil {
		t.Fatal(err)
	}
	if err := notary.kr.Cache().StoreKeys(ctxT(t), &tampered); err != nil {
		t.Fatal(err)
	}
	b.stop()
	if _, err := a.kr.VerifyKey(ctxT(t), b.name, fake.ID, clk.Now()); !errors.Is(err, ErrKeyNotFound) || !contains(err.Error(), "self signature") {
		t.Fatalf("tampered notary answer: %v, want refusal for the self-signature", err)
	}
	if rec, _ := a.kr.Cache().key(b.name, string(fake.ID)); rec != nil {
		t.Fatalf("forged key cached: %+v", rec)
	}
	// A direct answer naming another server is refused too (mautrix would cache it under
	// that other name).
	other := fake.GenerateKeyResponse("other.example", nil)
	raw, _ = json.Marshal(other)
	var parsed federation.ServerKeyResponse
	_ = json.Unmarshal(raw, &parsed)
	if err := checkKeyResponse(b.name, &parsed); err == nil {
		t.Fatal("a response naming another server was accepted")
	}
	if err := checkKeyResponse("other.example", &parsed); err != nil {
		t.Fatalf("the genuine response was refused: %v", err)
	}
}

func TestKeyQueryBadInput(t *testing.T) {
	ca, fn, clk := newTestCA(t), newFakeNet(), newClock()
	n := newNode(t, ca, fn, clk, nodeOpts{})
	hc := httpsClient(ca)
	base := "https://" + n.addr + "/_matrix/key/v2/query"
	cases := []struct {
		name, method, url, body string
		status                  int
		code                    string
	}{
		{"not json", http.MethodPost, base, "{nope", 400, "M_NOT_JSON"},
		{"no server_keys", http.MethodPost, base, `{}`, 400, "M_BAD_JSON"},
		{"server_keys wrong type", http.MethodPost, base, `{"server_keys":[1]}`, 400, "M_BAD_JSON"},
		{"bad minimum", http.MethodGet, base + "/" + url.PathEscape(n.name) + "?minimum_valid_until_ts=soon", "", 400, "M_INVALID_PARAM"},
		{"bad server name", http.MethodGet, base + "/bad%20name", "", 400, "M_INVALID_PARAM"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, tc.url, bytes.NewBufferString(tc.body))
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var e struct {
				Errcode string `json:"errcode"`
			}
			_ = json.NewDecoder(resp.Body).Decode(&e)
			if resp.StatusCode != tc.status || e.Errcode != tc.code {
				t.Fatalf("got %d %s, want %d %s", resp.StatusCode, e.Errcode, tc.status, tc.code)
			}
		})
	}
}

func getJSON(t *testing.T, hc *http.Client, u string, status int, out any) {
	t.Helper()
	resp, err := hc.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	decode(t, resp, status, out)
}

func postJSON(t *testing.T, hc *http.Client, u string, in any, status int, out any) {
	t.Helper()
	b, _ := json.Marshal(in)
	resp, err := hc.Post(u, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	decode(t, resp, status, out)
}

func decode(t *testing.T, resp *http.Response, status int, out any) {
	t.Helper()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != status {
		t.Fatalf("status %d, want %d: %s", resp.StatusCode, status, body)
	}
	if out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			t.Fatalf("decode %s: %v", body, err)
		}
	}
}

func TestConcurrentLookupsFetchOnce(t *testing.T) {
	ca, fn, clk := newTestCA(t), newFakeNet(), newClock()
	a := newNode(t, ca, fn, clk, nodeOpts{})
	b := newNode(t, ca, fn, clk, nodeOpts{})
	errs := make(chan error, 20)
	for i := 0; i < cap(errs); i++ {
		go func() {
			pk, err := a.kr.VerifyKey(ctxT(t), b.name, b.key.ID, clk.Now())
			if err == nil && pk.Key != b.key.Pub {
				err = errors.New("wrong key")
			}
			errs <- err
		}()
	}
	for i := 0; i < cap(errs); i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if n := b.keyHits.Load(); n != 1 {
		t.Fatalf("20 concurrent lookups fetched %d times, want 1", n)
	}
}

// The key response verifies as served, byte for byte (peers check the signature over the JSON
// they received, minus signatures), with old_verify_keys present even when empty.
func TestOwnKeyResponseRawSignature(t *testing.T) {
	ca, fn, clk := newTestCA(t), newFakeNet(), newClock()
	a := newNode(t, ca, fn, clk, nodeOpts{})
	resp, err := httpsClient(ca).Get("https://" + a.addr + "/_matrix/key/v2/server")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(body, &obj); err != nil {
		t.Fatal(err)
	}
	if string(obj["old_verify_keys"]) != "{}" {
		t.Fatalf("old_verify_keys: %s", body)
	}
	var sigs map[string]map[id.KeyID]string
	if err := json.Unmarshal(obj["signatures"], &sigs); err != nil {
		t.Fatal(err)
	}
	// The body minus "signatures", byte for byte, is what must verify: no re-encoding.
	unsigned, err := sjson.DeleteBytes(body, "signatures")
	if err != nil {
		t.Fatal(err)
	}
	if err := signutil.VerifyJSONCanonical(a.key.Pub, sigs[a.name][a.key.ID], unsigned); err != nil {
		t.Fatalf("signature over the served JSON: %v (%s)", err, body)
	}
}
