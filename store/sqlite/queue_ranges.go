package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"slices"

	"github.com/freshetdev/freshet/assets"
	"github.com/freshetdev/freshet/store"
)

// ReadRanges reads the recorded state of ranges of partitions in one snapshot,
// each re-indexed from its Lo, with its asset's complete code version and dep set
// lists. It reads rows as ReadState does, by the (asset, partition index) index.
func (s *Store) ReadRanges(ctx context.Context, ranges []store.PartitionRange) ([]*store.AssetState, error) {
	for _, r := range ranges {
		if r.Lo < 0 || r.Hi < r.Lo {
			return nil, fmt.Errorf("read ranges: [%d, %d) of %s is not a range of partitions (indexes start at 0, lo <= hi)", r.Lo, r.Hi, r.Asset)
		}
	}
	out := make([]*store.AssetState, len(ranges))
	err := s.inReadTx(ctx, func(tx *sql.Tx) error {
		ids := make(map[assets.Key]int64)
		// lists holds one state per asset whose CodeVersions and DepSets every
		// range of the asset gets.
		lists := make(map[int64]*store.AssetState)
		for _, r := range ranges {
			if _, ok := ids[r.Asset]; ok {
				continue
			}
			id, err := lookupAssetID(ctx, tx, r.Asset)
			if err != nil {
				return err
			}
			ids[r.Asset] = id
			lists[id] = &store.AssetState{CodeVersions: []string{}, DepSets: [][]assets.Key{}}
		}
		if len(ids) > 0 {
			idList := make([]int64, 0, len(lists))
			for id := range lists {
				idList = append(idList, id)
			}
			if err := readInterned(ctx, tx, ` AND asset_id IN (SELECT value FROM json_each(?))`, []any{jsonArray(idList)}, lists); err != nil {
				return err
			}
		}
		for k, r := range ranges {
			n := r.Hi - r.Lo
			id := ids[r.Asset]
			st := &store.AssetState{
				Flags:          make([]store.PartitionFlags, n),
				InputSeq:       make([]int64, n),
				DataChangedSeq: make([]int64, n),
				CodeVersion:    make([]uint32, n),
				DepSet:         make([]uint32, n),
				CodeVersions:   slices.Clone(lists[id].CodeVersions),
				DepSets:        slices.Clone(lists[id].DepSets),
			}
			out[k] = st
			if n == 0 {
				continue
			}
			rows, err := tx.QueryContext(ctx, `SELECT asset_id, partition_idx, `+stateRowColumns+`
				FROM partition_state WHERE asset_id = ? AND partition_idx >= ? AND partition_idx < ?`, id, r.Lo, r.Hi)
			if err != nil {
				return fmt.Errorf("read partition state: %w", err)
			}
			var row stateRow
			for rows.Next() {
				if err := row.scan(rows); err != nil {
					rows.Close()
					return err
				}
				row.store(st, int(row.index)-r.Lo)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return fmt.Errorf("read partition state: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read ranges: %w", err)
	}
	return out, nil
}
