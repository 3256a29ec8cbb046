package sync

import (
	"net/http"
	"strconv"
	"strings"
	gosync "sync"
	"time"

	"github.com/hearth-home/hearth/matrix/merr"
)

// Bounds of the per-connection state kept in memory. A connection is (user, device, conn_id);
// Element X keeps three (room-list, encryption, notifications) per device.
const (
	slidingIdle          = time.Hour
	slidingPerDevice     = 8
	slidingPerUser       = 32
	slidingBudget        = 8 << 20 // estimated bytes of all connections together
	slidingPending       = 2       // responses kept per connection until the client names one
	slidingSweepInterval = time.Minute
)

// errUnknownPos tells the client to start the connection again.
func errUnknownPos() error {
	return &merr.Error{Status: http.StatusBadRequest, Code: "M_UNKNOWN_POS", Message: "unknown or expired pos: start a new sliding sync connection"}
}

type connKey struct {
	user, device, conn string
}

// roomSeen is what a connection has sent of one room.
type roomSeen struct {
	pos    uint64 // stream position up to which the room was sent
	limit  int    // the client holds the room's latest `limit` events as of pos
	rsHash uint64 // fingerprint of the required_state config last applied
	member string // the user's membership when last sent
	isDM   bool
}

// connState is one response's view of a connection: immutable once stored, so that a retried
// request (same pos) computes from exactly what the lost response started from.
type connState struct {
	gen    uint64
	upto   uint64
	typing uint64
	rooms  map[uint64]roomSeen
	subs   map[string]roomConfig // sticky room subscriptions
	lists  map[string]int        // counts last sent
	ext    extConfig
}

func (c *connState) token() string {
	return strconv.FormatUint(c.upto, 10) + "_" + strconv.FormatUint(c.gen, 10)
}

func (c *connState) cost() int {
	return 256 + len(c.rooms)*96 + len(c.subs)*96 + len(c.lists)*64
}

// slidingConn is one connection: the state the client last acknowledged (by sending its pos)
// and the responses sent since, any of which the next request may name.
type slidingConn struct {
	key      connKey
	base     *connState
	pending  []*connState
	lastUsed time.Time
	cost     int
}

func (c *slidingConn) recost() {
	c.cost = 0
	if c.base != nil {
		c.cost += c.base.cost()
	}
	for _, p := range c.pending {
		c.cost += p.cost()
	}
}

// slidingRegistry holds every connection, bounded by count and by estimated bytes, with the
// least recently used evicted first; idle connections expire.
type slidingRegistry struct {
	mu        gosync.Mutex
	conns     map[connKey]*slidingConn
	total     int
	gen       uint64
	lastSweep time.Time

	cache slidingCache
}

// acquire resolves a pos for a connection. A pos naming a response sent since the last
// acknowledged one acknowledges it (older states are dropped).
func (r *slidingRegistry) acquire(key connKey, pos string, now time.Time) (*connState, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sweepLocked(now)
	c := r.conns[key]
	if c == nil {
		return nil, errUnknownPos()
	}
	_, g, ok := strings.Cut(pos, "_")
	gen, err := strconv.ParseUint(g, 10, 64)
	if !ok || err != nil {
		return nil, errUnknownPos()
	}
	c.lastUsed = now
	if c.base != nil && c.base.gen == gen && c.base.token() == pos {
		return c.base, nil
	}
	for _, p := range c.pending {
		if p.gen == gen && p.token() == pos {
			c.base, c.pending = p, nil
			r.total -= c.cost
			c.recost()
			r.total += c.cost
			return p, nil
		}
	}
	return nil, errUnknownPos()
}

// nextGen numbers a new state.
func (r *slidingRegistry) nextGen() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.gen == 0 {
		r.gen = uint64(time.Now().UnixMilli()) // tokens of an earlier process never match
	}
	r.gen++
	return r.gen
}

// store records a response. fresh starts the connection anew (a request without pos).
func (r *slidingRegistry) store(key connKey, st *connState, fresh bool, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.conns == nil {
		r.conns = map[connKey]*slidingConn{}
	}
	c := r.conns[key]
	if c == nil || fresh {
		if c != nil {
			r.total -= c.cost
		}
		c = &slidingConn{key: key}
		r.conns[key] = c
		r.limitLocked(key)
	}
	r.total -= c.cost
	c.pending = append(c.pending, st)
	if len(c.pending) > slidingPending {
		c.pending = c.pending[len(c.pending)-slidingPending:]
	}
	c.lastUsed = now
	c.recost()
	r.total += c.cost
	for r.total > slidingBudget && len(r.conns) > 1 {
		r.evictLocked(func(o *slidingConn) bool { return o != c })
	}
}

// limitLocked keeps a new connection within the per-device and per-user counts.
func (r *slidingRegistry) limitLocked(key connKey) {
	for {
		dev, user := 0, 0
		for k := range r.conns {
			if k.user == key.user {
				user++
				if k.device == key.device {
					dev++
				}
			}
		}
		switch {
		case dev > slidingPerDevice:
			r.evictLocked(func(o *slidingConn) bool { return o.key.user == key.user && o.key.device == key.device && o.key != key })
		case user > slidingPerUser:
			r.evictLocked(func(o *slidingConn) bool { return o.key.user == key.user && o.key != key })
		default:
			return
		}
	}
}

// evictLocked drops the least recently used connection among those ok accepts.
func (r *slidingRegistry) evictLocked(ok func(*slidingConn) bool) {
	var victim *slidingConn
	for _, c := range r.conns {
		if ok(c) && (victim == nil || c.lastUsed.Before(victim.lastUsed)) {
			victim = c
		}
	}
	if victim == nil {
		return
	}
	r.total -= victim.cost
	delete(r.conns, victim.key)
}

func (r *slidingRegistry) sweepLocked(now time.Time) {
	if now.Sub(r.lastSweep) < slidingSweepInterval {
		return
	}
	r.lastSweep = now
	for k, c := range r.conns {
		if now.Sub(c.lastUsed) > slidingIdle {
			r.total -= c.cost
			delete(r.conns, k)
		}
	}
}

// stats reports the number of connections and their estimated bytes (tests, metrics).
func (r *slidingRegistry) stats() (conns, bytes int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.conns), r.total
}
