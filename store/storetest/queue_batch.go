package storetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/freshetdev/freshet/assets"
	"github.com/freshetdev/freshet/store"
)

// ---- FinishSteps --------------------------------------------------------------

// finishSteps calls FinishSteps and checks the shape of its answer: one entry of
// Results and of Errors per report, exactly one of them set, each result about
// its report's step and claiming nothing itself (a report's ClaimNext is
// ignored), Claimed only for next and as every claim must look.
func (f *qfixture) finishSteps(results []store.StepResult, next *store.ClaimRequest) *store.FinishedSteps {
	f.t.Helper()
	fs, err := f.q.FinishSteps(f.ctx, results, next)
	if err != nil {
		f.t.Fatalf("FinishSteps(%d reports): %v", len(results), err)
	}
	if fs == nil {
		f.t.Fatalf("FinishSteps(%d reports): nil answer and no error", len(results))
	}
	if len(fs.Results) != len(results) || len(fs.Errors) != len(results) {
		f.t.Fatalf("FinishSteps(%d reports): %d results and %d errors, want one of each per report", len(results), len(fs.Results), len(fs.Errors))
	}
	for i, res := range results {
		r, e := fs.Results[i], fs.Errors[i]
		switch {
		case r != nil && e != nil:
			f.t.Errorf("FinishSteps: report %d (step %s, %s) has both a result and the error %v; want a result only when recorded", i, res.StepID, res.Outcome, e)
		case r == nil && e == nil:
			f.t.Fatalf("FinishSteps: report %d (step %s, %s) has neither a result nor an error", i, res.StepID, res.Outcome)
		case r != nil:
			if r.Step == nil {
				f.t.Fatalf("FinishSteps: Results[%d] (step %s, %s) has a nil Step", i, res.StepID, res.Outcome)
			}
			if r.Step.ID != res.StepID {
				f.t.Errorf("FinishSteps: Results[%d] is about step %s, want the report's step %s", i, r.Step.ID, res.StepID)
			}
			if len(r.Claimed) > 0 {
				f.t.Errorf("FinishSteps: Results[%d].Claimed = %s; a report's ClaimNext is ignored, next's claims are in FinishedSteps.Claimed",
					i, idsString(claimIDs(r.Claimed)))
			}
		}
	}
	if next != nil {
		checkClaims(f.t, "FinishSteps next", *next, fs.Claimed)
	} else if len(fs.Claimed) > 0 {
		f.t.Errorf("FinishSteps without next claimed %s", idsString(claimIDs(fs.Claimed)))
	}
	return fs
}

// withIDs returns nr with its id and new ids for its steps, so that it can be
// created alike in twin stores.
func withIDs(id uuid.UUID, nr store.NewRun) store.NewRun {
	nr.ID = id
	nr.Steps = slices.Clone(nr.Steps)
	for i := range nr.Steps {
		nr.Steps[i].ID = uuid.New()
	}
	return nr
}

// matsDV returns one materialization per partition of c, read at its input seq,
// each with a data version of its own (so that twin stores record the same).
func matsDV(c store.ClaimedStep) []store.Event {
	events := mats(c)
	for i := range events {
		events[i].DataVersion = fmt.Sprintf("dv %s %s", c.Asset, c.Partitions[i])
	}
	return events
}

// success returns the report of c's success with matsDV.
func success(c store.ClaimedStep) store.StepResult {
	res := result(c, store.OutcomeSucceeded)
	res.Events = matsDV(c)
	return res
}

// ---- shapes: what twin stores record alike ------------------------------------

// Twin stores get the same calls with the same ids. What they record must then
// read back alike but for times (compared as set or not) and seqs.

func setOrNot(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return "set"
}

func stepShape(s store.Step) string {
	return fmt.Sprintf("{id %s run %s %s %q ordinal %d %s attempt %d/%d deps %s joined %s not_before %s lease %q until %s cancel_requested %v created %s ready %s started %s finished %s error %q}",
		s.ID, s.RunID, s.Asset, s.Partitions, s.Ordinal, s.Status, s.Attempt, s.MaxAttempts, idsString(s.Deps), idsString(s.Joined),
		setOrNot(s.NotBefore), s.LeaseOwner, setOrNot(s.LeaseExpiresAt), s.CancelRequested, setOrNot(s.CreatedAt), setOrNot(s.ReadyAt),
		setOrNot(s.StartedAt), setOrNot(s.FinishedAt), s.Error)
}

func attemptShape(a store.Attempt) string {
	exit := "-"
	if a.ExitCode != nil {
		exit = fmt.Sprint(*a.ExitCode)
	}
	return fmt.Sprintf("{step %s attempt %d worker %q %s exit %s error %q started %s finished %s}",
		a.StepID, a.Attempt, a.Worker, a.Status, exit, a.Error, setOrNot(a.StartedAt), setOrNot(a.FinishedAt))
}

// canonicalJSON returns a JSON value in one spelling (keys sorted, no spaces).
func canonicalJSON(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return "invalid " + string(b)
	}
	out, _ := json.Marshal(v)
	return string(out)
}

func eventShape(e store.Event) string {
	return fmt.Sprintf("{%s %s %q run %s step %s data_version %q changed %v code %s metadata %s error %q}",
		e.Kind, e.Asset, e.Partition, e.RunID, e.StepID, e.DataVersion, e.DataChanged, codeString(e.Code), canonicalJSON(e.Metadata), e.Error)
}

// eventsShape lists events by their shapes, sorted.
func eventsShape(events []store.Event) string {
	s := make([]string, len(events))
	for i, e := range events {
		s[i] = eventShape(e)
	}
	slices.Sort(s)
	return strings.Join(s, "\n")
}

func finishShape(fr *store.FinishResult) string {
	if fr == nil {
		return "nil"
	}
	step := "nil"
	if fr.Step != nil {
		step = stepShape(*fr.Step)
	}
	return fmt.Sprintf("step %s\nevents [\n%s\n]\nready %s\nrun %s\nclaimed %s",
		step, eventsShape(fr.Events), idsString(fr.Ready), fr.RunStatus, idsString(claimIDs(fr.Claimed)))
}

func runShape(r store.Run) string {
	return fmt.Sprintf("{id %s %s trigger %s selection %q force %v max_parallel %d created %s started %s finished %s canceled %s counts %s partitions %s}",
		r.ID, r.Status, r.Trigger, r.Selection, r.Force, r.MaxParallel, setOrNot(r.CreatedAt), setOrNot(r.StartedAt), setOrNot(r.FinishedAt),
		setOrNot(r.CanceledAt), countsString(r.Counts), countsString(r.Partitions))
}

// errShape says what kind of refusal err is.
func errShape(err error) string {
	var bad *store.BadEventsError
	switch {
	case err == nil:
		return "recorded"
	case errors.Is(err, store.ErrLeaseLost):
		return "refused: lease lost"
	case errors.As(err, &bad):
		return "refused: bad events"
	default:
		return "refused"
	}
}

// queueShape reads what the store records of runs (the runs, their steps,
// attempts, events and logs) and the state of every partition, by name.
func (f *qfixture) queueShape(runs ...uuid.UUID) map[string]string {
	f.t.Helper()
	m := map[string]string{}
	for _, id := range runs {
		m["run "+id.String()] = runShape(*f.getRun(id))
		m["events of run "+id.String()] = eventsShape(f.runEvents(id))
		for _, s := range f.runSteps(id) {
			m["step "+s.ID.String()] = stepShape(s)
			var as []string
			for _, a := range f.attempts(s.ID) {
				as = append(as, attemptShape(a))
			}
			m["attempts of "+s.ID.String()] = strings.Join(as, "\n")
			m["log of "+s.ID.String()] = logShape(f.stepLog(s.ID, 0, 10_000))
		}
	}
	for k, st := range f.state().Assets {
		var cells []string
		for i, fl := range st.Flags {
			if fl != 0 {
				cells = append(cells, fmt.Sprintf("%d:%b", i, fl))
			}
		}
		m["flags of "+string(k)] = strings.Join(cells, " ")
	}
	return m
}

func logShape(p *store.LogPage) string {
	var b strings.Builder
	fmt.Fprintf(&b, "dropped %d lines %d bytes, kept %d bytes", p.DroppedLines, p.DroppedBytes, p.KeptBytes)
	for _, l := range p.Lines {
		fmt.Fprintf(&b, "\n%d attempt %d %s %s %q", l.No, l.Attempt, l.Stream, ts(l.At), l.Text)
	}
	return b.String()
}

// compareShapes reports every difference between two stores' shapes.
func compareShapes(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	keys := slices.Sorted(maps.Keys(want))
	for k := range got {
		if _, ok := want[k]; !ok {
			keys = append(keys, k)
		}
	}
	for _, k := range keys {
		g, gok := got[k]
		w, wok := want[k]
		switch {
		case !gok:
			t.Errorf("%s: %s missing; the single path has %s", what, k, w)
		case !wok:
			t.Errorf("%s: %s is %s; the single path has none", what, k, g)
		case g != w:
			t.Errorf("%s: %s differs:\n got %s\nwant %s (as FinishStep records it)", what, k, g, w)
		}
	}
}

// twinOut is what twin records.
type twinOut struct {
	results []store.StepResult    // the reports, as setup built them on f's store
	batch   *store.FinishedSteps  // FinishSteps' answer on f's store
	single  []*store.FinishResult // FinishStep's answers on the twin, report by report
	errs    []error               // FinishStep's errors on the twin
	twin    *qfixture
}

// twin runs setup on f's store and on a fresh twin store (setup must create the
// same runs, with the same ids, and make the same calls on both), then records
// the reports setup returned: on f's store with one FinishSteps call, on the
// twin with one FinishStep per report, in order. Each report must be refused or
// recorded alike, with the same result, and both stores must then read alike,
// runs, steps, attempts, events, logs and partition state.
func (f *qfixture) twin(setup func(f *qfixture) []store.StepResult, runs ...uuid.UUID) *twinOut {
	f.t.Helper()
	out := &twinOut{twin: f.fresh(f.t)}
	out.results = setup(f)
	twinResults := setup(out.twin)
	if len(twinResults) != len(out.results) {
		f.t.Fatalf("test setup: %d reports on the twin store, %d on the store", len(twinResults), len(out.results))
	}
	for i, res := range twinResults {
		if res.StepID != out.results[i].StepID || res.Attempt != out.results[i].Attempt {
			f.t.Fatalf("test setup: report %d is about step %s attempt %d on the twin store, step %s attempt %d on the store",
				i, res.StepID, res.Attempt, out.results[i].StepID, out.results[i].Attempt)
		}
	}
	out.batch = f.finishSteps(out.results, nil)
	for _, res := range twinResults {
		fr, err := out.twin.q.FinishStep(out.twin.ctx, res)
		out.single = append(out.single, fr)
		out.errs = append(out.errs, err)
	}
	for i, res := range out.results {
		what := fmt.Sprintf("report %d (step %s attempt %d, worker %q, %s)", i, res.StepID, res.Attempt, res.Worker, res.Outcome)
		if got, want := errShape(out.batch.Errors[i]), errShape(out.errs[i]); got != want {
			f.t.Errorf("FinishSteps %s: %s (error %v); FinishStep: %s (error %v)", what, got, out.batch.Errors[i], want, out.errs[i])
			continue
		}
		if out.errs[i] != nil {
			continue
		}
		if got, want := finishShape(out.batch.Results[i]), finishShape(out.single[i]); got != want {
			f.t.Errorf("FinishSteps.Results[%d], %s:\n got %s\nwant %s (as FinishStep returned it)", i, what, got, want)
		}
	}
	compareShapes(f.t, "after FinishSteps", f.queueShape(runs...), out.twin.queueShape(runs...))
	return out
}

// ---- tests --------------------------------------------------------------------

// testBatchSuccesses: successes of steps of two runs, recorded in one call, each
// as FinishStep records it: the step SUCCEEDED, one materialization per
// partition, dependents READY (a step whose deps end in the same call as soon as
// the last has), each run's status after its report.
func testBatchSuccesses(t *testing.T, f *qfixture) {
	ids := sortedIDs(2)
	a := withIDs(ids[0], newRun(ns(rawDaily, days(0, 2)), ns(cleanDaily, days(0, 1), 0), ns(cleanDaily, days(1, 2), 0),
		ns(metrics, days(0, 1)), ns(summary, unpart, 0, 3)))
	b := withIDs(ids[1], newRun(ns(metrics, days(1, 2)), ns(rawDaily, days(2, 4))))
	a0, a1, a2, a3, a4 := a.Steps[0].ID, a.Steps[1].ID, a.Steps[2].ID, a.Steps[3].ID, a.Steps[4].ID
	b0, b1 := b.Steps[0].ID, b.Steps[1].ID
	order := []uuid.UUID{a0, b0, a3, b1} // the runs' reports interleaved
	setup := func(f *qfixture) []store.StepResult {
		f.createRun(a)
		f.createRun(b)
		cs := f.claim("w1", 10)
		if !sameIDs(claimIDs(cs), order) {
			f.t.Fatalf("test setup: claimed %s, want %s", idsString(claimIDs(cs)), idsString(order))
		}
		results := make([]store.StepResult, len(order))
		for i, id := range order {
			results[i] = success(byID(f.t, cs, id))
		}
		results[0].Events[0].Metadata = []byte(`{"rows": 12, "path": "s3://x"}`)
		return results
	}
	tw := f.twin(setup, a.ID, b.ID)
	fs := tw.batch

	for i, res := range tw.results {
		if fs.Errors[i] != nil {
			t.Fatalf("FinishSteps: report %d (success of step %s): %v", i, res.StepID, fs.Errors[i])
		}
	}
	want := []struct {
		ready []uuid.UUID
		run   store.RunStatus
	}{
		{[]uuid.UUID{a1, a2}, store.RunRunning},
		{nil, store.RunRunning},             // b1 still runs
		{[]uuid.UUID{a4}, store.RunRunning}, // a4 needed a0 and a3
		{nil, store.RunSucceeded},
	}
	var recorded []store.Event
	for i, res := range tw.results {
		fr := fs.Results[i]
		s := fr.Step
		if s.Status != store.StepSucceeded || s.FinishedAt.IsZero() || s.LeaseOwner != "" || !s.LeaseExpiresAt.IsZero() || s.Attempt != 1 {
			t.Errorf("FinishSteps.Results[%d].Step = %s; want SUCCEEDED, finished, lease cleared, attempt 1", i, stepString(*s))
		}
		if got := stepString(*f.getStep(s.ID)); got != stepString(*s) {
			t.Errorf("GetStep after FinishSteps\n got %s\nwant %s (as FinishSteps returned it)", got, stepString(*s))
		}
		if !sameIDs(fr.Ready, want[i].ready) {
			t.Errorf("FinishSteps.Results[%d].Ready = %s, want %s", i, idsString(fr.Ready), idsString(want[i].ready))
		}
		if fr.RunStatus != want[i].run {
			t.Errorf("FinishSteps.Results[%d].RunStatus = %s, want %s (the run's status after that report)", i, fr.RunStatus, want[i].run)
		}
		if len(fr.Events) != len(s.Partitions) {
			t.Errorf("FinishSteps.Results[%d].Events: %d events, want one per partition (%d)", i, len(fr.Events), len(s.Partitions))
			continue
		}
		byPartition := map[string]store.Event{}
		for _, e := range fr.Events {
			byPartition[e.Partition] = e
		}
		for _, w := range res.Events {
			e, ok := byPartition[w.Partition]
			if !ok || e.Seq == 0 || e.Kind != store.Materialization || e.Asset != s.Asset || e.RunID != s.RunID || e.StepID != s.ID ||
				e.InputSeq != w.InputSeq || e.DataVersion != w.DataVersion || !jsonEqual(e.Metadata, w.Metadata) {
				t.Errorf("FinishSteps.Results[%d]: event of %s %s = %+v; want its materialization with a seq, run %s, step %s, input seq %d, data version %q, metadata %s",
					i, s.Asset, w.Partition, e, s.RunID, s.ID, w.InputSeq, w.DataVersion, w.Metadata)
			}
			if p := f.partition(s.Asset, w.Partition); p.SuccessSeq != e.Seq || p.InputSeq != w.InputSeq || p.DataVersion != w.DataVersion || p.Failed {
				t.Errorf("Partition(%s, %s) = %+v; want success seq %d, input seq %d, data version %q", s.Asset, w.Partition, *p, e.Seq, w.InputSeq, w.DataVersion)
			}
		}
		recorded = append(recorded, fr.Events...)
		if as := f.attempts(s.ID); len(as) != 1 || as[0].Status != store.AttemptSucceeded || as[0].FinishedAt.IsZero() {
			t.Errorf("Attempts of step %s = %v, want one SUCCEEDED, finished", s.ID, as)
		}
	}
	// The log holds what the results say, and nothing else of the runs.
	slices.SortFunc(recorded, func(x, y store.Event) int { return int(y.Seq - x.Seq) })
	logged := append(f.runEvents(a.ID), f.runEvents(b.ID)...)
	slices.SortFunc(logged, func(x, y store.Event) int { return int(y.Seq - x.Seq) })
	checkEventsMatch(t, "events of the runs after FinishSteps", logged, recorded)
	f.checkMaterialized("FinishSteps", a.ID, map[assets.Key][]string{rawDaily: days(0, 2), metrics: days(0, 1)})
	f.checkMaterialized("FinishSteps", b.ID, map[assets.Key][]string{rawDaily: days(2, 4), metrics: days(1, 2)})
	for _, id := range []uuid.UUID{a1, a2, a4} {
		if s := f.wantStep("dependent", id, store.StepReady); s.ReadyAt.IsZero() {
			t.Errorf("READY dependent %s has no ReadyAt", id)
		}
	}
	g := f.wantRun("run with dependents left", a.ID, store.RunRunning)
	checkCounts(t, "GetRun.Counts", g.Counts, map[store.StepStatus]int{store.StepSucceeded: 2, store.StepReady: 3})
	checkCounts(t, "GetRun.Partitions", g.Partitions, map[store.StepStatus]int{store.StepSucceeded: 3, store.StepReady: 3})
	f.wantRun("run whose steps all succeeded in the call", b.ID, store.RunSucceeded)
	// The in-flight rows of b are gone; a's succeeded steps' too.
	f.checkJoins("after FinishSteps", rawDaily, days(0, 4))
	f.checkJoins("after FinishSteps", metrics, days(0, 2))
	f.verifyClean()
	f.drain("w2")
	f.wantRun("end", a.ID, store.RunSucceeded)
}

// testBatchMixed: one call with a success, a fresh skip, a retry, a final
// failure, a canceled report and three reports FinishStep would refuse (lease
// lost, bad events, a partition missing): each recorded or refused as FinishStep
// would: the refused ones get their error at their index and write nothing, the
// others are recorded all the same; the refused reports, made right, are
// recorded after.
func testBatchMixed(t *testing.T, f *qfixture) {
	ids := sortedIDs(3)
	a := withIDs(ids[0], newRun(
		ns(rawDaily, days(0, 2)),          // 0: succeeds
		ns(rawDaily, days(5, 6)),          // 1: skipped fresh
		tries(3, ns(metrics, days(1, 2))), // 2: retried
		ns(metrics, days(2, 3)),           // 3: reported by a worker without the lease
		ns(rawDaily, days(3, 4)),          // 4: a success with a bad event
		ns(metrics, days(4, 6)),           // 5: a success missing a partition
		ns(cleanDaily, days(0, 1), 0),     // 6: dependent of 0
		ns(cleanDaily, days(5, 6), 1),     // 7: dependent of 1
		ns(cleanDaily, days(1, 2), 2),     // 8: dependent of 2
	))
	b := withIDs(ids[1], newRun(
		ns(rawDaily, days(10, 11)),            // 0: fails for good
		ns(cleanDaily, days(10, 11), 0),       // 1: dependent of 0
		ns(metrics, days(10, 11)),             // 2: reported canceled
		ns(weekly, []string{firstWeek}, 1, 2), // 3: dependent of both
	))
	c := withIDs(ids[2], newRun(ns(rawDaily, days(10, 11)))) // joins b0
	var (
		as = func(i int) uuid.UUID { return a.Steps[i].ID }
		bs = func(i int) uuid.UUID { return b.Steps[i].ID }
	)
	exit := 2
	setup := func(f *qfixture) []store.StepResult {
		f.createRun(a)
		f.createRun(b)
		if r := f.createRun(c); !sameIDs(r.Steps[0].Joined, []uuid.UUID{bs(0)}) {
			f.t.Fatalf("test setup: %s joined %v, want %s", r.Steps[0].ID, r.Steps[0].Joined, bs(0))
		}
		cs := f.claim("w1", 20)
		if want := []uuid.UUID{as(0), as(1), as(2), as(3), as(4), as(5), bs(0), bs(2)}; !sameIDs(claimIDs(cs), want) {
			f.t.Fatalf("test setup: claimed %s, want %s", idsString(claimIDs(cs)), idsString(want))
		}
		cl := func(id uuid.UUID) store.ClaimedStep { return byID(f.t, cs, id) }
		ok := success(cl(as(0)))
		late := success(cl(as(3)))
		late.Worker = "w-late"
		skip := result(cl(as(1)), store.OutcomeSkippedFresh)
		bad := success(cl(as(4)))
		bad.Events[0].Partition = day(4)
		retry := result(cl(as(2)), store.OutcomeFailed)
		retry.ExitCode, retry.Error, retry.Retry, retry.RetryAfter = &exit, "flaky", true, time.Hour
		fail := result(cl(bs(0)), store.OutcomeFailed)
		fail.ExitCode, fail.Error = &exit, "exit status 2"
		fail.Events = matsDV(cl(bs(0))) // ignored on failure
		missing := success(cl(as(5)))
		missing.Events = missing.Events[:1]
		canceled := result(cl(bs(2)), store.OutcomeCanceled)
		canceled.Error = "killed"
		return []store.StepResult{ok, late, skip, bad, retry, fail, missing, canceled}
	}
	stepsBefore, attemptsBefore := map[uuid.UUID]string{}, map[uuid.UUID]string{}
	tw := f.twin(func(g *qfixture) []store.StepResult {
		results := setup(g)
		if g == f {
			for _, i := range []int{3, 4, 5} {
				stepsBefore[as(i)] = stepString(*f.getStep(as(i)))
				attemptsBefore[as(i)] = fmt.Sprint(f.attempts(as(i)))
			}
		}
		return results
	}, a.ID, b.ID, c.ID)
	fs := tw.batch

	// The refused ones, at their index.
	wantErrIs(t, "FinishSteps: report 1 (a worker without the lease)", fs.Errors[1], store.ErrLeaseLost)
	if err := fs.Errors[3]; err == nil || errors.Is(err, store.ErrLeaseLost) {
		t.Errorf("FinishSteps: report 3 (a success with an event of another partition): error %v; want a *store.BadEventsError, not ErrLeaseLost", err)
	} else {
		badEvents(t, "FinishSteps: report 3 (a success with an event of another partition)", err)
	}
	if err := fs.Errors[6]; err == nil || errors.Is(err, store.ErrLeaseLost) || !strings.Contains(err.Error(), day(5)) {
		t.Errorf("FinishSteps: report 6 (a success missing partition %s): error %v; want one naming %s, not ErrLeaseLost", day(5), err, day(5))
	}
	for _, i := range []int{0, 2, 4, 5, 7} {
		if fs.Errors[i] != nil {
			t.Fatalf("FinishSteps: report %d (step %s, %s): %v; want it recorded", i, tw.results[i].StepID, tw.results[i].Outcome, fs.Errors[i])
		}
	}
	// Nothing written for the refused ones: still RUNNING under w1's lease, as before.
	for _, i := range []int{3, 4, 5} {
		if got := stepString(*f.getStep(as(i))); got != stepsBefore[as(i)] {
			t.Errorf("step %d of a refused report changed:\nbefore %s\nafter  %s", i, stepsBefore[as(i)], got)
		}
		if got := fmt.Sprint(f.attempts(as(i))); got != attemptsBefore[as(i)] {
			t.Errorf("attempts of step %d of a refused report changed:\nbefore %s\nafter  %s", i, attemptsBefore[as(i)], got)
		}
	}
	if hb := f.heartbeat("w1", []store.Lease{{StepID: as(3), Attempt: 1}, {StepID: as(4), Attempt: 1}, {StepID: as(5), Attempt: 1}}, testLease); !hb[0].Held || !hb[1].Held || !hb[2].Held {
		t.Errorf("Heartbeat of the steps whose reports were refused: %+v, want all still held", hb)
	}
	for _, p := range []struct {
		asset assets.Key
		day   int
	}{{metrics, 2}, {rawDaily, 3}, {rawDaily, 4}, {metrics, 4}, {metrics, 5}} {
		if _, err := f.q.Partition(f.ctx, p.asset, day(p.day)); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Partition(%s, %s) after a refused report: error %v, want store.ErrNotFound (nothing recorded)", p.asset, day(p.day), err)
		}
	}

	// The recorded ones.
	if fr := fs.Results[0]; fr.Step.Status != store.StepSucceeded || len(fr.Events) != 2 || !sameIDs(fr.Ready, []uuid.UUID{as(6)}) {
		t.Errorf("success: step %s, %d events, ready %s; want SUCCEEDED, 2, %s", fr.Step.Status, len(fr.Events), idsString(fr.Ready), as(6))
	}
	if fr := fs.Results[2]; fr.Step.Status != store.StepSkippedFresh || len(fr.Events) != 0 || !sameIDs(fr.Ready, []uuid.UUID{as(7)}) {
		t.Errorf("skip: step %s, %d events, ready %s; want SKIPPED_FRESH, none, %s", fr.Step.Status, len(fr.Events), idsString(fr.Ready), as(7))
	}
	if fr := fs.Results[4]; fr.Step.Status != store.StepReady || fr.Step.Attempt != 1 || fr.Step.Error != "flaky" || fr.Step.LeaseOwner != "" ||
		fr.Step.NotBefore.IsZero() || len(fr.Events) != 0 || (len(fr.Ready) > 0 && !sameIDs(fr.Ready, []uuid.UUID{as(2)})) {
		t.Errorf("retry: %s, %d events, ready %s; want READY, attempt 1, error flaky, no lease, a not-before, no events, none ready but itself",
			stepString(*fr.Step), len(fr.Events), idsString(fr.Ready))
	} else if att := f.attempts(as(2)); len(att) != 1 || att[0].Status != store.AttemptFailed || att[0].Error != "flaky" || att[0].ExitCode == nil || *att[0].ExitCode != 2 {
		t.Errorf("Attempts of the retried step = %v; want one FAILED, exit 2, error flaky", att)
	} else if fr.Step.NotBefore.Sub(att[0].FinishedAt) < time.Hour-time.Second {
		t.Errorf("retried step: NotBefore %s, less than RetryAfter (1h) after the attempt's end %s", ts(fr.Step.NotBefore), ts(att[0].FinishedAt))
	}
	f.checkJoins("a step waiting for its retry", metrics, days(1, 2), as(2))
	if fr := fs.Results[5]; fr.Step.Status != store.StepFailed || fr.Step.Error != "exit status 2" || len(fr.Events) != 1 ||
		fr.Events[0].Kind != store.Failure || fr.Events[0].Partition != day(10) || fr.Events[0].Error != "exit status 2" || len(fr.Ready) != 0 || fr.RunStatus != store.RunRunning {
		t.Errorf("final failure: %s, events %v, ready %s, run %s; want FAILED with the error, one failure of %s, none ready, RUNNING (a step of the run is in the call after it)",
			stepString(*fr.Step), fr.Events, idsString(fr.Ready), fr.RunStatus, day(10))
	}
	if fr := fs.Results[7]; fr.Step.Status != store.StepCanceled || len(fr.Events) != 0 || !fr.RunStatus.Done() {
		t.Errorf("canceled: step %s, events %v, run %s; want CANCELED, none, the run ended", fr.Step.Status, fr.Events, fr.RunStatus)
	}
	f.wantStep("dependent of the success", as(6), store.StepReady)
	f.wantStep("dependent of the skip", as(7), store.StepReady)
	f.wantStep("dependent of the retried step", as(8), store.StepPending)
	f.wantStep("dependent of the failure", bs(1), store.StepUpstreamFailed)
	f.wantStep("dependent of the failure and the canceled step", bs(3), store.StepUpstreamFailed)
	f.wantStep("joiner of the failed step", c.Steps[0].ID, store.StepUpstreamFailed)
	f.wantRun("joiner's run", c.ID, store.RunFailed)
	if p := f.partition(rawDaily, day(10)); !p.Failed || p.SuccessSeq != 0 {
		t.Errorf("Partition(%s, %s) = %+v, want failed, never materialized", rawDaily, day(10), *p)
	}
	f.checkMaterialized("mixed FinishSteps", a.ID, map[assets.Key][]string{rawDaily: days(0, 2)})
	f.checkMaterialized("mixed FinishSteps", b.ID, nil)
	if fails := f.runEvents(b.ID, store.Failure); len(fails) != 1 {
		t.Errorf("failure events of the failed run: %v, want one (its failed step's partition)", fails)
	}
	if fails := f.runEvents(a.ID, store.Failure); len(fails) != 0 {
		t.Errorf("failure events of the run with a retry: %v, want none", fails)
	}

	// The refused reports, made right, are recorded.
	var again []store.StepResult
	for _, i := range []int{3, 4, 5} {
		s := f.getStep(as(i))
		again = append(again, success(store.ClaimedStep{Step: *s, InputSeq: store.AtAppend}))
	}
	fs = f.finishSteps(again, nil)
	for i, err := range fs.Errors {
		if err != nil {
			t.Errorf("FinishSteps(the refused reports, made right): report %d: %v", i, err)
		}
	}
	f.checkMaterialized("after the refused reports were made right", a.ID,
		map[assets.Key][]string{rawDaily: {day(0), day(1), day(3)}, metrics: {day(2), day(4), day(5)}})
	f.verifyClean()
}

// testBatchRetryCanceledOrExhausted: retries in one call of a step asked to
// cancel (by CancelStep or CancelRun), of steps on their last attempt and of one
// with attempts left: recorded as FinishStep records them (CANCELED, FAILED
// with its failures, READY).
func testBatchRetryCanceledOrExhausted(t *testing.T, f *qfixture) {
	ids := sortedIDs(2)
	a := withIDs(ids[0], newRun(
		tries(3, ns(rawDaily, days(0, 1))), // 0: cancel requested
		ns(cleanDaily, days(0, 1), 0),      // 1
		tries(2, ns(metrics, days(0, 1))),  // 2: on its second attempt of 2
		ns(cleanDaily, days(2, 3), 2),      // 3
		ns(metrics, days(1, 2)),            // 4: on its only attempt
		tries(3, ns(metrics, days(3, 4))),  // 5: attempts left
		ns(cleanDaily, days(3, 4), 5),      // 6
	))
	b := withIDs(ids[1], newRun(tries(3, ns(rawDaily, days(5, 6))), ns(cleanDaily, days(5, 6), 0))) // canceled run
	as := func(i int) uuid.UUID { return a.Steps[i].ID }
	retry := func(c store.ClaimedStep, msg string) store.StepResult {
		res := result(c, store.OutcomeTimedOut)
		res.Error, res.Retry = msg, true
		return res
	}
	setup := func(f *qfixture) []store.StepResult {
		f.createRun(a)
		f.createRun(b)
		cs := f.claim("w1", 10)
		if want := []uuid.UUID{as(0), as(2), as(4), as(5), b.Steps[0].ID}; !sameIDs(claimIDs(cs), want) {
			f.t.Fatalf("test setup: claimed %s, want %s", idsString(claimIDs(cs)), idsString(want))
		}
		f.retry(byID(f.t, cs, as(2)), "first", 0)
		second := f.claimOne("w1")
		if second.ID != as(2) || second.Attempt != 2 {
			f.t.Fatalf("test setup: claimed %s attempt %d, want %s attempt 2", second.ID, second.Attempt, as(2))
		}
		if _, err := f.q.CancelStep(f.ctx, as(0)); err != nil {
			f.t.Fatalf("CancelStep: %v", err)
		}
		if _, err := f.q.CancelRun(f.ctx, b.ID); err != nil {
			f.t.Fatalf("CancelRun: %v", err)
		}
		return []store.StepResult{
			retry(byID(f.t, cs, as(0)), "killed"),
			retry(second, "second"),
			retry(byID(f.t, cs, as(4)), "only"),
			retry(byID(f.t, cs, as(5)), "again"),
			retry(byID(f.t, cs, b.Steps[0].ID), "killed too"),
		}
	}
	tw := f.twin(setup, a.ID, b.ID)
	for i, err := range tw.batch.Errors {
		if err != nil {
			t.Fatalf("FinishSteps: report %d (step %s): %v", i, tw.results[i].StepID, err)
		}
	}
	want := []struct {
		what string
		step uuid.UUID
		want store.StepStatus
	}{
		{"retry of a step asked to cancel", as(0), store.StepCanceled},
		{"its dependent", as(1), store.StepCanceled},
		{"retry of the last attempt", as(2), store.StepFailed},
		{"its dependent", as(3), store.StepUpstreamFailed},
		{"retry of the only attempt", as(4), store.StepFailed},
		{"retry with attempts left", as(5), store.StepReady},
		{"its dependent", as(6), store.StepPending},
		{"retry of a step of a canceled run", b.Steps[0].ID, store.StepCanceled},
		{"its dependent", b.Steps[1].ID, store.StepCanceled},
	}
	for _, w := range want {
		f.wantStep(w.what, w.step, w.want)
	}
	for i, st := range []store.StepStatus{store.StepCanceled, store.StepFailed, store.StepFailed, store.StepReady, store.StepCanceled} {
		if got := tw.batch.Results[i].Step.Status; got != st {
			t.Errorf("FinishSteps.Results[%d].Step.Status = %s, want %s", i, got, st)
		}
	}
	fails := f.runEvents(a.ID, store.Failure)
	var failed []string
	for _, e := range fails {
		failed = append(failed, fmt.Sprintf("%s %s %q", e.Asset, e.Partition, e.Error))
	}
	slices.Sort(failed)
	if wantFailed := []string{fmt.Sprintf("%s %s %q", metrics, day(0), "second"), fmt.Sprintf("%s %s %q", metrics, day(1), "only")}; !slices.Equal(failed, wantFailed) {
		t.Errorf("failure events: %q, want %q (the exhausted steps' final failures; none for the retries or the canceled step)", failed, wantFailed)
	}
	if evs := f.runEvents(b.ID); len(evs) != 0 {
		t.Errorf("events of the canceled run: %v, want none", evs)
	}
	f.wantRun("canceled run", b.ID, store.RunCanceled)
	if cs := f.claim("w2", 10); !sameIDs(claimIDs(cs), []uuid.UUID{as(5)}) {
		t.Errorf("claimed %s after the call, want only the step with attempts left %s", idsString(claimIDs(cs)), as(5))
	}
}

// testBatchRepeat: repeating a call that committed records nothing twice: every
// report is refused with ErrLeaseLost, even when the worker now runs the next
// attempt of a retried step.
func testBatchRepeat(t *testing.T, f *qfixture) {
	r := f.createRun(newRun(
		ns(rawDaily, days(0, 2)),          // 0: succeeds
		ns(metrics, days(0, 1)),           // 1: skipped
		tries(2, ns(metrics, days(1, 2))), // 2: retried at once
		ns(metrics, days(2, 3)),           // 3: fails
		ns(metrics, days(3, 4)),           // 4: canceled
		ns(cleanDaily, days(0, 1), 0),     // 5
	))
	claimed := f.claim("w1", 10)
	if len(claimed) != 5 {
		t.Fatalf("test setup: claimed %d steps, want 5", len(claimed))
	}
	cs := make([]store.ClaimedStep, 5)
	for i := range cs {
		cs[i] = byID(t, claimed, r.Steps[i].ID)
	}
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	withLog := func(res store.StepResult, text string) store.StepResult {
		res.Log = []store.LogLine{{Attempt: res.Attempt, Stream: store.Stdout, At: t0, Text: text}}
		return res
	}
	retry := result(cs[2], store.OutcomeFailed)
	retry.Error, retry.Retry = "flaky", true
	fail := result(cs[3], store.OutcomeFailed)
	fail.Error = "boom"
	results := []store.StepResult{
		withLog(success(cs[0]), "built"),
		withLog(result(cs[1], store.OutcomeSkippedFresh), "fresh"),
		withLog(retry, "try again"),
		withLog(fail, "broke"),
		withLog(result(cs[4], store.OutcomeCanceled), "stopped"),
	}
	fs := f.finishSteps(results, nil)
	for i, err := range fs.Errors {
		if err != nil {
			t.Fatalf("FinishSteps: report %d (step %s, %s): %v", i, results[i].StepID, results[i].Outcome, err)
		}
	}
	// The same worker runs the retried step's next attempt.
	claimed = f.claim("w1", 10)
	if !sameIDs(claimIDs(claimed), []uuid.UUID{r.Steps[2].ID, r.Steps[5].ID}) {
		t.Fatalf("claimed %s after the call, want the retried step and the dependent %s", idsString(claimIDs(claimed)),
			idsString([]uuid.UUID{r.Steps[2].ID, r.Steps[5].ID}))
	}
	if c := byID(t, claimed, r.Steps[2].ID); c.Attempt != 2 {
		t.Fatalf("the retried step claimed as attempt %d, want 2", c.Attempt)
	}
	before := f.snapQueue(r.ID)
	logs := map[uuid.UUID]string{}
	for _, s := range r.Steps {
		logs[s.ID] = logShape(f.stepLog(s.ID, 0, 0))
	}
	for round := range 2 { // without next, then with it: the repeat is refused whole either way
		var n *store.ClaimRequest
		if round == 1 {
			n = &store.ClaimRequest{Worker: "w1", Limit: 10, Lease: testLease} // nothing is READY
		}
		again := f.finishSteps(results, n)
		for i, err := range again.Errors {
			wantErrIs(t, fmt.Sprintf("FinishSteps repeated: report %d (%s)", i, results[i].Outcome), err, store.ErrLeaseLost)
		}
		f.checkQueueUnchanged("FinishSteps repeated", before)
		for _, s := range r.Steps {
			if got := logShape(f.stepLog(s.ID, 0, 0)); got != logs[s.ID] {
				t.Errorf("FinishSteps repeated: log of step %d changed:\nbefore %s\nafter  %s", s.Ordinal, logs[s.ID], got)
			}
		}
	}
	f.checkMaterialized("FinishSteps repeated", r.ID, map[assets.Key][]string{rawDaily: days(0, 2)})
	if fails := f.runEvents(r.ID, store.Failure); len(fails) != 1 {
		t.Errorf("failure events after the repeat: %v, want one", fails)
	}
	if hb := f.heartbeat("w1", []store.Lease{{StepID: r.Steps[2].ID, Attempt: 2}}, testLease); !hb[0].Held {
		t.Errorf("the retried step's attempt 2 lost its lease to a repeated report of attempt 1")
	}
}
