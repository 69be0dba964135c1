package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/freshetdev/freshet/assets"
	"github.com/freshetdev/freshet/store"
)

// assetColumns are the columns scanned by scanAsset.
const assetColumns = `id, key, code_version, deps, partitions, is_source, definition, fingerprint,
	created_seq, updated_seq, coalesce(removed_seq, 0), created_at, updated_at`

func scanAsset(row pgx.Row) (id int64, rec store.AssetRecord, err error) {
	var (
		key, deps        string
		partitions, def  []byte
		created, updated time.Time
	)
	err = row.Scan(&id, &key, &rec.CodeVersion, &deps, &partitions, &rec.IsSource, &def, &rec.Fingerprint,
		&rec.CreatedSeq, &rec.UpdatedSeq, &rec.RemovedSeq, &created, &updated)
	if err != nil {
		return 0, rec, err
	}
	rec.Key = assets.Key(key)
	rec.Deps = store.SplitKeys(deps)
	if rec.Partitions, err = store.UnmarshalPartitions(partitions); err != nil {
		return 0, rec, fmt.Errorf("asset %s: %w", key, err)
	}
	rec.Definition = def
	rec.CreatedAt, rec.UpdatedAt = created.UTC(), updated.UTC()
	return id, rec, nil
}

// Assets returns every asset the catalog knows, removed ones included, by key.
func (s *Store) Assets(ctx context.Context) ([]store.AssetRecord, error) {
	_, recs, err := readAssets(ctx, s.pool)
	if err != nil {
		return nil, fmt.Errorf("read assets: %w", err)
	}
	return recs, nil
}

type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// readAssets reads every asset record, ordered by key (byte order, as Go sorts),
// with their ids in the same order.
func readAssets(ctx context.Context, q querier) ([]int64, []store.AssetRecord, error) {
	rows, err := q.Query(ctx, `SELECT `+assetColumns+` FROM assets ORDER BY key COLLATE "C"`)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	var (
		ids  []int64
		recs = []store.AssetRecord{}
	)
	for rows.Next() {
		id, rec, err := scanAsset(rows)
		if err != nil {
			return nil, nil, err
		}
		ids = append(ids, id)
		recs = append(recs, rec)
	}
	return ids, recs, rows.Err()
}

// SyncDefinitions records defs as the catalog's current definitions. It runs in one
// transaction holding the catalog clock, so it is ordered with every Append: events
// appended before it were validated against the old definitions, events after it
// against the new ones. Each change takes one seq.
func (s *Store) SyncDefinitions(ctx context.Context, defs *assets.Definitions) (*store.SyncResult, error) {
	res, err := s.syncDefinitions(ctx, defs)
	if err != nil {
		return nil, fmt.Errorf("sync definitions: %w", err)
	}
	return res, nil
}

func (s *Store) syncDefinitions(ctx context.Context, defs *assets.Definitions) (*store.SyncResult, error) {
	if defs == nil {
		return nil, errors.New("no definitions given")
	}
	tx, err := s.pool.BeginTx(ctx, writeTx)
	if err != nil {
		return nil, err
	}
	defer rollback(tx)
	// Lock the clock before reading the assets, so no other sync or append changes
	// them between the read and the write. How many seqs to take is known only
	// after planning, so the lock comes first and the advance last.
	var watermark int64
	if err := tx.QueryRow(ctx, `SELECT seq FROM catalog_clock WHERE id = 1 FOR UPDATE`).Scan(&watermark); err != nil {
		return nil, fmt.Errorf("lock catalog clock: %w", err)
	}
	ids, stored, err := readAssets(ctx, tx)
	if err != nil {
		return nil, fmt.Errorf("read stored assets: %w", err)
	}
	idOf := make(map[assets.Key]int64, len(ids))
	for i, id := range ids {
		idOf[stored[i].Key] = id
	}
	actions := store.PlanSync(stored, defs)
	res := &store.SyncResult{Seq: watermark}
	if len(actions) == 0 {
		return res, nil
	}
	at := s.now().UTC().Truncate(time.Microsecond)
	for i := range actions {
		a := &actions[i]
		seq := watermark + int64(i) + 1
		id, err := writeSyncAction(ctx, tx, a, idOf, seq, at)
		if err != nil {
			return nil, fmt.Errorf("%s asset %s: %w", a.Change, a.Record.Key, err)
		}
		if a.Reindex {
			if err := reindex(ctx, tx, id, a.Record.Partitions, seq); err != nil {
				return nil, fmt.Errorf("re-index partitions of %s: %w", a.Record.Key, err)
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
	if res.Seq, err = advanceClock(ctx, tx, int64(len(actions))); err != nil {
		return nil, err
	}
	res.Seq += int64(len(actions))
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("commit: %w", err)
	}
	return res, nil
}

// writeSyncAction writes one planned change to assets and definition_changes and
// returns the asset's id.
func writeSyncAction(ctx context.Context, tx pgx.Tx, a *store.SyncAction, idOf map[assets.Key]int64, seq int64, at time.Time) (int64, error) {
	r := &a.Record
	deps := store.JoinKeys(r.Deps)
	partitions := store.MarshalPartitions(r.Partitions)
	id, known := idOf[r.Key]
	var err error
	switch {
	case a.Change == store.Added && !known:
		err = tx.QueryRow(ctx, `
			INSERT INTO assets (key, code_version, deps, partitions, partitions_seq, is_source, definition, fingerprint,
			                    created_seq, updated_seq, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $5, $5, $9, $9)
			RETURNING id`,
			string(r.Key), r.CodeVersion, deps, partitions, seq, r.IsSource, []byte(r.Definition), r.Fingerprint, at,
		).Scan(&id)
	case a.Change == store.Added:
		// Back after a removal: it is added again, so created_* name this change;
		// the history keeps the earlier life.
		_, err = tx.Exec(ctx, `
			UPDATE assets SET code_version = $2, deps = $3, partitions = $4,
				partitions_seq = CASE WHEN $5 THEN $6 ELSE partitions_seq END,
				is_source = $7, definition = $8, fingerprint = $9,
				created_seq = $6, updated_seq = $6, removed_seq = NULL, created_at = $10, updated_at = $10
			WHERE id = $1`,
			id, r.CodeVersion, deps, partitions, a.Reindex, seq, r.IsSource, []byte(r.Definition), r.Fingerprint, at)
	case a.Change == store.Changed:
		_, err = tx.Exec(ctx, `
			UPDATE assets SET code_version = $2, deps = $3, partitions = $4,
				partitions_seq = CASE WHEN $5 THEN $6 ELSE partitions_seq END,
				is_source = $7, definition = $8, fingerprint = $9, updated_seq = $6, updated_at = $10
			WHERE id = $1`,
			id, r.CodeVersion, deps, partitions, a.Reindex, seq, r.IsSource, []byte(r.Definition), r.Fingerprint, at)
	case a.Change == store.Removed:
		_, err = tx.Exec(ctx, `UPDATE assets SET removed_seq = $2 WHERE id = $1`, id, seq)
	default:
		err = fmt.Errorf("unknown change kind %q", a.Change)
	}
	if err != nil {
		return 0, err
	}
	_, err = tx.Exec(ctx, `
		INSERT INTO definition_changes (seq, asset_id, at, change, fields, code_version, deps, partitions, definition)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		seq, id, at, string(a.Change), strings.Join(a.Fields, ","), r.CodeVersion, deps, partitions, []byte(r.Definition))
	if err != nil {
		return 0, fmt.Errorf("record definition change: %w", err)
	}
	return id, nil
}

// reindex recomputes the partition index of every recorded partition of an asset
// under its new partitions definition (NULL when a key is no longer a partition)
// and stamps the rows with the change's seq, so incremental readers see them.
func reindex(ctx context.Context, tx pgx.Tx, assetID int64, spec *assets.PartitionsSpec, seq int64) error {
	indexer, err := store.NewIndexer(spec)
	if err != nil {
		return err
	}
	rows, err := tx.Query(ctx, `SELECT partition_key FROM partition_state WHERE asset_id = $1`, assetID)
	if err != nil {
		return err
	}
	var (
		keys    []string
		indexes []*int32
	)
	for rows.Next() {
		var key string
		if err := rows.Scan(&key); err != nil {
			rows.Close()
			return err
		}
		var idx *int32
		if i, ok := indexer.Index(key); ok {
			i32 := int32(i)
			idx = &i32
		}
		keys = append(keys, key)
		indexes = append(indexes, idx)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	if len(keys) == 0 {
		return nil
	}
	_, err = tx.Exec(ctx, `
		UPDATE partition_state ps SET partition_idx = u.idx, last_seq = $4
		FROM unnest($2::text[], $3::integer[]) AS u(partition_key, idx)
		WHERE ps.asset_id = $1 AND ps.partition_key = u.partition_key`,
		assetID, keys, indexes, seq)
	return err
}

// DefinitionHistory returns the definition changes of one asset, newest first, at
// most limit of them (0: all). An unknown asset is ErrNotFound.
func (s *Store) DefinitionHistory(ctx context.Context, key assets.Key, limit int) ([]store.DefinitionChange, error) {
	if limit < 0 {
		return nil, fmt.Errorf("definition history of %s: negative limit %d", key, limit)
	}
	var assetID int64
	if err := s.pool.QueryRow(ctx, `SELECT id FROM assets WHERE key = $1`, string(key)).Scan(&assetID); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, fmt.Errorf("definition history of %s: asset %w", key, store.ErrNotFound)
		}
		return nil, fmt.Errorf("definition history of %s: %w", key, err)
	}
	var lim *int
	if limit > 0 {
		lim = &limit
	}
	rows, err := s.pool.Query(ctx, `
		SELECT seq, at, change, fields, code_version, deps, partitions, definition
		FROM definition_changes WHERE asset_id = $1 ORDER BY seq DESC LIMIT $2`, assetID, lim)
	if err != nil {
		return nil, fmt.Errorf("definition history of %s: %w", key, err)
	}
	defer rows.Close()
	out := []store.DefinitionChange{}
	for rows.Next() {
		c := store.DefinitionChange{Asset: key}
		var (
			change, fields, deps string
			partitions, def      []byte
		)
		if err := rows.Scan(&c.Seq, &c.At, &change, &fields, &c.CodeVersion, &deps, &partitions, &def); err != nil {
			return nil, fmt.Errorf("definition history of %s: %w", key, err)
		}
		c.At = c.At.UTC()
		c.Change = store.ChangeKind(change)
		if fields != "" {
			c.Fields = strings.Split(fields, ",")
		}
		c.Deps = store.SplitKeys(deps)
		if c.Partitions, err = store.UnmarshalPartitions(partitions); err != nil {
			return nil, fmt.Errorf("definition history of %s: %w", key, err)
		}
		c.Definition = def
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("definition history of %s: %w", key, err)
	}
	return out, nil
}
