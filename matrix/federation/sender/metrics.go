package sender

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics of the outbound queues. No per-destination labels: the set of remote servers is
// unbounded, and a label per server would grow the registry with it.
type metrics struct {
	depth            prometheus.Gauge
	backingOff       prometheus.Gauge
	sent             prometheus.Counter
	failed           prometheus.Counter
	pdus             prometheus.Counter
	edus             prometheus.Counter
	ephemeralDropped prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		depth: prometheus.NewGauge(prometheus.GaugeOpts{Name: "hearth_federation_queue_depth",
			Help: "Persisted PDUs and EDUs waiting to be sent, summed over destinations."}),
		backingOff: prometheus.NewGauge(prometheus.GaugeOpts{Name: "hearth_federation_destinations_backing_off",
			Help: "Destinations whose last send failed."}),
		sent: prometheus.NewCounter(prometheus.CounterOpts{Name: "hearth_federation_transactions_sent_total",
			Help: "Transactions a destination answered with 200."}),
		failed: prometheus.NewCounter(prometheus.CounterOpts{Name: "hearth_federation_transaction_failures_total",
			Help: "Transaction attempts that failed (network error, non-200 answer, store error)."}),
		pdus: prometheus.NewCounter(prometheus.CounterOpts{Name: "hearth_federation_pdus_sent_total",
			Help: "PDUs in transactions answered with 200."}),
		edus: prometheus.NewCounter(prometheus.CounterOpts{Name: "hearth_federation_edus_sent_total",
			Help: "EDUs in transactions answered with 200."}),
		ephemeralDropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "hearth_federation_ephemeral_dropped_total",
			Help: "Typing and presence EDUs dropped because their destination was failing or its buffer was full."}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.depth, m.backingOff, m.sent, m.failed, m.pdus, m.edus, m.ephemeralDropped} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("federation sender: register metrics: %w", err)
		}
	}
	return m, nil
}
