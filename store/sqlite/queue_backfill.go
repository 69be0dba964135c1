package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/google/uuid"

	"github.com/freshetdev/freshet/store"
)

// Page sizes of ListBackfills.
const (
	defaultBackfillLimit = 100
	maxBackfillLimit     = 1000
)

const backfillColumns = `b.id, b.selection, b.from_day, b.to_day, b.mode, b.max_parallel, b.status, b.created_at,
	b.finished_at, b.canceled_at`

// CreateBackfill records a backfill and its run in one transaction.
func (s *Store) CreateBackfill(ctx context.Context, nb store.NewBackfill) (*store.Backfill, error) {
	if nb.ID == uuid.Nil {
		nb.ID = uuid.New()
	}
	if nb.Mode == "" {
		nb.Mode = store.BackfillMissingAndStale
	}
	if nb.Mode != store.BackfillMissingAndStale && nb.Mode != store.BackfillAll {
		return nil, fmt.Errorf("create backfill %s: unknown mode %q (want %s or %s)", nb.ID, nb.Mode, store.BackfillMissingAndStale, store.BackfillAll)
	}
	if nb.MaxParallel < 1 {
		return nil, fmt.Errorf("create backfill %s: max parallel %d; at least 1", nb.ID, nb.MaxParallel)
	}
	nr := nb.Run
	nr.Trigger, nr.BackfillID, nr.MaxParallel = store.TriggerBackfill, nb.ID, nb.MaxParallel
	if nr.Selection == "" {
		nr.Selection = nb.Selection
	}
	if nr.From == "" && nr.To == "" {
		nr.From, nr.To = nb.From, nb.To
	}
	var (
		b    *store.Backfill
		wake bool
	)
	err := s.withWriteTx(ctx, func(w *writeTx) error {
		now := s.now()
		nowUS := micros(now)
		status, finishedAt := store.BackfillRunning, any(nil)
		targeted := 0
		for _, st := range nr.Steps {
			targeted += len(st.Partitions)
		}
		if len(nr.Steps) == 0 {
			status, finishedAt = store.BackfillSucceeded, nowUS
		}
		_, err := w.ExecContext(ctx, `INSERT INTO backfills (id, selection, from_day, to_day, mode, max_parallel, status,
			targeted, created_at, started_at, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			nb.ID.String(), nb.Selection, nullString(nb.From), nullString(nb.To), string(nb.Mode), nb.MaxParallel,
			string(status), targeted, nowUS, nowUS, finishedAt)
		if err != nil {
			return fmt.Errorf("record backfill: %w", err)
		}
		run, err := w.createRun(ctx, nr, now)
		if err != nil {
			return err
		}
		wake = run.Counts[store.StepReady] > 0
		b, err = readBackfill(ctx, w, nb.ID)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("create backfill %s: %w", nb.ID, err)
	}
	if wake {
		s.notify()
	}
	return b, nil
}

// GetBackfill returns a backfill with its progress.
func (s *Store) GetBackfill(ctx context.Context, id uuid.UUID) (*store.Backfill, error) {
	var b *store.Backfill
	err := s.inReadTx(ctx, func(tx *sql.Tx) error {
		var err error
		b, err = readBackfill(ctx, tx, id)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read backfill: %w", err)
	}
	return b, nil
}

// ListBackfills returns backfills, newest first, with their progress.
func (s *Store) ListBackfills(ctx context.Context, limit int) ([]store.Backfill, error) {
	switch {
	case limit <= 0:
		limit = defaultBackfillLimit
	case limit > maxBackfillLimit:
		limit = maxBackfillLimit
	}
	out := []store.Backfill{}
	err := s.inReadTx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT `+backfillColumns+` FROM backfills b
			ORDER BY b.created_at DESC, b.id DESC LIMIT ?`, limit)
		if err != nil {
			return err
		}
		for rows.Next() {
			b, err := scanBackfill(rows)
			if err != nil {
				rows.Close()
				return err
			}
			out = append(out, b)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for i := range out {
			if err := backfillProgress(ctx, tx, &out[i]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list backfills: %w", err)
	}
	return out, nil
}

// CancelBackfill cancels a backfill's runs and marks it canceled.
func (s *Store) CancelBackfill(ctx context.Context, id uuid.UUID) (*store.Backfill, error) {
	var (
		b    *store.Backfill
		wake bool
	)
	err := s.withWriteTx(ctx, func(w *writeTx) error {
		q := newSettler(w, s.now())
		var status string
		err := w.QueryRowContext(ctx, `SELECT status FROM backfills WHERE id = ?`, id.String()).Scan(&status)
		if errors.Is(err, sql.ErrNoRows) {
			return store.ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("read backfill: %w", err)
		}
		if status == string(store.BackfillRequested) || status == string(store.BackfillRunning) {
			if _, err := w.ExecContext(ctx, `UPDATE backfills SET canceled_at = coalesce(canceled_at, ?) WHERE id = ?`,
				q.nowUS, id.String()); err != nil {
				return fmt.Errorf("record the cancel: %w", err)
			}
			runs, err := backfillRuns(ctx, w, id)
			if err != nil {
				return err
			}
			for _, runID := range runs {
				if err := q.cancelRun(ctx, runID.String()); err != nil {
					return fmt.Errorf("cancel run %s: %w", runID, err)
				}
			}
			if err := q.settleRuns(ctx); err != nil {
				return err
			}
			// Its runs may all have ended before: settleRuns only looks at
			// backfills of runs it ends.
			if err := q.settleBackfill(ctx, id.String()); err != nil {
				return err
			}
		}
		b, err = readBackfill(ctx, w, id)
		wake = q.wake
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("cancel backfill %s: %w", id, err)
	}
	if wake {
		s.notify()
	}
	return b, nil
}

func scanBackfill(row scanner) (store.Backfill, error) {
	var (
		b                      store.Backfill
		id, mode, status       string
		fromDay, toDay         sql.NullString
		createdAt              int64
		finishedAt, canceledAt sql.NullInt64
	)
	err := row.Scan(&id, &b.Selection, &fromDay, &toDay, &mode, &b.MaxParallel, &status, &createdAt, &finishedAt, &canceledAt)
	if err != nil {
		return b, fmt.Errorf("read backfill: %w", err)
	}
	if b.ID, err = uuid.Parse(id); err != nil {
		return b, fmt.Errorf("read backfill: id %q: %w", id, err)
	}
	b.From, b.To = fromDay.String, toDay.String
	b.Mode, b.Status = store.BackfillMode(mode), store.BackfillStatus(status)
	b.CreatedAt, b.FinishedAt, b.CanceledAt = fromMicros(createdAt), nullTime(finishedAt), nullTime(canceledAt)
	return b, nil
}

// readBackfill reads a backfill with its progress, wrapping store.ErrNotFound
// when there is none.
func readBackfill(ctx context.Context, q querier, id uuid.UUID) (*store.Backfill, error) {
	b, err := scanBackfill(q.QueryRowContext(ctx, `SELECT `+backfillColumns+` FROM backfills b WHERE b.id = ?`, id.String()))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("backfill %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	if err := backfillProgress(ctx, q, &b); err != nil {
		return nil, err
	}
	return &b, nil
}

// backfillRuns lists a backfill's runs, oldest first.
func backfillRuns(ctx context.Context, q querier, id uuid.UUID) ([]uuid.UUID, error) {
	rows, err := q.QueryContext(ctx, `SELECT id FROM runs WHERE backfill_id = ? ORDER BY created_at, id`, id.String())
	if err != nil {
		return nil, fmt.Errorf("list runs of backfill %s: %w", id, err)
	}
	defer rows.Close()
	ids := []uuid.UUID{}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, fmt.Errorf("list runs of backfill %s: %w", id, err)
		}
		runID, err := uuid.Parse(s)
		if err != nil {
			return nil, fmt.Errorf("list runs of backfill %s: run id %q: %w", id, s, err)
		}
		ids = append(ids, runID)
	}
	return ids, rows.Err()
}

// backfillProgress fills a backfill's runs and its partitions per state.
func backfillProgress(ctx context.Context, q querier, b *store.Backfill) error {
	var err error
	if b.RunIDs, err = backfillRuns(ctx, q, b.ID); err != nil {
		return err
	}
	rows, err := q.QueryContext(ctx, `SELECT s.status, sum(s.partition_count) FROM runs r JOIN steps s ON s.run_id = r.id
		WHERE r.backfill_id = ? GROUP BY s.status`, b.ID.String())
	if err != nil {
		return fmt.Errorf("count partitions of backfill %s: %w", b.ID, err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			status string
			n      int
		)
		if err := rows.Scan(&status, &n); err != nil {
			return fmt.Errorf("count partitions of backfill %s: %w", b.ID, err)
		}
		b.Targeted += n
		switch store.StepStatus(status) {
		case store.StepSucceeded, store.StepSkippedFresh:
			b.Done += n
		case store.StepFailed, store.StepUpstreamFailed:
			b.Failed += n
		case store.StepRunning:
			b.InFlight += n
		case store.StepCanceled:
			b.Canceled += n
		case store.StepPending, store.StepReady:
			b.Pending += n
		}
	}
	return rows.Err()
}
