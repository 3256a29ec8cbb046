package keyring

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
	"maunium.net/go/mautrix/id"
)

// BenchmarkVerifyEvent measures the receipt checks of one PDU with the sender's key cached
// (format, canonical JSON of the redacted event, one ed25519 verify, content hash). A /send
// transaction carries up to 50 PDUs.
func BenchmarkVerifyEvent(b *testing.B) {
	ca, fn, clk := newTestCA(b), newFakeNet(), newClock()
	a := newNode(b, ca, fn, clk, nodeOpts{})
	s := newNode(b, ca, fn, clk, nodeOpts{})
	raw := buildEvent(b, id.RoomV12, s.signer(), "m.room.message", nil, `{"msgtype":"m.text","body":"`+strings.Repeat("x", 200)+`"}`, clk.Now())
	ctx := context.Background()
	if v, err := a.kr.VerifyEvent(ctx, id.RoomV12, raw); v != OK {
		b.Fatalf("%s %v", v, err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if v, _ := a.kr.VerifyEvent(ctx, id.RoomV12, raw); v != OK {
			b.Fatal(v)
		}
	}
}

// BenchmarkXMatrixAuth measures the middleware on a signed PUT with the origin's key cached.
func BenchmarkXMatrixAuth(b *testing.B) {
	ca, fn, clk := newTestCA(b), newFakeNet(), newClock()
	a := newNode(b, ca, fn, clk, nodeOpts{})
	dst := newNode(b, ca, fn, clk, nodeOpts{})
	uri := "/_matrix/federation/v1/send/1"
	body := []byte(`{"origin":"` + a.name + `","pdus":[],"edus":[]}`)
	hdr := xmatrix(b, a.key, string(a.key.ID), a.name, dst.name, dst.name, "PUT", uri, body)
	e := echo.New()
	h := dst.kr.Middleware()(func(c echo.Context) error { return c.NoContent(http.StatusOK) })
	run := func() int {
		req := httptest.NewRequest(http.MethodPut, uri, strings.NewReader(string(body)))
		req.Header.Set("Authorization", hdr)
		rec := httptest.NewRecorder()
		if err := h(e.NewContext(req, rec)); err != nil {
			return 500
		}
		return rec.Code
	}
	if code := run(); code != http.StatusOK {
		b.Fatalf("status %d", code)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if run() != http.StatusOK {
			b.Fatal("rejected")
		}
	}
}
