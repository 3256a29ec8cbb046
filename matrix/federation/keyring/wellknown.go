package keyring

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"maunium.net/go/mautrix/federation"
)

// errNoDelegation covers every "invalid" .well-known answer (non-200, bad JSON, no m.server,
// an m.server that is not a server name): the spec treats them all as "skip to step 4".
var errNoDelegation = errors.New("no valid .well-known delegation")

// wellKnown fetches https://<host>/.well-known/matrix/server and returns m.server and when
// the answer stops being fresh.
func (r *Resolver) wellKnown(ctx context.Context, host string) (string, time.Time, error) {
	u := url.URL{Scheme: "https", Host: host, Path: "/.well-known/matrix/server"}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("well-known request: %w", err)
	}
	resp, err := r.wk.Do(req)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("well-known %s: %w", host, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", time.Time{}, fmt.Errorf("well-known %s: status %d: %w", host, resp.StatusCode, errNoDelegation)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, wellKnownMaxBytes+1))
	if err != nil {
		return "", time.Time{}, fmt.Errorf("well-known %s: read: %w", host, err)
	}
	if len(body) > wellKnownMaxBytes {
		return "", time.Time{}, fmt.Errorf("well-known %s: larger than %d bytes: %w", host, wellKnownMaxBytes, errNoDelegation)
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(body, &doc); err != nil {
		return "", time.Time{}, fmt.Errorf("well-known %s: bad JSON: %w", host, errNoDelegation)
	}
	var server string
	if err := json.Unmarshal(doc["m.server"], &server); err != nil || server == "" {
		return "", time.Time{}, fmt.Errorf("well-known %s: m.server missing or not a string: %w", host, errNoDelegation)
	}
	if _, _, ok := federation.ParseServerName(server); !ok {
		return "", time.Time{}, fmt.Errorf("well-known %s: m.server %q is not a server name: %w", host, server, errNoDelegation)
	}
	return server, r.now().Add(cacheLifetime(resp.Header, r.now())), nil
}

// cacheLifetime reads Cache-Control (max-age, minus Age) or Expires, clamped to
// [wellKnownMin, wellKnownMax]; without either it is the spec's 24 h default.
func cacheLifetime(h http.Header, now time.Time) time.Duration {
	ttl, ok := maxAge(h)
	if !ok {
		if exp := h.Get("Expires"); exp != "" {
			t, err := http.ParseTime(exp)
			if err != nil {
				ttl, ok = 0, true // an invalid Expires means "already expired" (RFC 9111 5.3)
			} else {
				base := now
				if d, err := http.ParseTime(h.Get("Date")); err == nil {
					base = d
				}
				ttl, ok = t.Sub(base), true
			}
		}
	}
	switch {
	case !ok:
		return wellKnownDefault
	case ttl < wellKnownMin:
		return wellKnownMin
	case ttl > wellKnownMax:
		return wellKnownMax
	}
	return ttl
}

// maxAge parses Cache-Control. no-store and no-cache count as max-age=0.
func maxAge(h http.Header) (time.Duration, bool) {
	cc := h.Values("Cache-Control")
	if len(cc) == 0 {
		return 0, false
	}
	for _, part := range strings.Split(strings.Join(cc, ","), ",") {
		name, val, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "no-store", "no-cache":
			return 0, true
		case "max-age":
			secs, err := strconv.ParseInt(strings.Trim(strings.TrimSpace(val), `"`), 10, 64)
			if err != nil || secs < 0 {
				continue
			}
			age, _ := strconv.ParseInt(h.Get("Age"), 10, 64)
			if age > 0 {
				secs -= age
			}
			return time.Duration(secs) * time.Second, true
		}
	}
	return 0, false
}
