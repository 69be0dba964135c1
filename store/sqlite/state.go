package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/freshetdev/freshet/assets"
	"github.com/freshetdev/freshet/store"
)

// ReadState reads the columnar state of the given assets (all when keys is nil)
// in one snapshot. Removed and unknown assets are left out.
func (s *Store) ReadState(ctx context.Context, keys []assets.Key) (*store.Snapshot, error) {
	snap := &store.Snapshot{Assets: make(map[assets.Key]*store.AssetState)}
	err := s.inReadTx(ctx, func(tx *sql.Tx) error {
		var err error
		if snap.Seq, err = readClock(ctx, tx); err != nil {
			return err
		}
		if keys != nil && len(keys) == 0 {
			return nil
		}
		filter, arg := "", any(nil)
		if keys != nil {
			filter, arg = ` AND key IN (SELECT value FROM json_each(?))`, jsonArray(keys)
		}
		targets, err := readTargets(ctx, tx, filter, arg)
		if err != nil {
			return err
		}
		snap.Assets, err = readFullStates(ctx, tx, targets, keys == nil)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read catalog state: %w", err)
	}
	return snap, nil
}

// stateTarget is an asset whose state is being read.
type stateTarget struct {
	id  int64
	key assets.Key
	// length is the length of its arrays: its highest recorded partition index + 1.
	length int
}

// readTargets lists the defined assets matching filter (an SQL condition on
// assets, with one argument or none) and how long their arrays are.
func readTargets(ctx context.Context, tx *sql.Tx, filter string, arg any) ([]stateTarget, error) {
	// The correlated max() is answered from the (asset_id, partition_idx) index
	// in one seek per asset.
	query := `SELECT id, key,
			coalesce((SELECT max(partition_idx) FROM partition_state p WHERE p.asset_id = assets.id), -1)
		FROM assets WHERE removed_seq IS NULL` + filter + ` ORDER BY id`
	var args []any
	if filter != "" {
		args = append(args, arg)
	}
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("read assets: %w", err)
	}
	defer rows.Close()
	var targets []stateTarget
	for rows.Next() {
		var t stateTarget
		var maxIndex int
		if err := rows.Scan(&t.id, &t.key, &maxIndex); err != nil {
			return nil, fmt.Errorf("read assets: %w", err)
		}
		t.length = maxIndex + 1
		targets = append(targets, t)
	}
	return targets, rows.Err()
}

// readFullStates reads the complete state of the targets. all says they are every
// defined asset, so whole tables can be scanned instead of looked up per asset.
func readFullStates(ctx context.Context, tx *sql.Tx, targets []stateTarget, all bool) (map[assets.Key]*store.AssetState, error) {
	out := make(map[assets.Key]*store.AssetState, len(targets))
	byID := make(map[int64]*store.AssetState, len(targets))
	ids := make([]int64, len(targets))
	for i, t := range targets {
		st := &store.AssetState{
			Flags:          make([]store.PartitionFlags, t.length),
			InputSeq:       make([]int64, t.length),
			DataChangedSeq: make([]int64, t.length),
			CodeVersion:    make([]uint32, t.length),
			DepSet:         make([]uint32, t.length),
			CodeVersions:   []string{},
			DepSets:        [][]assets.Key{},
		}
		out[t.key], byID[t.id], ids[i] = st, st, t.id
	}
	if len(targets) == 0 {
		return out, nil
	}
	filter, args := ``, []any(nil)
	if !all {
		filter, args = ` AND asset_id IN (SELECT value FROM json_each(?))`, []any{jsonArray(ids)}
	}
	if err := readInterned(ctx, tx, filter, args, byID); err != nil {
		return nil, err
	}
	// Rows are written into place by index, so any order will do: SQLite picks a
	// plain table scan for a whole catalog, an index search per asset otherwise.
	rows, err := tx.QueryContext(ctx, `
		SELECT asset_id, partition_idx, `+stateRowColumns+`
		FROM partition_state WHERE partition_idx >= 0`+filter, args...)
	if err != nil {
		return nil, fmt.Errorf("read partition state: %w", err)
	}
	defer rows.Close()
	var r stateRow
	for rows.Next() {
		if err := r.scan(rows); err != nil {
			return nil, err
		}
		st := byID[r.assetID]
		if st == nil || r.index >= int64(st.Len()) {
			continue // a removed asset's row, scanned with the whole table
		}
		r.store(st, int(r.index))
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read partition state: %w", err)
	}
	return out, nil
}

// stateRowColumns are the columns of a partition_state row the columnar state
// needs, after its asset id and partition index. Reading a whole catalog costs
// mostly per column and per conversion, so the flags and the two interned ids
// are packed into one integer each, and everything is scanned as int64.
const stateRowColumns = `(success_seq <> 0) | ((failed <> 0) << 1), input_seq, data_changed_seq,
	(coalesce(code_version_id, 0) << 32) | coalesce(dep_set_id, 0)`

// stateRow is one partition_state row as the columnar state needs it.
type stateRow struct {
	assetID, index int64
	// flags has bit 0 set when materialized, bit 1 when the latest attempt failed.
	flags                    int64
	inputSeq, dataChangedSeq int64
	codeAndDepSet            int64
}

func (r *stateRow) scan(rows *sql.Rows) error {
	if err := rows.Scan(&r.assetID, &r.index, &r.flags, &r.inputSeq, &r.dataChangedSeq, &r.codeAndDepSet); err != nil {
		return fmt.Errorf("read partition state: %w", err)
	}
	return nil
}

// store writes r at position i of st's arrays.
func (r *stateRow) store(st *store.AssetState, i int) {
	var f store.PartitionFlags
	if r.flags&1 != 0 {
		f |= store.FlagMaterialized
	}
	if r.flags&2 != 0 {
		f |= store.FlagFailed
	}
	st.Flags[i] = f
	st.InputSeq[i] = r.inputSeq
	st.DataChangedSeq[i] = r.dataChangedSeq
	st.CodeVersion[i] = uint32(r.codeAndDepSet >> 32)
	st.DepSet[i] = uint32(r.codeAndDepSet)
}

// readInterned fills the CodeVersions and DepSets lists of the assets in byID;
// filter restricts the asset ids scanned (with args), or is empty.
func readInterned(ctx context.Context, tx *sql.Tx, filter string, args []any, byID map[int64]*store.AssetState) error {
	for _, table := range []struct{ name, column string }{{"code_versions", "code_version"}, {"dep_sets", "deps"}} {
		rows, err := tx.QueryContext(ctx, `SELECT asset_id, id, `+table.column+` FROM `+table.name+
			` WHERE true`+filter+` ORDER BY asset_id, id`, args...)
		if err != nil {
			return fmt.Errorf("read %s: %w", table.name, err)
		}
		for rows.Next() {
			var (
				assetID int64
				id      int
				value   string
			)
			if err := rows.Scan(&assetID, &id, &value); err != nil {
				rows.Close()
				return fmt.Errorf("read %s: %w", table.name, err)
			}
			st := byID[assetID]
			if st == nil {
				continue
			}
			// Ids are dense from 0; should one be missing, its slot stays empty
			// rather than shifting every id after it.
			if table.name == "code_versions" {
				for len(st.CodeVersions) < id {
					st.CodeVersions = append(st.CodeVersions, "")
				}
				st.CodeVersions = append(st.CodeVersions, value)
			} else {
				for len(st.DepSets) < id {
					st.DepSets = append(st.DepSets, []assets.Key{})
				}
				st.DepSets = append(st.DepSets, store.SplitKeys(value))
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("read %s: %w", table.name, err)
		}
	}
	return nil
}

// ReadChanges reads what changed after seq since, in one snapshot.
func (s *Store) ReadChanges(ctx context.Context, since int64) (*store.Changes, error) {
	ch := &store.Changes{
		Since:    since,
		Reloaded: make(map[assets.Key]*store.AssetState),
		Updated:  make(map[assets.Key]*store.AssetUpdate),
	}
	err := s.inReadTx(ctx, func(tx *sql.Tx) error {
		var err error
		if ch.Seq, err = readClock(ctx, tx); err != nil {
			return err
		}
		if since >= ch.Seq {
			return nil
		}
		// Assets added (or re-added) or re-partitioned since: their old arrays no
		// longer apply, so they come back whole.
		targets, err := readTargets(ctx, tx, ` AND id IN (
			SELECT asset_id FROM definition_changes
			WHERE seq > ? AND (change = 'added' OR instr(','||fields||',', ',partitions,') > 0))`, since)
		if err != nil {
			return err
		}
		if ch.Reloaded, err = readFullStates(ctx, tx, targets, false); err != nil {
			return err
		}
		reloaded := make(map[int64]bool, len(targets))
		for _, t := range targets {
			reloaded[t.id] = true
		}
		ch.Updated, err = readUpdated(ctx, tx, since, reloaded)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read catalog changes since %d: %w", since, err)
	}
	return ch, nil
}

// readUpdated reads the partitions of defined assets whose state changed after
// since, skipping the assets in skip.
func readUpdated(ctx context.Context, tx *sql.Tx, since int64, skip map[int64]bool) (map[assets.Key]*store.AssetUpdate, error) {
	// Without statistics SQLite would rather scan the whole table in index order
	// than sort; the changes since a recent seq are few, so find them by last_seq.
	rows, err := tx.QueryContext(ctx, `
		SELECT p.asset_id, p.partition_idx, `+stateRowColumns+`
		FROM partition_state p INDEXED BY partition_state_changes JOIN assets a ON a.id = p.asset_id
		WHERE p.last_seq > ? AND p.partition_idx >= 0 AND a.removed_seq IS NULL
		ORDER BY p.asset_id, p.partition_idx`, since)
	if err != nil {
		return nil, fmt.Errorf("read changed partitions: %w", err)
	}
	byID := make(map[int64]*store.AssetUpdate)
	var r stateRow
	for rows.Next() {
		if err := r.scan(rows); err != nil {
			rows.Close()
			return nil, err
		}
		if skip[r.assetID] {
			continue
		}
		up := byID[r.assetID]
		if up == nil {
			up = &store.AssetUpdate{}
			byID[r.assetID] = up
		}
		up.Index = append(up.Index, int(r.index))
		up.Grow(len(up.Index))
		r.store(&up.AssetState, len(up.Index)-1)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read changed partitions: %w", err)
	}
	out := make(map[assets.Key]*store.AssetUpdate, len(byID))
	if len(byID) == 0 {
		return out, nil
	}
	ids := make([]int64, 0, len(byID))
	states := make(map[int64]*store.AssetState, len(byID))
	for id, up := range byID {
		ids = append(ids, id)
		up.CodeVersions, up.DepSets = []string{}, [][]assets.Key{}
		states[id] = &up.AssetState
	}
	if err := readInterned(ctx, tx, ` AND asset_id IN (SELECT value FROM json_each(?))`, []any{jsonArray(ids)}, states); err != nil {
		return nil, err
	}
	keys, err := tx.QueryContext(ctx, `SELECT id, key FROM assets WHERE id IN (SELECT value FROM json_each(?))`, jsonArray(ids))
	if err != nil {
		return nil, fmt.Errorf("read asset keys: %w", err)
	}
	defer keys.Close()
	for keys.Next() {
		var (
			id  int64
			key assets.Key
		)
		if err := keys.Scan(&id, &key); err != nil {
			return nil, fmt.Errorf("read asset keys: %w", err)
		}
		out[key] = byID[id]
	}
	return out, keys.Err()
}

// partitionColumns are the columns scanRecord reads: a partition_state row p with
// its code version c and dep set d (partitionJoins). Partition and
// PartitionRecords read records through them.
const partitionColumns = `p.partition_idx, p.last_seq, p.success_seq, p.materialized_at, p.data_version,
	p.data_changed_seq, p.input_seq, p.failed, p.failed_seq, c.code_version, d.deps`

// partitionJoins joins partition_state p with its code version and dep set.
const partitionJoins = `
	LEFT JOIN code_versions c ON c.asset_id = p.asset_id AND c.id = p.code_version_id
	LEFT JOIN dep_sets d ON d.asset_id = p.asset_id AND d.id = p.dep_set_id`

// scanRecord reads one row of partitionColumns, after the columns in before,
// into rec.
func scanRecord(row scanner, rec *store.PartitionRecord, before ...any) error {
	var (
		index          sql.NullInt64
		materializedAt sql.NullInt64
		dataVersion    sql.NullString
		codeVersion    sql.NullString
		deps           sql.NullString
	)
	err := row.Scan(append(before, &index, &rec.LastSeq, &rec.SuccessSeq, &materializedAt, &dataVersion,
		&rec.DataChangedSeq, &rec.InputSeq, &rec.Failed, &rec.FailedSeq, &codeVersion, &deps)...)
	if err != nil {
		return err
	}
	rec.Index = -1
	if index.Valid {
		rec.Index = int(index.Int64)
	}
	rec.MaterializedAt = time.Time{}
	if materializedAt.Valid {
		rec.MaterializedAt = fromMicros(materializedAt.Int64)
	}
	rec.DataVersion = dataVersion.String
	rec.Code = nil
	if codeVersion.Valid {
		rec.Code = &store.Code{Version: codeVersion.String, Deps: store.SplitKeys(deps.String)}
	}
	return nil
}

// Partition returns the recorded state of one partition; store.ErrNotFound
// (wrapped) when the asset is unknown or nothing was recorded for the partition.
func (s *Store) Partition(ctx context.Context, key assets.Key, partition string) (*store.PartitionRecord, error) {
	rec := &store.PartitionRecord{Asset: key, Partition: partition}
	err := s.inReadTx(ctx, func(tx *sql.Tx) error {
		id, err := lookupAssetID(ctx, tx, key)
		if err != nil {
			return err
		}
		err = scanRecord(tx.QueryRowContext(ctx, `SELECT `+partitionColumns+` FROM partition_state p`+partitionJoins+`
			WHERE p.asset_id = ? AND p.partition_key = ?`, id, partition), rec)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("partition %q of %s: %w", partition, key, store.ErrNotFound)
		case err != nil:
			return err
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read partition state: %w", err)
	}
	return rec, nil
}

// PartitionRanges returns the recorded state of partitions [lo, hi) of an asset
// as run-length ranges, in index order.
func (s *Store) PartitionRanges(ctx context.Context, key assets.Key, lo, hi int) ([]store.Range, error) {
	if lo < 0 || hi < lo {
		return nil, fmt.Errorf("partition ranges of %s: [%d, %d) is not a range of partitions (indexes start at 0, lo <= hi)", key, lo, hi)
	}
	b := store.NewRangeBuilder(lo, hi)
	err := s.inReadTx(ctx, func(tx *sql.Tx) error {
		id, err := lookupAssetID(ctx, tx, key)
		if err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, `
			SELECT partition_idx, success_seq <> 0, failed FROM partition_state
			WHERE asset_id = ? AND partition_idx >= ? AND partition_idx < ?
			ORDER BY partition_idx`, id, lo, hi)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				index                int
				materialized, failed bool
			)
			if err := rows.Scan(&index, &materialized, &failed); err != nil {
				return err
			}
			var f store.PartitionFlags
			if materialized {
				f |= store.FlagMaterialized
			}
			if failed {
				f |= store.FlagFailed
			}
			b.Add(index, store.RecordedOf(f))
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("partition ranges of %s: %w", key, err)
	}
	ranges := b.Ranges()
	if ranges == nil {
		ranges = []store.Range{}
	}
	return ranges, nil
}

// jsonArray encodes values as a JSON array, for json_each: one bound parameter
// however many values there are.
func jsonArray[T any](values []T) string {
	b, err := json.Marshal(values)
	if err != nil {
		panic(err) // keys and ints always encode
	}
	return string(b)
}
