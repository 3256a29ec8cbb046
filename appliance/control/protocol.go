package control

import (
	"errors"
	"path/filepath"
	"time"
)

// The wire protocol: one connection carries one JSON request line and one JSON response line.
// One request per connection keeps both ends free of framing state; the CLI makes a handful of
// calls per run, so the extra connect costs nothing.
//
//	-> {"op":"user.add","name":"alice","password":"...","admin":true}
//	<- {"ok":true,"result":{"user_id":"@alice:example.org"}}
//	<- {"ok":false,"error":"user alice already exists"}
const (
	opPing       = "ping" // Dial's liveness check; result "pong"
	opUserAdd    = "user.add"
	opUserList   = "user.list"
	opUserPasswd = "user.passwd"
	opUserDeact  = "user.deactivate"
	opTokenNew   = "token.create"
)

type request struct {
	Op       string `json:"op"`
	Name     string `json:"name,omitempty"`
	Password string `json:"password,omitempty"`
	Admin    bool   `json:"admin,omitempty"`
	// Uses and ExpiresMS are CreateToken's arguments; 0 means unlimited and never.
	Uses      int   `json:"uses,omitempty"`
	ExpiresMS int64 `json:"expires_ms,omitempty"`
}

type response struct {
	OK     bool   `json:"ok"`
	Result any    `json:"result,omitempty"`
	Error  string `json:"error,omitempty"`
}

type userIDResult struct {
	UserID string `json:"user_id"`
}

type tokenResult struct {
	Token string `json:"token"`
}

const (
	// maxLine bounds what either side reads, so a confused peer cannot make it buffer without end.
	maxLine = 1 << 20
	// requestTimeout is generous because password hashing on a small ARM board is slow.
	requestTimeout = time.Minute
	// dialTimeout bounds Dial's ping: a server that does not answer in time is treated as an
	// error, not as absent, because opening the store beside a hung server is unsafe.
	dialTimeout = 5 * time.Second
)

// SocketName is the control socket's file name inside the data directory.
const SocketName = "control.sock"

// SocketPath is where the control socket of the server using dataDir lives; the server and
// the CLI both call it so they cannot disagree.
func SocketPath(dataDir string) string { return filepath.Join(dataDir, SocketName) }

// ErrNotRunning is returned (wrapped) by Dial when no server listens on the socket: the file is
// missing or nothing accepts on it. Only then may the caller open the store directly.
var ErrNotRunning = errors.New("no hearth server is running")
