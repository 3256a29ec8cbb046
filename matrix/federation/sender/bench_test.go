package sender

import (
	"context"
	"strconv"
	"testing"
	"time"

	"maunium.net/go/mautrix/federation"
)

// nopTransport answers every transaction with 200 at once (for benchmarks of the store side).
type nopTransport struct{}

func (nopTransport) SendTransaction(context.Context, *federation.ReqSendTransaction) (*federation.RespSendTransaction, error) {
	return &federation.RespSendTransaction{}, nil
}

// BenchmarkEnqueue is the cost on the request path: one PDU for three destinations, committed
// durably (one fsync per call).
func BenchmarkEnqueue(b *testing.B) {
	h := newHarness(b)
	s, err := New(Options{ServerName: origin, Store: h.st, Transport: nopTransport{}})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	pdu := testPDU("x")
	dests := []string{"a.test", "b.test", "c.test"}
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Enqueue(dests, [][]byte{pdu}, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDrain measures delivery of a backlog to one real HTTPS destination on loopback:
// reported as PDUs per second.
func BenchmarkDrain(b *testing.B) {
	const backlog = 1000
	for b.Loop() {
		b.StopTimer()
		h := newHarness(b)
		r := newRemote(b, h.key)
		c := h.client(b, r)
		s, err := New(Options{ServerName: origin, Store: h.st, Transport: c})
		if err != nil {
			b.Fatal(err)
		}
		var pdus [][]byte
		for i := 0; i < backlog; i++ {
			pdus = append(pdus, testPDU(strconv.Itoa(i)))
		}
		if err := s.Enqueue([]string{r.name}, pdus, nil); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start := time.Now()
		if err := s.Start(); err != nil {
			b.Fatal(err)
		}
		for len(r.appliedItems()) < backlog {
			time.Sleep(time.Millisecond)
		}
		for metricValue(s.m.depth) != 0 {
			time.Sleep(time.Millisecond)
		}
		b.ReportMetric(backlog/time.Since(start).Seconds(), "pdus/s")
		b.StopTimer()
		_ = s.Close()
		closeIdle(c)
		_ = h.st.Close()
		h.st = nil
		b.StartTimer()
	}
}
