package materialize_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/freshetdev/freshet/assets"
	"github.com/freshetdev/freshet/graph"
	"github.com/freshetdev/freshet/materialize"
	"github.com/freshetdev/freshet/store"
)

// queueStores returns a fresh catalog of each kind, with its queue.
func queueStores(t testing.TB) map[string]materialize.QueueStore {
	t.Helper()
	out := map[string]materialize.QueueStore{}
	for name, s := range openStores(t) {
		q, ok := s.(materialize.QueueStore)
		if !ok {
			t.Fatalf("%s store has no queue", name)
		}
		out[name] = q
	}
	return out
}

// testLog writes a worker's log lines to the test's log.
type testLog struct{ t testing.TB }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// funcAsset is an unpartitioned or daily asset built by fn.
func funcAsset(key string, parts *assets.Partitions, fn func(context.Context, assets.StepInput) (assets.StepOutput, error), deps ...string) *assets.Asset {
	a := &assets.Asset{Key: assets.Key(key), Partitions: parts, CodeVersion: "1",
		Compute: assets.FuncCompute{Name: key, Fn: fn}}
	for _, d := range deps {
		a.Deps = append(a.Deps, assets.Dep{Asset: assets.Key(d)})
	}
	return a
}

// materializeAll plans everything of g at now, records the run and works it with
// a worker until it ends, returning the run.
func materializeAll(t *testing.T, q materialize.QueueStore, g *graph.Graph, now time.Time, force bool) *store.Run {
	t.Helper()
	ctx := context.Background()
	cat, err := materialize.LoadCatalog(ctx, q, g)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := materialize.Compute(g, cat.State(), materialize.Request{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	nr := plan.NewRun(materialize.RunOptions{Trigger: store.TriggerManual, Selection: "*", Force: force, PlannedSeq: cat.State().Seq})
	if len(nr.Steps) == 0 {
		return nil
	}
	run, err := q.CreateRun(ctx, nr)
	if err != nil {
		t.Fatal(err)
	}
	return work(t, q, g, run.ID, 4)
}

// work runs a worker until run id ends.
func work(t *testing.T, q materialize.QueueStore, g *graph.Graph, id [16]byte, parallel int) *store.Run {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w := materialize.NewWorker(q, g, t.TempDir(), &materialize.Executors{})
	w.Parallel, w.Poll = parallel, 20*time.Millisecond
	// What the worker warns about shows with the test's failure.
	w.Logger = hclog.New(&hclog.LoggerOptions{Name: "worker", Level: hclog.Debug, Output: testLog{t}})
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("worker: %v", err)
		}
	}()
	for {
		run, err := q.GetRun(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if run.Status.Done() {
			return run
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestWorkerRunsThePlanAndReplanIsEmpty(t *testing.T) {
	t.Parallel()
	for name, q := range queueStores(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			daily, _ := assets.NewPartitions(assets.PartitionsSpec{Granularity: assets.Daily, Start: "2026-01-01"})
			var mu sync.Mutex
			built := map[string]int{}
			fn := func(_ context.Context, in assets.StepInput) (assets.StepOutput, error) {
				mu.Lock()
				defer mu.Unlock()
				for _, p := range in.PartitionKeys {
					built[string(in.Asset)+" "+p]++
				}
				if len(in.PartitionKeys) == 0 {
					built[string(in.Asset)]++
				}
				return assets.StepOutput{DataVersion: "v1", Metadata: map[string]any{"rows": 3}}, nil
			}
			up := funcAsset("up", daily, fn)
			down := funcAsset("down", daily, fn, "up")
			down.Batch.MaxPartitions = 3
			total := funcAsset("total", nil, fn, "down")
			defs := &assets.Definitions{Assets: []*assets.Asset{up, down, total}}
			g := syncGraph(t, q, defs)
			now := time.Date(2026, 1, 11, 0, 0, 0, 0, time.UTC) // 10 days
			run := materializeAll(t, q, g, now, false)
			if run == nil || run.Status != store.RunSucceeded {
				t.Fatalf("run: %+v", run)
			}
			if len(built) != 21 {
				t.Errorf("built %d partitions, want 21: %v", len(built), built)
			}
			for k, n := range built {
				if n != 1 {
					t.Errorf("%s built %d times", k, n)
				}
			}
			if again := materializeAll(t, q, g, now, false); again != nil {
				t.Errorf("re-plan after a full run is not empty: run %+v", again)
			}
			// Forced: everything rebuilt, with the same data versions, so nothing
			// downstream of a rebuilt partition ends stale.
			run = materializeAll(t, q, g, now, true)
			if run == nil || run.Status != store.RunSucceeded {
				t.Fatalf("forced run: %+v", run)
			}
			if built["up 2026-01-01"] != 2 || built["total"] != 2 {
				t.Errorf("forced run did not rebuild: %v", built)
			}
			if again := materializeAll(t, q, g, now, false); again != nil {
				t.Errorf("re-plan after a forced run is not empty")
			}
		})
	}
}

// A step whose inputs turn out unchanged is skipped: the upstream is rebuilt
// because its code changed, reports the same data version, and the downstream
// step planned behind it is SKIPPED_FRESH instead of run.
func TestWorkerSkipsStepsWhoseInputsDidNotChange(t *testing.T) {
	t.Parallel()
	for name, q := range queueStores(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var downRuns atomic.Int32
			same := func(context.Context, assets.StepInput) (assets.StepOutput, error) {
				return assets.StepOutput{DataVersion: "same"}, nil
			}
			up := funcAsset("up", nil, same)
			down := funcAsset("down", nil, func(context.Context, assets.StepInput) (assets.StepOutput, error) {
				downRuns.Add(1)
				return assets.StepOutput{}, nil
			}, "up")
			defs := &assets.Definitions{Assets: []*assets.Asset{up, down}}
			g := syncGraph(t, q, defs)
			now := time.Now()
			if run := materializeAll(t, q, g, now, false); run.Status != store.RunSucceeded {
				t.Fatalf("first run %s", run.Status)
			}
			up.CodeVersion = "2"
			g = syncGraph(t, q, defs)
			run := materializeAll(t, q, g, now, false)
			if run == nil || run.Status != store.RunSucceeded {
				if run != nil { // what the steps went through, to tell why
					steps, _ := q.RunSteps(context.Background(), run.ID)
					for _, st := range steps {
						atts, _ := q.Attempts(context.Background(), st.ID)
						page, _ := q.StepLog(context.Background(), st.ID, 0, 100)
						t.Logf("step %s of %s: %s, error %q, attempts %+v", st.ID, st.Asset, st.Status, st.Error, atts)
						for _, l := range page.Lines {
							t.Logf("  log %d: %s", l.No, l.Text)
						}
					}
				}
				t.Fatalf("second run: %+v", run)
			}
			if run.Counts[store.StepSucceeded] != 1 || run.Counts[store.StepSkippedFresh] != 1 {
				t.Errorf("counts %v: want up rebuilt and down skipped fresh", run.Counts)
			}
			if n := downRuns.Load(); n != 1 {
				t.Errorf("down ran %d times; want once (the first run)", n)
			}
		})
	}
}

func TestWorkerRetriesThenFailsForGood(t *testing.T) {
	t.Parallel()
	for name, q := range queueStores(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var flakyCalls, brokenCalls atomic.Int32
			flaky := funcAsset("flaky", nil, func(context.Context, assets.StepInput) (assets.StepOutput, error) {
				if flakyCalls.Add(1) <= 2 {
					return assets.StepOutput{}, errors.New("service unavailable")
				}
				return assets.StepOutput{}, nil
			})
			flaky.Retries = assets.Retries{Max: 3, Backoff: time.Millisecond}
			broken := funcAsset("broken", nil, func(context.Context, assets.StepInput) (assets.StepOutput, error) {
				brokenCalls.Add(1)
				return assets.StepOutput{}, errors.New("relation orders does not exist")
			})
			broken.Retries = assets.Retries{Max: 1, Backoff: time.Millisecond}
			after := funcAsset("after", nil, func(context.Context, assets.StepInput) (assets.StepOutput, error) {
				t.Error("a step downstream of a failed one ran")
				return assets.StepOutput{}, nil
			}, "broken")
			g := syncGraph(t, q, &assets.Definitions{Assets: []*assets.Asset{flaky, broken, after}})
			run := materializeAll(t, q, g, time.Now(), false)
			if run.Status != store.RunFailed {
				t.Fatalf("run %s; want FAILED", run.Status)
			}
			steps, err := q.RunSteps(context.Background(), run.ID)
			if err != nil {
				t.Fatal(err)
			}
			got := map[assets.Key]string{}
			for _, s := range steps {
				got[s.Asset] = fmt.Sprintf("%s after %d", s.Status, s.Attempt)
			}
			want := map[assets.Key]string{"flaky": "SUCCEEDED after 3", "broken": "FAILED after 2", "after": "UPSTREAM_FAILED after 0"}
			for k, w := range want {
				if got[k] != w {
					t.Errorf("%s: %s; want %s", k, got[k], w)
				}
			}
			if n := brokenCalls.Load(); n != 2 {
				t.Errorf("broken ran %d times; want 2 (retries.max 1)", n)
			}
			rec, err := q.Partition(context.Background(), "broken", "")
			if err != nil || !rec.Failed {
				t.Errorf("broken's partition is not recorded as failed: %+v, %v", rec, err)
			}

			// The log tells every attempt's story in order, though each attempt's
			// lines travel with its report.
			for _, s := range steps {
				if s.Asset != "flaky" {
					continue
				}
				page, err := q.StepLog(context.Background(), s.ID, 0, 100)
				if err != nil {
					t.Fatal(err)
				}
				var text []string
				for i, l := range page.Lines {
					if l.No != int64(i+1) {
						t.Errorf("log line %d is numbered %d", i+1, l.No)
					}
					text = append(text, fmt.Sprintf("%d %s", l.Attempt, l.Text))
				}
				want := []string{"1 attempt 1 of 4 by", "1 attempt 1 failed after", "2 attempt 2 of 4 by",
					"2 attempt 2 failed after", "3 attempt 3 of 4 by", "3 succeeded in"}
				if len(text) != len(want) {
					t.Fatalf("flaky's log:\n%s\nwant %d lines starting %q", strings.Join(text, "\n"), len(want), want)
				}
				for i := range want {
					if !strings.HasPrefix(text[i], want[i]) {
						t.Errorf("flaky's log line %d: %q; want it to start with %q", i+1, text[i], want[i])
					}
				}
			}
		})
	}
}

func TestWorkerTimeoutAndCancel(t *testing.T) {
	t.Parallel()
	for name, q := range queueStores(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			started := make(chan struct{}, 1)
			slow := funcAsset("slow", nil, func(ctx context.Context, _ assets.StepInput) (assets.StepOutput, error) {
				<-ctx.Done()
				return assets.StepOutput{}, ctx.Err()
			})
			slow.Timeout = 50 * time.Millisecond
			hang := funcAsset("hang", nil, func(ctx context.Context, _ assets.StepInput) (assets.StepOutput, error) {
				started <- struct{}{}
				<-ctx.Done()
				return assets.StepOutput{}, ctx.Err()
			})
			g := syncGraph(t, q, &assets.Definitions{Assets: []*assets.Asset{slow, hang}})
			ctx := context.Background()
			cat, err := materialize.LoadCatalog(ctx, q, g)
			if err != nil {
				t.Fatal(err)
			}
			plan, err := materialize.Compute(g, cat.State(), materialize.Request{Now: time.Now()})
			if err != nil {
				t.Fatal(err)
			}
			run, err := q.CreateRun(ctx, plan.NewRun(materialize.RunOptions{Trigger: store.TriggerManual}))
			if err != nil {
				t.Fatal(err)
			}
			go func() {
				// Cancel once hang runs and slow has timed out: a cancel request
				// seen by slow's heartbeat before its timeout would end it CANCELED.
				<-started
				for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
					steps, err := q.RunSteps(ctx, run.ID)
					if err != nil {
						t.Errorf("run steps: %v", err)
						return
					}
					if i := slices.IndexFunc(steps, func(s store.Step) bool { return s.Asset == "slow" }); i >= 0 && steps[i].Status.Done() {
						break
					}
				}
				if _, err := q.CancelRun(ctx, run.ID); err != nil {
					t.Errorf("cancel: %v", err)
				}
			}()
			w := materialize.NewWorker(q, g, t.TempDir(), &materialize.Executors{})
			// A lease short enough for hang's heartbeat to see the cancel soon, long
			// enough for slow's report to land under the race detector on a busy
			// machine (it is not renewed once the attempt has ended).
			w.Parallel, w.Lease, w.Poll = 2, 3*time.Second, 20*time.Millisecond
			wctx, stop := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() { done <- w.Run(wctx) }()
			var final *store.Run
			for final == nil {
				r, err := q.GetRun(ctx, run.ID)
				if err != nil {
					t.Fatal(err)
				}
				if r.Status.Done() {
					final = r
				}
				time.Sleep(10 * time.Millisecond)
			}
			stop()
			<-done
			if final.Status != store.RunCanceled {
				t.Errorf("run %s; want CANCELED", final.Status)
			}
			steps, _ := q.RunSteps(ctx, run.ID)
			for _, s := range steps {
				switch s.Asset {
				case "slow":
					attempts, _ := q.Attempts(ctx, s.ID)
					if s.Status != store.StepFailed || len(attempts) != 1 || attempts[0].Status != store.AttemptTimedOut {
						t.Errorf("slow: %s with attempts %+v; want FAILED after one TIMED_OUT attempt", s.Status, attempts)
					}
				case "hang":
					if s.Status != store.StepCanceled {
						t.Errorf("hang: %s; want CANCELED", s.Status)
					}
				}
			}
		})
	}
}

// A worker stopped with a drain lets the step in progress finish and records it
// succeeded; without one, the step is stopped and handed back for a retry.
func TestWorkerDrainsOnStop(t *testing.T) {
	t.Parallel()
	for _, drain := range []time.Duration{0, 30 * time.Second} {
		// Stores of its own per case: a worker runs any step of its store.
		for name, q := range queueStores(t) {
			t.Run(fmt.Sprintf("%s/drain=%s", name, drain), func(t *testing.T) {
				t.Parallel()
				started := make(chan struct{})
				slow := funcAsset("slow", nil, func(ctx context.Context, _ assets.StepInput) (assets.StepOutput, error) {
					close(started)
					select {
					case <-time.After(500 * time.Millisecond):
						return assets.StepOutput{}, nil
					case <-ctx.Done():
						return assets.StepOutput{}, ctx.Err()
					}
				})
				slow.Retries = assets.Retries{Max: 2, Backoff: time.Hour}
				g := syncGraph(t, q, &assets.Definitions{Assets: []*assets.Asset{slow}})
				cat, err := materialize.LoadCatalog(context.Background(), q, g)
				if err != nil {
					t.Fatal(err)
				}
				plan, err := materialize.Compute(g, cat.State(), materialize.Request{Now: time.Now()})
				if err != nil {
					t.Fatal(err)
				}
				run, err := q.CreateRun(context.Background(), plan.NewRun(materialize.RunOptions{Trigger: store.TriggerManual, Selection: "*"}))
				if err != nil {
					t.Fatal(err)
				}
				w := materialize.NewWorker(q, g, t.TempDir(), &materialize.Executors{})
				w.Poll, w.Drain = 20*time.Millisecond, drain
				w.Logger = hclog.New(&hclog.LoggerOptions{Name: "worker", Level: hclog.Debug, Output: testLog{t}})
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan error, 1)
				go func() { done <- w.Run(ctx) }()
				<-started
				cancel()
				if err := <-done; err != nil {
					t.Fatalf("worker: %v", err)
				}
				steps, err := q.RunSteps(context.Background(), run.ID)
				if err != nil {
					t.Fatal(err)
				}
				st := steps[0]
				switch {
				case drain > 0 && st.Status != store.StepSucceeded:
					t.Errorf("with a drain: step %s (%s); want SUCCEEDED", st.Status, st.Error)
				case drain == 0 && (st.Status != store.StepReady || st.Attempt != 1):
					t.Errorf("without a drain: step %s after %d attempts; want READY again, for a retry", st.Status, st.Attempt)
				}
			})
		}
	}
}
