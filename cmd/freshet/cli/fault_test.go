package cli

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/freshetdev/freshet/store"
	"github.com/freshetdev/freshet/store/postgres"
	"github.com/freshetdev/freshet/store/postgres/pgtest"
)

// faultDefs: 50 daily assets in 10 chains of 5, each step a short command.
func faultDefs() string {
	var b strings.Builder
	b.WriteString("assets:\n")
	for c := range 10 {
		for i := range 5 {
			fmt.Fprintf(&b, "  - key: fault/c%d/a%d\n    partitions: {daily: {start: 2026-01-01}}\n", c, i)
			b.WriteString("    compute: {command: [sh, -c, 'sleep 0.05; echo built']}\n    retries: {max: 2, backoff: 10ms}\n")
			if i > 0 {
				fmt.Fprintf(&b, "    deps: [fault/c%d/a%d]\n", c, i-1)
			}
		}
	}
	return b.String()
}

// startWorker starts `freshet worker` as its own process.
func startWorker(t *testing.T, dir, url, name string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(binary(t), "worker", "-f", dir, "--db", url, "--parallel", "4", "--lease", "2s", "--name", name)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("worker %s output:\n%s", name, out.String())
		}
	})
	return cmd
}

// A worker killed with SIGKILL in the middle of a 200-step run: another worker
// finishes the run, the killed worker's steps come back when their leases expire,
// and no (asset, partition, run) is recorded as built twice.
func TestKilledWorkerRunIsFinishedByAnother(t *testing.T) {
	t.Parallel()
	dir, url := t.TempDir(), pgtest.URL(t)
	writeFile(t, filepath.Join(dir, "freshet.yaml"), faultDefs())
	out, errOut, code := run(t, "backfill", "start", "--detach", "-f", dir, "--db", url,
		"--from", "2026-01-01", "--to", "2026-01-04", "--now", "2026-01-05T06:00:00Z", "--max-parallel", "100")
	if code != 0 {
		t.Fatalf("backfill start: exit %d\n%s\n%s", code, out, errOut)
	}
	m := regexp.MustCompile(`backfill (\S+): 200 partitions to build in 200 steps`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("backfill start said:\n%s", out)
	}
	ctx := context.Background()
	s, err := postgres.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	b, err := s.GetBackfill(ctx, uuid.MustParse(m[1]))
	if err != nil {
		t.Fatal(err)
	}
	runID := b.RunIDs[0]

	victim := startWorker(t, dir, url, "victim")
	// Kill it once it has done some work and holds running steps.
	for {
		r, err := s.GetRun(ctx, runID)
		if err != nil {
			t.Fatal(err)
		}
		if r.Counts[store.StepSucceeded] >= 20 && r.Counts[store.StepRunning] > 0 {
			break
		}
		if r.Status.Done() {
			t.Fatalf("the run ended before the worker could be killed: %v", r.Counts)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := victim.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = victim.Wait()
	killedAt := time.Now()
	startWorker(t, dir, url, "rescuer")

	var final *store.Run
	for final == nil {
		r, err := s.GetRun(ctx, runID)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status.Done() {
			final = r
		}
		time.Sleep(20 * time.Millisecond)
	}
	if final.Status != store.RunSucceeded || final.Counts[store.StepSucceeded] != 200 {
		t.Fatalf("run %s with %v; want SUCCEEDED, 200 steps", final.Status, final.Counts)
	}
	steps, err := s.RunSteps(ctx, runID)
	if err != nil {
		t.Fatal(err)
	}
	expired := 0
	for _, st := range steps {
		attempts, err := s.Attempts(ctx, st.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range attempts {
			switch {
			case a.Status == store.AttemptLeaseExpired:
				expired++
				if a.Worker != "victim" {
					t.Errorf("step %s: attempt %d of %s expired", st.ID, a.Attempt, a.Worker)
				}
			case a.Worker == "victim" && a.FinishedAt.After(killedAt):
				t.Errorf("step %s: the killed worker finished attempt %d after it died", st.ID, a.Attempt)
			}
		}
	}
	if expired == 0 {
		t.Error("no attempt of the killed worker expired: it held no running step when killed")
	}
	page, err := s.Events(ctx, store.EventQuery{Kinds: []store.EventKind{store.Materialization}, Limit: 10000})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, e := range page.Events {
		k := fmt.Sprintf("%s %s %s", e.Asset, e.Partition, e.RunID)
		if seen[k] {
			t.Errorf("%s recorded twice", k)
		}
		seen[k] = true
	}
	if len(seen) != 200 {
		t.Errorf("%d partitions recorded; want 200", len(seen))
	}
}

// PostgreSQL restarted in the middle of a run: the worker rides it out (its
// reports are tried again, lost claims come back with their leases) and the run
// completes, each partition recorded once.
func TestRunSurvivesPostgresRestart(t *testing.T) {
	t.Parallel()
	srv := pgtest.StartServer(t)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "freshet.yaml"), faultDefs())
	out, errOut, code := run(t, "backfill", "start", "--detach", "-f", dir, "--db", srv.URL,
		"--from", "2026-01-01", "--to", "2026-01-04", "--now", "2026-01-05T06:00:00Z", "--max-parallel", "100")
	if code != 0 {
		t.Fatalf("backfill start: exit %d\n%s\n%s", code, out, errOut)
	}
	m := regexp.MustCompile(`backfill (\S+): 200 partitions`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("backfill start said:\n%s", out)
	}
	ctx := context.Background()
	s, err := postgres.Open(ctx, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	b, err := s.GetBackfill(ctx, uuid.MustParse(m[1]))
	if err != nil {
		t.Fatal(err)
	}
	runID := b.RunIDs[0]
	startWorker(t, dir, srv.URL, "survivor")
	for {
		r, err := s.GetRun(ctx, runID)
		if err != nil {
			t.Fatal(err)
		}
		if r.Counts[store.StepSucceeded] >= 40 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	srv.Restart()
	var final *store.Run
	for final == nil {
		// The first reads after the restart may meet dead pooled connections.
		if r, err := s.GetRun(ctx, runID); err == nil && r.Status.Done() {
			final = r
		}
		time.Sleep(20 * time.Millisecond)
	}
	if final.Status != store.RunSucceeded || final.Counts[store.StepSucceeded] != 200 {
		t.Fatalf("run %s with %v; want SUCCEEDED, 200 steps", final.Status, final.Counts)
	}
	page, err := s.Events(ctx, store.EventQuery{Kinds: []store.EventKind{store.Materialization}, Limit: 10000})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, e := range page.Events {
		k := fmt.Sprintf("%s %s", e.Asset, e.Partition)
		if seen[k] {
			t.Errorf("%s recorded twice", k)
		}
		seen[k] = true
	}
	if len(seen) != 200 {
		t.Errorf("%d partitions recorded; want 200", len(seen))
	}
}
