package materialize

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/freshetdev/freshet/store"
)

// Metrics are the engine's Prometheus metrics. What this process does (steps it
// ran, runs it launched, plans it computed) is counted as it happens; what the
// catalog holds (the queue, the freshness statuses) is read from the store at
// each scrape, so every process serving one catalog reports the same.
type Metrics struct {
	stepsFinished *prometheus.CounterVec
	stepDuration  *prometheus.HistogramVec
	runsLaunched  *prometheus.CounterVec
	planDuration  prometheus.Histogram
}

// NewMetrics registers the engine's metrics with reg, reading the queue and the
// freshness statuses from q at each scrape.
func NewMetrics(reg prometheus.Registerer, q QueueStore) *Metrics {
	m := &Metrics{
		stepsFinished: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "freshet_steps_finished_total", Help: "Attempts this process ran, by outcome.",
		}, []string{"outcome"}),
		stepDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "freshet_step_duration_seconds", Help: "How long the attempts this process ran took, by outcome.",
			Buckets: prometheus.ExponentialBuckets(0.01, 4, 10), // 10ms … ~45min
		}, []string{"outcome"}),
		runsLaunched: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "freshet_runs_launched_total", Help: "Runs this process launched, by trigger.",
		}, []string{"trigger"}),
		planDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "freshet_plan_duration_seconds", Help: "How long planning took (the catalog refresh included).",
			Buckets: prometheus.ExponentialBuckets(0.001, 3, 10), // 1ms … ~20s
		}),
	}
	reg.MustRegister(m.stepsFinished, m.stepDuration, m.runsLaunched, m.planDuration, &catalogCollector{q: q})
	return m
}

func (m *Metrics) stepEnded(outcome store.StepOutcome, took time.Duration) {
	if m == nil {
		return
	}
	m.stepsFinished.WithLabelValues(string(outcome)).Inc()
	m.stepDuration.WithLabelValues(string(outcome)).Observe(took.Seconds())
}

func (m *Metrics) runLaunched(trigger store.Trigger) {
	if m != nil {
		m.runsLaunched.WithLabelValues(string(trigger)).Inc()
	}
}

func (m *Metrics) planned(took time.Duration) {
	if m != nil {
		m.planDuration.Observe(took.Seconds())
	}
}

// catalogCollector reads the queue's depth and the freshness statuses at scrape.
type catalogCollector struct{ q QueueStore }

var (
	runsDesc      = prometheus.NewDesc("freshet_runs", "Runs not ended, by status.", []string{"status"}, nil)
	stepsDesc     = prometheus.NewDesc("freshet_steps", "Steps not ended, by status (READY is the queue depth).", []string{"status"}, nil)
	freshnessDesc = prometheus.NewDesc("freshet_asset_freshness", "1 for each asset's freshness status as the leader last recorded it.", []string{"asset", "status"}, nil)
	scrapeErrDesc = prometheus.NewDesc("freshet_catalog_scrape_errors", "1 when this scrape could not read the catalog.", nil, nil)
)

func (c *catalogCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- runsDesc
	ch <- stepsDesc
	ch <- freshnessDesc
	ch <- scrapeErrDesc
}

func (c *catalogCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	failed := 0.0
	if d, err := c.q.QueueDepth(ctx); err == nil {
		for _, st := range []store.RunStatus{store.RunQueued, store.RunRunning} {
			ch <- prometheus.MustNewConstMetric(runsDesc, prometheus.GaugeValue, float64(d.Runs[st]), string(st))
		}
		for _, st := range []store.StepStatus{store.StepPending, store.StepReady, store.StepRunning} {
			ch <- prometheus.MustNewConstMetric(stepsDesc, prometheus.GaugeValue, float64(d.Steps[st]), string(st))
		}
	} else {
		failed = 1
	}
	if latest, err := c.q.LatestFreshness(ctx); err == nil {
		for key, f := range latest {
			for _, st := range store.FreshnessStatuses {
				v := 0.0
				if f.Status == st {
					v = 1
				}
				ch <- prometheus.MustNewConstMetric(freshnessDesc, prometheus.GaugeValue, v, string(key), st)
			}
		}
	} else {
		failed = 1
	}
	ch <- prometheus.MustNewConstMetric(scrapeErrDesc, prometheus.GaugeValue, failed)
}
