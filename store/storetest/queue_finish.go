package storetest

import (
	"cmp"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/freshetdev/freshet/assets"
	"github.com/freshetdev/freshet/store"
)

// recordedFlags masks what the event log records (materialized, failed) out of
// partition flags: the queued and running flags are not the subject here.
func recordedFlags(fl store.PartitionFlags) store.PartitionFlags {
	return fl & (store.FlagMaterialized | store.FlagFailed)
}

func testFinishSucceeded(t *testing.T, f *qfixture) {
	r := f.createRun(newRun(ns(rawDaily, days(0, 2)), ns(cleanDaily, days(0, 1), 0), ns(cleanDaily, days(1, 2), 0), ns(summary, unpart, 0)))
	c := f.claimOne("w1")
	f.append1(mat(metrics, day(10))) // after the claim: not an input of the step
	events := mats(c)
	events[0].DataVersion = "v-d0"
	events[0].Metadata = []byte(`{"rows": 12}`)
	fr := f.finish(store.StepResult{StepID: c.ID, Attempt: c.Attempt, Worker: "w1", Outcome: store.OutcomeSucceeded, Events: events})

	if s := fr.Step; s.Status != store.StepSucceeded || s.FinishedAt.IsZero() || s.LeaseOwner != "" || !s.LeaseExpiresAt.IsZero() || s.Attempt != 1 {
		t.Errorf("FinishStep(succeeded).Step = %s; want SUCCEEDED, finished, lease cleared, attempt 1", stepString(*s))
	}
	if got := stepString(*f.getStep(c.ID)); got != stepString(*fr.Step) {
		t.Errorf("GetStep after FinishStep\n got %s\nwant %s (as FinishStep returned it)", got, stepString(*fr.Step))
	}
	if len(fr.Events) != 2 {
		t.Fatalf("FinishStep.Events: %d events, want 2", len(fr.Events))
	}
	for i, e := range fr.Events {
		if e.Seq == 0 || e.Kind != store.Materialization || e.Asset != rawDaily || e.Partition != day(i) || e.RunID != r.ID || e.StepID != c.ID || e.InputSeq != c.InputSeq {
			t.Errorf("FinishStep.Events[%d] = %+v; want the materialization of %s %s with a seq, run %s, step %s, input seq %d",
				i, e, rawDaily, day(i), r.ID, c.ID, c.InputSeq)
		}
	}
	if fr.Events[0].DataVersion != "v-d0" || !jsonEqual(fr.Events[0].Metadata, events[0].Metadata) {
		t.Errorf("FinishStep.Events[0]: data version %q, metadata %s; want those reported", fr.Events[0].DataVersion, fr.Events[0].Metadata)
	}
	checkEventsMatch(t, "Events of the run", f.runEvents(r.ID), reversed(fr.Events))
	for i, e := range fr.Events {
		p := f.partition(rawDaily, day(i))
		if p.SuccessSeq != e.Seq || p.InputSeq != c.InputSeq || p.DataVersion != e.DataVersion || p.Failed {
			t.Errorf("Partition(%s, %s) = %+v; want success seq %d, input seq %d, data version %q", rawDaily, day(i), *p, e.Seq, c.InputSeq, e.DataVersion)
		}
	}
	st := f.assetState(rawDaily)
	for i := range 2 {
		if fl := recordedFlags(at(st.Flags, i)); fl != store.FlagMaterialized {
			t.Errorf("ReadState %s: flags[%d] = %b, want materialized", rawDaily, i, fl)
		}
	}
	want := []uuid.UUID{r.Steps[1].ID, r.Steps[2].ID, r.Steps[3].ID}
	if !sameIDs(fr.Ready, want) {
		t.Errorf("FinishStep.Ready = %s, want the dependents %s", idsString(fr.Ready), idsString(want))
	}
	if fr.RunStatus != store.RunRunning {
		t.Errorf("FinishStep.RunStatus = %s, want RUNNING", fr.RunStatus)
	}
	for _, id := range want {
		if s := f.wantStep("dependent", id, store.StepReady); s.ReadyAt.IsZero() {
			t.Errorf("READY dependent %s has no ReadyAt", id)
		}
	}
	if as := f.attempts(c.ID); len(as) != 1 || as[0].Status != store.AttemptSucceeded || as[0].FinishedAt.IsZero() {
		t.Errorf("Attempts = %v, want one SUCCEEDED, finished", as)
	}
	g := f.getRun(r.ID)
	checkCounts(t, "GetRun.Counts", g.Counts, map[store.StepStatus]int{store.StepSucceeded: 1, store.StepReady: 3})
	checkCounts(t, "GetRun.Partitions", g.Partitions, map[store.StepStatus]int{store.StepSucceeded: 2, store.StepReady: 3})

	cs := f.claim("w1", 10)
	if !sameIDs(claimIDs(cs), want) {
		t.Fatalf("claimed %s, want the dependents %s", idsString(claimIDs(cs)), idsString(want))
	}
	for i, c := range cs {
		fr := f.succeed(c)
		wantStatus := store.RunRunning
		if i == len(cs)-1 {
			wantStatus = store.RunSucceeded
		}
		if fr.RunStatus != wantStatus {
			t.Errorf("FinishStep(dependent %d of %d).RunStatus = %s, want %s", i+1, len(cs), fr.RunStatus, wantStatus)
		}
	}
	f.wantRun("all steps succeeded", r.ID, store.RunSucceeded)
	// Its in-flight rows are gone: new runs over the same partitions join nothing.
	f.checkJoins("after success", rawDaily, days(0, 2))
	f.checkJoins("after success", summary, unpart)
	f.verifyClean()
}

// testFinishBadEvents: a success whose events are not materializations of the
// step's asset and partitions is refused, naming them, and writes nothing.
func testFinishBadEvents(t *testing.T, f *qfixture) {
	r := f.createRun(newRun(ns(rawDaily, days(0, 2)), ns(cleanDaily, days(0, 1), 0), ns(metrics, days(0, 1))))
	c := f.claimOne("w1")
	withMeta := func(e store.Event, m string) store.Event { e.Metadata = []byte(m); return e }
	cases := []struct {
		name   string
		events []store.Event
		names  string // what the error must name ("": not checked)
	}{
		{"partition not of the step", []store.Event{mat(rawDaily, day(0)), mat(rawDaily, day(2))}, day(2)},
		{"asset not of the step", []store.Event{mat(rawDaily, day(0)), mat(cleanDaily, day(0))}, string(cleanDaily)},
		{"unpartitioned key", []store.Event{mat(rawDaily, "")}, ""},
		{"failure", []store.Event{mat(rawDaily, day(0)), failure(rawDaily, day(1), "x")}, ""},
		{"observation", []store.Event{obs(rawDaily, day(0), "v")}, ""},
		{"planned", []store.Event{planned(rawDaily, day(0))}, ""},
		{"metadata not JSON", []store.Event{withMeta(mat(rawDaily, day(0)), "{rows: 1")}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := f.on(t)
			before := f.snapQueue(r.ID)
			res := result(c, store.OutcomeSucceeded)
			res.Events = tc.events
			res.ClaimNext = &store.ClaimRequest{Worker: "w1", Limit: 10, Lease: testLease}
			fr, err := f.q.FinishStep(f.ctx, res)
			if err == nil {
				t.Fatalf("FinishStep(succeeded, %s) = %+v, want an error", tc.name, fr)
			}
			if errors.Is(err, store.ErrLeaseLost) {
				t.Errorf("FinishStep(succeeded, %s): error %v wraps ErrLeaseLost; the lease is held, the events are wrong", tc.name, err)
			}
			if tc.names != "" && !strings.Contains(err.Error(), tc.names) {
				t.Errorf("FinishStep(succeeded, %s): error %q does not name %s", tc.name, err, tc.names)
			}
			f.checkQueueUnchanged("refused FinishStep", before)
		})
	}
	if hb := f.heartbeat("w1", []store.Lease{{StepID: c.ID, Attempt: c.Attempt}}, testLease); len(hb) == 1 && !hb[0].Held {
		t.Errorf("Heartbeat after refused reports: lease not held, want it still held")
	}
	f.succeed(c)
	f.checkMaterialized("after the refused reports", r.ID, map[assets.Key][]string{rawDaily: days(0, 2)})
}

// testFinishFencing: a report from a worker that does not hold the step's lease
// for that attempt is refused with ErrLeaseLost and writes nothing, whatever its
// outcome; so is a second report of the same attempt.
func testFinishFencing(t *testing.T, f *qfixture) {
	r := f.createRun(newRun(tries(2, ns(rawDaily, days(0, 1))), ns(cleanDaily, days(0, 1), 0), ns(metrics, days(0, 1))))
	c := f.claimOne("w1")
	next := &store.ClaimRequest{Worker: "w2", Limit: 10, Lease: testLease}
	with := func(change func(*store.StepResult)) store.StepResult {
		res := result(c, store.OutcomeSucceeded)
		res.Events = mats(c)
		change(&res)
		return res
	}
	cases := []struct {
		name string
		res  store.StepResult
	}{
		{"another worker", with(func(r *store.StepResult) { r.Worker = "w2" })},
		{"another worker, with ClaimNext", with(func(r *store.StepResult) { r.Worker = "w2"; r.ClaimNext = next })},
		{"next attempt", with(func(r *store.StepResult) { r.Attempt = 2 })},
		{"attempt 0", with(func(r *store.StepResult) { r.Attempt = 0 })},
		{"another worker, failed", with(func(r *store.StepResult) { r.Worker = "w2"; r.Outcome = store.OutcomeFailed; r.Events = nil })},
		{"another worker, retry", with(func(r *store.StepResult) { r.Worker = "w2"; r.Outcome = store.OutcomeFailed; r.Retry = true })},
		{"another worker, skipped", with(func(r *store.StepResult) { r.Worker = "w2"; r.Outcome = store.OutcomeSkippedFresh; r.Events = nil })},
		{"another worker, canceled", with(func(r *store.StepResult) { r.Worker = "w2"; r.Outcome = store.OutcomeCanceled; r.Events = nil })},
		{"step never claimed", store.StepResult{StepID: r.Steps[2].ID, Attempt: 1, Worker: "w1", Outcome: store.OutcomeSucceeded, Events: []store.Event{mat(metrics, day(0))}}},
		// No such step is RUNNING under that lease either (wrapping ErrNotFound as well is fine).
		{"unknown step", store.StepResult{StepID: uuid.New(), Attempt: 1, Worker: "w1", Outcome: store.OutcomeFailed}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := f.on(t)
			before := f.snapQueue(r.ID)
			_, err := f.q.FinishStep(f.ctx, tc.res)
			wantErrIs(t, "FinishStep("+tc.name+")", err, store.ErrLeaseLost)
			f.checkQueueUnchanged("FinishStep("+tc.name+")", before)
		})
	}
	f.succeed(c)
	before := f.snapQueue(r.ID)
	_, err := f.q.FinishStep(f.ctx, with(func(*store.StepResult) {}))
	wantErrIs(t, "FinishStep reported twice", err, store.ErrLeaseLost)
	f.checkQueueUnchanged("FinishStep reported twice", before)
	f.checkMaterialized("after refused reports", r.ID, map[assets.Key][]string{rawDaily: days(0, 1)})
}

// testFinishRetry: a failed or timed-out attempt with Retry and attempts left puts
// the step back READY after its backoff, records no failure, and keeps its
// partitions held.
func testFinishRetry(t *testing.T, f *qfixture) {
	r := f.createRun(newRun(tries(3, ns(rawDaily, days(0, 1))), tries(3, ns(metrics, days(0, 1))), ns(cleanDaily, days(0, 1), 0)))
	cs := f.claim("w1", 2)
	if len(cs) != 2 {
		t.Fatalf("claimed %d steps, want 2", len(cs))
	}
	w := f.watermark()
	for _, tc := range []struct {
		step    store.ClaimedStep
		outcome store.StepOutcome
		attempt store.AttemptStatus
	}{
		{byID(t, cs, r.Steps[0].ID), store.OutcomeFailed, store.AttemptFailed},
		{byID(t, cs, r.Steps[1].ID), store.OutcomeTimedOut, store.AttemptTimedOut},
	} {
		exit := 1
		res := result(tc.step, tc.outcome)
		res.ExitCode, res.Error, res.Retry, res.RetryAfter = &exit, "boom", true, time.Hour
		fr := f.finish(res)
		if s := fr.Step; s.Status != store.StepReady || s.Error != "boom" || s.NotBefore.IsZero() || s.LeaseOwner != "" || s.Attempt != 1 || !s.FinishedAt.IsZero() {
			t.Errorf("FinishStep(%s, retry).Step = %s; want READY, error boom, a not-before, no lease, attempt 1, not finished", tc.outcome, stepString(*s))
		}
		// Ready may list the step itself (READY again), nothing else.
		if len(fr.Events) != 0 || len(fr.Ready) > 1 || (len(fr.Ready) == 1 && fr.Ready[0] != tc.step.ID) || fr.RunStatus != store.RunRunning {
			t.Errorf("FinishStep(%s, retry): events %v, ready %v, run %s; want none, none but the step itself, RUNNING", tc.outcome, fr.Events, fr.Ready, fr.RunStatus)
		}
		as := f.attempts(tc.step.ID)
		if len(as) != 1 || as[0].Status != tc.attempt || as[0].ExitCode == nil || *as[0].ExitCode != 1 || as[0].Error != "boom" || as[0].FinishedAt.IsZero() {
			t.Errorf("Attempts after %s with retry = %v; want one %s, exit 1, error boom, finished", tc.outcome, as, tc.attempt)
		}
		// Its partition stays held: a new run joins it.
		f.checkJoins("step waiting for its retry", tc.step.Asset, tc.step.Partitions, tc.step.ID)
	}
	if got := f.watermark(); got != w {
		t.Errorf("retried attempts moved the watermark from %d to %d; a retry records no event", w, got)
	}
	if _, err := f.q.Partition(f.ctx, rawDaily, day(0)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Partition(%s, %s) after a retried failure: error %v, want store.ErrNotFound (nothing recorded)", rawDaily, day(0), err)
	}
	f.wantStep("dependent of a step waiting for its retry", r.Steps[2].ID, store.StepPending)
	g := f.wantRun("run with steps waiting for their retry", r.ID, store.RunRunning)
	checkCounts(t, "GetRun.Counts", g.Counts, map[store.StepStatus]int{store.StepReady: 2, store.StepPending: 1})
}

// testFinishRetryPastMax: the store refuses a retry past MaxAttempts: the failure
// is final.
func testFinishRetryPastMax(t *testing.T, f *qfixture) {
	r := f.createRun(newRun(tries(2, ns(rawDaily, days(0, 1))), ns(cleanDaily, days(0, 1), 0)))
	c := f.claimOne("w1")
	if fr := f.retry(c, "first", 0); fr.Step.Status != store.StepReady {
		t.Fatalf("attempt 1 of 2 failed with retry: step %s, want READY", fr.Step.Status)
	}
	c = f.claimOne("w1")
	if c.Attempt != 2 {
		t.Fatalf("claimed attempt %d, want 2", c.Attempt)
	}
	fr := f.retry(c, "second", 0)
	if fr.Step.Status != store.StepFailed || fr.Step.Error != "second" || fr.RunStatus != store.RunFailed {
		t.Errorf("attempt 2 of 2 failed with retry: step %s error %q, run %s; want FAILED, second, FAILED", fr.Step.Status, fr.Step.Error, fr.RunStatus)
	}
	f.wantStep("dependent", r.Steps[1].ID, store.StepUpstreamFailed)
	fails := f.runEvents(r.ID, store.Failure)
	if len(fails) != 1 || fails[0].Error != "second" {
		t.Errorf("failure events %v, want one, error second (retried attempts record none)", fails)
	}
	if as := f.attempts(c.ID); len(as) != 2 || as[0].Status != store.AttemptFailed || as[1].Status != store.AttemptFailed {
		t.Errorf("Attempts = %v, want two FAILED", as)
	}
	if cs := f.claim("w1", 10); len(cs) != 0 {
		t.Errorf("claimed %s after the final failure, want none", idsString(claimIDs(cs)))
	}
}

// testFinishFinalFailure: a final failure records one failure per partition, the
// FAILED flag, and fails everything downstream, over run and join deps; an
// independent branch goes on and the run ends FAILED.
func testFinishFinalFailure(t *testing.T, f *qfixture) {
	a := f.createRun(newRun(ns(rawDaily, days(0, 2)), ns(cleanDaily, days(0, 1), 0), ns(weekly, []string{firstWeek}, 1), ns(metrics, days(0, 1))))
	b := f.createRun(newRun(ns(cleanDaily, days(0, 1)))) // joins a1
	if !sameIDs(b.Steps[0].Joined, []uuid.UUID{a.Steps[1].ID}) {
		t.Fatalf("test setup: %s joined %v, want %s", b.Steps[0].ID, b.Steps[0].Joined, a.Steps[1].ID)
	}
	cs := f.claim("w1", 10)
	if !sameIDs(claimIDs(cs), []uuid.UUID{a.Steps[0].ID, a.Steps[3].ID}) {
		t.Fatalf("claimed %s, want %s and %s", idsString(claimIDs(cs)), a.Steps[0].ID, a.Steps[3].ID)
	}
	c := byID(t, cs, a.Steps[0].ID)
	res := result(c, store.OutcomeFailed)
	res.Error = "exit status 1"
	res.Events = mats(c) // ignored on failure
	fr := f.finish(res)

	if s := fr.Step; s.Status != store.StepFailed || s.Error != "exit status 1" || s.FinishedAt.IsZero() || s.LeaseOwner != "" {
		t.Errorf("FinishStep(failed).Step = %s; want FAILED, the error, finished, lease cleared", stepString(*s))
	}
	if fr.RunStatus != store.RunRunning || len(fr.Ready) != 0 {
		t.Errorf("FinishStep(failed): run %s, ready %v; want RUNNING (a branch runs), none", fr.RunStatus, fr.Ready)
	}
	// The log holds one failure per partition, newest first, and nothing else of the run.
	logged := f.runEvents(a.ID)
	if len(logged) != 2 {
		t.Errorf("events of the run after a final failure: %v, want one failure per partition (2)", logged)
	}
	fails := slices.Clone(logged)
	slices.SortFunc(fails, func(a, b store.Event) int { return strings.Compare(a.Partition, b.Partition) })
	for i, e := range fails {
		if e.Kind != store.Failure || e.Asset != rawDaily || e.Partition != day(i) || e.Error != "exit status 1" || e.RunID != a.ID || e.StepID != c.ID || e.Seq == 0 {
			t.Errorf("failure event %d = %+v; want the failure of %s %s, error %q, run %s, step %s", i, e, rawDaily, day(i), "exit status 1", a.ID, c.ID)
		}
	}
	// FinishStep returns them as recorded.
	returned := slices.Clone(fr.Events)
	slices.SortFunc(returned, func(a, b store.Event) int { return cmp.Compare(b.Seq, a.Seq) })
	checkEventsMatch(t, "FinishStep(failed).Events (the failures recorded)", returned, logged)
	st := f.assetState(rawDaily)
	for i := range 2 {
		if p := f.partition(rawDaily, day(i)); !p.Failed || p.SuccessSeq != 0 {
			t.Errorf("Partition(%s, %s) = %+v, want failed, never materialized", rawDaily, day(i), *p)
		}
		if fl := recordedFlags(at(st.Flags, i)); fl != store.FlagFailed {
			t.Errorf("ReadState %s: flags[%d] = %b, want failed", rawDaily, i, fl)
		}
	}
	if as := f.attempts(c.ID); len(as) != 1 || as[0].Status != store.AttemptFailed || as[0].Error != "exit status 1" {
		t.Errorf("Attempts = %v, want one FAILED with the error", as)
	}
	for _, id := range []uuid.UUID{a.Steps[1].ID, a.Steps[2].ID} {
		s := f.wantStep("downstream of the failure", id, store.StepUpstreamFailed)
		if !strings.Contains(s.Error, string(rawDaily)) || s.FinishedAt.IsZero() {
			t.Errorf("UPSTREAM_FAILED step %s: error %q, finished %s; want the error to name %s, finished", id, s.Error, ts(s.FinishedAt), rawDaily)
		}
	}
	if s := f.wantStep("joiner of a step failed upstream", b.Steps[0].ID, store.StepUpstreamFailed); !strings.Contains(s.Error, a.Steps[1].ID.String()) || s.FinishedAt.IsZero() {
		t.Errorf("UPSTREAM_FAILED joiner: error %q, finished %s; want the error to name the joined step %s, finished", s.Error, ts(s.FinishedAt), a.Steps[1].ID)
	}
	if s := f.getStep(a.Steps[1].ID); !strings.Contains(s.Error, day(0)) {
		t.Errorf("UPSTREAM_FAILED step: error %q does not name the failed partitions", s.Error)
	}
	f.wantRun("joiner's run", b.ID, store.RunFailed)
	f.wantStep("independent branch", a.Steps[3].ID, store.StepRunning)
	fr = f.succeed(byID(t, cs, a.Steps[3].ID))
	if fr.RunStatus != store.RunFailed {
		t.Errorf("FinishStep(last running step of a run with a failure).RunStatus = %s, want FAILED", fr.RunStatus)
	}
	f.wantRun("end", a.ID, store.RunFailed)
	f.checkMaterialized("after the failure", a.ID, map[assets.Key][]string{metrics: days(0, 1)})
	// Every in-flight row of the failed steps is gone.
	f.checkJoins("after the failure", rawDaily, days(0, 2))
	f.checkJoins("after the failure", cleanDaily, days(0, 1))
	f.checkJoins("after the failure", weekly, []string{firstWeek})
	f.verifyClean()
}

func testFinishSkippedFresh(t *testing.T, f *qfixture) {
	r := f.createRun(newRun(ns(rawDaily, days(0, 2)), ns(cleanDaily, days(0, 1), 0)))
	c := f.claimOne("w1")
	w := f.watermark()
	fr := f.finish(result(c, store.OutcomeSkippedFresh))
	if s := fr.Step; s.Status != store.StepSkippedFresh || s.FinishedAt.IsZero() || s.LeaseOwner != "" {
		t.Errorf("FinishStep(skipped).Step = %s; want SKIPPED_FRESH, finished, lease cleared", stepString(*s))
	}
	if len(fr.Events) != 0 || !sameIDs(fr.Ready, []uuid.UUID{r.Steps[1].ID}) || fr.RunStatus != store.RunRunning {
		t.Errorf("FinishStep(skipped): events %v, ready %v, run %s; want none, the dependent, RUNNING", fr.Events, fr.Ready, fr.RunStatus)
	}
	if got := f.watermark(); got != w {
		t.Errorf("a skipped step moved the watermark from %d to %d; it records no event", w, got)
	}
	if _, err := f.q.Partition(f.ctx, rawDaily, day(0)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Partition after a skipped step: error %v, want store.ErrNotFound", err)
	}
	if as := f.attempts(c.ID); len(as) != 1 || as[0].Status != store.AttemptSkipped || as[0].FinishedAt.IsZero() {
		t.Errorf("Attempts = %v, want one SKIPPED, finished", as)
	}
	c = f.claimOne("w1")
	if fr := f.finish(result(c, store.OutcomeSkippedFresh)); fr.RunStatus != store.RunSucceeded {
		t.Errorf("run whose steps were all skipped: %s, want SUCCEEDED", fr.RunStatus)
	}
	f.wantRun("all skipped", r.ID, store.RunSucceeded)
	f.checkJoins("after skipping", rawDaily, days(0, 2))
}

// testFinishCanceled: a step its worker reports canceled cancels its dependents
// in the run; steps of other runs that joined it may go on.
func testFinishCanceled(t *testing.T, f *qfixture) {
	a := f.createRun(newRun(ns(rawDaily, days(0, 1)), ns(cleanDaily, days(0, 1), 0), ns(weekly, []string{firstWeek}, 1), ns(metrics, days(0, 1))))
	b := f.createRun(newRun(ns(rawDaily, days(0, 1)))) // joins a0
	cs := f.claim("w1", 10)
	if !sameIDs(claimIDs(cs), []uuid.UUID{a.Steps[0].ID, a.Steps[3].ID}) {
		t.Fatalf("claimed %s, want %s and %s", idsString(claimIDs(cs)), a.Steps[0].ID, a.Steps[3].ID)
	}
	w := f.watermark()
	c := byID(t, cs, a.Steps[0].ID)
	res := result(c, store.OutcomeCanceled)
	res.Error = "killed"
	fr := f.finish(res)
	if s := fr.Step; s.Status != store.StepCanceled || s.FinishedAt.IsZero() || s.LeaseOwner != "" {
		t.Errorf("FinishStep(canceled).Step = %s; want CANCELED, finished, lease cleared", stepString(*s))
	}
	if len(fr.Events) != 0 || !sameIDs(fr.Ready, []uuid.UUID{b.Steps[0].ID}) || fr.RunStatus != store.RunRunning {
		t.Errorf("FinishStep(canceled): events %v, ready %v, run %s; want none, the joiner %s, RUNNING", fr.Events, fr.Ready, fr.RunStatus, b.Steps[0].ID)
	}
	if as := f.attempts(c.ID); len(as) != 1 || as[0].Status != store.AttemptCanceled {
		t.Errorf("Attempts = %v, want one CANCELED", as)
	}
	f.wantStep("dependent of a canceled step", a.Steps[1].ID, store.StepCanceled)
	f.wantStep("dependent of a canceled step, transitively", a.Steps[2].ID, store.StepCanceled)
	f.wantStep("joiner of a canceled step", b.Steps[0].ID, store.StepReady)
	if got := f.watermark(); got != w {
		t.Errorf("a canceled step moved the watermark from %d to %d", w, got)
	}
	if fr := f.succeed(byID(t, cs, a.Steps[3].ID)); fr.RunStatus != store.RunCanceled {
		t.Errorf("last step of a run with a canceled step: run %s, want CANCELED", fr.RunStatus)
	}
	f.wantRun("end", a.ID, store.RunCanceled)
	f.drain("w2")
	f.wantRun("joiner's run", b.ID, store.RunSucceeded)
}

// testFinishClaimNext: ClaimNext claims, in the same call, steps the finish made
// ready as well as others, at the watermark after the step's events.
func testFinishClaimNext(t *testing.T, f *qfixture) {
	r := f.createRun(newRun(ns(rawDaily, days(0, 1)), ns(metrics, days(0, 1)), ns(cleanDaily, days(0, 1), 0)))
	c := f.claimOne("w1")
	res := result(c, store.OutcomeSucceeded)
	res.Events = mats(c)
	res.ClaimNext = &store.ClaimRequest{Worker: "w1", Limit: 5, Lease: testLease}
	fr := f.finish(res)
	want := []uuid.UUID{r.Steps[1].ID, r.Steps[2].ID}
	if !sameIDs(claimIDs(fr.Claimed), want) {
		t.Fatalf("FinishStep ClaimNext claimed %s, want %s (the other ready step and the one made ready)", idsString(claimIDs(fr.Claimed)), idsString(want))
	}
	w := f.watermark()
	for _, cl := range fr.Claimed {
		if cl.Attempt != 1 || cl.InputSeq != w || cl.InputSeq < fr.Events[0].Seq {
			t.Errorf("claimed %s: attempt %d input seq %d; want 1, %d (after the finished step's events)", cl.ID, cl.Attempt, cl.InputSeq, w)
		}
		f.wantStep("claimed by ClaimNext", cl.ID, store.StepRunning)
		if as := f.attempts(cl.ID); len(as) != 1 || as[0].Worker != "w1" || as[0].Status != store.AttemptRunning {
			t.Errorf("Attempts of a step claimed by ClaimNext = %v, want one RUNNING of w1", as)
		}
	}
	if !containsID(fr.Ready, r.Steps[2].ID) {
		t.Errorf("FinishStep.Ready = %v, want it to list %s", fr.Ready, r.Steps[2].ID)
	}
	if cs := f.claim("w2", 10); len(cs) != 0 {
		t.Errorf("claimed %s after ClaimNext took everything, want none", idsString(claimIDs(cs)))
	}
}

// heartbeat renews leases, checking the answer's length.
func (f *qfixture) heartbeat(worker string, leases []store.Lease, extend time.Duration) []store.LeaseState {
	f.t.Helper()
	hb, err := f.q.Heartbeat(f.ctx, worker, leases, extend)
	if err != nil {
		f.t.Fatalf("Heartbeat(%s, %d leases): %v", worker, len(leases), err)
	}
	if len(hb) != len(leases) {
		f.t.Fatalf("Heartbeat(%s, %d leases): %d answers", worker, len(leases), len(hb))
	}
	return hb
}

// testFinishRetryAfterCancel: a failed attempt of a step asked to cancel is not
// retried: the step ends CANCELED. (The spec's text does not say so; both
// drivers do it, and a worker that kills a step on a cancel request may well
// report the killed process as a failure to retry.)
func testFinishRetryAfterCancel(t *testing.T, f *qfixture) {
	r := f.createRun(newRun(tries(3, ns(rawDaily, days(0, 1))), ns(cleanDaily, days(0, 1), 0)))
	c := f.claimOne("w1")
	if _, err := f.q.CancelRun(f.ctx, r.ID); err != nil {
		t.Fatalf("CancelRun: %v", err)
	}
	fr := f.retry(c, "killed", 0)
	if fr.Step.Status != store.StepCanceled || fr.RunStatus != store.RunCanceled {
		t.Errorf("FinishStep(failed, retry) of a step asked to cancel: step %s, run %s; want CANCELED, CANCELED", fr.Step.Status, fr.RunStatus)
	}
	f.wantStep("dependent", r.Steps[1].ID, store.StepCanceled)
	if cs := f.claim("w1", 10); len(cs) != 0 {
		t.Errorf("claimed %s after the cancel, want none", idsString(claimIDs(cs)))
	}
	if evs := f.runEvents(r.ID); len(evs) != 0 {
		t.Errorf("events %v recorded for a canceled step", evs)
	}

	// With no attempts left too: the step was asked to stop, it ends CANCELED,
	// not FAILED, and records no failure.
	last := f.createRun(newRun(ns(metrics, days(0, 1)), ns(cleanDaily, days(0, 1))))
	c = f.claimOne("w1")
	if c.ID != last.Steps[0].ID || c.Attempt != c.MaxAttempts {
		t.Fatalf("claimed %s attempt %d of %d, want %s on its last attempt", c.ID, c.Attempt, c.MaxAttempts, last.Steps[0].ID)
	}
	if _, err := f.q.CancelStep(f.ctx, c.ID); err != nil {
		t.Fatalf("CancelStep: %v", err)
	}
	if fr := f.retry(c, "killed", 0); fr.Step.Status != store.StepCanceled {
		t.Errorf("FinishStep(failed, retry) of a step asked to cancel on its last attempt: step %s, want CANCELED", fr.Step.Status)
	}
	if evs := f.runEvents(last.ID, store.Failure); len(evs) != 0 {
		t.Errorf("failure events %v recorded for a canceled step", evs)
	}
}

// testFinishOnePerPartition: a success carries exactly one materialization per
// partition of the step: a report missing one, with one twice or with one of
// another partition is refused, naming the partitions at fault, writes nothing
// (not even the ClaimNext claim) and leaves the lease held; the events may come
// in any order.
func testFinishOnePerPartition(t *testing.T, f *qfixture) {
	r := f.createRun(newRun(ns(rawDaily, days(0, 3)), ns(metrics, days(0, 1))))
	c := f.claimOne("w1")
	if c.ID != r.Steps[0].ID {
		t.Fatalf("claimed %s, want the first step %s", c.ID, r.Steps[0].ID)
	}
	m := func(i int) store.Event {
		e := mat(rawDaily, day(i))
		e.InputSeq = c.InputSeq
		return e
	}
	cases := []struct {
		name   string
		events []store.Event
		names  []string // the partitions the error must name
	}{
		{"no events", nil, []string{day(0), day(1), day(2)}},
		{"one missing", []store.Event{m(0), m(2)}, []string{day(1)}},
		{"two missing", []store.Event{m(1)}, []string{day(0), day(2)}},
		{"one twice", []store.Event{m(0), m(1), m(1), m(2)}, []string{day(1)}},
		{"one twice, one missing", []store.Event{m(0), m(0), m(2)}, []string{day(0), day(1)}},
		{"one extra", []store.Event{m(0), m(1), m(2), m(3)}, []string{day(3)}},
		{"one extra instead of one", []store.Event{m(0), m(1), m(3)}, []string{day(3), day(2)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := f.on(t)
			before := f.snapQueue(r.ID)
			res := result(c, store.OutcomeSucceeded)
			res.Events = tc.events
			res.ClaimNext = &store.ClaimRequest{Worker: "w1", Limit: 10, Lease: testLease}
			fr, err := f.q.FinishStep(f.ctx, res)
			if err == nil {
				t.Fatalf("FinishStep(succeeded, %s) = %+v, want an error", tc.name, fr)
			}
			if errors.Is(err, store.ErrLeaseLost) {
				t.Errorf("FinishStep(succeeded, %s): error %v wraps ErrLeaseLost; the lease is held, the events are wrong", tc.name, err)
			}
			for _, p := range tc.names {
				if !strings.Contains(err.Error(), p) {
					t.Errorf("FinishStep(succeeded, %s): error %q does not name partition %s", tc.name, err, p)
				}
			}
			f.checkQueueUnchanged("refused FinishStep", before)
		})
	}
	if hb := f.heartbeat("w1", []store.Lease{{StepID: c.ID, Attempt: c.Attempt}}, testLease); len(hb) == 1 && !hb[0].Held {
		t.Errorf("Heartbeat after refused reports: lease not held, want it still held")
	}
	res := result(c, store.OutcomeSucceeded)
	res.Events = []store.Event{m(2), m(0), m(1)}
	if fr := f.finish(res); fr.Step.Status != store.StepSucceeded || len(fr.Events) != 3 {
		t.Errorf("FinishStep(one per partition, out of order): step %s, %d events; want SUCCEEDED, 3", fr.Step.Status, len(fr.Events))
	}
	f.checkMaterialized("after the refused reports", r.ID, map[assets.Key][]string{rawDaily: days(0, 3)})
}
