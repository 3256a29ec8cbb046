package federation_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/appliance/config"
	"github.com/hearth-home/hearth/appliance/testserver"
)

// Remote media between two Hearths: content uploaded on a, downloaded by a client of b, which
// fetches it over federation (authenticated multipart endpoint), caches it and serves it.

const (
	remoteBudget    = 70_000  // b's remote cache budget: two 30 kB files fit, three do not
	remoteMaxUpload = 200_000 // b's size limit, which also bounds what it fetches
)

type mediaResp struct {
	status int
	header http.Header
	body   []byte
}

func (r mediaResp) errcode() string {
	var e struct {
		Code string `json:"errcode"`
	}
	_ = json.Unmarshal(r.body, &e)
	return e.Code
}

func getMedia(t *testing.T, base, path, token string) mediaResp {
	t.Helper()
	r, err := fetchMedia(base, path, token)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// fetchMedia is getMedia for goroutines (which must not call t.Fatal).
func fetchMedia(base, path, token string) (mediaResp, error) {
	req, err := http.NewRequest(http.MethodGet, base+path, nil)
	if err != nil {
		return mediaResp{}, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := (&http.Client{Timeout: 90 * time.Second}).Do(req)
	if err != nil {
		return mediaResp{}, fmt.Errorf("GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return mediaResp{}, fmt.Errorf("GET %s: read: %w", path, err)
	}
	return mediaResp{status: resp.StatusCode, header: resp.Header, body: b}, nil
}

func upload(t *testing.T, c *mautrix.Client, data []byte, ct, name string) id.ContentURI {
	t.Helper()
	resp, err := c.UploadBytesWithName(context.Background(), data, ct, name)
	if err != nil {
		t.Fatalf("upload %s: %v", name, err)
	}
	return resp.ContentURI
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// blobOn is where a server keeps the content with this SHA-256 (matrix/media's layout).
func blobOn(s *testserver.Server, data []byte) string {
	sum := sha256.Sum256(data)
	h := hex.EncodeToString(sum[:])
	return filepath.Join(s.DataDir, "media", h[0:2], h[2:4], h)
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func dl(uri id.ContentURI) string {
	return "/_matrix/client/v1/media/download/" + uri.Homeserver + "/" + uri.FileID
}

// fedDownloads reads a's count of answered federation media downloads from its /metrics.
func fedDownloads(t *testing.T, s *testserver.Server) int {
	t.Helper()
	r := getMedia(t, s.URL, "/metrics", "")
	if r.status != http.StatusOK {
		t.Fatalf("metrics: %d", r.status)
	}
	n := 0
	sc := bufio.NewScanner(bytes.NewReader(r.body))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "hearth_http_requests_total{") && strings.Contains(line, `route="/_matrix/federation/v1/media/download/:mediaId"`) {
			f := strings.Fields(line)
			v, err := strconv.ParseFloat(f[len(f)-1], 64)
			if err != nil {
				t.Fatalf("metrics line %q: %v", line, err)
			}
			n += int(v)
		}
	}
	return n
}

func TestRemoteMedia(t *testing.T) {
	ca := testserver.NewCA(t)
	a := testserver.Start(t, testserver.Federated(t, ca))
	b := testserver.Start(t, testserver.Federated(t, ca), func(c *config.Config) {
		c.Media.RemoteCacheMaxBytes = remoteBudget
		c.Media.MaxUploadBytes = remoteMaxUpload
	})
	alice := a.Register(t, "alice", false)
	bob := b.Register(t, "bob", false)

	text := []byte("hello from a, fetched by b\n")
	textURI := upload(t, alice, text, "text/plain", "hello.txt")

	t.Run("download via b equals a", func(t *testing.T) {
		onA := getMedia(t, a.URL, dl(textURI), alice.AccessToken)
		onB := getMedia(t, b.URL, dl(textURI), bob.AccessToken)
		if onA.status != http.StatusOK || onB.status != http.StatusOK {
			t.Fatalf("status a=%d b=%d (%s)", onA.status, onB.status, onB.body)
		}
		if !bytes.Equal(onB.body, text) {
			t.Fatalf("body via b = %q, want %q", onB.body, text)
		}
		for _, h := range []string{"Content-Type", "Content-Disposition", "Content-Security-Policy", "X-Content-Type-Options"} {
			if onA.header.Get(h) != onB.header.Get(h) {
				t.Errorf("%s: a %q, b %q", h, onA.header.Get(h), onB.header.Get(h))
			}
		}
		if !strings.Contains(onB.header.Get("Content-Disposition"), "hello.txt") {
			t.Errorf("Content-Disposition %q lost the filename", onB.header.Get("Content-Disposition"))
		}
		// The legacy unauthenticated endpoint (on by default) serves it too, from the cache.
		legacy := getMedia(t, b.URL, "/_matrix/media/v3/download/"+textURI.Homeserver+"/"+textURI.FileID+"/other.txt", "")
		if legacy.status != http.StatusOK || !bytes.Equal(legacy.body, text) || !strings.Contains(legacy.header.Get("Content-Disposition"), "other.txt") {
			t.Fatalf("legacy download: %d %q %q", legacy.status, legacy.body, legacy.header.Get("Content-Disposition"))
		}
		if !exists(blobOn(b, text)) {
			t.Fatalf("b has no cached file at %s", blobOn(b, text))
		}
	})

	t.Run("concurrent downloads fetch once", func(t *testing.T) {
		big := randomBytes(t, 150_000)
		uri := upload(t, alice, big, "application/octet-stream", "big.bin")
		before := fedDownloads(t, a)
		var wg sync.WaitGroup
		errs := make(chan string, 8)
		for range 8 {
			wg.Go(func() {
				r, err := fetchMedia(b.URL, dl(uri), bob.AccessToken)
				if err != nil {
					errs <- err.Error()
				} else if r.status != http.StatusOK || !bytes.Equal(r.body, big) {
					errs <- strconv.Itoa(r.status) + " " + r.errcode()
				}
			})
		}
		wg.Wait()
		close(errs)
		for e := range errs {
			t.Errorf("concurrent download: %s", e)
		}
		if got := fedDownloads(t, a) - before; got != 1 {
			t.Fatalf("a served %d federation downloads for 8 concurrent client downloads, want 1", got)
		}
		// Once more: from the cache.
		if r := getMedia(t, b.URL, dl(uri), bob.AccessToken); r.status != http.StatusOK || !bytes.Equal(r.body, big) {
			t.Fatalf("cached download: %d", r.status)
		}
		if got := fedDownloads(t, a) - before; got != 1 {
			t.Fatalf("cached downloads went to a again (%d fetches)", got)
		}
	})

	t.Run("thumbnail of remote media", func(t *testing.T) {
		img := image.NewRGBA(image.Rect(0, 0, 200, 100))
		for x := range 200 {
			for y := range 100 {
				img.Set(x, y, color.RGBA{uint8(x), uint8(y), 128, 255})
			}
		}
		var buf bytes.Buffer
		if err := png.Encode(&buf, img); err != nil {
			t.Fatal(err)
		}
		uri := upload(t, alice, buf.Bytes(), "image/png", "pic.png")
		r := getMedia(t, b.URL, "/_matrix/client/v1/media/thumbnail/"+uri.Homeserver+"/"+uri.FileID+"?width=32&height=32&method=scale", bob.AccessToken)
		if r.status != http.StatusOK || r.header.Get("Content-Type") != "image/png" {
			t.Fatalf("thumbnail: %d %s %s", r.status, r.header.Get("Content-Type"), r.body)
		}
		th, err := png.Decode(bytes.NewReader(r.body))
		if err != nil {
			t.Fatalf("thumbnail is not a PNG: %v", err)
		}
		if sz := th.Bounds().Size(); sz.X != 32 || sz.Y != 16 {
			t.Fatalf("thumbnail is %v, want 32x16 (aspect kept)", sz)
		}
		// Made on b from the fetched original, and cached there.
		if !exists(blobOn(b, buf.Bytes())) {
			t.Fatal("b did not cache the original")
		}
		thumbs, _ := filepath.Glob(filepath.Join(b.DataDir, "media", "thumbnails", "*", "*", "*-32x32-scale"))
		if len(thumbs) == 0 {
			t.Fatal("b did not cache the thumbnail")
		}
	})

	t.Run("unknown media is 404", func(t *testing.T) {
		r := getMedia(t, b.URL, "/_matrix/client/v1/media/download/"+a.ServerName+"/NoSuchMediaHere123", bob.AccessToken)
		if r.status != http.StatusNotFound || r.errcode() != "M_NOT_FOUND" {
			t.Fatalf("unknown media: %d %s", r.status, r.body)
		}
		r = getMedia(t, b.URL, "/_matrix/client/v1/media/download/"+a.ServerName+"/bad%2Fid", bob.AccessToken)
		if r.status != http.StatusNotFound {
			t.Fatalf("malformed media ID: %d %s", r.status, r.body)
		}
	})

	t.Run("oversize remote media refused", func(t *testing.T) {
		huge := randomBytes(t, remoteMaxUpload+1)
		uri := upload(t, alice, huge, "application/octet-stream", "huge.bin") // a's limit is 50 MiB
		r := getMedia(t, b.URL, dl(uri), bob.AccessToken)
		if r.status != http.StatusBadGateway || r.errcode() != "M_TOO_LARGE" {
			t.Fatalf("oversize: %d %s", r.status, r.body)
		}
		if exists(blobOn(b, huge)) {
			t.Fatal("b kept the oversize file")
		}
	})

	var x, y, z []byte
	var xURI, yURI, zURI id.ContentURI
	t.Run("eviction by size budget", func(t *testing.T) {
		x, y, z = randomBytes(t, 30_000), randomBytes(t, 30_000), randomBytes(t, 30_000)
		xURI = upload(t, alice, x, "application/octet-stream", "x.bin")
		yURI = upload(t, alice, y, "application/octet-stream", "y.bin")
		zURI = upload(t, alice, z, "application/octet-stream", "z.bin")
		for _, u := range []id.ContentURI{xURI, yURI} {
			if r := getMedia(t, b.URL, dl(u), bob.AccessToken); r.status != http.StatusOK {
				t.Fatalf("download %s: %d %s", u, r.status, r.body)
			}
			time.Sleep(5 * time.Millisecond) // distinct fetch times: a strict LRU order
		}
		if !exists(blobOn(b, x)) || !exists(blobOn(b, y)) {
			t.Fatal("x and y (60 kB) should both fit the 70 kB budget")
		}
		if exists(blobOn(b, text)) {
			t.Fatal("older cached media should have been evicted to make room")
		}
		if r := getMedia(t, b.URL, dl(zURI), bob.AccessToken); r.status != http.StatusOK || !bytes.Equal(r.body, z) {
			t.Fatalf("download z: %d", r.status)
		}
		if exists(blobOn(b, x)) {
			t.Fatal("x, the least recently used, should have been evicted")
		}
		if !exists(blobOn(b, y)) || !exists(blobOn(b, z)) {
			t.Fatal("y and z should still be cached")
		}
		// Evicted media is fetched again on demand.
		if r := getMedia(t, b.URL, dl(xURI), bob.AccessToken); r.status != http.StatusOK || !bytes.Equal(r.body, x) {
			t.Fatalf("re-fetch x: %d", r.status)
		}
		if exists(blobOn(b, y)) || !exists(blobOn(b, z)) || !exists(blobOn(b, x)) {
			t.Fatal("after re-fetching x, y should be the one evicted")
		}
	})

	t.Run("served from cache with the origin down", func(t *testing.T) {
		a.Stop()
		r := getMedia(t, b.URL, dl(zURI), bob.AccessToken)
		if r.status != http.StatusOK || !bytes.Equal(r.body, z) {
			t.Fatalf("cached z with a stopped: %d %s", r.status, r.body)
		}
		// Evicted y cannot be fetched now: the origin is unreachable.
		r = getMedia(t, b.URL, dl(yURI), bob.AccessToken)
		if r.status != http.StatusBadGateway && r.status != http.StatusGatewayTimeout {
			t.Fatalf("unreachable origin: %d %s", r.status, r.body)
		}
		if r.errcode() != "M_UNKNOWN" {
			t.Fatalf("unreachable origin errcode %q", r.errcode())
		}
	})

	t.Run("cache survives a restart", func(t *testing.T) {
		b2 := b.Restart(t)
		r := getMedia(t, b2.URL, dl(zURI), bob.AccessToken)
		if r.status != http.StatusOK || !bytes.Equal(r.body, z) {
			t.Fatalf("cached z after restart: %d %s", r.status, r.body)
		}
	})
}

// TestRemoteMediaFromDendrite fetches media uploaded on Dendrite (another implementation of the
// authenticated federation media endpoint) through Hearth.
func TestRemoteMediaFromDendrite(t *testing.T) {
	ca := testserver.NewCA(t)
	d := startDendrite(t, ca)
	b := testserver.Start(t, testserver.Federated(t, ca))
	dave := d.register(t, "dave")
	bob := b.Register(t, "bob", false)

	data := randomBytes(t, 20_000)
	uri := upload(t, dave, data, "application/pdf", "report.pdf")
	r := getMedia(t, b.URL, dl(uri), bob.AccessToken)
	if r.status != http.StatusOK || !bytes.Equal(r.body, data) {
		t.Fatalf("download of Dendrite media via Hearth: %d %s", r.status, r.errcode())
	}
	if ct := r.header.Get("Content-Type"); ct != "application/pdf" {
		t.Errorf("Content-Type %q, want application/pdf", ct)
	}
	// Dendrite's content part carries no Content-Disposition, so the filename is the one the
	// client puts in the path; PDF is not an inline type.
	if cd := r.header.Get("Content-Disposition"); cd != "attachment" {
		t.Errorf("Content-Disposition %q, want attachment", cd)
	}
	r = getMedia(t, b.URL, dl(uri)+"/report.pdf", bob.AccessToken)
	if cd := r.header.Get("Content-Disposition"); r.status != http.StatusOK || cd != `attachment; filename="report.pdf"` {
		t.Errorf("download with a file name: %d, Content-Disposition %q", r.status, cd)
	}
	if !exists(blobOn(b, data)) {
		t.Fatal("Hearth did not cache Dendrite's media")
	}
	r = getMedia(t, b.URL, "/_matrix/client/v1/media/download/"+d.ServerName+"/doesNotExist42", bob.AccessToken)
	if r.status != http.StatusNotFound || r.errcode() != "M_NOT_FOUND" {
		t.Fatalf("unknown Dendrite media: %d %s", r.status, r.body)
	}
}

// BenchmarkRemoteMedia measures a 1 MiB remote download on loopback: fetched over federation
// (first request) and served from the cache (later requests).
func BenchmarkRemoteMedia(bm *testing.B) {
	ca := testserver.NewCA(bm)
	a := testserver.Start(bm, testserver.Federated(bm, ca))
	b := testserver.Start(bm, testserver.Federated(bm, ca))
	alice := a.Register(bm, "alice", false)
	bob := b.Register(bm, "bob", false)
	get := func(uri id.ContentURI) {
		r, err := fetchMedia(b.URL, dl(uri), bob.AccessToken)
		if err != nil || r.status != http.StatusOK || len(r.body) != 1<<20 {
			bm.Fatalf("download: %v %d", err, r.status)
		}
	}
	up := func() id.ContentURI {
		data := make([]byte, 1<<20)
		_, _ = rand.Read(data)
		resp, err := alice.UploadBytesWithName(context.Background(), data, "application/octet-stream", "f.bin")
		if err != nil {
			bm.Fatal(err)
		}
		return resp.ContentURI
	}
	bm.Run("fetch", func(bm *testing.B) {
		bm.SetBytes(1 << 20)
		for bm.Loop() {
			bm.StopTimer()
			uri := up()
			bm.StartTimer()
			get(uri)
		}
	})
	bm.Run("cached", func(bm *testing.B) {
		uri := up()
		get(uri)
		bm.SetBytes(1 << 20)
		for bm.Loop() {
			get(uri)
		}
	})
}
