package postgres

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/freshetdev/freshet/assets"
	"github.com/freshetdev/freshet/store"
)

// chainRun returns a run of n steps over partitions lo … lo+n-1 of asset, each
// step needing the one before: the shape of a long sequential plan.
func chainRun(asset assets.Key, lo, n int) store.NewRun {
	nr := store.NewRun{Trigger: store.TriggerManual, Selection: "bench"}
	for i := range n {
		st := store.NewStep{Asset: asset, Partitions: []string{dayKey(lo + i)}, MaxAttempts: 1}
		if i > 0 {
			st.Deps = []int{i - 1}
		}
		nr.Steps = append(nr.Steps, st)
	}
	return nr
}

// BenchmarkCreateRun measures recording a run, all of whose partitions are free:
// 1,000 steps of one partition in a chain (each needs the one before), and a
// backfill of an hourly asset over 12 years, 104,328 partitions in batches of 24
// (4,347 independent steps).
func BenchmarkCreateRun(b *testing.B) {
	hourly, err := assets.NewPartitions(assets.PartitionsSpec{Granularity: assets.Hourly, Start: "2014-01-01T00:00"})
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name       string
		partitions *assets.Partitions // nil: the bench asset's own (daily)
		run        func(*assets.Asset) store.NewRun
	}{
		{"steps=1000/partitions=1000", nil, func(a *assets.Asset) store.NewRun { return chainRun(a.Key, 0, 1_000) }},
		{"steps=4347/partitions=104328", hourly, func(a *assets.Asset) store.NewRun {
			nr := store.NewRun{Trigger: store.TriggerManual, Selection: "bench"}
			start, _ := hourly.Window(0)
			for i := range 4_347 {
				keys := make([]string, 24)
				for j := range keys {
					keys[j] = start.Add(time.Duration(i*24+j) * time.Hour).Format("2006-01-02T15:04")
				}
				nr.Steps = append(nr.Steps, store.NewStep{Asset: a.Key, Partitions: keys, MaxAttempts: 1})
			}
			return nr
		}},
	} {
		b.Run(c.name, func(b *testing.B) {
			s := openStore(b)
			a := benchAssets(b, 1)[0]
			if c.partitions != nil {
				a.Partitions = c.partitions
			}
			syncDefs(b, s, a)
			nr := c.run(a)
			b.ReportAllocs()
			for b.Loop() {
				r, err := s.CreateRun(b.Context(), nr)
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				// Release the partitions for the next run.
				if _, err := s.CancelRun(b.Context(), r.ID); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
	}
}

// BenchmarkClaimFinish measures the engine's loop over a chain of 1,000 steps: each
// step is claimed, then reported succeeded with one materialization, every state
// change committed. With claim_next, the report claims the next step in the same
// transaction, as a worker does; without, a ClaimSteps call follows each report.
// +log=append appends two log lines per step with AppendStepLog before the report,
// as a worker flushing its output does; +log=report carries them in the report
// (StepResult.Log) instead.
func BenchmarkClaimFinish(b *testing.B) {
	const n = 1_000
	for _, c := range []struct {
		next bool
		log  string
	}{{true, ""}, {false, ""}, {true, "append"}, {true, "report"}} {
		name := fmt.Sprintf("steps=%d/claim_next=%v", n, c.next)
		if c.log != "" {
			name += "+log=" + c.log
		}
		b.Run(name, func(b *testing.B) {
			s := openStore(b)
			defs := benchAssets(b, 1)
			syncDefs(b, s, defs...)
			ctx := b.Context()
			req := store.ClaimRequest{Worker: "bench", Limit: 1, Lease: time.Minute}
			lo := 0
			steps := 0
			for b.Loop() {
				b.StopTimer()
				nr := chainRun(defs[0].Key, lo%2000, n)
				lo += n
				if _, err := s.CreateRun(ctx, nr); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				claimed, err := s.ClaimSteps(ctx, req)
				if err != nil {
					b.Fatal(err)
				}
				for len(claimed) > 0 {
					c0 := claimed[0]
					res := store.StepResult{StepID: c0.ID, Attempt: c0.Attempt, Worker: "bench", Outcome: store.OutcomeSucceeded,
						Events: []store.Event{{Kind: store.Materialization, Asset: c0.Asset, Partition: c0.Partitions[0],
							InputSeq: c0.InputSeq, DataVersion: uuid.NewString()}}}
					lines := []store.LogLine{
						{Attempt: c0.Attempt, Stream: store.System, Text: "$ true"},
						{Attempt: c0.Attempt, Stream: store.System, Text: "exit status 0"},
					}
					switch c.log {
					case "append":
						if err := s.AppendStepLog(ctx, c0.ID, lines, 1<<20); err != nil {
							b.Fatal(err)
						}
					case "report":
						res.Log, res.LogCap = lines, 1<<20
					}
					if c.next {
						res.ClaimNext = &req
					}
					fr, err := s.FinishStep(ctx, res)
					if err != nil {
						b.Fatal(err)
					}
					steps++
					claimed = fr.Claimed
					if !c.next {
						if claimed, err = s.ClaimSteps(ctx, req); err != nil {
							b.Fatal(err)
						}
					}
				}
			}
			if steps != n*b.N {
				b.Fatalf("%d steps ran, want %d", steps, n*b.N)
			}
			b.ReportMetric(float64(steps)/b.Elapsed().Seconds(), "steps/s")
		})
	}
}

// BenchmarkFinishSteps measures a worker's loop over a run of 1,000 independent
// steps when it reports in batches: it claims batch steps, then reports them all
// succeeded with one FinishSteps call whose next claims as many again, every
// state change committed. batch=1 is one report per transaction, as FinishStep
// with ClaimNext. With workers=8, eight workers (goroutines sharing the store's
// pool, as one process's slots do) do the same on one run at once, each
// reporting one step per call: what batching replaces.
func BenchmarkFinishSteps(b *testing.B) {
	const n = 1_000
	for _, c := range []struct{ workers, batch int }{{1, 1}, {1, 8}, {1, 32}, {8, 1}} {
		b.Run(fmt.Sprintf("steps=%d/workers=%d/batch=%d", n, c.workers, c.batch), func(b *testing.B) {
			s := openStore(b)
			defs := benchAssets(b, 1)
			syncDefs(b, s, defs...)
			ctx := b.Context()
			lo, steps := 0, 0
			var mu sync.Mutex
			for b.Loop() {
				b.StopTimer()
				nr := store.NewRun{Trigger: store.TriggerManual, Selection: "bench"}
				for i := range n {
					nr.Steps = append(nr.Steps, store.NewStep{Asset: defs[0].Key, Partitions: []string{dayKey(lo%2000 + i)}, MaxAttempts: 1})
				}
				lo += n
				if _, err := s.CreateRun(ctx, nr); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				var wg sync.WaitGroup
				for w := range c.workers {
					wg.Go(func() {
						req := store.ClaimRequest{Worker: fmt.Sprintf("bench-%d", w), Limit: c.batch, Lease: time.Minute}
						claimed, err := s.ClaimSteps(ctx, req)
						if err != nil {
							b.Error(err)
							return
						}
						for len(claimed) > 0 {
							results := make([]store.StepResult, len(claimed))
							for i, cs := range claimed {
								results[i] = store.StepResult{StepID: cs.ID, Attempt: cs.Attempt, Worker: req.Worker,
									Outcome: store.OutcomeSucceeded, Events: []store.Event{{Kind: store.Materialization,
										Asset: cs.Asset, Partition: cs.Partitions[0], InputSeq: cs.InputSeq, DataVersion: uuid.NewString()}}}
							}
							fs, err := s.FinishSteps(ctx, results, &req)
							if err != nil {
								b.Error(err)
								return
							}
							for i, err := range fs.Errors {
								if err != nil {
									b.Errorf("report %d: %v", i, err)
									return
								}
							}
							mu.Lock()
							steps += len(results)
							mu.Unlock()
							claimed = fs.Claimed
						}
					})
				}
				wg.Wait()
			}
			if steps != n*b.N {
				b.Fatalf("%d steps ran, want %d", steps, n*b.N)
			}
			b.ReportMetric(float64(steps)/b.Elapsed().Seconds(), "steps/s")
		})
	}
}
