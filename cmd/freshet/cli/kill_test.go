package cli

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
	buildOut  []byte
)

// binary builds the freshet binary once per test process.
func binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := tempDirOutsideTest()
		if err != nil {
			buildErr = err
			return
		}
		builtBin = filepath.Join(dir, "freshet")
		buildOut, buildErr = exec.Command("go", "build", "-o", builtBin, "github.com/freshetdev/freshet/cmd/freshet").CombinedOutput()
	})
	if buildErr != nil {
		t.Fatalf("go build: %v\n%s", buildErr, buildOut)
	}
	return builtBin
}

// TestMain removes the binary the tests built.
func TestMain(m *testing.M) {
	code := m.Run()
	if builtBin != "" {
		os.RemoveAll(filepath.Dir(builtBin))
	}
	os.Exit(code)
}

func tempDirOutsideTest() (string, error) { return os.MkdirTemp("", "freshet-test-bin-") }

const hourlyDefs = `assets:
  - key: sensors/readings
    partitions: {hourly: {start: 2020-01-01}}
    compute: {command: ["true"]}
`

// TestKilledMidReport kills `freshet report` with SIGKILL while it records a large
// batch (52,608 hourly partitions) and checks, on both stores, that the event log
// and the partition state still agree and the batch is all or nothing.
func TestKilledMidReport(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and records large batches")
	}
	t.Parallel()
	bin := binary(t)
	for name, db := range catalogURLs(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			file := filepath.Join(t.TempDir(), "freshet.yaml")
			writeFile(t, file, hourlyDefs)
			report := func() *exec.Cmd {
				return exec.Command(bin, "report", "materialization", "-f", file, "--db", db,
					"--asset", "sensors/readings", "--from", "2020-01-01", "--to", "2025-12-31", "--at", "2026-01-01T00:00:00Z")
			}
			const batch = 52_608 // hours from 2020-01-01 to the end of 2025 (2,192 days)

			// One uninterrupted report tells how long a batch takes.
			start := time.Now()
			if out, err := report().CombinedOutput(); err != nil {
				t.Fatalf("report: %v\n%s", err, out)
			}
			full := time.Since(start)
			check(t, bin, file, db, batch)

			// Then kill reports at points spread over that time.
			for i, frac := range []float64{0.3, 0.5, 0.7, 0.85, 0.95} {
				cmd := report()
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				time.Sleep(time.Duration(frac * float64(full)))
				if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
					t.Logf("kill %d: %v (it had finished)", i, err)
				}
				_ = cmd.Wait()
				check(t, bin, file, db, batch)
			}
		})
	}
}

// check runs `freshet verify` (the binary: replaying the log under the race
// detector would take minutes) and checks that the event log and the partition
// state agree and that only whole batches were recorded: the watermark is the one
// definition change plus whole batches.
func check(t *testing.T, bin, file, db string, batch int64) {
	t.Helper()
	out, err := exec.Command(bin, "verify", "-f", file, "--db", db).CombinedOutput()
	if err != nil {
		t.Fatalf("verify after kill: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`consistent at seq (\d+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("verify said %q", out)
	}
	seq, _ := strconv.ParseInt(string(m[1]), 10, 64)
	if (seq-1)%batch != 0 {
		t.Errorf("watermark %d: not one definition change plus whole %d-event batches", seq, batch)
	}
}
