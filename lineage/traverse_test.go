package lineage

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/freshetdev/freshet/assets"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// nodesString renders nodes as "degree:key" items.
func nodesString(ns []Node) string {
	var s []string
	for _, n := range ns {
		s = append(s, fmt.Sprintf("%d:%s", n.Degree, n.Key))
	}
	return strings.Join(s, " ")
}

// edgesString renders edges as "from>to" items, with the mapping when it is not time
// and the offsets when they are not 0.
func edgesString(es []Edge) string {
	var s []string
	for _, e := range es {
		item := string(e.From) + ">" + string(e.To)
		if e.Mapping != assets.MappingTime {
			item += "(" + string(e.Mapping) + ")"
		}
		if e.StartOffset != 0 || e.EndOffset != 0 {
			item += fmt.Sprintf("[%d..%d]", e.StartOffset, e.EndOffset)
		}
		s = append(s, item)
	}
	return strings.Join(s, " ")
}

func TestTraverse(t *testing.T) {
	t.Parallel()
	g := testGraph(t)
	tests := []struct {
		name      string
		key       assets.Key
		dir       Direction
		depth     int
		nodes     string
		edges     string
		truncated bool
	}{
		{
			name: "upstream unlimited", key: "finance/report", dir: Upstream, depth: -1,
			nodes: "-3:sales/raw_orders -2:marketing/campaigns -2:sales/exchange_rates -2:sales/orders_clean " +
				"-1:marketing/attribution -1:sales/weekly_revenue 0:finance/report",
			edges: "sales/raw_orders>sales/orders_clean marketing/campaigns>marketing/attribution " +
				"sales/exchange_rates>sales/weekly_revenue sales/orders_clean>marketing/attribution " +
				"sales/orders_clean>sales/weekly_revenue marketing/attribution>finance/report(all) " +
				"sales/weekly_revenue>finance/report(all)",
		},
		{
			name: "upstream depth 1", key: "finance/report", dir: Upstream, depth: 1,
			nodes:     "-1:marketing/attribution -1:sales/weekly_revenue 0:finance/report",
			edges:     "marketing/attribution>finance/report(all) sales/weekly_revenue>finance/report(all)",
			truncated: true,
		},
		{
			name: "upstream depth 2", key: "finance/report", dir: Upstream, depth: 2,
			nodes: "-2:marketing/campaigns -2:sales/exchange_rates -2:sales/orders_clean " +
				"-1:marketing/attribution -1:sales/weekly_revenue 0:finance/report",
			edges: "marketing/campaigns>marketing/attribution sales/exchange_rates>sales/weekly_revenue " +
				"sales/orders_clean>marketing/attribution sales/orders_clean>sales/weekly_revenue " +
				"marketing/attribution>finance/report(all) sales/weekly_revenue>finance/report(all)",
			truncated: true, // sales/raw_orders is 3 levels up
		},
		{
			name: "upstream depth exactly reaching the sources", key: "finance/report", dir: Upstream, depth: 3,
			nodes: "-3:sales/raw_orders -2:marketing/campaigns -2:sales/exchange_rates -2:sales/orders_clean " +
				"-1:marketing/attribution -1:sales/weekly_revenue 0:finance/report",
			edges: "sales/raw_orders>sales/orders_clean marketing/campaigns>marketing/attribution " +
				"sales/exchange_rates>sales/weekly_revenue sales/orders_clean>marketing/attribution " +
				"sales/orders_clean>sales/weekly_revenue marketing/attribution>finance/report(all) " +
				"sales/weekly_revenue>finance/report(all)",
		},
		{
			name: "downstream of a source", key: "sales/raw_orders", dir: Downstream, depth: -1,
			nodes: "0:sales/raw_orders 1:sales/eu/orders 1:sales/orders_clean " +
				"2:marketing/attribution 2:sales/all_time_summary 2:sales/eu/report 2:sales/latest_orders " +
				"2:sales/rolling_7d 2:sales/weekly_revenue 3:finance/report",
			edges: "sales/raw_orders>sales/eu/orders sales/raw_orders>sales/orders_clean " +
				"sales/eu/orders>sales/eu/report(all) sales/orders_clean>sales/eu/orders " +
				"sales/orders_clean>marketing/attribution sales/orders_clean>sales/all_time_summary(all) " +
				"sales/orders_clean>sales/latest_orders(last) sales/orders_clean>sales/rolling_7d[-6..0] " +
				"sales/orders_clean>sales/weekly_revenue marketing/attribution>finance/report(all) " +
				"sales/weekly_revenue>finance/report(all)",
		},
		{
			name: "both, depth 1", key: "sales/orders_clean", dir: Both, depth: 1,
			nodes: "-1:sales/raw_orders 0:sales/orders_clean 1:marketing/attribution 1:sales/all_time_summary " +
				"1:sales/eu/orders 1:sales/latest_orders 1:sales/rolling_7d 1:sales/weekly_revenue",
			// Every edge between returned nodes, including raw_orders → eu/orders, which
			// skips the root.
			edges: "sales/raw_orders>sales/orders_clean sales/raw_orders>sales/eu/orders " +
				"sales/orders_clean>marketing/attribution sales/orders_clean>sales/all_time_summary(all) " +
				"sales/orders_clean>sales/eu/orders sales/orders_clean>sales/latest_orders(last) " +
				"sales/orders_clean>sales/rolling_7d[-6..0] sales/orders_clean>sales/weekly_revenue",
			truncated: true,
		},
		{
			name: "depth 0 with neighbours", key: "sales/orders_clean", dir: Both, depth: 0,
			nodes: "0:sales/orders_clean", truncated: true,
		},
		{
			name: "depth 0 upstream of a source", key: "sales/raw_orders", dir: Upstream, depth: 0,
			nodes: "0:sales/raw_orders",
		},
		{
			name: "upstream of a source", key: "marketing/campaigns", dir: Upstream, depth: -1,
			nodes: "0:marketing/campaigns",
		},
		{
			name: "negative depths are unlimited", key: "42", dir: Both, depth: -7,
			nodes: "0:42 1:2024_budget", edges: "42>2024_budget",
		},
		{
			name: "depth beyond the graph", key: "42", dir: Downstream, depth: 1000,
			nodes: "0:42 1:2024_budget", edges: "42>2024_budget",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l, err := Traverse(g, tt.key, tt.dir, tt.depth)
			if err != nil {
				t.Fatal(err)
			}
			if got := nodesString(l.Nodes); got != tt.nodes {
				t.Errorf("nodes:\n got %s\nwant %s", got, tt.nodes)
			}
			if got := edgesString(l.Edges); got != tt.edges {
				t.Errorf("edges:\n got %s\nwant %s", got, tt.edges)
			}
			if l.Truncated != tt.truncated {
				t.Errorf("Truncated = %v, want %v", l.Truncated, tt.truncated)
			}
		})
	}
}

// TestTraverseInvariants checks, for every asset, direction and depth, that the
// edges are exactly those of the graph between returned nodes, that degrees are the
// shortest distances, and that Truncated says whether a larger depth finds more.
func TestTraverseInvariants(t *testing.T) {
	t.Parallel()
	g := testGraph(t)
	for i := range g.Len() {
		key := g.Asset(i).Key
		for _, dir := range []Direction{Upstream, Downstream, Both} {
			full, err := Traverse(g, key, dir, -1)
			if err != nil {
				t.Fatal(err)
			}
			for depth := 0; depth <= 4; depth++ {
				l, err := Traverse(g, key, dir, depth)
				if err != nil {
					t.Fatal(err)
				}
				var want []Node
				for _, n := range full.Nodes {
					if max(n.Degree, -n.Degree) <= depth {
						want = append(want, n)
					}
				}
				if !slices.Equal(l.Nodes, want) {
					t.Errorf("%s %s depth %d: nodes %s, want %s", key, dir, depth, nodesString(l.Nodes), nodesString(want))
				}
				if trunc := len(want) < len(full.Nodes); l.Truncated != trunc {
					t.Errorf("%s %s depth %d: Truncated = %v, want %v", key, dir, depth, l.Truncated, trunc)
				}
				in := map[assets.Key]bool{}
				for _, n := range l.Nodes {
					in[n.Key] = true
				}
				var edges []string
				for id := range g.NumEdges() {
					e := g.Edge(id)
					if from, to := g.Asset(e.From).Key, g.Asset(e.To).Key; in[from] && in[to] {
						edges = append(edges, string(from)+">"+string(to))
					}
				}
				var got []string
				for _, e := range l.Edges {
					got = append(got, string(e.From)+">"+string(e.To))
				}
				slices.Sort(edges)
				slices.Sort(got)
				if !slices.Equal(got, edges) {
					t.Errorf("%s %s depth %d: edges %q, want %q", key, dir, depth, got, edges)
				}
			}
		}
	}
}

func TestTraverseErrors(t *testing.T) {
	t.Parallel()
	g := testGraph(t)
	tests := []struct {
		key  assets.Key
		dir  Direction
		want string
	}{
		{"sales/raw_order", Upstream, `unknown asset "sales/raw_order" (did you mean "sales/raw_orders"?)`},
		{"orders_clean", Both, `unknown asset "orders_clean" (did you mean "sales/orders_clean"?)`},
		{"nothing/like/it", Downstream, `unknown asset "nothing/like/it"`},
		{"sales/raw_orders", 0, `lineage: invalid direction 0 (want Upstream, Downstream or Both)`},
		{"sales/raw_orders", 4, `lineage: invalid direction 4 (want Upstream, Downstream or Both)`},
	}
	for _, tt := range tests {
		l, err := Traverse(g, tt.key, tt.dir, -1)
		if err == nil || err.Error() != tt.want {
			t.Errorf("Traverse(%q, %d) = %+v, %v; want error %s", tt.key, tt.dir, l, err, tt.want)
		}
	}
	_, err := Traverse(g, "sales/raw_order", Upstream, 1)
	var ue *UnknownAssetError
	if !errors.As(err, &ue) || ue.Suggestion != "sales/raw_orders" {
		t.Errorf("error %#v, want an *UnknownAssetError suggesting sales/raw_orders", err)
	}
}

func TestDirection(t *testing.T) {
	t.Parallel()
	for _, d := range []Direction{Upstream, Downstream, Both} {
		got, err := ParseDirection(d.String())
		if err != nil || got != d {
			t.Errorf("ParseDirection(%q) = %v, %v; want %v", d.String(), got, err, d)
		}
	}
	if s := Direction(9).String(); s != "Direction(9)" {
		t.Errorf("Direction(9).String() = %q", s)
	}
	if _, err := ParseDirection("up"); err == nil || err.Error() != `unknown lineage direction "up" (want upstream, downstream or both)` {
		t.Errorf(`ParseDirection("up"): %v`, err)
	}
}

func TestWriteText(t *testing.T) {
	t.Parallel()
	g := testGraph(t)
	tests := []struct {
		golden string
		key    assets.Key
		dir    Direction
		depth  int
	}{
		{"report_upstream", "finance/report", Upstream, -1},
		{"report_upstream_depth1", "finance/report", Upstream, 1},
		{"raw_orders_downstream", "sales/raw_orders", Downstream, -1},
		{"orders_clean_both", "sales/orders_clean", Both, -1},
		{"weekly_revenue_both_depth1", "sales/weekly_revenue", Both, 1},
		{"campaigns_upstream", "marketing/campaigns", Upstream, -1},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			t.Parallel()
			l, err := Traverse(g, tt.key, tt.dir, tt.depth)
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			if err := l.WriteText(&buf); err != nil {
				t.Fatal(err)
			}
			file := filepath.Join("testdata", "lineage_"+tt.golden+".txt")
			if *update {
				if err := os.WriteFile(file, buf.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(file)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if got := buf.String(); got != string(want) {
				t.Errorf("WriteText for %s %s depth %d:\n%s\nwant (%s):\n%s", tt.key, tt.dir, tt.depth, got, file, want)
			}
		})
	}
}

func TestWriteTextErrors(t *testing.T) {
	t.Parallel()
	if err := (&Lineage{}).WriteText(&bytes.Buffer{}); err == nil {
		t.Error("WriteText of a lineage without a root: no error")
	}
	g := testGraph(t)
	l, err := Traverse(g, "sales/orders_clean", Both, -1)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.WriteText(failingWriter{}); err == nil || err.Error() != "disk full" {
		t.Errorf("WriteText to a failing writer: %v, want disk full", err)
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func BenchmarkTraverse(b *testing.B) {
	const n = 10_000
	g := bigGraph(b, n)
	for _, depth := range []int{2, -1} {
		b.Run(fmt.Sprintf("%d assets/both depth %d", n, depth), func(b *testing.B) {
			var nodes int
			for b.Loop() {
				l, err := Traverse(g, "g07/asset_05007", Both, depth)
				if err != nil {
					b.Fatal(err)
				}
				nodes = len(l.Nodes)
			}
			b.ReportMetric(float64(nodes), "nodes")
		})
	}
}
