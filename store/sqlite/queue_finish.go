package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/freshetdev/freshet/assets"
	"github.com/freshetdev/freshet/store"
)

// The statements that end steps and carry the consequences.
const (
	// fenceSQL reads a step only while the worker holds its lease for the attempt.
	fenceSQL = `SELECT s.run_id, a.key, s.partition_keys, s.max_attempts, s.cancel_requested_at IS NOT NULL
		FROM steps s JOIN assets a ON a.id = s.asset_id
		WHERE s.id = ? AND s.status = 'RUNNING' AND s.lease_owner = ? AND s.attempt = ?`
	stepExistsSQL = `SELECT EXISTS (SELECT 1 FROM steps WHERE id = ?)`
	endAttemptSQL = `UPDATE attempts SET status = ?, finished_at = ?, exit_code = ?, error = ?
		WHERE step_id = ? AND attempt = ?`
	// endStepSQL ends a step that has not ended yet.
	endStepSQL = `UPDATE steps SET status = ?, finished_at = ?, error = ?, lease_owner = NULL, lease_expires_at = NULL,
		not_before = NULL WHERE id = ? AND status IN ` + stepNotDoneSQL
	releaseSQL     = `DELETE FROM inflight_partitions WHERE step_id = ?`
	releaseManySQL = `DELETE FROM inflight_partitions WHERE step_id IN (SELECT value FROM json_each(?))`
	retrySQL       = `UPDATE steps SET status = 'READY', not_before = ?, ready_at = ?, error = ?, lease_owner = NULL,
		lease_expires_at = NULL WHERE id = ?`
	// promoteSQL makes READY the PENDING dependents of the given steps whose deps
	// are all done: a run dep when its step succeeded or was skipped as fresh, a
	// join when the holder succeeded, was skipped or was canceled.
	promoteSQL = `UPDATE steps SET status = 'READY', ready_at = ?1
		WHERE status = 'PENDING'
			AND id IN (SELECT step_id FROM step_deps WHERE upstream_step_id IN (SELECT value FROM json_each(?2)))
			AND NOT EXISTS (SELECT 1 FROM step_deps d JOIN steps u ON u.id = d.upstream_step_id
				WHERE d.step_id = steps.id AND NOT (u.status IN ('SUCCEEDED', 'SKIPPED_FRESH')
					OR (d.kind = 'join' AND u.status = 'CANCELED')))
		RETURNING id, run_id`
	// upstreamFailedSQL ends the not started dependents of a step that failed:
	// joinMsg for those that joined it, runMsg for those of its run.
	upstreamFailedSQL = `UPDATE steps SET status = 'UPSTREAM_FAILED', finished_at = ?1, not_before = NULL,
			error = CASE (SELECT kind FROM step_deps WHERE step_id = steps.id AND upstream_step_id = ?2)
				WHEN 'join' THEN ?3 ELSE ?4 END
		WHERE id IN (SELECT step_id FROM step_deps WHERE upstream_step_id = ?2) AND status IN ` + stepWaitingSQL + `
		RETURNING id, run_id, (SELECT key FROM assets WHERE assets.id = steps.asset_id), partition_keys`
	// cancelDependentsSQL ends the not started dependents in a step's run.
	cancelDependentsSQL = `UPDATE steps SET status = 'CANCELED', finished_at = ?1, not_before = NULL, error = ?3
		WHERE id IN (SELECT step_id FROM step_deps WHERE upstream_step_id = ?2 AND kind = 'run')
			AND status IN ` + stepWaitingSQL + `
		RETURNING id, run_id, (SELECT key FROM assets WHERE assets.id = steps.asset_id), partition_keys`
	// runActiveSQL tells whether a run has steps not ended: the common case,
	// answered before runOutcomeSQL looks further.
	runActiveSQL  = `SELECT EXISTS (SELECT 1 FROM steps WHERE run_id = ? AND status IN ` + stepNotDoneSQL + `)`
	runOutcomeSQL = `SELECT r.status, r.canceled_at IS NOT NULL, r.backfill_id,
			EXISTS (SELECT 1 FROM steps WHERE run_id = r.id AND status = 'CANCELED'),
			EXISTS (SELECT 1 FROM steps WHERE run_id = r.id AND status IN ('FAILED', 'UPSTREAM_FAILED'))
		FROM runs r WHERE r.id = ?`
	endRunSQL          = `UPDATE runs SET status = ?, finished_at = ? WHERE id = ?`
	backfillOutcomeSQL = `SELECT b.status, b.canceled_at IS NOT NULL,
			EXISTS (SELECT 1 FROM runs WHERE backfill_id = b.id AND status IN ('QUEUED', 'RUNNING')),
			EXISTS (SELECT 1 FROM runs WHERE backfill_id = b.id AND status = 'CANCELED'),
			EXISTS (SELECT 1 FROM runs WHERE backfill_id = b.id AND status = 'FAILED')
		FROM backfills b WHERE b.id = ?`
	endBackfillSQL = `UPDATE backfills SET status = ?, finished_at = ? WHERE id = ?`
	runStatusSQL   = `SELECT status FROM runs WHERE id = ?`
)

// stepRef names a step in what its end changes and in messages.
type stepRef struct {
	id, runID string
	asset     assets.Key
	keys      []string
}

func (r stepRef) String() string { return describePartitions(r.asset, r.keys) }

// settler ends steps in a write transaction and carries the consequences: the
// dependents that become READY, UPSTREAM_FAILED or CANCELED, the runs and
// backfills that end.
type settler struct {
	w     *writeTx
	now   time.Time
	nowUS int64
	// ready lists the steps made READY; wake says one of them is claimable now.
	ready []uuid.UUID
	wake  bool
	// runs are those whose steps changed, for settleRuns.
	runs map[string]bool
	// events are the failure events recorded.
	events []store.Event
}

func newSettler(w *writeTx, now time.Time) *settler {
	now = now.UTC().Truncate(time.Microsecond)
	return &settler{w: w, now: now, nowUS: micros(now), runs: make(map[string]bool)}
}

// endStep moves a step that has not ended to a final status, releasing its
// partitions; it reports whether the step had not ended.
func (q *settler) endStep(ctx context.Context, ref stepRef, status store.StepStatus, msg string) (bool, error) {
	n, err := q.w.exec(ctx, endStepSQL, string(status), q.nowUS, nullString(msg), ref.id)
	if err != nil {
		return false, fmt.Errorf("end step %s: %w", ref.id, err)
	}
	if n == 0 {
		return false, nil
	}
	if _, err := q.w.ExecContext(ctx, releaseSQL, ref.id); err != nil {
		return false, fmt.Errorf("release partitions of step %s: %w", ref.id, err)
	}
	q.runs[ref.runID] = true
	return true, nil
}

// succeed ends a step as SUCCEEDED or SKIPPED_FRESH and makes READY the
// dependents that were waiting only for it.
func (q *settler) succeed(ctx context.Context, ref stepRef, status store.StepStatus) error {
	if _, err := q.endStep(ctx, ref, status, ""); err != nil {
		return err
	}
	return q.promote(ctx, []string{ref.id})
}

// promote makes READY the PENDING dependents of steps whose deps are all done.
func (q *settler) promote(ctx context.Context, upstream []string) error {
	if len(upstream) == 0 {
		return nil
	}
	rows, err := q.w.QueryContext(ctx, promoteSQL, q.nowUS, jsonArray(upstream))
	if err != nil {
		return fmt.Errorf("make dependents ready: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, runID string
		if err := rows.Scan(&id, &runID); err != nil {
			return fmt.Errorf("make dependents ready: %w", err)
		}
		sid, err := uuid.Parse(id)
		if err != nil {
			return fmt.Errorf("make dependents ready: step id %q: %w", id, err)
		}
		q.ready = append(q.ready, sid)
		q.wake = true
		q.runs[runID] = true
	}
	return rows.Err()
}

// fail ends a step as FAILED for good: one failure event per partition goes to
// the log, and every dependent not done yet, over run and join deps transitively,
// becomes UPSTREAM_FAILED.
func (q *settler) fail(ctx context.Context, ref stepRef, msg string) error {
	ended, err := q.endStep(ctx, ref, store.StepFailed, msg)
	if err != nil || !ended {
		return err
	}
	runID, err := uuid.Parse(ref.runID)
	if err != nil {
		return fmt.Errorf("step %s: run id %q: %w", ref.id, ref.runID, err)
	}
	stepID, err := uuid.Parse(ref.id)
	if err != nil {
		return fmt.Errorf("step id %q: %w", ref.id, err)
	}
	events := make([]store.Event, len(ref.keys))
	for i, p := range ref.keys {
		events[i] = store.Event{Kind: store.Failure, Asset: ref.asset, Partition: p, RunID: runID, StepID: stepID, Error: msg}
	}
	recorded, err := q.w.append(ctx, events)
	if err != nil {
		return fmt.Errorf("record the failure of step %s: %w", ref.id, err)
	}
	q.events = append(q.events, recorded...)
	return q.propagateFailure(ctx, ref)
}

// propagateFailure makes UPSTREAM_FAILED the dependents of failed, transitively.
// A step that joined a failed one says which; the others name the step that
// failed at the root.
func (q *settler) propagateFailure(ctx context.Context, failed stepRef) error {
	runMsg := fmt.Sprintf("upstream step %s failed (step %s)", failed, failed.id)
	queue := []stepRef{failed}
	for len(queue) > 0 {
		up := queue[0]
		queue = queue[1:]
		joinMsg := fmt.Sprintf("joined step %s of run %s for %s failed", up.id, up.runID, up)
		ended, err := q.endDependents(ctx, upstreamFailedSQL, q.nowUS, up.id, joinMsg, runMsg)
		if err != nil {
			return fmt.Errorf("fail the dependents of step %s: %w", up.id, err)
		}
		queue = append(queue, ended...)
	}
	return nil
}

// cancel ends a step as CANCELED with its dependents in its run, transitively;
// steps that joined any of them see that dep done and may become READY.
func (q *settler) cancel(ctx context.Context, ref stepRef, msg string) error {
	ended, err := q.endStep(ctx, ref, store.StepCanceled, msg)
	if err != nil || !ended {
		return err
	}
	return q.cancelDependents(ctx, ref)
}

// cancelDependents cancels the not started dependents of ref in its run,
// transitively, and promotes those that joined ref or any of them.
func (q *settler) cancelDependents(ctx context.Context, ref stepRef) error {
	canceled := []string{ref.id}
	queue := []stepRef{ref}
	for len(queue) > 0 {
		up := queue[0]
		queue = queue[1:]
		ended, err := q.endDependents(ctx, cancelDependentsSQL, q.nowUS, up.id, fmt.Sprintf("canceled: upstream step %s was canceled", ref))
		if err != nil {
			return fmt.Errorf("cancel the dependents of step %s: %w", up.id, err)
		}
		for _, e := range ended {
			canceled = append(canceled, e.id)
		}
		queue = append(queue, ended...)
	}
	return q.promote(ctx, canceled)
}

// endDependents runs query (upstreamFailedSQL or cancelDependentsSQL), which
// returns the steps it ended, and releases their partitions.
func (q *settler) endDependents(ctx context.Context, query string, args ...any) ([]stepRef, error) {
	rows, err := q.w.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	var ended []stepRef
	for rows.Next() {
		var (
			ref         stepRef
			asset, keys string
		)
		if err := rows.Scan(&ref.id, &ref.runID, &asset, &keys); err != nil {
			rows.Close()
			return nil, err
		}
		ref.asset = assets.Key(asset)
		if ref.keys, err = parseKeys(keys); err != nil {
			rows.Close()
			return nil, err
		}
		ended = append(ended, ref)
		q.runs[ref.runID] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(ended) > 0 {
		ids := make([]string, len(ended))
		for i, e := range ended {
			ids[i] = e.id
		}
		if _, err := q.w.ExecContext(ctx, releaseManySQL, jsonArray(ids)); err != nil {
			return nil, fmt.Errorf("release partitions: %w", err)
		}
	}
	return ended, nil
}

// settleRuns ends the runs whose steps have all ended, and then their backfills.
func (q *settler) settleRuns(ctx context.Context) error {
	backfills := make(map[string]bool)
	for runID := range q.runs {
		var active bool
		if err := q.w.QueryRowContext(ctx, runActiveSQL, runID).Scan(&active); err != nil {
			return fmt.Errorf("read the state of run %s: %w", runID, err)
		}
		if active {
			continue
		}
		var (
			status                 string
			canceled               bool
			backfillID             sql.NullString
			anyCanceled, anyFailed bool
		)
		err := q.w.QueryRowContext(ctx, runOutcomeSQL, runID).Scan(&status, &canceled, &backfillID, &anyCanceled, &anyFailed)
		if err != nil {
			return fmt.Errorf("read the state of run %s: %w", runID, err)
		}
		if store.RunStatus(status).Done() {
			continue
		}
		end := store.RunSucceeded
		switch {
		case canceled || anyCanceled:
			end = store.RunCanceled
		case anyFailed:
			end = store.RunFailed
		}
		if _, err := q.w.ExecContext(ctx, endRunSQL, string(end), q.nowUS, runID); err != nil {
			return fmt.Errorf("end run %s: %w", runID, err)
		}
		if backfillID.Valid {
			backfills[backfillID.String] = true
		}
	}
	for id := range backfills {
		if err := q.settleBackfill(ctx, id); err != nil {
			return err
		}
	}
	return nil
}

// settleBackfill ends a backfill whose runs have all ended.
func (q *settler) settleBackfill(ctx context.Context, id string) error {
	var (
		status                                   string
		canceled, active, anyCanceled, anyFailed bool
	)
	err := q.w.QueryRowContext(ctx, backfillOutcomeSQL, id).Scan(&status, &canceled, &active, &anyCanceled, &anyFailed)
	if err != nil {
		return fmt.Errorf("read the state of backfill %s: %w", id, err)
	}
	if (status != string(store.BackfillRequested) && status != string(store.BackfillRunning)) || active {
		return nil
	}
	end := store.BackfillSucceeded
	switch {
	case canceled || anyCanceled:
		end = store.BackfillCanceled
	case anyFailed:
		end = store.BackfillFailed
	}
	if _, err := q.w.ExecContext(ctx, endBackfillSQL, string(end), q.nowUS, id); err != nil {
		return fmt.Errorf("end backfill %s: %w", id, err)
	}
	return nil
}

// FinishStep records the end of a claimed step's attempt with everything it
// changes, in one transaction fenced by the lease.
func (s *Store) FinishStep(ctx context.Context, res store.StepResult) (*store.FinishResult, error) {
	r, err := checkReport(res)
	if err != nil {
		return nil, fmt.Errorf("finish step %s: %w", res.StepID, err)
	}
	if res.ClaimNext != nil {
		if err := checkClaimRequest(*res.ClaimNext); err != nil {
			return nil, fmt.Errorf("finish step %s: %w", res.StepID, err)
		}
	}
	var (
		out  *store.FinishResult
		wake bool
	)
	err = s.withWriteTx(ctx, func(w *writeTx) error {
		f, err := w.record(ctx, r, s.now())
		if err != nil {
			return err
		}
		if res.ClaimNext != nil && res.ClaimNext.Limit > 0 {
			claimed, err := w.claim(ctx, *res.ClaimNext, f.q.now)
			if err != nil {
				return err
			}
			if claimed != nil {
				f.out.Claimed = claimed
			}
		}
		out, err = f.describe(ctx)
		wake = f.q.wake
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("finish step %s: %w", res.StepID, err)
	}
	if wake {
		s.notify()
	}
	return out, nil
}

// attemptStatuses are the statuses of attempts that ended with each outcome.
var attemptStatuses = map[store.StepOutcome]store.AttemptStatus{
	store.OutcomeSucceeded:    store.AttemptSucceeded,
	store.OutcomeSkippedFresh: store.AttemptSkipped,
	store.OutcomeFailed:       store.AttemptFailed,
	store.OutcomeTimedOut:     store.AttemptTimedOut,
	store.OutcomeCanceled:     store.AttemptCanceled,
}

// report is a StepResult checked before its transaction.
type report struct {
	res           store.StepResult
	attemptStatus store.AttemptStatus
	msg           string    // res.Error, storable
	log           *logBatch // res.Log; nil when empty
}

// checkReport checks what can be checked of a report without the store: its
// outcome and the streams of its log lines.
func checkReport(res store.StepResult) (*report, error) {
	status, ok := attemptStatuses[res.Outcome]
	if !ok {
		return nil, fmt.Errorf("unknown outcome %q", res.Outcome)
	}
	r := &report{res: res, attemptStatus: status, msg: store.CleanText(res.Error, store.MaxErrorLen)}
	if len(res.Log) > 0 {
		var err error
		if r.log, err = newLogBatch(res.Log, res.LogCap); err != nil {
			return nil, fmt.Errorf("log: %w", err)
		}
	}
	return r, nil
}

// finishing is a report recorded in a write transaction, with what it changed.
type finishing struct {
	q      *settler
	stepID uuid.UUID
	ref    stepRef
	out    *store.FinishResult
}

// record records a report in w, fenced by the lease: the end of the attempt, the
// step's events and new status with every consequence (dependents, runs,
// backfills), and the report's log lines after those appended before. It
// returns store.ErrLeaseLost (wrapped) when the worker no longer holds the
// step's lease for the attempt; then, as for bad events, the caller must roll
// back what it wrote. It is FinishStep's and FinishSteps' one way to record a
// report.
func (w *writeTx) record(ctx context.Context, r *report, now time.Time) (*finishing, error) {
	res, msg := r.res, r.msg
	q := newSettler(w, now)
	ref := stepRef{id: res.StepID.String()}
	var (
		keys            string
		asset           string
		maxAttempts     int
		cancelRequested bool
	)
	err := w.QueryRowContext(ctx, fenceSQL, ref.id, res.Worker, res.Attempt).Scan(&ref.runID, &asset, &keys, &maxAttempts, &cancelRequested)
	if errors.Is(err, sql.ErrNoRows) {
		var exists bool
		if err := w.QueryRowContext(ctx, stepExistsSQL, ref.id).Scan(&exists); err != nil {
			return nil, fmt.Errorf("look up step: %w", err)
		}
		if !exists {
			// No lease can be held on it; the caller may also look for
			// ErrNotFound.
			return nil, fmt.Errorf("%w: no such step (%w)", store.ErrLeaseLost, store.ErrNotFound)
		}
		return nil, fmt.Errorf("attempt %d of worker %q: %w", res.Attempt, res.Worker, store.ErrLeaseLost)
	}
	if err != nil {
		return nil, fmt.Errorf("read step: %w", err)
	}
	ref.asset = assets.Key(asset)
	if ref.keys, err = parseKeys(keys); err != nil {
		return nil, err
	}
	out := &store.FinishResult{Events: []store.Event{}, Ready: []uuid.UUID{}, Claimed: []store.ClaimedStep{}}
	var exitCode any
	if res.ExitCode != nil {
		exitCode = *res.ExitCode
	}
	if _, err := w.ExecContext(ctx, endAttemptSQL, string(r.attemptStatus), q.nowUS, exitCode, nullString(msg), ref.id, res.Attempt); err != nil {
		return nil, fmt.Errorf("record the end of attempt %d: %w", res.Attempt, err)
	}

	switch res.Outcome {
	case store.OutcomeSucceeded:
		events, err := stepEvents(ref, res.Events)
		if err != nil {
			return nil, err
		}
		if out.Events, err = w.append(ctx, events); err != nil {
			return nil, err
		}
		if err := q.succeed(ctx, ref, store.StepSucceeded); err != nil {
			return nil, err
		}
	case store.OutcomeSkippedFresh:
		if err := q.succeed(ctx, ref, store.StepSkippedFresh); err != nil {
			return nil, err
		}
	case store.OutcomeFailed, store.OutcomeTimedOut:
		switch {
		case res.Retry && cancelRequested:
			// The step was asked to stop: it is not tried again.
			if err := q.cancel(ctx, ref, "canceled"); err != nil {
				return nil, err
			}
		case res.Retry && res.Attempt < maxAttempts:
			after := max(res.RetryAfter, 0)
			if _, err := w.ExecContext(ctx, retrySQL, micros(q.now.Add(after)), q.nowUS, nullString(msg), ref.id); err != nil {
				return nil, fmt.Errorf("put step back for a retry: %w", err)
			}
			q.ready = append(q.ready, res.StepID)
			q.wake = q.wake || after == 0
		default:
			if err := q.fail(ctx, ref, msg); err != nil {
				return nil, err
			}
		}
	case store.OutcomeCanceled:
		if msg == "" {
			msg = "canceled"
		}
		if err := q.cancel(ctx, ref, msg); err != nil {
			return nil, err
		}
	}
	if r.log != nil {
		if err := w.appendLog(ctx, res.StepID, r.log, q.now); err != nil {
			return nil, fmt.Errorf("append to the log: %w", err)
		}
	}
	q.runs[ref.runID] = true
	if err := q.settleRuns(ctx); err != nil {
		return nil, err
	}
	return &finishing{q: q, stepID: res.StepID, ref: ref, out: out}, nil
}

// describe completes a recorded report's result with its step and run as they
// are now.
func (f *finishing) describe(ctx context.Context) (*store.FinishResult, error) {
	var err error
	if f.out.Step, err = readStep(ctx, f.q.w, f.stepID); err != nil {
		return nil, err
	}
	var status string
	if err := f.q.w.QueryRowContext(ctx, runStatusSQL, f.ref.runID).Scan(&status); err != nil {
		return nil, fmt.Errorf("read run status: %w", err)
	}
	f.out.RunStatus = store.RunStatus(status)
	f.out.Events = append(f.out.Events, f.q.events...)
	f.out.Ready = append(f.out.Ready, f.q.ready...)
	return f.out, nil
}

// stepEvents checks that events are one materialization of the step's asset per
// partition of the step (none missing, none twice, none of another partition), and
// fills in their run and step ids. Bad events make a *store.BadEventsError;
// partitions without an event are named in an error of their own (joined to it
// when both). A partition left out would end the step SUCCEEDED with nothing
// recorded for it, and nothing in flight would build it any more.
func stepEvents(ref stepRef, events []store.Event) ([]store.Event, error) {
	runID, err := uuid.Parse(ref.runID)
	if err != nil {
		return nil, fmt.Errorf("step %s: run id %q: %w", ref.id, ref.runID, err)
	}
	stepID, err := uuid.Parse(ref.id)
	if err != nil {
		return nil, fmt.Errorf("step id %q: %w", ref.id, err)
	}
	inStep := make(map[string]bool, len(ref.keys))
	for _, k := range ref.keys {
		inStep[k] = true
	}
	out := make([]store.Event, len(events))
	bad := &store.BadEventsError{}
	seen := make(map[string]bool, len(events))  // partitions with a good event
	named := make(map[string]bool, len(events)) // partitions a materialization of the asset names
	for i, e := range events {
		if e.Kind == store.Materialization && e.Asset == ref.asset {
			named[e.Partition] = true
		}
		var problem string
		switch {
		case e.Kind != store.Materialization:
			problem = fmt.Sprintf("a step's success records materializations, not %q events", e.Kind)
		case e.Asset != ref.asset:
			problem = fmt.Sprintf("the step builds %s, not %s", ref.asset, e.Asset)
		case !inStep[e.Partition]:
			problem = fmt.Sprintf("partition %q is not one of the step's (%s)", e.Partition, ref)
		case seen[e.Partition]:
			problem = fmt.Sprintf("partition %q reported twice: a success records one materialization per partition", e.Partition)
		case e.RunID != uuid.Nil && e.RunID != runID:
			problem = fmt.Sprintf("run id %s; the step belongs to run %s", e.RunID, runID)
		case e.StepID != uuid.Nil && e.StepID != stepID:
			problem = fmt.Sprintf("step id %s; the step is %s", e.StepID, stepID)
		}
		if problem != "" {
			if len(bad.Errors) < maxReportedEventErrors {
				bad.Errors = append(bad.Errors, &store.EventError{N: i, Asset: e.Asset, Partition: e.Partition, Msg: problem})
			} else {
				bad.More++
			}
			continue
		}
		seen[e.Partition] = true
		e.RunID, e.StepID = runID, stepID
		out[i] = e
	}
	var missing []string
	for _, k := range ref.keys {
		if !named[k] {
			missing = append(missing, k)
		}
	}
	var errMissing error
	if len(missing) > 0 {
		errMissing = fmt.Errorf("step %s (%s): a success records one materialization per partition of the step; none for %s",
			ref.id, ref, store.KeysText(missing))
	}
	switch {
	case len(bad.Errors) > 0 && errMissing != nil:
		return nil, errors.Join(bad, errMissing)
	case len(bad.Errors) > 0:
		return nil, bad
	case errMissing != nil:
		return nil, errMissing
	}
	return out, nil
}

// maxReportedEventErrors caps the bad events a refused success lists, as Append's.
const maxReportedEventErrors = 20

// ExpireLeases puts back every RUNNING step whose lease expired before now.
func (s *Store) ExpireLeases(ctx context.Context) ([]store.ExpiredStep, error) {
	out := []store.ExpiredStep{}
	var wake bool
	err := s.withWriteTx(ctx, func(w *writeTx) error {
		out = out[:0]
		q := newSettler(w, s.now())
		rows, err := w.QueryContext(ctx, `SELECT s.id, s.run_id, a.key, s.partition_keys, s.attempt, s.max_attempts,
				s.lease_owner, s.cancel_requested_at IS NOT NULL
			FROM steps s JOIN assets a ON a.id = s.asset_id
			WHERE s.status = 'RUNNING' AND s.lease_expires_at < ? ORDER BY s.lease_expires_at`, q.nowUS)
		if err != nil {
			return fmt.Errorf("find expired leases: %w", err)
		}
		type expired struct {
			ref                  stepRef
			attempt, maxAttempts int
			worker               string
			cancelRequested      bool
		}
		var found []expired
		for rows.Next() {
			var (
				e           expired
				asset, keys string
				worker      sql.NullString
			)
			if err := rows.Scan(&e.ref.id, &e.ref.runID, &asset, &keys, &e.attempt, &e.maxAttempts, &worker, &e.cancelRequested); err != nil {
				rows.Close()
				return fmt.Errorf("find expired leases: %w", err)
			}
			e.ref.asset, e.worker = assets.Key(asset), worker.String
			if e.ref.keys, err = parseKeys(keys); err != nil {
				rows.Close()
				return err
			}
			found = append(found, e)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("find expired leases: %w", err)
		}
		for _, e := range found {
			msg := fmt.Sprintf("lease of worker %s expired", e.worker)
			if _, err := w.ExecContext(ctx, endAttemptSQL, string(store.AttemptLeaseExpired), q.nowUS, nil, msg, e.ref.id, e.attempt); err != nil {
				return fmt.Errorf("record the end of attempt %d of step %s: %w", e.attempt, e.ref.id, err)
			}
			var status store.StepStatus
			switch {
			case e.cancelRequested:
				status = store.StepCanceled
				err = q.cancel(ctx, e.ref, "canceled")
			case e.attempt < e.maxAttempts:
				status = store.StepReady
				_, err = w.ExecContext(ctx, retrySQL, nil, q.nowUS, msg, e.ref.id)
				if id, perr := uuid.Parse(e.ref.id); perr == nil {
					q.ready = append(q.ready, id)
				}
				q.wake = true
			default:
				status = store.StepFailed
				err = q.fail(ctx, e.ref, msg)
			}
			if err != nil {
				return fmt.Errorf("put back step %s: %w", e.ref.id, err)
			}
			q.runs[e.ref.runID] = true
			stepID, err := uuid.Parse(e.ref.id)
			if err != nil {
				return fmt.Errorf("step id %q: %w", e.ref.id, err)
			}
			runID, err := uuid.Parse(e.ref.runID)
			if err != nil {
				return fmt.Errorf("run id %q: %w", e.ref.runID, err)
			}
			out = append(out, store.ExpiredStep{StepID: stepID, RunID: runID, Attempt: e.attempt, Worker: e.worker, Status: status})
		}
		if err := q.settleRuns(ctx); err != nil {
			return err
		}
		wake = q.wake
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("expire leases: %w", err)
	}
	if wake {
		s.notify()
	}
	return out, nil
}

// CancelRun cancels a run: steps not started end CANCELED now, running ones get a
// cancel request.
func (s *Store) CancelRun(ctx context.Context, id uuid.UUID) (*store.Run, error) {
	var (
		run  *store.Run
		wake bool
	)
	err := s.withWriteTx(ctx, func(w *writeTx) error {
		q := newSettler(w, s.now())
		if err := q.cancelRun(ctx, id.String()); err != nil {
			return err
		}
		if err := q.settleRuns(ctx); err != nil {
			return err
		}
		var err error
		run, err = readRun(ctx, w, id)
		wake = q.wake
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("cancel run %s: %w", id, err)
	}
	if wake {
		s.notify()
	}
	return run, nil
}

// cancelRun cancels one run (nothing when it has ended already).
func (q *settler) cancelRun(ctx context.Context, id string) error {
	var status string
	err := q.w.QueryRowContext(ctx, runStatusSQL, id).Scan(&status)
	if errors.Is(err, sql.ErrNoRows) {
		return store.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("read run: %w", err)
	}
	if store.RunStatus(status).Done() {
		return nil
	}
	if _, err := q.w.ExecContext(ctx, `UPDATE runs SET canceled_at = coalesce(canceled_at, ?) WHERE id = ?`, q.nowUS, id); err != nil {
		return fmt.Errorf("record the cancel: %w", err)
	}
	rows, err := q.w.QueryContext(ctx, `UPDATE steps SET status = 'CANCELED', finished_at = ?, error = 'run canceled',
			not_before = NULL WHERE run_id = ? AND status IN `+stepWaitingSQL+` RETURNING id`, q.nowUS, id)
	if err != nil {
		return fmt.Errorf("cancel steps: %w", err)
	}
	var canceled []string
	for rows.Next() {
		var stepID string
		if err := rows.Scan(&stepID); err != nil {
			rows.Close()
			return fmt.Errorf("cancel steps: %w", err)
		}
		canceled = append(canceled, stepID)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("cancel steps: %w", err)
	}
	if len(canceled) > 0 {
		if _, err := q.w.ExecContext(ctx, releaseManySQL, jsonArray(canceled)); err != nil {
			return fmt.Errorf("release partitions: %w", err)
		}
	}
	if _, err := q.w.ExecContext(ctx, `UPDATE steps SET cancel_requested_at = coalesce(cancel_requested_at, ?)
			WHERE run_id = ? AND status = 'RUNNING'`, q.nowUS, id); err != nil {
		return fmt.Errorf("request running steps to stop: %w", err)
	}
	q.runs[id] = true
	// Steps of other runs that joined a canceled step no longer wait for it.
	return q.promote(ctx, canceled)
}

// CancelStep cancels one step and its dependents in its run.
func (s *Store) CancelStep(ctx context.Context, id uuid.UUID) (*store.Step, error) {
	var (
		step *store.Step
		wake bool
	)
	err := s.withWriteTx(ctx, func(w *writeTx) error {
		q := newSettler(w, s.now())
		cur, err := readStep(ctx, w, id)
		if err != nil {
			return err
		}
		if !cur.Status.Done() {
			ref := stepRef{id: id.String(), runID: cur.RunID.String(), asset: cur.Asset, keys: cur.Partitions}
			if cur.Status == store.StepRunning {
				// Its worker stops it and reports it canceled; what needs it
				// will not run either way.
				if _, err := w.ExecContext(ctx, `UPDATE steps SET cancel_requested_at = coalesce(cancel_requested_at, ?) WHERE id = ?`,
					q.nowUS, ref.id); err != nil {
					return fmt.Errorf("request the step to stop: %w", err)
				}
				err = q.cancelDependents(ctx, ref)
			} else {
				err = q.cancel(ctx, ref, "canceled")
			}
			if err != nil {
				return err
			}
			if err := q.settleRuns(ctx); err != nil {
				return err
			}
		}
		step, err = readStep(ctx, w, id)
		wake = q.wake
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("cancel step %s: %w", id, err)
	}
	if wake {
		s.notify()
	}
	return step, nil
}
