package materialize_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/freshetdev/freshet/assets"
	"github.com/freshetdev/freshet/graph"
	"github.com/freshetdev/freshet/materialize"
	"github.com/freshetdev/freshet/store"
	"github.com/freshetdev/freshet/store/postgres"
	"github.com/freshetdev/freshet/store/postgres/pgtest"
	"github.com/freshetdev/freshet/store/sqlite"
)

// openStores returns a fresh catalog of each kind.
func openStores(t testing.TB) map[string]store.Store {
	t.Helper()
	ctx := context.Background()
	lite, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lite.Close() })
	pg, err := postgres.Open(ctx, pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pg.Close() })
	return map[string]store.Store{"sqlite": lite, "postgres": pg}
}

// chainDefs declares n daily assets in a chain, a0 ← a1 ← …, starting at start.
func chainDefs(t testing.TB, n int, start string) *assets.Definitions {
	t.Helper()
	parts, err := assets.NewPartitions(assets.PartitionsSpec{Granularity: assets.Daily, Start: start})
	if err != nil {
		t.Fatal(err)
	}
	defs := &assets.Definitions{}
	for i := range n {
		a := &assets.Asset{Key: assets.Key(fmt.Sprintf("chain/a%d", i)), Partitions: parts, CodeVersion: "1",
			Compute: assets.CommandCompute{Argv: []string{"true"}}}
		if i > 0 {
			a.Deps = []assets.Dep{{Asset: defs.Assets[i-1].Key}}
		}
		defs.Assets = append(defs.Assets, a)
	}
	return defs
}

func syncGraph(t testing.TB, s store.Store, defs *assets.Definitions) *graph.Graph {
	t.Helper()
	if _, err := s.SyncDefinitions(context.Background(), defs); err != nil {
		t.Fatal(err)
	}
	g, err := graph.New(defs)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// sameState compares two snapshots asset by asset, ignoring trailing partitions with
// nothing recorded (arrays may differ in length there).
func sameState(t *testing.T, g *graph.Graph, got, want *materialize.State) {
	t.Helper()
	if got.Seq != want.Seq {
		t.Errorf("seq %d, want %d", got.Seq, want.Seq)
	}
	for a := range want.Assets {
		g1, w1 := trim(got.Assets[a]), trim(want.Assets[a])
		if !reflect.DeepEqual(g1, w1) {
			t.Errorf("asset %s: refreshed state differs from a fresh load:\n got %+v\nwant %+v", g.Asset(a).Key, g1, w1)
		}
	}
}

func trim(s materialize.AssetState) materialize.AssetState {
	n := s.Len()
	for n > 0 && s.Flags[n-1] == 0 {
		n--
	}
	out := materialize.AssetState{Flags: s.Flags[:n:n], InputSeq: s.InputSeq[:n:n], DataChangedSeq: s.DataChangedSeq[:n:n],
		CodeVersion: s.CodeVersion[:n:n], DepSet: s.DepSet[:n:n], CodeVersions: s.CodeVersions, DepSets: s.DepSets}
	if n == 0 {
		out = materialize.AssetState{CodeVersions: s.CodeVersions, DepSets: s.DepSets}
	}
	if len(out.CodeVersions) == 0 {
		out.CodeVersions = nil
	}
	if len(out.DepSets) == 0 {
		out.DepSets = nil
	}
	return out
}

// TestCatalogRefreshMatchesReload appends random events in rounds and checks that
// the incrementally refreshed state always equals a state loaded from scratch, and
// that a snapshot handed out earlier never changes.
func TestCatalogRefreshMatchesReload(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for name, s := range openStores(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			defs := chainDefs(t, 4, "2026-01-01")
			g := syncGraph(t, s, defs)
			cat, err := materialize.LoadCatalog(ctx, s, g)
			if err != nil {
				t.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(1, 2))
			for round := range 8 {
				before := cat.State()
				frozen := fmt.Sprintf("%+v", before.Assets)
				var events []store.Event
				for range 1 + rng.IntN(40) {
					a := defs.Assets[rng.IntN(len(defs.Assets))]
					kind := store.Materialization
					if rng.IntN(5) == 0 {
						kind = store.Failure
					}
					events = append(events, store.Event{Kind: kind, Asset: a.Key, Partition: a.Partitions.Key(rng.IntN(30)),
						DataVersion: fmt.Sprint(rng.IntN(3)), InputSeq: store.AtAppend})
				}
				if round == 4 { // a code bump in the middle
					defs.Assets[2].CodeVersion = "2"
					g = syncGraph(t, s, defs)
					if err := cat.SetGraph(ctx, g); err != nil {
						t.Fatal(err)
					}
				}
				if _, err := s.Append(ctx, events); err != nil {
					t.Fatal(err)
				}
				if _, err := cat.Refresh(ctx); err != nil {
					t.Fatal(err)
				}
				fresh, err := materialize.LoadCatalog(ctx, s, g)
				if err != nil {
					t.Fatal(err)
				}
				sameState(t, g, cat.State(), fresh.State())
				if after := fmt.Sprintf("%+v", before.Assets); after != frozen {
					t.Fatalf("round %d: a snapshot handed out before the refresh changed", round)
				}
			}
		})
	}
}

// TestCatalogReloadsChangedPartitions moves an asset's start two days earlier: its
// recorded partitions move two indexes up, and the catalog follows.
func TestCatalogReloadsChangedPartitions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for name, s := range openStores(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			defs := chainDefs(t, 2, "2026-01-01")
			g := syncGraph(t, s, defs)
			if _, err := s.Append(ctx, []store.Event{{Kind: store.Materialization, Asset: "chain/a0", Partition: "2026-01-03", InputSeq: store.AtAppend}}); err != nil {
				t.Fatal(err)
			}
			cat, err := materialize.LoadCatalog(ctx, s, g)
			if err != nil {
				t.Fatal(err)
			}
			if f := cat.State().Assets[0].Flags; len(f) != 3 || f[2] != materialize.FlagMaterialized {
				t.Fatalf("before: flags %v, want 2026-01-03 at index 2", f)
			}
			earlier := chainDefs(t, 2, "2025-12-30")
			// Reloading definitions in a long-running process: sync, then switch.
			g2 := syncGraph(t, s, earlier)
			if err := cat.SetGraph(ctx, g2); err != nil {
				t.Fatal(err)
			}
			if f := cat.State().Assets[0].Flags; len(f) != 5 || f[4] != materialize.FlagMaterialized {
				t.Fatalf("after the start moved 2 days earlier: flags %v, want 2026-01-03 at index 4", f)
			}
			// A fresh load agrees.
			other, err := materialize.LoadCatalog(ctx, s, g2)
			if err != nil {
				t.Fatal(err)
			}
			sameState(t, g2, cat.State(), other.State())
		})
	}
}

func TestCatalogNeedsSyncedDefinitions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for name, s := range openStores(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			defs := chainDefs(t, 2, "2026-01-01")
			g, err := graph.New(defs)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := materialize.LoadCatalog(ctx, s, g); err == nil || !strings.Contains(err.Error(), "chain/a0 is not in the catalog") {
				t.Fatalf("unsynced definitions: err %v", err)
			}
			syncGraph(t, s, chainDefs(t, 2, "2025-12-01"))
			if _, err := materialize.LoadCatalog(ctx, s, g); err == nil || !strings.Contains(err.Error(), "another partitions definition") {
				t.Fatalf("other partitions: err %v", err)
			}
		})
	}
}

// TestPlanFromStore: the planner on state read from the store agrees with the
// semantics: a rebuild with the same data version changes nothing downstream.
func TestPlanFromStore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	now := time.Date(2026, 1, 4, 6, 0, 0, 0, time.UTC)
	for name, s := range openStores(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			defs := chainDefs(t, 2, "2026-01-01")
			g := syncGraph(t, s, defs)
			var events []store.Event
			for _, a := range defs.Assets {
				for _, p := range []string{"2026-01-01", "2026-01-02", "2026-01-03"} {
					events = append(events, store.Event{Kind: store.Materialization, Asset: a.Key, Partition: p, DataVersion: "v1", InputSeq: store.AtAppend})
				}
			}
			if _, err := s.Append(ctx, events); err != nil {
				t.Fatal(err)
			}
			cat, err := materialize.LoadCatalog(ctx, s, g)
			if err != nil {
				t.Fatal(err)
			}
			plan := func() *materialize.Plan {
				t.Helper()
				if _, err := cat.Refresh(ctx); err != nil {
					t.Fatal(err)
				}
				p, err := materialize.Compute(g, cat.State(), materialize.Request{Now: now})
				if err != nil {
					t.Fatal(err)
				}
				return p
			}
			if p := plan(); p.NumPartitions() != 0 {
				t.Fatalf("all built: %d partitions planned", p.NumPartitions())
			}
			for _, dv := range []string{"v1", "v2"} {
				if _, err := s.Append(ctx, []store.Event{{Kind: store.Materialization, Asset: "chain/a0", Partition: "2026-01-02", DataVersion: dv, InputSeq: store.AtAppend}}); err != nil {
					t.Fatal(err)
				}
				p := plan()
				want := map[string]int{"v1": 0, "v2": 1}[dv]
				if p.NumPartitions() != want {
					t.Errorf("after a rebuild with data version %s: %d partitions planned, want %d", dv, p.NumPartitions(), want)
				}
				if want == 1 {
					if i, _ := g.Index("chain/a1"); p.Status(i, 1) != materialize.StatusStale || p.CauseBits(i, 1) != materialize.CauseUpstreamChanged {
						t.Errorf("chain/a1 2026-01-02: status %v causes %v", p.Status(i, 1), p.CauseBits(i, 1))
					}
				}
			}
		})
	}
}
