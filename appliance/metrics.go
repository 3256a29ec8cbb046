package appliance

import (
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics is the appliance's own Prometheus registry (never the global default one).
type metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

func newMetrics(a *Appliance) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hearth_http_requests_total", Help: "HTTP requests by route, method and status."}, []string{"route", "method", "code"})
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "hearth_http_request_duration_seconds", Help: "HTTP request latency by route (long-polls included).", Buckets: []float64{.001, .005, .01, .05, .1, .5, 1, 5, 30}}, []string{"route", "method"})
	m.reg.MustRegister(m.requests, m.latency,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "hearth_sync_waiting", Help: "Sync requests waiting for news."}, func() float64 { return float64(a.sync.Waiting()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "hearth_store_bytes", Help: "Store size on disk (LSM + value log)."}, func() float64 {
			if a.st == nil {
				return 0
			}
			l, v := a.st.Size()
			return float64(l + v)
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "hearth_stream_position", Help: "Global stream position (watermark)."}, func() float64 {
			if a.st == nil {
				return 0
			}
			return float64(a.st.Stream().Watermark())
		}),
	)
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// middleware records each request under its route pattern (bounded label cardinality).
func (m *metrics) middleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		route := c.Path()
		if route == "" {
			route = "unmatched"
		}
		method := c.Request().Method
		status := c.Response().Status
		if err != nil {
			c.Error(err)
			status = c.Response().Status
		}
		m.requests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
		m.latency.WithLabelValues(route, method).Observe(time.Since(start).Seconds())
		return nil
	}
}
