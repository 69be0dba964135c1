package gql_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/freshetdev/freshet/assets"
	"github.com/freshetdev/freshet/gql"
	"github.com/freshetdev/freshet/graph"
	"github.com/freshetdev/freshet/materialize"
	"github.com/freshetdev/freshet/store"
	"github.com/freshetdev/freshet/store/postgres"
	"github.com/freshetdev/freshet/store/postgres/pgtest"
)

// benchServer opens a PostgreSQL catalog over the definitions text, records
// events, and returns the API handler over it.
func benchServer(b *testing.B, defs string, events func(*assets.Definitions) []store.Event, opts ...gql.Options) http.Handler {
	b.Helper()
	dir := b.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "freshet.yaml"), []byte(defs), 0o644); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	st, err := postgres.Open(ctx, pgtest.URL(b))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	loaded, err := assets.Load(dir)
	if err != nil {
		b.Fatal(err)
	}
	g, err := graph.New(loaded)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := st.SyncDefinitions(ctx, loaded); err != nil {
		b.Fatal(err)
	}
	all := events(loaded)
	for chunk := range slices.Chunk(all, 100_000) {
		if _, err := st.Append(ctx, chunk); err != nil {
			b.Fatal(err)
		}
	}
	e, err := materialize.OpenEngine(ctx, st, dir, loaded, g, nil)
	if err != nil {
		b.Fatal(err)
	}
	var opt gql.Options
	if len(opts) > 0 {
		opt = opts[0]
	}
	return gql.NewHandler(&gql.Resolver{Engine: e}, opt)
}

// post runs one GraphQL query as postJSON does and returns the response size.
func post(b *testing.B, h http.Handler, query string) int {
	b.Helper()
	return len(postJSON(b, h, query))
}

// BenchmarkAssetGraph measures the server time of the UI's graph query (every
// asset with its status counts, every edge) over a catalog of 10,000 daily
// assets (500 pipelines of 20), 30 days of each materialized.
func BenchmarkAssetGraph(b *testing.B) {
	const pipelines, length, days = 500, 20, 30
	var defs strings.Builder
	defs.WriteString("assets:\n")
	for p := range pipelines {
		for i := range length {
			fmt.Fprintf(&defs, "  - key: p%03d/a%02d\n    group: g%d\n    partitions: {daily: {start: 2026-01-01}}\n    compute: {command: [\"true\"]}\n", p, i, p%10)
			if i > 0 {
				fmt.Fprintf(&defs, "    deps: [p%03d/a%02d]\n", p, i-1)
			}
		}
	}
	events := func(d *assets.Definitions) []store.Event {
		var out []store.Event
		for _, a := range d.Assets {
			for day := range days {
				out = append(out, store.Event{Kind: store.Materialization, Asset: a.Key, Partition: a.Partitions.Key(day), InputSeq: store.AtAppend})
			}
		}
		return out
	}
	const q = `{ assetGraph { nodes { key group isSource status { fresh stale missing failed running queued total } } edges { from to mapping } } }`
	size := fmt.Sprintf("assets=%d/edges=%d/partitions_materialized=%d", pipelines*length, pipelines*(length-1), pipelines*length*days)
	// Computed for every request (as after any change of the catalog), and
	// served from the response cache (the catalog unchanged since the last).
	for _, cached := range []bool{false, true} {
		h := benchServer(b, defs.String(), events, gql.Options{NoResponseCache: !cached})
		n := post(b, h, q) // warm: the catalog's state and the statuses are read once
		b.Run(fmt.Sprintf("%s/response_cache=%v", size, cached), func(b *testing.B) {
			for b.Loop() {
				post(b, h, q)
			}
			b.ReportMetric(float64(n)/1e6, "MB/response")
		})
	}
}

// hourlyDefs is one hourly asset with about 100,000 partitions at now.
func hourlyDefs(now time.Time) (string, int) {
	start := now.Add(-100_000 * time.Hour).UTC().Truncate(time.Hour)
	return fmt.Sprintf("assets:\n  - key: sensors/readings\n    partitions: {hourly: {start: %q}}\n    compute: {command: [\"true\"]}\n",
		start.Format("2006-01-02T15:04")), 100_000
}

// BenchmarkPartitionStatus measures the server time of the run-length partition
// strip of an asset with 100,000 hourly partitions, 90% of them materialized in
// runs with holes.
func BenchmarkPartitionStatus(b *testing.B) {
	defs, n := hourlyDefs(time.Now())
	h := benchServer(b, defs, func(d *assets.Definitions) []store.Event {
		a := d.Assets[0]
		var out []store.Event
		for i := range a.Partitions.Count(time.Now()) {
			if i%100 < 90 {
				out = append(out, store.Event{Kind: store.Materialization, Asset: a.Key, Partition: a.Partitions.Key(i), InputSeq: store.AtAppend})
			}
		}
		return out
	})
	const q = `{ asset(key: "sensors/readings") { partitionStatus { start end status count } } }`
	post(b, h, q)
	b.Run(fmt.Sprintf("partitions=%d", n), func(b *testing.B) {
		for b.Loop() {
			post(b, h, q)
		}
	})
}

// BenchmarkAssetDetailLoad runs 200 concurrent clients, each asking the asset
// detail query over real HTTP one request after another, for 30s
// ($FRESHET_LOAD_SECONDS), and reports the latency percentiles and the errors.
// It runs the load once whatever b.N: the figure is the load's, not a loop's.
func BenchmarkAssetDetailLoad(b *testing.B) {
	seconds := 30
	if s, err := strconv.Atoi(os.Getenv("FRESHET_LOAD_SECONDS")); err == nil && s > 0 {
		seconds = s
	}
	const clients = 200
	defs, _ := hourlyDefs(time.Now())
	defs += "  - key: sensors/daily\n    deps: [sensors/readings]\n    partitions: {daily: {start: 2020-01-01}}\n    compute: {command: [\"true\"]}\n    freshness: {max_lag: 26h}\n"
	h := benchServer(b, defs, func(d *assets.Definitions) []store.Event {
		a := d.Assets[0]
		var out []store.Event
		for i := range 10_000 {
			out = append(out, store.Event{Kind: store.Materialization, Asset: a.Key, Partition: a.Partitions.Key(a.Partitions.Count(time.Now()) - 1 - i), InputSeq: store.AtAppend})
		}
		return out
	})
	srv := httptest.NewServer(h)
	defer srv.Close()
	const q = `{ asset(key: "sensors/readings") { key description owners tags codeVersion isSource upstream { key } downstream { key }
		partitionsDef { granularity count lastKey } status { fresh stale missing failed running total }
		partitionStatus { start end status count } freshness { status lagSeconds } 
		materializations(first: 10) { nodes { partition at dataVersion } } } }`
	body := `{"query":` + strconv.Quote(q) + `}`
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	b.Run(fmt.Sprintf("clients=%d/seconds=%d", clients, seconds), func(b *testing.B) {
		var (
			mu        sync.Mutex
			latencies []time.Duration
			errors    int
		)
		deadline := time.Now().Add(time.Duration(seconds) * time.Second)
		var wg sync.WaitGroup
		for range clients {
			wg.Go(func() {
				var mine []time.Duration
				bad := 0
				for time.Now().Before(deadline) {
					began := time.Now()
					resp, err := client.Post(srv.URL+"/graphql", "application/json", strings.NewReader(body))
					if err != nil {
						bad++
						continue
					}
					got, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 || strings.Contains(string(got), `"errors"`) {
						bad++
					}
					mine = append(mine, time.Since(began))
				}
				mu.Lock()
				latencies = append(latencies, mine...)
				errors += bad
				mu.Unlock()
			})
		}
		wg.Wait()
		slices.Sort(latencies)
		pct := func(p float64) float64 {
			if len(latencies) == 0 {
				return 0
			}
			return float64(latencies[int(p*float64(len(latencies)-1))].Microseconds()) / 1000
		}
		b.ReportMetric(pct(0.50), "p50_ms")
		b.ReportMetric(pct(0.99), "p99_ms")
		b.ReportMetric(float64(len(latencies))/float64(seconds), "req/s")
		b.ReportMetric(float64(errors), "errors")
	})
}

// BenchmarkPlanPreview measures the server time and the response size of the
// "Materialize stale" preview of a whole catalog that was never materialized:
// 1,000 daily assets (50 pipelines of 20) since 2026-01-01, one step per
// partition. The UI asks for the plan's summary; the steps themselves are the
// content of `freshet plan --json`.
func BenchmarkPlanPreview(b *testing.B) {
	const pipelines, length = 50, 20
	var defs strings.Builder
	defs.WriteString("assets:\n")
	for p := range pipelines {
		for i := range length {
			fmt.Fprintf(&defs, "  - key: p%02d/a%02d\n    partitions: {daily: {start: 2026-01-01}}\n    compute: {command: [\"true\"]}\n", p, i)
			if i > 0 {
				fmt.Fprintf(&defs, "    deps: [p%02d/a%02d]\n", p, i-1)
			}
		}
	}
	h := benchServer(b, defs.String(), func(*assets.Definitions) []store.Event { return nil })
	var steps struct {
		Data struct {
			Plan struct{ Summary struct{ Steps int } }
		}
	}
	resp := postJSON(b, h, `{ plan { summary { steps } } }`)
	if err := json.Unmarshal(resp, &steps); err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct{ name, query string }{
		{"summary", `{ plan { summary { steps partitions blockedPartitions
			assets { asset steps partitions firstPartition lastPartition statuses { name count } causes { name count } examples }
			blocked { asset reason partitions firstPartition lastPartition } } } }`},
		{"steps", `{ plan { steps { asset partitions status causes { kind asset partition } } blocked { asset partition reason } } }`},
	} {
		n := post(b, h, c.query)
		b.Run(fmt.Sprintf("assets=%d/steps=%d/%s", pipelines*length, steps.Data.Plan.Summary.Steps, c.name), func(b *testing.B) {
			for b.Loop() {
				post(b, h, c.query)
			}
			b.ReportMetric(float64(n)/1e6, "MB/response")
		})
	}
}

// postJSON runs one GraphQL query in process (the server's time, no network),
// fails on any error and returns the response body.
func postJSON(b *testing.B, h http.Handler, query string) []byte {
	b.Helper()
	req := httptest.NewRequest(http.MethodPost, "/graphql", strings.NewReader(`{"query":`+strconv.Quote(query)+`}`))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 200 || strings.Contains(rec.Body.String(), `"errors"`) {
		b.Fatalf("query: %d %s", rec.Code, rec.Body.String()[:min(rec.Body.Len(), 500)])
	}
	return rec.Body.Bytes()
}
