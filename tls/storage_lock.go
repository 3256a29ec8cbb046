package tls

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hearth-home/hearth/matrix/store"
)

// Lock takes the named lock, waiting while another goroutine of this process or another
// Storage on the same store holds it. A record whose holder stopped renewing it (a crash) is
// taken over once it expires.
func (s *Storage) Lock(ctx context.Context, name string) error {
	if s.isClosed() {
		return errStorageClosed
	}
	sem := s.sem(name)
	select {
	case sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	for {
		ok, wait, err := s.claim(name)
		if err != nil {
			<-sem
			return err
		}
		if ok {
			s.startRenewal(name)
			return nil
		}
		t := time.NewTimer(min(wait, lockPoll))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			<-sem
			return ctx.Err()
		}
	}
}

// TryLock takes the named lock if it is free right now.
func (s *Storage) TryLock(ctx context.Context, name string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	if s.isClosed() {
		return false, errStorageClosed
	}
	sem := s.sem(name)
	select {
	case sem <- struct{}{}:
	default:
		return false, nil
	}
	ok, _, err := s.claim(name)
	if err != nil || !ok {
		<-sem
		return false, err
	}
	s.startRenewal(name)
	return true, nil
}

// Unlock releases a lock taken by Lock or TryLock.
func (s *Storage) Unlock(_ context.Context, name string) error {
	s.mu.Lock()
	stop, ok := s.held[name]
	delete(s.held, name)
	sem := s.sems[name]
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("tls storage: unlock %q: not locked here", name)
	}
	stop()
	err := s.update(func(t *store.Txn) error { return t.DeleteCertLock(name, s.owner) })
	<-sem
	if err != nil {
		return fmt.Errorf("tls storage: unlock %q: %w", name, err)
	}
	return nil
}

// sem returns the in-process semaphore of a lock name. Semaphores are never removed: there are
// a handful of lock names (one per certificate and operation).
func (s *Storage) sem(name string) chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.sems[name]
	if !ok {
		c = make(chan struct{}, 1)
		s.sems[name] = c
	}
	return c
}

// claim writes our lock record unless someone else holds a live one; wait is how long that
// record has left. Badger's conflict detection makes two concurrent claims of the same free
// name serialise: the second one re-runs, sees the first's record and backs off.
func (s *Storage) claim(name string) (ok bool, wait time.Duration, err error) {
	err = s.update(func(t *store.Txn) error {
		ok, wait = false, 0
		now := s.clock()
		l, err := t.CertLock(name)
		switch {
		case errors.Is(err, store.ErrNotFound):
		case err != nil:
			return err
		case l.Owner != s.owner && now.Before(l.Expires):
			wait = l.Expires.Sub(now)
			return nil
		}
		ok = true
		return t.PutCertLock(name, store.CertLock{Owner: s.owner, Expires: now.Add(s.lease)})
	})
	if err != nil {
		return false, 0, fmt.Errorf("tls storage: lock %q: %w", name, err)
	}
	return ok, wait, nil
}

// startRenewal keeps our record for name alive until Unlock, renewing it every third of the
// lease, so that a long ACME order never looks like a crashed holder.
func (s *Storage) startRenewal(name string) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(s.lease / 3)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				_ = s.update(func(t *store.Txn) error {
					l, err := t.CertLock(name)
					if err != nil || l.Owner != s.owner {
						return err // lost or gone: nothing to renew
					}
					return t.PutCertLock(name, store.CertLock{Owner: s.owner, Expires: s.clock().Add(s.lease)})
				})
			}
		}
	}()
	s.mu.Lock()
	s.held[name] = func() { close(done); <-finished }
	s.mu.Unlock()
}

func (s *Storage) isClosed() bool {
	s.gate.RLock()
	defer s.gate.RUnlock()
	return s.closed
}
