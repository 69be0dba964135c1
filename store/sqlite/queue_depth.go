package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/google/uuid"

	"github.com/freshetdev/freshet/assets"
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

// InFlight lists the partitions held by steps not ended.
func (s *Store) InFlight(ctx context.Context) ([]store.InFlightPartition, error) {
	out := []store.InFlightPartition{}
	err := s.inReadTx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT a.key, ip.partition_key, s.id, s.status
			FROM inflight_partitions ip JOIN steps s ON s.id = ip.step_id JOIN assets a ON a.id = ip.asset_id
			ORDER BY a.key, ip.partition_key`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				p      store.InFlightPartition
				key    string
				stepID string
				status string
			)
			if err := rows.Scan(&key, &p.Partition, &stepID, &status); err != nil {
				return err
			}
			if p.StepID, err = uuid.Parse(stepID); err != nil {
				return fmt.Errorf("step id %q: %w", stepID, err)
			}
			p.Asset, p.Status = assets.Key(key), store.StepStatus(status)
			out = append(out, p)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("read the partitions in flight: %w", err)
	}
	return out, nil
}
