package materialize

import (
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/freshetdev/freshet/assets"
	"github.com/freshetdev/freshet/graph"
)

// syntheticCatalog builds a graph of n daily-partitioned assets (2024-01-01 to
// 2026-12-31, 1,096 partitions each) in pipelines of 20, with about deps upstreams
// per asset, mostly one-to-one and some rolling 7-day windows. In its state about 60% of the
// partitions are materialized: every asset up to a common day, as after a backfill
// that got that far, with 2% of the assets lagging behind;  0.2% of the assets have a
// bumped code version, and one partition in a thousand has new data that its
// downstream has not read yet, so staleness spreads down the graph from there.
func syntheticCatalog(tb testing.TB, n, deps int) (*graph.Graph, *State, time.Time) {
	tb.Helper()
	r := rand.New(rand.NewPCG(uint64(n), uint64(deps)))
	p, err := assets.NewPartitions(assets.PartitionsSpec{Granularity: assets.Daily, Start: "2024-01-01", End: "2027-01-01"})
	if err != nil {
		tb.Fatal(err)
	}
	now := time.Date(2027, 1, 1, 6, 0, 0, 0, time.UTC)
	defs := &assets.Definitions{}
	pipelines := max(n/20, 1)
	for i := 0; i < n; i++ {
		a := &assets.Asset{Key: assets.Key(fmt.Sprintf("pipeline_%d/asset_%d", i%pipelines, i)), Partitions: p, CodeVersion: "1",
			Compute: assets.CommandCompute{Argv: []string{"true"}}}
		if i > 0 {
			// Pipelines of n/pipelines assets each, every asset reading some of the
			// few before it in its pipeline; one dep in fifty crosses pipelines.
			for _, d := range r.Perm(min(i/pipelines, 6))[:min(i/pipelines, 1+r.IntN(2*deps-1))] {
				up := i - pipelines*(1+d)
				if r.IntN(50) == 0 {
					up = r.IntN(i)
				}
				if slices.ContainsFunc(a.Deps, func(x assets.Dep) bool { return x.Asset == defs.Assets[up].Key }) {
					continue
				}
				dep := assets.Dep{Asset: defs.Assets[up].Key}
				if r.IntN(10) == 0 {
					dep.StartOffset = -6 // the day and the six before it
				}
				a.Deps = append(a.Deps, dep)
			}
		}
		defs.Assets = append(defs.Assets, a)
	}
	g, err := graph.New(defs)
	if err != nil {
		tb.Fatal(err)
	}
	count := p.Count(now)
	st := NewEmptyState(g)
	var seq int64
	for _, a := range g.Topo() {
		built := count * 60 / 100
		if r.IntN(50) == 0 {
			built -= 1 + r.IntN(100)
		}
		as := &st.Assets[a]
		as.Flags = make([]PartitionFlags, count)
		as.InputSeq = make([]int64, count)
		as.DataChangedSeq = make([]int64, count)
		as.CodeVersion = make([]uint32, count)
		as.DepSet = make([]uint32, count)
		as.CodeVersions = []string{"1"}
		if r.IntN(500) == 0 {
			as.CodeVersions[0] = "0" // the code changed since
		}
		as.DepSets = [][]assets.Key{currentDepSet(g.Asset(a))}
		for i := 0; i < built; i++ {
			seq++
			as.Flags[i] = FlagMaterialized
			as.InputSeq[i] = seq - 1
			as.DataChangedSeq[i] = seq
		}
	}
	for k := 0; k < n*count/1000; k++ {
		as := &st.Assets[r.IntN(n)]
		if i := r.IntN(count); as.Flags[i]&FlagMaterialized != 0 {
			seq++
			as.DataChangedSeq[i] = seq
		}
	}
	st.Seq = seq
	return g, st, now
}

func BenchmarkPlan(b *testing.B) {
	for _, n := range []int{1_000, 10_000} {
		g, st, now := syntheticCatalog(b, n, 3)
		partitions := 0
		for a := 0; a < g.Len(); a++ {
			partitions += len(st.Assets[a].Flags)
		}
		name := fmt.Sprintf("assets=%d/edges=%d/partitions=%d", n, g.NumEdges(), partitions)
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			var p *Plan
			for b.Loop() {
				var err error
				if p, err = Compute(g, st, Request{Now: now}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(p.NumSteps()), "steps")
			stale := 0
			for a := 0; a < g.Len(); a++ {
				for i := 0; i < p.Count(a); i++ {
					if p.Status(a, i) == StatusStale {
						stale++
					}
				}
			}
			b.ReportMetric(float64(stale), "stale")
		})
	}
}

func BenchmarkPlanJSON(b *testing.B) {
	g, st, now := syntheticCatalog(b, 1_000, 3)
	p, err := Compute(g, st, Request{Now: now})
	if err != nil {
		b.Fatal(err)
	}
	b.Run(fmt.Sprintf("assets=1000/steps=%d", p.NumSteps()), func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := p.WriteJSON(io.Discard); err != nil {
				b.Fatal(err)
			}
		}
	})
}
