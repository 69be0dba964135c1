package postgres

import (
	"context"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/freshetdev/freshet/assets"
	"github.com/freshetdev/freshet/store"
)

// ReadRanges reads the recorded state of ranges of partitions in one snapshot and
// one round trip: the assets, their code lists and one range scan of
// partition_state per range, decoded as ReadState decodes them.
func (s *Store) ReadRanges(ctx context.Context, ranges []store.PartitionRange) ([]*store.AssetState, error) {
	out := make([]*store.AssetState, len(ranges))
	if len(ranges) == 0 {
		return out, nil
	}
	var keys []string
	seen := map[assets.Key]bool{}
	for k, r := range ranges {
		if r.Lo < 0 || r.Hi < r.Lo {
			return nil, fmt.Errorf("read ranges: range %d of %s: bad range [%d, %d)", k, r.Asset, r.Lo, r.Hi)
		}
		if !seen[r.Asset] && isStorableText(string(r.Asset)) {
			seen[r.Asset] = true
			keys = append(keys, string(r.Asset))
		}
		n := r.Hi - r.Lo
		out[k] = &store.AssetState{
			Flags: make([]store.PartitionFlags, n), InputSeq: make([]int64, n), DataChangedSeq: make([]int64, n),
			CodeVersion: make([]uint32, n), DepSet: make([]uint32, n), CodeVersions: []string{}, DepSets: [][]assets.Key{},
		}
	}
	filter := assetFilter{where: `a.key = ANY($1::text[])`, args: []any{keys}}
	b := txBatch(readTx)
	b.Queue(`SELECT a.id, a.key FROM assets a WHERE `+filter.where, filter.args...)
	b.Queue(codeListsSQL(filter), filter.args...)
	for _, r := range ranges {
		b.Queue(`SELECT ps.asset_id, ps.partition_idx, ps.success_seq, ps.failed, ps.input_seq, ps.data_changed_seq,
				ps.code_version_id, ps.dep_set_id
			FROM assets a JOIN partition_state ps ON ps.asset_id = a.id
			WHERE a.key = $1 AND ps.partition_idx >= $2 AND ps.partition_idx < $3`,
			string(r.Asset), clampInt32(r.Lo), clampInt32(r.Hi))
	}
	ids := map[assets.Key]int64{}
	lists := map[int64]*store.AssetState{}
	err := s.batchTx(ctx, b, func(results pgx.BatchResults) error {
		rows, _ := results.Query()
		var (
			id  int64
			key string
		)
		_, err := pgx.ForEachRow(rows, []any{&id, &key}, func() error {
			ids[assets.Key(key)] = id
			lists[id] = &store.AssetState{CodeVersions: []string{}, DepSets: [][]assets.Key{}}
			return nil
		})
		if err != nil {
			return fmt.Errorf("read assets: %w", err)
		}
		rows, _ = results.Query()
		if err := scanCodeLists(rows, func(id int64) *store.AssetState { return lists[id] }); err != nil {
			return err
		}
		for k, r := range ranges {
			st := out[k]
			rows, _ := results.Query()
			err := scanStateRows(rows, func(int64) *store.AssetState { return st }, func(st *store.AssetState, row *stateRow) {
				i := int(row.index) - r.Lo
				st.Flags[i] = row.flags
				st.InputSeq[i] = row.inputSeq
				st.DataChangedSeq[i] = row.dataChangedSeq
				st.CodeVersion[i] = row.codeVersion
				st.DepSet[i] = row.depSet
			})
			if err != nil {
				return fmt.Errorf("read partition state of %s: %w", r.Asset, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read ranges: %w", err)
	}
	for k, r := range ranges {
		id, ok := ids[r.Asset]
		if !ok {
			return nil, fmt.Errorf("read ranges: asset %s: %w", r.Asset, store.ErrNotFound)
		}
		out[k].CodeVersions, out[k].DepSets = slices.Clone(lists[id].CodeVersions), slices.Clone(lists[id].DepSets)
	}
	return out, nil
}
