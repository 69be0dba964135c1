package postgres

import (
	"testing"
	"time"

	"github.com/freshetdev/freshet/assets"
	"github.com/freshetdev/freshet/migrations"
	"github.com/freshetdev/freshet/store"
	"github.com/freshetdev/freshet/store/postgres/pgtest"
)

// openStore opens a store on a fresh schema, closed when the test ends.
func openStore(t testing.TB, opts ...Option) *Store {
	t.Helper()
	s, err := Open(t.Context(), pgtest.URL(t), opts...)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// daily returns a daily partitioned asset built by a command.
func daily(t testing.TB, key, start string, deps ...assets.Key) *assets.Asset {
	t.Helper()
	p, err := assets.NewPartitions(assets.PartitionsSpec{Granularity: assets.Daily, Start: start})
	if err != nil {
		t.Fatalf("partitions of %s: %v", key, err)
	}
	a := &assets.Asset{Key: assets.Key(key), CodeVersion: "1", Partitions: p,
		Compute: assets.CommandCompute{Argv: []string{"build", key}}}
	for _, d := range deps {
		a.Deps = append(a.Deps, assets.Dep{Asset: d})
	}
	return a
}

// unpartitioned returns an unpartitioned asset; source makes it a source asset.
func unpartitioned(key string, source bool) *assets.Asset {
	a := &assets.Asset{Key: assets.Key(key), CodeVersion: "1"}
	if !source {
		a.Compute = assets.CommandCompute{Argv: []string{"build", key}}
	}
	return a
}

func syncDefs(t testing.TB, s *Store, as ...*assets.Asset) *store.SyncResult {
	t.Helper()
	res, err := s.SyncDefinitions(t.Context(), &assets.Definitions{Assets: as})
	if err != nil {
		t.Fatalf("sync definitions: %v", err)
	}
	return res
}

func appendEvents(t testing.TB, s *Store, events ...store.Event) []store.Event {
	t.Helper()
	out, err := s.Append(t.Context(), events)
	if err != nil {
		t.Fatalf("append %d events: %v", len(events), err)
	}
	return out
}

// dayKey returns the key of daily partition i of an asset starting 2024-01-01.
func dayKey(i int) string {
	return time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, i).Format(time.DateOnly)
}

func materialization(asset string, partition int, version string) store.Event {
	return store.Event{Kind: store.Materialization, Asset: assets.Key(asset), Partition: dayKey(partition),
		DataVersion: version, InputSeq: store.AtAppend}
}

func verifyClean(t testing.TB, s *Store) {
	t.Helper()
	problems, err := s.Verify(t.Context())
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	for _, p := range problems {
		t.Errorf("verify: %s", p)
	}
}

// must returns v, failing the test given to the result on err:
// must(s.Watermark(ctx))(t).
func must[T any](v T, err error) func(testing.TB) T {
	return func(t testing.TB) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func mustLatest(t testing.TB) int64 {
	t.Helper()
	v, err := migrations.Latest(migrations.Postgres)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
