package sqlite

import (
	"context"
	"fmt"
	"testing"

	"github.com/freshetdev/freshet/assets"
	"github.com/freshetdev/freshet/store"
)

// BenchmarkAppend appends batches of materializations of new partitions of an
// hourly asset (every event inserts a state row; later ones would update it).
func BenchmarkAppend(b *testing.B) {
	for _, batch := range []int{1, 100, 10_000, 100_000} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			ctx := context.Background()
			s, _ := openTemp(b)
			p := partitions(b, assets.PartitionsSpec{Granularity: assets.Hourly, Start: "1990-01-01"})
			mustSync(b, s, defsOf(built("a", p)))
			events := make([]store.Event, batch)
			next := 0
			b.ResetTimer()
			for b.Loop() {
				for i := range events {
					events[i] = materialization("a", p.Key(next), "v")
					next++
				}
				if _, err := s.Append(ctx, events); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(next)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkReadState reads the whole state of a catalog of 100 daily assets with
// 2,000 recorded partitions each (200,000 state rows).
func BenchmarkReadState(b *testing.B) {
	const assetCount, partitionCount = 100, 2_000
	ctx := context.Background()
	s, _ := openTemp(b)
	fillCatalog(b, s, assetCount, partitionCount)
	b.ResetTimer()
	for b.Loop() {
		snap, err := s.ReadState(ctx, nil)
		if err != nil {
			b.Fatal(err)
		}
		if len(snap.Assets) != assetCount || snap.Assets["a/x0"].Len() != partitionCount {
			b.Fatalf("snapshot of %d assets", len(snap.Assets))
		}
	}
	b.ReportMetric(float64(assetCount*partitionCount)*float64(b.N)/b.Elapsed().Seconds(), "partitions/s")
}

// BenchmarkVerify replays the same catalog's log.
func BenchmarkVerify(b *testing.B) {
	const assetCount, partitionCount = 100, 2_000
	ctx := context.Background()
	s, _ := openTemp(b)
	fillCatalog(b, s, assetCount, partitionCount)
	b.ResetTimer()
	for b.Loop() {
		found, err := s.Verify(ctx)
		if err != nil || len(found) > 0 {
			b.Fatal(found, err)
		}
	}
	b.ReportMetric(float64(assetCount*partitionCount)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// fillCatalog syncs assetCount daily assets and materializes partitionCount
// partitions of each.
func fillCatalog(b *testing.B, s *Store, assetCount, partitionCount int) {
	b.Helper()
	p := dailyFrom(b, "2000-01-01")
	defs := &assets.Definitions{}
	for a := range assetCount {
		defs.Assets = append(defs.Assets, built(assets.Key(fmt.Sprintf("a/x%d", a)), p))
	}
	mustSync(b, s, defs)
	for _, a := range defs.Assets {
		events := make([]store.Event, partitionCount)
		for i := range events {
			events[i] = materialization(a.Key, p.Key(i), "v")
		}
		mustAppend(b, s, events...)
	}
}

// BenchmarkEventsPage reads the newest page of 100 events of one asset among 100,
// each with 2,000 events, and the same page filtered to one partition.
func BenchmarkEventsPage(b *testing.B) {
	const assetCount, partitionCount = 100, 2_000
	ctx := context.Background()
	s, _ := openTemp(b)
	fillCatalog(b, s, assetCount, partitionCount)
	for _, q := range []struct {
		name  string
		query store.EventQuery
	}{
		{"log", store.EventQuery{}},
		{"asset", store.EventQuery{Asset: "a/x50"}},
		{"partition", store.EventQuery{Asset: "a/x50", Partitions: []string{"2000-01-05"}}},
	} {
		b.Run(q.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := s.Events(ctx, q.query); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSyncDefinitions syncs 10,000 assets into an empty catalog, then
// changes the code version of every tenth one.
func BenchmarkSyncDefinitions(b *testing.B) {
	const assetCount = 10_000
	p := dailyFrom(b, "2020-01-01")
	defs := &assets.Definitions{}
	for a := range assetCount {
		var deps []assets.Key
		if a > 0 {
			deps = append(deps, assets.Key(fmt.Sprintf("g/a%d", a-1)))
		}
		defs.Assets = append(defs.Assets, built(assets.Key(fmt.Sprintf("g/a%d", a)), p, deps...))
	}
	changed := &assets.Definitions{}
	for i, a := range defs.Assets {
		c := *a
		if i%10 == 0 {
			c.CodeVersion = "2"
		}
		changed.Assets = append(changed.Assets, &c)
	}
	for b.Loop() {
		b.StopTimer()
		s, _ := openTemp(b)
		b.StartTimer()
		mustSync(b, s, defs)
		if res := mustSync(b, s, changed); len(res.Changed) != assetCount/10 {
			b.Fatalf("changed %d assets", len(res.Changed))
		}
	}
}
