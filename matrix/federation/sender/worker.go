package sender

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"go.mau.fi/util/jsontime"
	"maunium.net/go/mautrix/federation"

	"github.com/hearth-home/hearth/matrix/store"
)

// txn is a transaction being delivered to one destination.
type txn struct {
	id        string
	ts        int64
	seqs      []uint64 // persisted entries it carries, deleted after a 200
	pdus      []json.RawMessage
	edus      []json.RawMessage // persisted EDUs first, then ephemeral ones
	ephemeral int               // how many of edus are ephemeral (not in the store)
}

// run delivers name's queue until it is empty, then exits. Only one run per destination is
// active at a time (destination.running).
func (s *Sender) run(d *destination) {
	defer s.workers.Done()
	log := s.log.With("destination", d.name)
	var cur *txn
	for {
		select {
		case <-s.stop:
			return
		default:
		}
		var err error
		if cur == nil {
			s.mu.Lock()
			d.pending = false
			s.mu.Unlock()
			cur, err = s.next(d)
			if err == nil && cur == nil {
				s.mu.Lock()
				if d.pending { // enqueued after our read: look again
					s.mu.Unlock()
					continue
				}
				d.running = false
				if d.failures == 0 && len(d.ephemeral) == 0 {
					delete(s.dests, d.name) // nothing to remember about an idle, healthy server
				}
				s.mu.Unlock()
				return
			}
		}
		if err == nil {
			err = s.deliver(d, cur, log)
			if err == nil {
				cur = nil
				s.mu.Lock()
				if d.failures > 0 {
					d.failures = 0
					s.m.backingOff.Dec()
				}
				s.mu.Unlock()
				continue
			}
		}
		s.m.failed.Inc()
		s.mu.Lock()
		d.failures++
		if d.failures == 1 {
			s.m.backingOff.Inc()
		}
		delay := s.backoff(d.failures)
		s.mu.Unlock()
		log.Warn("federation transaction failed; backing off", "err", err, "retry_in", delay)
		if !s.wait(d, delay) {
			return
		}
	}
}

// backoff is the delay before retry number n (n >= 1): the base doubled per failure up to the
// cap, with "equal jitter" (a uniform draw from the upper half) so that many destinations
// failing together do not retry in lockstep.
func (s *Sender) backoff(n int) time.Duration {
	d := s.o.BackoffBase
	for i := 1; i < n && d < s.o.BackoffMax; i++ {
		d *= 2
	}
	d = min(d, s.o.BackoffMax)
	half := d / 2
	return half + rand.N(half+1)
}

// wait sleeps for delay, or until MarkAlive; it reports false when the sender is closing.
func (s *Sender) wait(d *destination, delay time.Duration) bool {
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-s.stop:
		return false
	case <-d.alive:
		return true
	case <-t.C:
		return true
	}
}

// next returns the transaction to send: the persisted in-flight one if a previous attempt (or
// process) left it, else a new batch from the head of the queue, which is recorded before it
// is sent. nil means there is nothing to send.
func (s *Sender) next(d *destination) (*txn, error) {
	var t *txn
	err := s.st.View(func(tx *store.Txn) error {
		rec, err := tx.FedDest(d.name)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		t = &txn{id: rec.TxnID, ts: rec.TS, pdus: []json.RawMessage{}}
		for _, seq := range rec.Entries {
			e, err := tx.FedEntry(d.name, seq)
			if errors.Is(err, store.ErrNotFound) {
				continue // cannot happen (entries and record go in one commit); be lenient
			}
			if err != nil {
				return err
			}
			t.add(e)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read in-flight transaction: %w", err)
	}
	if t != nil && len(t.seqs) > 0 {
		return t, nil
	}
	t = &txn{pdus: []json.RawMessage{}}
	err = s.st.View(func(tx *store.Txn) error {
		return tx.FedEntries(d.name, func(e store.FedEntry) (bool, error) {
			if e.PDU && len(t.pdus) == MaxPDUs || !e.PDU && len(t.edus) == MaxEDUs {
				return false, nil // keep queue order: stop at the first entry that does not fit
			}
			t.add(e)
			return true, nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("read queue: %w", err)
	}
	persisted := len(t.seqs) > 0
	s.mu.Lock()
	if room := MaxEDUs - len(t.edus); room > 0 && len(d.ephemeral) > 0 {
		n := min(room, len(d.ephemeral))
		for _, e := range d.ephemeral[:n] {
			b, err := json.Marshal(e)
			if err != nil {
				s.mu.Unlock()
				return nil, fmt.Errorf("encode EDU: %w", err)
			}
			t.edus = append(t.edus, b)
			t.ephemeral++
		}
		d.ephemeral = append(d.ephemeral[:0:0], d.ephemeral[n:]...)
	}
	s.mu.Unlock()
	if len(t.pdus) == 0 && len(t.edus) == 0 {
		return nil, nil
	}
	now := time.Now()
	t.id, t.ts = s.newTxnID(now), now.UnixMilli()
	if persisted {
		rec := &store.FedDestRecord{TxnID: t.id, TS: t.ts, Entries: t.seqs}
		if err := s.st.Update(func(tx *store.Txn) error { return tx.PutFedDest(d.name, rec) }); err != nil {
			return nil, fmt.Errorf("record transaction %s: %w", t.id, err)
		}
	}
	return t, nil
}

func (t *txn) add(e store.FedEntry) {
	t.seqs = append(t.seqs, e.Seq)
	if e.PDU {
		t.pdus = append(t.pdus, e.Body)
	} else {
		t.edus = append(t.edus, e.Body)
	}
}

// deliver sends t and, after a 200, removes its entries. Rejections of single PDUs in the
// answer are logged, not retried: the receiving server has judged them.
func (s *Sender) deliver(d *destination, t *txn, log *slog.Logger) error {
	req := &federation.ReqSendTransaction{
		Destination:    d.name,
		TxnID:          t.id,
		Origin:         s.o.ServerName,
		OriginServerTS: jsontime.UMInt(t.ts),
		PDUs:           t.pdus,
		EDUs:           t.edus,
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.o.SendTimeout)
	resp, err := s.o.Transport.SendTransaction(ctx, req)
	cancel()
	if err != nil {
		return fmt.Errorf("send transaction %s to %s: %w", t.id, d.name, err)
	}
	if resp != nil {
		for evID, r := range resp.PDUs {
			if r.Error != "" {
				log.Warn("destination rejected a PDU", "txn", t.id, "event_id", evID, "error", r.Error)
			}
		}
	}
	if len(t.seqs) > 0 {
		err := s.st.Update(func(tx *store.Txn) error {
			for _, seq := range t.seqs {
				if err := tx.DeleteFedEntry(d.name, seq); err != nil {
					return err
				}
			}
			return tx.DeleteFedDest(d.name)
		})
		if err != nil {
			// Delivered but not forgotten: the retry reuses the transaction ID, which the
			// receiver answers from its cache without applying anything twice.
			return fmt.Errorf("dequeue transaction %s: %w", t.id, err)
		}
		s.m.depth.Sub(float64(len(t.seqs)))
	}
	s.m.sent.Inc()
	s.m.pdus.Add(float64(len(t.pdus)))
	s.m.edus.Add(float64(len(t.edus)))
	log.Debug("federation transaction sent", "txn", t.id, "pdus", len(t.pdus), "edus", len(t.edus))
	return nil
}
