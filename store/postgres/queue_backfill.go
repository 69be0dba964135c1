package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/freshetdev/freshet/store"
)

// CreateBackfill records a backfill and its run in one transaction: the backfill's
// insert goes in the run's batch, before the run that references it.
func (s *Store) CreateBackfill(ctx context.Context, nb store.NewBackfill) (*store.Backfill, error) {
	id := nb.ID
	if id == uuid.Nil {
		id = uuid.New()
	}
	if nb.Mode == "" {
		nb.Mode = store.BackfillMissingAndStale
	}
	switch nb.Mode {
	case store.BackfillMissingAndStale, store.BackfillAll:
	default:
		return nil, fmt.Errorf("create backfill: unknown mode %q (want %s or %s)", nb.Mode, store.BackfillMissingAndStale, store.BackfillAll)
	}
	if nb.MaxParallel <= 0 {
		return nil, fmt.Errorf("create backfill: max parallel is %d; at least 1", nb.MaxParallel)
	}
	nr := nb.Run
	nr.Trigger, nr.BackfillID, nr.MaxParallel = store.TriggerBackfill, id, nb.MaxParallel
	if nr.Selection == "" {
		nr.Selection = nb.Selection
	}
	if nr.From == "" && nr.To == "" {
		nr.From, nr.To = nb.From, nb.To
	}
	targeted := 0
	for _, st := range nr.Steps {
		targeted += len(st.Partitions)
	}
	status := store.BackfillRunning
	if len(nr.Steps) == 0 {
		status = store.BackfillSucceeded
	}
	var run *store.Run
	err := retry(ctx, func() error {
		var err error
		run, err = s.createRun(ctx, nr, func(b *pgx.Batch) {
			b.Queue(`INSERT INTO backfills (id, selection, from_day, to_day, mode, max_parallel, status, targeted,
					created_at, started_at, finished_at)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now(), now(), CASE WHEN $7 = 'SUCCEEDED' THEN now() END)`,
				id, nb.Selection, nullString(nb.From), nullString(nb.To), string(nb.Mode), int32(nb.MaxParallel),
				string(status), int32(targeted))
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("create backfill: %w", err)
	}
	bf := &store.Backfill{
		ID: id, Selection: nb.Selection, From: nb.From, To: nb.To, Mode: nb.Mode, MaxParallel: nb.MaxParallel,
		Status: status, CreatedAt: run.CreatedAt, RunIDs: []uuid.UUID{run.ID},
		Targeted: targeted, Pending: targeted,
	}
	if status == store.BackfillSucceeded {
		bf.FinishedAt = run.CreatedAt
	}
	return bf, nil
}

// backfillColumns are the columns scanBackfill reads, of backfills b, with the
// progress counted in partitions over the steps of its runs.
const backfillColumns = `b.id, b.selection, coalesce(b.from_day, ''), coalesce(b.to_day, ''), b.mode, b.max_parallel, b.status,
	b.created_at, b.finished_at, b.canceled_at,
	ARRAY(SELECT r.id FROM runs r WHERE r.backfill_id = b.id ORDER BY r.created_at, r.id),
	c.targeted, c.done, c.failed, c.inflight, c.canceled, c.pending
	FROM backfills b LEFT JOIN LATERAL (
		SELECT coalesce(sum(s.partition_count), 0) AS targeted,
			coalesce(sum(s.partition_count) FILTER (WHERE s.status IN ('SUCCEEDED', 'SKIPPED_FRESH')), 0) AS done,
			coalesce(sum(s.partition_count) FILTER (WHERE s.status IN ('FAILED', 'UPSTREAM_FAILED')), 0) AS failed,
			coalesce(sum(s.partition_count) FILTER (WHERE s.status = 'RUNNING'), 0) AS inflight,
			coalesce(sum(s.partition_count) FILTER (WHERE s.status = 'CANCELED'), 0) AS canceled,
			coalesce(sum(s.partition_count) FILTER (WHERE s.status IN ('PENDING', 'READY')), 0) AS pending
		FROM runs r JOIN steps s ON s.run_id = r.id WHERE r.backfill_id = b.id) c ON true `

func scanBackfill(row pgx.Row) (store.Backfill, error) {
	var (
		b                            store.Backfill
		mode, status                 string
		maxParallel                  int32
		finished, canceled           pgtype.Timestamptz
		targeted, done, failed       int64
		inflight, canceledN, pending int64
	)
	err := row.Scan(&b.ID, &b.Selection, &b.From, &b.To, &mode, &maxParallel, &status, &b.CreatedAt, &finished, &canceled,
		&b.RunIDs, &targeted, &done, &failed, &inflight, &canceledN, &pending)
	if err != nil {
		return b, err
	}
	b.Mode, b.Status, b.MaxParallel = store.BackfillMode(mode), store.BackfillStatus(status), int(maxParallel)
	b.CreatedAt, b.FinishedAt, b.CanceledAt = b.CreatedAt.UTC(), timeOf(finished), timeOf(canceled)
	b.RunIDs = emptyIfNil(b.RunIDs)
	b.Targeted, b.Done, b.Failed = int(targeted), int(done), int(failed)
	b.InFlight, b.Canceled, b.Pending = int(inflight), int(canceledN), int(pending)
	return b, nil
}

// GetBackfill returns a backfill with its progress.
func (s *Store) GetBackfill(ctx context.Context, id uuid.UUID) (*store.Backfill, error) {
	b, err := scanBackfill(s.pool.QueryRow(ctx, `SELECT `+backfillColumns+`WHERE b.id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("backfill %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read backfill %s: %w", id, err)
	}
	return &b, nil
}

// Backfill list sizes.
const (
	defaultBackfillLimit = 100
	maxBackfillLimit     = 1_000
)

// ListBackfills returns backfills, newest first.
func (s *Store) ListBackfills(ctx context.Context, limit int) ([]store.Backfill, error) {
	switch {
	case limit <= 0:
		limit = defaultBackfillLimit
	case limit > maxBackfillLimit:
		limit = maxBackfillLimit
	}
	rows, err := s.pool.Query(ctx, `SELECT `+backfillColumns+`ORDER BY b.created_at DESC, b.id DESC LIMIT $1`, int32(limit))
	if err != nil {
		return nil, fmt.Errorf("list backfills: %w", err)
	}
	defer rows.Close()
	out := []store.Backfill{}
	for rows.Next() {
		b, err := scanBackfill(rows)
		if err != nil {
			return nil, fmt.Errorf("list backfills: %w", err)
		}
		out = append(out, b)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list backfills: %w", err)
	}
	return out, nil
}

// CancelBackfill cancels a backfill's runs, as CancelRun does, and marks the
// backfill canceled; it ends CANCELED once none of its runs has a step running.
func (s *Store) CancelBackfill(ctx context.Context, id uuid.UUID) (*store.Backfill, error) {
	var bf *store.Backfill
	err := retry(ctx, func() error {
		var err error
		bf, err = s.cancelBackfill(ctx, id)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("cancel backfill %s: %w", id, err)
	}
	return bf, nil
}

func (s *Store) cancelBackfill(ctx context.Context, id uuid.UUID) (*store.Backfill, error) {
	// The runs' rows before the backfill's, as FinishStep locks them.
	b := txBatch(writeTx)
	b.Queue(planSettingsSQL)
	b.Queue(`SELECT id, status FROM runs WHERE backfill_id = $1 ORDER BY id FOR NO KEY UPDATE`, id)
	b.Queue(`SELECT status FROM backfills WHERE id = $1 FOR NO KEY UPDATE`, id)
	tx, results, err := s.beginBatch(ctx, b)
	if err != nil {
		return nil, err
	}
	defer tx.release()
	var (
		open   []uuid.UUID
		runID  uuid.UUID
		status string
	)
	if _, err := results.Exec(); err != nil {
		_ = results.Close()
		return nil, err
	}
	rows, _ := results.Query()
	_, err = pgx.ForEachRow(rows, []any{&runID, &status}, func() error {
		if !store.RunStatus(status).Done() {
			open = append(open, runID)
		}
		return nil
	})
	if err == nil {
		err = results.QueryRow().Scan(&status)
	}
	if err == nil {
		err = results.Close()
	}
	if err != nil {
		_ = results.Close()
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, fmt.Errorf("backfill %w", store.ErrNotFound)
		}
		return nil, err
	}
	var bf store.Backfill
	if done := store.BackfillStatus(status); done == store.BackfillSucceeded || done == store.BackfillFailed || done == store.BackfillCanceled {
		if err := sendRead(ctx, tx, queued(`SELECT `+backfillColumns+`WHERE b.id = $1`, id), func(results pgx.BatchResults) error {
			bf, err = scanBackfill(results.QueryRow())
			return err
		}); err != nil {
			return nil, err
		}
		return &bf, nil
	}
	var canceled []uuid.UUID
	for _, run := range open {
		c, err := cancelRunSteps(ctx, tx, run)
		if err != nil {
			return nil, err
		}
		canceled = append(canceled, c...)
	}
	final := &pgx.Batch{}
	final.Queue(`UPDATE backfills SET canceled_at = now() WHERE id = $1 AND canceled_at IS NULL`, id)
	set := &settle{done: canceled, runs: open, backfills: true}
	set.queue(final)
	if len(open) == 0 {
		// No run left to end it: decide its status here.
		final.Queue(`UPDATE backfills b SET status = 'CANCELED', finished_at = now()
			WHERE b.id = $1 AND b.status IN ('REQUESTED', 'RUNNING')`, id)
	}
	final.Queue(`SELECT `+backfillColumns+`WHERE b.id = $1`, id)
	err = tx.commitWith(ctx, final, func(results pgx.BatchResults) error {
		if _, err := results.Exec(); err != nil {
			return err
		}
		if err := set.read(results); err != nil {
			return err
		}
		if len(open) == 0 {
			if _, err := results.Exec(); err != nil {
				return err
			}
		}
		var err error
		bf, err = scanBackfill(results.QueryRow())
		return err
	})
	if err != nil {
		return nil, err
	}
	return &bf, nil
}

// queued returns a batch of one statement.
func queued(sql string, args ...any) *pgx.Batch {
	b := &pgx.Batch{}
	b.Queue(sql, args...)
	return b
}
