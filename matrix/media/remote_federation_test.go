package media

import (
	"bytes"
	"context"
	"crypto/x509"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"strings"
	"testing"

	"github.com/hearth-home/hearth/matrix/merr"
)

// The multipart answer of the federation media endpoint, read from a response as an origin
// sends it, and the Location redirect followed to a real HTTPS server.

// multipartResponse builds the origin's 200 answer with the metadata part and one content
// part with the given headers and body.
func multipartResponse(t *testing.T, part textproto.MIMEHeader, body []byte) *http.Response {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	meta, err := mw.CreatePart(textproto.MIMEHeader{"Content-Type": {"application/json"}})
	if err != nil {
		t.Fatal(err)
	}
	_, _ = meta.Write([]byte("{}"))
	p, err := mw.CreatePart(part)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = p.Write(body)
	_ = mw.Close()
	h := http.Header{"Content-Type": {"multipart/mixed; boundary=" + mw.Boundary()}}
	return &http.Response{StatusCode: 200, Header: h, Body: io.NopCloser(&buf)}
}

// cdn is an HTTPS server holding one file, as a redirect target would.
func cdn(t *testing.T, data []byte) (*httptest.Server, *x509.CertPool) {
	t.Helper()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/files/cat.png" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "image/png")
		w.Header().Set("Content-Disposition", `inline; filename="cat.png"`)
		_, _ = w.Write(data)
	}))
	t.Cleanup(srv.Close)
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	return srv, pool
}

func TestReadMultipartContent(t *testing.T) {
	f := NewFederationSource(nil, nil, false)
	resp := multipartResponse(t, textproto.MIMEHeader{
		"Content-Type": {"text/plain; charset=utf-8"}, "Content-Disposition": {"inline; filename*=utf-8''gr%C3%BC%C3%9Fe.txt"},
		"Content-Length": {"5"},
	}, []byte("hello"))
	c, err := f.readMultipart(context.Background(), resp, 100)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Body.Close()
	b, _ := io.ReadAll(c.Body)
	if string(b) != "hello" || c.ContentType != "text/plain; charset=utf-8" || c.Filename != "grüße.txt" || c.Length != 5 {
		t.Fatalf("got %q %q %q %d", b, c.ContentType, c.Filename, c.Length)
	}
}

func TestReadMultipartRefusesOtherAnswers(t *testing.T) {
	f := NewFederationSource(nil, nil, false)
	plain := &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"image/png"}}, Body: io.NopCloser(strings.NewReader("x"))}
	if _, err := f.readMultipart(context.Background(), plain, 100); err == nil {
		t.Fatal("a non-multipart answer must be refused")
	}
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	p, _ := mw.CreatePart(textproto.MIMEHeader{"Content-Type": {"text/html"}})
	_, _ = p.Write([]byte("<html>"))
	_ = mw.Close()
	noMeta := &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"multipart/mixed; boundary=" + mw.Boundary()}}, Body: io.NopCloser(&buf)}
	if _, err := f.readMultipart(context.Background(), noMeta, 100); err == nil {
		t.Fatal("a first part that is not the JSON metadata must be refused")
	}
}

func TestReadMultipartFollowsLocation(t *testing.T) {
	data := []byte("\x89PNG fake image bytes")
	srv, pool := cdn(t, data)
	f := NewFederationSource(nil, pool, true)
	resp := multipartResponse(t, textproto.MIMEHeader{"Location": {srv.URL + "/files/cat.png"}}, nil)
	c, err := f.readMultipart(context.Background(), resp, 1000)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Body.Close()
	b, _ := io.ReadAll(c.Body)
	if !bytes.Equal(b, data) || c.ContentType != "image/png" || c.Filename != "cat.png" {
		t.Fatalf("redirected content: %q %q %q", b, c.ContentType, c.Filename)
	}

	// Announced as larger than the limit: refused before reading.
	resp = multipartResponse(t, textproto.MIMEHeader{"Location": {srv.URL + "/files/cat.png"}}, nil)
	if _, err := f.readMultipart(context.Background(), resp, 4); !isCode(err, 502, "M_TOO_LARGE") {
		t.Fatalf("oversize redirect target: %v", err)
	}
	// Missing at the target: 404.
	resp = multipartResponse(t, textproto.MIMEHeader{"Location": {srv.URL + "/files/dog.png"}}, nil)
	if _, err := f.readMultipart(context.Background(), resp, 1000); !isCode(err, 404, "M_NOT_FOUND") {
		t.Fatalf("missing redirect target: %v", err)
	}
	// Plain http is refused.
	resp = multipartResponse(t, textproto.MIMEHeader{"Location": {strings.Replace(srv.URL, "https:", "http:", 1) + "/files/cat.png"}}, nil)
	if _, err := f.readMultipart(context.Background(), resp, 1000); err == nil {
		t.Fatal("an http:// redirect must be refused")
	}
}

func TestRedirectToPrivateAddressRefused(t *testing.T) {
	srv, pool := cdn(t, []byte("secret router page"))
	f := NewFederationSource(nil, pool, false) // loopback is not public
	resp := multipartResponse(t, textproto.MIMEHeader{"Location": {srv.URL + "/files/cat.png"}}, nil)
	if _, err := f.readMultipart(context.Background(), resp, 1000); err == nil || !strings.Contains(err.Error(), "non-public") {
		t.Fatalf("redirect to loopback: %v, want refused", err)
	}
}

func isCode(err error, status int, code string) bool {
	me, ok := merr.As(err)
	return ok && me.Status == status && me.Code == code
}

// Which answers of the federation media endpoint send the request to the legacy endpoint:
// "no such endpoint" in its various forms does, an answer about the media itself does not.
func TestLegacyFallback(t *testing.T) {
	cases := []struct {
		status int
		code   string
		want   bool
	}{
		{http.StatusNotFound, "M_UNRECOGNIZED", true},
		{http.StatusNotFound, "M_NOT_FOUND", false},
		{http.StatusNotFound, "", false},
		{http.StatusMethodNotAllowed, "", true},
		{http.StatusNotImplemented, "", true},
		{http.StatusBadRequest, "", true}, // Complement's mock: plain-text "Invalid Origin"
		{http.StatusBadRequest, "M_UNRECOGNIZED", true},
		{http.StatusBadRequest, "M_TOO_LARGE", false},
		{http.StatusBadGateway, "M_NOT_YET_UPLOADED", false},
		{http.StatusForbidden, "M_FORBIDDEN", false},
		{0, "", false},
	}
	for _, c := range cases {
		if got := legacyFallback(c.status, c.code); got != c.want {
			t.Errorf("legacyFallback(%d, %q) = %v, want %v", c.status, c.code, got, c.want)
		}
	}
}
