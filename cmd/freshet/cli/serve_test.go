package cli

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// apiServer is a `freshet serve` process under test, listening on a free port.
type apiServer struct {
	url   string // http://127.0.0.1:port
	token string
	cmd   *exec.Cmd
	mu    sync.Mutex
	log   bytes.Buffer
}

// startServe starts `freshet serve` over dir and db and waits until it listens.
// Its log is shown when the test fails.
func startServe(t *testing.T, dir, db string, args ...string) *apiServer {
	t.Helper()
	cmd := exec.Command(binary(t), append([]string{"serve", "-f", dir, "--db", db, "--addr", "127.0.0.1:0", "--log-format", "json"}, args...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &apiServer{cmd: cmd}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			s.mu.Lock()
			s.log.WriteString(line + "\n")
			s.mu.Unlock()
			var entry struct {
				Message string `json:"@message"`
				Addr    string `json:"addr"`
			}
			if json.Unmarshal([]byte(line), &entry) == nil && entry.Message == "serving" {
				addr <- entry.Addr
			}
		}
		close(addr)
	}()
	t.Cleanup(func() {
		if cmd.ProcessState != nil {
			return // the test ended it
		}
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-done
			t.Errorf("freshet serve did not stop within 20s of SIGINT")
		}
		if t.Failed() {
			s.mu.Lock()
			t.Logf("freshet serve log:\n%s", s.log.String())
			s.mu.Unlock()
		}
	})
	select {
	case a, ok := <-addr:
		if !ok {
			_ = cmd.Wait()
			t.Fatalf("freshet serve exited before listening:\n%s", s.log.String())
		}
		s.url = "http://" + a
	case <-time.After(60 * time.Second):
		t.Fatalf("freshet serve did not listen within 60s:\n%s", s.log.String())
	}
	return s
}

// gqlError is one error of a GraphQL response.
type gqlError struct {
	Message    string         `json:"message"`
	Extensions map[string]any `json:"extensions"`
}

// query posts a GraphQL operation and decodes its data into out; it returns the
// response's errors (the test decides whether they are expected).
func (s *apiServer) query(t *testing.T, q string, vars map[string]any, out any) []gqlError {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": q, "variables": vars})
	req, _ := http.NewRequest(http.MethodPost, s.url+"/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if s.token != "" {
		req.Header.Set("Authorization", "Bearer "+s.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST /graphql: %v", err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var res struct {
		Data   json.RawMessage `json:"data"`
		Errors []gqlError      `json:"errors"`
	}
	if err := json.Unmarshal(raw, &res); err != nil {
		t.Fatalf("POST /graphql: status %d, body not JSON: %v\n%s", resp.StatusCode, err, raw)
	}
	if out != nil && len(res.Data) > 0 && string(res.Data) != "null" {
		if err := json.Unmarshal(res.Data, out); err != nil {
			t.Fatalf("decode data: %v\n%s", err, res.Data)
		}
	}
	return res.Errors
}

// mustQuery is query for operations that must succeed.
func (s *apiServer) mustQuery(t *testing.T, q string, vars map[string]any, out any) {
	t.Helper()
	if errs := s.query(t, q, vars, out); len(errs) > 0 {
		t.Fatalf("GraphQL errors: %+v\nquery: %s", errs, q)
	}
}

type apiRun struct {
	ID          string  `json:"id"`
	Status      string  `json:"status"`
	Trigger     string  `json:"trigger"`
	ParentRunID *string `json:"parentRunId"`
	Counts      struct {
		Succeeded, Failed, Total int
	} `json:"counts"`
	Steps []struct {
		ID         string   `json:"id"`
		Asset      string   `json:"asset"`
		Partitions []string `json:"partitions"`
		Status     string   `json:"status"`
	} `json:"steps"`
}

const runFields = `id status trigger parentRunId counts { succeeded failed total } steps { id asset partitions status }`

// waitRun polls run(id) until it ends.
func (s *apiServer) waitRun(t *testing.T, id string) apiRun {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var out struct{ Run *apiRun }
		s.mustQuery(t, `query($id: ID!) { run(id: $id) { `+runFields+` } }`, map[string]any{"id": id}, &out)
		if out.Run == nil {
			t.Fatalf("run %s: not found", id)
		}
		switch out.Run.Status {
		case "SUCCEEDED", "FAILED", "CANCELED":
			return *out.Run
		}
		if time.Now().After(deadline) {
			t.Fatalf("run %s still %s after 2 minutes", id, out.Run.Status)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

type apiPlan struct {
	Steps []struct {
		Asset      string   `json:"asset"`
		Partitions []string `json:"partitions"`
		Status     string   `json:"status"`
		Causes     []struct{ Kind string }
	} `json:"steps"`
	Blocked []struct{ Asset, Partition, Reason string } `json:"blocked"`
	Summary apiPlanSummary                              `json:"summary"`
}

type apiPlanSummary struct {
	Steps, Partitions, BlockedPartitions int
	Assets                               []apiPlanAsset
	Blocked                              []struct {
		Asset, Reason                 string
		Partitions                    int
		FirstPartition, LastPartition string
	}
}

type apiPlanAsset struct {
	Asset                         string
	Steps, Partitions             int
	FirstPartition, LastPartition string
	Statuses, Causes              []struct {
		Name  string
		Count int
	}
	Examples []string
}

// plan asks for the plan with its summary, and checks that the summary sums
// the steps and blocked partitions up.
func (s *apiServer) plan(t *testing.T, from, to string) apiPlan {
	t.Helper()
	var out struct{ Plan apiPlan }
	s.mustQuery(t, `query($from: String, $to: String) { plan(from: $from, to: $to) {
		steps { asset partitions status causes { kind asset partition } } blocked { asset partition reason }
		summary { steps partitions blockedPartitions
			assets { asset steps partitions firstPartition lastPartition statuses { name count } causes { name count } examples }
			blocked { asset reason partitions firstPartition lastPartition } } } }`,
		map[string]any{"from": from, "to": to}, &out)
	p := out.Plan
	var want apiPlanSummary
	want.Steps, want.BlockedPartitions = len(p.Steps), len(p.Blocked)
	byAsset := map[string]int{}
	for _, st := range p.Steps {
		i, ok := byAsset[st.Asset]
		if !ok {
			i = len(want.Assets)
			byAsset[st.Asset] = i
			want.Assets = append(want.Assets, apiPlanAsset{Asset: st.Asset, FirstPartition: firstOr(st.Partitions, "")})
		}
		n := max(len(st.Partitions), 1) // an unpartitioned step builds one partition
		want.Partitions += n
		want.Assets[i].Steps++
		want.Assets[i].Partitions += n
		want.Assets[i].LastPartition = lastOr(st.Partitions, "")
	}
	if got := p.Summary; got.Steps != want.Steps || got.Partitions != want.Partitions || got.BlockedPartitions != want.BlockedPartitions ||
		len(got.Assets) != len(want.Assets) {
		t.Fatalf("plan summary %+v; the steps and blocked partitions sum up to %+v", got, want)
	}
	for i, a := range p.Summary.Assets {
		w := want.Assets[i]
		if a.Asset != w.Asset || a.Steps != w.Steps || a.Partitions != w.Partitions || a.FirstPartition != w.FirstPartition || a.LastPartition != w.LastPartition {
			t.Errorf("plan summary of %s: %+v; the steps say %+v", w.Asset, a, w)
		}
		byStatus := 0
		for _, c := range a.Statuses {
			byStatus += c.Count
		}
		if byStatus != a.Steps {
			t.Errorf("plan summary of %s: %d steps by status, %d steps", a.Asset, byStatus, a.Steps)
		}
	}
	blocked := 0
	for _, b := range p.Summary.Blocked {
		blocked += b.Partitions
	}
	if blocked != len(p.Blocked) {
		t.Errorf("plan summary: %d blocked partitions in its groups, %d in the plan", blocked, len(p.Blocked))
	}
	return p
}

func firstOr(keys []string, none string) string {
	if len(keys) == 0 {
		return none
	}
	return keys[0]
}

func lastOr(keys []string, none string) string {
	if len(keys) == 0 {
		return none
	}
	return keys[len(keys)-1]
}

func hasError(errs []gqlError, substr string) bool {
	for _, e := range errs {
		if strings.Contains(e.Message, substr) {
			return true
		}
	}
	return false
}

// The API end to end, over real HTTP against `freshet serve` with the example,
// on both stores: every query and mutation, and materializeStale ending with an
// empty plan.
func TestServeGraphQL(t *testing.T) {
	t.Parallel()
	for name, db := range catalogs(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := copyExample(t)
			s := startServe(t, dir, db(t), "--parallel", "4")

			var defs struct{ Definitions struct{ Assets int } }
			s.mustQuery(t, `{ definitions { assets } }`, nil, &defs)
			if defs.Definitions.Assets != 6 {
				t.Fatalf("definitions: %d assets; want the example's 6", defs.Definitions.Assets)
			}

			var graph struct {
				AssetGraph struct {
					Nodes []struct {
						Key      string
						IsSource bool
						Status   struct{ Missing, Total int }
					}
					Edges []struct{ From, To, Mapping string }
				}
			}
			s.mustQuery(t, `{ assetGraph { nodes { key isSource status { missing total } } edges { from to mapping } } }`, nil, &graph)
			if len(graph.AssetGraph.Nodes) != 6 || len(graph.AssetGraph.Edges) != 5 {
				t.Fatalf("assetGraph: %d nodes, %d edges; want 6 and 5", len(graph.AssetGraph.Nodes), len(graph.AssetGraph.Edges))
			}
			var sel struct {
				AssetGraph struct{ Nodes []struct{ Key string } }
			}
			s.mustQuery(t, `{ assetGraph(selection: "+sales/orders_loaded") { nodes { key } } }`, nil, &sel)
			if len(sel.AssetGraph.Nodes) != 3 {
				t.Errorf("assetGraph(+sales/orders_loaded): %v; want it and its 2 upstreams", sel.AssetGraph.Nodes)
			}
			if errs := s.query(t, `{ assetGraph(selection: "sales/nope") { nodes { key } } }`, nil, nil); !hasError(errs, "sales/nope") {
				t.Errorf("assetGraph of an unknown key: errors %+v; want one naming it", errs)
			}

			var lin struct {
				Lineage struct {
					Nodes []struct {
						Key    string
						Degree int
					}
					Edges     []struct{ From, To string }
					Truncated bool
				}
			}
			s.mustQuery(t, `{ lineage(key: "sales/daily_report", direction: UPSTREAM, depth: 1) { nodes { key degree } edges { from to } truncated } }`, nil, &lin)
			if len(lin.Lineage.Nodes) != 3 || !lin.Lineage.Truncated || lin.Lineage.Nodes[0].Degree != -1 {
				t.Errorf("lineage depth 1: %+v; want daily_report, its 2 upstreams at degree -1, truncated", lin.Lineage)
			}

			// The source has no observation: daily_report is blocked until one is reported.
			if p := s.plan(t, "2026-01-01", "2026-01-03"); len(p.Blocked) != 3 {
				t.Errorf("plan before the observation: %d blocked; want daily_report's 3 days", len(p.Blocked))
			}
			var obs struct {
				ReportObservation []struct {
					Asset, DataVersion string
					DataChanged        bool
				}
			}
			s.mustQuery(t, `mutation { reportObservation(input: {asset: "sales/exchange_rates", dataVersion: "rates-1"}) { asset dataVersion dataChanged } }`, nil, &obs)
			if len(obs.ReportObservation) != 1 || !obs.ReportObservation[0].DataChanged {
				t.Fatalf("reportObservation: %+v", obs.ReportObservation)
			}
			if errs := s.query(t, `mutation { reportObservation(input: {asset: "sales/exchange_rates"}) { seq } }`, nil, nil); !hasError(errs, "dataVersion") {
				t.Errorf("an observation without a data version: errors %+v", errs)
			}

			p := s.plan(t, "2026-01-01", "2026-01-03")
			if len(p.Steps) == 0 || len(p.Blocked) != 0 {
				t.Fatalf("plan of 3 days: %+v; want steps and nothing blocked", p)
			}
			var launched struct{ MaterializeStale apiRun }
			s.mustQuery(t, `mutation { materializeStale(from: "2026-01-01", to: "2026-01-03") { `+runFields+` } }`, nil, &launched)
			run := s.waitRun(t, launched.MaterializeStale.ID)
			if run.Status != "SUCCEEDED" || run.Trigger != "api" || run.Counts.Succeeded != run.Counts.Total || len(run.Steps) != run.Counts.Total {
				t.Fatalf("materializeStale run: %+v", run)
			}
			if p := s.plan(t, "2026-01-01", "2026-01-03"); len(p.Steps) != 0 {
				t.Fatalf("plan after materializeStale: %+v; want empty", p.Steps)
			}
			code, metrics := httpDo(t, "GET", s.url+"/metrics", "", "", "")
			for _, want := range []string{
				fmt.Sprintf(`freshet_steps_finished_total{outcome="SUCCEEDED"} %d`, run.Counts.Total),
				`freshet_runs_launched_total{trigger="api"} 1`,
				`freshet_runs{status="RUNNING"} 0`,
				`freshet_steps{status="READY"} 0`,
				`freshet_step_duration_seconds_count{outcome="SUCCEEDED"}`,
				"freshet_plan_duration_seconds_count",
			} {
				if code != 200 || !strings.Contains(metrics, want) {
					t.Errorf("/metrics (%d) lacks %q", code, want)
				}
			}
			if errs := s.query(t, `mutation { materializeStale(from: "2026-01-01", to: "2026-01-03") { id } }`, nil, nil); !hasError(errs, "nothing to materialize") {
				t.Errorf("materializeStale with nothing stale: errors %+v", errs)
			}

			// The same graph query as at the start: its answer (cached while the
			// catalog stood still) now counts what the run built.
			var after struct {
				AssetGraph struct {
					Nodes []struct {
						Key    string
						Status struct{ Missing, Total int }
					}
				}
			}
			s.mustQuery(t, `{ assetGraph { nodes { key isSource status { missing total } } edges { from to mapping } } }`, nil, &after)
			for i, n := range after.AssetGraph.Nodes {
				before := graph.AssetGraph.Nodes[i]
				if n.Key == "sales/daily_report" && n.Status.Missing != before.Status.Missing-3 {
					t.Errorf("assetGraph after the run: %s missing %d; before %d; want 3 fewer", n.Key, n.Status.Missing, before.Status.Missing)
				}
			}

			var runs struct {
				Runs struct {
					Nodes       []struct{ ID string }
					HasNextPage bool
				}
			}
			s.mustQuery(t, `{ runs(status: SUCCEEDED, asset: "sales/daily_report", first: 10) { nodes { id } hasNextPage } }`, nil, &runs)
			if len(runs.Runs.Nodes) != 1 || runs.Runs.Nodes[0].ID != run.ID {
				t.Errorf("runs(SUCCEEDED, daily_report): %+v; want the run", runs.Runs)
			}
			var logs struct {
				StepLogs struct {
					Lines []struct {
						No           int
						Stream, Text string
					}
					Next int
				}
			}
			s.mustQuery(t, `query($id: ID!) { stepLogs(stepId: $id) { lines { no stream text } next } }`, map[string]any{"id": run.Steps[0].ID}, &logs)
			if len(logs.StepLogs.Lines) == 0 || logs.StepLogs.Next != logs.StepLogs.Lines[len(logs.StepLogs.Lines)-1].No {
				t.Errorf("stepLogs of %s: %+v", run.Steps[0].Asset, logs.StepLogs)
			}

			var detail struct {
				Asset struct {
					Key             string
					Owners          []string
					Upstream        []struct{ Key string }
					Downstream      []struct{ Key string }
					PartitionsDef   struct{ Granularity, FirstKey string }
					Status          struct{ Fresh, Missing, Total int }
					PartitionStatus []struct {
						Start, End, Status string
						Count              int
					}
					Partition struct {
						Status                string
						DataVersion           *string
						LatestMaterialization struct{ RunID string }
						History               []struct{ Kind string }
					}
					Freshness        struct{ Status, Policy, Reason string }
					Materializations struct {
						Nodes       []struct{ Partition string }
						EndCursor   *string
						HasNextPage bool
					}
				}
			}
			s.mustQuery(t, `{ asset(key: "sales/daily_report") { key owners upstream { key } downstream { key }
				partitionsDef { granularity firstKey } status { fresh missing total }
				partitionStatus(from: "2026-01-01", to: "2026-01-05") { start end status count }
				partition(key: "2026-01-02") { status dataVersion latestMaterialization { runId } history { kind } }
				freshness { status policy reason }
				materializations(first: 2) { nodes { partition } endCursor hasNextPage } } }`, nil, &detail)
			a := detail.Asset
			if a.Key != "sales/daily_report" || len(a.Upstream) != 2 || len(a.Downstream) != 0 || a.PartitionsDef.Granularity != "daily" || a.PartitionsDef.FirstKey != "2026-01-01" {
				t.Errorf("asset: %+v", a)
			}
			if a.Status.Fresh != 3 || a.Status.Missing != a.Status.Total-3 {
				t.Errorf("asset status: %+v; want 3 fresh, the rest missing", a.Status)
			}
			if got := fmt.Sprint(a.PartitionStatus); got != "[{2026-01-01 2026-01-03 FRESH 3} {2026-01-04 2026-01-05 MISSING 2}]" {
				t.Errorf("partitionStatus: %s", got)
			}
			if a.Partition.Status != "FRESH" || a.Partition.DataVersion == nil || a.Partition.LatestMaterialization.RunID != run.ID || len(a.Partition.History) != 1 {
				t.Errorf("partition 2026-01-02: %+v", a.Partition)
			}
			if a.Freshness.Status != "FAIL" || !strings.Contains(a.Freshness.Policy, "deadline") {
				t.Errorf("freshness of daily_report (built only in January): %+v; want FAIL against its deadline", a.Freshness)
			}
			if len(a.Materializations.Nodes) != 2 || !a.Materializations.HasNextPage || a.Materializations.EndCursor == nil {
				t.Fatalf("materializations page 1: %+v", a.Materializations)
			}
			var page2 struct {
				Asset struct {
					Materializations struct {
						Nodes       []struct{ Partition string }
						HasNextPage bool
					}
				}
			}
			s.mustQuery(t, `query($after: String) { asset(key: "sales/daily_report") { materializations(first: 2, after: $after) { nodes { partition } hasNextPage } } }`,
				map[string]any{"after": *a.Materializations.EndCursor}, &page2)
			if m := page2.Asset.Materializations; len(m.Nodes) != 1 || m.HasNextPage {
				t.Errorf("materializations page 2: %+v; want the third and last", m)
			}
			var none struct{ Asset *struct{ Key string } }
			s.mustQuery(t, `{ asset(key: "sales/nope") { key } }`, nil, &none)
			if none.Asset != nil {
				t.Errorf("asset(sales/nope): %+v; want null", none.Asset)
			}

			// materialize with force rebuilds a fresh partition; retryRun runs a
			// run's request again.
			var forced struct{ Materialize apiRun }
			s.mustQuery(t, `mutation { materialize(selection: "sales/raw_orders", from: "2026-01-01", to: "2026-01-01", force: true) { `+runFields+` } }`, nil, &forced)
			if r := s.waitRun(t, forced.Materialize.ID); r.Status != "SUCCEEDED" || r.Counts.Total != 1 {
				t.Errorf("forced materialize: %+v; want one step, succeeded", r)
			}
			var retried struct{ RetryRun apiRun }
			s.mustQuery(t, `mutation($id: ID!) { retryRun(id: $id, failedOnly: false) { `+runFields+` } }`, map[string]any{"id": forced.Materialize.ID}, &retried)
			if r := s.waitRun(t, retried.RetryRun.ID); r.Status != "SUCCEEDED" || r.Trigger != "retry" || r.ParentRunID == nil || *r.ParentRunID != forced.Materialize.ID {
				t.Errorf("retryRun: %+v", r)
			}

			// A page of runs with their steps (read in one batch): each run's
			// steps are its own.
			var page struct {
				Runs struct {
					Nodes []struct {
						ID    string
						Steps []struct{ ID string }
					}
				}
			}
			s.mustQuery(t, `{ runs(first: 10) { nodes { id steps { id } } } }`, nil, &page)
			if len(page.Runs.Nodes) != 3 {
				t.Fatalf("runs: %d; want 3", len(page.Runs.Nodes))
			}
			for _, n := range page.Runs.Nodes {
				var one struct {
					Run struct{ Steps []struct{ ID string } }
				}
				s.mustQuery(t, `query($id: ID!) { run(id: $id) { steps { id } } }`, map[string]any{"id": n.ID}, &one)
				if fmt.Sprint(n.Steps) != fmt.Sprint(one.Run.Steps) || len(n.Steps) == 0 {
					t.Errorf("run %s in a page: steps %v; alone: %v", n.ID, n.Steps, one.Run.Steps)
				}
			}

			// A long run canceled at once ends CANCELED.
			var long struct{ Materialize apiRun }
			s.mustQuery(t, `mutation { materialize(from: "2026-02-01", to: "2026-03-31") { id } }`, nil, &long)
			var canceled struct{ CancelRun struct{ ID string } }
			s.mustQuery(t, `mutation($id: ID!) { cancelRun(id: $id) { id } }`, map[string]any{"id": long.Materialize.ID}, &canceled)
			if r := s.waitRun(t, long.Materialize.ID); r.Status != "CANCELED" {
				t.Errorf("canceled run: %s; want CANCELED", r.Status)
			}

			// A backfill of a week reaches 100%; another, canceled, ends CANCELED.
			type apiBackfill struct {
				ID                     string
				Status                 string
				Targeted, Done, Failed int
				RunIds                 []string
			}
			const backfillFields = `id status targeted done failed runIds`
			var bf struct{ LaunchBackfill apiBackfill }
			s.mustQuery(t, `mutation { launchBackfill(input: {from: "2026-01-04", to: "2026-01-10", maxParallel: 4}) { `+backfillFields+` } }`, nil, &bf)
			if bf.LaunchBackfill.Targeted == 0 || len(bf.LaunchBackfill.RunIds) != 1 {
				t.Fatalf("launchBackfill: %+v", bf.LaunchBackfill)
			}
			s.waitRun(t, bf.LaunchBackfill.RunIds[0])
			var got struct{ Backfill apiBackfill }
			s.mustQuery(t, `query($id: ID!) { backfill(id: $id) { `+backfillFields+` } }`, map[string]any{"id": bf.LaunchBackfill.ID}, &got)
			if b := got.Backfill; b.Status != "SUCCEEDED" || b.Done != b.Targeted || b.Failed != 0 {
				t.Errorf("backfill after its run: %+v; want SUCCEEDED with every partition done", b)
			}
			var bf2 struct{ LaunchBackfill apiBackfill }
			s.mustQuery(t, `mutation { launchBackfill(input: {from: "2026-04-01", to: "2026-06-30", mode: "all", maxParallel: 1}) { `+backfillFields+` } }`, nil, &bf2)
			var cb struct{ CancelBackfill apiBackfill }
			s.mustQuery(t, `mutation($id: ID!) { cancelBackfill(id: $id) { `+backfillFields+` } }`, map[string]any{"id": bf2.LaunchBackfill.ID}, &cb)
			s.waitRun(t, bf2.LaunchBackfill.RunIds[0])
			s.mustQuery(t, `query($id: ID!) { backfill(id: $id) { `+backfillFields+` } }`, map[string]any{"id": bf2.LaunchBackfill.ID}, &got)
			if got.Backfill.Status != "CANCELED" {
				t.Errorf("canceled backfill: %+v", got.Backfill)
			}
			var list struct{ Backfills []struct{ ID string } }
			s.mustQuery(t, `{ backfills(first: 10) { id } }`, nil, &list)
			if len(list.Backfills) != 2 || list.Backfills[0].ID != bf2.LaunchBackfill.ID {
				t.Errorf("backfills: %+v; want both, newest first", list.Backfills)
			}
			if errs := s.query(t, `mutation { launchBackfill(input: {from: "2026-01-01", to: "2026-01-02", mode: "some"}) { id } }`, nil, nil); !hasError(errs, `"some"`) {
				t.Errorf("backfill with a bad mode: errors %+v", errs)
			}

			// A materialization reported from outside Freshet.
			var rep struct {
				ReportMaterialization []struct{ Partition string }
			}
			s.mustQuery(t, `mutation { reportMaterialization(input: {asset: "sales/weekly_revenue", partitions: ["2026-01-05"], dataVersion: "ext-1", metadata: {rows: 7}}) { partition } }`, nil, &rep)
			if len(rep.ReportMaterialization) != 1 || rep.ReportMaterialization[0].Partition != "2026-01-05" {
				t.Errorf("reportMaterialization: %+v", rep.ReportMaterialization)
			}
			var meta struct {
				Asset struct {
					Partition struct{ Metadata map[string]any }
				}
			}
			s.mustQuery(t, `{ asset(key: "sales/weekly_revenue") { partition(key: "2026-01-05") { metadata } } }`, nil, &meta)
			if meta.Asset.Partition.Metadata["rows"] != float64(7) {
				t.Errorf("metadata of the reported partition: %v", meta.Asset.Partition.Metadata)
			}

			var scheds struct {
				Schedules []struct {
					Name, Cron, Timezone, Selection string
					NextTick                        *time.Time
					LastTick                        *struct{ Status string }
					Ticks                           []struct{ Status string }
				}
			}
			s.mustQuery(t, `{ schedules { name cron timezone selection nextTick lastTick { status } ticks { status } } }`, nil, &scheds)
			if sc := scheds.Schedules; len(sc) != 1 || sc[0].Name != "nightly" || sc[0].Cron != "0 2 * * *" || sc[0].Timezone != "UTC" ||
				sc[0].NextTick == nil || sc[0].NextTick.Hour() != 2 || !sc[0].NextTick.After(time.Now()) || sc[0].LastTick != nil || len(sc[0].Ticks) != 0 {
				t.Errorf("schedules: %+v; want nightly, next at 02:00 UTC, never ticked", sc)
			}

			// reloadDefinitions picks up a code change: raw_orders is stale again.
			defsPath := filepath.Join(dir, "freshet.yaml")
			raw, err := os.ReadFile(defsPath)
			if err != nil {
				t.Fatal(err)
			}
			changed := strings.Replace(string(raw), `command: [sh, scripts/fetch_orders.sh, "{partition}"]
    retries: {max: 3, backoff: 5s, max_backoff: 1m}
    timeout: 5m
    code_version: "1"`, `command: [sh, scripts/fetch_orders.sh, "{partition}"]
    retries: {max: 3, backoff: 5s, max_backoff: 1m}
    timeout: 5m
    code_version: "2"`, 1)
			if changed == string(raw) {
				t.Fatal("the example changed: cannot find raw_orders' code_version")
			}
			writeFile(t, defsPath, changed)
			var reload struct{ ReloadDefinitions struct{ Changed []string } }
			s.mustQuery(t, `mutation { reloadDefinitions { changed } }`, nil, &reload)
			if fmt.Sprint(reload.ReloadDefinitions.Changed) != "[sales/raw_orders]" {
				t.Errorf("reloadDefinitions: changed %v; want [sales/raw_orders]", reload.ReloadDefinitions.Changed)
			}
			p = s.plan(t, "2026-01-01", "2026-01-01")
			if len(p.Steps) == 0 || p.Steps[0].Asset != "sales/raw_orders" || len(p.Steps[0].Causes) == 0 || p.Steps[0].Causes[0].Kind != "CODE_CHANGED" {
				t.Errorf("plan after the code change: %+v; want raw_orders first, CODE_CHANGED", p.Steps)
			}
			if a := p.Summary.Assets; len(a) == 0 || fmt.Sprint(a[0].Statuses) != "[{STALE 1}]" || fmt.Sprint(a[0].Causes) != "[{CODE_CHANGED 1}]" ||
				fmt.Sprint(a[0].Examples) != "[CODE_CHANGED sales/raw_orders]" {
				t.Errorf("plan summary after the code change: %+v; want raw_orders first: 1 STALE step, CODE_CHANGED, an example", a)
			}
			writeFile(t, defsPath, "assets: [{key: broken, deps: [nowhere]}]\n")
			if errs := s.query(t, `mutation { reloadDefinitions { changed } }`, nil, nil); !hasError(errs, "nowhere") {
				t.Errorf("reloading broken definitions: errors %+v; want one naming the unknown dependency", errs)
			}
			s.mustQuery(t, `{ definitions { assets } }`, nil, &defs)
			if defs.Definitions.Assets != 6 {
				t.Errorf("after a failed reload: %d assets served; want the 6 before it", defs.Definitions.Assets)
			}
		})
	}
}
