package materialize_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/freshetdev/freshet/assets"
	"github.com/freshetdev/freshet/graph"
	"github.com/freshetdev/freshet/materialize"
	"github.com/freshetdev/freshet/store"
	"github.com/freshetdev/freshet/store/postgres"
	"github.com/freshetdev/freshet/store/postgres/pgtest"
)

// BenchmarkCatalogPostgres measures the planner's state kept from PostgreSQL:
// a cold load of 2,000 daily assets × 1,096 partitions (2,192,000 partition rows),
// and an incremental refresh after 1,000 new events.
func BenchmarkCatalogPostgres(b *testing.B) {
	const (
		numAssets = 2000
		days      = 1096 // 2023-01-01 … 2025-12-31
		chunk     = 50_000
	)
	ctx := context.Background()
	url := pgtest.URL(b)
	s, err := postgres.Open(ctx, url)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	parts, err := assets.NewPartitions(assets.PartitionsSpec{Granularity: assets.Daily, Start: "2023-01-01"})
	if err != nil {
		b.Fatal(err)
	}
	defs := &assets.Definitions{}
	for i := range numAssets {
		a := &assets.Asset{Key: assets.Key(fmt.Sprintf("bench/p%03d/a%02d", i/20, i%20)), Partitions: parts, CodeVersion: "1",
			Compute: assets.CommandCompute{Argv: []string{"true"}}}
		if i%20 > 0 {
			a.Deps = []assets.Dep{{Asset: defs.Assets[i-1].Key}}
		}
		defs.Assets = append(defs.Assets, a)
	}
	if _, err := s.SyncDefinitions(ctx, defs); err != nil {
		b.Fatal(err)
	}
	g, err := graph.New(defs)
	if err != nil {
		b.Fatal(err)
	}
	events := make([]store.Event, 0, chunk)
	flush := func() {
		if _, err := s.Append(ctx, events); err != nil {
			b.Fatal(err)
		}
		events = events[:0]
	}
	for d := range days {
		for _, a := range defs.Assets {
			events = append(events, store.Event{Kind: store.Materialization, Asset: a.Key, Partition: parts.Key(d),
				DataVersion: "v1", InputSeq: store.AtAppend})
			if len(events) == chunk {
				flush()
			}
		}
	}
	flush()
	rows := numAssets * days
	// Measure the steady state, not autovacuum catching up with the bulk load on
	// the other core.
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `VACUUM (ANALYZE) events, partition_state`); err != nil {
		b.Fatal(err)
	}
	conn.Close(ctx)

	b.Run(fmt.Sprintf("cold-load/assets=%d/partitions=%d", numAssets, rows), func(b *testing.B) {
		b.ReportAllocs()
		var heap uint64
		for b.Loop() {
			cat, err := materialize.LoadCatalog(ctx, s, g)
			if err != nil {
				b.Fatal(err)
			}
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			heap = max(heap, ms.HeapAlloc)
			runtime.KeepAlive(cat)
		}
		b.ReportMetric(float64(heap)/(1<<20), "heap-MB")
	})

	b.Run(fmt.Sprintf("refresh/events=1000/assets=%d/partitions=%d", numAssets, rows), func(b *testing.B) {
		cat, err := materialize.LoadCatalog(ctx, s, g)
		if err != nil {
			b.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(7, 7))
		batch := make([]store.Event, 1000)
		for b.Loop() {
			b.StopTimer()
			for i := range batch {
				a := defs.Assets[rng.IntN(numAssets)]
				batch[i] = store.Event{Kind: store.Materialization, Asset: a.Key, Partition: parts.Key(rng.IntN(days)),
					DataVersion: fmt.Sprint(rng.IntN(2)), InputSeq: store.AtAppend}
			}
			if _, err := s.Append(ctx, batch); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			n, err := cat.Refresh(ctx)
			if err != nil {
				b.Fatal(err)
			}
			if n == 0 {
				b.Fatal("refresh saw no change")
			}
		}
	})
}
