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

// testClaimOrder: READY steps are claimed oldest run first, in plan order within a
// run, at most Limit at a time; PENDING steps never.
func testClaimOrder(t *testing.T, f *qfixture) {
	ids := sortedIDs(3)
	r1 := f.createRun(withID(ids[0], newRun(ns(metrics, days(0, 1)), ns(rawDaily, days(0, 1)), ns(cleanDaily, days(0, 1), 1), ns(rawDaily, days(1, 2)))))
	r2 := f.createRun(withID(ids[1], newRun(ns(rawDaily, days(5, 6)), ns(metrics, days(5, 6)))))
	r3 := f.createRun(withID(ids[2], newRun(ns(metrics, days(9, 10)))))
	w := f.watermark()
	want := [][]uuid.UUID{
		{r1.Steps[0].ID, r1.Steps[1].ID},
		{r1.Steps[3].ID, r2.Steps[0].ID},
		{r2.Steps[1].ID, r3.Steps[0].ID},
	}
	for i, ids := range want {
		cs := f.claim("w1", 2)
		if !sameIDs(claimIDs(cs), ids) {
			t.Errorf("claim %d (limit 2): claimed %s, want %s (oldest run first, plan order)", i+1, idsString(claimIDs(cs)), idsString(ids))
		}
		for _, c := range cs {
			if c.Attempt != 1 || c.InputSeq != w || c.Force {
				t.Errorf("claim %d: step %s has attempt %d, input seq %d, force %v; want 1, %d (the watermark), false", i+1, c.ID, c.Attempt, c.InputSeq, c.Force, w)
			}
		}
		if i == 0 {
			if r := f.wantRun("run with a claimed step", r1.ID, store.RunRunning); r.StartedAt.IsZero() {
				t.Errorf("RUNNING run has no StartedAt")
			}
			if r := f.wantRun("run not claimed from yet", r3.ID, store.RunQueued); !r.StartedAt.IsZero() {
				t.Errorf("QUEUED run has StartedAt %s", ts(r.StartedAt))
			}
		}
	}
	if cs := f.claim("w1", 10); len(cs) != 0 {
		t.Errorf("claim with only a PENDING step left: claimed %s, want none", idsString(claimIDs(cs)))
	}
	f.wantStep("step whose upstream runs", r1.Steps[2].ID, store.StepPending)
	f.wantRun("all claimed", r3.ID, store.RunRunning)
}

// testClaimBackoff: a step retried with RetryAfter is READY but not claimable
// until then.
func testClaimBackoff(t *testing.T, f *qfixture) {
	r := f.createRun(newRun(tries(3, ns(rawDaily, days(0, 1))), tries(3, ns(metrics, days(0, 1)))))
	cs := f.claim("w1", 2)
	if len(cs) != 2 {
		t.Fatalf("claimed %d steps, want 2", len(cs))
	}
	slow, fast := byID(t, cs, r.Steps[0].ID), byID(t, cs, r.Steps[1].ID)
	res := f.retry(slow, "try later", time.Hour)
	if s := res.Step; s.Status != store.StepReady || s.NotBefore.IsZero() || s.LeaseOwner != "" || s.Error != "try later" || s.Attempt != 1 {
		t.Errorf("FinishStep(failed, retry in 1h).Step = %s; want READY with a not-before, no lease, the error, attempt 1", stepString(*s))
	}
	if as := f.attempts(slow.ID); len(as) == 1 && res.Step.NotBefore.Sub(as[0].FinishedAt) < time.Hour {
		t.Errorf("NotBefore %s is less than RetryAfter (1h) after the attempt's end %s", ts(res.Step.NotBefore), ts(as[0].FinishedAt))
	}
	f.retry(fast, "flaky", 200*time.Millisecond)
	var again store.ClaimedStep
	f.eventually("the step retried after 200ms becomes claimable", func() bool {
		for _, c := range f.claim("w2", 10) {
			switch c.ID {
			case slow.ID:
				t.Fatalf("step %s claimed within its 1h backoff", slow.ID)
			case fast.ID:
				again = c
			default:
				t.Fatalf("claimed unexpected step %s", c.ID)
			}
		}
		return again.ID != uuid.Nil
	})
	if again.Attempt != 2 || again.LeaseOwner != "w2" || !again.NotBefore.IsZero() || !again.StartedAt.Equal(fast.StartedAt) {
		t.Errorf("retried step claimed as %s; want attempt 2, leased to w2, no not-before, StartedAt of its first attempt %s",
			stepString(again.Step), ts(fast.StartedAt))
	}
	f.wantStep("step in its 1h backoff", slow.ID, store.StepReady)
	if cs := f.claim("w2", 10); len(cs) != 0 {
		t.Errorf("claimed %s, want none (the other step waits 1h)", idsString(claimIDs(cs)))
	}
}

// testClaimConcurrencyCap: an asset's steps never run more at once, across
// workers and runs, than the request's cap for it.
func testClaimConcurrencyCap(t *testing.T, f *qfixture) {
	r := f.createRun(newRun(ns(rawDaily, days(0, 1)), ns(rawDaily, days(1, 2)), ns(rawDaily, days(2, 3)), ns(metrics, days(0, 1)), ns(cleanDaily, days(0, 1))))
	capped := func(worker string, n int) []store.ClaimedStep {
		return f.claimReq(store.ClaimRequest{Worker: worker, Limit: 10, Lease: testLease, Concurrency: map[assets.Key]int{rawDaily: n}})
	}
	cs := capped("w1", 2)
	want := []uuid.UUID{r.Steps[0].ID, r.Steps[1].ID, r.Steps[3].ID, r.Steps[4].ID}
	if !sameIDs(claimIDs(cs), want) {
		t.Errorf("claim with %s capped at 2: claimed %s, want %s (two of it, in plan order, and the others)", rawDaily, idsString(claimIDs(cs)), idsString(want))
	}
	if cs := capped("w2", 2); len(cs) != 0 {
		t.Errorf("another worker, same cap: claimed %s, want none (2 already running)", idsString(claimIDs(cs)))
	}
	if cs := capped("w2", 3); !sameIDs(claimIDs(cs), []uuid.UUID{r.Steps[2].ID}) {
		t.Errorf("another worker, cap 3 with 2 running: claimed %s, want only %s", idsString(claimIDs(cs)), r.Steps[2].ID)
	}
	r2 := f.createRun(newRun(ns(rawDaily, days(3, 4))))
	if cs := capped("w3", 3); len(cs) != 0 {
		t.Errorf("a step of another run, cap 3 with 3 running: claimed %s, want none", idsString(claimIDs(cs)))
	}
	f.succeed(byID(t, cs, r.Steps[0].ID))
	if cs := capped("w3", 3); !sameIDs(claimIDs(cs), []uuid.UUID{r2.Steps[0].ID}) {
		t.Errorf("cap 3 once one ended: claimed %s, want %s", idsString(claimIDs(cs)), r2.Steps[0].ID)
	}
}

// testClaimMaxParallel: a run's steps never run more at once than its
// MaxParallel, in ClaimSteps and in FinishStep's ClaimNext.
func testClaimMaxParallel(t *testing.T, f *qfixture) {
	ids := sortedIDs(2)
	nr := withID(ids[0], newRun(ns(metrics, days(0, 1)), ns(metrics, days(1, 2)), ns(metrics, days(2, 3)), ns(metrics, days(3, 4))))
	nr.MaxParallel = 2
	r1 := f.createRun(nr)
	r2 := f.createRun(withID(ids[1], newRun(ns(rawDaily, days(0, 1)), ns(rawDaily, days(1, 2)))))
	cs := f.claim("w1", 10)
	want := []uuid.UUID{r1.Steps[0].ID, r1.Steps[1].ID, r2.Steps[0].ID, r2.Steps[1].ID}
	if !sameIDs(claimIDs(cs), want) {
		t.Fatalf("claimed %s, want %s (two of the run capped at 2, all of the other)", idsString(claimIDs(cs)), idsString(want))
	}
	if more := f.claim("w2", 10); len(more) != 0 {
		t.Errorf("claimed %s with the run at its MaxParallel, want none", idsString(claimIDs(more)))
	}
	f.succeed(byID(t, cs, r1.Steps[0].ID))
	if more := f.claim("w2", 10); !sameIDs(claimIDs(more), []uuid.UUID{r1.Steps[2].ID}) {
		t.Errorf("claimed %s once one of the run's steps ended, want only %s", idsString(claimIDs(more)), r1.Steps[2].ID)
	}
	res := result(byID(t, cs, r1.Steps[1].ID), store.OutcomeSucceeded)
	res.Events = mats(byID(t, cs, r1.Steps[1].ID))
	res.ClaimNext = &store.ClaimRequest{Worker: "w1", Limit: 10, Lease: testLease}
	if fr := f.finish(res); !sameIDs(claimIDs(fr.Claimed), []uuid.UUID{r1.Steps[3].ID}) {
		t.Errorf("FinishStep ClaimNext claimed %s, want only %s (the run at MaxParallel 2 with one running)", idsString(claimIDs(fr.Claimed)), r1.Steps[3].ID)
	}
}

// testClaimAttemptsInputSeq: attempts are numbered from 1, each records the
// catalog watermark at its claim, which the step's materializations carry; the
// run's Force comes with the claim.
func testClaimAttemptsInputSeq(t *testing.T, f *qfixture) {
	ids := sortedIDs(2)
	nr := withID(ids[0], newRun(tries(3, ns(rawDaily, days(0, 1)))))
	nr.Force = true
	r := f.createRun(nr)
	plain := f.createRun(withID(ids[1], newRun(ns(metrics, days(0, 1)))))

	f.append1(mat(metrics, day(10)))
	w1 := f.watermark()
	c1 := f.claimOne("w1")
	if c1.ID != r.Steps[0].ID || c1.Attempt != 1 || c1.InputSeq != w1 || !c1.Force {
		t.Errorf("first claim: step %s attempt %d input seq %d force %v; want %s, 1, %d (the watermark), true",
			c1.ID, c1.Attempt, c1.InputSeq, c1.Force, r.Steps[0].ID, w1)
	}
	as := f.attempts(c1.ID)
	if len(as) != 1 || as[0].Status != store.AttemptRunning || as[0].Worker != "w1" || as[0].InputSeq != w1 || as[0].StartedAt.IsZero() || !as[0].FinishedAt.IsZero() {
		t.Errorf("Attempts after the claim: %v; want one RUNNING attempt of w1 at input seq %d, started", as, w1)
	}
	exit := 3
	res := result(c1, store.OutcomeFailed)
	res.ExitCode, res.Error, res.Retry = &exit, "flaky", true
	f.finish(res)

	f.append1(obs(srcDaily, day(0), "v2"))
	w2 := f.watermark()
	c2 := f.claimOne("w2")
	if c2.ID != c1.ID || c2.Attempt != 2 || c2.InputSeq != w2 {
		t.Errorf("second claim: step %s attempt %d input seq %d; want %s, 2, %d", c2.ID, c2.Attempt, c2.InputSeq, c1.ID, w2)
	}
	f.append1(mat(metrics, day(11))) // after the claim: not an input
	fr := f.succeed(c2)
	if len(fr.Events) != 1 || fr.Events[0].InputSeq != w2 {
		t.Errorf("FinishStep.Events = %v, want one materialization at input seq %d", fr.Events, w2)
	}
	if p := f.partition(rawDaily, day(0)); p.InputSeq != w2 {
		t.Errorf("Partition(%s, %s).InputSeq = %d, want %d (the claim's)", rawDaily, day(0), p.InputSeq, w2)
	}
	as = f.attempts(c1.ID)
	if len(as) != 2 {
		t.Fatalf("Attempts: %d, want 2", len(as))
	}
	if a := as[0]; a.Status != store.AttemptFailed || a.ExitCode == nil || *a.ExitCode != 3 || a.Error != "flaky" || a.FinishedAt.IsZero() || a.Worker != "w1" || a.InputSeq != w1 {
		t.Errorf("attempt 1 = %s; want FAILED by w1 at input seq %d, exit 3, error flaky, finished", attemptString(a), w1)
	}
	if a := as[1]; a.Status != store.AttemptSucceeded || a.Worker != "w2" || a.InputSeq != w2 || a.FinishedAt.IsZero() || a.ExitCode != nil {
		t.Errorf("attempt 2 = %s; want SUCCEEDED by w2 at input seq %d, finished", attemptString(a), w2)
	}
	s := f.getStep(c1.ID)
	if s.Attempt != 2 || !s.StartedAt.Equal(c1.StartedAt) {
		t.Errorf("step after two attempts: %s; want attempt 2 and StartedAt of the first, %s", stepString(*s), ts(c1.StartedAt))
	}
	if c := f.claimOne("w1"); c.ID != plain.Steps[0].ID || c.Force {
		t.Errorf("claim of a run without Force: step %s force %v, want %s, false", c.ID, c.Force, plain.Steps[0].ID)
	}
}

// testQueueConcurrency: workers claiming and finishing a DAG of 200 steps at once
// run every attempt of every step exactly once and record each (asset, partition)
// once for the run.
func testQueueConcurrency(t *testing.T, f *qfixture) {
	const n, workers = 100, 8
	var steps []store.NewStep
	for i := range n {
		steps = append(steps, tries(2, ns(rawDaily, days(i, i+1))))
	}
	for i := range n - 1 {
		steps = append(steps, tries(2, ns(cleanDaily, days(i, i+1), i)))
	}
	all := make([]int, n)
	for i := range all {
		all[i] = i
	}
	steps = append(steps, tries(2, ns(summary, unpart, all...)))
	r := f.createRun(newRun(steps...))
	flaky := map[uuid.UUID]bool{} // fail their first attempt, retried at once
	for i, s := range r.Steps {
		if i%7 == 3 {
			flaky[s.ID] = true
		}
	}

	type key struct {
		step    uuid.UUID
		attempt int
	}
	var (
		mu     sync.Mutex
		claims = map[key]string{}
		wg     sync.WaitGroup
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
			req := store.ClaimRequest{Worker: worker, Limit: 2, Lease: testLease}
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
				c := mine[0]
				mine = mine[1:]
				res := result(c, store.OutcomeSucceeded)
				res.Events = mats(c)
				if flaky[c.ID] && c.Attempt == 1 {
					res = result(c, store.OutcomeFailed)
					res.Error, res.Retry = "first attempt fails", true
				}
				if w%2 == 0 && len(mine) == 0 {
					res.ClaimNext = &req
				}
				fr, err := f.q.FinishStep(f.ctx, res)
				if err != nil {
					t.Errorf("%s: FinishStep(step %s attempt %d): %v", worker, c.ID, c.Attempt, err)
					return
				}
				if res.ClaimNext != nil {
					checkClaims(t, worker+" FinishStep ClaimNext", req, fr.Claimed)
					record(worker, fr.Claimed)
					mine = append(mine, fr.Claimed...)
				}
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
		for a := 1; a <= want; a++ {
			if _, ok := claims[key{s.ID, a}]; !ok {
				t.Errorf("step %d: attempt %d never claimed", s.Ordinal, a)
			}
		}
		if _, ok := claims[key{s.ID, want + 1}]; ok {
			t.Errorf("step %d: attempt %d claimed, want %d attempts", s.Ordinal, want+1, want)
		}
		if as := f.attempts(s.ID); len(as) != want || as[len(as)-1].Status != store.AttemptSucceeded {
			t.Errorf("step %d: attempts %v, want %d, the last SUCCEEDED", s.Ordinal, as, want)
		}
	}
	f.checkMaterialized("concurrent workers", r.ID, map[assets.Key][]string{rawDaily: days(0, n), cleanDaily: days(0, n-1), summary: unpart})
	if fails := f.runEvents(r.ID, store.Failure); len(fails) != 0 {
		t.Errorf("%d failure events; retried attempts record none", len(fails))
	}
	f.verifyClean()
}
