package media

import (
	"bytes"
	"context"
	"image"
	"image/draw"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
	"mime"
	"os"
	"strings"
	"time"

	xdraw "golang.org/x/image/draw"
	"golang.org/x/image/webp"

	"github.com/hearth-home/hearth/matrix/merr"
)

// Thumbnail methods.
const (
	MethodScale = "scale"
	MethodCrop  = "crop"
)

// thumbSizes are the sizes thumbnails are made in (Synapse's defaults). A request gets the
// smallest one at least as large as asked (the spec allows a larger thumbnail), so every media
// has at most len(thumbSizes) thumbnails per method on disk.
var thumbSizes = [][2]int{{32, 32}, {96, 96}, {320, 240}, {640, 480}, {800, 600}}

// maxThumbSourcePixels bounds the images decoded for thumbnails (a decompression bomb of a
// few kilobytes could otherwise claim gigabytes of memory on a small board): at most about
// 100 MB for an RGBA decode, and at most maxThumbJobs decodes run at once.
const (
	maxThumbSourcePixels = 24 << 20
	maxThumbJobs         = 2
)

// Thumb is a generated (or cached) thumbnail.
type Thumb struct {
	ContentType string
	Data        []byte
}

// Thumbnail returns a thumbnail of local media of at least w×h (method scale or crop).
// Sources other than JPEG, PNG, GIF and WebP answer 400 M_UNKNOWN.
func (s *Service) Thumbnail(ctx context.Context, serverName, mediaID string, w, h int, method string, wait time.Duration) (*Thumb, error) {
	if w <= 0 || h <= 0 {
		return nil, merr.InvalidParam("width and height must be positive integers")
	}
	if method == "" {
		method = MethodScale
	}
	if method != MethodScale && method != MethodCrop {
		return nil, merr.InvalidParam("method must be scale or crop")
	}
	rec, err := s.Lookup(ctx, serverName, mediaID, wait)
	if err != nil {
		return nil, err
	}
	mt, _, _ := mime.ParseMediaType(rec.ContentType)
	out := outputType(mt)
	if out == "" {
		return nil, merr.Unknown("cannot generate thumbnails for content of type %q", rec.ContentType)
	}
	tw, th := snapSize(w, h)
	path := s.thumbPath(rec.Hash, tw, th, method)
	if b, err := os.ReadFile(path); err == nil {
		return &Thumb{ContentType: out, Data: b}, nil
	}
	f, err := os.Open(s.blobPath(rec.Hash))
	if err != nil {
		return nil, errNotFound()
	}
	defer f.Close()
	select { // bounded concurrency: each decode may hold a large image in memory
	case s.thumbSem <- struct{}{}:
		defer func() { <-s.thumbSem }()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	b, err := makeThumbnail(f, out, tw, th, method)
	if err != nil {
		return nil, err
	}
	if err := s.writeFileAtomic(path, b); err != nil {
		s.log.Warn("cache thumbnail", "media_id", mediaID, "err", err)
	}
	return &Thumb{ContentType: out, Data: b}, nil
}

// outputType is the thumbnail type for a source type: JPEG stays JPEG, the others (which may
// have transparency) become PNG. "" means the type cannot be thumbnailed.
func outputType(src string) string {
	switch src {
	case "image/jpeg", "image/jpg":
		return "image/jpeg"
	case "image/png", "image/gif", "image/webp", "image/apng":
		return "image/png"
	}
	return ""
}

func snapSize(w, h int) (int, int) {
	for _, sz := range thumbSizes {
		if sz[0] >= w && sz[1] >= h {
			return sz[0], sz[1]
		}
	}
	last := thumbSizes[len(thumbSizes)-1]
	return last[0], last[1]
}

// makeThumbnail decodes src (the first frame of a GIF) and scales or crops it to w×h.
// Scale fits the image inside w×h keeping its aspect ratio; crop fills w×h and cuts off the
// overflow around the centre. Images are never enlarged.
func makeThumbnail(src io.ReadSeeker, outType string, w, h int, method string) ([]byte, error) {
	dec, format, err := sniff(src)
	if err != nil {
		return nil, err
	}
	cfg, err := dec.config(src)
	if err != nil {
		return nil, merr.Unknown("cannot generate thumbnails for this content: %v", err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return nil, merr.Unknown("cannot generate thumbnails for an empty image")
	}
	if int64(cfg.Width)*int64(cfg.Height) > maxThumbSourcePixels {
		return nil, merr.TooLarge("image is too large to thumbnail")
	}
	if _, err := src.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	img, err := dec.decode(src)
	if err != nil {
		return nil, merr.Unknown("cannot decode %s image: %v", format, err)
	}
	b := img.Bounds()
	sw, sh := b.Dx(), b.Dy()
	var dst *image.RGBA
	var srcRect image.Rectangle
	switch method {
	case MethodCrop:
		// The largest centred region of the source with the target's aspect ratio.
		cw, ch := sw, sw*h/w
		if ch > sh {
			cw, ch = sh*w/h, sh
		}
		cw, ch = max(cw, 1), max(ch, 1)
		x0, y0 := b.Min.X+(sw-cw)/2, b.Min.Y+(sh-ch)/2
		srcRect = image.Rect(x0, y0, x0+cw, y0+ch)
		dw, dh := w, h
		if cw < w { // never enlarge
			dw, dh = cw, ch
		}
		dst = image.NewRGBA(image.Rect(0, 0, dw, dh))
	default:
		srcRect = b
		dw, dh := sw, sh
		if sw > w || sh > h {
			if sw*h > sh*w { // wider than the box
				dw, dh = w, max(sh*w/sw, 1)
			} else {
				dw, dh = max(sw*h/sh, 1), h
			}
		}
		dst = image.NewRGBA(image.Rect(0, 0, dw, dh))
	}
	if outType == "image/jpeg" { // no alpha: start from white rather than black
		draw.Draw(dst, dst.Bounds(), image.White, image.Point{}, draw.Src)
	}
	var scaler xdraw.Interpolator = xdraw.CatmullRom
	if srcRect.Dx()*srcRect.Dy() > 4<<20 { // big sources: the cheaper kernel
		scaler = xdraw.ApproxBiLinear
	}
	scaler.Scale(dst, dst.Bounds(), img, srcRect, xdraw.Over, nil)
	var buf bytes.Buffer
	if outType == "image/jpeg" {
		err = jpeg.Encode(&buf, dst, &jpeg.Options{Quality: 85})
	} else {
		err = (&png.Encoder{CompressionLevel: png.BestSpeed}).Encode(&buf, dst)
	}
	if err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

type decoder struct {
	decode func(io.Reader) (image.Image, error)
	config func(io.Reader) (image.Config, error)
}

// sniff picks the decoder by the file's magic bytes (not the stored content type, which the
// uploader chose). The global image.RegisterFormat table is not used: no init side effects.
func sniff(r io.ReadSeeker) (decoder, string, error) {
	var head [16]byte
	n, _ := io.ReadFull(r, head[:])
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return decoder{}, "", err
	}
	h := string(head[:n])
	switch {
	case strings.HasPrefix(h, "\xff\xd8"):
		return decoder{jpeg.Decode, jpeg.DecodeConfig}, "jpeg", nil
	case strings.HasPrefix(h, "\x89PNG\r\n\x1a\n"):
		return decoder{png.Decode, png.DecodeConfig}, "png", nil
	case strings.HasPrefix(h, "GIF87a"), strings.HasPrefix(h, "GIF89a"):
		return decoder{gif.Decode, gif.DecodeConfig}, "gif", nil // first frame
	case n >= 15 && h[0:4] == "RIFF" && h[8:15] == "WEBPVP8":
		return decoder{webp.Decode, webp.DecodeConfig}, "webp", nil
	}
	return decoder{}, "", merr.Unknown("cannot generate thumbnails for this content")
}
