package cli

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/freshetdev/freshet/store/postgres/pgtest"
)

// dagDefs writes definitions of n unpartitioned no-op assets (command: true) in
// one of three shapes: wide (n independent), chain (n in a line) or layered
// (layers of width, each asset reading two of the layer before).
func dagDefs(shape string, n, width int) string {
	var b strings.Builder
	b.WriteString("assets:\n")
	for i := range n {
		fmt.Fprintf(&b, "  - key: bench/a%05d\n    compute: {command: [\"true\"]}\n", i)
		switch shape {
		case "chain":
			if i > 0 {
				fmt.Fprintf(&b, "    deps: [bench/a%05d]\n", i-1)
			}
		case "layered":
			if layer := i / width; layer > 0 {
				prev := (layer - 1) * width
				fmt.Fprintf(&b, "    deps: [bench/a%05d, bench/a%05d]\n", prev+i%width, prev+(i+1)%width)
			}
		}
	}
	return b.String()
}

// BenchmarkMaterializeDAG measures the wall time of `freshet materialize` (the
// real binary, every state persisted in PostgreSQL) on 1,000-step DAGs of no-op
// commands, and on a layered one of 10,000 steps (100 layers of 100: it shows a
// cost that grows faster than the run, as JIT compiling the queue's statements
// did), from a fresh catalog each time: the mean (s/materialize) and the fastest
// run (min-s).
//
// A chain cannot overlap its steps, so its time is per step: start a process,
// record its end and claim the next step durably. To tell the engine's share
// from the machine's, the chain also reports two floors measured on the same
// machine in the same run: floor-exec-s, n starts of `true` one after the other
// from Go, and floor-commit-s, n durable transactions of one UPDATE each, one
// after the other, on the benchmark's PostgreSQL.
func BenchmarkMaterializeDAG(b *testing.B) {
	bin := binary(b)
	for _, c := range []struct {
		shape    string
		n, width int
	}{{"wide", 1000, 0}, {"chain", 1000, 0}, {"layered", 1000, 100}, {"layered", 10_000, 100}} {
		name := fmt.Sprintf("shape=%s/steps=%d", c.shape, c.n)
		if c.width > 0 {
			name += fmt.Sprintf("/layers=%d", c.n/c.width)
		}
		b.Run(name, func(b *testing.B) {
			dir := b.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "freshet.yaml"), []byte(dagDefs(c.shape, c.n, c.width)), 0o644); err != nil {
				b.Fatal(err)
			}
			var floorExec, floorCommit time.Duration
			if c.shape == "chain" {
				floorExec, floorCommit = chainFloors(b, c.n)
			}
			var total time.Duration
			var runs []time.Duration
			for b.Loop() {
				b.StopTimer()
				url := pgtest.URL(b)
				// Sync and migrate outside the measurement: a fresh catalog, as after
				// `freshet migrate`.
				if out, err := exec.Command(bin, "status", "-f", dir, "--db", url).CombinedOutput(); err != nil {
					b.Fatalf("status: %v\n%s", err, out)
				}
				b.StartTimer()
				start := time.Now()
				out, err := exec.Command(bin, "materialize", "-f", dir, "--db", url, "--parallel", "8").CombinedOutput()
				took := time.Since(start)
				total += took
				runs = append(runs, took)
				if err != nil {
					b.Fatalf("materialize: %v\n%s", err, out)
				}
				if !strings.Contains(string(out), fmt.Sprintf("%d succeeded", c.n)) {
					b.Fatalf("not every step succeeded:\n%s", out)
				}
			}
			b.ReportMetric(total.Seconds()/float64(b.N), "s/materialize")
			b.ReportMetric(slices.Min(runs).Seconds(), "min-s")
			if floorExec > 0 { // reported last: b.Loop's first call clears metrics
				b.ReportMetric(floorExec.Seconds(), "floor-exec-s")
				b.ReportMetric(floorCommit.Seconds(), "floor-commit-s")
			}
		})
	}
}

// chainFloors measures, outside the benchmark's timer, what n steps in a line
// cost at the least on this machine: n starts of `true`, one after the other,
// and n durable (synchronously committed) transactions of one UPDATE each.
func chainFloors(b *testing.B, n int) (execs, commits time.Duration) {
	b.Helper()
	b.StopTimer()
	defer b.StartTimer()
	start := time.Now()
	for range n {
		if err := exec.Command("true").Run(); err != nil {
			b.Fatalf("run true: %v", err)
		}
	}
	execs = time.Since(start)

	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pgtest.URL(b))
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `CREATE TABLE floor (id integer PRIMARY KEY, n bigint NOT NULL);
		INSERT INTO floor VALUES (1, 0)`); err != nil {
		b.Fatal(err)
	}
	start = time.Now()
	for range n {
		if _, err := conn.Exec(ctx, `UPDATE floor SET n = n + 1 WHERE id = 1`); err != nil {
			b.Fatal(err)
		}
	}
	return execs, time.Since(start)
}
