package media

import (
	"mime"
	"net/url"
	"strings"
)

// ContentSecurityPolicy is sent with every media response: a document opened from the media
// repository can run nothing and load nothing.
const ContentSecurityPolicy = "sandbox; default-src 'none'; script-src 'none'; plugin-types application/pdf; style-src 'unsafe-inline'; media-src 'self'; object-src 'self';"

// inlineTypes are the media types served inline (the spec's "serving inline content" list).
// Everything else is served as an attachment (see ServeType).
var inlineTypes = map[string]bool{
	"text/css": true, "text/plain": true, "text/csv": true,
	"application/json": true, "application/ld+json": true,
	"image/jpeg": true, "image/gif": true, "image/png": true, "image/apng": true,
	"image/webp": true, "image/avif": true,
	"video/mp4": true, "video/webm": true, "video/ogg": true, "video/quicktime": true,
	"audio/mp4": true, "audio/webm": true, "audio/aac": true, "audio/mpeg": true, "audio/ogg": true,
	"audio/wave": true, "audio/wav": true, "audio/x-wav": true, "audio/x-pn-wav": true,
	"audio/flac": true, "audio/x-flac": true,
}

// activeTypes are documents a browser would execute or render with scripts; they are never
// served under their own type, even as attachments.
func activeType(mt string) bool {
	return strings.Contains(mt, "html") || strings.Contains(mt, "xml") || strings.Contains(mt, "javascript") ||
		strings.Contains(mt, "ecmascript") || mt == "image/svg+xml"
}

// ServeType returns the Content-Type to send for a stored one, and whether it may be shown
// inline. Safe types are inline; other types keep their stored type but are attachments
// (clients rely on getting back the type they uploaded); active document types and
// unparsable ones become application/octet-stream.
func ServeType(stored string) (string, bool) {
	mt, params, err := mime.ParseMediaType(stored)
	if err != nil || activeType(mt) {
		return "application/octet-stream", false
	}
	if !inlineTypes[mt] {
		return mt, false
	}
	if strings.HasPrefix(mt, "text/") {
		cs := params["charset"]
		if cs == "" {
			cs = "utf-8"
		}
		return mime.FormatMediaType(mt, map[string]string{"charset": cs}), true
	}
	return mt, true
}

// ContentDisposition builds the Content-Disposition header: inline or attachment, with the
// filename as RFC 6266 filename*=utf-8”... (plus a plain ASCII filename when it is one).
func ContentDisposition(inline bool, filename string) string {
	d := "attachment"
	if inline {
		d = "inline"
	}
	filename = cleanFilename(filename)
	if filename == "" {
		return d
	}
	if isPlainASCII(filename) {
		return d + `; filename="` + filename + `"`
	}
	return d + "; filename*=utf-8''" + strings.ReplaceAll(url.PathEscape(filename), "'", "%27")
}

func isPlainASCII(s string) bool {
	for _, c := range []byte(s) {
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == ';' || c == '%' {
			return false
		}
	}
	return true
}
