package push

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// Delivery retries 5xx answers with exponential backoff and gives up on other 4xx at once.
func TestDeliverRetries(t *testing.T) {
	var calls atomic.Int32
	var stamps []time.Time
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		stamps = append(stamps, time.Now())
		if calls.Add(1) <= 2 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte(`{"rejected":[]}`))
	}))
	defer gw.Close()
	s := New(nil, nil, "hs", nil)
	s.RetryBase = 20 * time.Millisecond
	s.deliver(delivery{user: "@a:hs", appID: "app", pushkey: "k", url: gw.URL + NotifyPath, body: []byte(`{}`)})
	if calls.Load() != 3 {
		t.Fatalf("calls %d, want 3", calls.Load())
	}
	if d1, d2 := stamps[1].Sub(stamps[0]), stamps[2].Sub(stamps[1]); d1 < 20*time.Millisecond || d2 < 40*time.Millisecond {
		t.Fatalf("backoff %v then %v", d1, d2)
	}

	calls.Store(0)
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusBadRequest)
	}))
	defer bad.Close()
	s.deliver(delivery{url: bad.URL + NotifyPath, body: []byte(`{}`)})
	if calls.Load() != 1 {
		t.Fatalf("4xx retried: %d calls", calls.Load())
	}

	// A gateway that never recovers is tried MaxAttempts times.
	calls.Store(0)
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusBadGateway)
	}))
	defer down.Close()
	s.RetryBase, s.MaxAttempts = time.Millisecond, 4
	s.deliver(delivery{url: down.URL + NotifyPath, body: []byte(`{}`)})
	if calls.Load() != 4 {
		t.Fatalf("calls %d, want 4", calls.Load())
	}
}
