package postgres

import (
	"context"
	"encoding/binary"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/freshetdev/freshet/assets"
	"github.com/freshetdev/freshet/store"
)

// ReadState reads the columnar state of the given assets (all when keys is nil;
// removed assets never) in one REPEATABLE READ snapshot, consistent as of the
// returned Seq.
func (s *Store) ReadState(ctx context.Context, keys []assets.Key) (*store.Snapshot, error) {
	tx, seq, err := s.snapshotTx(ctx)
	if err != nil {
		return nil, fmt.Errorf("read state: %w", err)
	}
	defer rollback(tx)
	filter := assetFilter{where: `a.removed_seq IS NULL`}
	if keys != nil {
		names := make([]string, len(keys))
		for i, k := range keys {
			names[i] = string(k)
		}
		filter = assetFilter{where: `a.removed_seq IS NULL AND a.key = ANY($1::text[])`, args: []any{names}}
	}
	states, err := readFullStates(ctx, tx, filter)
	if err != nil {
		return nil, fmt.Errorf("read state: %w", err)
	}
	return &store.Snapshot{Seq: seq, Assets: states}, nil
}

// ReadChanges reads what changed after seq since, in one REPEATABLE READ
// snapshot: in full the assets that were added or whose partitions definition
// changed, and the changed partitions of the others.
func (s *Store) ReadChanges(ctx context.Context, since int64) (*store.Changes, error) {
	tx, seq, err := s.snapshotTx(ctx)
	if err != nil {
		return nil, fmt.Errorf("read changes since %d: %w", since, err)
	}
	defer rollback(tx)
	changes, err := readChanges(ctx, tx, since)
	if err != nil {
		return nil, fmt.Errorf("read changes since %d: %w", since, err)
	}
	changes.Since, changes.Seq = since, seq
	return changes, nil
}

func readChanges(ctx context.Context, tx pgx.Tx, since int64) (*store.Changes, error) {
	changes := &store.Changes{Reloaded: map[assets.Key]*store.AssetState{}, Updated: map[assets.Key]*store.AssetUpdate{}}
	rows, err := tx.Query(ctx, `
		SELECT DISTINCT dc.asset_id FROM definition_changes dc JOIN assets a ON a.id = dc.asset_id
		WHERE dc.seq > $1 AND a.removed_seq IS NULL
		  AND (dc.change = 'added' OR 'partitions' = ANY(string_to_array(dc.fields, ',')))`, since)
	if err != nil {
		return nil, err
	}
	reloaded, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("find re-defined assets: %w", err)
	}
	if len(reloaded) > 0 {
		filter := assetFilter{where: `a.removed_seq IS NULL AND a.id = ANY($1::bigint[])`, args: []any{reloaded}}
		if changes.Reloaded, err = readFullStates(ctx, tx, filter); err != nil {
			return nil, err
		}
	}
	if reloaded == nil {
		reloaded = []int64{}
	}

	// The other assets' changed partitions, by the index on last_seq. Right after
	// a bulk ingest the table has no statistics yet and PostgreSQL guesses a third
	// of it matches, so it would scan all of it (150 ms at 2M partitions) to find
	// a few hundred rows: the index is right whatever the statistics say.
	if _, err := tx.Exec(ctx, `SET LOCAL enable_seqscan = off`); err != nil {
		return nil, err
	}
	rows, err = tx.Query(ctx, `
		SELECT ps.asset_id, ps.partition_idx, ps.success_seq, ps.failed, ps.input_seq, ps.data_changed_seq,
		       ps.code_version_id, ps.dep_set_id
		FROM partition_state ps JOIN assets a ON a.id = ps.asset_id
		WHERE ps.last_seq > $1 AND ps.partition_idx IS NOT NULL AND a.removed_seq IS NULL
		  AND NOT ps.asset_id = ANY($2::bigint[])
		ORDER BY ps.asset_id, ps.partition_idx`, since, reloaded)
	if err != nil {
		return nil, err
	}
	updates := map[int64]*store.AssetUpdate{}
	var current *store.AssetUpdate
	err = scanStateRows(rows, func(assetID int64) *store.AssetState {
		current = updates[assetID]
		if current == nil {
			current = &store.AssetUpdate{AssetState: store.AssetState{CodeVersions: []string{}, DepSets: [][]assets.Key{}}}
			updates[assetID] = current
		}
		return &current.AssetState
	}, func(st *store.AssetState, r *stateRow) {
		current.Index = append(current.Index, int(r.index))
		st.Flags = append(st.Flags, r.flags)
		st.InputSeq = append(st.InputSeq, r.inputSeq)
		st.DataChangedSeq = append(st.DataChangedSeq, r.dataChangedSeq)
		st.CodeVersion = append(st.CodeVersion, r.codeVersion)
		st.DepSet = append(st.DepSet, r.depSet)
	})
	if err != nil {
		return nil, fmt.Errorf("read changed partitions: %w", err)
	}
	if _, err := tx.Exec(ctx, `SET LOCAL enable_seqscan = on`); err != nil {
		return nil, err
	}
	if len(updates) == 0 {
		return changes, nil
	}
	ids := make([]int64, 0, len(updates))
	for id := range updates {
		ids = append(ids, id)
	}
	filter := assetFilter{where: `a.id = ANY($1::bigint[])`, args: []any{ids}}
	keys, err := assetKeys(ctx, tx, filter)
	if err != nil {
		return nil, err
	}
	if err := readCodeLists(ctx, tx, filter, func(id int64) *store.AssetState { return &updates[id].AssetState }); err != nil {
		return nil, err
	}
	for id, u := range updates {
		changes.Updated[keys[id]] = u
	}
	return changes, nil
}

// assetFilter is a condition on the assets table (aliased a) and its arguments.
type assetFilter struct {
	where string
	args  []any
}

func assetKeys(ctx context.Context, tx pgx.Tx, filter assetFilter) (map[int64]assets.Key, error) {
	rows, err := tx.Query(ctx, `SELECT a.id, a.key FROM assets a WHERE `+filter.where, filter.args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	keys := map[int64]assets.Key{}
	for rows.Next() {
		var (
			id  int64
			key string
		)
		if err := rows.Scan(&id, &key); err != nil {
			return nil, err
		}
		keys[id] = assets.Key(key)
	}
	return keys, rows.Err()
}

// readFullStates reads the whole state of the assets that filter selects.
func readFullStates(ctx context.Context, tx pgx.Tx, filter assetFilter) (map[assets.Key]*store.AssetState, error) {
	keys, err := assetKeys(ctx, tx, filter)
	if err != nil {
		return nil, fmt.Errorf("read assets: %w", err)
	}
	byID := make(map[int64]*store.AssetState, len(keys))
	out := make(map[assets.Key]*store.AssetState, len(keys))
	for id, key := range keys {
		st := &store.AssetState{
			Flags: []store.PartitionFlags{}, InputSeq: []int64{}, DataChangedSeq: []int64{},
			CodeVersion: []uint32{}, DepSet: []uint32{}, CodeVersions: []string{}, DepSets: [][]assets.Key{},
		}
		byID[id], out[key] = st, st
	}
	if len(keys) == 0 {
		return out, nil
	}
	if err := readCodeLists(ctx, tx, filter, func(id int64) *store.AssetState { return byID[id] }); err != nil {
		return nil, err
	}
	// One pass over the rows in storage order: sorting 2M rows would cost more
	// than finding each row's asset, which changes rarely from one row to the next.
	rows, err := tx.Query(ctx, `
		SELECT ps.asset_id, ps.partition_idx, ps.success_seq, ps.failed, ps.input_seq, ps.data_changed_seq,
		       ps.code_version_id, ps.dep_set_id
		FROM partition_state ps JOIN assets a ON a.id = ps.asset_id
		WHERE ps.partition_idx IS NOT NULL AND `+filter.where, filter.args...)
	if err != nil {
		return nil, fmt.Errorf("read partition state: %w", err)
	}
	err = scanStateRows(rows, func(id int64) *store.AssetState { return byID[id] }, func(st *store.AssetState, r *stateRow) {
		i := int(r.index)
		if i >= len(st.Flags) {
			st.Grow(i + 1)
		}
		st.Flags[i] = r.flags
		st.InputSeq[i] = r.inputSeq
		st.DataChangedSeq[i] = r.dataChangedSeq
		st.CodeVersion[i] = r.codeVersion
		st.DepSet[i] = r.depSet
	})
	if err != nil {
		return nil, fmt.Errorf("read partition state: %w", err)
	}
	return out, nil
}

// readCodeLists fills CodeVersions and DepSets of the assets filter selects, each
// indexed by its per-asset id. stateOf returns an asset's state (nil: skip).
func readCodeLists(ctx context.Context, tx pgx.Tx, filter assetFilter, stateOf func(int64) *store.AssetState) error {
	rows, err := tx.Query(ctx, codeListsSQL(filter), filter.args...)
	if err != nil {
		return fmt.Errorf("read code versions: %w", err)
	}
	return scanCodeLists(rows, stateOf)
}

// codeListsSQL reads the code versions and dep sets of the assets filter selects,
// as (asset_id, id, value, is_dep_set) for scanCodeLists.
func codeListsSQL(filter assetFilter) string {
	return `
		SELECT cv.asset_id, cv.id, cv.code_version, false FROM code_versions cv JOIN assets a ON a.id = cv.asset_id
		WHERE ` + filter.where + `
		UNION ALL
		SELECT ds.asset_id, ds.id, ds.deps, true FROM dep_sets ds JOIN assets a ON a.id = ds.asset_id
		WHERE ` + filter.where
}

// scanCodeLists reads the rows of codeListsSQL into the states stateOf returns.
func scanCodeLists(rows pgx.Rows, stateOf func(int64) *store.AssetState) error {
	defer rows.Close()
	for rows.Next() {
		var (
			assetID  int64
			id       int32
			value    string
			isDepSet bool
		)
		if err := rows.Scan(&assetID, &id, &value, &isDepSet); err != nil {
			return fmt.Errorf("read code versions: %w", err)
		}
		st := stateOf(assetID)
		if st == nil || id < 0 {
			continue
		}
		if isDepSet {
			for int(id) >= len(st.DepSets) {
				st.DepSets = append(st.DepSets, nil)
			}
			st.DepSets[id] = store.SplitKeys(value)
		} else {
			for int(id) >= len(st.CodeVersions) {
				st.CodeVersions = append(st.CodeVersions, "")
			}
			st.CodeVersions[id] = value
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read code versions: %w", err)
	}
	return nil
}

// stateRow is one partition_state row as the columnar readers need it.
type stateRow struct {
	assetID        int64
	index          int32
	flags          store.PartitionFlags
	inputSeq       int64
	dataChangedSeq int64
	codeVersion    uint32
	depSet         uint32
}

// scanStateRows decodes rows of (asset_id, partition_idx, success_seq, failed,
// input_seq, data_changed_seq, code_version_id, dep_set_id) straight from their
// binary wire form, without allocating per row: ReadState goes through millions.
// stateOf returns the state the rows of an asset go to (nil: skip the asset); add
// puts one row into it.
func scanStateRows(rows pgx.Rows, stateOf func(int64) *store.AssetState, add func(*store.AssetState, *stateRow)) error {
	defer rows.Close()
	for i, fd := range rows.FieldDescriptions() {
		if fd.Format != pgx.BinaryFormatCode {
			return fmt.Errorf("column %d (%s) came in text format; the reader decodes binary only", i, fd.Name)
		}
	}
	var (
		r       stateRow
		current *store.AssetState
		have    bool
	)
	for rows.Next() {
		v := rows.RawValues()
		if len(v) != 8 {
			return fmt.Errorf("state row has %d columns, want 8", len(v))
		}
		assetID, err := wireInt(v[0])
		if err != nil {
			return err
		}
		if !have || assetID != r.assetID {
			current, have = stateOf(assetID), true
		}
		r.assetID = assetID
		if current == nil {
			continue
		}
		index, err := wireInt(v[1])
		if err != nil || index < 0 {
			return fmt.Errorf("partition index of asset %d: %v", assetID, errOr(err, "negative"))
		}
		r.index = int32(index)
		successSeq, err1 := wireInt(v[2])
		failed, err2 := wireBool(v[3])
		inputSeq, err3 := wireInt(v[4])
		dataChangedSeq, err4 := wireInt(v[5])
		codeVersion, err5 := wireNullableInt(v[6])
		depSet, err6 := wireNullableInt(v[7])
		for _, err := range [...]error{err1, err2, err3, err4, err5, err6} {
			if err != nil {
				return fmt.Errorf("asset %d partition %d: %w", assetID, index, err)
			}
		}
		r.flags = 0
		if successSeq != 0 {
			r.flags |= store.FlagMaterialized
		}
		if failed {
			r.flags |= store.FlagFailed
		}
		r.inputSeq, r.dataChangedSeq = inputSeq, dataChangedSeq
		r.codeVersion, r.depSet = uint32(codeVersion), uint32(depSet)
		add(current, &r)
	}
	return rows.Err()
}

func errOr(err error, msg string) string {
	if err != nil {
		return err.Error()
	}
	return msg
}

// wireInt decodes a binary int2, int4 or int8 value.
func wireInt(b []byte) (int64, error) {
	switch len(b) {
	case 8:
		return int64(binary.BigEndian.Uint64(b)), nil
	case 4:
		return int64(int32(binary.BigEndian.Uint32(b))), nil
	case 2:
		return int64(int16(binary.BigEndian.Uint16(b))), nil
	}
	if b == nil {
		return 0, fmt.Errorf("unexpected NULL")
	}
	return 0, fmt.Errorf("integer of %d bytes", len(b))
}

// wireNullableInt is wireInt with NULL read as 0.
func wireNullableInt(b []byte) (int64, error) {
	if b == nil {
		return 0, nil
	}
	return wireInt(b)
}

func wireBool(b []byte) (bool, error) {
	if len(b) != 1 {
		return false, fmt.Errorf("boolean of %d bytes", len(b))
	}
	return b[0] != 0, nil
}
