package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/freshetdev/freshet/assets"
	"github.com/freshetdev/freshet/store"
)

// CancelRun cancels a run: its steps not started yet become CANCELED, running
// ones get a cancel request. Steps of other runs that joined a canceled step see
// the dependency done. A finished run is returned as it is.
func (s *Store) CancelRun(ctx context.Context, id uuid.UUID) (*store.Run, error) {
	var run *store.Run
	err := retry(ctx, func() error {
		var err error
		run, err = s.cancelRun(ctx, id)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("cancel run %s: %w", id, err)
	}
	return run, nil
}

func (s *Store) cancelRun(ctx context.Context, id uuid.UUID) (*store.Run, error) {
	b := txBatch(writeTx)
	b.Queue(planSettingsSQL)
	b.Queue(`SELECT status, backfill_id IS NOT NULL FROM runs WHERE id = $1 FOR NO KEY UPDATE`, id)
	b.Queue(`SELECT `+runColumns+runFrom+`WHERE r.id = $1`, id)
	tx, results, err := s.beginBatch(ctx, b)
	if err != nil {
		return nil, err
	}
	defer tx.release()
	var (
		status      string
		hasBackfill bool
		run         store.Run
	)
	if _, err = results.Exec(); err == nil {
		err = results.QueryRow().Scan(&status, &hasBackfill)
	}
	if err == nil {
		run, err = scanRun(results.QueryRow())
	}
	if err == nil {
		err = results.Close()
	}
	if err != nil {
		_ = results.Close()
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, fmt.Errorf("run %w", store.ErrNotFound)
		}
		return nil, err
	}
	if store.RunStatus(status).Done() {
		return &run, nil
	}
	canceled, err := cancelRunSteps(ctx, tx, id)
	if err != nil {
		return nil, err
	}
	set := &settle{done: canceled, runs: []uuid.UUID{id}, backfills: hasBackfill}
	final := &pgx.Batch{}
	set.queue(final)
	final.Queue(`SELECT `+runColumns+runFrom+`WHERE r.id = $1`, id)
	err = tx.commitWith(ctx, final, func(results pgx.BatchResults) error {
		if err := set.read(results); err != nil {
			return err
		}
		var err error
		run, err = scanRun(results.QueryRow())
		return err
	})
	if err != nil {
		return nil, err
	}
	return &run, nil
}

// cancelRunSteps cancels, in tx, which holds the run's row, the steps of run id
// not started yet, asks its running steps to stop, and returns the canceled steps.
func cancelRunSteps(ctx context.Context, tx *pipeTx, id uuid.UUID) ([]uuid.UUID, error) {
	b := &pgx.Batch{}
	b.Queue(`UPDATE runs SET canceled_at = now() WHERE id = $1 AND canceled_at IS NULL`, id)
	// Lock the run's open steps, then change them with a later snapshot: a claim
	// taking one of them, or joining one, commits first or sees them canceled.
	b.Queue(`SELECT id FROM steps WHERE run_id = $1 AND status IN `+openSQL+` ORDER BY id FOR NO KEY UPDATE`, id)
	b.Queue(`WITH canceled AS (
			UPDATE steps SET status = 'CANCELED', finished_at = now(), not_before = NULL, error = 'run canceled'
			WHERE run_id = $1 AND status IN ('PENDING', 'READY')
			RETURNING id),
		released AS (DELETE FROM inflight_partitions WHERE step_id IN (SELECT id FROM canceled))
		SELECT id FROM canceled`, id)
	b.Queue(`UPDATE steps SET cancel_requested_at = now()
		WHERE run_id = $1 AND status = 'RUNNING' AND cancel_requested_at IS NULL`, id)
	var canceled []uuid.UUID
	err := sendRead(ctx, tx, b, func(results pgx.BatchResults) error {
		for range 2 {
			if _, err := results.Exec(); err != nil {
				return fmt.Errorf("lock the run's steps: %w", err)
			}
		}
		rows, _ := results.Query()
		var step uuid.UUID
		_, err := pgx.ForEachRow(rows, []any{&step}, func() error {
			canceled = append(canceled, step)
			return nil
		})
		if err != nil {
			return fmt.Errorf("cancel the steps: %w", err)
		}
		if _, err := results.Exec(); err != nil {
			return fmt.Errorf("ask running steps to stop: %w", err)
		}
		return nil
	})
	return canceled, err
}

// CancelStep cancels one step and the steps depending on it in its run: not
// started, they become CANCELED; running, they get a cancel request.
func (s *Store) CancelStep(ctx context.Context, id uuid.UUID) (*store.Step, error) {
	var step *store.Step
	err := retry(ctx, func() error {
		var err error
		step, err = s.cancelStep(ctx, id)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("cancel step %s: %w", id, err)
	}
	return step, nil
}

func (s *Store) cancelStep(ctx context.Context, id uuid.UUID) (*store.Step, error) {
	b := txBatch(writeTx)
	b.Queue(planSettingsSQL)
	b.Queue(lockRunOfStepSQL, id)
	b.Queue(lockStepSQL, id)
	b.Queue(`SELECT `+stepColumns+stepFrom+`WHERE s.id = $1`, id)
	tx, results, err := s.beginBatch(ctx, b)
	if err != nil {
		return nil, err
	}
	defer tx.release()
	st := lockedStep{id: id}
	var (
		hasBackfill bool
		step        store.Step
	)
	if _, err = results.Exec(); err == nil {
		err = results.QueryRow().Scan(&st.runID, &hasBackfill)
	}
	if err == nil {
		err = scanLockedStep(results.QueryRow(), &st)
	}
	if err == nil {
		step, err = scanStep(results.QueryRow())
	}
	if err == nil {
		err = results.Close()
	}
	if err != nil {
		_ = results.Close()
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, fmt.Errorf("step %w", store.ErrNotFound)
		}
		return nil, err
	}
	if st.status.Done() {
		return &step, nil
	}

	middle := &pgx.Batch{}
	if st.status == store.StepRunning {
		middle.Queue(`UPDATE steps SET cancel_requested_at = now() WHERE id = $1 AND cancel_requested_at IS NULL`, id)
	} else {
		middle.Queue(`WITH released AS (DELETE FROM inflight_partitions WHERE step_id = $1)
			UPDATE steps SET status = 'CANCELED', finished_at = now(), not_before = NULL, error = 'canceled'
			WHERE id = $1`, id)
	}
	queueCancel(middle, []uuid.UUID{id}, "canceled: upstream step "+stepText(st.asset, st.partitions)+" was canceled")
	var c cascade
	err = sendRead(ctx, tx, middle, func(results pgx.BatchResults) error {
		if _, err := results.Exec(); err != nil {
			return err
		}
		return c.read(results)
	})
	if err != nil {
		return nil, err
	}
	set := &settle{done: c.steps, runs: []uuid.UUID{st.runID}, backfills: hasBackfill}
	if st.status != store.StepRunning {
		set.done = append(set.done, id)
	}
	final := &pgx.Batch{}
	set.queue(final)
	final.Queue(`SELECT `+stepColumns+stepFrom+`WHERE s.id = $1`, id)
	err = tx.commitWith(ctx, final, func(results pgx.BatchResults) error {
		if err := set.read(results); err != nil {
			return err
		}
		var err error
		step, err = scanStep(results.QueryRow())
		return err
	})
	if err != nil {
		return nil, err
	}
	return &step, nil
}

// ExpireLeases puts back, or fails, the RUNNING steps whose lease expired.
func (s *Store) ExpireLeases(ctx context.Context) ([]store.ExpiredStep, error) {
	// Most calls find nothing: ask before taking any lock.
	var expired bool
	err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM steps WHERE status = 'RUNNING' AND lease_expires_at < now())`).
		Scan(&expired)
	if err != nil {
		return nil, fmt.Errorf("expire leases: %w", err)
	}
	if !expired {
		return []store.ExpiredStep{}, nil
	}
	var (
		out      []store.ExpiredStep
		interned map[int64]*internTable
	)
	err = retry(ctx, func() error {
		var err error
		out, interned, err = s.expireLeases(ctx)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("expire leases: %w", err)
	}
	s.cache.remember(interned)
	return out, nil
}

// expireLeasesSQL locks the expired steps and their runs, the runs first, as
// FinishStep does, passing over those another transaction holds: several workers
// may expire leases at once, and a step a worker is reporting on is not expired
// under it.
const expireLeasesSQL = `WITH r AS MATERIALIZED (
		SELECT id FROM runs WHERE id IN (SELECT run_id FROM steps WHERE status = 'RUNNING' AND lease_expires_at < now())
		ORDER BY id FOR NO KEY UPDATE SKIP LOCKED)
	SELECT s.id, s.run_id, r2.backfill_id IS NOT NULL, a.key, s.partition_keys, s.attempt, s.max_attempts,
		coalesce(s.lease_owner, ''), s.cancel_requested_at IS NOT NULL
	FROM steps s JOIN assets a ON a.id = s.asset_id JOIN runs r2 ON r2.id = s.run_id
	WHERE s.run_id IN (SELECT id FROM r) AND s.status = 'RUNNING' AND s.lease_expires_at < now()
	ORDER BY s.id FOR NO KEY UPDATE OF s SKIP LOCKED`

func (s *Store) expireLeases(ctx context.Context) ([]store.ExpiredStep, map[int64]*internTable, error) {
	b := txBatch(writeTx)
	b.Queue(planSettingsSQL)
	b.Queue(expireLeasesSQL)
	tx, results, err := s.beginBatch(ctx, b)
	if err != nil {
		return nil, nil, err
	}
	defer tx.release()
	if _, err := results.Exec(); err != nil {
		_ = results.Close()
		return nil, nil, err
	}
	var (
		steps       []lockedStep
		hasBackfill bool
	)
	rows, _ := results.Query()
	for rows.Next() {
		var (
			st            lockedStep
			key           string
			backfill      bool
			attempt, maxA int32
		)
		if err := rows.Scan(&st.id, &st.runID, &backfill, &key, &st.partitions, &attempt, &maxA, &st.owner, &st.cancelRequested); err != nil {
			rows.Close()
			_ = results.Close()
			return nil, nil, err
		}
		st.asset, st.attempt, st.max = assets.Key(key), int(attempt), int(maxA)
		hasBackfill = hasBackfill || backfill
		steps = append(steps, st)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		_ = results.Close()
		return nil, nil, err
	}
	if err := results.Close(); err != nil {
		return nil, nil, err
	}
	out := make([]store.ExpiredStep, len(steps))
	if len(steps) == 0 {
		return out, nil, nil
	}

	var (
		ids, ready, canceled, failed []uuid.UUID
		attempts                     []int32
		errs                         []string
		failures                     []store.Event
		runs                         []uuid.UUID
	)
	for i, st := range steps {
		msg := fmt.Sprintf("lease of worker %s expired", st.owner)
		ids, attempts, errs = append(ids, st.id), append(attempts, int32(st.attempt)), append(errs, msg)
		runs = append(runs, st.runID)
		out[i] = store.ExpiredStep{StepID: st.id, RunID: st.runID, Attempt: st.attempt, Worker: st.owner}
		switch {
		case st.cancelRequested:
			canceled = append(canceled, st.id)
			out[i].Status = store.StepCanceled
		case st.attempt < st.max:
			ready = append(ready, st.id)
			out[i].Status = store.StepReady
		default:
			failed = append(failed, st.id)
			out[i].Status = store.StepFailed
			for _, p := range st.partitions {
				failures = append(failures, store.Event{Kind: store.Failure, Asset: st.asset, Partition: p,
					RunID: st.runID, StepID: st.id, Error: msg})
			}
		}
	}

	middle := &pgx.Batch{}
	var w *appendWork
	if len(failures) > 0 {
		if w, err = s.loadLenient(ctx, tx, failures); err != nil {
			return nil, nil, err
		}
		if !w.small() {
			if err := w.write(ctx, tx); err != nil {
				return nil, nil, err
			}
		} else {
			w.queueWrites(middle)
		}
	}
	nWrites := middle.Len()
	middle.Queue(`UPDATE attempts a SET status = 'LEASE_EXPIRED', finished_at = now(), error = t.error
		FROM unnest($1::uuid[], $2::integer[], $3::text[]) AS t(step_id, attempt, error)
		WHERE a.step_id = t.step_id AND a.attempt = t.attempt`, ids, attempts, errs)
	// Every expired step loses its lease; the step's error says why.
	middle.Queue(`WITH t AS (SELECT * FROM unnest($1::uuid[], $2::text[]) AS t(step_id, error)),
		released AS (DELETE FROM inflight_partitions WHERE step_id = ANY ($4::uuid[]) OR step_id = ANY ($5::uuid[]))
		UPDATE steps s SET lease_owner = NULL, lease_expires_at = NULL, not_before = NULL, error = t.error,
			status = CASE WHEN s.id = ANY ($3::uuid[]) THEN 'READY' WHEN s.id = ANY ($4::uuid[]) THEN 'CANCELED' ELSE 'FAILED' END,
			ready_at = CASE WHEN s.id = ANY ($3::uuid[]) THEN now() ELSE s.ready_at END,
			finished_at = CASE WHEN s.id = ANY ($3::uuid[]) THEN NULL ELSE now() END
		FROM t WHERE s.id = t.step_id`, ids, errs, ready, canceled, failed)
	byID := map[uuid.UUID]*lockedStep{}
	for i := range steps {
		byID[steps[i].id] = &steps[i]
	}
	for _, id := range failed {
		st := byID[id]
		queueFail(middle, id, fmt.Sprintf("upstream step %s failed (step %s)", stepText(st.asset, st.partitions), id))
	}
	if len(canceled) > 0 {
		queueCancel(middle, canceled, "canceled: an upstream step was canceled")
	}
	var cascaded cascade
	err = sendRead(ctx, tx, middle, func(results pgx.BatchResults) error {
		for range nWrites + 2 {
			if _, err := results.Exec(); err != nil {
				return fmt.Errorf("record the expiry: %w", err)
			}
		}
		for range len(failed) + min(len(canceled), 1) {
			if err := cascaded.read(results); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	set := &settle{
		done: append(canceled, cascaded.steps...), runs: append(runs, cascaded.runs...),
		backfills: hasBackfill || len(cascaded.runs) > 0, notify: len(ready) > 0,
	}
	final := &pgx.Batch{}
	set.queue(final)
	if err := tx.commitWith(ctx, final, set.read); err != nil {
		return nil, nil, err
	}
	var interned map[int64]*internTable
	if w != nil {
		interned = w.in.tables
	}
	return out, interned, nil
}
