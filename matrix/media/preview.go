package media

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/net/html"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/merr"
)

// URL previews: fetch a page (or image), read its OpenGraph tags, store its image as local
// media. Results are cached in memory for an hour (bounded number of entries).

const (
	previewTimeout     = 10 * time.Second
	previewMaxHTML     = 1 << 20
	previewMaxImage    = 10 << 20
	previewCacheTTL    = time.Hour
	previewCacheMax    = 256
	previewMaxRedirect = 5
	previewMaxURLLen   = 2048
)

// errBlockedAddress is what the dialer answers for an address URL previews may not reach.
var errBlockedAddress = errors.New("media: address is not allowed for URL previews")

type previewer struct {
	s      *Service
	client *http.Client

	mu    sync.Mutex
	cache map[string]previewEntry
}

type previewEntry struct {
	at   time.Time
	data map[string]any
}

func newPreviewer(s *Service, allowPrivate bool) *previewer {
	dialer := &net.Dialer{Timeout: previewTimeout, Control: func(network, address string, _ syscall.RawConn) error {
		if allowPrivate {
			return nil
		}
		ap, err := netip.ParseAddrPort(address)
		if err != nil || !PublicAddr(ap.Addr()) {
			return errBlockedAddress
		}
		return nil
	}}
	tr := &http.Transport{
		Proxy:                 nil, // never through a proxy: the dialer's check must see the real address
		DialContext:           dialer.DialContext,
		TLSHandshakeTimeout:   previewTimeout,
		ResponseHeaderTimeout: previewTimeout,
		MaxIdleConns:          4,
		IdleConnTimeout:       30 * time.Second,
	}
	c := &http.Client{Transport: tr, Timeout: 2 * previewTimeout, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if len(via) >= previewMaxRedirect {
			return errors.New("too many redirects")
		}
		if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
			return errors.New("redirect to a non-HTTP URL")
		}
		return nil
	}}
	return &previewer{s: s, client: c, cache: map[string]previewEntry{}}
}

// PublicAddr says whether URL previews may connect to ip: not loopback, private (RFC 1918,
// unique local), link-local, CGNAT, multicast, unspecified, documentation or other special
// ranges.
func PublicAddr(ip netip.Addr) bool {
	ip = ip.Unmap()
	if !ip.IsValid() || ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() ||
		ip.IsLinkLocalMulticast() || ip.IsInterfaceLocalMulticast() || ip.IsMulticast() || ip.IsUnspecified() {
		return false
	}
	for _, p := range blockedPrefixes {
		if p.Contains(ip) {
			return false
		}
	}
	return true
}

var blockedPrefixes = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("192.0.2.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("198.51.100.0/24"),
	netip.MustParsePrefix("203.0.113.0/24"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("64:ff9b::/96"),
	netip.MustParsePrefix("64:ff9b:1::/48"),
	netip.MustParsePrefix("100::/64"),
	netip.MustParsePrefix("2001::/23"),
	netip.MustParsePrefix("2001:db8::/32"),
	netip.MustParsePrefix("2002::/16"),
}

// PreviewURL returns the OpenGraph data of a URL. Addresses that are not public answer
// 403 M_FORBIDDEN unless the configuration allows private ones; unreachable or failing pages
// answer 502.
func (s *Service) PreviewURL(ctx context.Context, uploader id.UserID, rawURL string) (map[string]any, error) {
	if !s.opts.URLPreview {
		return nil, merr.Unrecognized("URL previews are disabled on this server")
	}
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || len(rawURL) > previewMaxURLLen {
		return nil, merr.InvalidParam("url must be an absolute http or https URL")
	}
	u.Fragment = ""
	key := u.String()
	p := s.preview
	if d, ok := p.cached(key); ok {
		return d, nil
	}
	data, err := p.fetch(ctx, uploader, u)
	if err != nil {
		return nil, err
	}
	p.store(key, data)
	return data, nil
}

func (p *previewer) cached(key string) (map[string]any, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	e, ok := p.cache[key]
	if !ok || time.Since(e.at) > previewCacheTTL {
		return nil, false
	}
	return e.data, true
}

func (p *previewer) store(key string, d map[string]any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.cache) >= previewCacheMax {
		var oldK string
		var oldT time.Time
		for k, e := range p.cache {
			if oldK == "" || e.at.Before(oldT) {
				oldK, oldT = k, e.at
			}
		}
		delete(p.cache, oldK)
	}
	p.cache[key] = previewEntry{at: time.Now(), data: d}
}

// get fetches u and returns its content type and at most limit bytes of its body.
func (p *previewer) get(ctx context.Context, u string, limit int64) (string, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*previewTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", nil, merr.InvalidParam("bad url: %v", err)
	}
	req.Header.Set("User-Agent", "Hearth URL preview (Matrix homeserver)")
	req.Header.Set("Accept", "text/html,application/xhtml+xml,image/*;q=0.9,*/*;q=0.5")
	resp, err := p.client.Do(req)
	if err != nil {
		if errors.Is(err, errBlockedAddress) {
			return "", nil, merr.Forbidden("URL previews of this address are not allowed")
		}
		return "", nil, fetchError("could not fetch the URL: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return "", nil, fetchError("the URL answered %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit))
	if err != nil {
		return "", nil, fetchError("could not read the URL: %v", err)
	}
	return resp.Header.Get("Content-Type"), body, nil
}

func fetchError(format string, a ...any) *merr.Error {
	return &merr.Error{Status: http.StatusBadGateway, Code: "M_UNKNOWN", Message: fmt.Sprintf(format, a...)}
}

func (p *previewer) fetch(ctx context.Context, uploader id.UserID, u *url.URL) (map[string]any, error) {
	ct, body, err := p.get(ctx, u.String(), previewMaxImage)
	if err != nil {
		return nil, err
	}
	mt, _, _ := mime.ParseMediaType(ct)
	if strings.HasPrefix(mt, "image/") {
		out := map[string]any{}
		p.attachImage(ctx, uploader, out, mt, body, u)
		return out, nil
	}
	if mt != "text/html" && mt != "application/xhtml+xml" {
		return map[string]any{}, nil
	}
	if len(body) > previewMaxHTML {
		body = body[:previewMaxHTML]
	}
	og := parseOpenGraph(body)
	if _, ok := og["og:url"]; !ok {
		og["og:url"] = u.String()
	}
	if img, ok := og["og:image"].(string); ok {
		delete(og, "og:image")
		if iu, err := u.Parse(img); err == nil && (iu.Scheme == "http" || iu.Scheme == "https") {
			ict, ib, err := p.get(ctx, iu.String(), previewMaxImage)
			imt, _, _ := mime.ParseMediaType(ict)
			if err == nil && strings.HasPrefix(imt, "image/") {
				p.attachImage(ctx, uploader, og, imt, ib, iu)
			}
		}
	}
	return og, nil
}

// attachImage stores an image as local media and adds og:image and matrix:image:size.
func (p *previewer) attachImage(ctx context.Context, uploader id.UserID, out map[string]any, mt string, b []byte, u *url.URL) {
	uri, err := p.s.Upload(ctx, uploader, mt, "", bytes.NewReader(b))
	if err != nil {
		p.s.log.Debug("url preview image", "url", u.String(), "err", err)
		return
	}
	out["og:image"] = uri.String()
	out["og:image:type"] = mt
	out["matrix:image:size"] = len(b)
	if dec, _, err := sniff(bytes.NewReader(b)); err == nil {
		if cfg, err := dec.config(bytes.NewReader(b)); err == nil {
			out["og:image:width"], out["og:image:height"] = cfg.Width, cfg.Height
		}
	}
}

// parseOpenGraph reads <meta property="og:*"> (and name= variants), falling back to <title>
// and the description meta for og:title and og:description.
func parseOpenGraph(body []byte) map[string]any {
	out := map[string]any{}
	var title, desc string
	z := html.NewTokenizer(bytes.NewReader(body))
	inTitle := false
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			if _, ok := out["og:title"]; !ok && title != "" {
				out["og:title"] = title
			}
			if _, ok := out["og:description"]; !ok && desc != "" {
				out["og:description"] = desc
			}
			return out
		case html.StartTagToken, html.SelfClosingTagToken:
			t := z.Token()
			switch t.Data {
			case "title":
				inTitle = tt == html.StartTagToken
			case "meta":
				var prop, content string
				hasContent := false
				for _, a := range t.Attr {
					switch strings.ToLower(a.Key) {
					case "property", "name":
						if prop == "" || strings.HasPrefix(strings.ToLower(a.Val), "og:") {
							prop = strings.ToLower(a.Val)
						}
					case "content":
						content, hasContent = a.Val, true
					}
				}
				if !hasContent {
					continue
				}
				switch {
				case strings.HasPrefix(prop, "og:"):
					if _, dup := out[prop]; !dup && len(out) < 64 {
						out[prop] = truncate(content, 1000)
					}
				case prop == "description":
					desc = truncate(content, 1000)
				}
			}
		case html.TextToken:
			if inTitle && title == "" {
				title = truncate(strings.TrimSpace(string(z.Text())), 300)
			}
		case html.EndTagToken:
			if t := z.Token(); t.Data == "title" {
				inTitle = false
			}
		}
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "")
}
