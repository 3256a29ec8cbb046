package clientapi_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/appliance/config"
	"github.com/hearth-home/hearth/appliance/testserver"
)

// The content repository: uploads (direct and asynchronous), downloads with the safe-serving
// headers, thumbnails, the size limit and URL previews.

var mediaCtx = context.Background()

const mediaCSP = "sandbox; default-src 'none'; script-src 'none'; plugin-types application/pdf; style-src 'unsafe-inline'; media-src 'self'; object-src 'self';"

type mediaResp struct {
	status int
	header http.Header
	body   []byte
}

func (r mediaResp) errcode() string {
	var m map[string]any
	_ = json.Unmarshal(r.body, &m)
	s, _ := m["errcode"].(string)
	return s
}

func (r mediaResp) want(t *testing.T, status int, code string) {
	t.Helper()
	if r.status != status || (code != "" && r.errcode() != code) {
		t.Fatalf("want %d %s, got %d %s", status, code, r.status, r.body)
	}
}

// mediaDo sends a raw request (body may be nil) with an optional access token.
func mediaDo(t *testing.T, s *testserver.Server, method, path, token string, body io.Reader, hdr map[string]string) mediaResp {
	t.Helper()
	req, err := http.NewRequest(method, s.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return mediaResp{status: resp.StatusCode, header: resp.Header, body: b}
}

func mediaUpload(t *testing.T, cli *mautrix.Client, data []byte, contentType, filename string) id.ContentURI {
	t.Helper()
	resp, err := cli.UploadMedia(mediaCtx, mautrix.ReqUploadMedia{ContentBytes: data, ContentType: contentType, FileName: filename})
	if err != nil {
		t.Fatalf("upload: %v", err)
	}
	return resp.ContentURI
}

func mediaPath(kind string, uri id.ContentURI) string {
	return "/_matrix/client/v1/media/" + kind + "/" + uri.Homeserver + "/" + uri.FileID
}

func TestMediaUploadDownload(t *testing.T) {
	s := testserver.Start(t)
	alice := s.Register(t, "alice", false)
	bob := s.Register(t, "bob", false)

	data := []byte("hello, media")
	uri := mediaUpload(t, alice, data, "text/plain", "hello.txt")
	if uri.Homeserver != s.ServerName || len(uri.FileID) != 24 {
		t.Fatalf("content uri %v", uri)
	}

	// Authenticated download by another user, with every safe-serving header.
	r := mediaDo(t, s, http.MethodGet, mediaPath("download", uri), bob.AccessToken, nil, nil)
	r.want(t, 200, "")
	if !bytes.Equal(r.body, data) {
		t.Fatalf("body %q", r.body)
	}
	for k, want := range map[string]string{
		"Content-Type":                 "text/plain; charset=utf-8",
		"Content-Disposition":          `inline; filename="hello.txt"`,
		"Content-Security-Policy":      mediaCSP,
		"X-Content-Type-Options":       "nosniff",
		"Cross-Origin-Resource-Policy": "cross-origin",
	} {
		if got := r.header.Get(k); got != want {
			t.Errorf("%s: got %q, want %q", k, got, want)
		}
	}
	// mautrix's own download helper uses the same endpoint.
	if b, err := bob.DownloadBytes(mediaCtx, uri); err != nil || !bytes.Equal(b, data) {
		t.Fatalf("DownloadBytes: %q %v", b, err)
	}

	// The file name in the path overrides the stored one; non-ASCII names use filename*.
	r = mediaDo(t, s, http.MethodGet, mediaPath("download", uri)+"/"+url.PathEscape("snow ☃.txt"), bob.AccessToken, nil, nil)
	r.want(t, 200, "")
	cd := r.header.Get("Content-Disposition")
	if !strings.HasPrefix(cd, "inline; filename*=utf-8''") {
		t.Fatalf("content-disposition %q", cd)
	}
	if _, params, err := mime.ParseMediaType(cd); err != nil || params["filename"] != "snow ☃.txt" {
		t.Fatalf("content-disposition %q parses to %v (%v)", cd, params, err)
	}

	// The authenticated endpoint needs a token; the legacy one does not (config default).
	mediaDo(t, s, http.MethodGet, mediaPath("download", uri), "", nil, nil).want(t, 401, "M_MISSING_TOKEN")
	r = mediaDo(t, s, http.MethodGet, "/_matrix/media/v3/download/"+uri.Homeserver+"/"+uri.FileID, "", nil, nil)
	r.want(t, 200, "")
	if !bytes.Equal(r.body, data) || r.header.Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("legacy download %q %v", r.body, r.header)
	}

	// Unsafe types are served as attachments of type application/octet-stream.
	htmlURI := mediaUpload(t, alice, []byte("<script>alert(1)</script>"), "text/html", "x.html")
	r = mediaDo(t, s, http.MethodGet, mediaPath("download", htmlURI), bob.AccessToken, nil, nil)
	r.want(t, 200, "")
	if r.header.Get("Content-Type") != "application/octet-stream" || r.header.Get("Content-Disposition") != `attachment; filename="x.html"` {
		t.Fatalf("unsafe type served as %q / %q", r.header.Get("Content-Type"), r.header.Get("Content-Disposition"))
	}

	// Content-addressed on disk: <data>/media/ab/cd/<sha256>; the same bytes again share the file.
	sum := sha256.Sum256(data)
	h := hex.EncodeToString(sum[:])
	if _, err := os.Stat(filepath.Join(s.DataDir, "media", h[0:2], h[2:4], h)); err != nil {
		t.Fatalf("content-addressed file: %v", err)
	}
	again := mediaUpload(t, bob, data, "text/plain", "")
	if again == uri {
		t.Fatalf("second upload reused the media ID")
	}
	r = mediaDo(t, s, http.MethodGet, mediaPath("download", again), bob.AccessToken, nil, nil)
	if r.header.Get("Content-Disposition") != "inline" {
		t.Fatalf("no filename: content-disposition %q", r.header.Get("Content-Disposition"))
	}

	// Range requests are honoured.
	r = mediaDo(t, s, http.MethodGet, mediaPath("download", uri), bob.AccessToken, nil, map[string]string{"Range": "bytes=0-4"})
	if r.status != http.StatusPartialContent || string(r.body) != "hello" {
		t.Fatalf("range: %d %q", r.status, r.body)
	}

	// Config, authenticated and legacy.
	cfg, err := alice.GetMediaConfig(mediaCtx)
	if err != nil || cfg.UploadSize != 50<<20 {
		t.Fatalf("media config %+v %v", cfg, err)
	}
	var legacy map[string]any
	r = mediaDo(t, s, http.MethodGet, "/_matrix/media/v3/config", alice.AccessToken, nil, nil)
	if r.status != 200 || json.Unmarshal(r.body, &legacy) != nil || legacy["m.upload.size"] != float64(50<<20) {
		t.Fatalf("legacy config %d %s", r.status, r.body)
	}
}

func TestMediaUnknown(t *testing.T) {
	s := testserver.Start(t)
	alice := s.Register(t, "alice", false)
	for _, p := range []string{
		"/_matrix/client/v1/media/download/" + s.ServerName + "/abcdefghijklmnopqrstuvwx",
		"/_matrix/client/v1/media/download/" + s.ServerName + "/bad%20id",
		"/_matrix/client/v1/media/thumbnail/" + s.ServerName + "/abcdefghijklmnopqrstuvwx?width=32&height=32",
	} {
		mediaDo(t, s, http.MethodGet, p, alice.AccessToken, nil, nil).want(t, 404, "M_NOT_FOUND")
	}
	// Remote media whose origin cannot be reached (.example never resolves): 502, not 404
	// (matrix/federation/media_integration_test.go covers remote media itself).
	for _, p := range []string{
		"/_matrix/client/v1/media/download/elsewhere.example/abcdefghijklmnopqrstuvwx",
		"/_matrix/media/v3/download/elsewhere.example/abcdefghijklmnopqrstuvwx",
	} {
		mediaDo(t, s, http.MethodGet, p, alice.AccessToken, nil, nil).want(t, 502, "M_UNKNOWN")
	}
}

func TestMediaLegacyDisabled(t *testing.T) {
	s := testserver.Start(t, func(c *config.Config) { c.Media.LegacyUnauthenticated = false })
	alice := s.Register(t, "alice", false)
	uri := mediaUpload(t, alice, []byte("x"), "text/plain", "")
	mediaDo(t, s, http.MethodGet, "/_matrix/media/v3/download/"+uri.Homeserver+"/"+uri.FileID, "", nil, nil).want(t, 404, "")
	mediaDo(t, s, http.MethodGet, mediaPath("download", uri), alice.AccessToken, nil, nil).want(t, 200, "")
}

func TestMediaAsyncUpload(t *testing.T) {
	s := testserver.Start(t)
	alice := s.Register(t, "alice", false)
	bob := s.Register(t, "bob", false)

	created, err := alice.CreateMXC(mediaCtx)
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	uri := created.ContentURI
	if uri.Homeserver != s.ServerName || len(uri.FileID) != 24 || !created.UnusedExpiresAt.After(time.Now()) {
		t.Fatalf("create: %+v", created)
	}

	// Not uploaded yet: a short wait times out with 504 M_NOT_YET_UPLOADED.
	mediaDo(t, s, http.MethodGet, mediaPath("download", uri)+"?timeout_ms=50", bob.AccessToken, nil, nil).want(t, 504, "M_NOT_YET_UPLOADED")
	mediaDo(t, s, http.MethodGet, mediaPath("thumbnail", uri)+"?width=32&height=32&timeout_ms=0", bob.AccessToken, nil, nil).want(t, 504, "M_NOT_YET_UPLOADED")

	// A download waiting for the content gets it once it arrives.
	got := make(chan mediaResp, 1)
	go func() { // no t.Fatal off the test goroutine: errors arrive as status 0
		req, _ := http.NewRequest(http.MethodGet, s.URL+mediaPath("download", uri)+"?timeout_ms=10000", nil)
		req.Header.Set("Authorization", "Bearer "+bob.AccessToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			got <- mediaResp{body: []byte(err.Error())}
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		got <- mediaResp{status: resp.StatusCode, header: resp.Header, body: b}
	}()
	time.Sleep(100 * time.Millisecond)

	put := func(cli *mautrix.Client, u id.ContentURI, body string) mediaResp {
		return mediaDo(t, s, http.MethodPut, "/_matrix/media/v3/upload/"+u.Homeserver+"/"+u.FileID+"?filename=late.txt", cli.AccessToken,
			strings.NewReader(body), map[string]string{"Content-Type": "text/plain"})
	}
	// Only the creator may upload to it.
	put(bob, uri, "not yours").want(t, 403, "M_FORBIDDEN")
	put(alice, uri, "arrived late").want(t, 200, "")
	select {
	case r := <-got:
		r.want(t, 200, "")
		if string(r.body) != "arrived late" || r.header.Get("Content-Disposition") != `inline; filename="late.txt"` {
			t.Fatalf("waited download: %q %v", r.body, r.header)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("waiting download did not return")
	}

	// Overwriting is refused; unknown IDs and other servers are not found.
	put(alice, uri, "again").want(t, 409, "M_CANNOT_OVERWRITE_MEDIA")
	put(alice, id.ContentURI{Homeserver: s.ServerName, FileID: "abcdefghijklmnopqrstuvwx"}, "x").want(t, 404, "M_NOT_FOUND")
	put(alice, id.ContentURI{Homeserver: "elsewhere.example", FileID: uri.FileID}, "x").want(t, 404, "M_NOT_FOUND")
	// A direct upload's ID is not open for PUT either.
	direct := mediaUpload(t, alice, []byte("direct"), "text/plain", "")
	put(alice, direct, "x").want(t, 409, "M_CANNOT_OVERWRITE_MEDIA")

	// mautrix's async helper (create, then PUT) works end to end.
	resp, err := alice.UploadAsync(mediaCtx, mautrix.ReqUploadMedia{ContentBytes: []byte("async"), ContentType: "text/plain"})
	if err != nil {
		t.Fatalf("UploadAsync: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, err := bob.DownloadBytes(mediaCtx, resp.ContentURI)
		if err == nil && string(b) == "async" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("async upload never arrived: %q %v", b, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestMediaTooLarge(t *testing.T) {
	s := testserver.Start(t, func(c *config.Config) { c.Media.MaxUploadBytes = 1024 })
	alice := s.Register(t, "alice", false)
	big := bytes.Repeat([]byte("x"), 2048)

	// With a Content-Length.
	mediaDo(t, s, http.MethodPost, "/_matrix/media/v3/upload", alice.AccessToken, bytes.NewReader(big), nil).want(t, 413, "M_TOO_LARGE")
	// Streamed without one: the limit is enforced while reading.
	pr, pw := io.Pipe()
	go func() { pw.Write(big); pw.Close() }()
	mediaDo(t, s, http.MethodPost, "/_matrix/media/v3/upload", alice.AccessToken, io.NopCloser(pr), nil).want(t, 413, "M_TOO_LARGE")
	// The same on an asynchronous upload.
	created, err := alice.CreateMXC(mediaCtx)
	if err != nil {
		t.Fatal(err)
	}
	mediaDo(t, s, http.MethodPut, "/_matrix/media/v3/upload/"+s.ServerName+"/"+created.ContentURI.FileID, alice.AccessToken, bytes.NewReader(big), nil).want(t, 413, "M_TOO_LARGE")
	// Exactly at the limit is fine, and larger than the general body limit would be fine too.
	mediaUpload(t, alice, big[:1024], "application/octet-stream", "")
	if cfg, err := alice.GetMediaConfig(mediaCtx); err != nil || cfg.UploadSize != 1024 {
		t.Fatalf("config %+v %v", cfg, err)
	}
}

func TestMediaUploadAboveBodyLimit(t *testing.T) {
	// Uploads are bounded by media.max_upload_bytes, not by limits.max_body_bytes.
	s := testserver.Start(t, func(c *config.Config) { c.Limits.MaxBodyBytes = 1024 })
	alice := s.Register(t, "alice", false)
	data := bytes.Repeat([]byte("y"), 64<<10)
	uri := mediaUpload(t, alice, data, "application/octet-stream", "big.bin")
	r := mediaDo(t, s, http.MethodGet, mediaPath("download", uri), alice.AccessToken, nil, nil)
	if r.status != 200 || !bytes.Equal(r.body, data) || r.header.Get("Content-Disposition") != `attachment; filename="big.bin"` {
		t.Fatalf("download %d %d bytes %v", r.status, len(r.body), r.header)
	}
}

// mediaTestImage draws a w×h image: left half red, right half blue.
func mediaTestImage(w, h int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			c := color.RGBA{255, 0, 0, 255}
			if x >= w/2 {
				c = color.RGBA{0, 0, 255, 255}
			}
			img.Set(x, y, c)
		}
	}
	return img
}

func mediaEncode(t *testing.T, format string, img image.Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	var err error
	switch format {
	case "png":
		err = png.Encode(&buf, img)
	case "jpeg":
		err = jpeg.Encode(&buf, img, nil)
	case "gif":
		err = gif.Encode(&buf, img, nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestMediaThumbnails(t *testing.T) {
	s := testserver.Start(t)
	alice := s.Register(t, "alice", false)
	pngURI := mediaUpload(t, alice, mediaEncode(t, "png", mediaTestImage(400, 200)), "image/png", "wide.png")
	jpgURI := mediaUpload(t, alice, mediaEncode(t, "jpeg", mediaTestImage(300, 300)), "image/jpeg", "square.jpg")
	gifURI := mediaUpload(t, alice, mediaEncode(t, "gif", mediaTestImage(120, 60)), "image/gif", "small.gif")

	thumb := func(uri id.ContentURI, q string) (image.Image, string, mediaResp) {
		t.Helper()
		r := mediaDo(t, s, http.MethodGet, mediaPath("thumbnail", uri)+"?"+q, alice.AccessToken, nil, nil)
		r.want(t, 200, "")
		img, format, err := image.Decode(bytes.NewReader(r.body))
		if err != nil {
			t.Fatalf("thumbnail %s: decode: %v", q, err)
		}
		if ct := r.header.Get("Content-Type"); ct != "image/"+format {
			t.Fatalf("thumbnail %s: content-type %q but the body is %s", q, ct, format)
		}
		if !strings.HasPrefix(r.header.Get("Content-Disposition"), "inline") || r.header.Get("Content-Security-Policy") != mediaCSP {
			t.Fatalf("thumbnail headers %v", r.header)
		}
		return img, format, r
	}
	size := func(img image.Image) string { return fmt.Sprintf("%dx%d", img.Bounds().Dx(), img.Bounds().Dy()) }

	for _, tc := range []struct {
		name   string
		uri    id.ContentURI
		q      string
		size   string
		format string
	}{
		// Scale fits inside the (snapped) box keeping the aspect ratio.
		{"png scale", pngURI, "width=320&height=240&method=scale", "320x160", "png"},
		{"png scale default method", pngURI, "width=320&height=240", "320x160", "png"},
		// Crop fills the box exactly.
		{"png crop", pngURI, "width=96&height=96&method=crop", "96x96", "png"},
		{"png crop 32", pngURI, "width=32&height=32&method=crop", "32x32", "png"},
		// Odd sizes snap up to the next size made (the spec allows a larger thumbnail).
		{"png crop snapped", pngURI, "width=50&height=40&method=crop", "96x96", "png"},
		{"jpeg crop", jpgURI, "width=96&height=96&method=crop", "96x96", "jpeg"},
		{"jpeg scale", jpgURI, "width=320&height=240&method=scale", "240x240", "jpeg"},
		// Never enlarged.
		{"jpeg scale no enlarge", jpgURI, "width=800&height=600&method=scale", "300x300", "jpeg"},
		{"gif first frame", gifURI, "width=96&height=96&method=scale&animated=true", "96x48", "png"},
	} {
		img, format, _ := thumb(tc.uri, tc.q)
		if size(img) != tc.size || format != tc.format {
			t.Errorf("%s: got %s %s, want %s %s", tc.name, size(img), format, tc.size, tc.format)
		}
	}

	// Crop vs scale on the wide image: the crop is the centre (the red/blue border), the
	// scaled one shows red on the far left and blue on the far right.
	crop, _, _ := thumb(pngURI, "width=96&height=96&method=crop")
	scale, _, _ := thumb(pngURI, "width=96&height=96&method=scale")
	if size(scale) != "96x48" {
		t.Fatalf("scale 96: %s", size(scale))
	}
	isRed := func(c color.Color) bool { r, g, b, _ := c.RGBA(); return r > 0xc000 && g < 0x4000 && b < 0x4000 }
	isBlue := func(c color.Color) bool { r, g, b, _ := c.RGBA(); return b > 0xc000 && r < 0x4000 && g < 0x4000 }
	if !isRed(crop.At(2, 48)) || !isBlue(crop.At(93, 48)) || !isRed(scale.At(2, 24)) || !isBlue(scale.At(93, 24)) {
		t.Fatalf("crop/scale content: crop %v %v, scale %v %v", crop.At(2, 48), crop.At(93, 48), scale.At(2, 24), scale.At(93, 24))
	}

	// Cached on disk per (media, size, method); a second request is served from there.
	matches, _ := filepath.Glob(filepath.Join(s.DataDir, "media", "thumbnails", "*", "*", "*-96x96-crop"))
	if len(matches) != 2 { // png and jpeg
		t.Fatalf("cached crop thumbnails: %v", matches)
	}
	again, _, _ := thumb(pngURI, "width=96&height=96&method=crop")
	if size(again) != "96x96" {
		t.Fatalf("cached thumbnail %s", size(again))
	}

	// The legacy unauthenticated endpoint serves thumbnails too.
	r := mediaDo(t, s, http.MethodGet, "/_matrix/media/v3/thumbnail/"+pngURI.Homeserver+"/"+pngURI.FileID+"?width=32&height=32&method=crop", "", nil, nil)
	r.want(t, 200, "")

	// Bad parameters and content that cannot be thumbnailed.
	textURI := mediaUpload(t, alice, []byte("not an image"), "text/plain", "")
	fake := mediaUpload(t, alice, []byte("not really a png"), "image/png", "")
	for _, tc := range []struct {
		uri    id.ContentURI
		q      string
		status int
		code   string
	}{
		{pngURI, "height=32", 400, "M_MISSING_PARAM"},
		{pngURI, "width=-1&height=32", 400, "M_INVALID_PARAM"},
		{pngURI, "width=abc&height=32", 400, "M_INVALID_PARAM"},
		{pngURI, "width=32&height=32&method=stretch", 400, "M_INVALID_PARAM"},
		{textURI, "width=32&height=32", 400, "M_UNKNOWN"},
		{fake, "width=32&height=32", 400, "M_UNKNOWN"},
	} {
		mediaDo(t, s, http.MethodGet, mediaPath("thumbnail", tc.uri)+"?"+tc.q, alice.AccessToken, nil, nil).want(t, tc.status, tc.code)
	}
}

// mediaPreviewSite serves a page with OpenGraph tags and its image on loopback.
func mediaPreviewSite(t *testing.T) *httptest.Server {
	img := mediaEncode(t, "png", mediaTestImage(48, 24))
	mux := http.NewServeMux()
	mux.HandleFunc("/page", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, `<!doctype html><html><head><title>Fallback title</title>
<meta property="og:title" content="Hearth &amp; home">
<meta property="og:description" content="A Matrix homeserver appliance">
<meta property="og:image" content="/logo.png">
</head><body>hi</body></html>`)
	})
	mux.HandleFunc("/plain", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, `<html><head><title>Just a title</title><meta name="description" content="described"></head></html>`)
	})
	mux.HandleFunc("/logo.png", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/png")
		w.Write(img)
	})
	mux.HandleFunc("/redirect", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/page", http.StatusFound)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func TestMediaPreviewURL(t *testing.T) {
	site := mediaPreviewSite(t)
	s := testserver.Start(t, func(c *config.Config) {
		c.Media.URLPreview = true
		c.Media.URLPreviewAllowPrivate = true // the test site is on loopback
	})
	alice := s.Register(t, "alice", false)

	preview := func(path, target string) map[string]any {
		t.Helper()
		r := mediaDo(t, s, http.MethodGet, path+"?url="+url.QueryEscape(target), alice.AccessToken, nil, nil)
		r.want(t, 200, "")
		var m map[string]any
		if err := json.Unmarshal(r.body, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	og := preview("/_matrix/client/v1/media/preview_url", site.URL+"/page")
	if og["og:title"] != "Hearth & home" || og["og:description"] != "A Matrix homeserver appliance" {
		t.Fatalf("preview %v", og)
	}
	mxc, _ := og["og:image"].(string)
	imgURI, err := id.ParseContentURI(mxc)
	if err != nil || imgURI.Homeserver != s.ServerName {
		t.Fatalf("og:image %q: %v", mxc, err)
	}
	if og["og:image:width"] != float64(48) || og["og:image:height"] != float64(24) || og["matrix:image:size"] == nil {
		t.Fatalf("image fields %v", og)
	}
	if r := mediaDo(t, s, http.MethodGet, mediaPath("download", imgURI), alice.AccessToken, nil, nil); r.status != 200 || r.header.Get("Content-Type") != "image/png" {
		t.Fatalf("preview image download %d %v", r.status, r.header)
	}

	// Fallbacks to <title> and the description meta; the legacy path; redirects; mautrix.
	og = preview("/_matrix/media/v3/preview_url", site.URL+"/plain")
	if og["og:title"] != "Just a title" || og["og:description"] != "described" {
		t.Fatalf("fallback preview %v", og)
	}
	if og = preview("/_matrix/client/v1/media/preview_url", site.URL+"/redirect"); og["og:title"] != "Hearth & home" {
		t.Fatalf("redirected preview %v", og)
	}
	if p, err := alice.GetURLPreview(mediaCtx, site.URL+"/page"); err != nil || p.Title != "Hearth & home" {
		t.Fatalf("GetURLPreview %+v %v", p, err)
	}

	// Bad URLs.
	mediaDo(t, s, http.MethodGet, "/_matrix/client/v1/media/preview_url", alice.AccessToken, nil, nil).want(t, 400, "M_MISSING_PARAM")
	mediaDo(t, s, http.MethodGet, "/_matrix/client/v1/media/preview_url?url="+url.QueryEscape("file:///etc/passwd"), alice.AccessToken, nil, nil).want(t, 400, "M_INVALID_PARAM")
	mediaDo(t, s, http.MethodGet, "/_matrix/client/v1/media/preview_url?url="+url.QueryEscape(site.URL+"/missing"), alice.AccessToken, nil, nil).want(t, 502, "")
	mediaDo(t, s, http.MethodGet, "/_matrix/client/v1/media/preview_url?url="+url.QueryEscape(site.URL+"/page"), "", nil, nil).want(t, 401, "M_MISSING_TOKEN")
}

func TestMediaPreviewURLRefusesPrivate(t *testing.T) {
	site := mediaPreviewSite(t)
	s := testserver.Start(t, func(c *config.Config) { c.Media.URLPreview = true })
	alice := s.Register(t, "alice", false)
	for _, target := range []string{
		site.URL + "/page",
		strings.Replace(site.URL, "127.0.0.1", "localhost", 1) + "/page",
		"http://[::1]:1/",
		"http://169.254.169.254/latest/meta-data/",
		"http://10.0.0.1:1/",
	} {
		mediaDo(t, s, http.MethodGet, "/_matrix/client/v1/media/preview_url?url="+url.QueryEscape(target), alice.AccessToken, nil, nil).want(t, 403, "M_FORBIDDEN")
	}

	// Off entirely by default.
	s2 := testserver.Start(t)
	bob := s2.Register(t, "bob", false)
	mediaDo(t, s2, http.MethodGet, "/_matrix/client/v1/media/preview_url?url="+url.QueryEscape(site.URL+"/page"), bob.AccessToken, nil, nil).want(t, 404, "M_UNRECOGNIZED")
}
