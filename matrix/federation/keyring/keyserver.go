package keyring

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"go.mau.fi/util/jsontime"
	"maunium.net/go/mautrix/crypto/canonicaljson"
	"maunium.net/go/mautrix/federation"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/merr"
)

// Key server limits.
const (
	ownKeyValidity     = 7 * 24 * time.Hour // valid_until_ts we publish; remote servers cap at 7 days anyway
	maxQueryServers    = 100                // servers per POST /_matrix/key/v2/query
	maxQueryBodyBytes  = 1 << 20
	notaryFetchTimeout = 15 * time.Second
)

// Register mounts the key API on g, the /_matrix/key group. No authentication: keys are
// public and every answer is signed.
func (k *Keyring) Register(g *echo.Group) {
	g.GET("/v2/server", k.handleServer)
	g.GET("/v2/query/:serverName", k.handleQueryOne)
	g.POST("/v2/query", k.handleQuery)
}

// OwnKeys is our /_matrix/key/v2/server answer, signed, valid for 7 days.
func (k *Keyring) OwnKeys() (*federation.ServerKeyResponse, error) {
	resp := &federation.ServerKeyResponse{
		ServerName:    k.cfg.ServerName,
		VerifyKeys:    map[id.KeyID]federation.ServerVerifyKey{k.cfg.Key.ID: {Key: k.cfg.Key.Pub}},
		OldVerifyKeys: k.cfg.OldKeys,
		ValidUntilTS:  jsontime.UM(k.now().Add(ownKeyValidity)),
	}
	if resp.OldVerifyKeys == nil {
		// Always present (empty) so that peers reading it strictly find the field.
		resp.OldVerifyKeys = map[id.KeyID]federation.OldVerifyKey{}
	}
	sig, err := k.cfg.Key.SignJSON(resp)
	if err != nil {
		return nil, fmt.Errorf("sign own keys: %w", err)
	}
	resp.Signatures = map[string]map[id.KeyID]string{k.cfg.ServerName: {k.cfg.Key.ID: sig}}
	return resp, nil
}

func (k *Keyring) handleServer(c echo.Context) error {
	resp, err := k.ownKeysObject()
	if err != nil {
		return err
	}
	// Served as canonical JSON, so that the body minus its signatures is exactly the signed
	// bytes (some peers, Complement among them, verify the raw body that way).
	b, err := json.Marshal(resp)
	if err != nil {
		return fmt.Errorf("encode own keys: %w", err)
	}
	canon, err := canonicaljson.CanonicalJSON(b)
	if err != nil {
		return fmt.Errorf("canonicalise own keys: %w", err)
	}
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, canon)
}

// ownKeysObject is OwnKeys as a JSON object that always carries old_verify_keys: mautrix's type
// drops an empty map (omitempty) and peers (Complement among them) require the field. It is
// built as the object it is served as and signed once.
func (k *Keyring) ownKeysObject() (map[string]any, error) {
	old := k.cfg.OldKeys
	if old == nil {
		old = map[id.KeyID]federation.OldVerifyKey{}
	}
	obj := map[string]any{
		"server_name":     k.cfg.ServerName,
		"verify_keys":     map[id.KeyID]federation.ServerVerifyKey{k.cfg.Key.ID: {Key: k.cfg.Key.Pub}},
		"old_verify_keys": old,
		"valid_until_ts":  k.now().Add(ownKeyValidity).UnixMilli(),
	}
	sig, err := k.cfg.Key.SignJSON(obj)
	if err != nil {
		return nil, fmt.Errorf("sign own keys: %w", err)
	}
	obj["signatures"] = map[string]map[id.KeyID]string{k.cfg.ServerName: {k.cfg.Key.ID: sig}}
	return obj, nil
}

func (k *Keyring) handleQueryOne(c echo.Context) error {
	server := c.Param("serverName")
	if u, err := url.PathUnescape(server); err == nil {
		server = u // "[::1]:8448" arrives escaped
	}
	if _, _, ok := federation.ParseServerName(server); !ok {
		return merr.InvalidParam("%q is not a server name", server)
	}
	minValid := k.now()
	if s := c.QueryParam("minimum_valid_until_ts"); s != "" {
		ms, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return merr.InvalidParam("minimum_valid_until_ts must be an integer")
		}
		minValid = time.UnixMilli(ms)
	}
	keys, err := k.notaryAnswer(c.Request().Context(), server, minValid)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"server_keys": keys})
}

type queryRequest struct {
	ServerKeys map[string]map[string]struct {
		MinimumValidUntilTS *int64 `json:"minimum_valid_until_ts"`
	} `json:"server_keys"`
}

func (k *Keyring) handleQuery(c echo.Context) error {
	body, err := io.ReadAll(io.LimitReader(c.Request().Body, maxQueryBodyBytes+1))
	if err != nil {
		return merr.Unknown("read request body: %v", err)
	}
	if len(body) > maxQueryBodyBytes {
		return merr.TooLarge("request body over %d bytes", maxQueryBodyBytes)
	}
	if !json.Valid(body) {
		return merr.NotJSON("request body is not JSON")
	}
	var req queryRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return merr.BadJSON("bad key query: %v", err)
	}
	if req.ServerKeys == nil {
		return merr.BadJSON("server_keys is required")
	}
	if len(req.ServerKeys) > maxQueryServers {
		return merr.InvalidParam("at most %d servers per query", maxQueryServers)
	}
	out := []json.RawMessage{}
	for server, criteria := range req.ServerKeys {
		if _, _, ok := federation.ParseServerName(server); !ok {
			continue // nothing can be said about a name that cannot exist
		}
		// The strictest criterion wins; without one the notary uses the current time.
		minValid := k.now()
		for _, crit := range criteria {
			if crit.MinimumValidUntilTS != nil && time.UnixMilli(*crit.MinimumValidUntilTS).After(minValid) {
				minValid = time.UnixMilli(*crit.MinimumValidUntilTS)
			}
		}
		keys, err := k.notaryAnswer(c.Request().Context(), server, minValid)
		if err != nil {
			return err
		}
		out = append(out, keys...)
	}
	return c.JSON(http.StatusOK, map[string]any{"server_keys": out})
}

// notaryAnswer returns server's key responses, each also signed by us: ours when it is us,
// else the cached response when it is valid until minValid, else a fresh fetch, else the
// cached response however old (spec: notaries may serve cached keys of servers that are
// down), else nothing.
func (k *Keyring) notaryAnswer(ctx context.Context, server string, minValid time.Time) ([]json.RawMessage, error) {
	if server == k.cfg.ServerName {
		own, err := k.OwnKeys()
		if err != nil {
			return nil, err
		}
		b, err := json.Marshal(own)
		if err != nil {
			return nil, fmt.Errorf("encode own keys: %w", err)
		}
		return []json.RawMessage{b}, nil
	}
	rec, err := k.cache.response(server)
	if err != nil {
		return nil, err
	}
	if rec == nil || time.UnixMilli(rec.ValidUntilMS).Before(minValid) {
		k.locks.Lock(server)
		if ok, err := k.mayFetch(server); err == nil && ok {
			fctx, cancel := context.WithTimeout(ctx, notaryFetchTimeout)
			if err := k.fetchDirect(fctx, server); err != nil {
				k.log.Debug("notary fetch failed", "server", server, "err", err)
				if err := k.cache.StoreFetchError(ctx, server, err); err != nil {
					k.log.Warn("record key fetch failure", "server", server, "err", err)
				}
			}
			cancel()
		}
		k.locks.Unlock(server)
		if rec, err = k.cache.response(server); err != nil {
			return nil, err
		}
	}
	if rec == nil {
		return []json.RawMessage{}, nil
	}
	signed, err := k.countersign(rec.Raw)
	if err != nil {
		return nil, err
	}
	return []json.RawMessage{signed}, nil
}

// countersign adds our signature to a key response, keeping everyone else's.
func (k *Keyring) countersign(raw json.RawMessage) (json.RawMessage, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		return nil, fmt.Errorf("decode cached key response: %w", err)
	}
	sig, err := k.cfg.Key.SignJSON(raw)
	if err != nil {
		return nil, fmt.Errorf("countersign key response: %w", err)
	}
	sigs := map[string]map[string]string{}
	if s, ok := obj["signatures"]; ok {
		if err := json.Unmarshal(s, &sigs); err != nil {
			return nil, fmt.Errorf("decode signatures of cached key response: %w", err)
		}
	}
	if sigs[k.cfg.ServerName] == nil {
		sigs[k.cfg.ServerName] = map[string]string{}
	}
	sigs[k.cfg.ServerName][string(k.cfg.Key.ID)] = sig
	b, err := json.Marshal(sigs)
	if err != nil {
		return nil, fmt.Errorf("encode signatures: %w", err)
	}
	obj["signatures"] = b
	out, err := json.Marshal(obj)
	if err != nil {
		return nil, fmt.Errorf("encode countersigned key response: %w", err)
	}
	return out, nil
}
