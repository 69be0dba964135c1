package materialize_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/freshetdev/freshet/assets"
	"github.com/freshetdev/freshet/materialize"
	"github.com/freshetdev/freshet/store"
)

// Twenty requests to materialize the same stale selection at once, worked by
// three workers: every partition is built exactly once, whichever run it lands
// in; the other runs join the step in flight or find the partition fresh.
func TestConcurrentRequestsBuildEachPartitionOnce(t *testing.T) {
	t.Parallel()
	for name, q := range queueStores(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			daily, _ := assets.NewPartitions(assets.PartitionsSpec{Granularity: assets.Daily, Start: "2026-01-01"})
			var mu sync.Mutex
			builds := map[string]int{}
			fn := func(_ context.Context, in assets.StepInput) (assets.StepOutput, error) {
				time.Sleep(2 * time.Millisecond) // long enough for requests to overlap
				mu.Lock()
				defer mu.Unlock()
				for _, p := range in.PartitionKeys {
					builds[string(in.Asset)+" "+p]++
				}
				return assets.StepOutput{DataVersion: "v"}, nil
			}
			defs := &assets.Definitions{Assets: []*assets.Asset{
				funcAsset("raw", daily, fn),
				funcAsset("clean", daily, fn, "raw"),
				funcAsset("report", daily, fn, "clean"),
			}}
			g := syncGraph(t, q, defs)
			now := time.Date(2026, 1, 11, 0, 0, 0, 0, time.UTC) // 10 days: 30 partitions

			wctx, stop := context.WithCancel(ctx)
			var workers sync.WaitGroup
			for i := range 3 {
				w := materialize.NewWorker(q, g, t.TempDir(), &materialize.Executors{})
				w.Parallel, w.Poll, w.Name = 4, 20*time.Millisecond, fmt.Sprintf("w%d", i)
				workers.Go(func() {
					if err := w.Run(wctx); err != nil {
						t.Errorf("worker: %v", err)
					}
				})
			}
			defer func() {
				stop()
				workers.Wait()
			}()

			const requests = 20
			ids := make(chan uuid.UUID, requests)
			var reqs sync.WaitGroup
			for range requests {
				reqs.Go(func() {
					cat, err := materialize.LoadCatalog(ctx, q, g)
					if err != nil {
						t.Error(err)
						return
					}
					plan, err := materialize.Compute(g, cat.State(), materialize.Request{Now: now})
					if err != nil {
						t.Error(err)
						return
					}
					nr := plan.NewRun(materialize.RunOptions{Trigger: store.TriggerAPI, PlannedSeq: cat.State().Seq})
					if len(nr.Steps) == 0 {
						return
					}
					run, err := q.CreateRun(ctx, nr)
					if err != nil {
						t.Errorf("create run: %v", err)
						return
					}
					ids <- run.ID
				})
			}
			reqs.Wait()
			close(ids)
			runs := 0
			for id := range ids {
				runs++
				for {
					r, err := q.GetRun(ctx, id)
					if err != nil {
						t.Fatal(err)
					}
					if r.Status.Done() {
						if r.Status != store.RunSucceeded {
							t.Errorf("run %s: %s %v", id, r.Status, r.Counts)
						}
						break
					}
					time.Sleep(10 * time.Millisecond)
				}
			}
			if runs == 0 {
				t.Fatal("no request recorded a run")
			}
			mu.Lock()
			defer mu.Unlock()
			if len(builds) != 30 {
				t.Errorf("%d partitions built; want 30", len(builds))
			}
			for k, n := range builds {
				if n != 1 {
					t.Errorf("%s built %d times", k, n)
				}
			}
			// And the catalog agrees: one materialization per partition.
			page, err := q.Events(ctx, store.EventQuery{Kinds: []store.EventKind{store.Materialization}, Limit: 1000})
			if err != nil {
				t.Fatal(err)
			}
			if len(page.Events) != 30 {
				t.Errorf("%d materializations recorded; want 30", len(page.Events))
			}
		})
	}
}
