package storetest

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/freshetdev/freshet/assets"
	"github.com/freshetdev/freshet/store"
)

// testCapsUnderConcurrency: with many workers claiming at once, an asset's cap
// and a run's MaxParallel hold at every moment. Each worker counts a step as
// running from the return of its claim to the start of its FinishStep: a span
// within the step's RUNNING time in the store, so the count never exceeds what
// the store let run.
func testCapsUnderConcurrency(t *testing.T, f *qfixture) {
	const capRaw, maxParallel, workers = 3, 4, 8
	ids := sortedIDs(2)
	var rawSteps, metricSteps []store.NewStep
	for i := range 40 {
		rawSteps = append(rawSteps, ns(rawDaily, days(i, i+1)))
		metricSteps = append(metricSteps, ns(metrics, days(i, i+1)))
	}
	a := f.createRun(withID(ids[0], newRun(rawSteps...)))
	nr := withID(ids[1], newRun(metricSteps...))
	nr.MaxParallel = maxParallel
	b := f.createRun(nr)

	var (
		mu       sync.Mutex
		running  = map[uuid.UUID]int{} // by run
		peak     = map[uuid.UUID]int{}
		wg       sync.WaitGroup
		deadline = time.Now().Add(2 * patience)
		caps     = map[assets.Key]int{rawDaily: capRaw}
		limits   = map[uuid.UUID]int{a.ID: capRaw, b.ID: maxParallel}
		names    = map[uuid.UUID]string{a.ID: fmt.Sprintf("%s steps (cap %d)", rawDaily, capRaw), b.ID: fmt.Sprintf("steps of the run with MaxParallel %d", maxParallel)}
		finished int
		total    = len(rawSteps) + len(metricSteps)
	)
	for w := range workers {
		wg.Go(func() {
			req := store.ClaimRequest{Worker: fmt.Sprintf("w%d", w), Limit: 2, Lease: testLease, Concurrency: caps}
			for !t.Failed() {
				if time.Now().After(deadline) {
					t.Errorf("%s: the runs did not end after %s", req.Worker, 2*patience)
					return
				}
				cs, err := f.q.ClaimSteps(f.ctx, req)
				if err != nil {
					t.Errorf("%s: ClaimSteps: %v", req.Worker, err)
					return
				}
				checkClaims(t, req.Worker+" ClaimSteps", req, cs)
				mu.Lock()
				for _, c := range cs {
					running[c.RunID]++
					if n := running[c.RunID]; n > peak[c.RunID] {
						peak[c.RunID] = n
						if n > limits[c.RunID] {
							t.Errorf("%d %s running at once", n, names[c.RunID])
						}
					}
				}
				done := finished
				mu.Unlock()
				if len(cs) == 0 {
					if done == total {
						return
					}
					time.Sleep(time.Millisecond)
					continue
				}
				time.Sleep(time.Millisecond) // hold the claims a moment, so that claims overlap
				for _, c := range cs {
					mu.Lock()
					running[c.RunID]--
					mu.Unlock()
					if _, err := f.q.FinishStep(f.ctx, store.StepResult{StepID: c.ID, Attempt: c.Attempt, Worker: req.Worker, Outcome: store.OutcomeSkippedFresh}); err != nil {
						t.Errorf("%s: FinishStep: %v", req.Worker, err)
						return
					}
					mu.Lock()
					finished++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	f.wantRun("capped run", a.ID, store.RunSucceeded)
	f.wantRun("run with MaxParallel", b.ID, store.RunSucceeded)
	t.Logf("peak running: %s %d (cap %d), run %d (MaxParallel %d)", rawDaily, peak[a.ID], capRaw, peak[b.ID], maxParallel)
}

// testConcurrentExpire: workers expiring leases at once put each expired step
// back exactly once.
func testConcurrentExpire(t *testing.T, f *qfixture) {
	const n, workers = 20, 4
	var steps []store.NewStep
	for i := range n {
		steps = append(steps, tries(2, ns(metrics, days(i, i+1))))
	}
	r := f.createRun(newRun(steps...))
	cs := f.claimReq(store.ClaimRequest{Worker: "w-gone", Limit: n, Lease: 100 * time.Millisecond})
	if len(cs) != n {
		t.Fatalf("claimed %d steps, want %d", len(cs), n)
	}
	var (
		mu       sync.Mutex
		reported = map[uuid.UUID]int{}
		total    int
		wg       sync.WaitGroup
		deadline = time.Now().Add(patience)
	)
	for w := range workers {
		wg.Go(func() {
			for !t.Failed() {
				mu.Lock()
				all := total == n
				mu.Unlock()
				if all {
					return
				}
				if time.Now().After(deadline) {
					t.Errorf("expirer %d: leases of 100ms not all expired after %s", w, patience)
					return
				}
				es, err := f.q.ExpireLeases(f.ctx)
				if err != nil {
					t.Errorf("expirer %d: ExpireLeases: %v", w, err)
					return
				}
				mu.Lock()
				for _, e := range es {
					reported[e.StepID]++
					total++
					if e.Status != store.StepReady || e.Attempt != 1 || e.Worker != "w-gone" || e.RunID != r.ID {
						t.Errorf("ExpireLeases: %+v; want attempt 1 of w-gone in run %s, READY", e, r.ID)
					}
				}
				mu.Unlock()
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	for _, c := range cs {
		if reported[c.ID] != 1 {
			t.Errorf("step %s reported expired %d times, want once", c.ID, reported[c.ID])
		}
		if as := f.attempts(c.ID); len(as) != 1 || as[0].Status != store.AttemptLeaseExpired {
			t.Errorf("step %s: attempts %v, want one LEASE_EXPIRED", c.ID, as)
		}
		f.wantStep("expired step", c.ID, store.StepReady)
	}
	if again := f.drain("w2"); len(again) != n {
		t.Errorf("claimed %d expired steps again, want %d", len(again), n)
	}
	f.wantRun("end", r.ID, store.RunSucceeded)
}

// testConcurrentOverlappingRuns: runs whose batch steps overlap each other's in
// part are created while workers claim and finish steps, all at once. Every run
// ends SUCCEEDED (no step waits forever on a cycle of joins), each materializes
// each of its partitions once, and no two steps run over one (asset, partition)
// at the same moment. A worker counts a partition as running from the return of
// its claim to the start of its FinishStep, a span within the step's RUNNING time
// in the store.
func testConcurrentOverlappingRuns(t *testing.T, f *qfixture) {
	const runs, creators, workers = 24, 3, 6
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 0))
	// Each run covers a window of days of sales/raw and sales/clean, cut into
	// batches of 1 to 3 days, the clean ones needing the raw ones they overlap.
	plans := make([]store.NewRun, runs)
	for k := range plans {
		lo := rng.IntN(12)
		hi := lo + 1 + rng.IntN(6)
		var steps []store.NewStep
		var rawRanges [][2]int
		for i := lo; i < hi; {
			j := min(hi, i+1+rng.IntN(3))
			steps = append(steps, ns(rawDaily, days(i, j)))
			rawRanges = append(rawRanges, [2]int{i, j})
			i = j
		}
		for i := lo; i < hi; {
			j := min(hi, i+1+rng.IntN(3))
			var deps []int
			for d, r := range rawRanges {
				if r[0] < j && i < r[1] {
					deps = append(deps, d)
				}
			}
			steps = append(steps, ns(cleanDaily, days(i, j), deps...))
			i = j
		}
		plans[k] = newRun(steps...)
	}

	type ap struct {
		asset     assets.Key
		partition string
	}
	var (
		mu      sync.Mutex
		created []*store.Run
		running = map[ap]uuid.UUID{} // by (asset, partition): the step running over it
		wg      sync.WaitGroup
		next    int
	)
	deadline := time.Now().Add(2 * patience)
	for range creators {
		wg.Go(func() {
			for !t.Failed() {
				mu.Lock()
				k := next
				next++
				mu.Unlock()
				if k >= runs {
					return
				}
				r, err := f.q.CreateRun(f.ctx, plans[k])
				if err != nil {
					t.Errorf("CreateRun(%s): %v", runString(plans[k]), err)
					return
				}
				mu.Lock()
				created = append(created, r)
				mu.Unlock()
				time.Sleep(time.Duration(rng2(k)) * time.Millisecond)
			}
		})
	}
	allDone := func() bool {
		mu.Lock()
		rs := slices.Clone(created)
		mu.Unlock()
		if len(rs) < runs {
			return false
		}
		for _, r := range rs {
			got, err := f.q.GetRun(f.ctx, r.ID)
			if err != nil {
				t.Errorf("GetRun: %v", err)
				return true
			}
			if !got.Status.Done() {
				return false
			}
		}
		return true
	}
	for w := range workers {
		wg.Go(func() {
			req := store.ClaimRequest{Worker: fmt.Sprintf("w%d", w), Limit: 2, Lease: testLease}
			var mine []store.ClaimedStep
			for !t.Failed() {
				if time.Now().After(deadline) {
					t.Errorf("%s: the runs did not end after %s", req.Worker, 2*patience)
					return
				}
				if len(mine) == 0 {
					cs, err := f.q.ClaimSteps(f.ctx, req)
					if err != nil {
						t.Errorf("%s: ClaimSteps: %v", req.Worker, err)
						return
					}
					mine = cs
				}
				if len(mine) == 0 {
					if allDone() {
						return
					}
					time.Sleep(2 * time.Millisecond)
					continue
				}
				mu.Lock()
				for _, c := range mine {
					for _, p := range c.Partitions {
						k := ap{c.Asset, p}
						if other, busy := running[k]; busy && other != c.ID {
							t.Errorf("steps %s and %s run over %s %s at once", other, c.ID, c.Asset, p)
						}
						running[k] = c.ID
					}
				}
				mu.Unlock()
				c := mine[0]
				mine = mine[1:]
				mu.Lock()
				for _, p := range c.Partitions {
					delete(running, ap{c.Asset, p})
				}
				mu.Unlock()
				res := result(c, store.OutcomeSucceeded)
				res.Events = mats(c)
				if w%2 == 0 && len(mine) == 0 {
					res.ClaimNext = &req
				}
				fr, err := f.q.FinishStep(f.ctx, res)
				if err != nil {
					t.Errorf("%s: FinishStep(%s): %v", req.Worker, c.ID, err)
					return
				}
				mine = append(mine, fr.Claimed...)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	for _, r := range created {
		f.wantRun("overlapping run", r.ID, store.RunSucceeded)
		want := map[assets.Key][]string{}
		for _, s := range r.Steps {
			want[s.Asset] = append(want[s.Asset], s.Partitions...)
		}
		f.checkMaterialized("overlapping runs", r.ID, want)
	}
	f.verifyClean()
}

// rng2 is a small deterministic spread of pauses between run creations.
func rng2(k int) int { return (k * 7) % 5 }
