package keyring

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"testing"

	"maunium.net/go/mautrix/crypto/canonicaljson"
	"maunium.net/go/mautrix/federation"
)

// xmatrix signs a request the way the spec describes, for hand-made (and broken) requests.
func xmatrix(t testing.TB, key *federation.SigningKey, keyID, origin, signedDest, headerDest, method, uri string, body []byte) string {
	t.Helper()
	msg, err := canonicaljson.Marshal(signedRequest{Method: method, URI: uri, Origin: origin, Destination: signedDest, Content: body})
	if err != nil {
		t.Fatal(err)
	}
	sig := base64.RawStdEncoding.EncodeToString(key.SignCanonicalJSON(msg))
	h := fmt.Sprintf(`X-Matrix origin="%s",key="%s",sig="%s"`, origin, keyID, sig)
	if headerDest != "" {
		h += fmt.Sprintf(`,destination="%s"`, headerDest)
	}
	return h
}

type echoReply struct {
	Origin string `json:"origin"`
	Body   string `json:"body"`
	URI    string `json:"uri"`
}

func TestSignedRequestAccepted(t *testing.T) {
	ca, fn, clk := newTestCA(t), newFakeNet(), newClock()
	a := newNode(t, ca, fn, clk, nodeOpts{})
	b := newNode(t, ca, fn, clk, nodeOpts{})
	ctx := ctxT(t)

	var out echoReply
	_, _, err := a.client.MakeFullRequest(ctx, federation.RequestParams{
		ServerName: b.name, Method: http.MethodPut, Path: federation.URLPath{"v1", "echo", "txn 1"},
		Query:        url.Values{"q": {"a b/c"}, "limit": {"5"}},
		Authenticate: true, RequestJSON: map[string]any{"hello": "world", "n": 1}, ResponseJSON: &out,
	})
	if err != nil {
		t.Fatal(err)
	}
	if out.Origin != a.name {
		t.Fatalf("origin %q, want %q", out.Origin, a.name)
	}
	var body map[string]any
	if err := json.Unmarshal([]byte(out.Body), &body); err != nil || body["hello"] != "world" {
		t.Fatalf("handler got body %q (restored after verification?)", out.Body)
	}
	// GET without a body.
	if _, _, err := a.client.MakeFullRequest(ctx, federation.RequestParams{
		ServerName: b.name, Method: http.MethodGet, Path: federation.URLPath{"v1", "echo", "state"}, Authenticate: true, ResponseJSON: &out,
	}); err != nil || out.Origin != a.name || out.Body != "" {
		t.Fatalf("GET: %+v, %v", out, err)
	}
	// B fetched A's key once, over TLS, and cached it.
	if a.keyHits.Load() != 1 {
		t.Fatalf("A's key asked %d times, want 1", a.keyHits.Load())
	}
}

func TestXMatrixRejected(t *testing.T) {
	ca, fn, clk := newTestCA(t), newFakeNet(), newClock()
	a := newNode(t, ca, fn, clk, nodeOpts{})
	b := newNode(t, ca, fn, clk, nodeOpts{})
	c := newNode(t, ca, fn, clk, nodeOpts{})
	hc := httpsClient(ca)
	uri := "/_matrix/federation/v1/echo/x?y=1"
	body := []byte(`{"k":"v"}`)
	good := func() string { return xmatrix(t, a.key, string(a.key.ID), a.name, b.name, b.name, "PUT", uri, body) }
	other := federation.GenerateSigningKey()

	cases := []struct {
		name    string
		headers []string
		body    []byte
		status  int
		code    string
	}{
		{"valid", []string{good()}, body, 200, ""},
		{"valid without destination parameter", []string{xmatrix(t, a.key, string(a.key.ID), a.name, b.name, "", "PUT", uri, body)}, body, 200, ""},
		{"missing", nil, body, 401, "M_UNAUTHORIZED"},
		{"other scheme", []string{"Bearer abc"}, body, 401, "M_UNAUTHORIZED"},
		{"malformed: no sig", []string{fmt.Sprintf(`X-Matrix origin="%s",key="%s"`, a.name, a.key.ID)}, body, 401, "M_UNAUTHORIZED"},
		{"malformed: unterminated quote", []string{`X-Matrix origin="` + a.name}, body, 401, "M_UNAUTHORIZED"},
		{"malformed: bad origin", []string{xmatrix(t, a.key, string(a.key.ID), "bad origin!", b.name, b.name, "PUT", uri, body)}, body, 401, "M_UNAUTHORIZED"},
		{"bad signature", []string{xmatrix(t, other, string(a.key.ID), a.name, b.name, b.name, "PUT", uri, body)}, body, 401, "M_UNAUTHORIZED"},
		{"signed another uri", []string{xmatrix(t, a.key, string(a.key.ID), a.name, b.name, b.name, "PUT", "/_matrix/federation/v1/echo/z", body)}, body, 401, "M_UNAUTHORIZED"},
		{"body changed after signing", []string{good()}, []byte(`{"k":"w"}`), 401, "M_UNAUTHORIZED"},
		{"wrong destination", []string{xmatrix(t, a.key, string(a.key.ID), a.name, c.name, c.name, "PUT", uri, body)}, body, 401, "M_UNAUTHORIZED"},
		{"signed for another destination", []string{xmatrix(t, a.key, string(a.key.ID), a.name, c.name, "", "PUT", uri, body)}, body, 401, "M_UNAUTHORIZED"},
		{"unknown key", []string{xmatrix(t, a.key, "ed25519:nokey", a.name, b.name, b.name, "PUT", uri, body)}, body, 401, "M_UNAUTHORIZED"},
		{"wrong origin", []string{xmatrix(t, a.key, string(c.key.ID), c.name, b.name, b.name, "PUT", uri, body)}, body, 401, "M_UNAUTHORIZED"},
		{"origin is us", []string{xmatrix(t, b.key, string(b.key.ID), b.name, b.name, b.name, "PUT", uri, body)}, body, 401, "M_UNAUTHORIZED"},
		{"two headers, second good", []string{xmatrix(t, other, "ed25519:other", a.name, b.name, b.name, "PUT", uri, body), good()}, body, 200, ""},
		{"two headers, different origins", []string{good(), xmatrix(t, c.key, string(c.key.ID), c.name, b.name, b.name, "PUT", uri, body)}, body, 401, "M_UNAUTHORIZED"},
		{"body not JSON", []string{xmatrix(t, a.key, string(a.key.ID), a.name, b.name, b.name, "PUT", uri, nil)}, []byte("not json"), 400, "M_NOT_JSON"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPut, "https://"+b.addr+uri, bytes.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			for _, h := range tc.headers {
				req.Header.Add("Authorization", h)
			}
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var got struct {
				Errcode string `json:"errcode"`
				Error   string `json:"error"`
				Origin  string `json:"origin"`
				Body    string `json:"body"`
			}
			_ = json.NewDecoder(resp.Body).Decode(&got)
			if resp.StatusCode != tc.status || got.Errcode != tc.code {
				t.Fatalf("got %d %s (%s), want %d %s", resp.StatusCode, got.Errcode, got.Error, tc.status, tc.code)
			}
			if tc.status == 200 && (got.Origin != a.name || got.Body != string(body)) {
				t.Fatalf("handler saw origin %q body %q", got.Origin, got.Body)
			}
			if tc.status == 401 && got.Error == "" {
				t.Fatal("401 without an error message")
			}
		})
	}
}

func TestXMatrixOriginNotAllowed(t *testing.T) {
	ca, fn, clk := newTestCA(t), newFakeNet(), newClock()
	a := newNode(t, ca, fn, clk, nodeOpts{})
	b := newNode(t, ca, fn, clk, nodeOpts{allow: func(s string) bool { return s != a.name }})
	_, _, err := a.client.MakeFullRequest(ctxT(t), federation.RequestParams{
		ServerName: b.name, Method: http.MethodGet, Path: federation.URLPath{"v1", "echo", "x"}, Authenticate: true,
	})
	if err == nil || !contains(err.Error(), "M_FORBIDDEN") {
		t.Fatalf("refused origin: %v, want M_FORBIDDEN", err)
	}
}

func TestParseXMatrix(t *testing.T) {
	good := []struct {
		in                    string
		origin, dest, key, sg string
	}{
		{`X-Matrix origin="a.example",destination="b.example",key="ed25519:k1",sig="c2ln"`, "a.example", "b.example", "ed25519:k1", "c2ln"},
		// Case-insensitive scheme and names, spaces/tabs around commas, several spaces after the scheme.
		{"x-matrix   ORIGIN=\"a.example\" ,\tKey=\"ed25519:k1\" , Sig=\"c2ln\"", "a.example", "", "ed25519:k1", "c2ln"},
		// Unquoted tokens, and colons unquoted for older senders.
		{`X-Matrix origin=a.example:8448,key=ed25519:k1,sig=c2ln`, "a.example:8448", "", "ed25519:k1", "c2ln"},
		// Escapes and commas inside quotes; unknown parameters ignored.
		{`X-Matrix origin="a\.example",extra="x,y=z",key="ed25519:k1",sig="c2\"ln"`, "a.example", "", "ed25519:k1", `c2"ln`},
		// The spec's parameter list names it "signature".
		{`X-Matrix origin="a.example",key="ed25519:k1",signature="c2ln"`, "a.example", "", "ed25519:k1", "c2ln"},
	}
	for _, tc := range good {
		a, isX, err := parseXMatrix(tc.in)
		if !isX || err != nil {
			t.Fatalf("%s: %v", tc.in, err)
		}
		if a.Origin != tc.origin || a.Destination != tc.dest || string(a.KeyID) != tc.key || a.Signature != tc.sg {
			t.Fatalf("%s: got %+v", tc.in, a)
		}
	}
	bad := []string{
		`X-Matrix origin="a",key="ed25519:k"`,                // no sig
		`X-Matrix origin="a",origin="b",key="k",sig="s"`,     // duplicate
		`X-Matrix origin="a" key="k",sig="s"`,                // missing comma
		`X-Matrix origin="a,key="k",sig="s`,                  // unterminated
		`X-Matrix origin,key="k",sig="s"`,                    // no value
		`X-Matrix origin=a b,key="k",sig="s"`,                // space in token
		`X-Matrix origin="a",key="k",sig="s\`,                // dangling escape
		`X-Matrix origin="a",key="k",sig="s",="x"`,           // empty name
		`X-Matrix origin="a",key="k",sig="s",na me="x"`,      // bad name
		`X-Matrix origin="a",key="k",sig="s",dest=` + "\x00", // control byte
	}
	for _, in := range bad {
		if _, isX, err := parseXMatrix(in); !isX || err == nil {
			t.Errorf("%q accepted", in)
		}
	}
	if _, isX, _ := parseXMatrix(`Bearer x`); isX {
		t.Error("Bearer taken for X-Matrix")
	}
}
