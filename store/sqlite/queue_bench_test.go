package sqlite

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/freshetdev/freshet/assets"
	"github.com/freshetdev/freshet/store"
)

// benchQueueStore opens a store with two hourly assets, b/x and b/y built from
// it: enough partitions for any number of runs that never join each other.
func benchQueueStore(b *testing.B) (*Store, *assets.Partitions) {
	b.Helper()
	s, _ := openTemp(b)
	p := partitions(b, assets.PartitionsSpec{Granularity: assets.Hourly, Start: "1990-01-01"})
	mustSync(b, s, defsOf(built("b/x", p), built("b/y", p, "b/x")))
	return s, p
}

// BenchmarkCreateRun records runs of 1,000 steps: 500 steps of b/x, each over
// one new partition, and 500 of b/y, each needing its b/x step.
func BenchmarkCreateRun(b *testing.B) {
	const steps = 1000
	b.Run(fmt.Sprintf("steps=%d", steps), func(b *testing.B) {
		ctx := context.Background()
		s, p := benchQueueStore(b)
		next := 0
		for b.Loop() {
			nr := store.NewRun{Trigger: store.TriggerManual, Selection: "b/*"}
			for i := range steps / 2 {
				key := p.Key(next + i)
				nr.Steps = append(nr.Steps, store.NewStep{Asset: "b/x", Partitions: []string{key}, MaxAttempts: 3})
			}
			for i := range steps / 2 {
				key := p.Key(next + i)
				nr.Steps = append(nr.Steps, store.NewStep{Asset: "b/y", Partitions: []string{key}, MaxAttempts: 3, Deps: []int{i}})
			}
			next += steps / 2
			if _, err := s.CreateRun(ctx, nr); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(steps)*float64(b.N)/b.Elapsed().Seconds(), "steps/s")
	})
}

// BenchmarkClaimFinish runs the worker's cycle on ready steps of one asset, one
// step at a time: claim it, then finish it with one materialization per
// partition. claimnext finishes each step claiming the next in the same
// transaction, as a busy worker does (one transaction per step).
func BenchmarkClaimFinish(b *testing.B) {
	for _, tc := range []struct {
		name       string
		partitions int
		claimNext  bool
	}{
		{"partitions=1", 1, false},
		{"partitions=1/claimnext", 1, true},
		{"partitions=24", 24, false},
	} {
		b.Run(tc.name, func(b *testing.B) {
			ctx := context.Background()
			s, p := benchQueueStore(b)
			// Runs of 1,000 independent ready steps, as many as the benchmark needs.
			const perRun = 1000
			next := 0
			for created := 0; created < b.N+1; created += perRun {
				nr := store.NewRun{Trigger: store.TriggerManual}
				for range perRun {
					var keys []string
					for range tc.partitions {
						keys = append(keys, p.Key(next))
						next++
					}
					nr.Steps = append(nr.Steps, store.NewStep{Asset: "b/x", Partitions: keys, MaxAttempts: 1})
				}
				if _, err := s.CreateRun(ctx, nr); err != nil {
					b.Fatal(err)
				}
			}
			req := store.ClaimRequest{Worker: "bench", Limit: 1, Lease: time.Minute}
			finish := func(c store.ClaimedStep) store.StepResult {
				res := store.StepResult{StepID: c.ID, Attempt: c.Attempt, Worker: c.LeaseOwner, Outcome: store.OutcomeSucceeded}
				for _, key := range c.Partitions {
					res.Events = append(res.Events, store.Event{Kind: store.Materialization, Asset: c.Asset, Partition: key, InputSeq: c.InputSeq})
				}
				if tc.claimNext {
					res.ClaimNext = &req
				}
				return res
			}
			var held []store.ClaimedStep
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if len(held) == 0 {
					cs, err := s.ClaimSteps(ctx, req)
					if err != nil || len(cs) != 1 {
						b.Fatalf("ClaimSteps = %d steps, %v", len(cs), err)
					}
					held = cs
				}
				fr, err := s.FinishStep(ctx, finish(held[0]))
				if err != nil {
					b.Fatal(err)
				}
				held = fr.Claimed
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "steps/s")
		})
	}
}

// BenchmarkFinishSteps runs the cycle of a busy worker that batches its
// reports: one FinishSteps call records the successes of a batch of steps (one
// materialization each) and claims as many for the next call, in one
// transaction. batch=1 is BenchmarkClaimFinish's claimnext in FinishSteps'
// form; steps/s shows what batching gains.
func BenchmarkFinishSteps(b *testing.B) {
	for _, batch := range []int{1, 8, 32} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			ctx := context.Background()
			s, p := benchQueueStore(b)
			const perRun = 1000
			next := 0
			for created := 0; created < (b.N+1)*batch; created += perRun {
				nr := store.NewRun{Trigger: store.TriggerManual}
				for range perRun {
					nr.Steps = append(nr.Steps, store.NewStep{Asset: "b/x", Partitions: []string{p.Key(next)}, MaxAttempts: 1})
					next++
				}
				if _, err := s.CreateRun(ctx, nr); err != nil {
					b.Fatal(err)
				}
			}
			req := store.ClaimRequest{Worker: "bench", Limit: batch, Lease: time.Minute}
			held, err := s.ClaimSteps(ctx, req)
			if err != nil || len(held) != batch {
				b.Fatalf("ClaimSteps = %d steps, %v", len(held), err)
			}
			results := make([]store.StepResult, 0, batch)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				results = results[:0]
				for _, c := range held {
					res := store.StepResult{StepID: c.ID, Attempt: c.Attempt, Worker: c.LeaseOwner, Outcome: store.OutcomeSucceeded}
					for _, key := range c.Partitions {
						res.Events = append(res.Events, store.Event{Kind: store.Materialization, Asset: c.Asset, Partition: key, InputSeq: c.InputSeq})
					}
					results = append(results, res)
				}
				out, err := s.FinishSteps(ctx, results, &req)
				if err != nil {
					b.Fatal(err)
				}
				for j, err := range out.Errors {
					if err != nil {
						b.Fatalf("report %d: %v", j, err)
					}
				}
				if len(out.Claimed) != batch {
					b.Fatalf("claimed %d steps, want %d", len(out.Claimed), batch)
				}
				held = out.Claimed
			}
			b.StopTimer()
			b.ReportMetric(float64(batch)*float64(b.N)/b.Elapsed().Seconds(), "steps/s")
		})
	}
}
