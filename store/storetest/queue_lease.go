package storetest

import (
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/freshetdev/freshet/assets"
	"github.com/freshetdev/freshet/store"
)

// ---- leases -------------------------------------------------------------------

func testHeartbeat(t *testing.T, f *qfixture) {
	r := f.createRun(newRun(ns(rawDaily, days(0, 1)), ns(metrics, days(0, 1)), ns(cleanDaily, days(0, 1))))
	cs := f.claim("w1", 2)
	other := f.claimOne("w2")
	if len(cs) != 2 || other.ID != r.Steps[2].ID {
		t.Fatalf("test setup: claimed %s and %s", idsString(claimIDs(cs)), other.ID)
	}
	raw, met := byID(t, cs, r.Steps[0].ID), byID(t, cs, r.Steps[1].ID)
	rawLease, otherLease := f.getStep(raw.ID).LeaseExpiresAt, f.getStep(other.ID).LeaseExpiresAt

	hb := f.heartbeat("w1", []store.Lease{
		{StepID: raw.ID, Attempt: 1},
		{StepID: met.ID, Attempt: 1},
		{StepID: raw.ID, Attempt: 2},   // not the attempt it runs
		{StepID: other.ID, Attempt: 1}, // another worker's
		{StepID: uuid.New(), Attempt: 1},
	}, 2*testLease)
	want := []store.LeaseState{{Held: true}, {Held: true}, {}, {}, {}}
	for i := range want {
		if hb[i] != want[i] {
			t.Errorf("Heartbeat: lease %d: %+v, want %+v", i, hb[i], want[i])
		}
	}
	if got := f.getStep(raw.ID).LeaseExpiresAt; !got.After(rawLease) {
		t.Errorf("Heartbeat(extend 2h) on a lease claimed for 1h: expiry %s, want later than %s", ts(got), ts(rawLease))
	}
	if got := f.getStep(other.ID).LeaseExpiresAt; !got.Equal(otherLease) {
		t.Errorf("w1's Heartbeat moved w2's lease from %s to %s", ts(otherLease), ts(got))
	}
	if hb, err := f.q.Heartbeat(f.ctx, "w1", nil, testLease); err != nil || len(hb) != 0 {
		t.Errorf("Heartbeat(no leases) = %v, %v; want nothing, no error", hb, err)
	}

	s, err := f.q.CancelStep(f.ctx, met.ID)
	if err != nil {
		t.Fatalf("CancelStep(running): %v", err)
	}
	if s.Status != store.StepRunning || !s.CancelRequested {
		t.Errorf("CancelStep(running) = %s; want still RUNNING, cancel requested", stepString(*s))
	}
	hb = f.heartbeat("w1", []store.Lease{{StepID: raw.ID, Attempt: 1}, {StepID: met.ID, Attempt: 1}}, testLease)
	if hb[0] != (store.LeaseState{Held: true}) || hb[1] != (store.LeaseState{Held: true, CancelRequested: true}) {
		t.Errorf("Heartbeat after CancelStep: %+v, want [held; held, cancel requested]", hb)
	}
	if _, err := f.q.CancelRun(f.ctx, r.ID); err != nil {
		t.Fatalf("CancelRun: %v", err)
	}
	if hb := f.heartbeat("w1", []store.Lease{{StepID: raw.ID, Attempt: 1}}, testLease); hb[0] != (store.LeaseState{Held: true, CancelRequested: true}) {
		t.Errorf("Heartbeat after CancelRun: %+v, want held, cancel requested", hb[0])
	}
	if hb := f.heartbeat("w2", []store.Lease{{StepID: other.ID, Attempt: 1}}, testLease); hb[0] != (store.LeaseState{Held: true, CancelRequested: true}) {
		t.Errorf("w2's Heartbeat after CancelRun: %+v, want held, cancel requested", hb[0])
	}
	f.succeed(raw)
	if hb := f.heartbeat("w1", []store.Lease{{StepID: raw.ID, Attempt: 1}}, testLease); hb[0].Held {
		t.Errorf("Heartbeat of a finished step: held, want not held")
	}
}

// expireUntil calls ExpireLeases until every step of want was reported, failing
// on a report of a step outside want, and returns the reports by step.
func (f *qfixture) expireUntil(what string, want ...uuid.UUID) map[uuid.UUID]store.ExpiredStep {
	f.t.Helper()
	got := map[uuid.UUID]store.ExpiredStep{}
	f.eventually(what, func() bool {
		es, err := f.q.ExpireLeases(f.ctx)
		if err != nil {
			f.t.Fatalf("ExpireLeases: %v", err)
		}
		for _, e := range es {
			if !containsID(want, e.StepID) {
				f.t.Fatalf("ExpireLeases reported step %s (%+v), whose lease has not expired", e.StepID, e)
			}
			if _, dup := got[e.StepID]; dup {
				f.t.Errorf("ExpireLeases reported step %s twice: %+v", e.StepID, e)
			}
			got[e.StepID] = e
		}
		return len(got) == len(want)
	})
	return got
}

// testExpireLeases: an expired lease puts the step back READY with the attempt
// counted, or fails it when it has no attempts left; the late worker is fenced off.
func testExpireLeases(t *testing.T, f *qfixture) {
	r := f.createRun(newRun(tries(2, ns(rawDaily, days(0, 1))), ns(metrics, days(0, 1)), ns(cleanDaily, days(0, 1), 1), ns(weekly, []string{firstWeek})))
	short := f.claimReq(store.ClaimRequest{Worker: "w-short", Limit: 2, Lease: 100 * time.Millisecond})
	long := f.claimOne("w-long")
	if len(short) != 2 || long.ID != r.Steps[3].ID {
		t.Fatalf("test setup: claimed %s and %s", idsString(claimIDs(short)), long.ID)
	}
	raw, met := byID(t, short, r.Steps[0].ID), byID(t, short, r.Steps[1].ID)
	got := f.expireUntil("the 100ms leases expire", raw.ID, met.ID)

	if e := got[raw.ID]; e != (store.ExpiredStep{StepID: raw.ID, RunID: r.ID, Attempt: 1, Worker: "w-short", Status: store.StepReady}) {
		t.Errorf("ExpireLeases: %+v; want step %s of run %s, attempt 1, worker w-short, READY (1 of 2 attempts)", e, raw.ID, r.ID)
	}
	if e := got[met.ID]; e != (store.ExpiredStep{StepID: met.ID, RunID: r.ID, Attempt: 1, Worker: "w-short", Status: store.StepFailed}) {
		t.Errorf("ExpireLeases: %+v; want step %s of run %s, attempt 1, worker w-short, FAILED (no attempts left)", e, met.ID, r.ID)
	}
	s := f.wantStep("expired with attempts left", raw.ID, store.StepReady)
	if s.Attempt != 1 || s.LeaseOwner != "" || !s.NotBefore.IsZero() || s.ReadyAt.IsZero() {
		t.Errorf("expired step = %s; want attempt 1 counted, no lease, no not-before, ready", stepString(*s))
	}
	if as := f.attempts(raw.ID); len(as) != 1 || as[0].Status != store.AttemptLeaseExpired || as[0].FinishedAt.IsZero() || !strings.Contains(as[0].Error, "w-short") {
		t.Errorf("Attempts of the expired step = %v; want one LEASE_EXPIRED, finished, its error naming the worker", as)
	}
	f.checkJoins("step put back after its lease expired", rawDaily, days(0, 1), raw.ID)

	f.wantStep("expired without attempts left", met.ID, store.StepFailed)
	fails := f.runEvents(r.ID, store.Failure)
	if len(fails) != 1 || fails[0].Asset != metrics || fails[0].Partition != day(0) || fails[0].StepID != met.ID {
		t.Errorf("failure events %v; want one, for %s %s of step %s", fails, metrics, day(0), met.ID)
	}
	if p := f.partition(metrics, day(0)); !p.Failed {
		t.Errorf("Partition(%s, %s) not failed after its step's lease expired for good", metrics, day(0))
	}
	f.wantStep("downstream of a step failed by expiry", r.Steps[2].ID, store.StepUpstreamFailed)
	f.wantStep("step with a long lease", long.ID, store.StepRunning)

	// The late worker is fenced off.
	before := f.snapQueue(r.ID)
	late := result(raw, store.OutcomeSucceeded)
	late.Events = mats(raw)
	_, err := f.q.FinishStep(f.ctx, late)
	wantErrIs(t, "FinishStep of the worker whose lease expired", err, store.ErrLeaseLost)
	late = result(met, store.OutcomeFailed)
	_, err = f.q.FinishStep(f.ctx, late)
	wantErrIs(t, "FinishStep of the worker whose lease expired (step failed since)", err, store.ErrLeaseLost)
	f.checkQueueUnchanged("late reports", before)
	if hb := f.heartbeat("w-short", []store.Lease{{StepID: raw.ID, Attempt: 1}, {StepID: met.ID, Attempt: 1}}, testLease); hb[0].Held || hb[1].Held {
		t.Errorf("Heartbeat of the worker whose leases expired: %+v, want none held", hb)
	}

	c := f.claimOne("w2")
	if c.ID != raw.ID || c.Attempt != 2 {
		t.Errorf("claim after expiry: step %s attempt %d, want %s attempt 2", c.ID, c.Attempt, raw.ID)
	}
	if es, err := f.q.ExpireLeases(f.ctx); err != nil || len(es) != 0 {
		t.Errorf("ExpireLeases with no lease expired = %v, %v; want nothing", es, err)
	}
	f.succeed(c)
	if fr := f.succeed(long); fr.RunStatus != store.RunFailed {
		t.Errorf("run end: %s, want FAILED", fr.RunStatus)
	}
	f.checkMaterialized("after expiry", r.ID, map[assets.Key][]string{rawDaily: days(0, 1), weekly: {firstWeek}})
}

// testExpireCancelRequested: a step asked to cancel whose worker vanished is
// CANCELED when its lease expires.
func testExpireCancelRequested(t *testing.T, f *qfixture) {
	r := f.createRun(newRun(tries(3, ns(rawDaily, days(0, 1))), ns(cleanDaily, days(0, 1), 0)))
	b := f.createRun(newRun(ns(rawDaily, days(0, 1)))) // joins r0
	cs := f.claimReq(store.ClaimRequest{Worker: "w1", Limit: 1, Lease: 100 * time.Millisecond})
	if len(cs) != 1 || cs[0].ID != r.Steps[0].ID {
		t.Fatalf("test setup: claimed %s", idsString(claimIDs(cs)))
	}
	if _, err := f.q.CancelRun(f.ctx, r.ID); err != nil {
		t.Fatalf("CancelRun: %v", err)
	}
	got := f.expireUntil("the 100ms lease expires", cs[0].ID)
	if e := got[cs[0].ID]; e.Status != store.StepCanceled || e.Attempt != 1 || e.Worker != "w1" {
		t.Errorf("ExpireLeases: %+v; want attempt 1 of w1, CANCELED (a cancel was requested)", e)
	}
	f.wantStep("expired with a cancel requested", cs[0].ID, store.StepCanceled)
	if as := f.attempts(cs[0].ID); len(as) != 1 || as[0].Status != store.AttemptLeaseExpired {
		t.Errorf("Attempts = %v, want one LEASE_EXPIRED", as)
	}
	f.wantStep("dependent", r.Steps[1].ID, store.StepCanceled)
	f.wantRun("canceled run", r.ID, store.RunCanceled)
	f.wantStep("joiner", b.Steps[0].ID, store.StepReady)
	if fails := f.runEvents(r.ID); len(fails) != 0 {
		t.Errorf("events %v, want none for a canceled step", fails)
	}
}

// ---- cancel -------------------------------------------------------------------

func testCancelRun(t *testing.T, f *qfixture) {
	r := f.createRun(newRun(ns(rawDaily, days(0, 1)), ns(metrics, days(0, 1)), ns(cleanDaily, days(0, 1), 0), ns(weekly, []string{firstWeek}, 2)))
	c := f.claimOne("w1")
	got, err := f.q.CancelRun(f.ctx, r.ID)
	if err != nil {
		t.Fatalf("CancelRun: %v", err)
	}
	if got.ID != r.ID || got.CanceledAt.IsZero() || got.Status != store.RunRunning || !got.FinishedAt.IsZero() {
		t.Errorf("CancelRun = %s; want canceled at a time, still RUNNING (a step runs), not finished", runRecordString(*got))
	}
	for _, id := range []uuid.UUID{r.Steps[1].ID, r.Steps[2].ID, r.Steps[3].ID} {
		if s := f.wantStep("not started when its run was canceled", id, store.StepCanceled); s.FinishedAt.IsZero() {
			t.Errorf("CANCELED step %s has no FinishedAt", id)
		}
	}
	if s := f.wantStep("running when its run was canceled", c.ID, store.StepRunning); !s.CancelRequested {
		t.Errorf("running step of a canceled run: CancelRequested false")
	}
	if cs := f.claim("w2", 10); len(cs) != 0 {
		t.Errorf("claimed %s from a canceled run", idsString(claimIDs(cs)))
	}
	f.checkJoins("partition of a canceled step", metrics, days(0, 1))
	f.checkJoins("partition of a running step asked to cancel", rawDaily, days(0, 1), c.ID)

	fr := f.finish(result(c, store.OutcomeCanceled))
	if fr.Step.Status != store.StepCanceled || fr.RunStatus != store.RunCanceled {
		t.Errorf("FinishStep(canceled): step %s, run %s; want CANCELED, CANCELED", fr.Step.Status, fr.RunStatus)
	}
	end := f.wantRun("canceled run after its last step", r.ID, store.RunCanceled)
	if !end.CanceledAt.Equal(got.CanceledAt) {
		t.Errorf("CanceledAt moved from %s to %s", ts(got.CanceledAt), ts(end.CanceledAt))
	}
	if as := f.attempts(c.ID); len(as) != 1 || as[0].Status != store.AttemptCanceled {
		t.Errorf("Attempts = %v, want one CANCELED", as)
	}
	before := f.snapQueue(r.ID)
	again, err := f.q.CancelRun(f.ctx, r.ID)
	if err != nil || again.Status != store.RunCanceled {
		t.Errorf("CancelRun of a canceled run = %v, %v; want it as it is, no error", again, err)
	}
	f.checkQueueUnchanged("CancelRun of a canceled run", before)
}

// testCancelRunStepSucceeds: a step that ends well after its run was canceled
// records its materializations; the run still ends CANCELED.
func testCancelRunStepSucceeds(t *testing.T, f *qfixture) {
	r := f.createRun(newRun(ns(rawDaily, days(0, 1)), ns(cleanDaily, days(0, 1), 0)))
	c := f.claimOne("w1")
	if _, err := f.q.CancelRun(f.ctx, r.ID); err != nil {
		t.Fatalf("CancelRun: %v", err)
	}
	fr := f.succeed(c)
	if fr.Step.Status != store.StepSucceeded || len(fr.Events) != 1 || fr.RunStatus != store.RunCanceled || len(fr.Ready) != 0 {
		t.Errorf("FinishStep(succeeded) after CancelRun: step %s, %d events, run %s, ready %v; want SUCCEEDED, 1, CANCELED, none",
			fr.Step.Status, len(fr.Events), fr.RunStatus, fr.Ready)
	}
	f.wantStep("dependent", r.Steps[1].ID, store.StepCanceled)
	f.checkMaterialized("step that ended after the cancel", r.ID, map[assets.Key][]string{rawDaily: days(0, 1)})
}

// testCancelStep cancels one step not started and its dependents in the run.
func testCancelStep(t *testing.T, f *qfixture) {
	r := f.createRun(newRun(ns(rawDaily, days(0, 1)), ns(cleanDaily, days(0, 1), 0), ns(weekly, []string{firstWeek}, 1), ns(metrics, days(0, 1)), ns(summary, unpart, 3)))
	s, err := f.q.CancelStep(f.ctx, r.Steps[0].ID)
	if err != nil {
		t.Fatalf("CancelStep: %v", err)
	}
	if s.ID != r.Steps[0].ID || s.Status != store.StepCanceled || s.FinishedAt.IsZero() {
		t.Errorf("CancelStep = %s; want it CANCELED, finished", stepString(*s))
	}
	f.wantStep("dependent of the canceled step", r.Steps[1].ID, store.StepCanceled)
	f.wantStep("dependent of the canceled step, transitively", r.Steps[2].ID, store.StepCanceled)
	f.wantStep("independent step", r.Steps[3].ID, store.StepReady)
	f.wantStep("dependent of the independent step", r.Steps[4].ID, store.StepPending)
	f.checkJoins("partition of the canceled step", rawDaily, days(0, 1))
	f.checkJoins("partition of its canceled dependent", cleanDaily, days(0, 1))
	cs := f.claim("w1", 10)
	if !containsID(claimIDs(cs), r.Steps[3].ID) || containsID(claimIDs(cs), r.Steps[0].ID) {
		t.Errorf("claimed %s; want the independent step, not the canceled one", idsString(claimIDs(cs)))
	}
	for _, c := range cs {
		f.succeed(c)
	}
	f.drain("w1")
	f.wantRun("run with a canceled step", r.ID, store.RunCanceled)
	f.wantStep("dependent of the independent step", r.Steps[4].ID, store.StepSucceeded)
}

// testCancelRunningStep: canceling a running step asks its worker; when it
// reports the cancel, its dependents are canceled.
func testCancelRunningStep(t *testing.T, f *qfixture) {
	r := f.createRun(newRun(ns(rawDaily, days(0, 1)), ns(cleanDaily, days(0, 1), 0), ns(metrics, days(0, 1))))
	cs := f.claim("w1", 2)
	raw, met := byID(t, cs, r.Steps[0].ID), byID(t, cs, r.Steps[2].ID)
	s, err := f.q.CancelStep(f.ctx, raw.ID)
	if err != nil {
		t.Fatalf("CancelStep: %v", err)
	}
	if s.Status != store.StepRunning || !s.CancelRequested {
		t.Errorf("CancelStep(running) = %s; want RUNNING, cancel requested", stepString(*s))
	}
	if hb := f.heartbeat("w1", []store.Lease{{StepID: raw.ID, Attempt: 1}, {StepID: met.ID, Attempt: 1}}, testLease); !hb[0].CancelRequested || hb[1].CancelRequested {
		t.Errorf("Heartbeat: %+v; want a cancel requested for the canceled step only", hb)
	}
	f.finish(result(raw, store.OutcomeCanceled))
	f.wantStep("dependent of a canceled step", r.Steps[1].ID, store.StepCanceled)
	f.wantRun("run with a step running", r.ID, store.RunRunning)
	if fr := f.succeed(met); fr.RunStatus != store.RunCanceled {
		t.Errorf("run end: %s, want CANCELED (a step was canceled)", fr.RunStatus)
	}
}

func testCancelNotFound(t *testing.T, f *qfixture) {
	f.createRun(newRun(ns(rawDaily, days(0, 1))))
	id := uuid.New()
	_, err := f.q.CancelRun(f.ctx, id)
	wantErrIs(t, "CancelRun(unknown)", err, store.ErrNotFound)
	_, err = f.q.CancelStep(f.ctx, id)
	wantErrIs(t, "CancelStep(unknown)", err, store.ErrNotFound)
	_, err = f.q.GetRun(f.ctx, id)
	wantErrIs(t, "GetRun(unknown)", err, store.ErrNotFound)
	_, err = f.q.GetStep(f.ctx, id)
	wantErrIs(t, "GetStep(unknown)", err, store.ErrNotFound)
	_, err = f.q.GetBackfill(f.ctx, id)
	wantErrIs(t, "GetBackfill(unknown)", err, store.ErrNotFound)
	_, err = f.q.CancelBackfill(f.ctx, id)
	wantErrIs(t, "CancelBackfill(unknown)", err, store.ErrNotFound)
	_, err = f.q.RunSteps(f.ctx, id)
	wantErrIs(t, "RunSteps(unknown)", err, store.ErrNotFound)
	_, err = f.q.Attempts(f.ctx, id)
	wantErrIs(t, "Attempts(unknown)", err, store.ErrNotFound)
}

// testCancelFinished: canceling a finished run or step changes nothing.
func testCancelFinished(t *testing.T, f *qfixture) {
	ok := f.createRun(newRun(ns(rawDaily, days(0, 1))))
	f.drain("w1")
	failed := f.createRun(newRun(ns(metrics, days(0, 1)), ns(cleanDaily, days(0, 1), 0)))
	f.fail(f.claimOne("w1"), "boom")
	for _, tc := range []struct {
		run  *store.Run
		want store.RunStatus
	}{{ok, store.RunSucceeded}, {failed, store.RunFailed}} {
		before := f.snapQueue(tc.run.ID)
		r, err := f.q.CancelRun(f.ctx, tc.run.ID)
		if err != nil {
			t.Errorf("CancelRun(%s run): %v, want no error", tc.want, err)
		} else if r.Status != tc.want || !r.CanceledAt.IsZero() {
			t.Errorf("CancelRun(%s run) = %s; want it unchanged", tc.want, runRecordString(*r))
		}
		for _, s := range tc.run.Steps {
			if _, err := f.q.CancelStep(f.ctx, s.ID); err != nil {
				t.Errorf("CancelStep(finished step of a %s run): %v, want no error", tc.want, err)
			}
		}
		f.checkQueueUnchanged("cancel of a finished run", before)
	}
	if cs := f.claim("w1", 10); len(cs) != 0 {
		t.Errorf("claimed %s", idsString(claimIDs(cs)))
	}
}
