package drone

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/hearth-home/hearth/devices"
)

// AdapterName is the default adapter name, the prefix of its device IDs.
const AdapterName = "tello"

// Config describes one Tello. Zero values take the defaults of a Tello in its own Wi-Fi
// access point mode.
type Config struct {
	// Adapter is the adapter's name and device ID prefix (default "tello"). Adapter names are
	// unique in the registry, so each further drone needs its own ("tello2").
	Adapter string `json:"adapter,omitempty" yaml:"adapter,omitempty"`
	ID      string `json:"id,omitempty" yaml:"id,omitempty"` // local ID, default "tello"
	Name    string `json:"name,omitempty" yaml:"name,omitempty"`
	Area    string `json:"area,omitempty" yaml:"area,omitempty"`
	// Addr is where commands go (default 192.168.10.1:8889; a bare host gets port 8889).
	Addr string `json:"addr,omitempty" yaml:"addr,omitempty"`
	// LocalAddr is the command socket's own address (default any port; the drone answers
	// to whichever port asked).
	LocalAddr string `json:"local_addr,omitempty" yaml:"local_addr,omitempty"`
	// StateAddr is where the drone's state stream arrives (default :8890).
	StateAddr string `json:"state_addr,omitempty" yaml:"state_addr,omitempty"`
	// CommandTimeout bounds the wait for "ok"; moves answer when done (default 10s).
	CommandTimeout time.Duration `json:"command_timeout,omitempty" yaml:"command_timeout,omitempty"`
	// QueryTimeout bounds one attempt of a query (default 2s).
	QueryTimeout time.Duration `json:"query_timeout,omitempty" yaml:"query_timeout,omitempty"`
	// KeepAlive is the interval of link checks (default 5s, under the drone's 15 s limit).
	KeepAlive time.Duration `json:"keep_alive,omitempty" yaml:"keep_alive,omitempty"`
	// ReportEvery throttles state reports; the drone sends about ten a second (default 1s).
	ReportEvery time.Duration `json:"report_every,omitempty" yaml:"report_every,omitempty"`
}

func (c *Config) defaults() {
	if c.Adapter == "" {
		c.Adapter = AdapterName
	}
	if c.ID == "" {
		c.ID = "tello"
	}
	if c.Name == "" {
		c.Name = "Tello"
	}
	if c.Addr == "" {
		c.Addr = "192.168.10.1:8889"
	}
	if c.StateAddr == "" {
		c.StateAddr = ":8890"
	}
	if c.CommandTimeout <= 0 {
		c.CommandTimeout = 10 * time.Second
	}
	if c.QueryTimeout <= 0 {
		c.QueryTimeout = 2 * time.Second
	}
	if c.KeepAlive <= 0 {
		c.KeepAlive = 5 * time.Second
	}
	if c.ReportEvery <= 0 {
		c.ReportEvery = time.Second
	}
}

// Adapter controls one Tello.
type Adapter struct {
	cfg Config
	id  string // full device ID
	log *slog.Logger

	// inflight serialises exchanges: replies are matched to the one command awaiting one.
	inflight sync.Mutex

	mu      sync.Mutex
	conn    *net.UDPConn // nil while Run is not running
	replies chan string
	sdk     bool // the drone acknowledged "command" since it was last unreachable
	sink    devices.Sink
}

// New checks the configuration. It opens no sockets; Run does.
func New(cfg Config, log *slog.Logger) (*Adapter, error) {
	cfg.defaults()
	for _, n := range []string{cfg.ID, cfg.Adapter} {
		if strings.ContainsAny(n, " \t:") {
			return nil, fmt.Errorf("drone: name %q has spaces or colons", n)
		}
	}
	if _, _, err := net.SplitHostPort(cfg.Addr); err != nil && !strings.Contains(cfg.Addr, ":") {
		cfg.Addr = net.JoinHostPort(cfg.Addr, "8889") // a bare host: the SDK's command port
	}
	for _, a := range []string{cfg.Addr, cfg.StateAddr} {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return nil, fmt.Errorf("drone: address %q: %w", a, err)
		}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Adapter{cfg: cfg, id: cfg.Adapter + ":" + cfg.ID, log: log.With("adapter", cfg.Adapter)}, nil
}

// Name implements devices.Adapter.
func (a *Adapter) Name() string { return a.cfg.Adapter }

// Device is the drone's description.
func (a *Adapter) Device() devices.Device {
	return devices.Device{ID: a.id, Name: a.cfg.Name, Kind: devices.Drone, Adapter: a.cfg.Adapter, Area: a.cfg.Area, Model: "Tello"}
}

// Run implements devices.Adapter: it opens the command and state sockets, enters SDK mode,
// keeps the link alive and reports state until ctx ends. Failing to open a socket is the only
// error; an absent drone is retried every KeepAlive.
func (a *Adapter) Run(ctx context.Context, sink devices.Sink) error {
	raddr, err := net.ResolveUDPAddr("udp", a.cfg.Addr)
	if err != nil {
		return fmt.Errorf("drone: resolve %s: %w", a.cfg.Addr, err)
	}
	var laddr *net.UDPAddr
	if a.cfg.LocalAddr != "" {
		if laddr, err = net.ResolveUDPAddr("udp", a.cfg.LocalAddr); err != nil {
			return fmt.Errorf("drone: resolve %s: %w", a.cfg.LocalAddr, err)
		}
	}
	conn, err := net.DialUDP("udp", laddr, raddr)
	if err != nil {
		return fmt.Errorf("drone: command socket: %w", err)
	}
	state, err := net.ListenPacket("udp", a.cfg.StateAddr)
	if err != nil {
		conn.Close()
		return fmt.Errorf("drone: state socket %s: %w", a.cfg.StateAddr, err)
	}
	replies := make(chan string, 4)
	a.mu.Lock()
	a.conn, a.replies, a.sink, a.sdk = conn, replies, sink, false
	a.mu.Unlock()

	sink.Upsert(a.Device())
	sink.Report(a.id, devices.State{Available: false, LastSeen: time.Now()})

	var wg sync.WaitGroup
	wg.Go(func() { readReplies(conn, replies) })
	wg.Go(func() { a.readState(ctx, state, sink) })
	stop := context.AfterFunc(ctx, func() {
		conn.Close()
		state.Close()
	})
	defer stop()

	a.keepAlive(ctx)

	a.mu.Lock()
	a.conn, a.sink, a.sdk = nil, nil, false
	a.mu.Unlock()
	conn.Close()
	state.Close()
	wg.Wait()
	sink.Report(a.id, devices.State{Available: false, LastSeen: time.Now()})
	return nil
}

// readReplies forwards each answer datagram; when nobody waits and the buffer is full, the
// answer is stale and dropped.
func readReplies(conn *net.UDPConn, out chan<- string) {
	buf := make([]byte, 1500)
	for {
		n, err := conn.Read(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// ICMP "port unreachable" surfaces here while the drone is off; keep reading.
			time.Sleep(50 * time.Millisecond)
			continue
		}
		select {
		case out <- strings.TrimSpace(string(buf[:n])):
		default:
		}
	}
}

// readState reports the state stream, at most once per ReportEvery.
func (a *Adapter) readState(ctx context.Context, pc net.PacketConn, sink devices.Sink) {
	buf := make([]byte, 2048)
	var last time.Time
	for {
		n, _, err := pc.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		r := parseState(string(buf[:n]))
		if len(r) == 0 {
			continue
		}
		now := time.Now()
		if now.Sub(last) < a.cfg.ReportEvery {
			continue
		}
		last = now
		sink.Report(a.id, devices.State{Available: true, LastSeen: now, Readings: r})
	}
}

// keepAlive enters SDK mode and then checks the link every KeepAlive until ctx ends. Each
// check is a battery query, which also keeps the drone from its 15-second auto landing.
func (a *Adapter) keepAlive(ctx context.Context) {
	for {
		if err := a.check(ctx); err != nil && ctx.Err() == nil {
			a.log.Debug("tello link check failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(a.cfg.KeepAlive):
		}
	}
}

func (a *Adapter) check(ctx context.Context) error {
	if err := a.ensureSDK(ctx); err != nil {
		return err
	}
	reply, err := a.Query(ctx, "battery?")
	if errors.Is(err, ErrTimeout) {
		a.lost()
	}
	if err != nil {
		return err
	}
	if v, err := parseValue(reply); err == nil {
		a.report(map[string]float64{"bat": v})
	}
	return nil
}

// lost forgets SDK mode (the drone may have rebooted) and reports the drone unavailable.
func (a *Adapter) lost() {
	a.mu.Lock()
	a.sdk = false
	sink := a.sink
	a.mu.Unlock()
	if sink != nil {
		sink.Report(a.id, devices.State{Available: false, LastSeen: time.Now()})
	}
}

// ensureSDK sends "command" unless the drone already acknowledged it.
func (a *Adapter) ensureSDK(ctx context.Context) error {
	a.mu.Lock()
	sdk := a.sdk
	a.mu.Unlock()
	if sdk {
		return nil
	}
	reply, err := a.exchange(ctx, "command", a.cfg.QueryTimeout, true)
	if err != nil {
		return fmt.Errorf("drone: enter SDK mode: %w", err)
	}
	if reply != "ok" {
		return fmt.Errorf("%w: \"command\" answered %q", ErrRefused, reply)
	}
	a.mu.Lock()
	a.sdk = true
	a.mu.Unlock()
	return nil
}

// Query sends a read command ("battery?", "speed?", "time?" ...) and returns the answer.
func (a *Adapter) Query(ctx context.Context, q string) (string, error) {
	if !strings.HasSuffix(q, "?") {
		return "", fmt.Errorf("%w: %q is not a query", ErrInvalidCommand, q)
	}
	reply, err := a.exchange(ctx, q, a.cfg.QueryTimeout, true)
	if err != nil {
		return "", err
	}
	if strings.HasPrefix(reply, "error") {
		return "", fmt.Errorf("%w: %s: %s", ErrRefused, q, reply)
	}
	return reply, nil
}

// Command implements devices.Adapter; see the package doc for actions and confirmation.
func (a *Adapter) Command(ctx context.Context, id string, c devices.Command) error {
	if id != a.id {
		return fmt.Errorf("%w: %q", ErrUnknownDevice, id)
	}
	req, err := translate(c)
	if err != nil {
		return err
	}
	if req.line == "emergency" {
		return a.emergency(ctx)
	}
	if err := a.ensureSDK(ctx); err != nil {
		return err
	}
	if req.query {
		reply, err := a.Query(ctx, req.line)
		if err != nil {
			return err
		}
		v, err := parseValue(reply)
		if err != nil {
			return err
		}
		a.report(map[string]float64{req.reading: v})
		return nil
	}
	reply, err := a.exchange(ctx, req.line, a.cfg.CommandTimeout, false)
	if err != nil {
		return err
	}
	if reply != "ok" {
		return fmt.Errorf("%w: %s: %s", ErrRefused, req.line, reply)
	}
	return nil
}

// emergency stops the motors. When another command is awaiting its answer the line is sent
// at once without waiting for an answer of its own, which the other command's wait may take.
func (a *Adapter) emergency(ctx context.Context) error {
	if !a.inflight.TryLock() {
		a.mu.Lock()
		conn := a.conn
		a.mu.Unlock()
		if conn == nil {
			return ErrNotRunning
		}
		if _, err := conn.Write([]byte("emergency")); err != nil {
			return fmt.Errorf("drone: send emergency: %w", err)
		}
		return nil
	}
	reply, err := a.exchangeLocked(ctx, "emergency", a.cfg.QueryTimeout, true)
	a.inflight.Unlock()
	if err != nil {
		return err
	}
	if reply != "ok" {
		return fmt.Errorf("%w: emergency: %s", ErrRefused, reply)
	}
	return nil
}

func (a *Adapter) report(r map[string]float64) {
	a.mu.Lock()
	sink := a.sink
	a.mu.Unlock()
	if sink != nil {
		sink.Report(a.id, devices.State{Available: true, LastSeen: time.Now(), Readings: r})
	}
}

// exchange sends one line and waits for its answer, once more on timeout when retry is set.
func (a *Adapter) exchange(ctx context.Context, line string, timeout time.Duration, retry bool) (string, error) {
	a.inflight.Lock()
	defer a.inflight.Unlock()
	return a.exchangeLocked(ctx, line, timeout, retry)
}

func (a *Adapter) exchangeLocked(ctx context.Context, line string, timeout time.Duration, retry bool) (string, error) {
	a.mu.Lock()
	conn, replies := a.conn, a.replies
	a.mu.Unlock()
	if conn == nil {
		return "", ErrNotRunning
	}
	attempts := 1
	if retry {
		attempts = 2
	}
	for range attempts {
		// Answers left over from a command that timed out would be taken for this one's.
		for drained := false; !drained; {
			select {
			case <-replies:
			default:
				drained = true
			}
		}
		if _, err := conn.Write([]byte(line)); err != nil {
			return "", fmt.Errorf("drone: send %q: %w", line, err)
		}
		t := time.NewTimer(timeout)
		select {
		case r := <-replies:
			t.Stop()
			return r, nil
		case <-ctx.Done():
			t.Stop()
			return "", fmt.Errorf("drone: %q: %w", line, ctx.Err())
		case <-t.C:
		}
	}
	return "", fmt.Errorf("%w to %q within %s", ErrTimeout, line, timeout)
}
