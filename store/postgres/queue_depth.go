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

// InFlight lists the partitions held by steps not ended.
func (s *Store) InFlight(ctx context.Context) ([]store.InFlightPartition, error) {
	rows, err := s.pool.Query(ctx, `SELECT a.key, ip.partition_key, s.id, s.status
		FROM inflight_partitions ip JOIN steps s ON s.id = ip.step_id JOIN assets a ON a.id = ip.asset_id
		ORDER BY a.key, ip.partition_key`)
	if err != nil {
		return nil, fmt.Errorf("read the partitions in flight: %w", err)
	}
	out := []store.InFlightPartition{}
	var p store.InFlightPartition
	_, err = pgx.ForEachRow(rows, []any{&p.Asset, &p.Partition, &p.StepID, &p.Status}, func() error {
		out = append(out, p)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read the partitions in flight: %w", err)
	}
	return out, nil
}
