package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/freshetdev/freshet/assets"
	"github.com/freshetdev/freshet/store"
)

const assetColumns = `id, key, code_version, deps, partitions, is_source, definition, fingerprint,
	created_seq, updated_seq, removed_seq, created_at, updated_at`

// scanAsset reads one row of assetColumns.
func scanAsset(rows interface{ Scan(...any) error }) (int64, store.AssetRecord, error) {
	var (
		id                     int64
		rec                    store.AssetRecord
		deps                   string
		partitions             sql.NullString
		isSource               bool
		definition             string
		removedSeq             sql.NullInt64
		createdAt, updatedAt   int64
		createdSeq, updatedSeq int64
	)
	err := rows.Scan(&id, &rec.Key, &rec.CodeVersion, &deps, &partitions, &isSource, &definition, &rec.Fingerprint,
		&createdSeq, &updatedSeq, &removedSeq, &createdAt, &updatedAt)
	if err != nil {
		return 0, rec, fmt.Errorf("read asset: %w", err)
	}
	spec, err := store.UnmarshalPartitions([]byte(partitions.String))
	if err != nil {
		return 0, rec, fmt.Errorf("asset %s: %w", rec.Key, err)
	}
	rec.Deps = store.SplitKeys(deps)
	rec.Partitions = spec
	rec.IsSource = isSource
	rec.Definition = []byte(definition)
	rec.CreatedSeq, rec.UpdatedSeq, rec.RemovedSeq = createdSeq, updatedSeq, removedSeq.Int64
	rec.CreatedAt, rec.UpdatedAt = fromMicros(createdAt), fromMicros(updatedAt)
	return id, rec, nil
}

// readAssets returns every asset record by key, with its catalog id.
func readAssets(ctx context.Context, q querier) ([]store.AssetRecord, []int64, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+assetColumns+` FROM assets ORDER BY key`)
	if err != nil {
		return nil, nil, fmt.Errorf("read assets: %w", err)
	}
	defer rows.Close()
	var (
		records []store.AssetRecord
		ids     []int64
	)
	for rows.Next() {
		id, rec, err := scanAsset(rows)
		if err != nil {
			return nil, nil, err
		}
		records = append(records, rec)
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("read assets: %w", err)
	}
	return records, ids, nil
}

// Assets returns every asset the catalog knows, removed ones included, by key.
func (s *Store) Assets(ctx context.Context) ([]store.AssetRecord, error) {
	records, _, err := readAssets(ctx, s.read)
	if err != nil {
		return nil, err
	}
	if records == nil {
		records = []store.AssetRecord{}
	}
	return records, nil
}

// lookupAssetID returns the catalog id of key, wrapping store.ErrNotFound when the
// catalog has no such asset.
func lookupAssetID(ctx context.Context, q querier, key assets.Key) (int64, error) {
	var id int64
	err := q.QueryRowContext(ctx, `SELECT id FROM assets WHERE key = ?`, string(key)).Scan(&id)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return 0, fmt.Errorf("asset %s: %w", key, store.ErrNotFound)
	case err != nil:
		return 0, fmt.Errorf("look up asset %s: %w", key, err)
	}
	return id, nil
}

// SyncDefinitions records defs as the catalog's current definitions, in one
// transaction.
func (s *Store) SyncDefinitions(ctx context.Context, defs *assets.Definitions) (*store.SyncResult, error) {
	if defs == nil {
		return nil, errors.New("sync definitions: no definitions given")
	}
	res := &store.SyncResult{}
	err := s.inWriteTx(ctx, func(tx *sql.Tx) error {
		*res = store.SyncResult{}
		stored, ids, err := readAssets(ctx, tx)
		if err != nil {
			return err
		}
		idOf := make(map[assets.Key]int64, len(stored))
		for i := range stored {
			idOf[stored[i].Key] = ids[i]
		}
		actions := store.PlanSync(stored, defs)
		if len(actions) == 0 {
			// Nothing changed: the clock stays where it is.
			res.Seq, err = readClock(ctx, tx)
			return err
		}
		last, err := advanceClock(ctx, tx, len(actions))
		if err != nil {
			return err
		}
		first := last - int64(len(actions)) + 1
		now := micros(s.now())
		for i := range actions {
			a := &actions[i]
			seq := first + int64(i)
			id, err := writeSyncAction(ctx, tx, a, idOf, seq, now)
			if err != nil {
				return fmt.Errorf("sync asset %s: %w", a.Record.Key, err)
			}
			if a.Reindex {
				if err := reindex(ctx, tx, id, a.Record.Partitions, seq); err != nil {
					return fmt.Errorf("sync asset %s: %w", a.Record.Key, err)
				}
				res.Reindexed = append(res.Reindexed, a.Record.Key)
			}
			switch a.Change {
			case store.Added:
				res.Added = append(res.Added, a.Record.Key)
			case store.Changed:
				res.Changed = append(res.Changed, a.Record.Key)
			case store.Removed:
				res.Removed = append(res.Removed, a.Record.Key)
			}
		}
		res.Seq = last
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sync definitions: %w", err)
	}
	return res, nil
}

// writeSyncAction writes one planned change at seq: the asset row and the
// definition_changes row. It returns the asset's id.
func writeSyncAction(ctx context.Context, tx *sql.Tx, a *store.SyncAction, idOf map[assets.Key]int64, seq, now int64) (int64, error) {
	rec := &a.Record
	deps := store.JoinKeys(rec.Deps)
	partitions := nullBytes(store.MarshalPartitions(rec.Partitions))
	id, known := idOf[rec.Key]
	var err error
	switch {
	case a.Change == store.Added && !known:
		err = tx.QueryRowContext(ctx, `
			INSERT INTO assets (key, code_version, deps, partitions, partitions_seq, is_source, definition,
				fingerprint, created_seq, updated_seq, removed_seq, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?)
			RETURNING id`,
			string(rec.Key), rec.CodeVersion, deps, partitions, seq, boolInt(rec.IsSource), string(rec.Definition),
			rec.Fingerprint, seq, seq, now, now).Scan(&id)
	case a.Change == store.Added || a.Change == store.Changed:
		// A re-added asset keeps its id, created_seq and history; it is defined
		// again from seq on.
		_, err = tx.ExecContext(ctx, `
			UPDATE assets SET code_version = ?, deps = ?, partitions = ?,
				partitions_seq = CASE WHEN ? THEN ? ELSE partitions_seq END,
				is_source = ?, definition = ?, fingerprint = ?, updated_seq = ?, removed_seq = NULL, updated_at = ?
			WHERE id = ?`,
			rec.CodeVersion, deps, partitions, boolInt(a.Reindex), seq, boolInt(rec.IsSource), string(rec.Definition),
			rec.Fingerprint, seq, now, id)
	case a.Change == store.Removed:
		_, err = tx.ExecContext(ctx, `UPDATE assets SET removed_seq = ? WHERE id = ?`, seq, id)
	default:
		err = fmt.Errorf("unknown definition change %q", a.Change)
	}
	if err != nil {
		return 0, fmt.Errorf("write asset: %w", err)
	}
	_, err = tx.ExecContext(ctx, `
		INSERT INTO definition_changes (seq, asset_id, at, change, fields, code_version, deps, partitions, definition)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		seq, id, now, string(a.Change), strings.Join(a.Fields, ","), rec.CodeVersion, deps, partitions, string(rec.Definition))
	if err != nil {
		return 0, fmt.Errorf("record definition change: %w", err)
	}
	return id, nil
}

// reindex recomputes the partition index of every recorded partition of an asset
// under its new partitions definition; keys that are no longer partitions of it
// keep their row with a NULL index. Every row counts as changed at seq, so that
// incremental readers pick the new indexes up.
func reindex(ctx context.Context, tx *sql.Tx, assetID int64, spec *assets.PartitionsSpec, seq int64) error {
	indexer, err := store.NewIndexer(spec)
	if err != nil {
		return err
	}
	rows, err := tx.QueryContext(ctx, `SELECT partition_key FROM partition_state WHERE asset_id = ?`, assetID)
	if err != nil {
		return fmt.Errorf("re-index partitions: %w", err)
	}
	var keys []string
	for rows.Next() {
		var key string
		if err := rows.Scan(&key); err != nil {
			rows.Close()
			return fmt.Errorf("re-index partitions: %w", err)
		}
		keys = append(keys, key)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("re-index partitions: %w", err)
	}
	if len(keys) == 0 {
		return nil
	}
	update, err := tx.PrepareContext(ctx, `UPDATE partition_state SET partition_idx = ?, last_seq = ? WHERE asset_id = ? AND partition_key = ?`)
	if err != nil {
		return fmt.Errorf("re-index partitions: %w", err)
	}
	defer update.Close()
	for _, key := range keys {
		var idx any // NULL: no longer a partition
		if i, ok := indexer.Index(key); ok {
			idx = i
		}
		if _, err := update.ExecContext(ctx, idx, seq, assetID, key); err != nil {
			return fmt.Errorf("re-index partition %q: %w", key, err)
		}
	}
	return nil
}

func nullBytes(b []byte) any {
	if b == nil {
		return nil
	}
	return string(b)
}

// DefinitionHistory returns the definition changes of one asset, newest first, at
// most limit of them (0: all). An unknown asset wraps store.ErrNotFound.
func (s *Store) DefinitionHistory(ctx context.Context, key assets.Key, limit int) ([]store.DefinitionChange, error) {
	if limit <= 0 {
		limit = -1 // SQLite: no limit
	}
	var changes []store.DefinitionChange
	err := s.inReadTx(ctx, func(tx *sql.Tx) error {
		id, err := lookupAssetID(ctx, tx, key)
		if err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, `
			SELECT seq, at, change, fields, code_version, deps, partitions, definition
			FROM definition_changes WHERE asset_id = ? ORDER BY seq DESC LIMIT ?`, id, limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				c          = store.DefinitionChange{Asset: key}
				at         int64
				change     string
				fields     string
				deps       string
				partitions sql.NullString
				definition string
			)
			if err := rows.Scan(&c.Seq, &at, &change, &fields, &c.CodeVersion, &deps, &partitions, &definition); err != nil {
				return err
			}
			if c.Partitions, err = store.UnmarshalPartitions([]byte(partitions.String)); err != nil {
				return fmt.Errorf("change %d: %w", c.Seq, err)
			}
			c.At = fromMicros(at)
			c.Change = store.ChangeKind(change)
			if fields != "" {
				c.Fields = strings.Split(fields, ",")
			}
			c.Deps = store.SplitKeys(deps)
			c.Definition = []byte(definition)
			changes = append(changes, c)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("definition history of %s: %w", key, err)
	}
	return changes, nil
}
