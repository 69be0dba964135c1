package storetest

import (
	"bytes"
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

// QueueStore is a store with the engine's queue: what RunQueue tests.
type QueueStore interface {
	store.Store
	store.Queue
}

// RunQueue runs the conformance suite of the engine queue (store.Queue) against
// the stores open returns. As for Run, open must return a fresh, empty, migrated
// store on every call and register its cleanup with t; it is called from
// parallel subtests.
//
// Every test syncs the queue catalog (the standard catalog plus sales/clean, a
// daily asset built from sales/raw, and ops/metrics, a daily asset with no deps:
// an independent branch) and then drives runs through the interface as the engine
// and its workers do. The suite never asserts how fast anything happens: where a
// test waits for a short lease or a retry backoff to pass, it polls, and gives up
// only after a generous patience (a liveness check, not a timing one).
func RunQueue(t *testing.T, open func(t *testing.T) QueueStore) {
	t.Helper()
	type test struct {
		name string
		run  func(t *testing.T, f *qfixture)
	}
	groups := []struct {
		name  string
		tests []test
	}{
		{"CreateRun", []test{
			{"StatusesAndRoundTrip", testCreateRunStatuses},
			{"Validation", testCreateRunValidation},
			{"Choices", testCreateRunChoices},
		}},
		{"Join", []test{
			{"HolderSucceeds", testJoinHolderSucceeds},
			{"HolderFails", testJoinHolderFails},
			{"HolderCanceled", testJoinHolderCanceled},
			{"AtClaim", testJoinAtClaim},
			{"TwoHolders", testJoinTwoHolders},
			{"CanceledJoiner", testJoinCanceledJoiner},
			{"HoldsNothingWhileWaiting", testJoinHoldsNothingWhileWaiting},
			{"CrossRunNoDeadlock", testJoinCrossRunNoDeadlock},
		}},
		{"Claim", []test{
			{"OrderAndLimit", testClaimOrder},
			{"Backoff", testClaimBackoff},
			{"AssetConcurrency", testClaimConcurrencyCap},
			{"RunMaxParallel", testClaimMaxParallel},
			{"AttemptsAndInputSeq", testClaimAttemptsInputSeq},
			{"Materialized", testClaimMaterialized},
		}},
		{"Finish", []test{
			{"Succeeded", testFinishSucceeded},
			{"BadEvents", testFinishBadEvents},
			{"OnePerPartition", testFinishOnePerPartition},
			{"Fencing", testFinishFencing},
			{"Retry", testFinishRetry},
			{"RetryPastMaxAttempts", testFinishRetryPastMax},
			{"RetryAfterCancelRequested", testFinishRetryAfterCancel},
			{"FinalFailure", testFinishFinalFailure},
			{"SkippedFresh", testFinishSkippedFresh},
			{"Canceled", testFinishCanceled},
			{"ClaimNext", testFinishClaimNext},
		}},
		{"FinishSteps", []test{
			{"Successes", testBatchSuccesses},
			{"Mixed", testBatchMixed},
			{"RetryCanceledOrExhausted", testBatchRetryCanceledOrExhausted},
			{"Next", testBatchNext},
			{"Repeat", testBatchRepeat},
		}},
		{"Lease", []test{
			{"Heartbeat", testHeartbeat},
			{"Expire", testExpireLeases},
			{"ExpireCancelRequested", testExpireCancelRequested},
		}},
		{"Cancel", []test{
			{"Run", testCancelRun},
			{"RunWhileStepSucceeds", testCancelRunStepSucceeds},
			{"Step", testCancelStep},
			{"RunningStep", testCancelRunningStep},
			{"NotFound", testCancelNotFound},
			{"Finished", testCancelFinished},
		}},
		{"Read", []test{
			{"GetRunCounts", testGetRunCounts},
			{"RunStepsOrder", testRunStepsOrder},
			{"ListRuns", testListRuns},
			{"ListRunsDefaultLimit", testListRunsDefaultLimit},
		}},
		{"Log", []test{
			{"Numbering", testLogNumbering},
			{"DefaultLimit", testLogDefaultLimit},
			{"Cap", testLogCap},
			{"LongLine", testLogLongLine},
			{"Sanitize", testLogSanitize},
			{"InReport", testLogInReport},
			{"InReportCap", testLogInReportCap},
		}},
		{"Backfill", []test{
			{"Progress", testBackfillProgress},
			{"SucceededEmptyAndList", testBackfillList},
			{"Cancel", testBackfillCancel},
		}},
		{"ReadRanges", []test{
			{"Ranges", testReadRanges},
		}},
		{"Listen", []test{
			{"Wakes", testListen},
		}},
		{"Concurrency", []test{
			{"ClaimAndFinishDAG", testQueueConcurrency},
			{"Caps", testCapsUnderConcurrency},
			{"ExpireLeases", testConcurrentExpire},
			{"OverlappingRuns", testConcurrentOverlappingRuns},
			{"FinishSteps", testConcurrentFinishSteps},
		}},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for _, tc := range g.tests {
				t.Run(tc.name, func(t *testing.T) {
					t.Parallel()
					tc.run(t, newQFixture(t, open))
				})
			}
		})
	}
}

// qfixture is one queue store under test, with the queue catalog synced.
type qfixture struct {
	*fixture
	q    QueueStore
	open func(t *testing.T) QueueStore
}

func newQFixture(t *testing.T, open func(t *testing.T) QueueStore) *qfixture {
	t.Helper()
	s := open(t)
	if s == nil {
		t.Fatal("open returned a nil store")
	}
	f := &qfixture{fixture: &fixture{t: t, ctx: t.Context(), s: s}, q: s, open: open}
	f.sync(queueCatalog())
	return f
}

// on returns the fixture reporting to t (a subtest sharing the store).
func (f *qfixture) on(t *testing.T) *qfixture {
	return &qfixture{fixture: &fixture{t: t, ctx: t.Context(), s: f.s}, q: f.q, open: f.open}
}

// fresh returns a fixture on a new, empty store with the queue catalog synced,
// reporting to t.
func (f *qfixture) fresh(t *testing.T) *qfixture {
	t.Helper()
	return newQFixture(t, f.open)
}

// ---- definitions --------------------------------------------------------------

const (
	cleanDaily assets.Key = "sales/clean" // daily from 2026-01-01, deps sales/raw
	metrics    assets.Key = "ops/metrics" // daily from 2026-01-01, no deps: an independent branch
	goneAsset  assets.Key = "old/gone"    // defined, then removed (validation test)
	firstWeek             = "2026-01-05"  // the first partition of sales/weekly
)

// queueCatalog is the standard catalog plus sales/clean and ops/metrics.
func queueCatalog() *assets.Definitions {
	defs := catalog()
	defs.Assets = append(defs.Assets,
		computed(cleanDaily, dailyFrom("2026-01-01"), rawDaily),
		computed(metrics, dailyFrom("2026-01-01")),
	)
	return defs
}

// patience bounds the polling for short leases and backoffs: far above what any
// store needs, it only keeps a broken store from hanging the suite.
const patience = 30 * time.Second

// testLease is the lease of claims that must not expire during a test.
const testLease = time.Hour

// ---- building runs ------------------------------------------------------------

// ns returns a new step of asset over partitions with one attempt and the given
// deps (indexes of earlier steps).
func ns(asset assets.Key, partitions []string, deps ...int) store.NewStep {
	return store.NewStep{Asset: asset, Partitions: partitions, MaxAttempts: 1, Deps: deps}
}

// tries sets a new step's MaxAttempts.
func tries(n int, s store.NewStep) store.NewStep {
	s.MaxAttempts = n
	return s
}

// days returns the keys of daily partitions lo..hi-1 (days after 2026-01-01).
func days(lo, hi int) []string {
	var ps []string
	for i := lo; i < hi; i++ {
		ps = append(ps, day(i))
	}
	return ps
}

// unpart is the partitions of a step of an unpartitioned asset.
var unpart = []string{""}

func newRun(steps ...store.NewStep) store.NewRun {
	return store.NewRun{Trigger: store.TriggerManual, Selection: "test", Steps: steps}
}

// withID returns nr with its ID set.
func withID(id uuid.UUID, nr store.NewRun) store.NewRun {
	nr.ID = id
	return nr
}

// sortedIDs returns n new ids in ascending order (bytes, as the databases compare
// uuids), so that runs created in that order are in the same order even when two
// get the same created_at.
func sortedIDs(n int) []uuid.UUID {
	ids := make([]uuid.UUID, n)
	for i := range ids {
		ids[i] = uuid.New()
	}
	slices.SortFunc(ids, func(a, b uuid.UUID) int { return bytes.Compare(a[:], b[:]) })
	return ids
}

// ---- queue operations ---------------------------------------------------------

func (f *qfixture) createRun(nr store.NewRun) *store.Run {
	f.t.Helper()
	r, err := f.q.CreateRun(f.ctx, nr)
	if err != nil {
		f.t.Fatalf("CreateRun(%s): %v", runString(nr), err)
	}
	if r == nil {
		f.t.Fatalf("CreateRun(%s): nil run and no error", runString(nr))
	}
	if r.ID == uuid.Nil || (nr.ID != uuid.Nil && r.ID != nr.ID) {
		f.t.Fatalf("CreateRun: run id %s, want %s (a new one when nil)", r.ID, nr.ID)
	}
	if len(r.Steps) != len(nr.Steps) {
		f.t.Fatalf("CreateRun(%s): %d steps returned, want %d", runString(nr), len(r.Steps), len(nr.Steps))
	}
	for i, s := range r.Steps {
		if s.Ordinal != i || s.RunID != r.ID || s.Asset != nr.Steps[i].Asset || !slices.Equal(s.Partitions, nr.Steps[i].Partitions) {
			f.t.Fatalf("CreateRun: step %d returned as %s, want ordinal %d of run %s, %s %q", i, stepString(s), i, r.ID, nr.Steps[i].Asset, nr.Steps[i].Partitions)
		}
	}
	return r
}

// runString describes a new run's steps for messages.
func runString(nr store.NewRun) string {
	var b strings.Builder
	fmt.Fprintf(&b, "run of %d steps", len(nr.Steps))
	for i, s := range nr.Steps {
		if i == 6 {
			b.WriteString(", …")
			break
		}
		fmt.Fprintf(&b, "; %d: %s %q deps %v", i, s.Asset, s.Partitions, s.Deps)
	}
	return b.String()
}

func (f *qfixture) claimReq(req store.ClaimRequest) []store.ClaimedStep {
	f.t.Helper()
	cs, err := f.q.ClaimSteps(f.ctx, req)
	if err != nil {
		f.t.Fatalf("ClaimSteps(worker %q, limit %d): %v", req.Worker, req.Limit, err)
	}
	checkClaims(f.t, "ClaimSteps", req, cs)
	return cs
}

// checkClaims checks what every claim must look like.
func checkClaims(t *testing.T, what string, req store.ClaimRequest, cs []store.ClaimedStep) {
	t.Helper()
	if len(cs) > req.Limit {
		t.Errorf("%s(limit %d): %d steps claimed", what, req.Limit, len(cs))
	}
	seen := map[uuid.UUID]bool{}
	for _, c := range cs {
		if seen[c.ID] {
			t.Errorf("%s: step %s claimed twice in one call", what, c.ID)
		}
		seen[c.ID] = true
		if c.Status != store.StepRunning || c.LeaseOwner != req.Worker || c.Attempt < 1 || c.Attempt > c.MaxAttempts ||
			c.LeaseExpiresAt.IsZero() || c.StartedAt.IsZero() || !c.NotBefore.IsZero() {
			t.Errorf("%s(worker %q): claimed step %s; want RUNNING, leased to the worker until a set time, attempt in 1..max, started, no not-before",
				what, req.Worker, stepString(c.Step))
		}
	}
}

// claim claims up to limit steps for worker under a lease that does not expire
// during the test.
func (f *qfixture) claim(worker string, limit int) []store.ClaimedStep {
	f.t.Helper()
	return f.claimReq(store.ClaimRequest{Worker: worker, Limit: limit, Lease: testLease})
}

// claimOne claims exactly one step, failing the test when there is none.
func (f *qfixture) claimOne(worker string) store.ClaimedStep {
	f.t.Helper()
	cs := f.claim(worker, 1)
	if len(cs) != 1 {
		f.t.Fatalf("ClaimSteps(worker %q, limit 1): %d steps claimed, want 1", worker, len(cs))
	}
	return cs[0]
}

// claimIDs returns the step ids of claims.
func claimIDs(cs []store.ClaimedStep) []uuid.UUID {
	ids := make([]uuid.UUID, len(cs))
	for i, c := range cs {
		ids[i] = c.ID
	}
	return ids
}

// byID returns the claim of step id among cs, failing the test when missing.
func byID(t *testing.T, cs []store.ClaimedStep, id uuid.UUID) store.ClaimedStep {
	t.Helper()
	for _, c := range cs {
		if c.ID == id {
			return c
		}
	}
	t.Fatalf("step %s not among the claimed steps %v", id, claimIDs(cs))
	return store.ClaimedStep{}
}

func (f *qfixture) finish(res store.StepResult) *store.FinishResult {
	f.t.Helper()
	r, err := f.q.FinishStep(f.ctx, res)
	if err != nil {
		f.t.Fatalf("FinishStep(step %s attempt %d, worker %q, %s): %v", res.StepID, res.Attempt, res.Worker, res.Outcome, err)
	}
	if r == nil || r.Step == nil {
		f.t.Fatalf("FinishStep(step %s, %s): nil result or step and no error", res.StepID, res.Outcome)
	}
	if r.Step.ID != res.StepID {
		f.t.Errorf("FinishStep(step %s): returned step %s", res.StepID, r.Step.ID)
	}
	if res.ClaimNext != nil {
		checkClaims(f.t, "FinishStep ClaimNext", *res.ClaimNext, r.Claimed)
	} else if len(r.Claimed) > 0 {
		f.t.Errorf("FinishStep(step %s) without ClaimNext claimed %v", res.StepID, claimIDs(r.Claimed))
	}
	return r
}

// mats returns one materialization per partition of c, read at its input seq, as
// a worker reports them.
func mats(c store.ClaimedStep) []store.Event {
	events := make([]store.Event, len(c.Partitions))
	for i, p := range c.Partitions {
		events[i] = mat(c.Asset, p)
		events[i].InputSeq = c.InputSeq
	}
	return events
}

// result returns the report of c's attempt ending with outcome.
func result(c store.ClaimedStep, outcome store.StepOutcome) store.StepResult {
	return store.StepResult{StepID: c.ID, Attempt: c.Attempt, Worker: c.LeaseOwner, Outcome: outcome}
}

// succeed reports c succeeded with one materialization per partition.
func (f *qfixture) succeed(c store.ClaimedStep) *store.FinishResult {
	f.t.Helper()
	res := result(c, store.OutcomeSucceeded)
	res.Events = mats(c)
	return f.finish(res)
}

// fail reports c failed for good (no retry).
func (f *qfixture) fail(c store.ClaimedStep, msg string) *store.FinishResult {
	f.t.Helper()
	res := result(c, store.OutcomeFailed)
	res.Error = msg
	return f.finish(res)
}

// retry reports c failed, to be retried after backoff.
func (f *qfixture) retry(c store.ClaimedStep, msg string, after time.Duration) *store.FinishResult {
	f.t.Helper()
	res := result(c, store.OutcomeFailed)
	res.Error = msg
	res.Retry = true
	res.RetryAfter = after
	return f.finish(res)
}

// drain claims and succeeds every claimable step until none is left.
func (f *qfixture) drain(worker string) []store.ClaimedStep {
	f.t.Helper()
	var all []store.ClaimedStep
	for round := 0; ; round++ {
		if round > 10_000 {
			f.t.Fatal("drain: steps keep coming after 10,000 claims")
		}
		cs := f.claim(worker, 100)
		if len(cs) == 0 {
			return all
		}
		for _, c := range cs {
			f.succeed(c)
		}
		all = append(all, cs...)
	}
}

func (f *qfixture) getRun(id uuid.UUID) *store.Run {
	f.t.Helper()
	r, err := f.q.GetRun(f.ctx, id)
	if err != nil {
		f.t.Fatalf("GetRun(%s): %v", id, err)
	}
	if r == nil || r.ID != id {
		f.t.Fatalf("GetRun(%s): returned %v", id, r)
	}
	if len(r.Steps) != 0 {
		f.t.Errorf("GetRun(%s): %d steps filled; GetRun returns counts, not steps", id, len(r.Steps))
	}
	return r
}

func (f *qfixture) getStep(id uuid.UUID) *store.Step {
	f.t.Helper()
	s, err := f.q.GetStep(f.ctx, id)
	if err != nil {
		f.t.Fatalf("GetStep(%s): %v", id, err)
	}
	if s == nil || s.ID != id {
		f.t.Fatalf("GetStep(%s): returned %v", id, s)
	}
	return s
}

func (f *qfixture) runSteps(runID uuid.UUID) []store.Step {
	f.t.Helper()
	steps, err := f.q.RunSteps(f.ctx, runID)
	if err != nil {
		f.t.Fatalf("RunSteps(%s): %v", runID, err)
	}
	for i, s := range steps {
		if s.Ordinal != i || s.RunID != runID {
			f.t.Errorf("RunSteps(%s): step %d is %s; want ordinal %d of that run (plan order)", runID, i, stepString(s), i)
		}
	}
	return steps
}

func (f *qfixture) attempts(stepID uuid.UUID) []store.Attempt {
	f.t.Helper()
	as, err := f.q.Attempts(f.ctx, stepID)
	if err != nil {
		f.t.Fatalf("Attempts(%s): %v", stepID, err)
	}
	for i, a := range as {
		if a.Attempt != i+1 || a.StepID != stepID {
			f.t.Errorf("Attempts(%s): entry %d is %s; want attempt %d of that step (first first)", stepID, i, attemptString(a), i+1)
		}
	}
	return as
}

// wantStep checks step id's status and returns it.
func (f *qfixture) wantStep(what string, id uuid.UUID, want store.StepStatus) *store.Step {
	f.t.Helper()
	s := f.getStep(id)
	if s.Status != want {
		f.t.Errorf("%s: step %s (%s %q) is %s, want %s (error %q)", what, id, s.Asset, s.Partitions, s.Status, want, s.Error)
	}
	return s
}

// wantRun checks run id's status and returns it.
func (f *qfixture) wantRun(what string, id uuid.UUID, want store.RunStatus) *store.Run {
	f.t.Helper()
	r := f.getRun(id)
	if r.Status != want {
		f.t.Errorf("%s: run %s is %s, want %s (step counts %s)", what, id, r.Status, want, countsString(r.Counts))
	}
	if r.Status.Done() && r.FinishedAt.IsZero() {
		f.t.Errorf("%s: run %s is %s with no FinishedAt", what, id, r.Status)
	}
	if !r.Status.Done() && !r.FinishedAt.IsZero() {
		f.t.Errorf("%s: run %s is %s but has FinishedAt %s", what, id, r.Status, ts(r.FinishedAt))
	}
	return r
}

// runEvents returns the events of the log recorded for run, newest first.
func (f *qfixture) runEvents(run uuid.UUID, kinds ...store.EventKind) []store.Event {
	f.t.Helper()
	return filterEvents(f.allEvents(store.EventQuery{Kinds: kinds, Limit: 10_000}),
		func(e store.Event) bool { return e.RunID == run })
}

// checkJoins checks that the step of a new run over partitions of asset joins exactly the
// steps holders (none: it is READY and joins nothing), and returns the run.
func (f *qfixture) checkJoins(what string, asset assets.Key, partitions []string, holders ...uuid.UUID) *store.Run {
	f.t.Helper()
	r := f.createRun(newRun(ns(asset, partitions)))
	s := r.Steps[0]
	if !sameIDs(s.Joined, holders) {
		f.t.Errorf("%s: a new run's step over %s %q joined %v, want %v", what, asset, partitions, s.Joined, holders)
	}
	want := store.StepReady
	if len(holders) > 0 {
		want = store.StepPending
	}
	if s.Status != want {
		f.t.Errorf("%s: a new run's step over %s %q is %s, want %s", what, asset, partitions, s.Status, want)
	}
	return r
}

// ---- comparing ----------------------------------------------------------------

func sameIDs(got, want []uuid.UUID) bool {
	return idsString(got) == idsString(want)
}

func containsID(ids []uuid.UUID, id uuid.UUID) bool { return slices.Contains(ids, id) }

// idsString lists ids sorted.
func idsString(ids []uuid.UUID) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = id.String()
	}
	slices.Sort(s)
	return "[" + strings.Join(s, " ") + "]"
}

func ts(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// stepString describes every field of a step, comparable across reads.
func stepString(s store.Step) string {
	return fmt.Sprintf("{id %s run %s %s %q ordinal %d %s attempt %d/%d deps %s joined %s not_before %s lease %q until %s cancel_requested %v created %s ready %s started %s finished %s error %q}",
		s.ID, s.RunID, s.Asset, s.Partitions, s.Ordinal, s.Status, s.Attempt, s.MaxAttempts, idsString(s.Deps), idsString(s.Joined),
		ts(s.NotBefore), s.LeaseOwner, ts(s.LeaseExpiresAt), s.CancelRequested, ts(s.CreatedAt), ts(s.ReadyAt), ts(s.StartedAt), ts(s.FinishedAt), s.Error)
}

func countsString(m map[store.StepStatus]int) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if m[k] != 0 {
			parts = append(parts, fmt.Sprintf("%s:%d", k, m[k]))
		}
	}
	return "{" + strings.Join(parts, " ") + "}"
}

// runRecordString describes every field of a recorded run but its steps.
func runRecordString(r store.Run) string {
	return fmt.Sprintf("{id %s %s trigger %s selection %q from %q to %q force %v max_parallel %d backfill %s schedule %q parent %s planned_seq %d created %s started %s finished %s canceled %s counts %s partitions %s}",
		r.ID, r.Status, r.Trigger, r.Selection, r.From, r.To, r.Force, r.MaxParallel, r.BackfillID, r.ScheduleName, r.ParentRunID, r.PlannedSeq,
		ts(r.CreatedAt), ts(r.StartedAt), ts(r.FinishedAt), ts(r.CanceledAt), countsString(r.Counts), countsString(r.Partitions))
}

func attemptString(a store.Attempt) string {
	exit := "-"
	if a.ExitCode != nil {
		exit = fmt.Sprint(*a.ExitCode)
	}
	return fmt.Sprintf("{step %s attempt %d worker %q input_seq %d %s exit %s error %q started %s finished %s}",
		a.StepID, a.Attempt, a.Worker, a.InputSeq, a.Status, exit, a.Error, ts(a.StartedAt), ts(a.FinishedAt))
}

// checkCounts compares per-status counts (a missing status counts 0).
func checkCounts(t *testing.T, what string, got, want map[store.StepStatus]int) {
	t.Helper()
	if countsString(got) != countsString(want) {
		t.Errorf("%s = %s, want %s", what, countsString(got), countsString(want))
	}
}

// wantErrIs checks that err wraps target.
func wantErrIs(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s: error %v, want one wrapping %q (errors.Is)", what, err, target)
	}
}

// ---- nothing written ----------------------------------------------------------

// queueSnap is what a refused queue operation must leave as it was: the catalog
// and, in full, the given runs, their steps and attempts.
type queueSnap struct {
	catalog unchanged
	runs    []uuid.UUID
	records map[string]string
}

func (f *qfixture) snapQueue(runs ...uuid.UUID) queueSnap {
	f.t.Helper()
	s := queueSnap{catalog: f.snapshotAll(), runs: runs, records: map[string]string{}}
	for _, id := range runs {
		s.records["run "+id.String()] = runRecordString(*f.getRun(id))
		for _, st := range f.runSteps(id) {
			s.records["step "+st.ID.String()] = stepString(st)
			var as []string
			for _, a := range f.attempts(st.ID) {
				as = append(as, attemptString(a))
			}
			s.records["attempts of "+st.ID.String()] = strings.Join(as, "\n")
		}
	}
	return s
}

func (f *qfixture) checkQueueUnchanged(what string, before queueSnap) {
	f.t.Helper()
	f.checkUnchanged(what, before.catalog)
	after := f.snapQueue(before.runs...)
	for _, k := range slices.Sorted(maps.Keys(before.records)) {
		if after.records[k] != before.records[k] {
			f.t.Errorf("%s: %s changed:\nbefore %s\nafter  %s", what, k, before.records[k], after.records[k])
		}
	}
	for k := range after.records {
		if _, ok := before.records[k]; !ok {
			f.t.Errorf("%s: %s appeared: %s", what, k, after.records[k])
		}
	}
}

// eventually polls cond until it holds, failing the test after patience.
func (f *qfixture) eventually(what string, cond func() bool) {
	f.t.Helper()
	deadline := time.Now().Add(patience)
	for !cond() {
		if f.t.Failed() {
			f.t.FailNow()
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("%s: still not so after %s of polling", what, patience)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
