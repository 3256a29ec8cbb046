package fedapi

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"
)

// parts splits a multipart/mixed answer.
func parts(t *testing.T, r resp) []struct {
	header map[string][]string
	body   []byte
} {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	mt, params, err := mime.ParseMediaType(r.header.Get("Content-Type"))
	if err != nil || mt != "multipart/mixed" || params["boundary"] == "" {
		t.Fatalf("Content-Type %q", r.header.Get("Content-Type"))
	}
	mr := multipart.NewReader(bytes.NewReader(r.body), params["boundary"])
	var out []struct {
		header map[string][]string
		body   []byte
	}
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("multipart: %v", err)
		}
		b, _ := io.ReadAll(p)
		out = append(out, struct {
			header map[string][]string
			body   []byte
		}{p.Header, b})
	}
	return out
}

func TestMediaDownloadAndThumbnail(t *testing.T) {
	e := newEnv(t)
	alice := e.user(t, "alice")
	uri, err := e.media.Upload(bg, alice, "text/plain", "notes.txt", strings.NewReader("hello federation"))
	if err != nil {
		t.Fatal(err)
	}
	ps := parts(t, e.get(t, "remote.test", "/v1/media/download/"+uri.FileID))
	if len(ps) != 2 {
		t.Fatalf("%d parts, want 2", len(ps))
	}
	if ct := ps[0].header["Content-Type"]; len(ct) != 1 || ct[0] != "application/json" || strings.TrimSpace(string(ps[0].body)) != "{}" {
		t.Errorf("metadata part %v %q", ps[0].header, ps[0].body)
	}
	if string(ps[1].body) != "hello federation" || !strings.HasPrefix(ps[1].header["Content-Type"][0], "text/plain") {
		t.Errorf("content part %v %q", ps[1].header, ps[1].body)
	}
	if cd := ps[1].header["Content-Disposition"]; len(cd) != 1 || !strings.Contains(cd[0], "notes.txt") {
		t.Errorf("Content-Disposition %v", cd)
	}

	img := image.NewRGBA(image.Rect(0, 0, 200, 150))
	for x := 0; x < 200; x++ {
		img.Set(x, x%150, color.RGBA{255, 0, 0, 255})
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	pic, err := e.media.Upload(bg, alice, "image/png", "pic.png", &buf)
	if err != nil {
		t.Fatal(err)
	}
	ps = parts(t, e.get(t, "remote.test", "/v1/media/thumbnail/"+pic.FileID+"?width=32&height=32&method=crop"))
	if len(ps) != 2 || ps[1].header["Content-Type"][0] != "image/png" {
		t.Fatalf("thumbnail parts %v", ps)
	}
	th, err := png.Decode(bytes.NewReader(ps[1].body))
	if err != nil {
		t.Fatalf("thumbnail is not a PNG: %v", err)
	}
	if b := th.Bounds(); b.Dx() > 200 || b.Dx() < 32 || b.Dy() < 32 {
		t.Errorf("thumbnail is %v", b)
	}

	e.get(t, "remote.test", "/v1/media/download/nope").fail(t, http.StatusNotFound, "M_NOT_FOUND")
	e.get(t, "remote.test", "/v1/media/thumbnail/"+pic.FileID+"?height=32").fail(t, http.StatusBadRequest, "M_MISSING_PARAM")
	e.get(t, "remote.test", "/v1/media/thumbnail/"+pic.FileID+"?width=-3&height=32").fail(t, http.StatusBadRequest, "M_INVALID_PARAM")
	e.get(t, "remote.test", "/v1/media/thumbnail/"+pic.FileID+"?width=32&height=32&method=stretch").fail(t, http.StatusBadRequest, "M_INVALID_PARAM")
	e.get(t, "remote.test", "/v1/media/thumbnail/"+uri.FileID+"?width=32&height=32").fail(t, http.StatusBadRequest, "M_UNKNOWN")
	e.get(t, "remote.test", "/v1/media/download/"+uri.FileID+"?timeout_ms=x").fail(t, http.StatusBadRequest, "M_INVALID_PARAM")

	// An asynchronous upload not completed yet: 504 M_NOT_YET_UPLOADED after the wait.
	pending, _, err := e.media.Create(bg, alice)
	if err != nil {
		t.Fatal(err)
	}
	e.get(t, "remote.test", "/v1/media/download/"+pending.FileID+"?timeout_ms=0").fail(t, http.StatusGatewayTimeout, "M_NOT_YET_UPLOADED")
}
