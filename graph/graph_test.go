package graph

import (
	"slices"
	"strings"
	"testing"

	"github.com/freshetdev/freshet/assets"
)

func daily(t *testing.T, start, end string) *assets.Partitions {
	t.Helper()
	p, err := assets.NewPartitions(assets.PartitionsSpec{Granularity: assets.Daily, Start: start, End: end})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func asset(key string, p *assets.Partitions, deps ...assets.Dep) *assets.Asset {
	return &assets.Asset{Key: assets.Key(key), Partitions: p, Deps: deps, Compute: assets.CommandCompute{Argv: []string{"true"}}}
}

func dep(key string) assets.Dep { return assets.Dep{Asset: assets.Key(key)} }

func keys(g *Graph, nodes []int) string {
	var out []string
	for _, n := range nodes {
		out = append(out, string(g.Asset(n).Key))
	}
	return strings.Join(out, " ")
}

func TestTopologicalOrderAndLevels(t *testing.T) {
	t.Parallel()
	// Declared downstream first, to show the order does not come from the file.
	g, err := New(&assets.Definitions{Assets: []*assets.Asset{
		asset("report", nil, dep("clean"), dep("rates")),
		asset("clean", nil, dep("raw")),
		asset("raw", nil),
		asset("rates", nil),
	}})
	if err != nil {
		t.Fatal(err)
	}
	pos := map[string]int{}
	for i, n := range g.Topo() {
		pos[string(g.Asset(n).Key)] = i
	}
	for _, e := range []struct{ up, down string }{{"raw", "clean"}, {"clean", "report"}, {"rates", "report"}} {
		if pos[e.up] > pos[e.down] {
			t.Errorf("topological order puts %s after %s: %s", e.up, e.down, keys(g, g.Topo()))
		}
	}
	var levels []string
	for _, l := range g.Levels() {
		levels = append(levels, keys(g, l))
	}
	if got, want := strings.Join(levels, " | "), "raw rates | clean | report"; got != want {
		t.Errorf("levels %q, want %q", got, want)
	}
}

func TestCycleAndUnknownRefused(t *testing.T) {
	t.Parallel()
	_, err := New(&assets.Definitions{Assets: []*assets.Asset{asset("a", nil, dep("b")), asset("b", nil, dep("a")), asset("c", nil)}})
	if err == nil || !strings.Contains(err.Error(), "cycle among a, b") {
		t.Errorf("cycle: %v", err)
	}
	_, err = New(&assets.Definitions{Assets: []*assets.Asset{asset("a", nil, dep("nope"))}})
	if err == nil || !strings.Contains(err.Error(), "unknown asset nope") {
		t.Errorf("unknown: %v", err)
	}
}

func TestClosure(t *testing.T) {
	t.Parallel()
	g, err := New(&assets.Definitions{Assets: []*assets.Asset{
		asset("a", nil), asset("b", nil, dep("a")), asset("c", nil, dep("b")), asset("d", nil, dep("c")), asset("x", nil, dep("a")),
	}})
	if err != nil {
		t.Fatal(err)
	}
	c, _ := g.Index("c")
	a, _ := g.Index("a")
	for _, tc := range []struct {
		roots []int
		dir   Direction
		depth int
		want  []int // distance per node a b c d x
	}{
		{[]int{c}, Upstream, -1, []int{2, 1, 0, -1, -1}},
		{[]int{c}, Upstream, 1, []int{-1, 1, 0, -1, -1}},
		{[]int{c}, Downstream, -1, []int{-1, -1, 0, 1, -1}},
		{[]int{a}, Downstream, 2, []int{0, 1, 2, -1, 1}},
		{[]int{a, c}, Downstream, 0, []int{0, -1, 0, -1, -1}},
	} {
		if got := g.Closure(tc.roots, tc.dir, tc.depth); !slices.Equal(got, tc.want) {
			t.Errorf("Closure(%v, %d, %d) = %v, want %v", tc.roots, tc.dir, tc.depth, got, tc.want)
		}
	}
}

func TestEdgeRanges(t *testing.T) {
	t.Parallel()
	up := daily(t, "2026-01-01", "2026-01-11") // ten partitions, ever
	g, err := New(&assets.Definitions{Assets: []*assets.Asset{
		asset("up", up),
		asset("same", daily(t, "2026-01-01", ""), dep("up")),
		asset("later", daily(t, "2026-01-05", ""), assets.Dep{Asset: "up", StartOffset: -6}),
		asset("all", nil, assets.Dep{Asset: "up", Mapping: assets.MappingAll}),
		asset("last", nil, assets.Dep{Asset: "up", Mapping: assets.MappingLast}),
		asset("defaultall", nil, dep("up")),
		asset("single", nil),
		asset("fromsingle", daily(t, "2026-01-01", ""), dep("single")),
	}})
	if err != nil {
		t.Fatal(err)
	}
	edge := func(to string) *Edge {
		n, _ := g.Index(assets.Key(to))
		return g.Edge(g.In(n)[0])
	}
	for _, tc := range []struct {
		to         string
		i, upCount int
		lo, hi     int
	}{
		{"same", 3, 10, 3, 3},
		{"same", 12, 10, 12, 9}, // past the upstream's end: nothing needed (lo > hi)
		{"later", 0, 10, 0, 4},  // 2026-01-05 and the six days before, clipped at the upstream's start
		{"later", 3, 10, 1, 7},  // 2026-01-08: Jan 2..8
		{"all", 0, 7, 0, 6},
		{"all", 0, 0, 0, 0}, // needs a partition that does not exist yet
		{"last", 0, 7, 6, 6},
		{"defaultall", 0, 7, 0, 6},
		{"fromsingle", 42, 1, 0, 0},
	} {
		lo, hi := edge(tc.to).Range(tc.i, tc.upCount)
		if lo != tc.lo || hi != tc.hi {
			t.Errorf("%s: Range(%d, %d) = [%d, %d], want [%d, %d]", tc.to, tc.i, tc.upCount, lo, hi, tc.lo, tc.hi)
		}
	}
	if m := edge("defaultall").Mapping; m != assets.MappingAll {
		t.Errorf("unpartitioned downstream of a partitioned upstream defaults to %q, want all", m)
	}
	if lo, hi, ok := edge("later").Shift(); !ok || lo != -2 || hi != 4 {
		t.Errorf("later: Shift = %d, %d, %v; want -2, 4, true", lo, hi, ok)
	}
}
