package materialize

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/freshetdev/freshet/graph"
	"github.com/freshetdev/freshet/store"
)

// stepRanges returns the partition index range [lo, hi) of a step's keys under its
// asset's current partitions definition.
func stepRanges(g *graph.Graph, a int, keys []string) (lo, hi int, err error) {
	parts := g.Asset(a).Partitions
	if parts == nil {
		return 0, 1, nil
	}
	if len(keys) == 0 {
		return 0, 0, fmt.Errorf("step of %s has no partitions", g.Asset(a).Key)
	}
	if lo, err = parts.Index(keys[0]); err != nil {
		return 0, 0, fmt.Errorf("partition %q of %s: %w", keys[0], g.Asset(a).Key, err)
	}
	last, err := parts.Index(keys[len(keys)-1])
	if err != nil {
		return 0, 0, fmt.Errorf("partition %q of %s: %w", keys[len(keys)-1], g.Asset(a).Key, err)
	}
	if last-lo+1 != len(keys) {
		return 0, 0, fmt.Errorf("partitions %s…%s of %s are not %d consecutive partitions", keys[0], keys[len(keys)-1], g.Asset(a).Key, len(keys))
	}
	return lo, last + 1, nil
}

// stillFresh is the check a step gets just before it starts (DESIGN §1): it reads
// the recorded state of the step's partitions and of every upstream partition
// they map to, and reports whether every partition of the step is already fresh:
// materialized with the current code version and set of upstream assets, and no
// upstream partition's data changed after it was read. A step planned because an
// upstream was stale is then skipped when that upstream was rebuilt with the same
// data version, and a step that joined one of another run finds its work done.
//
// Upstream partitions that are stale or missing do not count here: the run's
// order already had their steps finish first.
func stillFresh(ctx context.Context, q store.Queue, g *graph.Graph, a int, keys []string, now time.Time) (bool, error) {
	asset := g.Asset(a)
	lo, hi, err := stepRanges(g, a, keys)
	if err != nil {
		return false, err
	}
	edges := g.In(a)
	ranges := make([]store.PartitionRange, 0, 1+len(edges))
	ranges = append(ranges, store.PartitionRange{Asset: asset.Key, Lo: lo, Hi: hi})
	upLo := make([]int, len(edges))
	for k, eid := range edges {
		e := g.Edge(eid)
		upCount := upstreamCount(g, e.From, now)
		l, _ := e.Range(lo, upCount)
		_, h := e.Range(hi-1, upCount)
		if l > h {
			l, h = 0, -1
		}
		upLo[k] = l
		ranges = append(ranges, store.PartitionRange{Asset: g.Asset(e.From).Key, Lo: l, Hi: h + 1})
	}
	states, err := q.ReadRanges(ctx, ranges)
	if err != nil {
		return false, fmt.Errorf("read the state of %s before it starts: %w", asset.Key, err)
	}
	own := states[0]
	code := asset.CodeVersion
	deps := currentDepSet(asset)
	for i := lo; i < hi; i++ {
		k := i - lo
		if k >= own.Len() || own.Flags[k]&store.FlagMaterialized == 0 {
			return false, nil
		}
		if cv := int(own.CodeVersion[k]); cv >= len(own.CodeVersions) || own.CodeVersions[cv] != code {
			return false, nil
		}
		if ds := int(own.DepSet[k]); ds >= len(own.DepSets) || !slices.Equal(own.DepSets[ds], deps) {
			return false, nil
		}
		for n, eid := range edges {
			e := g.Edge(eid)
			up := states[1+n]
			l, h := e.Range(i, upstreamCount(g, e.From, now))
			for j := max(l, upLo[n]); j <= h; j++ {
				if u := j - upLo[n]; u < up.Len() && up.DataChangedSeq[u] > own.InputSeq[k] {
					return false, nil
				}
			}
		}
	}
	return true, nil
}

func upstreamCount(g *graph.Graph, a int, now time.Time) int {
	if p := g.Asset(a).Partitions; p != nil {
		return p.Count(now)
	}
	return 1
}
