package keyring

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/labstack/echo/v4"
	"maunium.net/go/mautrix/crypto/canonicaljson"
	"maunium.net/go/mautrix/federation"
	"maunium.net/go/mautrix/federation/signutil"

	"github.com/hearth-home/hearth/matrix/merr"
)

// OriginKey is the echo context key under which Middleware stores the authenticated origin.
const OriginKey = "xmatrix.origin"

// Origin returns the server that signed the request, or "" outside Middleware.
func Origin(c echo.Context) string {
	s, _ := c.Get(OriginKey).(string)
	return s
}

// signedRequest is the JSON object a request signature covers (spec: Request Authentication).
type signedRequest struct {
	Method      string          `json:"method"`
	URI         string          `json:"uri"`
	Origin      string          `json:"origin"`
	Destination string          `json:"destination"`
	Content     json.RawMessage `json:"content,omitempty"`
}

// Middleware authenticates federation requests by their X-Matrix Authorization header(s).
//
// It reads the body (bounded by Config.MaxBodyBytes) and puts it back for the handler. A
// request may carry several X-Matrix headers (one per signing key); all must name the same
// origin and it is enough that one verifies. Failures are 401 M_UNAUTHORIZED (the
// destination check included, as the spec says), an origin refused by Config.AllowOrigin is
// 403 M_FORBIDDEN, a body that is not JSON is 400 M_NOT_JSON and an oversized one 413.
//
// mautrix's ServerAuth is not used: it reads one header, does not check that fetched keys
// belong to the server asked, signs over the re-encoded URL rather than the request target
// as sent, and renders errors itself instead of through Hearth's error handler.
func (k *Keyring) Middleware() echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			origin, err := k.authenticate(c)
			if err != nil {
				return err
			}
			c.Set(OriginKey, origin)
			return next(c)
		}
	}
}

func (k *Keyring) authenticate(c echo.Context) (string, error) {
	r := c.Request()
	var auths []federation.XMatrixAuth
	for _, h := range r.Header.Values("Authorization") {
		a, isXMatrix, err := parseXMatrix(h)
		if !isXMatrix {
			continue
		}
		if err != nil {
			return "", merr.Unauthorized("malformed X-Matrix Authorization header: %v", err)
		}
		auths = append(auths, a)
	}
	if len(auths) == 0 {
		return "", merr.Unauthorized("missing X-Matrix Authorization header")
	}
	origin := auths[0].Origin
	for _, a := range auths[1:] {
		if a.Origin != origin {
			return "", merr.Unauthorized("X-Matrix headers name different origins")
		}
	}
	if _, _, ok := federation.ParseServerName(origin); !ok {
		return "", merr.Unauthorized("origin %q is not a server name", origin)
	}
	if origin == k.cfg.ServerName {
		return "", merr.Unauthorized("origin is this server")
	}
	for _, a := range auths {
		if a.Destination != "" && a.Destination != k.cfg.ServerName {
			return "", merr.Unauthorized("request is for %q, not this server", a.Destination)
		}
	}
	body, err := k.readBody(r)
	if err != nil {
		return "", err
	}
	uri := r.RequestURI // the request target exactly as sent, which is what was signed
	if uri == "" {
		uri = r.URL.RequestURI()
	}
	var lastErr error
	for _, a := range auths {
		if err := k.checkRequestSignature(c, a, uri, body); err != nil {
			lastErr = err
			continue
		}
		if k.cfg.AllowOrigin != nil && !k.cfg.AllowOrigin(origin) {
			return "", merr.Forbidden("federation with %s is not allowed", origin)
		}
		return origin, nil
	}
	return "", merr.Unauthorized("%v", lastErr)
}

// readBody reads and restores the request body; a non-empty body must be JSON.
func (k *Keyring) readBody(r *http.Request) ([]byte, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	if r.ContentLength > k.cfg.MaxBodyBytes {
		return nil, merr.TooLarge("request body over %d bytes", k.cfg.MaxBodyBytes)
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, k.cfg.MaxBodyBytes+1))
	_ = r.Body.Close()
	if err != nil {
		return nil, merr.Unknown("read request body: %v", err)
	}
	if int64(len(body)) > k.cfg.MaxBodyBytes {
		return nil, merr.TooLarge("request body over %d bytes", k.cfg.MaxBodyBytes)
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	if len(body) == 0 {
		return nil, nil
	}
	if !json.Valid(body) {
		return nil, merr.NotJSON("request body is not JSON")
	}
	return body, nil
}

func (k *Keyring) checkRequestSignature(c echo.Context, a federation.XMatrixAuth, uri string, body []byte) error {
	pk, err := k.VerifyKey(c.Request().Context(), a.Origin, a.KeyID, k.now())
	if err != nil {
		return fmt.Errorf("key %s of %s: %v", a.KeyID, a.Origin, err)
	}
	// Old keys sign events only; a current key must still be valid (VerifyKey refetched it
	// if it was not).
	if pk.Old || pk.ValidUntil.Before(k.now()) {
		return fmt.Errorf("key %s of %s is not valid for requests now", a.KeyID, a.Origin)
	}
	msg, err := canonicaljson.Marshal(signedRequest{
		Method:      c.Request().Method,
		URI:         uri,
		Origin:      a.Origin,
		Destination: k.cfg.ServerName,
		Content:     body,
	})
	if err != nil {
		return fmt.Errorf("encode signed request: %v", err)
	}
	if err := signutil.VerifyJSONCanonical(pk.Key, a.Signature, msg); err != nil {
		return fmt.Errorf("signature of %s with %s does not verify", a.Origin, a.KeyID)
	}
	return nil
}
