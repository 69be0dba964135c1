package storetest

import (
	"fmt"
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
