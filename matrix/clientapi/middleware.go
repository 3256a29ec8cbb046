package clientapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/hearth-home/hearth/matrix/accounts"
	"github.com/hearth-home/hearth/matrix/merr"
)

const sessionKey = "hearth.session"

// recoverer turns a panic into a 500 with M_UNKNOWN and a log line, never a dropped connection.
func (a *API) recoverer(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		defer func() {
			if r := recover(); r != nil {
				a.log.Error("panic in handler", "path", c.Request().URL.Path, "panic", r)
				err = merr.Internal("internal server error")
			}
		}()
		return next(c)
	}
}

// cors answers preflights and marks every response as the spec asks.
func (a *API) cors(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("Access-Control-Allow-Origin", "*")
		h.Set("Access-Control-Allow-Methods", "GET, POST, PUT, DELETE, OPTIONS")
		h.Set("Access-Control-Allow-Headers", "X-Requested-With, Content-Type, Authorization")
		if c.Request().Method == http.MethodOptions {
			return c.NoContent(http.StatusOK)
		}
		return next(c)
	}
}

// bodyLimit caps request bodies (media has its own limit later).
func (a *API) bodyLimit(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if strings.HasPrefix(r.URL.Path, "/_matrix/media/") { // uploads: media.max_upload_bytes (media.go)
			return next(c)
		}
		if r.ContentLength > a.opts.MaxBodyBytes {
			return merr.TooLarge("request body is larger than %d bytes", a.opts.MaxBodyBytes)
		}
		r.Body = http.MaxBytesReader(c.Response(), r.Body, a.opts.MaxBodyBytes)
		return next(c)
	}
}

// UnescapeParams decodes percent-encoded path parameters: clients encode the sigils and colons
// of IDs ("%40alice%3Aexample.org") and event IDs of room version 3 and later may hold "/"
// (sent as %2F). When the URL has a raw form that differs from its decoded one, echo routes on
// the raw path and hands parameters out still encoded; otherwise they are already decoded and
// must not be decoded twice. The federation API mounts it too (on its own echo in tests, beside
// this one in the appliance), so a request is decoded once and marked.
func UnescapeParams(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if c.Request().URL.RawPath == "" || c.Get(paramsUnescaped) != nil {
			return next(c)
		}
		c.Set(paramsUnescaped, true)
		vals := c.ParamValues()
		for i, v := range vals {
			if strings.Contains(v, "%") {
				u, err := url.PathUnescape(v)
				if err != nil {
					return merr.InvalidParam("malformed path parameter %q", v)
				}
				vals[i] = u
			}
		}
		c.SetParamValues(vals...)
		return next(c)
	}
}

// paramsUnescaped marks a request whose path parameters UnescapeParams decoded.
const paramsUnescaped = "hearth.params_unescaped"

// accessToken reads the token from the Authorization header or the access_token parameter.
func accessToken(c echo.Context) string {
	if h := c.Request().Header.Get("Authorization"); strings.HasPrefix(h, "Bearer ") {
		return strings.TrimSpace(h[len("Bearer "):])
	}
	return c.QueryParam("access_token")
}

// auth requires a valid access token.
func (a *API) auth(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		tok := accessToken(c)
		if tok == "" {
			return merr.MissingToken("missing access token")
		}
		sess, err := a.appServiceSession(c, tok) // appservice.go: nil, nil unless tok is an as_token
		if sess == nil && err == nil {
			sess, err = a.accounts.Authenticate(c.Request().Context(), tok)
		}
		if err != nil {
			return err
		}
		c.Set(sessionKey, sess)
		a.accounts.Touch(c.Request().Context(), sess, c.RealIP())
		return next(c)
	}
}

func session(c echo.Context) *accounts.Session {
	s, _ := c.Get(sessionKey).(*accounts.Session)
	return s
}

// readJSON decodes the request body into v with the spec's errors: M_NOT_JSON when it is not
// JSON at all, M_BAD_JSON when it is JSON of the wrong shape, M_TOO_LARGE past the body limit.
func readJSON(c echo.Context, v any) error {
	body, err := io.ReadAll(c.Request().Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return merr.TooLarge("request body too large")
		}
		return merr.Unknown("could not read request body")
	}
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	}
	if !json.Valid(body) || !utf8.Valid(body) {
		return merr.NotJSON("request body is not valid JSON")
	}
	if err := json.Unmarshal(body, v); err != nil {
		var ute *json.UnmarshalTypeError
		if errors.As(err, &ute) {
			return merr.BadJSON("field %q has the wrong type: expected %s", ute.Field, ute.Type)
		}
		return merr.BadJSON("malformed request: %v", err)
	}
	return nil
}

// readObject reads a body that must be a JSON object (event content, account data).
func readObject(c echo.Context) (json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := readJSON(c, &m); err != nil {
		return nil, err
	}
	if m == nil {
		return nil, merr.BadJSON("request body must be a JSON object")
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("re-encode body: %w", err)
	}
	return b, nil
}

// limiter is a per-key token bucket. Memory is bounded by pruning idle buckets.
type limiter struct {
	mu      sync.Mutex
	rate    float64
	burst   float64
	buckets map[string]*bucket
	lastGC  time.Time
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newLimiter(rate float64, burst int) *limiter {
	return &limiter{rate: rate, burst: float64(burst), buckets: map[string]*bucket{}}
}

// allow takes a token for key, or says how long to wait.
func (l *limiter) allow(key string, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.lastGC) > time.Minute {
		for k, b := range l.buckets {
			if now.Sub(b.last) > 10*time.Minute {
				delete(l.buckets, k)
			}
		}
		l.lastGC = now
	}
	b, ok := l.buckets[key]
	if !ok {
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[key] = b
	}
	b.tokens = min(l.burst, b.tokens+now.Sub(b.last).Seconds()*l.rate)
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) / l.rate * float64(time.Second))
}

// rateLimited applies the limiter to login, register and send, keyed by user or client IP.
func (a *API) rateLimited(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if !a.opts.RateLimit {
			return next(c)
		}
		key := c.RealIP()
		if s := session(c); s != nil {
			key = s.User.String()
		}
		if ok, wait := a.limiter.allow(key, time.Now()); !ok {
			return merr.LimitExceeded("too many requests").With("retry_after_ms", wait.Milliseconds()+1)
		}
		return next(c)
	}
}
