package mqtt

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"log/slog"
	"net"
	"sync"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
)

// Broker is the embedded MQTT broker (mochi-mqtt) with username/password logins. Retained
// messages live in memory: devices and Zigbee2MQTT republish their discovery and state when
// they reconnect or see the HA birth message, which the adapter sends on every connect.
type Broker struct {
	srv *mochi.Server
	ln  *trackingListener
}

// BrokerConfig configures the embedded broker.
type BrokerConfig struct {
	Listen string // address, e.g. ":1883"
	Users  []User // who may log in
	// RetainedFile, when set, keeps retained messages whose topics start with one of
	// PersistPrefixes across restarts (discovery configs, Zigbee2MQTT's device list).
	RetainedFile    string
	PersistPrefixes []string
	Logger          *slog.Logger
}

// StartBroker listens on c.Listen and serves MQTT 3.1.1/5 to clients that log in as one of
// c.Users.
func StartBroker(c BrokerConfig) (*Broker, error) {
	log := c.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	inner, err := net.Listen("tcp", c.Listen)
	if err != nil {
		return nil, fmt.Errorf("mqtt broker: listen %s: %w", c.Listen, err)
	}
	ln := &trackingListener{Listener: inner, conns: make(map[net.Conn]struct{})}
	srv := mochi.New(&mochi.Options{Logger: log.With("component", "mqtt-broker")})
	if err := srv.AddHook(newAuthHook(c.Users), nil); err != nil {
		ln.Close()
		return nil, fmt.Errorf("mqtt broker: auth hook: %w", err)
	}
	if c.RetainedFile != "" {
		if err := srv.AddHook(newRetainedStore(c.RetainedFile, c.PersistPrefixes, log), nil); err != nil {
			ln.Close()
			return nil, fmt.Errorf("mqtt broker: retained store hook: %w", err)
		}
	}
	if err := srv.AddListener(listeners.NewNet("tcp", ln)); err != nil {
		srv.Close() // stops the hooks too
		ln.closeAll()
		return nil, fmt.Errorf("mqtt broker: listener: %w", err)
	}
	if err := srv.Serve(); err != nil {
		srv.Close()
		ln.closeAll()
		return nil, fmt.Errorf("mqtt broker: serve: %w", err)
	}
	return &Broker{srv: srv, ln: ln}, nil
}

// Addr is the address the broker listens on.
func (b *Broker) Addr() net.Addr { return b.ln.Addr() }

// URL is a tcp:// URL a local client can connect to (loopback when listening on all addresses).
func (b *Broker) URL() string {
	a := b.ln.Addr().(*net.TCPAddr)
	host := a.IP.String()
	if a.IP.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "tcp://" + net.JoinHostPort(host, fmt.Sprint(a.Port))
}

// Close disconnects every client and stops listening.
func (b *Broker) Close() error {
	err := b.srv.Close()
	b.ln.closeAll()
	if err != nil {
		return fmt.Errorf("mqtt broker: close: %w", err)
	}
	return nil
}

// trackingListener remembers the connections it accepted. mochi's Close only disconnects
// clients that finished their handshake; a client that connected in the last instant would
// otherwise keep a socket that never answers, and wait for its CONNACK until it times out.
type trackingListener struct {
	net.Listener
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
}

func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		c.Close()
		return nil, net.ErrClosed
	}
	tc := &trackedConn{Conn: c, l: l}
	l.conns[tc] = struct{}{}
	return tc, nil
}

func (l *trackingListener) closeAll() {
	l.mu.Lock()
	l.closed = true
	conns := l.conns
	l.conns = make(map[net.Conn]struct{})
	l.mu.Unlock()
	l.Listener.Close()
	for c := range conns {
		c.(*trackedConn).Conn.Close()
	}
}

type trackedConn struct {
	net.Conn
	l *trackingListener
}

func (c *trackedConn) Close() error {
	c.l.mu.Lock()
	delete(c.l.conns, c)
	c.l.mu.Unlock()
	return c.Conn.Close()
}

// authHook admits clients whose username and password match a configured user. Passwords are
// compared as SHA-256 digests in constant time, so the time taken says nothing about them.
type authHook struct {
	mochi.HookBase
	users map[string][sha256.Size]byte
}

func newAuthHook(users []User) *authHook {
	h := &authHook{users: make(map[string][sha256.Size]byte, len(users))}
	for _, u := range users {
		h.users[u.Username] = sha256.Sum256([]byte(u.Password))
	}
	return h
}

func (h *authHook) ID() string { return "hearth-auth" }

func (h *authHook) Provides(b byte) bool {
	return bytes.Contains([]byte{mochi.OnConnectAuthenticate, mochi.OnACLCheck}, []byte{b})
}

func (h *authHook) OnConnectAuthenticate(cl *mochi.Client, pk packets.Packet) bool {
	want, ok := h.users[string(pk.Connect.Username)]
	got := sha256.Sum256(pk.Connect.Password)
	return subtle.ConstantTimeCompare(want[:], got[:]) == 1 && ok
}

// OnACLCheck lets every logged-in user use every topic: the broker serves one household, and
// devices must be able to publish discovery and state under any prefix.
func (h *authHook) OnACLCheck(cl *mochi.Client, topic string, write bool) bool { return true }
