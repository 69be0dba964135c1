package materialize_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/freshetdev/freshet/assets"
	"github.com/freshetdev/freshet/materialize"
	"github.com/freshetdev/freshet/store"
	"github.com/freshetdev/freshet/store/postgres"
	"github.com/freshetdev/freshet/store/postgres/pgtest"
)

// BenchmarkWorkerGoSteps measures dispatch throughput on PostgreSQL: 1,000
// independent unpartitioned assets built by a no-op Go function, every state
// persisted, worked by one worker process or two (each with its own connection
// pool, as two processes would have), 8 or 32 steps at once each.
func BenchmarkWorkerGoSteps(b *testing.B) {
	const steps = 1000
	noop := func(context.Context, assets.StepInput) (assets.StepOutput, error) { return assets.StepOutput{}, nil }
	defs := &assets.Definitions{}
	for i := range steps {
		defs.Assets = append(defs.Assets, funcAsset(fmt.Sprintf("bench/a%04d", i), nil, noop))
	}
	for _, c := range []struct{ workers, parallel int }{{1, 8}, {2, 8}, {1, 32}, {2, 32}} {
		workers := c.workers
		b.Run(fmt.Sprintf("steps=%d/workers=%d/parallel=%d", steps, workers, c.parallel), func(b *testing.B) {
			var elapsed time.Duration
			for b.Loop() {
				b.StopTimer()
				ctx := context.Background()
				url := pgtest.URL(b)
				var stores []*postgres.Store
				for range workers {
					s, err := postgres.Open(ctx, url)
					if err != nil {
						b.Fatal(err)
					}
					stores = append(stores, s)
				}
				g := syncGraph(b, stores[0], defs)
				cat, err := materialize.LoadCatalog(ctx, stores[0], g)
				if err != nil {
					b.Fatal(err)
				}
				plan, err := materialize.Compute(g, cat.State(), materialize.Request{Now: time.Now()})
				if err != nil {
					b.Fatal(err)
				}
				run, err := stores[0].CreateRun(ctx, plan.NewRun(materialize.RunOptions{Trigger: store.TriggerAPI}))
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				start := time.Now()
				wctx, stop := context.WithCancel(ctx)
				var wg sync.WaitGroup
				for _, s := range stores {
					w := materialize.NewWorker(s, g, b.TempDir(), &materialize.Executors{})
					w.Parallel = c.parallel
					wg.Go(func() { _ = w.Run(wctx) })
				}
				for {
					r, err := stores[0].GetRun(ctx, run.ID)
					if err != nil {
						b.Fatal(err)
					}
					if r.Status.Done() {
						if r.Counts[store.StepSucceeded] != steps {
							b.Fatalf("run %s: %v", r.Status, r.Counts)
						}
						break
					}
					time.Sleep(5 * time.Millisecond) // a GetRun is a query: polling harder would load the server it measures
				}
				elapsed += time.Since(start)
				b.StopTimer()
				stop()
				wg.Wait()
				for _, s := range stores {
					s.Close()
				}
				b.StartTimer()
			}
			b.ReportMetric(float64(steps*b.N)/elapsed.Seconds(), "steps/s")
		})
	}
}
