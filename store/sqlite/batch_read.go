package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/google/uuid"

	"github.com/freshetdev/freshet/store"
)

// The batch reads (store.BatchReader) of the API's loaders: the keys travel as
// one JSON array (json_each), so each read is one statement (two for steps,
// their deps) in one read transaction, whatever the number of keys, reading
// the rows as the single reads do (Partition, RunSteps, Attempts) through the
// same columns and scans.
var _ store.BatchReader = (*Store)(nil)

// PartitionRecords returns the record of each (asset, partition), nil where the
// asset is unknown or nothing was recorded, in input order.
func (s *Store) PartitionRecords(ctx context.Context, keys []store.PartitionKey) ([]*store.PartitionRecord, error) {
	out := make([]*store.PartitionRecord, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	pairs := make([][2]string, len(keys))
	for i, k := range keys {
		pairs[i] = [2]string{string(k.Asset), k.Partition}
	}
	err := s.inReadTx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT k.key, `+partitionColumns+`
			FROM json_each(?) k
			JOIN assets a ON a.key = k.value ->> 0
			JOIN partition_state p ON p.asset_id = a.id AND p.partition_key = k.value ->> 1`+partitionJoins,
			jsonArray(pairs))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				n   int
				rec store.PartitionRecord
			)
			if err := scanRecord(rows, &rec, &n); err != nil {
				return err
			}
			if n < 0 || n >= len(keys) {
				return fmt.Errorf("key index %d out of range", n)
			}
			rec.Asset, rec.Partition = keys[n].Asset, keys[n].Partition
			out[n] = &rec
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("read %d partition records: %w", len(keys), err)
	}
	return out, nil
}

// The queries of StepsOfRuns: the steps of the runs in a JSON array, by the
// index on (run_id, ordinal), and their deps, each step's in the order RunSteps
// gives them.
const (
	stepsOfRunsSQL = `SELECT ` + stepColumns + ` FROM json_each(?) j
		JOIN steps s ON s.run_id = j.value JOIN assets a ON a.id = s.asset_id
		ORDER BY j.key, s.ordinal`
	depsOfRunsSQL = `SELECT d.step_id, d.upstream_step_id, d.kind FROM json_each(?) j
		JOIN steps s ON s.run_id = j.value JOIN step_deps d ON d.step_id = s.id
		JOIN steps u ON u.id = d.upstream_step_id
		ORDER BY j.key, s.ordinal, d.kind, CASE d.kind WHEN 'run' THEN u.ordinal ELSE d.rowid END`
)

// StepsOfRuns returns the steps of each run in plan order.
func (s *Store) StepsOfRuns(ctx context.Context, runIDs []uuid.UUID) (map[uuid.UUID][]store.Step, error) {
	out := map[uuid.UUID][]store.Step{}
	if len(runIDs) == 0 {
		return out, nil
	}
	list := idList(runIDs)
	err := s.inReadTx(ctx, func(tx *sql.Tx) error {
		steps, err := loadSteps(ctx, tx, stepsOfRunsSQL, depsOfRunsSQL, list)
		for _, st := range steps {
			out[st.RunID] = append(out[st.RunID], st)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read steps of %d runs: %w", len(runIDs), err)
	}
	return out, nil
}

// AttemptsOf returns the attempts of each step, first first, by the primary key.
func (s *Store) AttemptsOf(ctx context.Context, stepIDs []uuid.UUID) (map[uuid.UUID][]store.Attempt, error) {
	out := map[uuid.UUID][]store.Attempt{}
	if len(stepIDs) == 0 {
		return out, nil
	}
	list := idList(stepIDs)
	err := s.inReadTx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT `+attemptColumns+` FROM attempts
			WHERE step_id IN (SELECT value FROM json_each(?)) ORDER BY step_id, attempt`, list)
		if err != nil {
			return err
		}
		return scanAttempts(rows, func(a store.Attempt) { out[a.StepID] = append(out[a.StepID], a) })
	})
	if err != nil {
		return nil, fmt.Errorf("read attempts of %d steps: %w", len(stepIDs), err)
	}
	return out, nil
}

// idList encodes ids, each once, as a JSON array of their stored (text) form.
func idList(ids []uuid.UUID) string {
	ids = store.UniqueIDs(ids)
	texts := make([]string, len(ids))
	for i, id := range ids {
		texts[i] = id.String()
	}
	return jsonArray(texts)
}

// EventPages returns the page Events gives for each query. In process, a read
// per query costs no round trip.
func (s *Store) EventPages(ctx context.Context, qs []store.EventQuery) ([]*store.EventPage, error) {
	pages := make([]*store.EventPage, len(qs))
	for i, q := range qs {
		page, err := s.Events(ctx, q)
		if err != nil {
			return nil, err
		}
		pages[i] = page
	}
	return pages, nil
}
