package cli

import (
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/freshetdev/freshet/store/postgres/pgtest"
)

// catalogURLs returns a fresh catalog database of each kind.
func catalogURLs(t *testing.T) map[string]string {
	t.Helper()
	return map[string]string{
		"sqlite":   "sqlite:" + filepath.Join(t.TempDir(), "catalog.db"),
		"postgres": pgtest.URL(t),
	}
}

const weeklyDefs = `assets:
  - key: shop/daily_orders
    partitions: {daily: {start: 2026-01-05}}
    compute: {command: ["true"]}
    code_version: "1"
  - key: shop/weekly_revenue
    deps: [shop/daily_orders]
    partitions: {weekly: {start: 2026-01-05}}
    compute: {command: ["true"]}
    code_version: "%s"
`

type jsonPlan struct {
	Steps []struct {
		Asset      string   `json:"asset"`
		Partitions []string `json:"partitions"`
		Status     string   `json:"status"`
		Causes     []struct {
			Kind, Asset, Partition string
		} `json:"causes"`
	} `json:"steps"`
	Blocked []struct{ Asset, Partition, Reason string } `json:"blocked"`
}

// TestScenarioWeeklyFromDaily walks the life of a weekly asset built from a daily
// one, through the command line, on both stores: everything reported → nothing to
// do; the same data again → still nothing; new data in one day → exactly that
// week, naming the day; a code bump → the week is stale for its code too.
func TestScenarioWeeklyFromDaily(t *testing.T) {
	t.Parallel()
	for name, db := range catalogURLs(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			file := filepath.Join(t.TempDir(), "freshet.yaml")
			writeFile(t, file, strings.Replace(weeklyDefs, "%s", "1", 1))
			const now = "2026-01-12T06:00:00Z"
			cli := func(args ...string) string {
				t.Helper()
				out, errOut, code := run(t, append(args, "-f", file, "--db", db)...)
				if code != 0 {
					t.Fatalf("freshet %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
				}
				return out
			}
			plan := func() jsonPlan {
				t.Helper()
				var p jsonPlan
				out := cli("plan", "--json", "--now", now)
				if err := json.Unmarshal([]byte(out), &p); err != nil {
					t.Fatalf("plan --json: %v\n%s", err, out)
				}
				return p
			}
			mustBeEmpty := func(when string) {
				t.Helper()
				if p := plan(); len(p.Steps) != 0 || len(p.Blocked) != 0 {
					t.Fatalf("%s: the plan should be empty, got %+v", when, p)
				}
			}

			if p := plan(); len(p.Steps) != 8 {
				t.Fatalf("empty catalog: want the week and its 7 days planned, got %+v", p)
			}
			out := cli("report", "materialization", "--asset", "shop/daily_orders", "--from", "2026-01-05", "--to", "2026-01-11",
				"--data-version", "v1", "--at", "2026-01-12T01:00:00Z")
			if !strings.Contains(out, "recorded 7 materializations of shop/daily_orders 2026-01-05 … 2026-01-11") {
				t.Errorf("report said %q", out)
			}
			cli("report", "materialization", "--asset", "shop/weekly_revenue", "--partition", "2026-01-05", "--at", "2026-01-12T02:00:00Z")
			mustBeEmpty("after the week and its days were reported")

			out = cli("report", "materialization", "--asset", "shop/daily_orders", "--partition", "2026-01-07", "--data-version", "v1")
			if !strings.Contains(out, "the data version changed in 0") {
				t.Errorf("same data version again: report said %q", out)
			}
			mustBeEmpty("after 2026-01-07 was rebuilt with the same data version")

			cli("report", "materialization", "--asset", "shop/daily_orders", "--partition", "2026-01-07", "--data-version", "v2")
			p := plan()
			if len(p.Steps) != 1 || p.Steps[0].Asset != "shop/weekly_revenue" || !slices.Equal(p.Steps[0].Partitions, []string{"2026-01-05"}) ||
				p.Steps[0].Status != "STALE" || len(p.Blocked) != 0 {
				t.Fatalf("after new data in 2026-01-07: want exactly shop/weekly_revenue 2026-01-05 STALE, got %+v", p)
			}
			if c := p.Steps[0].Causes; len(c) != 1 || c[0].Kind != "UPSTREAM_CHANGED" || c[0].Asset != "shop/daily_orders" || c[0].Partition != "2026-01-07" {
				t.Errorf("causes: want UPSTREAM_CHANGED by shop/daily_orders 2026-01-07, got %+v", c)
			}

			// Rebuild the week on the new data, then bump its code version.
			cli("report", "materialization", "--asset", "shop/weekly_revenue", "--partition", "2026-01-05")
			mustBeEmpty("after the week was rebuilt")
			writeFile(t, file, strings.Replace(weeklyDefs, "%s", "2", 1))
			p = plan()
			if len(p.Steps) != 1 || p.Steps[0].Asset != "shop/weekly_revenue" || !slices.Equal(p.Steps[0].Partitions, []string{"2026-01-05"}) {
				t.Fatalf("after the code bump: want exactly shop/weekly_revenue 2026-01-05, got %+v", p)
			}
			if c := p.Steps[0].Causes; len(c) != 1 || c[0].Kind != "CODE_CHANGED" || c[0].Asset != "shop/weekly_revenue" {
				t.Errorf("causes: want CODE_CHANGED, got %+v", c)
			}

			var status struct {
				Assets []assetStatus `json:"assets"`
			}
			if err := json.Unmarshal([]byte(cli("status", "--json", "--now", now)), &status); err != nil {
				t.Fatal(err)
			}
			want := map[string][3]int{"shop/daily_orders": {7, 0, 0}, "shop/weekly_revenue": {0, 1, 0}}
			for _, a := range status.Assets {
				if got := [3]int{a.Fresh, a.Stale, a.Missing}; got != want[a.Asset] {
					t.Errorf("status of %s: fresh/stale/missing = %v, want %v", a.Asset, got, want[a.Asset])
				}
			}
			hist := cli("history", "shop/daily_orders", "--partition", "2026-01-07")
			if lines := strings.Split(strings.TrimSpace(hist), "\n"); len(lines) != 4 || !strings.Contains(lines[1], "v2 *") {
				t.Errorf("history of 2026-01-07: want a header and 3 events, the newest v2 marked changed, got\n%s", hist)
			}
		})
	}
}
