package sender

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"maunium.net/go/mautrix/federation"

	"github.com/hearth-home/hearth/matrix/store"
)

// Transaction limits of the server-server API (spec v1.19, "Transactions").
const (
	MaxPDUs = 50
	MaxEDUs = 100
)

// ErrClosed is returned by Enqueue after Close.
var ErrClosed = errors.New("federation sender: closed")

// Transport sends one transaction. *federation.Client satisfies it.
type Transport interface {
	SendTransaction(ctx context.Context, req *federation.ReqSendTransaction) (*federation.RespSendTransaction, error)
}

// Options configure a Sender. Store, Transport and ServerName are required.
type Options struct {
	ServerName string // our server name: the transactions' origin, never a destination
	Store      *store.Store
	Transport  Transport
	// Registry receives the metrics; nil leaves them unregistered.
	Registry prometheus.Registerer
	Logger   *slog.Logger

	BackoffBase  time.Duration // first retry delay after a failure; default 5 s
	BackoffMax   time.Duration // cap of the doubling delay; default 1 h
	SendTimeout  time.Duration // one PUT /send; default 60 s
	CloseGrace   time.Duration // how long Close lets in-flight sends finish before cancelling them; default 5 s
	MaxEphemeral int           // typing/presence EDUs held per destination; default 100
}

func (o *Options) defaults() error {
	if o.ServerName == "" || o.Store == nil || o.Transport == nil {
		return errors.New("federation sender: ServerName, Store and Transport are required")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.BackoffBase <= 0 {
		o.BackoffBase = 5 * time.Second
	}
	if o.BackoffMax <= 0 {
		o.BackoffMax = time.Hour
	}
	if o.BackoffMax < o.BackoffBase {
		o.BackoffMax = o.BackoffBase
	}
	if o.SendTimeout <= 0 {
		o.SendTimeout = 60 * time.Second
	}
	if o.CloseGrace <= 0 {
		o.CloseGrace = 5 * time.Second
	}
	if o.MaxEphemeral <= 0 {
		o.MaxEphemeral = 100
	}
	return nil
}

// Sender keeps one persisted queue per destination server and one goroutine per destination
// with pending work.
type Sender struct {
	o   Options
	st  *store.Store
	log *slog.Logger
	m   *metrics

	nonce   string        // distinguishes this process's transaction IDs from an earlier run's
	txnSeq  atomic.Uint64 // per-process transaction counter
	ctx     context.Context
	cancel  context.CancelFunc
	stop    chan struct{}
	workers sync.WaitGroup

	mu      sync.Mutex
	dests   map[string]*destination
	resume  []string // destinations with a backlog at New, woken by Start
	started bool
	closed  bool
}

// destination is the in-memory side of one queue. Fields are guarded by Sender.mu except
// alive, which is only used as a signal.
type destination struct {
	name      string
	alive     chan struct{} // MarkAlive during a backoff wait (capacity 1)
	running   bool          // a worker goroutine owns the destination
	pending   bool          // something was enqueued since the worker last looked
	failures  int           // consecutive failed sends (0 = healthy)
	ephemeral []EDU         // typing/presence waiting for the next transaction
}

// New builds a Sender; call Start to begin delivering.
func New(o Options) (*Sender, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	m, err := newMetrics(o.Registry)
	if err != nil {
		return nil, err
	}
	var nb [4]byte
	if _, err := rand.Read(nb[:]); err != nil {
		return nil, fmt.Errorf("federation sender: transaction nonce: %w", err)
	}
	// The backlog is counted here, before Enqueue can run, so the depth gauge starts right.
	var queued map[string]int
	if err := o.Store.View(func(txn *store.Txn) error {
		var err error
		queued, err = txn.FedQueuedDestinations()
		return err
	}); err != nil {
		return nil, fmt.Errorf("federation sender: list queues: %w", err)
	}
	s := &Sender{
		o: o, st: o.Store, log: o.Logger.With("component", "federation-sender"), m: m,
		nonce: strconv.FormatUint(uint64(binary.BigEndian.Uint32(nb[:])), 36),
		stop:  make(chan struct{}),
		dests: map[string]*destination{},
	}
	total := 0
	for dest, n := range queued {
		total += n
		s.resume = append(s.resume, dest)
	}
	m.depth.Set(float64(total))
	if total > 0 {
		s.log.Info("federation queues left by the last run", "destinations", len(queued), "entries", total)
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s, nil
}

// Start resumes every destination whose queue was not empty when New ran (left by an earlier
// process) and lets Enqueue wake workers from now on.
func (s *Sender) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if s.started {
		return errors.New("federation sender: already started")
	}
	s.started = true
	for _, dest := range s.resume {
		s.wakeLocked(dest)
	}
	s.resume = nil
	for name, d := range s.dests { // enqueued between New and Start
		if d.pending {
			s.wakeLocked(name)
		}
	}
	return nil
}

// Close stops the workers: sends in flight get CloseGrace to finish, then are cancelled (their
// entries stay queued and go out under the same transaction ID after the next Start). It
// returns once every worker goroutine has exited.
func (s *Sender) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.stop)
	s.mu.Unlock()
	done := make(chan struct{})
	go func() {
		s.workers.Wait()
		close(done)
	}()
	t := time.NewTimer(s.o.CloseGrace)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		s.cancel()
		<-done
	}
	s.cancel()
	return nil
}

// Enqueue queues PDUs and EDUs for each destination and wakes their workers. PDUs and
// persistent EDUs are written in one store transaction (each PDU once, referenced by every
// destination); it returns after that commit, so a queued item survives a crash. Ephemeral
// EDUs (typing, presence) are kept in memory only and are dropped for a destination that is
// currently failing. Our own server name is skipped.
func (s *Sender) Enqueue(dests []string, pdus [][]byte, edus []EDU) error {
	return s.enqueue([]batch{{dests: dests, pdus: pdus, edus: edus}})
}

// QueuePDU queues one PDU for dests (the federation core's Queue interface).
func (s *Sender) QueuePDU(_ context.Context, dests []string, pdu []byte) error {
	return s.Enqueue(dests, [][]byte{pdu}, nil)
}

// batch is one Enqueue call's worth; several go into one store transaction.
type batch struct {
	dests []string
	pdus  [][]byte
	edus  []EDU
}

func (s *Sender) enqueue(bs []batch) error {
	type prepared struct {
		dests      []string
		pdus       [][]byte
		persistent [][]byte
		ephemeral  []EDU
	}
	var ps []prepared
	writes := 0
	for _, b := range bs {
		dests, err := s.cleanDests(b.dests)
		if err != nil {
			return err
		}
		if len(dests) == 0 {
			continue
		}
		p := prepared{dests: dests}
		for i, pdu := range b.pdus {
			if err := checkObject(fmt.Sprintf("PDU %d", i), pdu); err != nil {
				return fmt.Errorf("federation sender: %w", err)
			}
			p.pdus = append(p.pdus, pdu)
		}
		for _, e := range b.edus {
			if err := e.validate(); err != nil {
				return fmt.Errorf("federation sender: %w", err)
			}
			if e.Ephemeral() {
				p.ephemeral = append(p.ephemeral, e)
				continue
			}
			body, err := json.Marshal(e)
			if err != nil {
				return fmt.Errorf("federation sender: encode EDU: %w", err)
			}
			p.persistent = append(p.persistent, body)
		}
		writes += len(dests) * (len(p.pdus) + len(p.persistent))
		ps = append(ps, p)
	}
	if len(ps) == 0 {
		return nil
	}
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return ErrClosed
	}
	if writes > 0 {
		err := s.st.Update(func(txn *store.Txn) error {
			for _, p := range ps {
				nids := make([]uint64, len(p.pdus))
				for i, pdu := range p.pdus {
					nid, err := txn.PutFedPDU(pdu, uint64(len(p.dests)))
					if err != nil {
						return err
					}
					nids[i] = nid
				}
				for _, d := range p.dests {
					for _, nid := range nids {
						if _, err := txn.AppendFedPDU(d, nid); err != nil {
							return err
						}
					}
					for _, e := range p.persistent {
						if _, err := txn.AppendFedEDU(d, e); err != nil {
							return err
						}
					}
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("federation sender: enqueue: %w", err)
		}
		s.m.depth.Add(float64(writes))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range ps {
		for _, name := range p.dests {
			d := s.destLocked(name)
			for _, e := range p.ephemeral {
				if d.failures > 0 {
					s.m.ephemeralDropped.Inc()
					continue
				}
				if len(d.ephemeral) >= s.o.MaxEphemeral {
					d.ephemeral = d.ephemeral[1:] // the newest typing/presence matters most
					s.m.ephemeralDropped.Inc()
				}
				d.ephemeral = append(d.ephemeral, e)
			}
			if len(p.pdus)+len(p.persistent) > 0 || len(p.ephemeral) > 0 {
				s.wakeLocked(name)
			}
		}
	}
	return nil
}

// cleanDests drops duplicates and our own server name and rejects names a key cannot hold.
func (s *Sender) cleanDests(in []string) ([]string, error) {
	seen := make(map[string]bool, len(in))
	out := make([]string, 0, len(in))
	for _, d := range in {
		if d == "" || d == s.o.ServerName || seen[d] {
			continue
		}
		for i := 0; i < len(d); i++ {
			if d[i] <= ' ' || d[i] == '/' {
				return nil, fmt.Errorf("federation sender: destination %q is not a server name", d)
			}
		}
		seen[d] = true
		out = append(out, d)
	}
	return out, nil
}

// MarkAlive is called when dest contacted us: a destination in backoff retries at once.
func (s *Sender) MarkAlive(dest string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.dests[dest]
	if d == nil || d.failures == 0 {
		return
	}
	d.failures = 0
	s.m.backingOff.Dec()
	select {
	case d.alive <- struct{}{}:
	default:
	}
}

// QueueLen reports how many persisted entries wait for dest (for tests and the admin API).
func (s *Sender) QueueLen(dest string) (int, error) {
	var n int
	err := s.st.View(func(txn *store.Txn) error {
		var err error
		n, err = txn.FedQueueLen(dest)
		return err
	})
	return n, err
}

func (s *Sender) destLocked(name string) *destination {
	d := s.dests[name]
	if d == nil {
		d = &destination{name: name, alive: make(chan struct{}, 1)}
		s.dests[name] = d
	}
	return d
}

// wakeLocked marks new work for name and starts its worker if none runs.
func (s *Sender) wakeLocked(name string) {
	d := s.destLocked(name)
	d.pending = true
	if !s.started || s.closed || d.running {
		return
	}
	d.running = true
	s.workers.Add(1)
	go s.run(d)
}

func (s *Sender) newTxnID(now time.Time) string {
	return strconv.FormatInt(now.UnixMilli(), 36) + "." + s.nonce + "." + strconv.FormatUint(s.txnSeq.Add(1), 36)
}
