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

// Reports are recorded in batches: FinishSteps records consecutive successes,
// fresh skips and retries of a call in one transaction, and FinishStep records one
// of those the same way, as a batch of one. A final failure or a cancel, whose
// cascade reaches other steps, is recorded alone (finishStep, queue_finish.go),
// in a transaction of its own.
//
// A batch costs two round trips, whatever its size (three when events bring a
// code version the store has not cached, more when they are many enough to be
// written with COPY):
//
//  1. with the BEGIN: lock the runs of the reported steps, in id order, in one
//     statement; lock the steps, in id order, in one statement, reading what
//     fencing needs; advance the catalog clock (taking its lock) by the events of
//     the successes and read what appending them needs (the synced definitions of
//     their assets, the state of their partitions); lock the in-flight rows of the
//     successes and skips (see lockInflightSQL).
//  2. with the COMMIT: the events and the partition state (one statement per row
//     for a few events, one for all from setWrites on); the retried steps put
//     back; one statement that ends every succeeded or skipped step, releases its
//     partitions and locks its PENDING dependents; the log lines; settleSQL, which
//     makes READY the dependents whose dependencies are all done and ends the runs
//     none of whose steps is open any more, for all the steps and runs at once;
//     the backfills that ended; the claim for next.
//
// Between them each report is fenced on its own, in Go: a report whose worker no
// longer holds the step's lease for that attempt, or whose events are not one
// materialization per partition of the step, or are refused by the catalog (an
// unknown partition, a removed asset), is refused: nothing is written for it (the
// clock is set back by its events), and the others are recorded. Its locks are
// kept to the end of the transaction, which harms nothing. A retry the store must
// refuse (no attempt left, or a cancel was requested) makes the step's end final,
// with a cascade: the batch rolls back, and FinishSteps records the reports
// before it as a batch, it alone, and the reports after it as another batch, in
// order. (Refusals are rare; this keeps every report's result as FinishStep
// would give it, one report after the other.)
//
// Locks are taken in the order every writer of the queue takes them (see doc.go):
// runs, then steps, each in id order; then the catalog clock; then in-flight
// rows; then the dependents, in a statement before the one that reads their
// dependencies (settleSQL), so that its snapshot, taken once it holds them, sees
// the end of any other dependency recorded by a transaction that held them before
// (see lockDependentsSQL). A run's lock is held once for all its steps of the
// batch, where one FinishStep per step would take it once per step, and
// serialize reports of one run one transaction after the other.

// lockRunsOfStepsSQL locks the runs of the steps $1, in id order, with whether
// each belongs to a backfill and its status.
const lockRunsOfStepsSQL = `SELECT r.id, r.backfill_id IS NOT NULL, r.status FROM runs r
	WHERE r.id IN (SELECT s.run_id FROM steps s WHERE s.id = ANY ($1::uuid[]))
	ORDER BY r.id FOR NO KEY UPDATE`

// lockStepsSQL locks the steps $1, in id order, and reads what ending them needs
// (as lockStepSQL does for one).
const lockStepsSQL = `SELECT s.id, s.run_id, a.key, s.partition_keys, s.status, coalesce(s.lease_owner, ''), s.attempt,
		s.max_attempts, s.cancel_requested_at IS NOT NULL,
		coalesce((SELECT t.input_seq FROM attempts t WHERE t.step_id = s.id AND t.attempt = s.attempt), 0)
	FROM steps s JOIN assets a ON a.id = s.asset_id WHERE s.id = ANY ($1::uuid[])
	ORDER BY s.id FOR NO KEY UPDATE OF s`

// lockRunOfOneSQL and lockOneStepSQL are lockRunsOfStepsSQL and lockStepsSQL
// for a batch of one step $1 (FinishStep's): a key lookup costs the server less
// than the same over an array.
const (
	lockRunOfOneSQL = `SELECT r.id, r.backfill_id IS NOT NULL, r.status FROM runs r
		WHERE r.id = (SELECT s.run_id FROM steps s WHERE s.id = $1) FOR NO KEY UPDATE`
	lockOneStepSQL = `SELECT s.id, s.run_id, a.key, s.partition_keys, s.status, coalesce(s.lease_owner, ''), s.attempt,
			s.max_attempts, s.cancel_requested_at IS NOT NULL,
			coalesce((SELECT t.input_seq FROM attempts t WHERE t.step_id = s.id AND t.attempt = s.attempt), 0)
		FROM steps s JOIN assets a ON a.id = s.asset_id WHERE s.id = $1 FOR NO KEY UPDATE OF s`
)

// lockInflightSQL locks the in-flight rows of the steps $1, in key order, as
// every writer of the table takes them. CreateRun locks the row of a partition
// taken by a step that turned up after it looked for holders (ON CONFLICT DO
// UPDATE) and then joins that step, without its step row's lock: locking the rows
// here orders the two. Either CreateRun committed first, and endStepsSQL,
// a later statement, sees the join; or it waits for the batch to commit, finds
// the rows deleted and takes the partitions.
const lockInflightSQL = `SELECT 1 FROM inflight_partitions WHERE step_id = ANY ($1::uuid[])
	ORDER BY asset_id, partition_key FOR NO KEY UPDATE`

// endStepsSQL ends the attempts $2 of the steps $1 (attempt status $3, step
// status $4: succeeded or skipped) and the steps, releasing their partitions,
// locks their PENDING dependents in step id order (see lockDependentsSQL), and
// returns the steps, each with its dependents (all of them: those made ready are
// among them). settleSQL, a statement of its own, then reads the dependents'
// dependencies with a snapshot taken once it holds them. (The snapshot of this
// statement is taken after the first round trip, which waited for any CreateRun
// that joined one of the steps: see lockInflightSQL.)
const endStepsSQL = `WITH t AS (SELECT * FROM unnest($1::uuid[], $2::integer[], $3::text[], $4::text[]) AS t(id, attempt, attempt_status, status)),
	att AS (
		UPDATE attempts a SET status = t.attempt_status, finished_at = now()
		FROM t WHERE a.step_id = t.id AND a.attempt = t.attempt),
	released AS (DELETE FROM inflight_partitions WHERE step_id = ANY ($1::uuid[])),
	locked AS (
		SELECT x.id
		FROM (SELECT DISTINCT d.step_id FROM step_deps d WHERE d.upstream_step_id = ANY ($1::uuid[]) ORDER BY d.step_id) dep,
		LATERAL (SELECT s.id FROM steps s WHERE s.id = dep.step_id AND s.status = 'PENDING' FOR NO KEY UPDATE) x)
	UPDATE steps s SET status = t.status, finished_at = now(), lease_owner = NULL, lease_expires_at = NULL,
		not_before = NULL, error = NULL
	FROM t, assets a WHERE s.id = t.id AND a.id = s.asset_id AND (SELECT count(*) FROM locked) >= 0
	RETURNING ` + stepColumns + `, ARRAY(SELECT d.step_id FROM step_deps d WHERE d.upstream_step_id = s.id)`

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
	if len(ids) == 1 {
		b.Queue(lockRunOfOneSQL, ids[0])
		b.Queue(lockOneStepSQL, ids[0])
	} else {
		b.Queue(lockRunsOfStepsSQL, ids)
		b.Queue(lockStepsSQL, ids)
	}
	var w *appendWork
	if len(events) > 0 {
		// The clock advances by every event before the reports are fenced; when
		// some are refused, the writes set it back by theirs (no other writer
		// sees it meanwhile: the transaction holds its lock).
		w = s.newAppendWork(events, true)
		w.queueLoad(b)
	}
	if len(ending) > 0 {
		b.Queue(lockInflightSQL, ending)
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
	err = func() error {
		if _, err := results.Exec(); err != nil {
			return err
		}
		rows, _ := results.Query()
		var (
			id       uuid.UUID
			backfill bool
			status   string
		)
		_, err := pgx.ForEachRow(rows, []any{&id, &backfill, &status}, func() error {
			runs[id] = runRow{backfill, store.RunStatus(status)}
			return nil
		})
		if err != nil {
			return fmt.Errorf("lock runs: %w", err)
		}
		rows, _ = results.Query()
		for rows.Next() {
			var st lockedStep
			if err := scanLockedSteps(rows, &st); err != nil {
				rows.Close()
				return fmt.Errorf("lock steps: %w", err)
			}
			locked[st.id] = st
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("lock steps: %w", err)
		}
		if w != nil {
			if err := w.load(results); err != nil {
				return err
			}
		}
		if len(ending) > 0 {
			if _, err := results.Exec(); err != nil {
				return fmt.Errorf("lock in-flight partitions: %w", err)
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
	if w != nil && len(w.prepared) < len(events) {
		final.Queue(advanceClockSQL, -int64(len(events)-len(w.prepared)))
	}
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
		final.Queue(endStepsSQL, endedIDs, attempts, attemptStatuses, stepStatuses)
	}
	nLogs := queueLogs(final, logs)
	set := &settle{done: endedIDs, locked: true, runs: runIDs, runsLocked: true, backfills: backfills,
		notify: notifyRetry, claim: claim}
	set.queue(final)

	stepRows := map[uuid.UUID]*store.Step{}
	upstreams := map[uuid.UUID][]uuid.UUID{} // of each dependent locked, the steps of the batch it depends on
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
				var deps []uuid.UUID
				step, err := scanStep(endRow{rows, &deps})
				if err != nil {
					rows.Close()
					return fmt.Errorf("end the steps: %w", err)
				}
				stepRows[step.ID] = &step
				for _, d := range deps {
					upstreams[d] = append(upstreams[d], step.ID)
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
		return set.read(results)
	})
	if err != nil {
		return nil, nil, err
	}
	ready, runStatus := set.ready, set.runStatus
	if claim != nil {
		done.claimed = set.claimed
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
			fr.Events = recorded[bs.off : bs.off+len(bs.events) : bs.off+len(bs.events)]
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

// scanLockedSteps reads a row of lockStepsSQL.
func scanLockedSteps(rows pgx.Rows, st *lockedStep) error {
	var (
		key, status   string
		attempt, maxA int32
	)
	if err := rows.Scan(&st.id, &st.runID, &key, &st.partitions, &status, &st.owner, &attempt, &maxA,
		&st.cancelRequested, &st.inputSeq); err != nil {
		return err
	}
	st.asset, st.status, st.attempt, st.max = assets.Key(key), store.StepStatus(status), int(attempt), int(maxA)
	return nil
}

// endRow scans a row of endStepsSQL: a step's columns, then its dependents.
type endRow struct {
	rows pgx.Rows
	deps *[]uuid.UUID
}

func (r endRow) Scan(dest ...any) error {
	return r.rows.Scan(append(dest, r.deps)...)
}
