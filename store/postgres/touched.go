package postgres

import (
	"context"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/freshetdev/freshet/store"
)

// stagingThreshold is the number of existing state rows from which an Append
// updates them through a staging table filled with COPY; below it, a pipelined
// batch of single-row UPDATEs is cheaper than creating the table.
const stagingThreshold = 256

var stateColumnNames = []string{"asset_id", "partition_key", "partition_idx", "last_seq", "success_seq",
	"materialized_at", "data_version", "data_changed_seq", "input_seq", "code_version_id", "dep_set_id",
	"failed", "failed_seq"}

const (
	insertStateSQL = `INSERT INTO partition_state (asset_id, partition_key, partition_idx, last_seq, success_seq,
		materialized_at, data_version, data_changed_seq, input_seq, code_version_id, dep_set_id, failed, failed_seq)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`
	updateStateSQL = `UPDATE partition_state SET partition_idx = $3, last_seq = $4, success_seq = $5,
		materialized_at = $6, data_version = $7, data_changed_seq = $8, input_seq = $9,
		code_version_id = $10, dep_set_id = $11, failed = $12, failed_seq = $13
		WHERE asset_id = $1 AND partition_key = $2`
	// The staging table for bulk updates of existing state rows; it lives until
	// the transaction ends.
	createStateStagingSQL = `CREATE TEMP TABLE partition_state_staging
		(LIKE partition_state INCLUDING DEFAULTS) ON COMMIT DROP`
	updateStateFromStagingSQL = `UPDATE partition_state ps SET partition_idx = u.partition_idx,
		last_seq = u.last_seq, success_seq = u.success_seq, materialized_at = u.materialized_at,
		data_version = u.data_version, data_changed_seq = u.data_changed_seq, input_seq = u.input_seq,
		code_version_id = u.code_version_id, dep_set_id = u.dep_set_id, failed = u.failed, failed_seq = u.failed_seq
		FROM partition_state_staging u
		WHERE ps.asset_id = u.asset_id AND ps.partition_key = u.partition_key`
)

// partitionKey names one (asset, partition).
type partitionKey struct {
	assetID   int64
	partition string
}

// partitionRow is the state of one touched partition while an Append folds its
// events into it.
type partitionRow struct {
	partitionKey
	index   int32
	rec     store.PartitionRecord
	hasCode bool
	code    codeIDs
	exists  bool // a row is stored already: update it rather than insert
}

type touchedPartitions struct {
	rows  []partitionRow
	index map[partitionKey]int
}

// rangeGap is the widest run of untouched partition indexes that loadTouched reads
// through rather than starting a new range.
const rangeGap = 16

// loadTouched reads the stored state of every partition the events change. It
// asks by index range on (asset_id, partition_idx), not key by key: a bulk load
// touches long runs of consecutive partitions, and one range costs the server one
// index descent instead of one per key. (Under the current definition a key and
// its index are one-to-one, and re-indexing on a definitions change keeps stored
// indexes current.)
func loadTouched(ctx context.Context, tx pgx.Tx, prepared []store.PreparedEvent) (*touchedPartitions, error) {
	t := &touchedPartitions{index: make(map[partitionKey]int)}
	byAsset := map[int64][]int32{}
	for i := range prepared {
		p := &prepared[i]
		if !p.Kind.Touches() {
			continue
		}
		k := partitionKey{p.AssetID, p.Partition}
		if _, ok := t.index[k]; ok {
			continue
		}
		t.index[k] = len(t.rows)
		t.rows = append(t.rows, partitionRow{partitionKey: k})
		byAsset[k.assetID] = append(byAsset[k.assetID], int32(p.Index))
	}
	if len(t.rows) == 0 {
		return t, nil
	}
	var rangeAssets []int64
	var rangeLo, rangeHi []int32
	for assetID, indexes := range byAsset {
		slices.Sort(indexes)
		lo := indexes[0]
		for i := 1; i <= len(indexes); i++ {
			if i == len(indexes) || indexes[i]-indexes[i-1] > rangeGap {
				rangeAssets, rangeLo, rangeHi = append(rangeAssets, assetID), append(rangeLo, lo), append(rangeHi, indexes[i-1])
				if i < len(indexes) {
					lo = indexes[i]
				}
			}
		}
	}
	rows, err := tx.Query(ctx, `
		SELECT ps.asset_id, ps.partition_key, ps.success_seq, ps.materialized_at, ps.data_version,
		       ps.data_changed_seq, ps.input_seq, ps.code_version_id, ps.dep_set_id, ps.failed, ps.failed_seq, ps.last_seq
		FROM unnest($1::bigint[], $2::integer[], $3::integer[]) AS r(asset_id, lo, hi)
		JOIN partition_state ps ON ps.asset_id = r.asset_id AND ps.partition_idx BETWEEN r.lo AND r.hi`,
		rangeAssets, rangeLo, rangeHi)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			k              partitionKey
			r              store.PartitionRecord
			materializedAt pgtype.Timestamptz
			dataVersion    pgtype.Text
			codeID, depID  pgtype.Int4
		)
		if err := rows.Scan(&k.assetID, &k.partition, &r.SuccessSeq, &materializedAt, &dataVersion,
			&r.DataChangedSeq, &r.InputSeq, &codeID, &depID, &r.Failed, &r.FailedSeq, &r.LastSeq); err != nil {
			return nil, err
		}
		i, touched := t.index[k]
		if !touched {
			continue // inside a range, but no event for it
		}
		r.MaterializedAt = materializedAt.Time.UTC()
		r.DataVersion = dataVersion.String
		row := &t.rows[i]
		row.rec = r
		row.exists = true
		row.hasCode = codeID.Valid && depID.Valid
		row.code = codeIDs{version: codeID.Int32, deps: depID.Int32}
	}
	return t, rows.Err()
}

// fold applies the events, in seq order, to the state of their partitions; it sets
// each event's DataChanged.
func (t *touchedPartitions) fold(prepared []store.PreparedEvent, codes []codeIDs) {
	for i := range prepared {
		p := &prepared[i]
		if !p.Kind.Touches() {
			continue
		}
		row := &t.rows[t.index[partitionKey{p.AssetID, p.Partition}]]
		row.rec.Apply(&p.Event)
		row.index = int32(p.Index)
		switch p.Kind {
		case store.Materialization:
			row.hasCode, row.code = true, codes[i]
		case store.Observation:
			row.hasCode = false // Apply records no code for an observation
		}
	}
}

// write inserts the new state rows and updates the existing ones.
func (t *touchedPartitions) write(ctx context.Context, tx pgx.Tx) error {
	var inserts, updates []*partitionRow
	for i := range t.rows {
		if t.rows[i].exists {
			updates = append(updates, &t.rows[i])
		} else {
			inserts = append(inserts, &t.rows[i])
		}
	}
	// No other writer runs (the clock lock), so the rows known not to exist can
	// be copied straight in.
	err := copyIn(ctx, tx, "partition_state", stateColumnNames, len(inserts), func(i int, r *copyRow) {
		encodeState(inserts[i], r)
	})
	if err != nil {
		return err
	}
	if len(updates) == 0 {
		return nil
	}
	if len(updates) < stagingThreshold {
		batch := &pgx.Batch{}
		for _, row := range updates {
			batch.Queue(updateStateSQL, stateValues(row)...)
		}
		return tx.SendBatch(ctx, batch).Close()
	}
	// Many updates: stage them with COPY and update with one join.
	if _, err := tx.Exec(ctx, createStateStagingSQL); err != nil {
		return err
	}
	err = copyIn(ctx, tx, "partition_state_staging", stateColumnNames, len(updates), func(i int, r *copyRow) {
		encodeState(updates[i], r)
	})
	if err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, updateStateFromStagingSQL); err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `DROP TABLE partition_state_staging`)
	return err
}

// encodeState writes a state row's columns, in stateColumnNames order.
func encodeState(row *partitionRow, r *copyRow) {
	rec := &row.rec
	r.int8(row.assetID)
	r.text(row.partition)
	r.int4(row.index)
	r.int8(rec.LastSeq)
	r.int8(rec.SuccessSeq)
	if rec.SuccessSeq != 0 {
		r.timestamptz(rec.MaterializedAt)
		r.text(rec.DataVersion)
	} else {
		r.null()
		r.null()
	}
	r.int8(rec.DataChangedSeq)
	r.int8(rec.InputSeq)
	if row.hasCode {
		r.int4(row.code.version)
		r.int4(row.code.deps)
	} else {
		r.null()
		r.null()
	}
	r.bool(rec.Failed)
	r.int8(rec.FailedSeq)
}

// stateValues returns a state row's column values, in stateColumnNames order.
func stateValues(row *partitionRow) []any {
	rec := &row.rec
	vals := []any{row.assetID, row.partition, row.index, rec.LastSeq, rec.SuccessSeq, nil, nil,
		rec.DataChangedSeq, rec.InputSeq, nil, nil, rec.Failed, rec.FailedSeq}
	if rec.SuccessSeq != 0 {
		vals[5], vals[6] = rec.MaterializedAt, rec.DataVersion
	}
	if row.hasCode {
		vals[9], vals[10] = row.code.version, row.code.deps
	}
	return vals
}
