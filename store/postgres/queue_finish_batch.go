package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/freshetdev/freshet/assets"
	"github.com/freshetdev/freshet/store"
)

// Reports are recorded in batches: FinishSteps records every success, fresh skip
// and retry of a call in one transaction, and FinishStep records one of those
// the same way, as a batch of one. A final failure or a cancel, whose cascade
// reaches other steps, is recorded alone (finishStep, queue_finish.go), in a
// transaction of its own.
//
// A batch costs two round trips, whatever its size (three when events bring a
// code version the store has not cached, more when they are many enough to be
// written with COPY):
//
//  1. with the BEGIN: lock the runs of the reported steps, in run id order, in
//     one statement; lock the steps, in step id order, in one statement, reading
//     what fencing needs; take the catalog clock's lock and read what appending
//     the successes' events needs (the synced definitions of their assets, the
//     state of their partitions); lock the in-flight rows of the successes and
//     skips, then their PENDING dependents, in step id order.
//  2. with the COMMIT: the events and the partition state; the retried steps put
//     back; one statement that ends every succeeded or skipped step, releases its
//     partitions, makes the dependents whose dependencies are all done READY and
//     ends the runs none of whose steps is open any more; the log lines; the
//     backfills that ended; the claim for next.
//
// Between them each report is fenced on its own, in Go: a report whose worker no
// longer holds the step's lease for that attempt, or whose events are not one
// materialization per partition of the step, or are refused by the catalog (an
// unknown partition, a removed asset), is refused: nothing is written for it,
// and the others are recorded. Its locks are kept to the end of the transaction,
// which harms nothing. A retry the store must refuse (no attempt left, or a cancel
// was requested) makes the step's end final, with a cascade: that report is left
// out of the batch and recorded alone once the batch committed (it still holds
// the step, which nothing but its own report or an expired lease changes).
//
// Locks are taken in the order every writer of the queue takes them (see doc.go):
// runs, then steps, each in id order; then the catalog clock; then in-flight
// rows; then the dependents. Dependents are locked in the first round trip, before the statement
// that reads their dependencies, so that its snapshot, taken once it holds them,
// sees the end of any other dependency recorded by a transaction that held them
// before (see lockDependentsSQL): the step's end and the settling of its
// dependents and run can then be one statement.

// lockReportedSQL locks, in one statement, the runs of the steps $1 (in id
// order), then the steps (in id order), reading what fencing and ending them
// needs (as lockStepSQL does for one) with their run's backfill and status, then
// the in-flight rows of the steps $2 among them (the successes and skips), in key
// order, as every writer of the table takes them.
//
// The order holds whatever plan the statement gets: the steps' scan has a
// one-time filter that counts the runs (so every run is locked before the first
// step), and the in-flight rows are locked by a subquery of the first output row
// that reads every step.
//
// The in-flight rows: CreateRun locks the row of a partition taken by a step that
// turned up after it looked for holders (ON CONFLICT DO UPDATE) and then joins
// that step, without its step row's lock. Locking the rows here orders the two:
// either CreateRun committed first, and lockDependentsOfSQL, a later statement,
// sees the join; or it waits for the batch to commit, finds the rows deleted and
// takes the partitions.
const lockReportedSQL = `WITH r AS MATERIALIZED (
		SELECT r.id, r.backfill_id IS NOT NULL AS backfill, r.status FROM runs r
		WHERE r.id IN (SELECT s.run_id FROM steps s WHERE s.id = ANY ($1::uuid[]))
		ORDER BY r.id FOR NO KEY UPDATE),
	s AS MATERIALIZED (
		SELECT s.id, s.run_id, a.key, s.partition_keys, s.status, coalesce(s.lease_owner, '') AS owner, s.attempt,
			s.max_attempts, s.cancel_requested_at IS NOT NULL AS cancel_requested,
			coalesce((SELECT t.input_seq FROM attempts t WHERE t.step_id = s.id AND t.attempt = s.attempt), 0) AS input_seq
		FROM steps s JOIN assets a ON a.id = s.asset_id
		WHERE s.id = ANY ($1::uuid[]) AND (SELECT count(*) FROM r) >= 0
		ORDER BY s.id FOR NO KEY UPDATE OF s),
	ip AS MATERIALIZED (
		SELECT 1 FROM inflight_partitions ip
		WHERE ip.step_id = ANY ($2::uuid[]) AND ip.step_id IN (SELECT s.id FROM s)
		ORDER BY ip.asset_id, ip.partition_key FOR NO KEY UPDATE)
	SELECT s.id, s.run_id, s.key, s.partition_keys, s.status, s.owner, s.attempt, s.max_attempts, s.cancel_requested,
		s.input_seq, r.backfill, r.status, (SELECT count(*) FROM ip)
	FROM s JOIN r ON r.id = s.run_id`

// lockDependentsOfSQL locks the PENDING dependents of the steps $1 as
// lockDependentsSQL does, and returns each with the steps of $1 it depends on.
const lockDependentsOfSQL = `SELECT x.id, dep.ups
	FROM (SELECT d.step_id, array_agg(d.upstream_step_id) AS ups FROM step_deps d
	      WHERE d.upstream_step_id = ANY ($1::uuid[]) GROUP BY d.step_id ORDER BY d.step_id) dep,
	LATERAL (SELECT s.id FROM steps s WHERE s.id = dep.step_id AND s.status = 'PENDING' FOR NO KEY UPDATE) x`

// endStepsSQL ends the attempts $2 of the steps $1 (attempt status $3, step
// status $4: succeeded or skipped), releasing their partitions; makes READY their
// PENDING dependents whose dependencies are all done, ends the runs $5 none of
// whose steps is open any more (as settleSQL does); with $6, wakes the listeners
// when a step was made ready. It returns the ended steps, each with the steps made
// ready and the runs' statuses (in run id order).
//
// It is one statement, so its parts share one snapshot, in which the steps it
// ends are still RUNNING: a dependency on one of them counts as done, and they
// do not keep their runs open. The dependents were locked before it
// (lockDependentsOfSQL), so the snapshot sees every other dependency's end.
const endStepsSQL = `WITH t AS (SELECT * FROM unnest($1::uuid[], $2::integer[], $3::text[], $4::text[]) AS t(id, attempt, attempt_status, status)),
	att AS (
		UPDATE attempts a SET status = t.attempt_status, finished_at = now()
		FROM t WHERE a.step_id = t.id AND a.attempt = t.attempt),
	released AS (DELETE FROM inflight_partitions WHERE step_id = ANY ($1::uuid[])),
	ready AS (
		UPDATE steps x SET status = 'READY', ready_at = now()
		FROM (SELECT DISTINCT d.step_id FROM step_deps d WHERE d.upstream_step_id = ANY ($1::uuid[])) dep,
		LATERAL (SELECT s.id FROM steps s WHERE s.id = dep.step_id AND s.status = 'PENDING'
		         AND NOT EXISTS (SELECT 1 FROM step_deps d JOIN steps u ON u.id = d.upstream_step_id
		                         WHERE d.step_id = s.id AND NOT (u.id = ANY ($1::uuid[]) OR ` + depDoneSQL + `))
		         OFFSET 0) r
		WHERE x.id = r.id
		RETURNING x.id),
	ended AS (
		UPDATE runs r SET finished_at = now(), status = CASE
			WHEN r.canceled_at IS NOT NULL OR EXISTS (SELECT 1 FROM steps s WHERE s.run_id = r.id AND s.status = 'CANCELED')
				THEN 'CANCELED'
			WHEN EXISTS (SELECT 1 FROM steps s WHERE s.run_id = r.id AND s.status IN ('FAILED', 'UPSTREAM_FAILED'))
				THEN 'FAILED'
			ELSE 'SUCCEEDED' END
		WHERE r.id = ANY ($5::uuid[]) AND r.status IN ('QUEUED', 'RUNNING')
		  AND NOT EXISTS (SELECT 1 FROM steps s WHERE s.run_id = r.id AND s.status IN ` + openSQL + `
		                  AND NOT s.id = ANY ($1::uuid[]))
		RETURNING r.id, r.status),
	woken AS (SELECT pg_notify('` + notifyChannel + `', '') FROM (SELECT 1 FROM ready LIMIT 1) x WHERE $6)
	UPDATE steps s SET status = t.status, finished_at = now(), lease_owner = NULL, lease_expires_at = NULL,
		not_before = NULL, error = NULL
	FROM t, assets a WHERE s.id = t.id AND a.id = s.asset_id
	RETURNING ` + stepColumns + `,
		ARRAY(SELECT id FROM ready),
		ARRAY(SELECT r.id FROM runs r WHERE r.id = ANY ($5::uuid[]) ORDER BY r.id),
		ARRAY(SELECT coalesce(e.status, r.status) FROM runs r LEFT JOIN ended e ON e.id = r.id
		      WHERE r.id = ANY ($5::uuid[]) ORDER BY r.id),
		(SELECT count(*) FROM woken)`

// report is one StepResult on its way to be recorded.
type report struct {
	i   int // its index in FinishSteps' results
	res *store.StepResult
	log *logAppend // nil: no lines
}

// refusal marks an error that refuses one report (its lease is lost, its events
// are bad), as opposed to one that fails the whole call (the database is
// unreachable): FinishSteps gives a refusal to its report and goes on.
type refusal struct{ error }

func (r refusal) Unwrap() error { return r.error }

// newReport checks what can be checked of res without the database.
func newReport(i int, res *store.StepResult) (*report, error) {
	switch res.Outcome {
	case store.OutcomeSucceeded, store.OutcomeSkippedFresh, store.OutcomeFailed, store.OutcomeTimedOut, store.OutcomeCanceled:
	default:
		return nil, refusal{fmt.Errorf("unknown outcome %q", res.Outcome)}
	}
	rep := &report{i: i, res: res}
	if len(res.Log) > 0 {
		l, err := newLogAppend(res.StepID, res.Log, res.LogCap)
		if err != nil {
			return nil, refusal{err}
		}
		rep.log = l
	}
	return rep, nil
}

// alone reports whether the report is recorded by itself: a final failure or a
// cancel, which cascades.
func (r *report) alone() bool {
	switch r.res.Outcome {
	case store.OutcomeSucceeded, store.OutcomeSkippedFresh:
		return false
	case store.OutcomeFailed, store.OutcomeTimedOut:
		return !r.res.Retry
	}
	return true
}

// finishError says which report err is about.
func finishError(res *store.StepResult, err error) error {
	return fmt.Errorf("finish step %s attempt %d: %w", res.StepID, res.Attempt, err)
}

// FinishSteps records the ends of several attempts in input order, as FinishStep
// would one after the other: consecutive successes, fresh skips and retries
// together, in one transaction (see the top of this file); a final failure or a
// cancel, and a second report of a step, in a transaction of its own
// (finishStep). A batch that finds a retry the store refuses (no attempt left, or
// a cancel was requested: the end is final, and cascades) rolls back and is split
// there, the retry recorded alone between the two halves. Refusals are rare, so
// a call of successes is one transaction. The claim for next goes with the last
// transaction; when that one was refused, a claim of its own follows.
func (s *Store) FinishSteps(ctx context.Context, results []store.StepResult, next *store.ClaimRequest) (*store.FinishedSteps, error) {
	out := &store.FinishedSteps{
		Results: make([]*store.FinishResult, len(results)),
		Errors:  make([]error, len(results)),
		Claimed: []store.ClaimedStep{},
	}
	if next != nil {
		if err := checkClaim(next); err != nil {
			return nil, fmt.Errorf("finish steps: claim next: %w", err)
		}
	}
	// Segments of the reports, in order: a batch, or one report alone.
	type segment struct {
		reps  []*report
		alone bool
	}
	var (
		segs []segment
		cur  []*report
		seen = make(map[uuid.UUID]bool, len(results))
	)
	for i := range results {
		res := results[i]
		res.ClaimNext = nil
		rep, err := newReport(i, &res)
		if err != nil {
			out.Errors[i] = finishError(&res, err)
			continue
		}
		if rep.alone() || seen[res.StepID] {
			if len(cur) > 0 {
				segs, cur = append(segs, segment{reps: cur}), nil
			}
			segs = append(segs, segment{reps: []*report{rep}, alone: true})
			clear(seen) // a later report of the step goes in a later batch
			continue
		}
		seen[res.StepID] = true
		cur = append(cur, rep)
	}
	if len(cur) > 0 {
		segs = append(segs, segment{reps: cur})
	}

	claimed := next == nil || next.Limit <= 0
	for len(segs) > 0 {
		seg := segs[0]
		segs = segs[1:]
		var claim *store.ClaimRequest
		if len(segs) == 0 && !claimed {
			claim = next
		}
		if seg.alone {
			rep := seg.reps[0]
			fr, err := s.finishAlone(ctx, rep, claim)
			var refused refusal
			switch {
			case errors.As(err, &refused):
				out.Errors[rep.i] = finishError(rep.res, err)
				continue
			case err != nil:
				return nil, fmt.Errorf("finish steps: %w", finishError(rep.res, err))
			}
			if claim != nil {
				claimed, out.Claimed = true, fr.Claimed
				fr.Claimed = []store.ClaimedStep{}
			}
			out.Results[rep.i] = fr
			continue
		}
		done, err := s.runBatch(ctx, seg.reps, claim, true)
		if err != nil {
			return nil, fmt.Errorf("finish steps: %w", err)
		}
		if k := done.split; k >= 0 {
			var parts []segment
			if k > 0 {
				parts = append(parts, segment{reps: seg.reps[:k]})
			}
			parts = append(parts, segment{reps: seg.reps[k : k+1], alone: true})
			if k+1 < len(seg.reps) {
				parts = append(parts, segment{reps: seg.reps[k+1:]})
			}
			segs = append(parts, segs...)
			continue
		}
		for k, rep := range seg.reps {
			if done.errs[k] != nil {
				out.Errors[rep.i] = finishError(rep.res, done.errs[k])
			}
			out.Results[rep.i] = done.results[k]
		}
		if claim != nil {
			claimed, out.Claimed = true, done.claimed
		}
	}
	if !claimed {
		var err error
		if out.Claimed, err = s.ClaimSteps(ctx, *next); err != nil {
			return nil, fmt.Errorf("finish steps: %w", err)
		}
	}
	return out, nil
}

// finishAlone records one report in a transaction of its own (finishStep),
// running it again after a deadlock or serialization failure.
func (s *Store) finishAlone(ctx context.Context, rep *report, claim *store.ClaimRequest) (*store.FinishResult, error) {
	var (
		out      *store.FinishResult
		interned map[int64]*internTable
	)
	err := retry(ctx, func() error {
		var err error
		out, interned, err = s.finishStep(ctx, rep, claim)
		return err
	})
	if err != nil {
		return nil, err
	}
	s.cache.remember(interned)
	return out, nil
}

// batchDone is what a batch did.
type batchDone struct {
	// split, from 0, is the first report that must be recorded alone (a retry the
	// store refuses): nothing was written. -1: the batch committed.
	split int
	// results and errs are per report of the batch, in its order.
	results []*store.FinishResult
	errs    []error
	// claimed are the steps claimed.
	claimed []store.ClaimedStep
}

// runBatch records reps (successes, fresh skips and retries, each of a different
// step) in one transaction, running it again after a deadlock or serialization
// failure. The claim is made even when every report is refused with always, not
// without (FinishStep: a refused report writes nothing).
func (s *Store) runBatch(ctx context.Context, reps []*report, claim *store.ClaimRequest, always bool) (*batchDone, error) {
	var (
		done     *batchDone
		interned map[int64]*internTable
	)
	err := retry(ctx, func() error {
		var err error
		done, interned, err = s.finishBatch(ctx, reps, claim, always)
		return err
	})
	if err != nil {
		return nil, err
	}
	s.cache.remember(interned)
	return done, nil
}

// batchStep is a report of a batch while it is recorded.
type batchStep struct {
	*report
	k      int // its index in the batch
	st     lockedStep
	locked bool
	events []store.Event // a success's, cloned: checkStepEvents fills them in
	off    int           // where its events start in the batch's append
}

// finishBatch records reps in one transaction (see the top of this file).
func (s *Store) finishBatch(ctx context.Context, reps []*report, claim *store.ClaimRequest, always bool) (*batchDone, map[int64]*internTable, error) {
	done := &batchDone{split: -1, results: make([]*store.FinishResult, len(reps)), errs: make([]error, len(reps))}
	steps := make([]*batchStep, len(reps))
	ids := make([]uuid.UUID, len(reps))
	var ending []uuid.UUID // the steps that may end: successes and skips
	var events []store.Event
	for k, rep := range reps {
		bs := &batchStep{report: rep, k: k}
		if rep.res.Outcome == store.OutcomeSucceeded {
			bs.events = slices.Clone(rep.res.Events)
		}
		steps[k], ids[k] = bs, rep.res.StepID
		if rep.res.Outcome == store.OutcomeSucceeded || rep.res.Outcome == store.OutcomeSkippedFresh {
			ending = append(ending, rep.res.StepID)
		}
		events = append(events, bs.events...)
	}
	ids, ending = sortedIDs(ids), sortedIDs(ending)

	// Round trip 1: the locks and the reads.
	b := txBatch(writeTx)
	b.Queue(planSettingsSQL)
	b.Queue(lockReportedSQL, ids, emptyIfNil(ending))
	var w *appendWork
	if len(events) > 0 {
		// The clock's lock, taken before knowing which reports are fenced out: the
		// clock advances in the writes, by the events of the reports recorded.
		w = s.newAppendWork(events, true)
		w.lockFirst = true
		w.queueLoad(b)
	}
	if len(ending) > 0 {
		b.Queue(lockDependentsOfSQL, ending)
	}
	tx, results, err := s.beginBatch(ctx, b)
	if err != nil {
		return nil, nil, err
	}
	defer tx.release()
	type runRow struct {
		backfill bool
		status   store.RunStatus
	}
	runs := map[uuid.UUID]runRow{}
	locked := map[uuid.UUID]lockedStep{}
	upstreams := map[uuid.UUID][]uuid.UUID{} // of each locked dependent, those of the batch
	err = func() error {
		if _, err := results.Exec(); err != nil {
			return err
		}
		rows, _ := results.Query()
		for rows.Next() {
			var (
				st     lockedStep
				run    runRow
				status string
			)
			if err := scanLockedSteps(rows, &st, &run.backfill, &status); err != nil {
				rows.Close()
				return fmt.Errorf("lock runs and steps: %w", err)
			}
			run.status = store.RunStatus(status)
			locked[st.id], runs[st.runID] = st, run
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("lock runs and steps: %w", err)
		}
		if w != nil {
			if err := w.load(results); err != nil {
				return err
			}
		}
		if len(ending) > 0 {
			rows, _ := results.Query()
			var (
				id  uuid.UUID
				ups []uuid.UUID
			)
			_, err := pgx.ForEachRow(rows, []any{&id, &ups}, func() error {
				upstreams[id] = ups
				return nil
			})
			if err != nil {
				return fmt.Errorf("lock dependents: %w", err)
			}
		}
		return results.Close()
	}()
	if err != nil {
		_ = results.Close()
		return nil, nil, err
	}

	// Fence each report.
	var (
		retries, ended []*batchStep
		accepted       []*batchStep
	)
	for k, bs := range steps {
		res := bs.res
		st, ok := locked[res.StepID]
		switch {
		case !ok:
			done.errs[k] = refusal{fmt.Errorf("no such step: %w (%w)", store.ErrLeaseLost, store.ErrNotFound)}
			continue
		case st.status != store.StepRunning || st.owner != res.Worker || st.attempt != res.Attempt:
			done.errs[k] = refusal{fmt.Errorf("%w: the step is %s, attempt %d, leased to %q; the report is of attempt %d by %q",
				store.ErrLeaseLost, st.status, st.attempt, st.owner, res.Attempt, res.Worker)}
			continue
		}
		bs.st, bs.locked = st, true
		switch res.Outcome {
		case store.OutcomeSucceeded:
			if err := checkStepEvents(bs.events, &bs.st); err != nil {
				done.errs[k] = refusal{err}
				continue
			}
			ended = append(ended, bs)
		case store.OutcomeSkippedFresh:
			ended = append(ended, bs)
		default: // a failure to retry
			if st.attempt >= st.max || st.cancelRequested {
				// Its end is final: recorded alone, in order (release rolls back).
				return &batchDone{split: k}, nil, nil
			}
			retries = append(retries, bs)
		}
		accepted = append(accepted, bs)
	}

	// Prepare the events of the successes still in, dropping the reports whose
	// events the catalog refuses.
	if w != nil {
		if err := s.prepareBatchEvents(ctx, tx, w, steps, done.errs); err != nil {
			return nil, nil, err
		}
		ended = slices.DeleteFunc(ended, func(bs *batchStep) bool { return done.errs[bs.k] != nil })
		accepted = slices.DeleteFunc(accepted, func(bs *batchStep) bool { return done.errs[bs.k] != nil })
	}
	if claim != nil && (claim.Limit <= 0 || len(accepted) == 0 && !always) {
		claim = nil
	}
	done.claimed = []store.ClaimedStep{}

	// Round trip 2: the writes, the claim and the COMMIT.
	final := &pgx.Batch{}
	if w != nil && len(w.prepared) > 0 {
		if !w.small() {
			if err := w.write(ctx, tx); err != nil {
				return nil, nil, err
			}
		} else {
			w.queueWrites(final)
		}
	}
	nWrites := final.Len()
	notifyRetry := false
	for _, bs := range retries {
		res := bs.res
		errText := storableText(cut(res.Error, store.MaxErrorLen))
		var exit any
		if res.ExitCode != nil {
			exit = int32(*res.ExitCode)
		}
		attemptStatus := store.AttemptFailed
		if res.Outcome == store.OutcomeTimedOut {
			attemptStatus = store.AttemptTimedOut
		}
		final.Queue(retryStepSQL, bs.st.id, int32(bs.st.attempt), string(attemptStatus), exit, nullString(errText),
			micros(res.RetryAfter), stepError(errText, res.Outcome, bs.st.attempt))
		notifyRetry = notifyRetry || res.RetryAfter <= 0
	}
	var (
		endedIDs, runIDs []uuid.UUID
		attempts         []int32
		attemptStatuses  []string
		stepStatuses     []string
		backfills        bool
		logs             []*logAppend
	)
	for _, bs := range ended {
		stepStatus, attemptStatus := store.StepSucceeded, store.AttemptSucceeded
		if bs.res.Outcome == store.OutcomeSkippedFresh {
			stepStatus, attemptStatus = store.StepSkippedFresh, store.AttemptSkipped
		}
		endedIDs, attempts = append(endedIDs, bs.st.id), append(attempts, int32(bs.st.attempt))
		attemptStatuses, stepStatuses = append(attemptStatuses, string(attemptStatus)), append(stepStatuses, string(stepStatus))
	}
	for _, bs := range accepted {
		runIDs = append(runIDs, bs.st.runID)
		backfills = backfills || runs[bs.st.runID].backfill
		logs = append(logs, bs.log)
	}
	runIDs = sortedIDs(runIDs)
	if len(ended) > 0 {
		final.Queue(endStepsSQL, endedIDs, attempts, attemptStatuses, stepStatuses, runIDs, claim == nil && !notifyRetry)
	}
	nLogs := queueLogs(final, logs)
	if backfills && len(ended) > 0 {
		final.Queue(lockBackfillsSQL, runIDs)
		final.Queue(backfillStatusSQL, runIDs)
	}
	switch {
	case claim != nil && !notifyRetry:
		queueClaim(final, claim, false, emptyIfNil(endedIDs))
	case claim != nil:
		queueClaim(final, claim, false, nil)
		final.Queue(notifySQL)
	case notifyRetry:
		final.Queue(notifySQL)
	}

	stepRows := map[uuid.UUID]*store.Step{}
	var ready []uuid.UUID
	runStatus := map[uuid.UUID]store.RunStatus{}
	for id, r := range runs {
		runStatus[id] = r.status
	}
	err = tx.commitWith(ctx, final, func(results pgx.BatchResults) error {
		for range nWrites {
			if _, err := results.Exec(); err != nil {
				return fmt.Errorf("write events and partition state: %w", err)
			}
		}
		for range retries {
			step, err := scanStep(results.QueryRow())
			if err != nil {
				return fmt.Errorf("put the step back: %w", err)
			}
			stepRows[step.ID] = &step
		}
		if len(ended) > 0 {
			rows, _ := results.Query()
			for rows.Next() {
				var (
					runs     []uuid.UUID
					statuses []string
					woken    int64
				)
				step, err := scanStep(endRow{rows, &ready, &runs, &statuses, &woken})
				if err != nil {
					rows.Close()
					return fmt.Errorf("end the steps: %w", err)
				}
				stepRows[step.ID] = &step
				for i, id := range runs {
					runStatus[id] = store.RunStatus(statuses[i])
				}
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return fmt.Errorf("end the steps: %w", err)
			}
		}
		for range nLogs {
			if _, err := results.Exec(); err != nil {
				return fmt.Errorf("append log lines: %w", err)
			}
		}
		if backfills && len(ended) > 0 {
			for _, what := range []string{"lock backfills", "decide backfill status"} {
				if _, err := results.Exec(); err != nil {
					return fmt.Errorf("%s: %w", what, err)
				}
			}
		}
		if claim != nil {
			var err error
			if done.claimed, err = readClaim(results); err != nil {
				return fmt.Errorf("claim steps: %w", err)
			}
		}
		if notifyRetry {
			if _, err := results.Exec(); err != nil {
				return fmt.Errorf("notify: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}

	// Each report's result is what FinishStep would have returned had the reports
	// been recorded one after the other, in order: a step made ready is the
	// Ready of the last report (of the batch) it depended on, and a run that ended
	// ended with its last report; the reports of it before saw it as it was.
	last := map[uuid.UUID]int{} // by run: its last report
	for _, bs := range accepted {
		last[bs.st.runID] = bs.k
	}
	byStep := make(map[uuid.UUID]*batchStep, len(accepted))
	for _, bs := range accepted {
		byStep[bs.st.id] = bs
	}
	readyOf := map[int][]uuid.UUID{}
	for _, id := range ready {
		owner := -1
		for _, up := range upstreams[id] {
			if bs := byStep[up]; bs != nil && bs.res.Outcome != store.OutcomeFailed && bs.res.Outcome != store.OutcomeTimedOut {
				owner = max(owner, bs.k)
			}
		}
		if owner >= 0 {
			readyOf[owner] = append(readyOf[owner], id)
		}
	}
	var recorded []store.Event
	if w != nil {
		recorded = w.recorded()
	}
	for _, bs := range accepted {
		fr := &store.FinishResult{Step: stepRows[bs.st.id], Events: []store.Event{}, Ready: emptyIfNil(readyOf[bs.k]),
			Claimed: []store.ClaimedStep{}, RunStatus: runs[bs.st.runID].status}
		if fr.Step == nil {
			return nil, nil, fmt.Errorf("step %s: not returned by its end", bs.st.id)
		}
		if last[bs.st.runID] == bs.k {
			fr.RunStatus = runStatus[bs.st.runID]
		}
		if bs.res.Outcome == store.OutcomeSucceeded {
			fr.Events = recorded[bs.off : bs.off+len(bs.events)]
		}
		done.results[bs.k] = fr
	}
	var interned map[int64]*internTable
	if w != nil && w.in != nil {
		interned = w.in.tables
	}
	return done, interned, nil
}

// prepareBatchEvents prepares, in w, the events of the batch's successes that
// are still in (errs[k] nil), setting their offsets. The catalog may refuse the
// events of some (store.Prepare: a partition the asset does not have any more, a
// removed asset): those reports get the error their events alone would get, and
// the others are prepared again without them.
func (s *Store) prepareBatchEvents(ctx context.Context, tx *pipeTx, w *appendWork, steps []*batchStep, errs []error) error {
	for {
		var in []*batchStep
		w.events = w.events[:0:0]
		for k, bs := range steps {
			if errs[k] == nil && bs.locked && bs.res.Outcome == store.OutcomeSucceeded {
				bs.off = len(w.events)
				w.events = append(w.events, bs.events...)
				in = append(in, bs)
			}
		}
		w.prepared = nil
		if len(w.events) == 0 {
			return nil
		}
		err := w.prepare(ctx, tx)
		var bad *store.BadEventsError
		if err == nil || !errors.As(err, &bad) {
			return err
		}
		// The reports the bad events belong to are refused, each with the error
		// of its events alone (the batch's numbers its events across reports).
		refused := false
		for _, bs := range in {
			own := bad.More > 0
			for _, e := range bad.Errors {
				own = own || (e.N >= bs.off && e.N < bs.off+len(bs.events))
			}
			if !own {
				continue
			}
			if alone := w.check(bs.events); alone != nil {
				errs[bs.k], refused = refusal{alone}, true
			} else if bad.More == 0 {
				errs[bs.k], refused = refusal{err}, true // refused only beside the others
			}
		}
		if !refused {
			return err
		}
	}
}

// scanLockedSteps reads a row of lockReportedSQL.
func scanLockedSteps(rows pgx.Rows, st *lockedStep, backfill *bool, runStatus *string) error {
	var (
		key, status   string
		attempt, maxA int32
		inflight      int64
	)
	if err := rows.Scan(&st.id, &st.runID, &key, &st.partitions, &status, &st.owner, &attempt, &maxA,
		&st.cancelRequested, &st.inputSeq, backfill, runStatus, &inflight); err != nil {
		return err
	}
	st.asset, st.status, st.attempt, st.max = assets.Key(key), store.StepStatus(status), int(attempt), int(maxA)
	return nil
}

// endRow scans a row of endStepsSQL: a step's columns, then the steps made
// ready, the runs and their statuses, and the notification's count.
type endRow struct {
	rows     pgx.Rows
	ready    *[]uuid.UUID
	runs     *[]uuid.UUID
	statuses *[]string
	woken    *int64
}

func (r endRow) Scan(dest ...any) error {
	return r.rows.Scan(append(dest, r.ready, r.runs, r.statuses, r.woken)...)
}
