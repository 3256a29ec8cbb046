package mqtt

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/hearth-home/hearth/devices"
)

// ErrUnknownDevice is returned by Command for an ID this adapter does not (or no longer) know.
var ErrUnknownDevice = errors.New("mqtt: unknown device")

// ErrNotRunning is returned by Command while Run is not active.
var ErrNotRunning = errors.New("mqtt: adapter is not running")

// Adapter implements devices.Adapter over MQTT: HA discovery and Zigbee2MQTT on one broker
// connection, with an embedded broker unless Config.BrokerURL names an external one.
type Adapter struct {
	cfg  Config
	log  *slog.Logger
	abbr *abbrevs

	mu  sync.Mutex
	cur *session // nil while not running
}

// session is one Run: a broker connection and the devices it found.
type session struct {
	a      *Adapter
	client paho.Client
	reg    *registry
	broker *Broker
}

var _ devices.Adapter = (*Adapter)(nil)

// New validates cfg and returns an adapter; nothing connects until Run.
func New(cfg Config) (*Adapter, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Adapter{cfg: c, log: c.Logger, abbr: newAbbrevs()}, nil
}

// Name is the adapter's prefix in device IDs.
func (a *Adapter) Name() string { return a.cfg.Name }

// BrokerURL is the embedded broker's local tcp:// URL while Run is active, or "" (external
// broker, or not running).
func (a *Adapter) BrokerURL() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cur == nil || a.cur.broker == nil {
		return ""
	}
	return a.cur.broker.URL()
}

// Connected reports whether the adapter's client is connected to the broker right now.
func (a *Adapter) Connected() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.cur != nil && a.cur.client.IsConnectionOpen()
}

// Run starts the embedded broker (if configured), connects and follows discovery and state
// until ctx ends. Connection failures are retried with backoff; only a broker that cannot
// listen or a CA file that cannot be read stop it from starting.
func (a *Adapter) Run(ctx context.Context, sink devices.Sink) error {
	s := &session{a: a}
	brokerURL, user, pass := a.cfg.BrokerURL, a.cfg.Username, a.cfg.Password
	if brokerURL == "" {
		user = "hearth-bridge-" + randomHex(4)
		pass = randomHex(32)
		users := append([]User{{Username: user, Password: pass}}, a.cfg.Users...)
		b, err := StartBroker(BrokerConfig{
			Listen: a.cfg.Listen, Users: users, Logger: a.log,
			RetainedFile:    a.cfg.RetainedFile,
			PersistPrefixes: []string{a.cfg.DiscoveryPrefix, a.cfg.Z2MBaseTopic + "/bridge"},
		})
		if err != nil {
			return err
		}
		s.broker = b
		brokerURL = b.URL()
	}
	opts, err := a.clientOptions(s, brokerURL, user, pass)
	if err != nil {
		s.closeBroker()
		return err
	}
	s.reg = newRegistry(a.log, sink, s.subscribe, s.unsubscribe)
	s.client = paho.NewClient(opts)

	a.mu.Lock()
	if a.cur != nil {
		a.mu.Unlock()
		s.closeBroker()
		return errors.New("mqtt: adapter is already running")
	}
	a.cur = s
	a.mu.Unlock()

	tok := s.client.Connect() // with ConnectRetry this completes only once connected
	go func() {
		if tok.Wait(); tok.Error() != nil {
			a.log.Warn("mqtt: connect", "broker", brokerURL, "err", tok.Error())
		}
	}()

	<-ctx.Done()
	a.mu.Lock()
	a.cur = nil
	a.mu.Unlock()
	s.reg.close()
	s.client.Disconnect(250)
	s.closeBroker()
	return nil
}

func (s *session) closeBroker() {
	if s.broker != nil {
		if err := s.broker.Close(); err != nil {
			s.a.log.Warn("mqtt: closing embedded broker", "err", err)
		}
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b)
}

func (a *Adapter) clientOptions(s *session, brokerURL, user, pass string) (*paho.ClientOptions, error) {
	opts := paho.NewClientOptions().AddBroker(brokerURL)
	clientID := a.cfg.ClientID
	if clientID == "" {
		clientID = "hearth-" + randomHex(6)
	}
	opts.SetClientID(clientID)
	opts.SetUsername(user)
	opts.SetPassword(pass)
	// A clean session plus an explicit resubscribe in OnConnect: the broker (embedded or not)
	// may have restarted without persistence, so its session state cannot be relied on, and
	// resubscribing makes it resend every retained discovery config and state.
	opts.SetCleanSession(true)
	opts.SetAutoReconnect(true)
	opts.SetConnectRetry(true)
	opts.SetConnectRetryInterval(time.Second)
	opts.SetMaxReconnectInterval(a.cfg.MaxReconnectInterval)
	opts.SetKeepAlive(30 * time.Second)
	opts.SetConnectTimeout(5 * time.Second)
	// Bounds how long a subscribe from the message goroutine can wait for a stalled connection.
	opts.SetWriteTimeout(5 * time.Second)
	opts.SetOrderMatters(true) // state messages of one device must apply in order
	opts.SetDefaultPublishHandler(s.onMessage)
	opts.SetOnConnectHandler(s.onConnect)
	opts.SetConnectionLostHandler(func(_ paho.Client, err error) {
		a.log.Warn("mqtt: connection lost; reconnecting", "err", err)
		s.reg.setConnected(false)
	})
	if strings.HasPrefix(brokerURL, "ssl:") || strings.HasPrefix(brokerURL, "tls:") ||
		strings.HasPrefix(brokerURL, "mqtts:") || strings.HasPrefix(brokerURL, "wss:") {
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if a.cfg.CAFile != "" {
			pem, err := os.ReadFile(a.cfg.CAFile)
			if err != nil {
				return nil, fmt.Errorf("mqtt: read CA file: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("mqtt: CA file %s holds no PEM certificate", a.cfg.CAFile)
			}
			tc.RootCAs = pool
		}
		opts.SetTLSConfig(tc)
	}
	return opts, nil
}

// subscribeQoS is the QoS the adapter subscribes with: 0, as Home Assistant does by default.
// Losing a state message is only possible while the connection drops, and the resubscribe on
// reconnect brings every retained state back. It also keeps the embedded broker from holding
// outbound QoS 1 messages in flight for the adapter: mochi-mqtt v2.7.9 checks an incoming
// SUBSCRIBE's packet ID against its own outbound in-flight IDs and refuses the subscription on
// a collision ("packet identifier in use"), which retained QoS 1 deliveries made frequent.
const subscribeQoS = 0

// staticTopics are the subscriptions that do not depend on discovered devices.
func (a *Adapter) staticTopics() []string {
	var ts []string
	if !a.cfg.DisableDiscovery {
		p := a.cfg.DiscoveryPrefix
		ts = append(ts, p+"/+/+/config", p+"/+/+/+/config")
	}
	if !a.cfg.DisableZ2M {
		ts = append(ts, a.cfg.Z2MBaseTopic+"/bridge/devices")
	}
	return ts
}

// onConnect runs on every (re)connect in its own goroutine: resubscribe everything, then send
// HA's birth message so devices that follow it republish their discovery configs.
func (s *session) onConnect(c paho.Client) {
	a := s.a
	s.reg.setConnected(true)
	topics := append(a.staticTopics(), s.reg.topics()...)
	for len(topics) > 0 {
		n := min(len(topics), 100) // keep each SUBSCRIBE packet modest
		filters := make(map[string]byte, n)
		for _, t := range topics[:n] {
			filters[t] = subscribeQoS
		}
		topics = topics[n:]
		tok := c.SubscribeMultiple(filters, nil)
		if tok.WaitTimeout(10 * time.Second) {
			if err := subscribeError(tok); err != nil {
				a.log.Warn("mqtt: resubscribe", "err", err)
			}
		}
	}
	if !a.cfg.DisableDiscovery {
		c.Publish(a.cfg.DiscoveryPrefix+"/status", 1, false, "online")
	}
	a.log.Info("mqtt: connected and subscribed")
}

// subscribe and unsubscribe are the registry's hooks. They must not wait: they run on paho's
// message goroutine, which would deadlock waiting for its own SUBACK. A failure while offline
// is harmless because onConnect subscribes everything again.
func (s *session) subscribe(topics []string) {
	filters := make(map[string]byte, len(topics))
	for _, t := range topics {
		filters[t] = subscribeQoS
	}
	tok := s.client.SubscribeMultiple(filters, nil)
	go func() {
		if !tok.WaitTimeout(30 * time.Second) {
			return
		}
		if err := subscribeError(tok); err != nil && s.client.IsConnectionOpen() {
			s.a.log.Warn("mqtt: subscribe", "topics", topics, "err", err)
		}
	}()
}

// subscribeError reports a failed SUBSCRIBE: a transport error, or a SUBACK that refused a
// filter (return code 0x80), which paho does not turn into an error by itself.
func subscribeError(tok paho.Token) error {
	if err := tok.Error(); err != nil {
		return err
	}
	st, ok := tok.(*paho.SubscribeToken)
	if !ok {
		return nil
	}
	var refused []string
	for topic, code := range st.Result() {
		if code >= 0x80 {
			refused = append(refused, topic)
		}
	}
	if len(refused) > 0 {
		slices.Sort(refused)
		return fmt.Errorf("broker refused %s", strings.Join(refused, ", "))
	}
	return nil
}

func (s *session) unsubscribe(topics []string) {
	s.client.Unsubscribe(topics...)
}

// onMessage routes every message: discovery configs and the Z2M device list to their parsers,
// everything else to the entities reading that topic.
func (s *session) onMessage(_ paho.Client, m paho.Message) {
	a := s.a
	topic, payload := m.Topic(), m.Payload()
	if !a.cfg.DisableDiscovery {
		if rel, ok := strings.CutPrefix(topic, a.cfg.DiscoveryPrefix+"/"); ok && strings.HasSuffix(rel, "/config") {
			s.onDiscovery(topic, rel, payload)
			return
		}
	}
	if !a.cfg.DisableZ2M && topic == a.cfg.Z2MBaseTopic+"/bridge/devices" {
		s.onZ2MDevices(payload)
		return
	}
	s.reg.dispatch(topic, payload)
}

func (s *session) onDiscovery(topic, rel string, payload []byte) {
	a := s.a
	owner := "ha:" + topic
	if len(payload) == 0 {
		s.reg.removeOwner(owner)
		return
	}
	if !a.cfg.DisableZ2M && fromZigbee2MQTT(payload) {
		return // Zigbee2MQTT's own HA discovery: the same devices arrive through the Z2M path
	}
	ents, err := a.parseDiscovery(rel, payload)
	switch {
	case errors.Is(err, errUnsupported):
		a.log.Debug("mqtt: discovery skipped", "topic", topic, "reason", err)
		return
	case err != nil && len(ents) == 0:
		a.log.Warn("mqtt: discovery config rejected", "topic", topic, "err", err)
		return
	case err != nil:
		a.log.Warn("mqtt: some discovery components rejected", "topic", topic, "err", err)
	}
	s.reg.put(owner, ents)
}

// Command sends c to device id and returns once every message was acknowledged (QoS 1).
func (a *Adapter) Command(ctx context.Context, id string, c devices.Command) error {
	a.mu.Lock()
	s := a.cur
	a.mu.Unlock()
	if s == nil {
		return ErrNotRunning
	}
	ent, ok := s.reg.lookup(id)
	if !ok {
		return fmt.Errorf("%w: %s", ErrUnknownDevice, id)
	}
	pubs, err := ent.command(c)
	if err != nil {
		return fmt.Errorf("mqtt: %s: %w", id, err)
	}
	for _, p := range pubs {
		tok := s.client.Publish(p.topic, 1, p.retain, p.payload)
		select {
		case <-tok.Done():
			if err := tok.Error(); err != nil {
				return fmt.Errorf("mqtt: publish to %s: %w", p.topic, err)
			}
		case <-ctx.Done():
			return fmt.Errorf("mqtt: publish to %s: %w", p.topic, ctx.Err())
		}
	}
	if ent.optimistic() {
		s.reg.update(id, ent, func(st *devices.State) bool {
			applyCommand(st, c)
			return true
		})
	}
	return nil
}
