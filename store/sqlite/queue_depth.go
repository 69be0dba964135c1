package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/freshetdev/freshet/store"
)

// QueueDepth counts the runs and steps not ended, by status.
func (s *Store) QueueDepth(ctx context.Context) (*store.QueueDepth, error) {
	d := &store.QueueDepth{Runs: map[store.RunStatus]int{}, Steps: map[store.StepStatus]int{}}
	count := func(tx *sql.Tx, query string, put func(status string, n int)) error {
		rows, err := tx.QueryContext(ctx, query)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				status string
				n      int
			)
			if err := rows.Scan(&status, &n); err != nil {
				return err
			}
			put(status, n)
		}
		return rows.Err()
	}
	err := s.inReadTx(ctx, func(tx *sql.Tx) error {
		if err := count(tx, `SELECT status, count(*) FROM runs WHERE status IN ('QUEUED', 'RUNNING') GROUP BY status`,
			func(st string, n int) { d.Runs[store.RunStatus(st)] = n }); err != nil {
			return err
		}
		return count(tx, `SELECT status, count(*) FROM steps WHERE status IN ('PENDING', 'READY', 'RUNNING') GROUP BY status`,
			func(st string, n int) { d.Steps[store.StepStatus(st)] = n })
	})
	if err != nil {
		return nil, fmt.Errorf("count the queue: %w", err)
	}
	return d, nil
}
