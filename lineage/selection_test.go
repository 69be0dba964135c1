package lineage

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/freshetdev/freshet/assets"
	"github.com/freshetdev/freshet/graph"
)

// testGraph is a small project:
//
//	sales/raw_orders ──► sales/orders_clean ──► sales/weekly_revenue ──(all)──► finance/report
//	      │                  │  │  │  │                  ▲                           ▲
//	      │                  │  │  │  └► sales/rolling_7d [-6..0]                   │
//	      │                  │  │  └► sales/all_time_summary (all)                  │
//	      │                  │  └► sales/latest_orders (last)                       │
//	      │                  └► marketing/attribution ────────────(all)─────────────┘
//	      │                     ▲                                 sales/exchange_rates ─► weekly_revenue
//	      ▼                     marketing/campaigns
//	sales/eu/orders ◄── (also from orders_clean) ──► sales/eu/report
//	42 ──► 2024_budget
func testGraph(t testing.TB) *graph.Graph {
	t.Helper()
	parts := func(g assets.Granularity, start string) *assets.Partitions {
		p, err := assets.NewPartitions(assets.PartitionsSpec{Granularity: g, Start: start})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	daily := parts(assets.Daily, "2026-01-01")
	weekly := parts(assets.Weekly, "2026-01-05")
	run := assets.CommandCompute{Argv: []string{"true"}}
	dep := func(k assets.Key) assets.Dep { return assets.Dep{Asset: k} }
	defs := &assets.Definitions{Assets: []*assets.Asset{
		{Key: "sales/raw_orders", Group: "sales", Owners: []string{"team:data-eng"}, Tags: []string{"pii"}, Partitions: daily, Compute: run},
		{Key: "sales/exchange_rates", Group: "sales", Owners: []string{"team:finance"}},
		{Key: "sales/orders_clean", Group: "sales", Owners: []string{"team:data-eng"}, Tags: []string{"pii"}, Partitions: daily,
			Deps: []assets.Dep{dep("sales/raw_orders")}, Compute: run},
		{Key: "sales/weekly_revenue", Group: "sales", Partitions: weekly,
			Deps: []assets.Dep{dep("sales/orders_clean"), dep("sales/exchange_rates")}, Compute: run},
		{Key: "sales/rolling_7d", Group: "sales", Partitions: daily,
			Deps: []assets.Dep{{Asset: "sales/orders_clean", StartOffset: -6}}, Compute: run},
		{Key: "sales/all_time_summary", Group: "sales", Deps: []assets.Dep{dep("sales/orders_clean")}, Compute: run},
		{Key: "sales/latest_orders", Group: "sales", Deps: []assets.Dep{{Asset: "sales/orders_clean", Mapping: assets.MappingLast}}, Compute: run},
		{Key: "sales/eu/orders", Group: "sales", Tags: []string{"pii", "eu"}, Partitions: daily,
			Deps: []assets.Dep{dep("sales/raw_orders"), dep("sales/orders_clean")}, Compute: run},
		{Key: "sales/eu/report", Group: "sales", Tags: []string{"eu"}, Deps: []assets.Dep{dep("sales/eu/orders")}, Compute: run},
		{Key: "marketing/campaigns", Group: "marketing", Owners: []string{"alice@example.com"}, Tags: []string{"nightly"}},
		{Key: "marketing/attribution", Group: "marketing", Owners: []string{"team:growth"}, Tags: []string{"pii"}, Partitions: daily,
			Deps: []assets.Dep{dep("marketing/campaigns"), dep("sales/orders_clean")}, Compute: run},
		{Key: "finance/report", Group: "finance", Owners: []string{"team:finance"},
			Deps: []assets.Dep{dep("sales/weekly_revenue"), dep("marketing/attribution")}, Compute: run},
		{Key: "42", Group: "finance"},
		{Key: "2024_budget", Group: "finance", Deps: []assets.Dep{dep("42")}, Compute: run},
	}}
	if errs := defs.Validate(); len(errs) > 0 {
		t.Fatal(errs)
	}
	g, err := graph.New(defs)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// selected lists the keys of the selected nodes, sorted.
func selected(g *graph.Graph, sel []bool) []string {
	var keys []string
	for i, ok := range sel {
		if ok {
			keys = append(keys, string(g.Asset(i).Key))
		}
	}
	slices.Sort(keys)
	return keys
}

func TestParseCanonical(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"*", "*"},
		{"key:*", "*"},
		{"sales/raw_orders", "sales/raw_orders"},
		{"key:sales/raw_orders", "sales/raw_orders"},
		{"sales/*", "sales/*"},
		{"sales/raw_*", "sales/raw_*"},
		{"key:sales/*/orders", "sales/*/orders"},
		{"group:sales", "group:sales"},
		{"tag:pii", "tag:pii"},
		{"owner:team:data-eng", "owner:team:data-eng"},
		{"owner:alice@example.com", "owner:alice@example.com"},
		{"group:a:b", "group:a:b"},
		{"tag:été", "tag:été"},
		{"+x", "+x"},
		{"2+x", "2+x"},
		{"007+x+010", "7+x+10"},
		{"x+", "x+"},
		{"x+3", "x+3"},
		{"+x+", "+x+"},
		{"2+x+1", "2+x+1"},
		{"+tag:pii+", "+tag:pii+"},
		{"3+owner:team:data-eng+1", "3+owner:team:data-eng+1"},
		{"+*", "+*"},
		{"tag:pii,group:sales", "tag:pii,group:sales"},
		{"a b,c", "a b,c"},
		{"  a \t\n b,+c+2   d ", "a b,+c+2 d"},
		{"a\u00a0b", "a b"}, // any Unicode space separates terms
		{"+finance/report,tag:pii", "+finance/report,tag:pii"},
		{"2024_budget", "key:2024_budget"},
		{"key:2024_budget", "key:2024_budget"},
		{"1+2024_budget", "1+key:2024_budget"},
		{"key:42+", "key:42+"},
		{"key:42+1", "key:42+1"},
		{"42", "key:42"},
		{"1+42", "1+key:42"},
		{"2+42+", "2+key:42+"},
		{"**", "**"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			s, err := Parse(tt.in)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.in, err)
			}
			if got := s.String(); got != tt.want {
				t.Fatalf("Parse(%q).String() = %q, want %q", tt.in, got, tt.want)
			}
			again, err := Parse(s.String())
			if err != nil {
				t.Fatalf("Parse(%q) (canonical): %v", s.String(), err)
			}
			if !slices.EqualFunc(again.terms, s.terms, slices.Equal) {
				t.Fatalf("round trip of %q: %+v, want %+v", tt.in, again.terms, s.terms)
			}
		})
	}
}

func TestParseStructure(t *testing.T) {
	t.Parallel()
	key := func(v string) atom { return atom{kind: atomKey, value: v} }
	tests := []struct {
		in   string
		want [][]selector
	}{
		{"*", [][]selector{{{atom: atom{kind: atomAll}}}}},
		{"sales/*", [][]selector{{{atom: atom{kind: atomPattern, value: "sales/*"}}}}},
		{"owner:team:data-eng", [][]selector{{{atom: atom{kind: atomOwner, value: "team:data-eng"}}}}},
		{"group:sales", [][]selector{{{atom: atom{kind: atomGroup, value: "sales"}}}}},
		{"tag:pii", [][]selector{{{atom: atom{kind: atomTag, value: "pii"}}}}},
		{"+a", [][]selector{{{atom: key("a"), up: unlimited}}}},
		{"2+a+", [][]selector{{{atom: key("a"), up: 2, down: unlimited}}}},
		{"a+5", [][]selector{{{atom: key("a"), down: 5}}}},
		// Comma binds tighter than whitespace: a ∪ (b ∩ c).
		{"a b,c", [][]selector{{{atom: key("a")}}, {{atom: key("b")}, {atom: key("c")}}}},
		{"a,b c", [][]selector{{{atom: key("a")}, {atom: key("b")}}, {{atom: key("c")}}}},
		// Leading digits and + are a depth.
		{"1+2", [][]selector{{{atom: key("2"), up: 1}}}},
		{"12+3+4", [][]selector{{{atom: key("3"), up: 12, down: 4}}}},
		{"key:1+2", [][]selector{{{atom: key("1"), down: 2}}}},
		{"12a+", [][]selector{{{atom: key("12a"), down: unlimited}}}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			s, err := Parse(tt.in)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.in, err)
			}
			if !slices.EqualFunc(s.terms, tt.want, slices.Equal) {
				t.Fatalf("Parse(%q) = %+v, want %+v", tt.in, s.terms, tt.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	keyRule := `: keys are lowercase identifiers [a-z0-9_] joined by "/"`
	comma := ` (a comma joins two selectors into an intersection, with no spaces around it: tag:pii,group:sales)`
	tests := []struct {
		in     string
		column int
		want   string
	}{
		// empty
		{"", 0, `selection "": empty expression (want "*", an asset key, or group:NAME, tag:NAME, owner:NAME)`},
		{" \t\n", 0, `selection " \t\n": empty expression (want "*", an asset key, or group:NAME, tag:NAME, owner:NAME)`},
		// unexpected text
		{"sales/x++", 9, `selection "sales/x++": column 9: unexpected "+"`},
		{"++x", 2, `selection "++x": column 2: unexpected "+"`},
		{"2++x", 3, `selection "2++x": column 3: unexpected "+"`},
		{"x+2a", 4, `selection "x+2a": column 4: unexpected "a"`},
		{"tag:é x++", 9, `selection "tag:é x++": column 9: unexpected "+"`}, // columns count characters
		// missing selector after an operator
		{"+", 1, `selection "+": column 1: expected a selector after "+"`},
		{"a +", 3, `selection "a +": column 3: expected a selector after "+"`},
		{"+,a", 1, `selection "+,a": column 1: expected a selector after "+"`},
		{"2+ x", 1, `selection "2+ x": column 1: expected a selector after "2+" (no space goes between a + and its selector)`},
		{"2024+", 1, `selection "2024+": column 1: expected a selector after "2024+"; leading digits and + are a depth, so for the asset 2024 and its downstream write key:2024+`},
		// methods
		{"grp:sales", 1, `selection "grp:sales": column 1: unknown method "grp" (want group, tag, owner or key)`},
		{"a Tag:pii", 3, `selection "a Tag:pii": column 3: unknown method "Tag" (want group, tag, owner or key)`},
		{"sales/x:y", 1, `selection "sales/x:y": column 1: unknown method "sales/x" (want group, tag, owner or key)`},
		{":pii", 1, `selection ":pii": column 1: missing method before ":" (want group:, tag:, owner: or key:)`},
		{"group:", 1, `selection "group:": column 1: empty value in "group:" (want group:NAME)`},
		{"a tag:", 3, `selection "a tag:": column 3: empty value in "tag:" (want tag:NAME)`},
		{"owner:+", 1, `selection "owner:+": column 1: empty value in "owner:" (want owner:NAME)`},
		{"tag:,x", 1, `selection "tag:,x": column 1: empty value in "tag:" (want tag:NAME)`},
		{"key:", 1, `selection "key:": column 1: empty value in "key:" (want key:sales/orders or key:sales/*)`},
		{"tag:pi*", 7, `selection "tag:pi*": column 7: invalid character "*" in tag "pi*": patterns work only on keys`},
		{"group:a\x00b", 8, `selection "group:a\x00b": column 8: invalid character "\x00" in group "a\x00b"`},
		{"owner:a\u200bb", 8, `selection "owner:a\u200bb": column 8: invalid character "\u200b" in owner "a\u200bb"`},
		// depths
		{"0+x", 1, `selection "0+x": column 1: depth "0" selects no levels (want 1 or more, or a bare + for unlimited)`},
		{"x+00", 3, `selection "x+00": column 3: depth "00" selects no levels (want 1 or more, or a bare + for unlimited)`},
		{"x+1000001", 3, `selection "x+1000001": column 3: depth "1000001" is too large (at most 1000000; a bare + means unlimited)`},
		{"99999999999999999999999+x", 1, `selection "99999999999999999999999+x": column 1: depth "99999999999999999999999" is too large (at most 1000000; a bare + means unlimited)`},
		// commas
		{",a", 1, `selection ",a": column 1: stray ","` + comma},
		{"a,", 2, `selection "a,": column 2: stray ","` + comma},
		{"a,,b", 2, `selection "a,,b": column 2: stray ","` + comma},
		{"a ,b", 3, `selection "a ,b": column 3: stray ","` + comma},
		{"a, b", 2, `selection "a, b": column 2: stray ","` + comma},
		{",", 1, `selection ",": column 1: stray ","` + comma},
		// keys
		{"Sales/x", 1, `selection "Sales/x": column 1: invalid character "S" in key "Sales/x"` + keyRule + ` (did you mean "sales/x"?)`},
		{"sales/raw-orders", 10, `selection "sales/raw-orders": column 10: invalid character "-" in key "sales/raw-orders"` + keyRule},
		{"key:sales/X", 11, `selection "key:sales/X": column 11: invalid character "X" in key "sales/X"` + keyRule + ` (did you mean "sales/x"?)`},
		{"sales/x?", 8, `selection "sales/x?": column 8: invalid character "?" in key "sales/x?"` + keyRule},
		{"é", 1, `selection "é": column 1: invalid character "é" in key "é"` + keyRule},
		{"sales//x", 7, `selection "sales//x": column 7: empty segment in key "sales//x" (keys are identifiers joined by single slashes, like sales/raw_orders)`},
		{"/x", 1, `selection "/x": column 1: empty segment in key "/x" (keys are identifiers joined by single slashes, like sales/raw_orders)`},
		{"a x/", 4, `selection "a x/": column 4: empty segment in key "x/" (keys are identifiers joined by single slashes, like sales/raw_orders)`},
		{"key:/", 5, `selection "key:/": column 5: empty segment in key "/" (keys are identifiers joined by single slashes, like sales/raw_orders)`},
		// encoding
		{"ab\xff", 3, `selection "ab\xff": column 3: invalid UTF-8`},
		{"é\xffa", 2, `selection "é\xffa": column 2: invalid UTF-8`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			s, err := Parse(tt.in)
			if err == nil {
				t.Fatalf("Parse(%q) = %q, want error %s", tt.in, s, tt.want)
			}
			if err.Error() != tt.want {
				t.Fatalf("Parse(%q) error:\n got %s\nwant %s", tt.in, err, tt.want)
			}
			var se *SyntaxError
			if !errors.As(err, &se) || se.Column != tt.column || se.Expr != tt.in {
				t.Fatalf("Parse(%q) error %#v, want a *SyntaxError at column %d", tt.in, err, tt.column)
			}
		})
	}
}

func TestResolve(t *testing.T) {
	t.Parallel()
	g := testGraph(t)
	all := selected(g, slices.Repeat([]bool{true}, g.Len()))
	upstreamOfReport := []string{"finance/report", "marketing/attribution", "marketing/campaigns",
		"sales/exchange_rates", "sales/orders_clean", "sales/raw_orders", "sales/weekly_revenue"}
	tests := []struct {
		expr string
		want []string
	}{
		{"*", all},
		{"key:*", all},
		{"sales/raw_orders", []string{"sales/raw_orders"}},
		{"key:sales/raw_orders", []string{"sales/raw_orders"}},
		{"sales/raw_orders sales/raw_orders", []string{"sales/raw_orders"}},
		// Patterns: * stays within one segment.
		{"sales/*", []string{"sales/all_time_summary", "sales/exchange_rates", "sales/latest_orders",
			"sales/orders_clean", "sales/raw_orders", "sales/rolling_7d", "sales/weekly_revenue"}},
		{"sales/*/*", []string{"sales/eu/orders", "sales/eu/report"}},
		{"sales/raw_*", []string{"sales/raw_orders"}},
		{"*/*orders*", []string{"sales/latest_orders", "sales/orders_clean", "sales/raw_orders"}},
		{"**", []string{"2024_budget", "42"}},
		{"sales/nothing_*", nil},
		// Methods.
		{"group:marketing", []string{"marketing/attribution", "marketing/campaigns"}},
		{"group:Marketing", nil},
		{"tag:pii", []string{"marketing/attribution", "sales/eu/orders", "sales/orders_clean", "sales/raw_orders"}},
		{"tag:nope", nil},
		{"owner:team:data-eng", []string{"sales/orders_clean", "sales/raw_orders"}},
		{"owner:team", nil},
		{"owner:alice@example.com", []string{"marketing/campaigns"}},
		// Graph operators.
		{"+finance/report", upstreamOfReport},
		{"1+finance/report", []string{"finance/report", "marketing/attribution", "sales/weekly_revenue"}},
		{"2+finance/report", []string{"finance/report", "marketing/attribution", "marketing/campaigns",
			"sales/exchange_rates", "sales/orders_clean", "sales/weekly_revenue"}},
		{"3+finance/report", upstreamOfReport},
		{"50+finance/report", upstreamOfReport},
		{"sales/raw_orders+", []string{"finance/report", "marketing/attribution", "sales/all_time_summary",
			"sales/eu/orders", "sales/eu/report", "sales/latest_orders", "sales/orders_clean", "sales/raw_orders",
			"sales/rolling_7d", "sales/weekly_revenue"}},
		{"sales/raw_orders+1", []string{"sales/eu/orders", "sales/orders_clean", "sales/raw_orders"}},
		{"+sales/weekly_revenue+", []string{"finance/report", "sales/exchange_rates", "sales/orders_clean",
			"sales/raw_orders", "sales/weekly_revenue"}},
		{"1+sales/weekly_revenue+1", []string{"finance/report", "sales/exchange_rates", "sales/orders_clean", "sales/weekly_revenue"}},
		{"2+sales/weekly_revenue+1", []string{"finance/report", "sales/exchange_rates", "sales/orders_clean",
			"sales/raw_orders", "sales/weekly_revenue"}},
		{"2+tag:nightly+1", []string{"marketing/attribution", "marketing/campaigns"}},
		{"tag:eu+1", []string{"sales/eu/orders", "sales/eu/report"}},
		{"1+tag:eu", []string{"sales/eu/orders", "sales/eu/report", "sales/orders_clean", "sales/raw_orders"}},
		{"+tag:nope+", nil},
		{"+*", all},
		// Intersections, and their precedence over unions: a b,c = a ∪ (b ∩ c).
		{"tag:pii,group:sales", []string{"sales/eu/orders", "sales/orders_clean", "sales/raw_orders"}},
		{"group:finance tag:pii,group:marketing", []string{"2024_budget", "42", "finance/report", "marketing/attribution"}},
		{"tag:pii,group:marketing group:finance", []string{"2024_budget", "42", "finance/report", "marketing/attribution"}},
		{"+finance/report,tag:pii", []string{"marketing/attribution", "sales/orders_clean", "sales/raw_orders"}},
		{"tag:pii,+finance/report", []string{"marketing/attribution", "sales/orders_clean", "sales/raw_orders"}},
		{"tag:pii,group:sales,owner:team:data-eng", []string{"sales/orders_clean", "sales/raw_orders"}},
		{"tag:pii,tag:nope", nil},
		// Keys that start with digits.
		{"42", []string{"42"}},
		{"key:42+", []string{"2024_budget", "42"}},
		{"1+2024_budget", []string{"2024_budget", "42"}},
		{"1+key:2024_budget", []string{"2024_budget", "42"}},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			t.Parallel()
			sel, err := Select(g, tt.expr)
			if err != nil {
				t.Fatalf("Select(%q): %v", tt.expr, err)
			}
			if len(sel) != g.Len() {
				t.Fatalf("Select(%q) has %d entries, want one per node (%d)", tt.expr, len(sel), g.Len())
			}
			if got := selected(g, sel); !slices.Equal(got, tt.want) {
				t.Fatalf("Select(%q) =\n  %q\nwant\n  %q", tt.expr, got, tt.want)
			}
		})
	}
}

func TestResolveUnknownKeys(t *testing.T) {
	t.Parallel()
	g := testGraph(t)
	tests := []struct {
		expr string
		want []UnknownAssetError
	}{
		{"sales/raw_order", []UnknownAssetError{{"sales/raw_order", "sales/raw_orders"}}},
		{"key:sales/raw_order+", []UnknownAssetError{{"sales/raw_order", "sales/raw_orders"}}},
		{"sales/orders", []UnknownAssetError{{"sales/orders", "sales/eu/orders"}}},
		{"raw_orders", []UnknownAssetError{{"raw_orders", "sales/raw_orders"}}}, // the same key in a group folder
		{"finance/reports", []UnknownAssetError{{"finance/reports", "finance/report"}}},
		{"eu/orders", []UnknownAssetError{{"eu/orders", "sales/eu/orders"}}},
		{"zzz", []UnknownAssetError{{"zzz", ""}}},
		{"tag:pii,sales/raw_order", []UnknownAssetError{{"sales/raw_order", "sales/raw_orders"}}},
		// Every unknown key is reported, each once, and patterns or methods never are.
		{"sales/raw_order tag:nope sales/nope_* sales/weekly_revnue sales/raw_order",
			[]UnknownAssetError{{"sales/raw_order", "sales/raw_orders"}, {"sales/weekly_revnue", "sales/weekly_revenue"}}},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			t.Parallel()
			sel, err := Select(g, tt.expr)
			if err == nil {
				t.Fatalf("Select(%q) = %q, want an error", tt.expr, selected(g, sel))
			}
			var lines []string
			for _, want := range tt.want {
				lines = append(lines, want.Error())
			}
			if got, want := err.Error(), strings.Join(lines, "\n"); got != want {
				t.Fatalf("Select(%q) error:\n got %s\nwant %s", tt.expr, got, want)
			}
			var ue *UnknownAssetError
			if !errors.As(err, &ue) || *ue != tt.want[0] {
				t.Fatalf("Select(%q) error %#v, want to find %#v", tt.expr, err, tt.want[0])
			}
		})
	}
	// The message itself.
	_, err := Select(g, "sales/raw_order")
	if want := `unknown asset "sales/raw_order" (did you mean "sales/raw_orders"?)`; err == nil || err.Error() != want {
		t.Fatalf("error %v, want %s", err, want)
	}
	_, err = Select(g, "zzz")
	if want := `unknown asset "zzz"`; err == nil || err.Error() != want {
		t.Fatalf("error %v, want %s", err, want)
	}
}

func TestResolveEmptyGraph(t *testing.T) {
	t.Parallel()
	g, err := graph.New(&assets.Definitions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, expr := range []string{"*", "+tag:x+", "a/*"} {
		sel, err := Select(g, expr)
		if err != nil || len(sel) != 0 {
			t.Errorf("Select(%q) on an empty graph = %v, %v; want an empty set", expr, sel, err)
		}
	}
	if _, err := Select(g, "a"); err == nil || err.Error() != `unknown asset "a"` {
		t.Errorf(`Select("a") on an empty graph: %v`, err)
	}
}

func TestSelectSyntaxError(t *testing.T) {
	t.Parallel()
	g := testGraph(t)
	_, err := Select(g, "grp:sales")
	var se *SyntaxError
	if !errors.As(err, &se) {
		t.Fatalf("Select with bad syntax: %v, want a *SyntaxError", err)
	}
}

// bigGraph has n assets in 100 groups: chains of 50, every third asset also reading
// the one 50 before it.
func bigGraph(b *testing.B, n int) *graph.Graph {
	b.Helper()
	defs := &assets.Definitions{}
	for i := range n {
		a := &assets.Asset{
			Key:   assets.Key(fmt.Sprintf("g%02d/asset_%05d", i%100, i)),
			Group: fmt.Sprintf("g%02d", i%100),
			Tags:  []string{fmt.Sprintf("t%d", i%7)},
		}
		if i%50 != 0 {
			a.Deps = append(a.Deps, assets.Dep{Asset: defs.Assets[i-1].Key})
		}
		if i >= 50 && i%3 == 0 {
			a.Deps = append(a.Deps, assets.Dep{Asset: defs.Assets[i-50].Key})
		}
		defs.Assets = append(defs.Assets, a)
	}
	g, err := graph.New(defs)
	if err != nil {
		b.Fatal(err)
	}
	return g
}

func BenchmarkSelect(b *testing.B) {
	const n = 10_000
	g := bigGraph(b, n)
	for _, expr := range []string{
		"g07/asset_05007",
		"+g07/asset_05007+",
		"tag:t3,group:g42 g1*/*",
		"2+tag:t1+2",
	} {
		b.Run(fmt.Sprintf("%d assets/%s", n, expr), func(b *testing.B) {
			for b.Loop() {
				if _, err := Select(g, expr); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
