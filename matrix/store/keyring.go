package store

import (
	"encoding/json"
	"fmt"
)

// Records and accessors of the federation keyring (matrix/federation/keyring): remote servers'
// signing keys, the newest key response each server gave us (a notary hands it on), key-fetch
// backoff and server-discovery results. All of it is a cache: losing it costs refetches only.

// RemoteKeyRecord is one verify key of a remote server.
type RemoteKeyRecord struct {
	Key          string `json:"k"`            // unpadded base64 ed25519 public key
	ValidUntilMS int64  `json:"v,omitempty"`  // valid_until_ts of the response that listed it as current (capped at fetch + 7 days)
	ExpiredMS    int64  `json:"x,omitempty"`  // expired_ts when listed under old_verify_keys (0: a current key)
	FetchedMS    int64  `json:"f"`            // when we learnt it
	Via          string `json:"vi,omitempty"` // the notary it came through ("" = the server itself)
}

// KeyResponseRecord is the newest verified /_matrix/key/v2/server answer of a server, kept
// byte for byte so that a notary reply carries the server's own signatures.
type KeyResponseRecord struct {
	Raw          json.RawMessage `json:"r"`
	ValidUntilMS int64           `json:"v"`
	FetchedMS    int64           `json:"f"`
}

// FetchErrorRecord counts consecutive failures to fetch a server's keys.
type FetchErrorRecord struct {
	Count  int    `json:"c"`
	LastMS int64  `json:"l"`
	Error  string `json:"e,omitempty"`
}

// ResolutionRecord is the result of server discovery for one server name.
type ResolutionRecord struct {
	HostHeader string   `json:"h"`
	Targets    []string `json:"t"` // host:port to dial, in order of preference
	ExpiresMS  int64    `json:"x"`
}

// PutRemoteKey stores one key of a remote server.
func (t *Txn) PutRemoteKey(server, keyID string, r RemoteKeyRecord) error {
	return t.setJSON(fedKeyKey(server, keyID), r)
}

// RemoteKey reads one key of a remote server, or ErrNotFound.
func (t *Txn) RemoteKey(server, keyID string) (RemoteKeyRecord, error) {
	return getJSON[RemoteKeyRecord](t, fedKeyKey(server, keyID))
}

// RemoteKeys reads every stored key of a remote server, by key ID.
func (t *Txn) RemoteKeys(server string) (map[string]RemoteKeyRecord, error) {
	pre := fedKeyPrefix(server)
	out := map[string]RemoteKeyRecord{}
	err := t.scan(pre, nil, false, true, func(k, v []byte) (bool, error) {
		var r RemoteKeyRecord
		if err := json.Unmarshal(v, &r); err != nil {
			return false, fmt.Errorf("store: decode remote key: %w", err)
		}
		out[string(k[len(pre):])] = r
		return true, nil
	})
	return out, err
}

// PutKeyResponse stores a server's newest verified key response.
func (t *Txn) PutKeyResponse(server string, r KeyResponseRecord) error {
	return t.setJSON(fedKeyRespKey(server), r)
}

// KeyResponse reads a server's newest verified key response, or ErrNotFound.
func (t *Txn) KeyResponse(server string) (KeyResponseRecord, error) {
	return getJSON[KeyResponseRecord](t, fedKeyRespKey(server))
}

// PutFetchError records a failed key fetch.
func (t *Txn) PutFetchError(server string, r FetchErrorRecord) error {
	return t.setJSON(fedKeyErrKey(server), r)
}

// FetchError reads the key-fetch failure record of a server, or ErrNotFound.
func (t *Txn) FetchError(server string) (FetchErrorRecord, error) {
	return getJSON[FetchErrorRecord](t, fedKeyErrKey(server))
}

// DeleteFetchError forgets a server's key-fetch failures (after a success).
func (t *Txn) DeleteFetchError(server string) error { return t.del(fedKeyErrKey(server)) }

// PutResolution stores a server-discovery result.
func (t *Txn) PutResolution(server string, r ResolutionRecord) error {
	return t.setJSON(fedResolvedKey(server), r)
}

// Resolution reads a server-discovery result (expired or not), or ErrNotFound.
func (t *Txn) Resolution(server string) (ResolutionRecord, error) {
	return getJSON[ResolutionRecord](t, fedResolvedKey(server))
}

// DeleteResolution forgets a server-discovery result.
func (t *Txn) DeleteResolution(server string) error { return t.del(fedResolvedKey(server)) }
