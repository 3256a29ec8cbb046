package media

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/netip"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"maunium.net/go/mautrix"
	mfed "maunium.net/go/mautrix/federation"

	"github.com/hearth-home/hearth/matrix/merr"
)

// FederationSource fetches remote media over federation with the appliance's signed client:
// the authenticated GET /_matrix/federation/v1/media/download/{mediaId} (a multipart/mixed
// answer whose second part is the content or a Location to fetch it from), and only when the
// origin does not know that endpoint (see legacyFallback) the legacy unauthenticated
// GET /_matrix/media/v3/download/{serverName}/{mediaId} on the origin.
//
// mautrix's own Client.DownloadMedia is not used: it drops request errors (a 404 and an
// unreachable origin look alike) and has no size limit on what it reads.
type FederationSource struct {
	client *mfed.Client
	// redirects follows Location parts. Not the federation client's ExtHTTP: Hearth's
	// federation dialer allows private addresses (LAN neighbours), and a redirect is a URL
	// another server chose, so it gets the URL previews' guard instead.
	redirects *http.Client
}

// errRedirectBlocked refuses a redirect to a non-public address.
var errRedirectBlocked = errors.New("media: redirect to a non-public address refused")

// Redirect fetch bounds.
const (
	redirectMaxHops       = 5
	redirectHeaderTimeout = 30 * time.Second
)

// NewFederationSource wraps the federation client. roots verify the TLS certificates of
// redirect targets (nil: the system roots); allowPrivate lets redirects reach loopback,
// private and link-local addresses (as media.url_preview_allow_private does for previews).
func NewFederationSource(c *mfed.Client, roots *x509.CertPool, allowPrivate bool) *FederationSource {
	dialer := &net.Dialer{Timeout: 10 * time.Second, Control: func(_, address string, _ syscall.RawConn) error {
		if allowPrivate {
			return nil
		}
		ap, err := netip.ParseAddrPort(address)
		if err != nil || !PublicAddr(ap.Addr()) {
			return errRedirectBlocked
		}
		return nil
	}}
	tr := &http.Transport{
		Proxy:                 nil, // the dialer's check must see the real address
		DialContext:           dialer.DialContext,
		TLSClientConfig:       &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: redirectHeaderTimeout,
		MaxIdleConns:          2,
		IdleConnTimeout:       30 * time.Second,
	}
	redirects := &http.Client{Transport: tr, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if len(via) >= redirectMaxHops {
			return errors.New("too many redirects")
		}
		if req.URL.Scheme != "https" {
			return errors.New("redirect to a non-https URL")
		}
		return nil
	}}
	return &FederationSource{client: c, redirects: redirects}
}

// maxMetadataBytes bounds the JSON metadata part (currently always an empty object).
const maxMetadataBytes = 64 << 10

// FetchRemote implements RemoteSource.
func (f *FederationSource) FetchRemote(ctx context.Context, origin, mediaID string, wait time.Duration, maxBytes int64) (*RemoteContent, error) {
	q := url.Values{"timeout_ms": {strconv.FormatInt(wait.Milliseconds(), 10)}}
	_, resp, err := f.client.MakeFullRequest(ctx, mfed.RequestParams{
		ServerName: origin, Method: http.MethodGet, Path: mfed.URLPath{"v1", "media", "download", mediaID},
		Query: q, Authenticate: true, DontReadBody: true,
	})
	if err != nil {
		if legacyFallback(httpFailure(err)) {
			return f.fetchLegacy(ctx, origin, mediaID, wait)
		}
		return nil, originError(err)
	}
	content, err := f.readMultipart(ctx, resp, maxBytes)
	if err != nil {
		_ = resp.Body.Close()
		return nil, err
	}
	return content, nil
}

// readMultipart reads the metadata part and returns the content part as the body (resp.Body
// is closed with it), following a Location part when the origin sends one.
func (f *FederationSource) readMultipart(ctx context.Context, resp *http.Response, maxBytes int64) (*RemoteContent, error) {
	mt, params, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/mixed" || params["boundary"] == "" {
		return nil, fmt.Errorf("media: origin answered %q, not multipart/mixed", resp.Header.Get("Content-Type"))
	}
	mr := multipart.NewReader(resp.Body, params["boundary"])
	meta, err := mr.NextPart()
	if err != nil {
		return nil, fmt.Errorf("media: read metadata part: %w", err)
	}
	if mt, _, _ := mime.ParseMediaType(meta.Header.Get("Content-Type")); mt != "application/json" {
		return nil, fmt.Errorf("media: metadata part is %q, not JSON", meta.Header.Get("Content-Type"))
	}
	var m map[string]any
	if err := json.NewDecoder(io.LimitReader(meta, maxMetadataBytes)).Decode(&m); err != nil {
		return nil, fmt.Errorf("media: decode metadata part: %w", err)
	}
	part, err := mr.NextPart()
	if err != nil {
		return nil, fmt.Errorf("media: read content part: %w", err)
	}
	if loc := part.Header.Get("Location"); loc != "" {
		_ = resp.Body.Close()
		return f.fetchRedirect(ctx, loc, maxBytes)
	}
	return contentFrom(part.Header, &partBody{part: part, body: resp.Body}), nil
}

// fetchRedirect follows a Location part: https only, and (unless allowed) public addresses
// only, so an origin cannot aim this server at its own LAN.
func (f *FederationSource) fetchRedirect(ctx context.Context, loc string, maxBytes int64) (*RemoteContent, error) {
	u, err := url.Parse(loc)
	if err != nil || u.Scheme != "https" {
		return nil, fmt.Errorf("media: refusing redirect to %q (https only)", loc)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("media: redirect request: %w", err)
	}
	resp, err := f.redirects.Do(req)
	if err != nil {
		return nil, fmt.Errorf("media: follow redirect: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		_ = resp.Body.Close()
		if resp.StatusCode == http.StatusNotFound {
			return nil, errNotFound()
		}
		return nil, fmt.Errorf("media: redirect target answered %d", resp.StatusCode)
	}
	if resp.ContentLength > maxBytes {
		_ = resp.Body.Close()
		return nil, errRemoteTooLarge(maxBytes)
	}
	return contentFrom(textproto.MIMEHeader(resp.Header), resp.Body), nil
}

// legacyPath is a full URL path (mautrix's URLPath would prefix /_matrix/federation).
type legacyPath []any

func (p legacyPath) FullPath() []any { return p }

// fetchLegacy uses the deprecated unauthenticated download on the origin; allow_remote=false
// stops the origin from asking anyone else (no loops between servers).
func (f *FederationSource) fetchLegacy(ctx context.Context, origin, mediaID string, wait time.Duration) (*RemoteContent, error) {
	q := url.Values{"allow_remote": {"false"}, "timeout_ms": {strconv.FormatInt(wait.Milliseconds(), 10)}}
	_, resp, err := f.client.MakeFullRequest(ctx, mfed.RequestParams{
		ServerName: origin, Method: http.MethodGet, Path: legacyPath{"_matrix", "media", "v3", "download", origin, mediaID},
		Query: q, DontReadBody: true,
	})
	if err != nil {
		return nil, originError(err)
	}
	return contentFrom(textproto.MIMEHeader(resp.Header), resp.Body), nil
}

// contentFrom reads type, filename and length from a part's or response's headers.
func contentFrom(h textproto.MIMEHeader, body io.ReadCloser) *RemoteContent {
	c := &RemoteContent{ContentType: h.Get("Content-Type"), Length: -1, Body: body}
	if _, params, err := mime.ParseMediaType(h.Get("Content-Disposition")); err == nil {
		c.Filename = params["filename"] // mime decodes the RFC 2231 filename* form into this too
	}
	if n, err := strconv.ParseInt(h.Get("Content-Length"), 10, 64); err == nil && n >= 0 {
		c.Length = n
	}
	return c
}

// partBody reads one multipart part and closes the response under it.
type partBody struct {
	part *multipart.Part
	body io.ReadCloser
}

func (p *partBody) Read(b []byte) (int, error) { return p.part.Read(b) }
func (p *partBody) Close() error               { return cmp.Or(p.part.Close(), p.body.Close()) }

// httpFailure extracts the status and errcode of an error answer (0, "" for transport errors).
func httpFailure(err error) (int, string) {
	var he mautrix.HTTPError
	if !errors.As(err, &he) || he.Response == nil {
		return 0, ""
	}
	code := ""
	if he.RespError != nil {
		code = he.RespError.ErrCode
	}
	return he.Response.StatusCode, code
}

// legacyFallback reports whether an answer of the federation media endpoint means "not this
// endpoint" rather than "not this media": 404 M_UNRECOGNIZED and 405 from servers without it,
// and 400 or 501 from servers (older Synapse, Complement's mock) whose routing takes the path
// for something else. An answer with a Matrix error about the media itself (M_NOT_FOUND,
// M_NOT_YET_UPLOADED, M_TOO_LARGE) is final: the legacy endpoint would only repeat it.
func legacyFallback(status int, code string) bool {
	switch status {
	case http.StatusNotFound:
		return code == "M_UNRECOGNIZED"
	case http.StatusMethodNotAllowed, http.StatusNotImplemented:
		return true
	case http.StatusBadRequest:
		return code == "" || code == "M_UNRECOGNIZED"
	}
	return false
}

// originError maps the origin's answer to ours: its 404 is our 404, its content still being
// uploaded our 504 M_NOT_YET_UPLOADED, its too large our 502 M_TOO_LARGE; any other failure,
// answered or not, means the media cannot be had from there now (see remoteError).
func originError(err error) error {
	status, code := httpFailure(err)
	switch {
	case status == 0:
		return err // transport failure: remoteError picks 502 or 504
	case status == http.StatusNotFound && (code == "M_NOT_FOUND" || code == ""):
		return errNotFound()
	case code == "M_NOT_YET_UPLOADED":
		return errNotYetUploaded()
	case code == "M_TOO_LARGE":
		return &merr.Error{Status: http.StatusBadGateway, Code: "M_TOO_LARGE", Message: "remote media is too large for its origin to serve"}
	}
	e := remoteUnavailable(fmt.Sprintf("origin answered %d %s", status, strings.TrimSpace(code)))
	e.Cause = err
	return e
}
