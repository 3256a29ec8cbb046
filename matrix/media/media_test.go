package media

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/png"
	"net/netip"
	"os"
	"testing"

	"github.com/hearth-home/hearth/matrix/merr"
)

func TestPublicAddr(t *testing.T) {
	for addr, want := range map[string]bool{
		"8.8.8.8": true, "1.1.1.1": true, "2606:4700:4700::1111": true,
		"127.0.0.1": false, "::1": false, "10.1.2.3": false, "172.16.0.1": false, "192.168.1.10": false,
		"169.254.169.254": false, "fe80::1": false, "fc00::1": false, "fd12::1": false, "100.64.0.1": false,
		"0.0.0.0": false, "::": false, "224.0.0.1": false, "255.255.255.255": false, "::ffff:127.0.0.1": false,
		"::ffff:10.0.0.1": false, "192.0.2.1": false, "64:ff9b::7f00:1": false,
	} {
		if got := PublicAddr(netip.MustParseAddr(addr)); got != want {
			t.Errorf("PublicAddr(%s) = %v, want %v", addr, got, want)
		}
	}
}

func TestServeTypeAndDisposition(t *testing.T) {
	for in, want := range map[string]string{
		"image/png": "image/png", "text/plain": "text/plain; charset=utf-8",
		"text/plain; charset=iso-8859-1": "text/plain; charset=iso-8859-1",
		"text/html":                      "application/octet-stream", "image/svg+xml": "application/octet-stream",
		"application/javascript": "application/octet-stream", "": "application/octet-stream",
		"garbage;;": "application/octet-stream", "img/png": "img/png", "application/pdf": "application/pdf",
	} {
		if got, _ := ServeType(in); got != want {
			t.Errorf("ServeType(%q) = %q, want %q", in, got, want)
		}
	}
	for _, tc := range []struct {
		inline bool
		name   string
		want   string
	}{
		{true, "a.png", `inline; filename="a.png"`},
		{false, "a.html", `attachment; filename="a.html"`},
		{false, "", "attachment"},
		{true, "../../etc/passwd", `inline; filename="passwd"`},
		{true, `quote".txt`, `inline; filename*=utf-8''quote%22.txt`},
		{true, "☃.txt", "inline; filename*=utf-8''%E2%98%83.txt"},
		{true, "it's;x.txt", "inline; filename*=utf-8''it%27s%3Bx.txt"},
		{true, "a\r\nb", `inline; filename="ab"`},
	} {
		if got := ContentDisposition(tc.inline, tc.name); got != tc.want {
			t.Errorf("ContentDisposition(%v, %q) = %q, want %q", tc.inline, tc.name, got, tc.want)
		}
	}
}

func TestSnapSize(t *testing.T) {
	for _, tc := range [][4]int{{1, 1, 32, 32}, {32, 32, 32, 32}, {33, 10, 96, 96}, {96, 97, 320, 240}, {800, 600, 800, 600}, {5000, 5000, 800, 600}} {
		if w, h := snapSize(tc[0], tc[1]); w != tc[2] || h != tc[3] {
			t.Errorf("snapSize(%d, %d) = %d, %d", tc[0], tc[1], w, h)
		}
	}
}

func TestThumbnailWebP(t *testing.T) {
	f, err := os.Open("testdata/blue-purple-pink.lossy.webp") // 150x100
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, tc := range []struct {
		method string
		w, h   int
		want   image.Point
	}{
		{MethodScale, 96, 96, image.Pt(96, 64)},
		{MethodCrop, 96, 96, image.Pt(96, 96)},
		{MethodCrop, 320, 240, image.Pt(133, 100)}, // never enlarged: the largest 4:3 region
		{MethodScale, 800, 600, image.Pt(150, 100)},
	} {
		if _, err := f.Seek(0, 0); err != nil {
			t.Fatal(err)
		}
		b, err := makeThumbnail(f, "image/png", tc.w, tc.h, tc.method)
		if err != nil {
			t.Fatalf("%s %dx%d: %v", tc.method, tc.w, tc.h, err)
		}
		img, err := png.Decode(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		if got := img.Bounds().Size(); got != tc.want {
			t.Errorf("%s %dx%d: got %v, want %v", tc.method, tc.w, tc.h, got, tc.want)
		}
	}
}

func TestThumbnailRefusesHugeImages(t *testing.T) {
	// A PNG header claiming 100000x100000 pixels: refused before decoding.
	var buf bytes.Buffer
	if err := png.Encode(&buf, image.NewGray(image.Rect(0, 0, 1, 1))); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	// IHDR (type at 12..16, data at 16..29, CRC at 29..33): width and height are the first 8
	// bytes of its data.
	copy(b[16:24], []byte{0, 1, 0x86, 0xa0, 0, 1, 0x86, 0xa0})
	binary.BigEndian.PutUint32(b[29:33], crc32.ChecksumIEEE(b[12:29]))
	_, err := makeThumbnail(bytes.NewReader(b), "image/png", 32, 32, MethodCrop)
	if e, ok := merr.As(err); !ok || e.Code != "M_TOO_LARGE" {
		t.Fatalf("huge image: %v", err)
	}
}

func TestCleanContentType(t *testing.T) {
	for in, want := range map[string]string{
		"image/PNG": "image/png", "text/plain; charset=UTF-8": "text/plain; charset=UTF-8",
		"": "", "not a type": "",
	} {
		if got := cleanContentType(in); got != want {
			t.Errorf("cleanContentType(%q) = %q, want %q", in, got, want)
		}
	}
}
