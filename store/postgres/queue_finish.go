package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/freshetdev/freshet/assets"
	"github.com/freshetdev/freshet/store"
)

// lockRunOfStepSQL locks the run of step $1, first: everything that changes a
// run's steps holds the run's row (see queue.go).
const lockRunOfStepSQL = `SELECT r.id, r.backfill_id IS NOT NULL FROM runs r
	WHERE r.id = (SELECT s.run_id FROM steps s WHERE s.id = $1) FOR NO KEY UPDATE`

// lockStepSQL locks step $1 and reads what ending it needs, with the input seq of
// its current attempt.
const lockStepSQL = `SELECT a.key, s.partition_keys, s.status, coalesce(s.lease_owner, ''), s.attempt, s.max_attempts,
		s.cancel_requested_at IS NOT NULL,
		coalesce((SELECT t.input_seq FROM attempts t WHERE t.step_id = s.id AND t.attempt = s.attempt), 0)
	FROM steps s JOIN assets a ON a.id = s.asset_id WHERE s.id = $1 FOR NO KEY UPDATE OF s`

// lockedStep is what lockStepSQL reads.
type lockedStep struct {
	id, runID       uuid.UUID
	asset           assets.Key
	partitions      []string
	status          store.StepStatus
	owner           string
	attempt, max    int
	cancelRequested bool
	inputSeq        int64
}

func scanLockedStep(row pgx.Row, st *lockedStep) error {
	var (
		key, status   string
		attempt, maxA int32
	)
	if err := row.Scan(&key, &st.partitions, &status, &st.owner, &attempt, &maxA, &st.cancelRequested, &st.inputSeq); err != nil {
		return err
	}
	st.asset, st.status, st.attempt, st.max = assets.Key(key), store.StepStatus(status), int(attempt), int(maxA)
	return nil
}

// endStepSQL ends step $1's attempt $2 (attempt status $3, exit code $4, error
// $5) and the step (status $6, error $7), releasing its partitions, locks its
// PENDING dependents for settleSQL (see lockDependentsSQL), and returns the step.
const endStepSQL = `WITH att AS (
		UPDATE attempts SET status = $3, finished_at = now(), exit_code = $4, error = $5
		WHERE step_id = $1 AND attempt = $2),
	released AS (DELETE FROM inflight_partitions WHERE step_id = $1),
	locked AS (
		SELECT x.id
		FROM (SELECT DISTINCT d.step_id FROM step_deps d WHERE d.upstream_step_id = $1 ORDER BY d.step_id) dep,
		LATERAL (SELECT s.id FROM steps s WHERE s.id = dep.step_id AND s.status = 'PENDING' FOR NO KEY UPDATE) x)
	UPDATE steps s SET status = $6, finished_at = now(), lease_owner = NULL, lease_expires_at = NULL, not_before = NULL,
		error = $7
	FROM assets a WHERE s.id = $1 AND a.id = s.asset_id AND (SELECT count(*) FROM locked) >= 0
	RETURNING ` + stepColumns

// retryStepSQL ends step $1's attempt $2 like endStepSQL and puts the step back
// READY, claimable $6 µs from now, keeping its partitions.
const retryStepSQL = `WITH att AS (
		UPDATE attempts SET status = $3, finished_at = now(), exit_code = $4, error = $5
		WHERE step_id = $1 AND attempt = $2)
	UPDATE steps s SET status = 'READY', ready_at = now(), lease_owner = NULL, lease_expires_at = NULL,
		not_before = CASE WHEN $6::bigint > 0 THEN now() + $6::bigint * interval '1 microsecond' END, error = $7
	FROM assets a WHERE s.id = $1 AND a.id = s.asset_id
	RETURNING ` + stepColumns

// FinishStep records the end of a claimed step's attempt and everything it
// changes, in one transaction, fenced by the lease: the worker must hold the step
// (RUNNING, leased to it, for that attempt).
//
// A success, a fresh skip or a retry is recorded as a batch of one (see
// queue_finish_batch.go): two round trips (three when the events bring a code
// version the store has not cached). A final failure or a cancel is recorded by
// finishStep, with a round trip more for its cascade.
func (s *Store) FinishStep(ctx context.Context, res store.StepResult) (*store.FinishResult, error) {
	if res.ClaimNext != nil {
		if err := checkClaim(res.ClaimNext); err != nil {
			return nil, fmt.Errorf("finish step %s: claim next: %w", res.StepID, err)
		}
	}
	rep, err := newReport(0, &res)
	if err != nil {
		return nil, finishError(&res, err)
	}
	if !rep.alone() {
		done, err := s.runBatch(ctx, []*report{rep}, res.ClaimNext, false)
		switch {
		case err != nil:
			return nil, finishError(&res, err)
		case done.split < 0 && done.errs[0] != nil:
			return nil, finishError(&res, done.errs[0])
		case done.split < 0:
			fr := done.results[0]
			fr.Claimed = done.claimed
			return fr, nil
		}
		// A retry the store refuses: the step's end is final, and cascades.
	}
	fr, err := s.finishAlone(ctx, rep, res.ClaimNext)
	if err != nil {
		return nil, finishError(&res, err)
	}
	return fr, nil
}

// finishStep records one report in a transaction of its own: the BEGIN, the
// locks of the run and the step, and, for a success, the catalog clock's lock and
// what appending the events needs, in one round trip; for a final failure or a
// cancel, the failure events and the cascade in another; the step's end, its
// dependents, the run's status, the log lines, the claim and the COMMIT in the
// last. Errors that refuse the report are refusals.
func (s *Store) finishStep(ctx context.Context, rep *report, claim *store.ClaimRequest) (*store.FinishResult, map[int64]*internTable, error) {
	res := rep.res
	b := txBatch(writeTx)
	b.Queue(planSettingsSQL)
	b.Queue(lockRunOfStepSQL, res.StepID)
	b.Queue(lockStepSQL, res.StepID)
	var w *appendWork
	if res.Outcome == store.OutcomeSucceeded && len(res.Events) > 0 {
		// Take the clock and read what the events need in the same round trip,
		// before knowing the lease is held: a refused report rolls it all back.
		w = s.newAppendWork(slices.Clone(res.Events), true)
		w.queueLoad(b)
	}
	tx, results, err := s.beginBatch(ctx, b)
	if err != nil {
		return nil, nil, err
	}
	defer tx.release()
	st := lockedStep{id: res.StepID}
	var hasBackfill bool
	_, err = results.Exec()
	if err == nil {
		err = results.QueryRow().Scan(&st.runID, &hasBackfill)
	}
	if errors.Is(err, pgx.ErrNoRows) {
		_ = results.Close()
		return nil, nil, refusal{fmt.Errorf("no such step: %w (%w)", store.ErrLeaseLost, store.ErrNotFound)}
	}
	if err == nil {
		err = scanLockedStep(results.QueryRow(), &st)
	}
	if err == nil && w != nil {
		err = w.load(results)
	}
	if err == nil {
		err = results.Close()
	}
	if err != nil {
		_ = results.Close()
		return nil, nil, err
	}
	if st.status != store.StepRunning || st.owner != res.Worker || st.attempt != res.Attempt {
		return nil, nil, refusal{fmt.Errorf("%w: the step is %s, attempt %d, leased to %q; the report is of attempt %d by %q",
			store.ErrLeaseLost, st.status, st.attempt, st.owner, res.Attempt, res.Worker)}
	}

	out := &store.FinishResult{Events: []store.Event{}}
	set := &settle{runs: []uuid.UUID{st.runID}, backfills: hasBackfill, claim: claim}
	final := &pgx.Batch{}
	errText := storableText(cut(res.Error, store.MaxErrorLen))
	var exit any
	if res.ExitCode != nil {
		exit = int32(*res.ExitCode)
	}
	var stepRow *store.Step
	readStep := func(results pgx.BatchResults) error {
		step, err := scanStep(results.QueryRow())
		if err != nil {
			return fmt.Errorf("end the step: %w", err)
		}
		stepRow = &step
		return nil
	}

	switch {
	case res.Outcome == store.OutcomeSucceeded || res.Outcome == store.OutcomeSkippedFresh:
		stepStatus, attemptStatus := store.StepSucceeded, store.AttemptSucceeded
		if res.Outcome == store.OutcomeSkippedFresh {
			stepStatus, attemptStatus = store.StepSkippedFresh, store.AttemptSkipped
		}
		if res.Outcome == store.OutcomeSucceeded {
			var events []store.Event
			if w != nil {
				events = w.events
			}
			if err := checkStepEvents(events, &st); err != nil {
				return nil, nil, refusal{err}
			}
		}
		if w != nil {
			if err := w.prepare(ctx, tx); err != nil {
				var bad *store.BadEventsError
				if errors.As(err, &bad) {
					err = refusal{err}
				}
				return nil, nil, err
			}
			if !w.small() {
				if err := w.write(ctx, tx); err != nil {
					return nil, nil, err
				}
			} else {
				w.queueWrites(final)
			}
			out.Events = w.recorded()
		}
		final.Queue(endStepSQL, st.id, int32(st.attempt), string(attemptStatus), nil, nil, string(stepStatus), nil)
		set.done, set.locked = []uuid.UUID{st.id}, true

	case (res.Outcome == store.OutcomeFailed || res.Outcome == store.OutcomeTimedOut) &&
		res.Retry && st.attempt < st.max && !st.cancelRequested:
		attemptStatus := store.AttemptFailed
		if res.Outcome == store.OutcomeTimedOut {
			attemptStatus = store.AttemptTimedOut
		}
		final.Queue(retryStepSQL, st.id, int32(st.attempt), string(attemptStatus), exit, nullString(errText),
			micros(res.RetryAfter), stepError(errText, res.Outcome, st.attempt))
		set.notify = res.RetryAfter <= 0

	default:
		// The end of the step: a final failure, or a cancel (reported, or a failure
		// to retry of a step whose cancel was requested, attempts left or not: it is
		// not retried, or a canceled run would keep a READY step no claim takes, and
		// the worker most likely reports the process it killed for the cancel).
		canceled := res.Outcome == store.OutcomeCanceled || (res.Retry && st.cancelRequested)
		attemptStatus := map[store.StepOutcome]store.AttemptStatus{store.OutcomeFailed: store.AttemptFailed,
			store.OutcomeTimedOut: store.AttemptTimedOut, store.OutcomeCanceled: store.AttemptCanceled}[res.Outcome]
		middle := final
		var (
			c   cascade
			msg = stepError(errText, res.Outcome, st.attempt)
		)
		if canceled {
			if res.Outcome == store.OutcomeCanceled && errText == "" {
				msg = "canceled"
			}
			middle.Queue(endStepSQL, st.id, int32(st.attempt), string(attemptStatus), exit, nullString(errText),
				string(store.StepCanceled), msg)
			queueCancel(middle, []uuid.UUID{st.id}, "canceled: upstream step "+stepText(st.asset, st.partitions)+" was canceled")
		} else {
			events := make([]store.Event, len(st.partitions))
			for i, p := range st.partitions {
				events[i] = store.Event{Kind: store.Failure, Asset: st.asset, Partition: p, RunID: st.runID, StepID: st.id,
					Error: msg}
			}
			if w, err = s.loadLenient(ctx, tx, events); err != nil {
				return nil, nil, err
			}
			if !w.small() {
				if err := w.write(ctx, tx); err != nil {
					return nil, nil, err
				}
			} else {
				w.queueWrites(middle)
			}
			out.Events = w.recorded()
			middle.Queue(endStepSQL, st.id, int32(st.attempt), string(attemptStatus), exit, nullString(errText),
				string(store.StepFailed), msg)
			queueFail(middle, st.id, fmt.Sprintf("upstream step %s failed (step %s)", stepText(st.asset, st.partitions), st.id))
		}
		err := sendRead(ctx, tx, middle, func(results pgx.BatchResults) error {
			for range middle.Len() - 3 { // the events' writes
				if _, err := results.Exec(); err != nil {
					return fmt.Errorf("record failures: %w", err)
				}
			}
			if err := readStep(results); err != nil {
				return err
			}
			return c.read(results)
		})
		if err != nil {
			return nil, nil, err
		}
		final = &pgx.Batch{}
		if canceled {
			set.done = append([]uuid.UUID{st.id}, c.steps...)
		}
		if len(c.runs) > 0 {
			set.runs = append(set.runs, c.runs...)
			set.backfills = true
		}
	}

	nWrites := final.Len()
	if stepRow == nil {
		nWrites-- // the step's end, read below
	}
	nLogs := queueLogs(final, []*logAppend{rep.log})
	set.queue(final)
	err = tx.commitWith(ctx, final, func(results pgx.BatchResults) error {
		for range nWrites {
			if _, err := results.Exec(); err != nil {
				return fmt.Errorf("write events and partition state: %w", err)
			}
		}
		if stepRow == nil {
			if err := readStep(results); err != nil {
				return err
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
	out.Step, out.Ready, out.Claimed, out.RunStatus = stepRow, set.ready, set.claimed, set.runStatus[st.runID]
	var interned map[int64]*internTable
	if w != nil && w.in != nil {
		interned = w.in.tables
	}
	return out, interned, nil
}

// sendRead sends b in tx and reads its results with read.
func sendRead(ctx context.Context, tx *pipeTx, b *pgx.Batch, read func(pgx.BatchResults) error) error {
	results := tx.SendBatch(ctx, b)
	if err := read(results); err != nil {
		_ = results.Close()
		return err
	}
	return results.Close()
}

// loadLenient reads in tx what appending events needs, under the clock's lock
// (advanced only when the writes are queued), and prepares them, dropping those
// that cannot be recorded: the failures a step's end records.
func (s *Store) loadLenient(ctx context.Context, tx *pipeTx, events []store.Event) (*appendWork, error) {
	w := s.newAppendWork(events, true)
	w.lockFirst, w.lenient = true, true
	b := &pgx.Batch{}
	w.queueLoad(b)
	if err := sendRead(ctx, tx, b, w.load); err != nil {
		return nil, err
	}
	if err := w.prepare(ctx, tx); err != nil {
		return nil, err
	}
	return w, nil
}

// checkStepEvents checks that a success's events are one materialization of the
// step's asset per partition of the step (none missing, none twice, none of
// another partition), and fills their run, step and input seq when unset. Bad
// events make a *store.BadEventsError; partitions without an event are named in
// an error of their own (joined to it when both).
//
// A success is the step's only record of what it built: a partition left out
// would end the step SUCCEEDED with nothing recorded for it, and the catalog
// would go on calling it missing while nothing in flight builds it.
func checkStepEvents(events []store.Event, st *lockedStep) error {
	bad := &store.BadEventsError{}
	add := func(n int, e *store.Event, format string, args ...any) {
		if len(bad.Errors) < maxReportedErrors {
			bad.Errors = append(bad.Errors, &store.EventError{N: n, Asset: e.Asset, Partition: e.Partition, Msg: fmt.Sprintf(format, args...)})
		} else {
			bad.More++
		}
	}
	step := fmt.Sprintf("step %s (%s)", st.id, stepText(st.asset, st.partitions))
	seen := map[string]bool{}
	for n := range events {
		e := &events[n]
		switch {
		case e.Kind != store.Materialization:
			add(n, e, "a %s event: a step's success records materializations", e.Kind)
		case e.Asset != st.asset:
			add(n, e, "not of the asset of %s", step)
		case !slices.Contains(st.partitions, e.Partition):
			add(n, e, "partition %q is not one of %s", e.Partition, step)
		case seen[e.Partition]:
			add(n, e, "partition %q reported twice", e.Partition)
		case e.RunID != uuid.Nil && e.RunID != st.runID:
			add(n, e, "run %s is not the run of %s (%s)", e.RunID, step, st.runID)
		case e.StepID != uuid.Nil && e.StepID != st.id:
			add(n, e, "step %s is not %s", e.StepID, step)
		default:
			seen[e.Partition] = true
			e.RunID, e.StepID = st.runID, st.id
			if e.InputSeq == 0 {
				e.InputSeq = st.inputSeq // the watermark of the attempt's claim
			}
			continue
		}
	}
	// Missing: partitions no materialization of the asset names (one that names
	// it but is bad otherwise is reported above, not here).
	named := make(map[string]bool, len(events))
	for n := range events {
		if e := &events[n]; e.Kind == store.Materialization && e.Asset == st.asset {
			named[e.Partition] = true
		}
	}
	var missing []string
	for _, p := range st.partitions {
		if !named[p] {
			missing = append(missing, p)
		}
	}
	var errMissing error
	if len(missing) > 0 {
		errMissing = fmt.Errorf("%s: a success records one materialization per partition of the step; none for %s",
			step, store.KeysText(missing))
	}
	switch {
	case len(bad.Errors) > 0 && errMissing != nil:
		return errors.Join(bad, errMissing)
	case len(bad.Errors) > 0:
		return bad
	}
	return errMissing
}

// stepError is the error recorded for a step that failed: the worker's, or what
// happened when it gave none.
func stepError(errText string, outcome store.StepOutcome, attempt int) string {
	if errText != "" {
		return errText
	}
	if outcome == store.OutcomeTimedOut {
		return fmt.Sprintf("attempt %d timed out", attempt)
	}
	return fmt.Sprintf("attempt %d failed", attempt)
}

// cut shortens s to at most n bytes at a character boundary, marking the cut.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := n
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return strings.ToValidUTF8(s[:i], "\uFFFD") + "… (cut)"
}
