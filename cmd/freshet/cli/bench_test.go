package cli

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/freshetdev/freshet/store/postgres/pgtest"
)

// dagDefs writes definitions of n unpartitioned no-op assets (command: true) in
// one of three shapes: wide (n independent), chain (n in a line) or layered
// (layers of width, each asset reading two of the layer before).
func dagDefs(shape string, n, width int) string {
	var b strings.Builder
	b.WriteString("assets:\n")
	for i := range n {
		fmt.Fprintf(&b, "  - key: bench/a%04d\n    compute: {command: [\"true\"]}\n", i)
		switch shape {
		case "chain":
			if i > 0 {
				fmt.Fprintf(&b, "    deps: [bench/a%04d]\n", i-1)
			}
		case "layered":
			if layer := i / width; layer > 0 {
				prev := (layer - 1) * width
				fmt.Fprintf(&b, "    deps: [bench/a%04d, bench/a%04d]\n", prev+i%width, prev+(i+1)%width)
			}
		}
	}
	return b.String()
}

// BenchmarkMaterializeDAG measures the wall time of `freshet materialize` (the
// real binary, every state persisted in PostgreSQL) on 1,000-step DAGs of no-op
// commands, from a fresh catalog each time.
func BenchmarkMaterializeDAG(b *testing.B) {
	bin := binary(b)
	for _, c := range []struct {
		shape    string
		n, width int
	}{{"wide", 1000, 0}, {"chain", 1000, 0}, {"layered", 1000, 100}} {
		name := fmt.Sprintf("shape=%s/steps=%d", c.shape, c.n)
		if c.width > 0 {
			name += fmt.Sprintf("/layers=%d", c.n/c.width)
		}
		b.Run(name, func(b *testing.B) {
			dir := b.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "freshet.yaml"), []byte(dagDefs(c.shape, c.n, c.width)), 0o644); err != nil {
				b.Fatal(err)
			}
			var total time.Duration
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
				total += time.Since(start)
				if err != nil {
					b.Fatalf("materialize: %v\n%s", err, out)
				}
				if !strings.Contains(string(out), fmt.Sprintf("%d succeeded", c.n)) {
					b.Fatalf("not every step succeeded:\n%s", out)
				}
			}
			b.ReportMetric(total.Seconds()/float64(b.N), "s/materialize")
		})
	}
}
