package materialize

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/freshetdev/freshet/graph"
	"github.com/freshetdev/freshet/lineage"
	"github.com/freshetdev/freshet/store"
)

// AssetFreshness is one asset's freshness as evaluated now.
type AssetFreshness struct {
	Asset int // graph node
	lineage.Freshness
	// LastMaterializedAt is when the newest success of the asset was recorded
	// (zero: never).
	LastMaterializedAt time.Time
}

// EvaluateFreshness evaluates the freshness policy of every asset of g that has
// one, over the catalog state st, at now. The state says which partitions
// succeeded, not when: the time of each asset's newest success is read in one
// batch.
func EvaluateFreshness(ctx context.Context, r store.BatchReader, g *graph.Graph, st *State, now time.Time) ([]AssetFreshness, error) {
	var (
		out  []AssetFreshness
		ins  []lineage.FreshnessInput
		keys []store.PartitionKey
		of   []int // the entry of out each key is for
	)
	for a := range g.Len() {
		asset := g.Asset(a)
		if asset.Freshness == nil {
			continue
		}
		flags := st.Assets[a].Flags
		in := lineage.FreshnessInput{Count: 1, Materialized: func(i int) bool { return i < len(flags) && flags[i]&FlagMaterialized != 0 }}
		key, newest := "", -1
		if parts := asset.Partitions; parts != nil {
			in.Count = parts.Count(now)
			for i := min(in.Count, len(flags)) - 1; i >= 0; i-- {
				if in.Materialized(i) {
					newest, key = i, parts.Key(i)
					break
				}
			}
		} else if in.Materialized(0) {
			newest = 0
		}
		if newest >= 0 {
			keys = append(keys, store.PartitionKey{Asset: asset.Key, Partition: key})
			of = append(of, len(out))
		}
		out = append(out, AssetFreshness{Asset: a})
		ins = append(ins, in)
	}
	if len(keys) > 0 {
		recs, err := r.PartitionRecords(ctx, keys)
		if err != nil {
			return nil, fmt.Errorf("read when the assets were last materialized: %w", err)
		}
		for k, rec := range recs {
			if rec != nil && rec.SuccessSeq > 0 {
				ins[of[k]].LastMaterializedAt = rec.MaterializedAt
				out[of[k]].LastMaterializedAt = rec.MaterializedAt
			}
		}
	}
	for i := range out {
		out[i].Freshness = lineage.EvaluateFreshness(g.Asset(out[i].Asset), ins[i], now)
	}
	return out, nil
}

// LagSeconds is the asset's lag in seconds when the evaluation knows it (a
// status other than UNKNOWN, with a data time or a lag), nil otherwise.
func (f AssetFreshness) LagSeconds() *float64 {
	if f.Status == lineage.FreshnessUnknown || f.Lag <= 0 && f.DataTime.IsZero() {
		return nil
	}
	lag := f.Lag.Seconds()
	return &lag
}

// freshnessRank orders statuses worst first.
var freshnessRank = map[lineage.FreshnessStatus]int{lineage.FreshnessFail: 0, lineage.FreshnessWarn: 1, lineage.FreshnessUnknown: 2, lineage.FreshnessPass: 3}

// SortWorstFirst orders evaluations as a freshness board shows them: FAIL,
// WARN, UNKNOWN, PASS, the most late first, then in graph order.
func SortWorstFirst(fs []AssetFreshness) {
	slices.SortFunc(fs, func(a, b AssetFreshness) int {
		if ra, rb := freshnessRank[a.Status], freshnessRank[b.Status]; ra != rb {
			return ra - rb
		}
		if a.Lag != b.Lag {
			return cmp.Compare(b.Lag, a.Lag)
		}
		return a.Asset - b.Asset
	})
}
