package materialize

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/freshetdev/freshet/assets"
	"github.com/freshetdev/freshet/graph"
)

func parts(t testing.TB, g assets.Granularity, start string) *assets.Partitions {
	t.Helper()
	p, err := assets.NewPartitions(assets.PartitionsSpec{Granularity: g, Start: start})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func built(key string, p *assets.Partitions, deps ...assets.Dep) *assets.Asset {
	return &assets.Asset{Key: assets.Key(key), Partitions: p, Deps: deps, CodeVersion: "1",
		Compute: assets.CommandCompute{Argv: []string{"true"}}}
}

func on(key string) assets.Dep { return assets.Dep{Asset: assets.Key(key)} }

func mustGraph(t testing.TB, as ...*assets.Asset) *graph.Graph {
	t.Helper()
	defs := &assets.Definitions{Assets: as}
	if errs := defs.Validate(); len(errs) > 0 {
		t.Fatal(errs)
	}
	g, err := graph.New(defs)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func node(t testing.TB, g *graph.Graph, key string) int {
	t.Helper()
	i, ok := g.Index(assets.Key(key))
	if !ok {
		t.Fatalf("no asset %s", key)
	}
	return i
}

// describe renders steps and blocked partitions compactly for comparison.
func describe(p *Plan) []string {
	var out []string
	for s := range p.Steps() {
		a := p.g.Asset(int(s.Asset))
		keys := p.PartitionKeys(s)
		r := "-"
		if len(keys) == 1 {
			r = keys[0]
		} else if len(keys) > 1 {
			r = keys[0] + ".." + keys[len(keys)-1]
		}
		line := fmt.Sprintf("%s %s %s", a.Key, r, s.Status)
		for _, c := range p.StepCauses(s) {
			line += fmt.Sprintf(" %s(%s %s)", c.Kind, c.Asset, c.Partition)
		}
		out = append(out, line)
	}
	for _, b := range p.Blocked {
		out = append(out, fmt.Sprintf("blocked %s %s: %s", p.g.Asset(int(b.Asset)).Key, p.BlockedKey(b), p.Reason(b)))
	}
	return out
}

func selectKeys(g *graph.Graph, keys ...string) []bool {
	sel := make([]bool, g.Len())
	for _, k := range keys {
		i, _ := g.Index(assets.Key(k))
		sel[i] = true
	}
	return sel
}

var jan8 = time.Date(2026, 1, 8, 12, 0, 0, 0, time.UTC) // complete days: Jan 1..7

func day(s string) time.Time {
	t, err := time.Parse("2006-01-02", s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestPlanOnEmptyState(t *testing.T) {
	t.Parallel()
	g := mustGraph(t,
		built("sales/weekly", parts(t, assets.Weekly, "2025-12-29"), on("sales/clean")),
		built("sales/clean", parts(t, assets.Daily, "2026-01-01"), on("sales/raw")),
		built("sales/raw", parts(t, assets.Daily, "2026-01-01")),
	)
	sim := newSim(t, g, jan8)
	got := describe(sim.plan(Request{}))
	want := []string{
		"sales/raw 2026-01-01 MISSING", "sales/raw 2026-01-02 MISSING", "sales/raw 2026-01-03 MISSING",
		"sales/raw 2026-01-04 MISSING", "sales/raw 2026-01-05 MISSING", "sales/raw 2026-01-06 MISSING",
		"sales/raw 2026-01-07 MISSING",
		"sales/clean 2026-01-01 MISSING", "sales/clean 2026-01-02 MISSING", "sales/clean 2026-01-03 MISSING",
		"sales/clean 2026-01-04 MISSING", "sales/clean 2026-01-05 MISSING", "sales/clean 2026-01-06 MISSING",
		"sales/clean 2026-01-07 MISSING",
		// The week of 2025-12-29 is complete; its days before 2026-01-01 do not exist.
		"sales/weekly 2025-12-29 MISSING",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("plan:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestPlanScenarios(t *testing.T) {
	t.Parallel()
	type scenario struct {
		name  string
		graph func(t *testing.T) *graph.Graph
		// setup records history; then the plan of req is compared with want.
		setup func(s *sim)
		req   func(g *graph.Graph) Request
		want  []string
	}
	chain := func(t *testing.T) *graph.Graph {
		return mustGraph(t,
			built("up", parts(t, assets.Daily, "2026-01-01")),
			built("down", parts(t, assets.Daily, "2026-01-01"), on("up")),
		)
	}
	// materializeAll runs the full plan so that everything is fresh.
	materializeAll := func(s *sim) { s.run(s.plan(Request{})) }
	all := func(*graph.Graph) Request { return Request{} }
	scenarios := []scenario{
		{
			name: "fresh after a full run", graph: chain, setup: materializeAll, req: all, want: nil,
		},
		{
			name: "new upstream data version names the upstream partition", graph: chain,
			setup: func(s *sim) {
				materializeAll(s)
				s.record(0, s.key(0, "2026-01-03"), s.seq, true)
			},
			req:  all,
			want: []string{"down 2026-01-03 STALE UPSTREAM_CHANGED(up 2026-01-03)"},
		},
		{
			name: "same upstream data version changes nothing", graph: chain,
			setup: func(s *sim) {
				materializeAll(s)
				s.record(0, s.key(0, "2026-01-03"), s.seq, false)
			},
			req: all, want: nil,
		},
		{
			name: "code version bump", graph: func(t *testing.T) *graph.Graph {
				g := chain(t)
				return g
			},
			setup: func(s *sim) {
				materializeAll(s)
				s.g.Asset(1).CodeVersion = "2"
			},
			req:  func(g *graph.Graph) Request { return Request{From: day("2026-01-07"), To: day("2026-01-07")} },
			want: []string{"down 2026-01-07 STALE CODE_CHANGED(down )"},
		},
		{
			name: "deps changed", graph: func(t *testing.T) *graph.Graph {
				return mustGraph(t,
					built("up", parts(t, assets.Daily, "2026-01-01")),
					built("other", nil),
					built("down", parts(t, assets.Daily, "2026-01-01"), on("up")),
				)
			},
			setup: func(s *sim) {
				materializeAll(s)
				s.g.Asset(2).Deps = append(s.g.Asset(2).Deps, on("other"))
			},
			req:  func(g *graph.Graph) Request { return Request{From: day("2026-01-07"), To: day("2026-01-07")} },
			want: []string{"down 2026-01-07 STALE DEPS_CHANGED(down )"},
		},
		{
			name: "weekly downstream needs its seven days", graph: func(t *testing.T) *graph.Graph {
				return mustGraph(t,
					built("daily", parts(t, assets.Daily, "2026-01-05")),
					built("weekly", parts(t, assets.Weekly, "2026-01-05"), on("daily")),
				)
			},
			setup: func(s *sim) {
				s.now = time.Date(2026, 1, 20, 0, 0, 0, 0, time.UTC) // weeks of Jan 5 and Jan 12 complete
				materializeAll(s)
				s.record(0, s.key(0, "2026-01-14"), s.seq, true)
			},
			req:  all,
			want: []string{"weekly 2026-01-12 STALE UPSTREAM_CHANGED(daily 2026-01-14)"},
		},
		{
			name: "daily downstream of weekly waits for the week", graph: func(t *testing.T) *graph.Graph {
				return mustGraph(t,
					built("weekly", parts(t, assets.Weekly, "2026-01-05")),
					built("daily", parts(t, assets.Daily, "2026-01-05"), on("weekly")),
				)
			},
			setup: func(s *sim) { s.now = time.Date(2026, 1, 14, 0, 0, 0, 0, time.UTC) },
			req:   all,
			want: []string{
				"weekly 2026-01-05 MISSING",
				"daily 2026-01-05 MISSING", "daily 2026-01-06 MISSING", "daily 2026-01-07 MISSING",
				"daily 2026-01-08 MISSING", "daily 2026-01-09 MISSING", "daily 2026-01-10 MISSING",
				"daily 2026-01-11 MISSING",
				"blocked daily 2026-01-12: waiting for upstream window: weekly 2026-01-12 is not complete yet",
				"blocked daily 2026-01-13: waiting for upstream window: weekly 2026-01-12 is not complete yet",
			},
		},
		{
			name: "window pulls in selected upstream partitions outside it", graph: func(t *testing.T) *graph.Graph {
				return mustGraph(t,
					built("up", parts(t, assets.Daily, "2026-01-01")),
					built("rolling", parts(t, assets.Daily, "2026-01-01"), assets.Dep{Asset: "up", StartOffset: -2}),
				)
			},
			setup: func(*sim) {},
			req:   func(g *graph.Graph) Request { return Request{From: day("2026-01-06"), To: day("2026-01-06")} },
			want: []string{
				"up 2026-01-04 MISSING", "up 2026-01-05 MISSING", "up 2026-01-06 MISSING",
				"rolling 2026-01-06 MISSING",
			},
		},
		{
			name: "missing upstream that is not selected blocks", graph: chain, setup: func(*sim) {},
			req: func(g *graph.Graph) Request {
				return Request{Selected: selectKeys(g, "down"), From: day("2026-01-02"), To: day("2026-01-03")}
			},
			want: []string{
				"blocked down 2026-01-02: upstream up 2026-01-02 is missing and not selected (select +down to build it)",
				"blocked down 2026-01-03: upstream up 2026-01-03 is missing and not selected (select +down to build it)",
			},
		},
		{
			name: "unobserved source blocks, observed source does not", graph: func(t *testing.T) *graph.Graph {
				rates := built("rates", nil)
				rates.Compute = nil
				return mustGraph(t, rates,
					built("report", parts(t, assets.Daily, "2026-01-06"), on("rates")),
					built("summary", nil, on("report")),
				)
			},
			setup: func(*sim) {},
			req:   all,
			want: []string{
				"blocked report 2026-01-06: upstream source rates has no observation (observe it or report one)",
				"blocked report 2026-01-07: upstream source rates has no observation (observe it or report one)",
				"blocked summary : upstream report 2026-01-06 is missing and blocked itself",
			},
		},
		{
			name: "observed source", graph: func(t *testing.T) *graph.Graph {
				rates := built("rates", nil)
				rates.Compute = nil
				return mustGraph(t, rates, built("report", parts(t, assets.Daily, "2026-01-07"), on("rates")))
			},
			setup: func(s *sim) { s.record(0, 0, 0, true) },
			req:   all,
			want:  []string{"report 2026-01-07 MISSING"},
		},
		{
			name: "stale only through an unselected upstream is reported, not planned", graph: func(t *testing.T) *graph.Graph {
				return mustGraph(t,
					built("a", parts(t, assets.Daily, "2026-01-07")),
					built("b", parts(t, assets.Daily, "2026-01-07"), on("a")),
					built("c", parts(t, assets.Daily, "2026-01-07"), on("b")),
				)
			},
			setup: func(s *sim) {
				materializeAll(s)
				s.record(0, 0, s.seq, true) // a changes: b is UPSTREAM_CHANGED, c UPSTREAM_STALE
			},
			req: func(g *graph.Graph) Request { return Request{Selected: selectKeys(g, "c")} },
			want: []string{
				"blocked c 2026-01-07: stale only because upstream b 2026-01-07 is stale, and this plan does not rebuild it (select +c)",
			},
		},
		{
			name: "stale chain is planned whole", graph: func(t *testing.T) *graph.Graph {
				return mustGraph(t,
					built("a", parts(t, assets.Daily, "2026-01-07")),
					built("b", parts(t, assets.Daily, "2026-01-07"), on("a")),
					built("c", parts(t, assets.Daily, "2026-01-07"), on("b")),
				)
			},
			setup: func(s *sim) {
				materializeAll(s)
				s.record(0, 0, s.seq, true)
			},
			req: func(g *graph.Graph) Request { return Request{Selected: selectKeys(g, "b", "c")} },
			want: []string{
				"b 2026-01-07 STALE UPSTREAM_CHANGED(a 2026-01-07)",
				"c 2026-01-07 STALE UPSTREAM_STALE(b 2026-01-07)",
			},
		},
		{
			name: "all and last mappings into an unpartitioned asset", graph: func(t *testing.T) *graph.Graph {
				return mustGraph(t,
					built("daily", parts(t, assets.Daily, "2026-01-05")),
					built("total", nil, assets.Dep{Asset: "daily", Mapping: assets.MappingAll}),
					built("latest", nil, assets.Dep{Asset: "daily", Mapping: assets.MappingLast}),
				)
			},
			setup: func(s *sim) {
				materializeAll(s)
				s.record(0, s.key(0, "2026-01-05"), s.seq, true) // an old day: only "total" reads it
			},
			req:  all,
			want: []string{"total - STALE UPSTREAM_CHANGED(daily 2026-01-05)"},
		},
		{
			name: "batches group contiguous partitions of one status", graph: func(t *testing.T) *graph.Graph {
				b := built("b", parts(t, assets.Daily, "2026-01-01"))
				b.Batch.MaxPartitions = 3
				return mustGraph(t, b)
			},
			setup: func(s *sim) { s.record(0, s.key(0, "2026-01-05"), 0, true) },
			req:   all,
			want: []string{
				"b 2026-01-01..2026-01-03 MISSING", "b 2026-01-04 MISSING",
				"b 2026-01-06..2026-01-07 MISSING",
			},
		},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			g := sc.graph(t)
			s := newSim(t, g, jan8)
			sc.setup(s)
			got := describe(s.plan(sc.req(g)))
			if strings.Join(got, "\n") != strings.Join(sc.want, "\n") {
				t.Errorf("plan:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(sc.want, "\n"))
			}
		})
	}
}

func TestPlanJSONShape(t *testing.T) {
	t.Parallel()
	g := mustGraph(t,
		built("up", parts(t, assets.Daily, "2026-01-06")),
		built("down", parts(t, assets.Daily, "2026-01-06"), on("up")),
		built("total", nil, on("down")),
	)
	s := newSim(t, g, jan8)
	s.run(s.plan(Request{}))
	s.record(0, 1, s.seq, true)
	var buf bytes.Buffer
	if err := s.plan(Request{Selected: selectKeys(g, "down", "total")}).WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatalf("invalid JSON %q: %v", buf.String(), err)
	}
	want := `{"blocked":[],"steps":[` +
		`{"asset":"down","causes":[{"asset":"up","kind":"UPSTREAM_CHANGED","partition":"2026-01-07"}],"partitions":["2026-01-07"],"status":"STALE"},` +
		`{"asset":"total","causes":[{"asset":"down","kind":"UPSTREAM_STALE","partition":"2026-01-07"}],"partitions":[],"status":"STALE"}]}`
	if b, _ := json.Marshal(got); string(b) != want {
		t.Errorf("JSON:\n%s\nwant:\n%s", b, want)
	}
}

func TestPlanText(t *testing.T) {
	t.Parallel()
	g := mustGraph(t,
		built("sales/raw", parts(t, assets.Daily, "2026-01-01")),
		built("sales/clean", parts(t, assets.Daily, "2026-01-01"), on("sales/raw")),
	)
	s := newSim(t, g, jan8)
	s.run(s.plan(Request{To: day("2026-01-04")}))
	s.record(0, 2, s.seq, true)
	var buf bytes.Buffer
	if err := s.plan(Request{Selected: selectKeys(g, "sales/clean")}).WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	want := `Plan: 1 step in 1 partition over 1 asset.

sales/clean (daily): 1 partition in 1 step
  STALE    2026-01-03  UPSTREAM_CHANGED sales/raw 2026-01-03

Blocked: 3 partitions
  sales/clean 2026-01-05 … 2026-01-07 (3): upstream sales/raw 2026-01-05 … 2026-01-07 (3) are missing and not selected (select +sales/clean to build it)
`
	if got := buf.String(); got != want {
		t.Errorf("text:\n%s\nwant:\n%s", got, want)
	}
}

func TestComputeRejectsMismatchedInput(t *testing.T) {
	t.Parallel()
	g := mustGraph(t, built("a", nil))
	for name, tc := range map[string]struct {
		st  *State
		req Request
	}{
		"state for another graph": {&State{}, Request{Now: jan8}},
		"selection of wrong size": {NewEmptyState(g), Request{Now: jan8, Selected: []bool{true, true}}},
		"no now":                  {NewEmptyState(g), Request{}},
		"ragged arrays":           {&State{Assets: []AssetState{{Flags: []PartitionFlags{FlagMaterialized}}}}, Request{Now: jan8}},
	} {
		if _, err := Compute(g, tc.st, tc.req); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
