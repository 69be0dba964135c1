package sqlite

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/freshetdev/freshet/assets"
	"github.com/freshetdev/freshet/store"
)

// openTemp opens a fresh catalog in a temporary folder, closed when the test ends.
func openTemp(t testing.TB, opts ...Option) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), ".freshet", "freshet.db")
	s, err := Open(context.Background(), path, opts...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s, path
}

func partitions(t testing.TB, spec assets.PartitionsSpec) *assets.Partitions {
	t.Helper()
	p, err := assets.NewPartitions(spec)
	if err != nil {
		t.Fatalf("NewPartitions(%+v): %v", spec, err)
	}
	return p
}

func dailyFrom(t testing.TB, start string) *assets.Partitions {
	return partitions(t, assets.PartitionsSpec{Granularity: assets.Daily, Start: start})
}

// built returns an asset Freshet builds with a command.
func built(key assets.Key, p *assets.Partitions, deps ...assets.Key) *assets.Asset {
	a := &assets.Asset{Key: key, CodeVersion: "1", Partitions: p, Compute: assets.CommandCompute{Argv: []string{"true"}}}
	for _, d := range deps {
		a.Deps = append(a.Deps, assets.Dep{Asset: d})
	}
	return a
}

// source returns a source asset: observed, never built.
func source(key assets.Key, p *assets.Partitions) *assets.Asset {
	return &assets.Asset{Key: key, CodeVersion: "1", Partitions: p}
}

func defsOf(list ...*assets.Asset) *assets.Definitions {
	return &assets.Definitions{Assets: list}
}

func mustSync(t testing.TB, s store.Store, defs *assets.Definitions) *store.SyncResult {
	t.Helper()
	res, err := s.SyncDefinitions(context.Background(), defs)
	if err != nil {
		t.Fatalf("SyncDefinitions: %v", err)
	}
	return res
}

func mustAppend(t testing.TB, s store.Store, events ...store.Event) []store.Event {
	t.Helper()
	out, err := s.Append(context.Background(), events)
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	return out
}

func materialization(key assets.Key, partition, dataVersion string) store.Event {
	return store.Event{Kind: store.Materialization, Asset: key, Partition: partition, DataVersion: dataVersion, InputSeq: store.AtAppend}
}

// dayKeys returns the keys of daily partitions [lo, hi) of p.
func dayKeys(p *assets.Partitions, lo, hi int) []string {
	keys := make([]string, 0, hi-lo)
	for i := lo; i < hi; i++ {
		keys = append(keys, p.Key(i))
	}
	return keys
}

func mustVerify(t testing.TB, s store.Store) {
	t.Helper()
	found, err := s.Verify(context.Background())
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	for _, inc := range found {
		t.Errorf("Verify: %s", inc)
	}
}

func countFlags(st *store.AssetState, f store.PartitionFlags) int {
	n := 0
	for _, flags := range st.Flags {
		if flags&f != 0 {
			n++
		}
	}
	return n
}

func ev(kind store.EventKind, key assets.Key, partition string) store.Event {
	return store.Event{Kind: kind, Asset: key, Partition: partition}
}
