package sqlite

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/freshetdev/freshet/store"
)

func mustFinishSteps(t testing.TB, s *Store, results []store.StepResult, next *store.ClaimRequest) *store.FinishedSteps {
	t.Helper()
	out, err := s.FinishSteps(context.Background(), results, next)
	if err != nil {
		t.Fatalf("FinishSteps: %v", err)
	}
	if len(out.Results) != len(results) || len(out.Errors) != len(results) || out.Claimed == nil {
		t.Fatalf("FinishSteps: %d results, %d errors, claimed %v for %d reports", len(out.Results), len(out.Errors), out.Claimed, len(results))
	}
	for i := range results {
		if (out.Results[i] == nil) == (out.Errors[i] == nil) {
			t.Fatalf("FinishSteps: report %d has result %v and error %v", i, out.Results[i], out.Errors[i])
		}
	}
	return out
}

func logLine(attempt int, text string) store.LogLine {
	return store.LogLine{Attempt: attempt, Stream: store.Stdout, Text: text}
}

// logTexts reads a step's whole log as "No:text".
func logTexts(t testing.TB, s *Store, id uuid.UUID) ([]string, *store.LogPage) {
	t.Helper()
	page, err := s.StepLog(context.Background(), id, 0, 0)
	if err != nil {
		t.Fatalf("StepLog: %v", err)
	}
	var got []string
	for _, l := range page.Lines {
		got = append(got, fmt.Sprintf("%d:%s", l.No, l.Text))
	}
	return got, page
}

// TestFinishStepsMixed records a success, a retry, a late report of a step whose
// lease expired and a final failure in one call, and claims for next in the same
// transaction.
func TestFinishStepsMixed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := newFakeClock()
	s, p := queueStore(t, clock)
	run := mustCreateRun(t, s, store.NewRun{Steps: []store.NewStep{
		{Asset: "a/x", Partitions: dayKeys(p, 0, 1), MaxAttempts: 1}, // 0: succeeds
		{Asset: "a/x", Partitions: dayKeys(p, 1, 2), MaxAttempts: 2}, // 1: retried
		{Asset: "a/x", Partitions: dayKeys(p, 2, 3), MaxAttempts: 1}, // 2: fails for good
		{Asset: "a/x", Partitions: dayKeys(p, 3, 4), MaxAttempts: 2}, // 3: its lease expires
		{Asset: "a/y", Partitions: dayKeys(p, 0, 1), MaxAttempts: 1, Deps: []int{0}},
		{Asset: "a/y", Partitions: dayKeys(p, 2, 3), MaxAttempts: 1, Deps: []int{2}},
	}})
	id := func(i int) uuid.UUID { return run.Steps[i].ID }
	held := mustClaim(t, s, "w", 3, time.Hour)
	late := mustClaim(t, s, "w", 1, time.Second)
	if len(held) != 3 || len(late) != 1 || late[0].ID != id(3) {
		t.Fatalf("claims %+v, %+v", held, late)
	}
	clock.Advance(2 * time.Second)
	if exp, err := s.ExpireLeases(ctx); err != nil || len(exp) != 1 || exp[0].StepID != id(3) {
		t.Fatalf("ExpireLeases = %+v, %v", exp, err)
	}
	if err := s.AppendStepLog(ctx, id(0), []store.LogLine{logLine(1, "start")}, 0); err != nil {
		t.Fatal(err)
	}
	wake, err := s.Listen(ctx)
	if err != nil {
		t.Fatal(err)
	}

	success := succeeded(held[0])
	success.Log = []store.LogLine{logLine(1, "done")}
	exit := 1
	retry := store.StepResult{StepID: id(1), Attempt: 1, Worker: "w", Outcome: store.OutcomeFailed, ExitCode: &exit,
		Error: "flaky", Retry: true, RetryAfter: 30 * time.Second, Log: []store.LogLine{logLine(1, "flaky")}}
	final := store.StepResult{StepID: id(2), Attempt: 1, Worker: "w", Outcome: store.OutcomeFailed, Error: "broken",
		Retry: true, RetryAfter: time.Second} // no attempt left: final
	lost := succeeded(late[0])
	lost.Log = []store.LogLine{logLine(1, "too late")}
	next := &store.ClaimRequest{Worker: "w2", Limit: 4, Lease: time.Minute}
	// ClaimNext of a report is ignored.
	retry.ClaimNext = &store.ClaimRequest{Worker: "other", Limit: 10, Lease: time.Minute}

	out := mustFinishSteps(t, s, []store.StepResult{success, retry, lost, final}, next)

	if err := out.Errors[2]; !errors.Is(err, store.ErrLeaseLost) {
		t.Fatalf("late report: %v, want ErrLeaseLost", err)
	}
	if r := out.Results[0]; r.Step.Status != store.StepSucceeded || len(r.Events) != 1 || r.Events[0].Kind != store.Materialization ||
		!slices.Equal(r.Ready, []uuid.UUID{id(4)}) || r.RunStatus != store.RunRunning || len(r.Claimed) != 0 {
		t.Fatalf("success: %+v", r)
	}
	if r := out.Results[1]; r.Step.Status != store.StepReady || !r.Step.NotBefore.Equal(clock.Now().Add(30*time.Second)) ||
		r.Step.Error != "flaky" || !slices.Equal(r.Ready, []uuid.UUID{id(1)}) {
		t.Fatalf("retry: %+v", r)
	}
	if r := out.Results[3]; r.Step.Status != store.StepFailed || len(r.Events) != 1 || r.Events[0].Kind != store.Failure ||
		r.Events[0].Error != "broken" {
		t.Fatalf("final failure: %+v", r)
	}
	if st := mustStep(t, s, id(5)); st.Status != store.StepUpstreamFailed {
		t.Fatalf("dependent of the failed step: %+v", st)
	}
	// The expired step (attempt 2) and the success's dependent are claimed; the
	// retried step waits for its backoff.
	var claimed []uuid.UUID
	for _, c := range out.Claimed {
		claimed = append(claimed, c.ID)
		if c.LeaseOwner != "w2" || c.Materialized {
			t.Fatalf("claimed %+v", c)
		}
	}
	if !slices.Equal(claimed, []uuid.UUID{id(3), id(4)}) || out.Claimed[0].Attempt != 2 {
		t.Fatalf("claimed %v (%+v), want steps 3 and 4", claimed, out.Claimed)
	}
	as, err := s.Attempts(ctx, id(3))
	if err != nil || len(as) != 2 || as[0].Status != store.AttemptLeaseExpired || as[1].Status != store.AttemptRunning {
		t.Fatalf("attempts of the expired step: %+v, %v", as, err)
	}
	as, err = s.Attempts(ctx, id(1))
	if err != nil || len(as) != 1 || as[0].Status != store.AttemptFailed || as[0].ExitCode == nil || *as[0].ExitCode != 1 {
		t.Fatalf("attempts of the retried step: %+v, %v", as, err)
	}
	mats, err := s.Events(ctx, store.EventQuery{Kinds: []store.EventKind{store.Materialization}})
	if err != nil || len(mats.Events) != 1 || mats.Events[0].StepID != id(0) {
		t.Fatalf("materializations %+v, %v", mats, err)
	}
	if got, _ := logTexts(t, s, id(0)); !slices.Equal(got, []string{"1:start", "2:done"}) {
		t.Fatalf("log of the success %q", got)
	}
	if got, _ := logTexts(t, s, id(1)); !slices.Equal(got, []string{"1:flaky"}) {
		t.Fatalf("log of the retry %q", got)
	}
	if got, _ := logTexts(t, s, id(3)); len(got) != 0 {
		t.Fatalf("the refused report logged %q", got)
	}
	select {
	case <-wake:
	default:
		t.Fatal("no wake-up after steps became ready")
	}
	if r := mustRun(t, s, run.ID); r.Status != store.RunRunning || r.Counts[store.StepRunning] != 2 {
		t.Fatalf("run %+v", r)
	}

	// The same call again: every report is refused now, and nothing changes.
	again := mustFinishSteps(t, s, []store.StepResult{success, retry, lost, final}, nil)
	for i, err := range again.Errors {
		if !errors.Is(err, store.ErrLeaseLost) {
			t.Fatalf("repeated report %d: %v, want ErrLeaseLost", i, err)
		}
	}
	if got, _ := logTexts(t, s, id(0)); !slices.Equal(got, []string{"1:start", "2:done"}) {
		t.Fatalf("log of the success after a repeat %q", got)
	}
	mustVerify(t, s)
}

// TestFinishStepsRefusedReportRollsBack: a success with bad events is refused
// after its attempt was written; the savepoint takes that back while the report
// before it and the one after commit.
func TestFinishStepsRefusedReportRollsBack(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, p := queueStore(t, nil)
	run := mustCreateRun(t, s, store.NewRun{Steps: []store.NewStep{
		{Asset: "a/x", Partitions: dayKeys(p, 0, 1), MaxAttempts: 1},
		{Asset: "a/x", Partitions: dayKeys(p, 1, 3), MaxAttempts: 1},
		{Asset: "a/x", Partitions: dayKeys(p, 3, 4), MaxAttempts: 1},
	}})
	cs := mustClaim(t, s, "w", 3, time.Minute)
	bad := succeeded(cs[1])
	bad.Events = bad.Events[:1] // one partition without its materialization
	bad.Log = []store.LogLine{logLine(1, "never")}
	unknown := store.StepResult{StepID: cs[2].ID, Attempt: 1, Worker: "w", Outcome: "EXPLODED"}
	badStream := succeeded(cs[2])
	badStream.Log = []store.LogLine{{Attempt: 1, Stream: "stdin", Text: "x"}}
	out := mustFinishSteps(t, s, []store.StepResult{succeeded(cs[0]), bad, unknown, badStream, succeeded(cs[2])}, nil)
	if out.Errors[1] == nil || out.Errors[2] == nil || out.Errors[3] == nil || out.Errors[0] != nil || out.Errors[4] != nil {
		t.Fatalf("errors %v", out.Errors)
	}
	if st := mustStep(t, s, cs[1].ID); st.Status != store.StepRunning || st.LeaseOwner != "w" || !st.FinishedAt.IsZero() {
		t.Fatalf("refused step %+v", st)
	}
	as, err := s.Attempts(ctx, cs[1].ID)
	if err != nil || len(as) != 1 || as[0].Status != store.AttemptRunning || !as[0].FinishedAt.IsZero() {
		t.Fatalf("attempt of the refused step %+v, %v", as, err)
	}
	if got, _ := logTexts(t, s, cs[1].ID); len(got) != 0 {
		t.Fatalf("the refused report logged %q", got)
	}
	if got := mustRun(t, s, run.ID); got.Counts[store.StepSucceeded] != 2 || got.Counts[store.StepRunning] != 1 {
		t.Fatalf("run %+v", got)
	}
	// The refused step can still be reported right.
	mustFinish(t, s, succeeded(cs[1]))
	if got := mustRun(t, s, run.ID); got.Status != store.RunSucceeded {
		t.Fatalf("run %+v", got)
	}
	// A claim request without a worker fails the call before anything.
	if _, err := s.FinishSteps(ctx, nil, &store.ClaimRequest{Lease: time.Minute, Limit: 1}); err == nil {
		t.Fatal("FinishSteps with a bad claim request: no error")
	}
	if out := mustFinishSteps(t, s, nil, nil); len(out.Results) != 0 || len(out.Claimed) != 0 {
		t.Fatalf("empty call %+v", out)
	}
	mustVerify(t, s)
}

// TestSavepointForgetsInterned: ids interned in a rolled-back savepoint are not
// cached at commit, since their rows are gone.
func TestSavepointForgetsInterned(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := queueStore(t, nil)
	assetID, err := lookupAssetID(ctx, s.read, "a/x")
	if err != nil {
		t.Fatal(err)
	}
	kept := internKey{assetID, internCodeVersion, "kept"}
	gone := internKey{assetID, internCodeVersion, "gone"}
	refusal := errors.New("refused")
	err = s.withWriteTx(ctx, func(w *writeTx) error {
		refused, err := w.savepoint(ctx, func() error {
			_, err := w.intern(ctx, kept)
			return err
		})
		if refused != nil || err != nil {
			return fmt.Errorf("first savepoint: %v, %v", refused, err)
		}
		refused, err = w.savepoint(ctx, func() error {
			if _, err := w.intern(ctx, gone); err != nil {
				return err
			}
			return refusal
		})
		if refused != refusal || err != nil {
			return fmt.Errorf("second savepoint: %v, %v", refused, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	s.internMu.Lock()
	_, cachedKept := s.interned[kept]
	_, cachedGone := s.interned[gone]
	s.internMu.Unlock()
	if !cachedKept || cachedGone {
		t.Fatalf("cached: kept %v, rolled back %v", cachedKept, cachedGone)
	}
	var n int
	if err := s.read.QueryRowContext(ctx, `SELECT count(*) FROM code_versions WHERE asset_id = ? AND code_version IN ('kept', 'gone')`,
		assetID).Scan(&n); err != nil || n != 1 {
		t.Fatalf("code versions recorded: %d, %v", n, err)
	}
}

// TestFinishStepLogInReport: a report's lines come after the lines appended
// before, under its cap, in FinishStep as in FinishSteps; a refused report
// writes none.
func TestFinishStepLogInReport(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, p := queueStore(t, nil)
	mustCreateRun(t, s, store.NewRun{Steps: []store.NewStep{
		{Asset: "a/x", Partitions: dayKeys(p, 0, 1), MaxAttempts: 1},
		{Asset: "a/x", Partitions: dayKeys(p, 1, 2), MaxAttempts: 1},
	}})
	cs := mustClaim(t, s, "w", 2, time.Minute)
	for _, c := range cs {
		if err := s.AppendStepLog(ctx, c.ID, []store.LogLine{logLine(1, "aaaa"), logLine(1, "bbbb")}, 10); err != nil {
			t.Fatal(err)
		}
	}
	report := func(c store.ClaimedStep) store.StepResult {
		res := succeeded(c)
		res.Log = []store.LogLine{logLine(1, "cc"), logLine(1, "dddddddddddd")}
		res.LogCap = 10
		return res
	}
	refused := report(cs[0])
	refused.Attempt = 2
	if _, err := s.FinishStep(ctx, refused); !errors.Is(err, store.ErrLeaseLost) {
		t.Fatalf("FinishStep of another attempt: %v, want ErrLeaseLost", err)
	}
	if got, _ := logTexts(t, s, cs[0].ID); !slices.Equal(got, []string{"1:aaaa", "2:bbbb"}) {
		t.Fatalf("log after a refused report %q", got)
	}
	mustFinish(t, s, report(cs[0]))
	mustFinishSteps(t, s, []store.StepResult{report(cs[1])}, nil)
	for _, c := range cs {
		// The last line alone is longer than the cap: its tail is kept, and
		// everything before it is dropped.
		got, page := logTexts(t, s, c.ID)
		if want := []string{"4:dddddddddd"}; !slices.Equal(got, want) {
			t.Fatalf("log %q, want %q", got, want)
		}
		if page.KeptBytes != 10 || page.DroppedLines != 3 || page.DroppedBytes != 12 {
			t.Fatalf("log kept %d bytes, dropped %d lines, %d bytes; want 10, 3, 12", page.KeptBytes, page.DroppedLines, page.DroppedBytes)
		}
	}
	// Without a cap, lines are simply added.
	mustCreateRun(t, s, store.NewRun{Steps: []store.NewStep{{Asset: "a/x", Partitions: dayKeys(p, 2, 3), MaxAttempts: 1}}})
	cs = mustClaim(t, s, "w", 1, time.Minute)
	res := succeeded(cs[0])
	res.Log = []store.LogLine{logLine(1, "one"), logLine(1, "two")}
	mustFinish(t, s, res)
	if got, _ := logTexts(t, s, cs[0].ID); !slices.Equal(got, []string{"1:one", "2:two"}) {
		t.Fatalf("uncapped log %q", got)
	}
}

// TestClaimMaterialized: a claimed step is Materialized once any of its
// partitions has a success recorded (a failure does not count), on every
// claim path.
func TestClaimMaterialized(t *testing.T) {
	t.Parallel()
	s, p := queueStore(t, nil)
	first := mustCreateRun(t, s, store.NewRun{Steps: []store.NewStep{
		{Asset: "a/x", Partitions: dayKeys(p, 0, 1), MaxAttempts: 1},
		{Asset: "a/x", Partitions: dayKeys(p, 1, 2), MaxAttempts: 1},
	}})
	cs := mustClaim(t, s, "w", 1, time.Minute)
	if len(cs) != 1 || cs[0].ID != first.Steps[0].ID || cs[0].Materialized {
		t.Fatalf("ClaimSteps before any success: %+v", cs)
	}
	res := succeeded(cs[0])
	res.ClaimNext = &store.ClaimRequest{Worker: "w", Limit: 1, Lease: time.Minute}
	fr := mustFinish(t, s, res)
	if len(fr.Claimed) != 1 || fr.Claimed[0].ID != first.Steps[1].ID || fr.Claimed[0].Materialized {
		t.Fatalf("ClaimNext of a step never materialized: %+v", fr.Claimed)
	}
	fail := store.StepResult{StepID: fr.Claimed[0].ID, Attempt: 1, Worker: "w", Outcome: store.OutcomeFailed, Error: "no"}
	mustFinish(t, s, fail)

	// Day 0 succeeded, day 1 only failed; a/y was never built.
	second := mustCreateRun(t, s, store.NewRun{Steps: []store.NewStep{
		{Asset: "a/x", Partitions: dayKeys(p, 0, 1), MaxAttempts: 1},
		{Asset: "a/x", Partitions: dayKeys(p, 1, 2), MaxAttempts: 1},
		{Asset: "a/x", Partitions: dayKeys(p, 2, 4), MaxAttempts: 1},
		{Asset: "a/y", Partitions: dayKeys(p, 0, 1), MaxAttempts: 1},
	}})
	cs = mustClaim(t, s, "w", 4, time.Minute)
	want := map[uuid.UUID]bool{second.Steps[0].ID: true, second.Steps[1].ID: false, second.Steps[2].ID: false, second.Steps[3].ID: false}
	if len(cs) != 4 {
		t.Fatalf("claimed %+v", cs)
	}
	for _, c := range cs {
		if c.Materialized != want[c.ID] {
			t.Fatalf("step %s %v: Materialized %v", c.Asset, c.Partitions, c.Materialized)
		}
	}

	// A step of a third run joins the second run's step over days 2 and 3;
	// FinishSteps' next claims it once they succeeded.
	third := mustCreateRun(t, s, store.NewRun{Steps: []store.NewStep{
		{Asset: "a/x", Partitions: dayKeys(p, 2, 4), MaxAttempts: 1},
	}})
	var results []store.StepResult
	for _, c := range cs {
		results = append(results, succeeded(c))
	}
	out := mustFinishSteps(t, s, results, &store.ClaimRequest{Worker: "w", Limit: 2, Lease: time.Minute})
	if len(out.Claimed) != 1 || out.Claimed[0].ID != third.Steps[0].ID || !out.Claimed[0].Materialized {
		t.Fatalf("FinishSteps' next: %+v (errors %v)", out.Claimed, out.Errors)
	}

	// A materialization appended outside any step counts as well.
	mustAppend(t, s, materialization("a/y", p.Key(5), "v"))
	mustCreateRun(t, s, store.NewRun{Steps: []store.NewStep{{Asset: "a/y", Partitions: dayKeys(p, 4, 7), MaxAttempts: 1}}})
	if cs := mustClaim(t, s, "w", 1, time.Minute); len(cs) != 1 || !cs[0].Materialized {
		t.Fatalf("claim of a step with an appended materialization: %+v", cs)
	}
}
