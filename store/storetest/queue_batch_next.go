package storetest

import (
	"testing"

	"github.com/google/uuid"

	"github.com/freshetdev/freshet/assets"
	"github.com/freshetdev/freshet/store"
)

// testBatchNext: FinishSteps' next claims, as ClaimSteps, up to its Limit after
// the reports are recorded: steps the reports made ready among them (in plan
// order), within the assets' caps and the runs' MaxParallel, the steps the
// reports ended no longer counting. A report's ClaimNext is ignored. With no
// reports, next just claims.
func testBatchNext(t *testing.T, f *qfixture) {
	next := func(limit int, caps map[assets.Key]int) *store.ClaimRequest {
		return &store.ClaimRequest{Worker: "w2", Limit: limit, Lease: testLease, Concurrency: caps}
	}
	ignored := &store.ClaimRequest{Worker: "w-ignored", Limit: 10, Lease: testLease}
	cases := []struct {
		name        string
		maxParallel int
		prep        int // steps claimed by w3 after the first two, before the call
		reports     string
		claimNext   bool // the reports carry a ClaimNext
		next        *store.ClaimRequest
		want        []int // ordinals of the steps next claims
		refused     bool  // the reports are refused (lease lost)
	}{
		{name: "limit", reports: "both", next: next(2, nil), want: []int{2, 3}},
		{name: "everything ready", reports: "both", next: next(10, nil), want: []int{2, 3, 4, 5}},
		{name: "asset cap", reports: "both", next: next(10, map[assets.Key]int{metrics: 1}), want: []int{2, 3}},
		{name: "asset cap with a step running elsewhere", prep: 1, reports: "both", next: next(10, map[assets.Key]int{metrics: 2}), want: []int{2, 4}},
		{name: "run MaxParallel", maxParallel: 3, prep: 1, reports: "both", next: next(10, nil), want: []int{2, 4}},
		{name: "ClaimNext of the reports ignored, no next", reports: "both", claimNext: true},
		{name: "ClaimNext of the reports ignored, with next", reports: "both", claimNext: true, next: next(1, nil), want: []int{2}},
		{name: "no reports", reports: "none", next: next(2, nil), want: []int{3, 4}},
		{name: "refused report", reports: "late", next: next(10, nil), want: []int{3, 4, 5}, refused: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := f.fresh(t)
			nr := newRun(
				ns(rawDaily, days(0, 1)),      // 0: claimed, reported
				ns(metrics, days(0, 1)),       // 1: claimed, reported
				ns(cleanDaily, days(0, 1), 0), // 2: made ready by 0's success
				ns(metrics, days(1, 2)),       // 3
				ns(metrics, days(2, 3)),       // 4
				ns(metrics, days(3, 4)),       // 5
			)
			nr.MaxParallel = tc.maxParallel
			r := f.createRun(nr)
			cs := f.claim("w1", 2)
			if !sameIDs(claimIDs(cs), []uuid.UUID{r.Steps[0].ID, r.Steps[1].ID}) {
				t.Fatalf("test setup: claimed %s, want steps 0 and 1", idsString(claimIDs(cs)))
			}
			running := map[uuid.UUID]bool{}
			if tc.prep > 0 {
				for _, c := range f.claim("w3", tc.prep) {
					running[c.ID] = true
				}
			}
			if len(running) != tc.prep {
				t.Fatalf("test setup: w3 claimed %d steps, want %d", len(running), tc.prep)
			}
			var results []store.StepResult
			switch tc.reports {
			case "both":
				results = []store.StepResult{success(cs[0]), success(cs[1])}
			case "late":
				late := success(cs[0])
				late.Worker = "w-late"
				results = []store.StepResult{late}
			}
			if tc.claimNext {
				for i := range results {
					results[i].ClaimNext = ignored
				}
			}
			fs := f.finishSteps(results, tc.next)
			for i, err := range fs.Errors {
				if tc.refused {
					wantErrIs(t, "FinishSteps(a report of a worker without the lease)", err, store.ErrLeaseLost)
				} else if err != nil {
					t.Fatalf("FinishSteps: report %d: %v", i, err)
				}
			}
			var want []uuid.UUID
			for _, o := range tc.want {
				want = append(want, r.Steps[o].ID)
			}
			if !sameIDs(claimIDs(fs.Claimed), want) {
				t.Errorf("FinishSteps next claimed %s, want %s", idsString(claimIDs(fs.Claimed)), idsString(want))
			}
			w := f.watermark()
			for _, c := range fs.Claimed {
				if c.Attempt != 1 || c.InputSeq != w {
					t.Errorf("claimed %s: attempt %d input seq %d; want 1, %d (the watermark after the reports' events)", c.ID, c.Attempt, c.InputSeq, w)
				}
				if as := f.attempts(c.ID); len(as) != 1 || as[0].Worker != "w2" || as[0].Status != store.AttemptRunning {
					t.Errorf("Attempts of a step claimed by next = %v, want one RUNNING of w2", as)
				}
				running[c.ID] = true
			}
			// Every other step is as the reports left it: nothing else claimed.
			for i, s := range f.runSteps(r.ID) {
				status := store.StepReady
				switch {
				case running[s.ID]:
					status = store.StepRunning
				case i == 2 && tc.reports != "both":
					status = store.StepPending
				case i < 2 && tc.reports == "both":
					status = store.StepSucceeded
				case i < 2:
					status = store.StepRunning
				}
				if s.Status != status || s.LeaseOwner == ignored.Worker {
					t.Errorf("step %d after the call: %s; want %s, never leased to %s", i, stepString(s), status, ignored.Worker)
				}
			}
		})
	}
}

// testClaimMaterialized: a claimed step is Materialized when one of its
// partitions, at least, has a materialization recorded by the claim (by an
// append or a step, even one finished in the very call that claims), whichever
// way it is claimed: ClaimSteps, FinishStep's ClaimNext, FinishSteps' next.
func testClaimMaterialized(t *testing.T, f *qfixture) {
	paths := []struct {
		name  string
		claim func(f *qfixture, trigger store.ClaimedStep, req store.ClaimRequest) []store.ClaimedStep
	}{
		{"ClaimSteps", func(f *qfixture, trigger store.ClaimedStep, req store.ClaimRequest) []store.ClaimedStep {
			f.succeed(trigger)
			return f.claimReq(req)
		}},
		{"FinishStep ClaimNext", func(f *qfixture, trigger store.ClaimedStep, req store.ClaimRequest) []store.ClaimedStep {
			res := success(trigger)
			res.ClaimNext = &req
			return f.finish(res).Claimed
		}},
		{"FinishSteps next", func(f *qfixture, trigger store.ClaimedStep, req store.ClaimRequest) []store.ClaimedStep {
			return f.finishSteps([]store.StepResult{success(trigger)}, &req).Claimed
		}},
	}
	for _, p := range paths {
		t.Run(p.name, func(t *testing.T) {
			f := f.fresh(t)
			f.append(mat(rawDaily, day(1)), failure(rawDaily, day(5), "x"), mat(summary, ""), mat(rawDaily, day(7)), failure(rawDaily, day(7), "y"))
			ids := sortedIDs(3)
			trigger := f.createRun(withID(ids[0], newRun(ns(rawDaily, days(10, 11)))))
			r := f.createRun(withID(ids[1], newRun(
				ns(rawDaily, days(0, 1)),   // 0: never materialized
				ns(rawDaily, days(1, 3)),   // 1: one of its two partitions materialized
				ns(rawDaily, days(5, 6)),   // 2: failed only
				ns(metrics, days(1, 2)),    // 3: another asset's partition of that key materialized
				ns(summary, unpart),        // 4: unpartitioned, materialized
				ns(rawDaily, days(7, 8)),   // 5: materialized, then failed
				ns(cleanDaily, days(0, 3)), // 6: its upstream's partitions materialized, not its own
			)))
			j := f.createRun(withID(ids[2], newRun(ns(rawDaily, days(9, 11))))) // joins the trigger: d10 materialized by it
			if len(j.Steps[0].Joined) != 1 {
				t.Fatalf("test setup: the joiner joined %v, want the trigger %s", j.Steps[0].Joined, trigger.Steps[0].ID)
			}
			tc := f.claimOne("w1")
			if tc.ID != trigger.Steps[0].ID {
				t.Fatalf("test setup: claimed %s, want the trigger %s", tc.ID, trigger.Steps[0].ID)
			}
			if tc.Materialized {
				t.Errorf("%s: claimed step over %s %s, never materialized: Materialized true, want false", p.name, rawDaily, day(10))
			}
			want := map[uuid.UUID]bool{
				r.Steps[0].ID: false, r.Steps[1].ID: true, r.Steps[2].ID: false, r.Steps[3].ID: false,
				r.Steps[4].ID: true, r.Steps[5].ID: true, r.Steps[6].ID: false, j.Steps[0].ID: true,
			}
			cs := p.claim(f, tc, store.ClaimRequest{Worker: "w2", Limit: 20, Lease: testLease})
			if len(cs) != len(want) {
				t.Fatalf("%s claimed %s, want %d steps", p.name, idsString(claimIDs(cs)), len(want))
			}
			for _, c := range cs {
				w, ok := want[c.ID]
				if !ok {
					t.Errorf("%s claimed unexpected step %s", p.name, c.ID)
					continue
				}
				if c.Materialized != w {
					t.Errorf("%s: claimed step over %s %q: Materialized %v, want %v", p.name, c.Asset, c.Partitions, c.Materialized, w)
				}
			}
		})
	}
}
