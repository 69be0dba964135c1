package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/freshetdev/freshet/assets"
	"github.com/freshetdev/freshet/store"
	"github.com/freshetdev/freshet/store/postgres/pgtest"
	"github.com/freshetdev/freshet/store/storetest"
)

// TestQueueConformance holds the driver to the queue behaviour every store shares.
// Each test gets a fresh schema of its own.
func TestQueueConformance(t *testing.T) {
	t.Parallel()
	storetest.RunQueue(t, func(t *testing.T) storetest.QueueStore {
		s, err := Open(t.Context(), pgtest.URL(t))
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

// patience bounds the waits of these tests: far above what the store needs, it
// only keeps a broken store from hanging the test.
const patience = 30 * time.Second

// openStores opens n stores on one fresh schema, as n processes would, each with
// a pool of its own.
func openStores(t *testing.T, n int, opts ...Option) []*Store {
	t.Helper()
	url := pgtest.URL(t)
	stores := make([]*Store, n)
	for i := range stores {
		s, err := Open(t.Context(), url, opts...)
		if err != nil {
			t.Fatalf("open store %d: %v", i, err)
		}
		t.Cleanup(func() { s.Close() })
		stores[i] = s
	}
	return stores
}

// independentRun returns a run of n steps without deps: partitions 0 … n-1 of
// asset.
func independentRun(asset assets.Key, n int) store.NewRun {
	nr := store.NewRun{Trigger: store.TriggerManual, Selection: "test"}
	for i := range n {
		nr.Steps = append(nr.Steps, store.NewStep{Asset: asset, Partitions: []string{dayKey(i)}, MaxAttempts: 1})
	}
	return nr
}

// succeed reports c succeeded with one materialization per partition.
func succeedResult(c store.ClaimedStep, worker string) store.StepResult {
	res := store.StepResult{StepID: c.ID, Attempt: c.Attempt, Worker: worker, Outcome: store.OutcomeSucceeded}
	for _, p := range c.Partitions {
		res.Events = append(res.Events, store.Event{Kind: store.Materialization, Asset: c.Asset, Partition: p,
			InputSeq: c.InputSeq})
	}
	return res
}

// Claimers in several processes (stores) at once never claim a step twice, and
// together claim every step: FOR NO KEY UPDATE SKIP LOCKED, with no claimer waiting for
// another.
func TestQueueConcurrentClaimsNeverTakeAStepTwice(t *testing.T) {
	t.Parallel()
	const steps, claimers = 300, 8
	stores := openStores(t, 2)
	defs := []*assets.Asset{daily(t, "test/a", "2024-01-01"), daily(t, "test/b", "2024-01-01")}
	syncDefs(t, stores[0], defs...)
	ctx := t.Context()
	r1, err := stores[0].CreateRun(ctx, independentRun("test/a", steps))
	if err != nil {
		t.Fatal(err)
	}
	r2, err := stores[1].CreateRun(ctx, independentRun("test/b", steps))
	if err != nil {
		t.Fatal(err)
	}

	var (
		mu     sync.Mutex
		claims = map[uuid.UUID]string{}
		wg     sync.WaitGroup
	)
	record := func(worker string, cs []store.ClaimedStep) {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range cs {
			if prev, dup := claims[c.ID]; dup {
				t.Errorf("step %s claimed by %s and by %s", c.ID, prev, worker)
			}
			claims[c.ID] = worker
		}
	}
	for w := range claimers {
		wg.Go(func() {
			s := stores[w%2]
			worker := fmt.Sprintf("w%d", w)
			req := store.ClaimRequest{Worker: worker, Limit: 3, Lease: time.Hour}
			var mine []store.ClaimedStep
			for !t.Failed() {
				if len(mine) == 0 {
					cs, err := s.ClaimSteps(ctx, req)
					if err != nil {
						t.Errorf("%s: ClaimSteps: %v", worker, err)
						return
					}
					if len(cs) == 0 {
						return // every step is claimed
					}
					record(worker, cs)
					mine = cs
				}
				// Half the claimers report with ClaimNext, as workers do.
				res := succeedResult(mine[0], worker)
				mine = mine[1:]
				if w%2 == 0 && len(mine) == 0 {
					res.ClaimNext = &req
				}
				fr, err := s.FinishStep(ctx, res)
				if err != nil {
					t.Errorf("%s: FinishStep: %v", worker, err)
					return
				}
				record(worker, fr.Claimed)
				mine = append(mine, fr.Claimed...)
			}
		})
	}
	wg.Wait()
	if len(claims) != 2*steps {
		t.Errorf("%d steps claimed, want %d", len(claims), 2*steps)
	}
	for _, r := range []*store.Run{r1, r2} {
		got, err := stores[0].GetRun(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != store.RunSucceeded || got.Counts[store.StepSucceeded] != steps {
			t.Errorf("run %s: %s with counts %v, want SUCCEEDED with %d steps succeeded", r.ID, got.Status, got.Counts, steps)
		}
	}
	verifyClean(t, stores[0])
}

// The concurrency cap of an asset and the MaxParallel of a run hold exactly under
// claimers in several processes, whether they claim with ClaimSteps (waiting for
// the capped rows) or with FinishStep's ClaimNext (passing over rows another
// claimer holds).
func TestQueueCapsExactUnderConcurrency(t *testing.T) {
	t.Parallel()
	const (
		steps, claimers  = 60, 6
		assetCap, runCap = 3, 2
	)
	stores := openStores(t, 3)
	defs := []*assets.Asset{daily(t, "test/capped", "2024-01-01"), daily(t, "test/free", "2024-01-01")}
	syncDefs(t, stores[0], defs...)
	ctx := t.Context()
	// A run over the capped asset, and a run capped by MaxParallel over another.
	capped, err := stores[0].CreateRun(ctx, independentRun("test/capped", steps))
	if err != nil {
		t.Fatal(err)
	}
	nr := independentRun("test/free", steps)
	nr.MaxParallel = runCap
	limited, err := stores[0].CreateRun(ctx, nr)
	if err != nil {
		t.Fatal(err)
	}

	var (
		mu                 sync.Mutex
		running            = map[string]int{} // by "asset" and "run", as far as the claimers know
		peakAsset, peakRun int
		done               int
		wg                 sync.WaitGroup
	)
	track := func(cs []store.ClaimedStep, delta int) {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range cs {
			switch c.RunID {
			case capped.ID:
				running["asset"] += delta
				peakAsset = max(peakAsset, running["asset"])
			case limited.ID:
				running["run"] += delta
				peakRun = max(peakRun, running["run"])
			}
			if delta < 0 {
				done++
			}
		}
	}
	for w := range claimers {
		wg.Go(func() {
			s := stores[w%len(stores)]
			worker := fmt.Sprintf("w%d", w)
			req := store.ClaimRequest{Worker: worker, Limit: 2, Lease: time.Hour,
				Concurrency: map[assets.Key]int{"test/capped": assetCap}}
			var mine []store.ClaimedStep
			idle := 0
			for !t.Failed() {
				if len(mine) == 0 {
					cs, err := s.ClaimSteps(ctx, req)
					if err != nil {
						t.Errorf("%s: ClaimSteps: %v", worker, err)
						return
					}
					track(cs, +1)
					mine = cs
				}
				if len(mine) == 0 {
					mu.Lock()
					finished := done == 2*steps
					mu.Unlock()
					if finished {
						return
					}
					if idle++; idle > int(patience/time.Millisecond) {
						t.Errorf("%s: no step to claim for %s", worker, patience)
						return
					}
					time.Sleep(time.Millisecond)
					continue
				}
				idle = 0
				c := mine[0]
				mine = mine[1:]
				time.Sleep(time.Millisecond) // the step runs
				res := succeedResult(c, worker)
				if w%2 == 0 && len(mine) == 0 {
					res.ClaimNext = &req
				}
				// The step stops counting before its end is recorded: the tracked
				// count is never above what the store counts.
				track([]store.ClaimedStep{c}, -1)
				fr, err := s.FinishStep(ctx, res)
				if err != nil {
					t.Errorf("%s: FinishStep: %v", worker, err)
					return
				}
				track(fr.Claimed, +1)
				mine = append(mine, fr.Claimed...)
			}
		})
	}
	wg.Wait()
	if peakAsset > assetCap {
		t.Errorf("up to %d steps of the capped asset ran at once, cap %d", peakAsset, assetCap)
	}
	if peakRun > runCap {
		t.Errorf("up to %d steps of the run ran at once, MaxParallel %d", peakRun, runCap)
	}
	if peakAsset < 2 || peakRun < 2 {
		t.Logf("peaks: asset %d, run %d (the test exercised little concurrency)", peakAsset, peakRun)
	}
	for _, r := range []*store.Run{capped, limited} {
		got, err := stores[0].GetRun(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != store.RunSucceeded {
			t.Errorf("run %s: %s, want SUCCEEDED", r.ID, got.Status)
		}
	}
}

// waitWake waits for a value on ch, failing the test after patience.
func waitWake(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case _, ok := <-ch:
		if !ok {
			t.Fatalf("%s: the channel was closed", what)
		}
	case <-time.After(patience):
		t.Fatalf("%s: no wake-up after %s", what, patience)
	}
}

// drain empties ch of a pending wake-up. (The channel is database-wide: other
// tests' stores in the same database may wake it at any time.)
func drain(ch <-chan struct{}) {
	select {
	case <-ch:
	default:
	}
}

// A listener is woken by a run created through another store (another process)
// on the same database, and its channel is closed when its context ends.
func TestQueueListenWakesAcrossStores(t *testing.T) {
	t.Parallel()
	stores := openStores(t, 2)
	syncDefs(t, stores[0], daily(t, "test/a", "2024-01-01"))
	ctx, cancel := context.WithCancel(t.Context())
	wake, err := stores[0].Listen(ctx)
	if err != nil {
		t.Fatal(err)
	}
	drain(wake)
	if _, err := stores[1].CreateRun(t.Context(), independentRun("test/a", 2)); err != nil {
		t.Fatal(err)
	}
	waitWake(t, wake, "after CreateRun in another store")

	cancel()
	deadline := time.After(patience)
	for {
		select {
		case _, ok := <-wake:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatalf("the channel is still open %s after its context ended", patience)
		}
	}
}

// A listener whose connection is terminated reconnects, sends one wake-up (what
// was notified meanwhile is lost), and is woken by what is notified after.
func TestQueueListenSurvivesTerminatedConnection(t *testing.T) {
	t.Parallel()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	appName := "freshet-queue-test-" + hex.EncodeToString(b)
	stores := openStores(t, 2, WithPoolConfig(func(c *pgxpool.Config) {
		c.ConnConfig.RuntimeParams["application_name"] = appName
	}))
	syncDefs(t, stores[0], daily(t, "test/a", "2024-01-01"))
	ctx := t.Context()
	wake, err := stores[0].Listen(ctx)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := pgx.Connect(ctx, pgtest.BaseURL())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	// The listener's backend: its connection is named after the pool's, and it
	// ran LISTEN.
	listener := func(not int) (int, bool) {
		var pid int
		err := admin.QueryRow(ctx, `SELECT pid FROM pg_stat_activity
			WHERE application_name = $1 AND query = 'LISTEN `+notifyChannel+`' AND state = 'idle' AND pid <> $2`,
			listenAppName(appName), not).Scan(&pid)
		return pid, err == nil
	}
	var pid int
	for start := time.Now(); ; time.Sleep(10 * time.Millisecond) {
		var ok bool
		if pid, ok = listener(0); ok {
			break
		}
		if time.Since(start) > patience {
			t.Fatalf("no backend named %q listening", listenAppName(appName))
		}
	}

	drain(wake)
	var terminated bool
	if err := admin.QueryRow(ctx, `SELECT pg_terminate_backend($1)`, pid).Scan(&terminated); err != nil || !terminated {
		t.Fatalf("terminate the listener's backend %d: %v, %v", pid, terminated, err)
	}
	waitWake(t, wake, "after the listener's connection was terminated")
	for start := time.Now(); ; time.Sleep(10 * time.Millisecond) {
		if _, ok := listener(pid); ok {
			break
		}
		if time.Since(start) > patience {
			t.Fatalf("the listener did not reconnect within %s", patience)
		}
	}

	drain(wake)
	if _, err := stores[1].CreateRun(ctx, independentRun("test/a", 1)); err != nil {
		t.Fatal(err)
	}
	waitWake(t, wake, "after CreateRun, once reconnected")
}

// The plan settings of the queue's transactions do not outlive them: the pool's
// connections go back as they were.
func TestQueuePlanSettingsStayInTheTransaction(t *testing.T) {
	t.Parallel()
	s := openStore(t, WithPoolConfig(func(c *pgxpool.Config) { c.MaxConns = 1 }))
	syncDefs(t, s, daily(t, "test/a", "2024-01-01"))
	ctx := t.Context()
	if _, err := s.CreateRun(ctx, independentRun("test/a", 1)); err != nil {
		t.Fatal(err)
	}
	cs, err := s.ClaimSteps(ctx, store.ClaimRequest{Worker: "w", Limit: 1, Lease: time.Hour})
	if err != nil || len(cs) != 1 {
		t.Fatalf("claim: %v, %v", cs, err)
	}
	if _, err := s.FinishStep(ctx, succeedResult(cs[0], "w")); err != nil {
		t.Fatal(err)
	}
	var seqscan, mode string
	if err := s.pool.QueryRow(ctx, `SELECT current_setting('enable_seqscan'), current_setting('plan_cache_mode')`).Scan(&seqscan, &mode); err != nil {
		t.Fatal(err)
	}
	if seqscan != "on" || mode != "auto" {
		t.Errorf("after the queue's transactions: enable_seqscan %s, plan_cache_mode %s; want on, auto", seqscan, mode)
	}
}

// A step over more partitions than a small append (64) records its events with
// COPY, on success and on a final failure, and leaves a consistent catalog.
func TestQueueLargeSteps(t *testing.T) {
	t.Parallel()
	const n = 100
	s := openStore(t)
	syncDefs(t, s, daily(t, "test/a", "2024-01-01"), daily(t, "test/b", "2024-01-01"))
	ctx := t.Context()
	partitions := make([]string, n)
	for i := range partitions {
		partitions[i] = dayKey(i)
	}
	r, err := s.CreateRun(ctx, store.NewRun{Trigger: store.TriggerManual, Selection: "test", Steps: []store.NewStep{
		{Asset: "test/a", Partitions: partitions, MaxAttempts: 1},
		{Asset: "test/b", Partitions: partitions, MaxAttempts: 1},
	}})
	if err != nil {
		t.Fatal(err)
	}
	cs, err := s.ClaimSteps(ctx, store.ClaimRequest{Worker: "w", Limit: 2, Lease: time.Hour})
	if err != nil || len(cs) != 2 {
		t.Fatalf("claim: %d steps, %v", len(cs), err)
	}
	ok, err := s.FinishStep(ctx, succeedResult(cs[0], "w"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ok.Events) != n || ok.Step.Status != store.StepSucceeded {
		t.Errorf("success: %d events, step %s; want %d, SUCCEEDED", len(ok.Events), ok.Step.Status, n)
	}
	failed, err := s.FinishStep(ctx, store.StepResult{StepID: cs[1].ID, Attempt: cs[1].Attempt, Worker: "w",
		Outcome: store.OutcomeFailed, Error: "boom"})
	if err != nil {
		t.Fatal(err)
	}
	if len(failed.Events) != n || failed.Step.Status != store.StepFailed || failed.RunStatus != store.RunFailed {
		t.Errorf("failure: %d events, step %s, run %s; want %d, FAILED, FAILED", len(failed.Events), failed.Step.Status, failed.RunStatus, n)
	}
	for _, e := range failed.Events {
		if e.Kind != store.Failure || e.Error != "boom" || e.RunID != r.ID || e.StepID != cs[1].ID {
			t.Fatalf("failure event %+v", e)
		}
	}
	for i, e := range append(ok.Events, failed.Events...) {
		if want := ok.Events[0].Seq + int64(i); e.Seq != want {
			t.Fatalf("event %d has seq %d, want %d: seqs are dense", i, e.Seq, want)
		}
	}
	if w, err := s.Watermark(ctx); err != nil || w != failed.Events[n-1].Seq {
		t.Errorf("watermark %d (%v), want the last event's seq %d", w, err, failed.Events[n-1].Seq)
	}
	verifyClean(t, s)
}

// Closing the store stops its listeners: their channels are closed and their
// connections released.
func TestQueueListenStopsWithTheStore(t *testing.T) {
	t.Parallel()
	s, err := Open(t.Context(), pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	wake, err := s.Listen(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	deadline := time.After(patience)
	for {
		select {
		case _, ok := <-wake:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatalf("the listener's channel is still open %s after Close", patience)
		}
	}
}
