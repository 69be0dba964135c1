package cli

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/freshetdev/freshet/store/postgres/pgtest"
)

// catalogs are the two stores every end-to-end test runs on.
func catalogs(t *testing.T) map[string]func(t *testing.T) string {
	return map[string]func(t *testing.T) string{
		"sqlite":   tempDB,
		"postgres": func(t *testing.T) string { return pgtest.URL(t) },
	}
}

// copyExample copies the example project into a fresh folder: its steps write
// their outputs beside the definitions.
func copyExample(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "sales")
	if out, err := exec.Command("cp", "-R", example, dir).CombinedOutput(); err != nil {
		t.Fatalf("copy example: %v\n%s", err, out)
	}
	os.RemoveAll(filepath.Join(dir, ".freshet"))
	return dir
}

type planJSON struct {
	Steps []struct {
		Asset      string   `json:"asset"`
		Partitions []string `json:"partitions"`
	} `json:"steps"`
	Blocked []struct {
		Asset     string `json:"asset"`
		Partition string `json:"partition"`
	} `json:"blocked"`
}

func planOf(t *testing.T, args ...string) planJSON {
	t.Helper()
	out, errOut, code := run(t, append([]string{"plan", "--json"}, args...)...)
	if code != 0 {
		t.Fatalf("plan: exit %d\n%s", code, errOut)
	}
	var p planJSON
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		t.Fatalf("plan --json: %v\n%s", err, out)
	}
	return p
}

// The example over January 2026: everything is built, and planning again finds
// nothing to do.
func TestMaterializeExampleMonth(t *testing.T) {
	t.Parallel()
	for name, db := range catalogs(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir, url := copyExample(t), db(t)
			window := []string{"-f", dir, "--db", url, "--from", "2026-01-01", "--to", "2026-01-31", "--now", "2026-02-02T12:00:00Z"}
			if _, errOut, code := run(t, "report", "observation", "-f", dir, "--db", url,
				"--asset", "sales/exchange_rates", "--data-version", "rates-v1"); code != 0 {
				t.Fatalf("report observation: exit %d\n%s", code, errOut)
			}
			out, errOut, code := run(t, append([]string{"materialize", "--parallel", "4"}, window...)...)
			if code != 0 {
				t.Fatalf("materialize: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
			}
			if !regexp.MustCompile(`run \S+ SUCCEEDED in \S+: \d+ succeeded`).MatchString(out) {
				t.Errorf("no success summary in:\n%s", out)
			}
			if p := planOf(t, window...); len(p.Steps) != 0 || len(p.Blocked) != 0 {
				t.Errorf("after the run, the plan still has %d steps and %d blocked: %+v", len(p.Steps), len(p.Blocked), p)
			}
			// The steps really ran: the daily report of the 31st exists.
			if _, err := os.Stat(filepath.Join(dir, "reports", "daily", "date=2026-01-31", "report.txt")); err != nil {
				t.Errorf("the daily report of 2026-01-31 was not written: %v", err)
			}
			out, _, _ = run(t, "materialize", "--parallel", "4", "-f", dir, "--db", url, "--from", "2026-01-01", "--to", "2026-01-31", "--now", "2026-02-02T12:00:00Z")
			if !strings.Contains(out, "Nothing to materialize") {
				t.Errorf("second materialize did something:\n%s", out)
			}
		})
	}
}

const faultsDefs = `assets:
  - key: shop/flaky
    partitions: {daily: {start: 2026-01-01}}
    compute: {command: [sh, flaky.sh, "{partition}"]}
    retries: {max: 3, backoff: 10ms, max_backoff: 20ms}
  - key: shop/summary
    deps: [shop/flaky]
    partitions: {daily: {start: 2026-01-01}}
    compute: {command: ["true"]}
  - key: shop/broken
    partitions: {daily: {start: 2026-01-01}}
    compute: {command: [sh, -c, 'echo "connecting to warehouse"; echo "relation orders does not exist" >&2; exit 3']}
    retries: {max: 1, backoff: 10ms}
  - key: shop/after_broken
    deps: [shop/broken]
    partitions: {daily: {start: 2026-01-01}}
    compute: {command: ["true"]}
`

// flaky.sh fails the first two attempts of each partition, then succeeds.
const flakyScript = `#!/bin/sh
n=$(cat "count-$1" 2>/dev/null || echo 0)
n=$((n + 1))
echo $n > "count-$1"
if [ "$n" -le 2 ]; then echo "attempt $FRESHET_ATTEMPT: service unavailable" >&2; exit 1; fi
echo "built $1 on attempt $FRESHET_ATTEMPT"
`

// A step that fails twice is absorbed by its retries; a step that always fails
// leaves its downstream UPSTREAM_FAILED while the independent branch completes,
// and the command says where to read the failure and exits non-zero.
func TestMaterializeRetriesAndFailures(t *testing.T) {
	t.Parallel()
	for name, db := range catalogs(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir, url := t.TempDir(), db(t)
			writeFile(t, filepath.Join(dir, "freshet.yaml"), faultsDefs)
			writeFile(t, filepath.Join(dir, "flaky.sh"), flakyScript)
			out, errOut, code := run(t, "materialize", "-f", dir, "--db", url, "--from", "2026-01-01", "--to", "2026-01-02",
				"--now", "2026-01-03T06:00:00Z", "--parallel", "3")
			if code == 0 {
				t.Fatalf("materialize with a broken asset exited 0:\n%s", out)
			}
			if !strings.Contains(out, "FAILED") || !strings.Contains(out, "shop/broken 2026-01-01 after 2 attempts: command exited with status 3") {
				t.Errorf("summary does not name the failed step and its error:\n%s\nstderr:\n%s", out, errOut)
			}
			logStep := regexp.MustCompile(`freshet logs (\S+)`).FindStringSubmatch(out)
			if logStep == nil {
				t.Fatalf("summary does not say where the log is:\n%s", out)
			}
			logs, errOut, code := run(t, "logs", logStep[1], "-f", dir, "--db", url)
			if code != 0 || !strings.Contains(logs, "relation orders does not exist") || !strings.Contains(logs, "connecting to warehouse") {
				t.Errorf("logs of the failed step (exit %d):\n%s\n%s", code, logs, errOut)
			}

			runID := regexp.MustCompile(`run (\S+) FAILED`).FindStringSubmatch(out)
			if runID == nil {
				t.Fatalf("no run id in:\n%s", out)
			}
			show, errOut, code := run(t, "run", "show", runID[1], "--json", "-f", dir, "--db", url)
			if code != 0 {
				t.Fatalf("run show: exit %d\n%s", code, errOut)
			}
			var r struct {
				Status string
				Steps  []struct {
					Asset      string
					Partitions []string
					Status     string
					Attempt    int
				}
			}
			if err := json.Unmarshal([]byte(show), &r); err != nil {
				t.Fatalf("run show --json: %v\n%s", err, show)
			}
			want := map[string]struct {
				status  string
				attempt int
			}{
				"shop/flaky":        {"SUCCEEDED", 3},
				"shop/summary":      {"SUCCEEDED", 1},
				"shop/broken":       {"FAILED", 2},
				"shop/after_broken": {"UPSTREAM_FAILED", 0},
			}
			if r.Status != "FAILED" || len(r.Steps) != 8 {
				t.Fatalf("run %s with %d steps; want FAILED with 8:\n%s", r.Status, len(r.Steps), show)
			}
			for _, s := range r.Steps {
				if w := want[s.Asset]; s.Status != w.status || s.Attempt != w.attempt {
					t.Errorf("%s %v: %s after %d attempts; want %s after %d", s.Asset, s.Partitions, s.Status, s.Attempt, w.status, w.attempt)
				}
			}
			// The independent branch is fresh, the broken one still to do.
			p := planOf(t, "-f", dir, "--db", url, "--from", "2026-01-01", "--to", "2026-01-02", "--now", "2026-01-03T06:00:00Z")
			for _, s := range p.Steps {
				if s.Asset != "shop/broken" && s.Asset != "shop/after_broken" {
					t.Errorf("after the run %s is still planned", s.Asset)
				}
			}
		})
	}
}

// A backfill worked in this process reaches 100%; a detached one can be
// followed and canceled, and canceling leaves nothing running.
func TestBackfillStartStatusCancel(t *testing.T) {
	t.Parallel()
	for name, db := range catalogs(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir, url := t.TempDir(), db(t)
			writeFile(t, filepath.Join(dir, "freshet.yaml"), faultsDefs)
			writeFile(t, filepath.Join(dir, "flaky.sh"), flakyScript)
			common := []string{"-f", dir, "--db", url, "--now", "2026-01-09T06:00:00Z"}
			out, errOut, code := run(t, append([]string{"backfill", "start", "--select", "shop/summary+ +shop/summary",
				"--from", "2026-01-01", "--to", "2026-01-07", "--max-parallel", "2"}, common...)...)
			if code != 0 {
				t.Fatalf("backfill start: exit %d\n%s\n%s", code, out, errOut)
			}
			m := regexp.MustCompile(`backfill (\S+) SUCCEEDED: 100% — 14 of 14 partitions done`).FindStringSubmatch(out)
			if m == nil {
				t.Fatalf("backfill did not report 100%%:\n%s", out)
			}
			status, _, code := run(t, "backfill", "status", m[1], "-f", dir, "--db", url)
			if code != 0 || !strings.Contains(status, "SUCCEEDED: 100%") {
				t.Errorf("backfill status (exit %d):\n%s", code, status)
			}

			out, errOut, code = run(t, append([]string{"backfill", "start", "--detach", "--select", "shop/broken",
				"--from", "2026-01-01", "--to", "2026-01-07", "--mode", "all"}, common...)...)
			if code != 0 {
				t.Fatalf("detached backfill: exit %d\n%s\n%s", code, out, errOut)
			}
			id := regexp.MustCompile(`backfill (\S+): 7 partitions to build in 7 steps`).FindStringSubmatch(out)
			if id == nil {
				t.Fatalf("detached backfill said:\n%s", out)
			}
			out, _, code = run(t, "backfill", "cancel", id[1], "-f", dir, "--db", url)
			if code != 0 || !strings.Contains(out, "CANCELED") || !strings.Contains(out, "0 of 7 partitions done") {
				t.Errorf("backfill cancel (exit %d):\n%s", code, out)
			}
			list, _, _ := run(t, "backfill", "status", "-f", dir, "--db", url)
			if !strings.Contains(list, id[1]) || !strings.Contains(list, m[1]) {
				t.Errorf("backfill list lacks a backfill:\n%s", list)
			}
		})
	}
}
