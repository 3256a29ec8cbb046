package store

// Records and accessors of the client-server extras: content reports, OpenID tokens,
// m.login.token tokens and refresh tokens. Tokens are stored under their SHA-256 hash only.

// Kinds of ReportRecord.
const (
	ReportEvent = "event"
	ReportRoom  = "room"
	ReportUser  = "user"
)

// ReportRecord is one content report (an event, a room or a user) for the server's admins.
type ReportRecord struct {
	ID       uint64 `json:"id"`
	Kind     string `json:"k"`
	Reporter string `json:"by"`
	RoomID   string `json:"r,omitempty"`
	EventID  string `json:"e,omitempty"`
	UserID   string `json:"u,omitempty"` // the reported user (Kind user) or the event's sender
	Reason   string `json:"re,omitempty"`
	TS       int64  `json:"ts"`
}

// ExpiringTokenRecord is a short-lived token that names a user (OpenID, m.login.token).
type ExpiringTokenRecord struct {
	User      string `json:"u"`
	ExpiresMS int64  `json:"x"`
}

// RefreshTokenRecord is a refresh token: the device it refreshes, the access token issued with
// it, the refresh token it replaced (revoked when this pair is first used) and the refresh
// token issued from it (revoked if this one is used a second time, which means the client never
// received or never used that one).
type RefreshTokenRecord struct {
	User   string `json:"u"`
	Device string `json:"d"`
	Access []byte `json:"a"`
	Prev   []byte `json:"p,omitempty"`
	Next   []byte `json:"n,omitempty"`
}

// PutReport stores a report under a new ID, which it returns.
func (t *Txn) PutReport(r *ReportRecord) (uint64, error) {
	nid, err := t.NextNID(seqReport)
	if err != nil {
		return 0, err
	}
	r.ID = nid
	return nid, t.setJSON(reportKey(nid), r)
}

// Reports calls fn for every report, oldest first.
func (t *Txn) Reports(fn func(r *ReportRecord) (bool, error)) error {
	return t.scan([]byte{pReport}, nil, false, true, func(_, v []byte) (bool, error) {
		r, err := getJSONBytes[ReportRecord](v)
		if err != nil {
			return false, err
		}
		return fn(&r)
	})
}

// PutOpenIDToken stores an OpenID token hash.
func (t *Txn) PutOpenIDToken(hash []byte, r ExpiringTokenRecord) error {
	return t.setJSON(openIDKey(hash), r)
}

// OpenIDToken resolves an OpenID token hash.
func (t *Txn) OpenIDToken(hash []byte) (ExpiringTokenRecord, error) {
	return getJSON[ExpiringTokenRecord](t, openIDKey(hash))
}

// DeleteExpiredOpenIDTokens removes OpenID tokens that expired before nowMS.
func (t *Txn) DeleteExpiredOpenIDTokens(nowMS int64) error {
	var dead [][]byte
	err := t.scan([]byte{pOpenID}, nil, false, true, func(k, v []byte) (bool, error) {
		r, err := getJSONBytes[ExpiringTokenRecord](v)
		if err != nil || r.ExpiresMS <= nowMS {
			dead = append(dead, k)
		}
		return true, nil
	})
	if err != nil {
		return err
	}
	for _, k := range dead {
		if err := t.del(k); err != nil {
			return err
		}
	}
	return nil
}

// PutLoginToken stores an m.login.token token hash.
func (t *Txn) PutLoginToken(hash []byte, r ExpiringTokenRecord) error {
	return t.setJSON(loginTokenKey(hash), r)
}

// LoginToken resolves an m.login.token token hash.
func (t *Txn) LoginToken(hash []byte) (ExpiringTokenRecord, error) {
	return getJSON[ExpiringTokenRecord](t, loginTokenKey(hash))
}

// DeleteLoginToken removes an m.login.token token (single use).
func (t *Txn) DeleteLoginToken(hash []byte) error { return t.del(loginTokenKey(hash)) }

// PutRefreshToken stores a refresh token hash.
func (t *Txn) PutRefreshToken(hash []byte, r *RefreshTokenRecord) error {
	return t.setJSON(refreshTokenKey(hash), r)
}

// RefreshToken resolves a refresh token hash.
func (t *Txn) RefreshToken(hash []byte) (*RefreshTokenRecord, error) {
	r, err := getJSON[RefreshTokenRecord](t, refreshTokenKey(hash))
	if err != nil {
		return nil, err
	}
	return &r, nil
}

// DeleteRefreshToken removes a refresh token.
func (t *Txn) DeleteRefreshToken(hash []byte) error { return t.del(refreshTokenKey(hash)) }
