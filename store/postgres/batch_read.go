package postgres

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/freshetdev/freshet/store"
)

// The batch reads (store.BatchReader) of the API's loaders: one statement each,
// whatever the number of keys, reading the rows as the single reads do
// (Partition, RunSteps, Attempts) through the same columns and scans.
var _ store.BatchReader = (*Store)(nil)

// PartitionRecords returns the record of each (asset, partition), nil where the
// asset is unknown or nothing was recorded, in input order.
func (s *Store) PartitionRecords(ctx context.Context, keys []store.PartitionKey) ([]*store.PartitionRecord, error) {
	out := make([]*store.PartitionRecord, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	// Keys PostgreSQL cannot hold as text (a NUL byte, invalid UTF-8) name
	// nothing recorded: they stay out of the query, and nil.
	var (
		assetKeys, partitions []string
		positions             []int
	)
	for i, k := range keys {
		if isStorableText(string(k.Asset)) && isStorableText(k.Partition) {
			assetKeys, partitions = append(assetKeys, string(k.Asset)), append(partitions, k.Partition)
			positions = append(positions, i)
		}
	}
	if len(positions) == 0 {
		return out, nil
	}
	rows, err := s.pool.Query(ctx, `
		SELECT k.n, `+partitionColumns+`
		FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS k (key, partition_key, n)
		JOIN assets a ON a.key = k.key
		JOIN partition_state ps ON ps.asset_id = a.id AND ps.partition_key = k.partition_key`+partitionJoins,
		assetKeys, partitions)
	if err != nil {
		return nil, fmt.Errorf("read %d partition records: %w", len(keys), err)
	}
	var (
		n   int64
		row recordRow
	)
	_, err = pgx.ForEachRow(rows, append([]any{&n}, row.dest()...), func() error {
		i := positions[n-1]
		out[i] = row.record(keys[i].Asset, keys[i].Partition)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read %d partition records: %w", len(keys), err)
	}
	return out, nil
}

// StepsOfRuns returns the steps of each run in plan order, by the index on
// (run_id, ordinal).
func (s *Store) StepsOfRuns(ctx context.Context, runIDs []uuid.UUID) (map[uuid.UUID][]store.Step, error) {
	out := map[uuid.UUID][]store.Step{}
	if len(runIDs) == 0 {
		return out, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT `+stepColumns+stepFrom+`WHERE s.run_id = ANY($1::uuid[]) ORDER BY s.run_id, s.ordinal`,
		store.UniqueIDs(runIDs))
	if err != nil {
		return nil, fmt.Errorf("read steps of %d runs: %w", len(runIDs), err)
	}
	steps, err := scanSteps(rows)
	if err != nil {
		return nil, fmt.Errorf("read steps of %d runs: %w", len(runIDs), err)
	}
	for _, st := range steps {
		out[st.RunID] = append(out[st.RunID], st)
	}
	return out, nil
}

// AttemptsOf returns the attempts of each step, first first, by the primary key.
func (s *Store) AttemptsOf(ctx context.Context, stepIDs []uuid.UUID) (map[uuid.UUID][]store.Attempt, error) {
	out := map[uuid.UUID][]store.Attempt{}
	if len(stepIDs) == 0 {
		return out, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT `+attemptColumns+` FROM attempts WHERE step_id = ANY($1::uuid[])
		ORDER BY step_id, attempt`, store.UniqueIDs(stepIDs))
	if err != nil {
		return nil, fmt.Errorf("read attempts of %d steps: %w", len(stepIDs), err)
	}
	err = scanAttempts(rows, func(a store.Attempt) { out[a.StepID] = append(out[a.StepID], a) })
	if err != nil {
		return nil, fmt.Errorf("read attempts of %d steps: %w", len(stepIDs), err)
	}
	return out, nil
}
