package bus

import (
	"sync"
	"sync/atomic"
)

// Bus carries messages of one type T.
type Bus[T any] struct {
	mu   sync.RWMutex
	subs []*Sub[T]
}

// Sub is one subscription.
type Sub[T any] struct {
	fn     func(T)
	ch     chan T
	lagged atomic.Bool
}

// New makes a bus.
func New[T any]() *Bus[T] { return &Bus[T]{} }

// Subscribe registers a handler called inline by Publish; it must not block.
func (b *Bus[T]) Subscribe(fn func(T)) *Sub[T] {
	s := &Sub[T]{fn: fn}
	b.mu.Lock()
	b.subs = append(b.subs, s)
	b.mu.Unlock()
	return s
}

// SubscribeQueue registers a buffered subscription read from C().
func (b *Bus[T]) SubscribeQueue(size int) *Sub[T] {
	s := &Sub[T]{ch: make(chan T, size)}
	b.mu.Lock()
	b.subs = append(b.subs, s)
	b.mu.Unlock()
	return s
}

// C is the queue of a SubscribeQueue subscription.
func (s *Sub[T]) C() <-chan T { return s.ch }

// Lagged reports (and clears) whether messages were dropped because the queue was full.
func (s *Sub[T]) Lagged() bool { return s.lagged.Swap(false) }

// Unsubscribe removes a subscription.
func (b *Bus[T]) Unsubscribe(s *Sub[T]) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, x := range b.subs {
		if x == s {
			b.subs = append(b.subs[:i:i], b.subs[i+1:]...)
			return
		}
	}
}

// Publish delivers m to every subscriber, in subscription order.
func (b *Bus[T]) Publish(m T) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	for _, s := range b.subs {
		if s.fn != nil {
			s.fn(m)
			continue
		}
		select {
		case s.ch <- m:
		default:
			s.lagged.Store(true)
		}
	}
}
