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

// testConcurrentFinishSteps: workers sharing one store handle claim steps of a
// run of 200 (a wide level of 100 and a chain of 99 on it, then one step on
// everything) and report them in batches with FinishSteps, half of them
// claiming their next steps in the same call: every step succeeds exactly once,
// after a retry for some, each (asset, partition) is materialized once and the
// run SUCCEEDS.
func testConcurrentFinishSteps(t *testing.T, f *qfixture) {
	const n, workers = 100, 6
	var steps []store.NewStep
	for i := range n {
		steps = append(steps, tries(2, ns(rawDaily, days(i, i+1)))) // the wide level
	}
	for i := range n - 1 {
		deps := []int{i}
		if i > 0 {
			deps = append(deps, n+i-1) // the chain
		}
		steps = append(steps, tries(2, ns(cleanDaily, days(i, i+1), deps...)))
	}
	all := make([]int, 0, n+1)
	for i := range n {
		all = append(all, i)
	}
	all = append(all, 2*n-2) // the chain's end
	steps = append(steps, tries(2, ns(summary, unpart, all...)))
	r := f.createRun(newRun(steps...))
	flaky := map[uuid.UUID]bool{} // their first attempt fails, retried at once
	for i, s := range r.Steps {
		if i%9 == 4 {
			flaky[s.ID] = true
		}
	}

	type key struct {
		step    uuid.UUID
		attempt int
	}
	var (
		mu        sync.Mutex
		claims    = map[key]string{}
		succeeded = map[uuid.UUID]int{}
		wg        sync.WaitGroup
	)
	record := func(worker string, cs []store.ClaimedStep) {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range cs {
			k := key{c.ID, c.Attempt}
			if prev, dup := claims[k]; dup {
				t.Errorf("step %s attempt %d claimed by %s and by %s", c.ID, c.Attempt, prev, worker)
			}
			claims[k] = worker
		}
	}
	deadline := time.Now().Add(2 * patience)
	for w := range workers {
		wg.Go(func() {
			worker := fmt.Sprintf("w%d", w)
			req := store.ClaimRequest{Worker: worker, Limit: 1 + w%4, Lease: testLease}
			var mine []store.ClaimedStep
			for !t.Failed() {
				if time.Now().After(deadline) {
					t.Errorf("%s: the run did not end after %s", worker, 2*patience)
					return
				}
				if len(mine) == 0 {
					cs, err := f.q.ClaimSteps(f.ctx, req)
					if err != nil {
						t.Errorf("%s: ClaimSteps: %v", worker, err)
						return
					}
					checkClaims(t, worker+" ClaimSteps", req, cs)
					record(worker, cs)
					mine = cs
				}
				if len(mine) == 0 {
					run, err := f.q.GetRun(f.ctx, r.ID)
					if err != nil {
						t.Errorf("%s: GetRun: %v", worker, err)
						return
					}
					if run.Status.Done() {
						return
					}
					time.Sleep(2 * time.Millisecond)
					continue
				}
				results := make([]store.StepResult, len(mine))
				for i, c := range mine {
					results[i] = success(c)
					if flaky[c.ID] && c.Attempt == 1 {
						results[i] = result(c, store.OutcomeFailed)
						results[i].Error, results[i].Retry = "first attempt fails", true
					}
				}
				var next *store.ClaimRequest
				if w%2 == 0 {
					next = &req
				}
				fs, err := f.q.FinishSteps(f.ctx, results, next)
				if err != nil {
					t.Errorf("%s: FinishSteps(%d reports): %v", worker, len(results), err)
					return
				}
				if len(fs.Results) != len(results) || len(fs.Errors) != len(results) {
					t.Errorf("%s: FinishSteps(%d reports): %d results, %d errors", worker, len(results), len(fs.Results), len(fs.Errors))
					return
				}
				for i, res := range results {
					if err := fs.Errors[i]; err != nil {
						t.Errorf("%s: FinishSteps: report %d (step %s attempt %d, %s): %v", worker, i, res.StepID, res.Attempt, res.Outcome, err)
						continue
					}
					fr := fs.Results[i]
					if fr == nil || fr.Step == nil || fr.Step.ID != res.StepID {
						t.Errorf("%s: FinishSteps: Results[%d] = %+v, want the result of step %s", worker, i, fr, res.StepID)
						continue
					}
					want := store.StepSucceeded
					if res.Retry {
						want = store.StepReady
					}
					if fr.Step.Status != want {
						t.Errorf("%s: FinishSteps: step %s attempt %d (%s) is %s, want %s", worker, res.StepID, res.Attempt, res.Outcome, fr.Step.Status, want)
					}
					if fr.Step.Status == store.StepSucceeded {
						mu.Lock()
						succeeded[res.StepID]++
						mu.Unlock()
					}
				}
				if next != nil {
					checkClaims(t, worker+" FinishSteps next", req, fs.Claimed)
				}
				record(worker, fs.Claimed)
				mine = fs.Claimed
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	f.wantRun("after the workers", r.ID, store.RunSucceeded)
	for _, s := range f.runSteps(r.ID) {
		want := 1
		if flaky[s.ID] {
			want = 2
		}
		if s.Status != store.StepSucceeded || s.Attempt != want {
			t.Errorf("step %d: %s, attempt %d; want SUCCEEDED after %d attempts", s.Ordinal, s.Status, s.Attempt, want)
		}
		if succeeded[s.ID] != 1 {
			t.Errorf("step %d: reported SUCCEEDED %d times by FinishSteps, want once", s.Ordinal, succeeded[s.ID])
		}
		for a := 1; a <= want+1; a++ {
			if _, ok := claims[key{s.ID, a}]; ok != (a <= want) {
				t.Errorf("step %d: attempt %d claimed %v; want %d attempts claimed", s.Ordinal, a, ok, want)
			}
		}
		if as := f.attempts(s.ID); len(as) != want || as[len(as)-1].Status != store.AttemptSucceeded {
			t.Errorf("step %d: attempts %v, want %d, the last SUCCEEDED", s.Ordinal, as, want)
		}
	}
	f.checkMaterialized("FinishSteps from concurrent workers", r.ID, map[assets.Key][]string{rawDaily: days(0, n), cleanDaily: days(0, n-1), summary: unpart})
	if fails := f.runEvents(r.ID, store.Failure); len(fails) != 0 {
		t.Errorf("%d failure events; retried attempts record none", len(fails))
	}
	f.verifyClean()
}
