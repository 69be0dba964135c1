package gql

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/freshetdev/freshet/assets"
	"github.com/freshetdev/freshet/graph"
	"github.com/freshetdev/freshet/materialize"
	"github.com/freshetdev/freshet/store"
	"github.com/freshetdev/freshet/store/postgres"
	"github.com/freshetdev/freshet/store/postgres/pgtest"
)

// graphTestDefs has every kind of field value the direct writer writes: text
// that needs escaping (quotes, backslashes, control characters, non-ASCII,
// a line separator), empty and full lists, sources, unpartitioned and
// partitioned assets (hourly in a timezone with an end offset, daily with an
// end, monthly), and edges with every mapping.
const graphTestDefs = `assets:
  - key: web/events
    description: "Raw \"click\" events\\one file per hour.\n\ttabbed\u0001\u001f\u007f é 日本 \u2028 end"
    group: web
    owners: [team:web, alice@example.com]
    tags: [pii, "in\"gest"]
    code_version: 1
    partitions:
      hourly:
        start: 2026-03-01T00:00
        timezone: Europe/Berlin
        end_offset: 1
    compute: {command: [./ingest, "{partition}"]}
  - key: web/sessions
    group: web
    deps:
      - {asset: web/events, start_offset: -1, end_offset: 1}
    partitions: {daily: {start: 2026-03-01 06:00, end: 2027-01-01, timezone: Europe/Berlin}}
    compute: {http: https://jobs.example.com/sessions}
    code_version: v2.1
  - key: finance/monthly
    group: finance
    deps: [web/sessions]
    partitions: {monthly: {start: 2026-01-01, timezone: America/New_York}}
    compute: {command: ["true"]}
  - key: finance/future
    deps: [finance/monthly]
    partitions: {daily: {start: 2030-01-01}}
    compute: {command: ["true"]}
  - key: finance/latest
    deps: [{asset: finance/monthly, mapping: last}, {asset: web/sessions, mapping: all}, finance/fx]
    compute: {command: [python3, latest.py]}
  - key: finance/fx
    description: FX rates.
    observe: {http: "https://fx.example.com/version"}
`

// graphTestNow is the clock of the tests' engine: a fixed one, so that both
// handlers see the same partitions.
var graphTestNow = time.Date(2026, 3, 10, 12, 34, 56, 0, time.UTC)

// openGraphTestEngine serves graphTestDefs over a fresh PostgreSQL catalog with
// a few materializations and failures recorded and one run queued.
func openGraphTestEngine(t *testing.T) *materialize.Engine {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "freshet.yaml"), []byte(graphTestDefs), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	st, err := postgres.Open(ctx, pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	defs, err := assets.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	g, err := graph.New(defs)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.SyncDefinitions(ctx, defs); err != nil {
		t.Fatal(err)
	}
	events := []store.Event{
		{Kind: store.Observation, Asset: "finance/fx", DataVersion: "v1", At: graphTestNow.Add(-time.Hour)},
		{Kind: store.Materialization, Asset: "finance/monthly", Partition: "2026-01", InputSeq: store.AtAppend, At: graphTestNow.Add(-time.Hour)},
		{Kind: store.Failure, Asset: "finance/monthly", Partition: "2026-02", Error: "boom", At: graphTestNow.Add(-time.Hour)},
	}
	for h := range 100 {
		key := defs.Assets[0].Partitions.Key(h)
		events = append(events, store.Event{Kind: store.Materialization, Asset: "web/events", Partition: key, InputSeq: store.AtAppend, At: graphTestNow.Add(-time.Hour)})
	}
	if _, err := st.Append(ctx, events); err != nil {
		t.Fatal(err)
	}
	e, err := materialize.OpenEngine(ctx, st, dir, defs, g, func() time.Time { return graphTestNow })
	if err != nil {
		t.Fatal(err)
	}
	// Partitions in flight: a run nobody works on keeps its steps queued.
	if _, _, err := e.Launch(ctx, materialize.LaunchRequest{PlanRequest: materialize.PlanRequest{Selection: "web/sessions"}, Trigger: store.TriggerAPI}); err != nil {
		t.Fatal(err)
	}
	return e
}

// graphQueries are assetGraph queries over graphTestDefs; direct says whether
// the direct writer writes them.
var graphQueries = []struct {
	name   string
	query  string
	vars   map[string]any
	direct bool
}{
	{name: "the benchmark's", direct: true,
		query: `{ assetGraph { nodes { key group isSource status { fresh stale missing failed running queued total } } edges { from to mapping } } }`},
	{name: "every direct field", direct: true,
		query: `{ assetGraph { __typename nodes { __typename key group description owners tags codeVersion isSource computeKind
			partitionsDef { __typename granularity start end timezone endOffset count firstKey lastKey }
			status { __typename fresh stale missing failed running queued total } } edges { __typename from to mapping } } }`},
	{name: "aliases, repeated fields and order", direct: true,
		query: `{ g: assetGraph { e: edges { m: mapping to } nodes { k: key status { total } key status { fresh t: total } k2: key } n: nodes { t: __typename } } }`},
	{name: "fragments", direct: true,
		query: `query Q { assetGraph { ...G } } fragment G on AssetGraph { nodes { ...A ... on Asset { status { ...S } } ... { tags } } }
			fragment A on Asset { key owners } fragment S on AssetStatus { missing queued }`},
	{name: "skip and include", direct: true, vars: map[string]any{"yes": true, "no": false},
		query: `query Q($yes: Boolean!, $no: Boolean!) { assetGraph { nodes { key @include(if: $yes) group @include(if: $no) status @skip(if: $no) { total }
			... @skip(if: $yes) { description } } edges @skip(if: $yes) { from } } }`},
	{name: "a selection argument", direct: true,
		query: `{ assetGraph(selection: "+finance/latest") { nodes { key } edges { from to } } }`},
	{name: "a selection variable", direct: true, vars: map[string]any{"sel": "group:web"},
		query: `query Q($sel: String) { assetGraph(selection: $sel) { nodes { key computeKind } edges { from to mapping } } }`},
	{name: "a null selection variable", direct: true, vars: map[string]any{"sel": nil},
		query: `query Q($sel: String) { assetGraph(selection: $sel) { nodes { key } } }`},
	{name: "an omitted selection variable", direct: true,
		query: `query Q($sel: String) { assetGraph(selection: $sel) { nodes { key } } }`},
	{name: "a selection variable's default", direct: true,
		query: `query Q($sel: String = "finance/fx+") { assetGraph(selection: $sel) { nodes { key } edges { to } } }`},
	{name: "an empty selection", direct: true,
		query: `{ assetGraph(selection: "tag:nothing") { nodes { key } edges { from } } }`},
	{name: "two graphs and another root field", direct: true,
		query: `{ a: assetGraph(selection: "web/events") { nodes { key } } definitions { assets } b: assetGraph { edges { from } } __typename }`},
	{name: "an unknown asset", direct: true,
		query: `{ assetGraph(selection: "nope/nothing") { nodes { key } } }`},
	{name: "upstream", direct: false,
		query: `{ assetGraph { nodes { key upstream { key } } } }`},
	{name: "a field reading the catalog", direct: false,
		query: `{ assetGraph { nodes { key partitionStatus { start end status count } } } }`},
	{name: "freshness", direct: false,
		query: `{ assetGraph { nodes { key freshness { status } } } }`},
	{name: "defer", direct: false,
		query: `{ assetGraph { nodes { key ... @defer { status { total } } } } }`},
}

// TestDirectAssetGraphMatchesGqlgen checks that the direct writer writes what
// gqlgen's generated code writes, byte for byte, and that it writes the
// queries it should.
func TestDirectAssetGraphMatchesGqlgen(t *testing.T) {
	t.Parallel()
	e := openGraphTestEngine(t)
	direct := NewHandler(&Resolver{Engine: e}, Options{NoResponseCache: true})
	generated := NewHandler(&Resolver{Engine: e}, Options{NoResponseCache: true, gqlgenAssetGraph: true})
	schema := gqlparser.MustLoadSchema(sources...)
	for _, c := range graphQueries {
		t.Run(c.name, func(t *testing.T) {
			if got := writesDirectly(t, schema, c.query, c.vars); got != c.direct {
				t.Errorf("written directly: %v, want %v", got, c.direct)
			}
			want := postGraphQL(t, generated, c.query, c.vars)
			got := postGraphQL(t, direct, c.query, c.vars)
			if got != want {
				t.Errorf("direct writer:\n%s\ngqlgen:\n%s", got, want)
			}
			if os.Getenv("FRESHET_SHOW_GRAPH_JSON") != "" {
				t.Logf("%s", got)
			}
			if !json.Valid([]byte(got)) {
				t.Errorf("not JSON: %s", got)
			}
		})
	}
	// The counts the graph shows come from the catalog: check a few, so that
	// the comparison above compares something.
	var resp struct {
		Data struct {
			AssetGraph struct {
				Nodes []struct {
					Key    string
					Status AssetStatus
				}
			}
		}
	}
	body := postGraphQL(t, direct, `{ assetGraph { nodes { key status { fresh stale missing failed running queued total } } } }`, nil)
	if err := json.Unmarshal([]byte(body), &resp); err != nil {
		t.Fatal(err)
	}
	got := map[string]AssetStatus{}
	for _, n := range resp.Data.AssetGraph.Nodes {
		got[n.Key] = n.Status
	}
	if s := got["web/events"]; s.Fresh != 100 || s.Total <= 100 {
		t.Errorf("web/events: %+v; want 100 fresh of more", s)
	}
	if s := got["finance/monthly"]; s.Failed != 1 {
		t.Errorf("finance/monthly: %+v; want 1 failed", s)
	}
	if s := got["web/sessions"]; s.Queued == 0 {
		t.Errorf("web/sessions: %+v; want some queued (a run waits)", s)
	}
}

// writesDirectly reports whether the direct writer takes every assetGraph
// field of the query.
func writesDirectly(t *testing.T, schema *ast.Schema, query string, vars map[string]any) bool {
	t.Helper()
	doc, errs := gqlparser.LoadQuery(schema, query)
	if len(errs) > 0 {
		t.Fatalf("%s: %v", query, errs)
	}
	oc := &graphql.OperationContext{Doc: doc, Operation: doc.Operations[0], Variables: vars}
	n := 0
	for _, f := range graphql.CollectFields(oc, oc.Operation.SelectionSet, queryImplementors) {
		if f.Name != "assetGraph" {
			continue
		}
		n++
		if _, ok := directSelection(oc, f.Selections, assetGraphShape); !ok {
			return false
		}
	}
	return n > 0
}

func postGraphQL(t *testing.T, h http.Handler, query string, vars map[string]any) string {
	t.Helper()
	body, err := json.Marshal(map[string]any{"query": query, "variables": vars})
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodPost, "/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("%s: %d %s", query, rec.Code, rec.Body)
	}
	return rec.Body.String()
}

// TestGraphShapesFollowTheSchema checks the direct writer's shapes against the
// schema: every field it writes exists on its type, and the fields whose
// values it writes as objects are the schema's object fields.
func TestGraphShapesFollowTheSchema(t *testing.T) {
	t.Parallel()
	schema := gqlparser.MustLoadSchema(sources...)
	for _, shape := range []*objectShape{assetGraphShape, assetShape, assetStatusShape, partitionsDefShape, assetEdgeShape} {
		def := schema.Types[shape.name]
		if def == nil || def.Kind != ast.Object {
			t.Errorf("%s: not an object type of the schema", shape.name)
			continue
		}
		if len(shape.implementors) != 1 || shape.implementors[0] != shape.name {
			t.Errorf("%s: implementors %v", shape.name, shape.implementors)
		}
		for name, fs := range shape.fields {
			f := def.Fields.ForName(name)
			if f == nil {
				t.Errorf("%s.%s: not in the schema", shape.name, name)
				continue
			}
			if len(f.Arguments) > 0 {
				t.Errorf("%s.%s: takes arguments, which the direct writer ignores", shape.name, name)
			}
			named := schema.Types[f.Type.Name()]
			switch {
			case fs.object != nil && named.Name != fs.object.name:
				t.Errorf("%s.%s: the schema says %s, the shape %s", shape.name, name, f.Type, fs.object.name)
			case fs.object == nil && named.Kind != ast.Scalar:
				t.Errorf("%s.%s: %s is not a scalar", shape.name, name, f.Type)
			}
		}
	}
}

// TestAppendJSONString checks the direct writer's strings against gqlgen's.
func TestAppendJSONString(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"", "plain", `"quoted"`, `back\slash`, "\t\r\n\b\f\x00\x01\x1f\x7f", "é 日本 \u2028\u2029 🌊",
		"invalid \xff\xfe utf-8 \xc3", "\xe2\x80", strings.Repeat("a\"", 100)} {
		var want bytes.Buffer
		graphql.MarshalString(s).MarshalGQL(&want)
		if got := appendJSONString(nil, s); string(got) != want.String() {
			t.Errorf("%q: %s, gqlgen writes %s", s, got, want.String())
		}
	}
}
