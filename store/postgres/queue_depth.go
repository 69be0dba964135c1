package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/freshetdev/freshet/store"
)

// QueueDepth counts the runs and steps not ended, by status. The partial
// indexes on open runs and steps (runs_active, steps_open) hold exactly those
// rows, so the counts read the indexes, not the tables' history.
func (s *Store) QueueDepth(ctx context.Context) (*store.QueueDepth, error) {
	d := &store.QueueDepth{Runs: map[store.RunStatus]int{}, Steps: map[store.StepStatus]int{}}
	b := txBatch(readTx)
	b.Queue(`SELECT status, count(*) FROM runs WHERE status IN ('QUEUED', 'RUNNING') GROUP BY status`)
	b.Queue(`SELECT status, count(*) FROM steps WHERE status IN ('PENDING', 'READY', 'RUNNING') GROUP BY status`)
	err := s.batchTx(ctx, b, func(results pgx.BatchResults) error {
		var (
			status string
			n      int
		)
		rows, _ := results.Query()
		if _, err := pgx.ForEachRow(rows, []any{&status, &n}, func() error { d.Runs[store.RunStatus(status)] = n; return nil }); err != nil {
			return err
		}
		rows, _ = results.Query()
		_, err := pgx.ForEachRow(rows, []any{&status, &n}, func() error { d.Steps[store.StepStatus(status)] = n; return nil })
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("count the queue: %w", err)
	}
	return d, nil
}
