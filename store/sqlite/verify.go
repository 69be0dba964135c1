package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/freshetdev/freshet/assets"
	"github.com/freshetdev/freshet/store"
)

// Verify replays the event log and compares it with the stored partition state,
// in one snapshot. It streams: the log is read once, partition by partition, in
// step with the state table, so memory stays flat however long the log is.
func (s *Store) Verify(ctx context.Context) ([]store.Inconsistency, error) {
	var found []store.Inconsistency
	err := s.inReadTx(ctx, func(tx *sql.Tx) error {
		var err error
		if found, err = verifyClock(ctx, tx); err != nil {
			return err
		}
		v, err := newVerifier(ctx, tx)
		if err != nil {
			return err
		}
		more, err := v.run(ctx, tx)
		found = append(found, more...)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("verify catalog: %w", err)
	}
	return found, nil
}

// verifyClock checks that the clock is at or past every seq handed out.
func verifyClock(ctx context.Context, tx *sql.Tx) ([]store.Inconsistency, error) {
	var clock, events, changes int64
	err := tx.QueryRowContext(ctx, `SELECT
		(SELECT seq FROM catalog_clock WHERE id = 1),
		coalesce((SELECT max(seq) FROM events), 0),
		coalesce((SELECT max(seq) FROM definition_changes), 0)`).Scan(&clock, &events, &changes)
	if err != nil {
		return nil, fmt.Errorf("read catalog clock: %w", err)
	}
	var found []store.Inconsistency
	if events > clock {
		found = append(found, store.Inconsistency{Problem: fmt.Sprintf("the catalog clock is at %d but the event log holds seq %d", clock, events)})
	}
	if changes > clock {
		found = append(found, store.Inconsistency{Problem: fmt.Sprintf("the catalog clock is at %d but the definition history holds seq %d", clock, changes)})
	}
	return found, nil
}

// verifier holds what Verify knows of every asset.
type verifier struct {
	keys     map[int64]assets.Key
	indexers map[int64]*store.Indexer
}

func newVerifier(ctx context.Context, tx *sql.Tx) (*verifier, error) {
	v := &verifier{keys: make(map[int64]assets.Key), indexers: make(map[int64]*store.Indexer)}
	records, ids, err := readAssets(ctx, tx)
	if err != nil {
		return nil, err
	}
	for i := range records {
		v.keys[ids[i]] = records[i].Key
		indexer, err := store.NewIndexer(records[i].Partitions)
		if err != nil {
			return nil, fmt.Errorf("asset %s: %w", records[i].Key, err)
		}
		v.indexers[ids[i]] = indexer
	}
	return v, nil
}

// partitionID orders partitions as both queries do: by asset id, then partition
// key compared bytewise (SQLite's BINARY collation, and Go's string order).
type partitionID struct {
	assetID   int64
	partition string
}

func (a partitionID) compare(b partitionID) int {
	switch {
	case a.assetID < b.assetID:
		return -1
	case a.assetID > b.assetID:
		return 1
	}
	return strings.Compare(a.partition, b.partition)
}

// run merge-joins the log, ordered by (asset, partition, seq), with the state,
// ordered by (asset, partition).
func (v *verifier) run(ctx context.Context, tx *sql.Tx) ([]store.Inconsistency, error) {
	events, err := tx.QueryContext(ctx, `
		SELECT e.asset_id, e.partition_key, e.seq, e.kind, e.at, e.data_version, e.data_changed,
			e.input_seq, e.code_version, d.deps
		FROM events e LEFT JOIN dep_sets d ON d.asset_id = e.asset_id AND d.id = e.dep_set_id
		ORDER BY e.asset_id, e.partition_key, e.seq`)
	if err != nil {
		return nil, fmt.Errorf("read event log: %w", err)
	}
	defer events.Close()
	states, err := tx.QueryContext(ctx, `
		SELECT p.asset_id, p.partition_key, p.partition_idx, p.last_seq, p.success_seq, p.materialized_at,
			p.data_version, p.data_changed_seq, p.input_seq, p.failed, p.failed_seq, c.code_version, d.deps
		FROM partition_state p
		LEFT JOIN code_versions c ON c.asset_id = p.asset_id AND c.id = p.code_version_id
		LEFT JOIN dep_sets d ON d.asset_id = p.asset_id AND d.id = p.dep_set_id
		ORDER BY p.asset_id, p.partition_key`)
	if err != nil {
		return nil, fmt.Errorf("read partition state: %w", err)
	}
	defer states.Close()

	var (
		found []store.Inconsistency
		// The heads of the two cursors: the next event and state row not yet
		// consumed, and which partition each belongs to.
		nextEvent, nextState partitionID
		event                store.Event
		state                *store.PartitionRecord
		stateIndex           sql.NullInt64
		haveEvent, haveState bool
		partitionEvents      []store.Event
	)
	advanceEvent := func() error {
		haveEvent = false
		if !events.Next() {
			return events.Err()
		}
		haveEvent = true
		return scanVerifyEvent(events, &nextEvent, &event)
	}
	advanceRow := func() error {
		haveState = false
		if !states.Next() {
			return states.Err()
		}
		haveState = true
		state = &store.PartitionRecord{}
		return scanVerifyState(states, &nextState, state, &stateIndex)
	}
	if err := advanceEvent(); err != nil {
		return nil, fmt.Errorf("read event log: %w", err)
	}
	if err := advanceRow(); err != nil {
		return nil, fmt.Errorf("read partition state: %w", err)
	}
	for haveEvent || haveState {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		// The smaller of the two heads is the partition to check now.
		current := nextState
		if haveEvent && (!haveState || nextEvent.compare(nextState) < 0) {
			current = nextEvent
		}
		partitionEvents = partitionEvents[:0]
		for haveEvent && nextEvent.compare(current) == 0 {
			partitionEvents = append(partitionEvents, event)
			if err := advanceEvent(); err != nil {
				return nil, fmt.Errorf("read event log: %w", err)
			}
		}
		var stored *store.PartitionRecord
		if haveState && nextState.compare(current) == 0 {
			stored = state
			found = append(found, v.checkIndex(current, stateIndex)...)
			if err := advanceRow(); err != nil {
				return nil, fmt.Errorf("read partition state: %w", err)
			}
		}
		key := v.key(current.assetID)
		found = append(found, store.VerifyPartition(key, current.partition, partitionEvents, stored)...)
	}
	return found, nil
}

func (v *verifier) key(assetID int64) assets.Key {
	if key, ok := v.keys[assetID]; ok {
		return key
	}
	return assets.Key(fmt.Sprintf("(asset id %d)", assetID))
}

// checkIndex compares a state row's partition index with the one its key has
// under the asset's partitions definition.
func (v *verifier) checkIndex(p partitionID, stored sql.NullInt64) []store.Inconsistency {
	indexer := v.indexers[p.assetID]
	if indexer == nil {
		return []store.Inconsistency{{Asset: v.key(p.assetID), Partition: p.partition, Problem: "the state has a row for an asset the catalog does not know"}}
	}
	want, ok := indexer.Index(p.partition)
	switch {
	case ok && (!stored.Valid || stored.Int64 != int64(want)):
		return []store.Inconsistency{{Asset: v.key(p.assetID), Partition: p.partition,
			Problem: fmt.Sprintf("partition index is %s in the state but %d under the asset's partitions definition", showIndex(stored), want)}}
	case !ok && stored.Valid:
		return []store.Inconsistency{{Asset: v.key(p.assetID), Partition: p.partition,
			Problem: fmt.Sprintf("partition index is %d in the state but the key is not a partition under the asset's partitions definition", stored.Int64)}}
	}
	return nil
}

func showIndex(i sql.NullInt64) string {
	if !i.Valid {
		return "NULL"
	}
	return fmt.Sprint(i.Int64)
}

func scanVerifyEvent(rows *sql.Rows, id *partitionID, e *store.Event) error {
	var (
		kind              string
		at                int64
		dataVersion       sql.NullString
		inputSeq          sql.NullInt64
		codeVersion, deps sql.NullString
	)
	*e = store.Event{}
	if err := rows.Scan(&id.assetID, &id.partition, &e.Seq, &kind, &at, &dataVersion, &e.DataChanged,
		&inputSeq, &codeVersion, &deps); err != nil {
		return err
	}
	e.Kind = store.EventKind(kind)
	e.Partition = id.partition
	e.At = fromMicros(at)
	e.DataVersion = dataVersion.String
	e.InputSeq = inputSeq.Int64
	if codeVersion.Valid {
		e.Code = &store.Code{Version: codeVersion.String, Deps: store.SplitKeys(deps.String)}
	}
	return nil
}

func scanVerifyState(rows *sql.Rows, id *partitionID, r *store.PartitionRecord, index *sql.NullInt64) error {
	var (
		materializedAt    sql.NullInt64
		dataVersion       sql.NullString
		codeVersion, deps sql.NullString
	)
	if err := rows.Scan(&id.assetID, &id.partition, index, &r.LastSeq, &r.SuccessSeq, &materializedAt,
		&dataVersion, &r.DataChangedSeq, &r.InputSeq, &r.Failed, &r.FailedSeq, &codeVersion, &deps); err != nil {
		return err
	}
	r.Partition = id.partition
	if materializedAt.Valid {
		r.MaterializedAt = fromMicros(materializedAt.Int64)
	}
	r.DataVersion = dataVersion.String
	if codeVersion.Valid {
		r.Code = &store.Code{Version: codeVersion.String, Deps: store.SplitKeys(deps.String)}
	}
	return nil
}
