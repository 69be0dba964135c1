package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const example = "../../../examples/sales"

func run(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = Main(args, &out, &errOut)
	return out.String(), errOut.String(), code
}

func TestValidateExample(t *testing.T) {
	t.Parallel()
	out, errOut, code := run(t, "validate", "-f", example)
	if code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", code, errOut)
	}
	if want := "valid: 6 assets (5 built, 1 source), 5 dependencies, 1 schedule"; !strings.Contains(out, want) {
		t.Errorf("stdout %q does not say %q", out, want)
	}
}

func TestValidateReportsEveryMistake(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "freshet.yaml")
	writeFile(t, file, `assets:
  - key: a
    partitions: {daily: {start: 2026-01-01, timezone: Mars/Olympus}}
    compute: {command: [true]}
  - key: b
    deps: [{asset: a, start_offset: 1}]
    partitions: {weekly: {start: 2026-01-01}}
    compute: {command: [true]}
    retries: {max: 2, backoff: soon}
schedules:
  - {name: nightly, cron: "0 25 * * *", select: "*"}
`)
	_, errOut, code := run(t, "validate", "-f", file)
	if code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	lines := strings.Split(strings.TrimSpace(errOut), "\n")
	want := []string{
		file + `:3:55: asset a: partitions.daily.timezone: unknown timezone "Mars/Olympus"`,
		file + `:6:37: asset b: deps[0].start_offset: start_offset 1 is after end_offset 0`,
		file + `:7:34: asset b: partitions.weekly.start: "2026-01-01" is a Thursday: weekly partitions start on a Monday (the Monday before is 2025-12-29)`,
		file + `:9:32: asset b: retries.backoff: bad duration "soon"`,
		file + `:11:27: schedules[0].cron: bad cron "0 25 * * *"`,
		"freshet: 5 errors in " + file,
	}
	if len(lines) != len(want) {
		t.Fatalf("got %d lines, want %d:\n%s", len(lines), len(want), errOut)
	}
	for i := range want {
		if !strings.HasPrefix(lines[i], want[i]) {
			t.Errorf("line %d:\n got %s\nwant %s…", i+1, lines[i], want[i])
		}
	}
}

func TestPlanExampleOnEmptyCatalog(t *testing.T) {
	t.Parallel()
	out, errOut, code := run(t, "plan", "-f", example, "--now", "2026-01-13T06:00:00Z", "--db", tempDB(t))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	want := `Plan: 37 steps in 37 partitions over 4 assets.

sales/raw_orders (daily): 12 partitions in 12 steps
  MISSING  2026-01-01 … 2026-01-12 (12)

sales/orders_clean (daily): 12 partitions in 12 steps
  MISSING  2026-01-01 … 2026-01-12 (12)

sales/orders_loaded (daily): 12 partitions in 12 steps
  MISSING  2026-01-01 … 2026-01-12 (12)

sales/weekly_revenue (weekly): 1 partition in 1 step
  MISSING  2026-01-05

Blocked: 12 partitions
  sales/daily_report 2026-01-01 … 2026-01-12 (12): upstream source sales/exchange_rates has no observation (observe it or report one)
`
	if out != want {
		t.Errorf("plan:\n%s\nwant:\n%s", out, want)
	}
}

func TestPlanJSON(t *testing.T) {
	t.Parallel()
	out, errOut, code := run(t, "plan", "-f", example, "--select", "+sales/weekly_revenue",
		"--from", "2026-01-05", "--to", "2026-01-11", "--now", "2026-03-01T00:00:00Z", "--json", "--db", tempDB(t))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var plan struct {
		Steps []struct {
			Asset      string   `json:"asset"`
			Partitions []string `json:"partitions"`
			Status     string   `json:"status"`
			Causes     []any    `json:"causes"`
		} `json:"steps"`
		Blocked []any `json:"blocked"`
	}
	if err := json.Unmarshal([]byte(out), &plan); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	// The week of 2026-01-05 needs its seven days of loaded orders, and they their
	// cleaned and raw orders: 21 daily steps, then the weekly one.
	if len(plan.Steps) != 22 || len(plan.Blocked) != 0 {
		t.Fatalf("%d steps, %d blocked; want 22 and 0:\n%s", len(plan.Steps), len(plan.Blocked), out)
	}
	last := plan.Steps[21]
	if last.Asset != "sales/weekly_revenue" || strings.Join(last.Partitions, ",") != "2026-01-05" || last.Status != "MISSING" || last.Causes == nil {
		t.Errorf("last step %+v", last)
	}
}

func TestCommandErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"plan", "-f", example, "--from", "2026-1-1"}, `--from: "2026-1-1" is not a date (YYYY-MM-DD)`},
		{[]string{"plan", "-f", example, "--from", "2026-01-05", "--to", "2026-01-01"}, "--to 2026-01-01 is before --from 2026-01-05"},
		{[]string{"plan", "-f", example, "--select", "sales/nope"}, `sales/nope`},
		{[]string{"plan", "-f", example, "--now", "yesterday"}, "--now"},
		{[]string{"plan", "-f", "/nonexistent/defs"}, "/nonexistent/defs"},
		{[]string{"lineage", "sales/nope", "-f", example}, "sales/nope"},
		{[]string{"lineage", "sales/raw_orders", "--upstream", "--downstream", "-f", example}, "exclude each other"},
		{[]string{"logs"}, "missing argument: freshet logs STEP_ID (step ids: freshet run show RUN_ID)"},
		{[]string{"backfill", "cancel"}, "missing argument: freshet backfill cancel BACKFILL_ID (backfill ids: freshet backfill status)"},
		{[]string{"lineage", "sales/raw_orders", "sales/orders_clean", "-f", example}, "one argument, not 2 (sales/raw_orders sales/orders_clean): freshet lineage KEY"},
	} {
		args := tc.args
		if args[0] == "plan" {
			args = append(args, "--db", tempDB(t))
		}
		_, errOut, code := run(t, args...)
		if code == 0 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want non-zero and %q", tc.args, code, errOut, tc.want)
		}
	}
}

func TestLineage(t *testing.T) {
	t.Parallel()
	out, errOut, code := run(t, "lineage", "sales/orders_loaded", "--downstream", "-f", example, "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, key := range []string{"sales/orders_loaded", "sales/daily_report", "sales/weekly_revenue"} {
		if !strings.Contains(out, key) {
			t.Errorf("lineage JSON lacks %s:\n%s", key, out)
		}
	}
	if strings.Contains(out, "sales/raw_orders") {
		t.Errorf("downstream lineage shows an upstream:\n%s", out)
	}
}

// TestBinary builds the real binary and runs it as a user would.
func TestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	t.Parallel()
	bin := binary(t)
	out, err := exec.Command(bin, "validate", "-f", example).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "valid") {
		t.Errorf("validate the example: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "validate", "-f", "../../../assets/testdata/bad/three_mistakes.yaml")
	out, err = cmd.CombinedOutput()
	if cmd.ProcessState.ExitCode() != 1 {
		t.Fatalf("three mistakes: exit %d (%v), want 1\n%s", cmd.ProcessState.ExitCode(), err, out)
	}
	var located int
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "../../../assets/testdata/bad/three_mistakes.yaml:") {
			located++
		}
	}
	if located != 3 {
		t.Errorf("want 3 FILE:LINE:COL lines, got %d:\n%s", located, out)
	}
	if out, err := exec.Command(bin, "version").CombinedOutput(); err != nil || !strings.HasPrefix(string(out), "freshet ") {
		t.Errorf("version: %v %s", err, out)
	}
}

// tempDB returns a fresh embedded catalog, so tests never write beside the example.
func tempDB(t *testing.T) string {
	t.Helper()
	return "sqlite:" + filepath.Join(t.TempDir(), "catalog.db")
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestSQLiteCatalogFolder checks that an SQLite catalog named explicitly (--db,
// $FRESHET_DATABASE_URL) must be in an existing folder, so that a mistyped path
// is an error rather than a new, empty catalog, while the default folder
// (.freshet beside the definitions) is created.
func TestSQLiteCatalogFolder(t *testing.T) {
	tmp := t.TempDir()
	missing := filepath.Join(tmp, "missing")
	for _, tc := range []struct {
		db, env, want string
	}{
		{db: "sqlite:" + filepath.Join(missing, "catalog.db"), want: "--db sqlite:" + missing + "/catalog.db: folder " + missing + " does not exist"},
		{env: "sqlite:" + filepath.Join(missing, "catalog.db"), want: "$FRESHET_DATABASE_URL sqlite:" + missing + "/catalog.db: folder " + missing + " does not exist"},
		{db: "sqlite:" + filepath.Join(tmp, "file", "catalog.db"), want: filepath.Join(tmp, "file") + " is not a folder"},
	} {
		writeFile(t, filepath.Join(tmp, "file"), "")
		t.Setenv(databaseEnv, tc.env)
		args := []string{"status", "-f", example}
		if tc.db != "" {
			args = append(args, "--db", tc.db)
		}
		_, errOut, code := run(t, args...)
		if code == 0 || !strings.Contains(errOut, tc.want) {
			t.Errorf("db %q env %q: exit %d, stderr %q; want non-zero and %q", tc.db, tc.env, code, errOut, tc.want)
		}
		if _, err := os.Stat(missing); !os.IsNotExist(err) {
			t.Errorf("db %q env %q: %s was created (%v)", tc.db, tc.env, missing, err)
		}
	}

	t.Setenv(databaseEnv, "")
	defs := filepath.Join(tmp, "defs")
	if err := os.Mkdir(defs, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(defs, "freshet.yaml"), "assets:\n  - key: a\n    compute: {command: [\"true\"]}\n")
	if _, errOut, code := run(t, "status", "-f", defs); code != 0 {
		t.Fatalf("status with the default catalog: exit %d: %s", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(defs, ".freshet", "freshet.db")); err != nil {
		t.Errorf("the default catalog was not created: %v", err)
	}
	existing := filepath.Join(tmp, "existing")
	if err := os.Mkdir(existing, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := run(t, "status", "-f", defs, "--db", "sqlite:"+filepath.Join(existing, "catalog.db")); code != 0 {
		t.Errorf("a new catalog in an existing folder: exit %d: %s", code, errOut)
	}
}

// TestReportNamesItsAsset checks the two ways to name a report's asset (an
// argument, as lineage and history take it, or --asset) and the mistakes.
func TestReportNamesItsAsset(t *testing.T) {
	t.Parallel()
	db := tempDB(t)
	report := func(args ...string) (string, string, int) {
		return run(t, append([]string{"report", "observation", "-f", example, "--db", db}, args...)...)
	}
	for _, args := range [][]string{
		{"sales/exchange_rates", "--data-version", "v1"},
		{"--asset", "sales/exchange_rates", "--data-version", "v2"},
		{"sales/exchange_rates", "-a", "sales/exchange_rates", "--data-version", "v3"},
	} {
		out, errOut, code := report(args...)
		if code != 0 || !strings.Contains(out, "recorded 1 observation of sales/exchange_rates") {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want it recorded", args, code, out, errOut)
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--data-version", "v1"}, "which asset? name it: freshet report observation ASSET (or --asset ASSET)"},
		{[]string{"sales/exchange_rates", "--asset", "sales/raw_orders", "--data-version", "v1"}, "two assets: sales/exchange_rates and --asset sales/raw_orders"},
		{[]string{"sales/exchange_rates", "sales/raw_orders", "--data-version", "v1"}, "one asset per report, not 2: sales/exchange_rates, sales/raw_orders"},
		{[]string{"sales/nope", "--data-version", "v1"}, "asset sales/nope: no such asset in the definitions"},
	} {
		_, errOut, code := report(tc.args...)
		if code == 0 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want non-zero and %q", tc.args, code, errOut, tc.want)
		}
	}
}

func TestOneLine(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"attempt 1 failed", "attempt 1 failed"},
		{"command exited with status 3; stderr ends with:\nboom: bad row 17", "command exited with status 3; stderr ends with: boom: bad row 17"},
		{"command exited with status 1; stderr ends with:\nTraceback (most recent call last):\n  File \"x.py\", line 3\nKeyError: 'amount'\n",
			"command exited with status 1; stderr ends with: … KeyError: 'amount'"},
		{"\n  first  \n\n", "first"},
	} {
		if got := oneLine(tc.in); got != tc.want {
			t.Errorf("oneLine(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestStatusDataTimeOfUnpartitionedAssets checks that an unpartitioned asset's
// data time in status is the time of its last materialization (or observation,
// for a source), and null without one. The times are read in one batch.
func TestStatusDataTimeOfUnpartitionedAssets(t *testing.T) {
	t.Parallel()
	dir, db := t.TempDir(), tempDB(t)
	writeFile(t, filepath.Join(dir, "freshet.yaml"), `assets:
  - key: src
  - key: built
    deps: [src]
    compute: {command: ["true"]}
  - key: never
    compute: {command: ["true"]}
`)
	for _, args := range [][]string{
		{"observation", "src", "--data-version", "v1", "--at", "2026-01-05T10:00:00Z"},
		{"materialization", "built", "--at", "2026-01-06T11:00:00Z"},
	} {
		if _, errOut, code := run(t, append([]string{"report", "-f", dir, "--db", db}, args...)...); code != 0 {
			t.Fatalf("report %v: exit %d: %s", args, code, errOut)
		}
	}
	out, errOut, code := run(t, "status", "-f", dir, "--db", db, "--json")
	if code != 0 {
		t.Fatalf("status: exit %d: %s", code, errOut)
	}
	var got struct {
		Assets []assetStatus `json:"assets"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("status --json: %v\n%s", err, out)
	}
	want := map[string]string{"src": "2026-01-05T10:00:00Z", "built": "2026-01-06T11:00:00Z", "never": ""}
	for _, a := range got.Assets {
		w, ok := want[a.Asset]
		if !ok {
			t.Errorf("unexpected asset %s", a.Asset)
			continue
		}
		delete(want, a.Asset)
		gotTime := ""
		if a.DataTime != nil {
			gotTime = a.DataTime.Format(time.RFC3339)
		}
		if gotTime != w {
			t.Errorf("%s: data time %q, want %q", a.Asset, gotTime, w)
		}
	}
	if len(want) > 0 {
		t.Errorf("assets missing from the status: %v", want)
	}
}
