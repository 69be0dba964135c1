package postgres

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	"github.com/freshetdev/freshet/assets"
	"github.com/freshetdev/freshet/store"
	"github.com/freshetdev/freshet/store/postgres/pgtest"
)

// commitCounter is a pgx tracer that counts the transactions a store commits:
// the batches and statements that end in a COMMIT.
type commitCounter struct{ n atomic.Int64 }

func (c *commitCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	if strings.EqualFold(strings.TrimSpace(d.SQL), "commit") {
		c.n.Add(1)
	}
	return ctx
}

func (c *commitCounter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func (c *commitCounter) TraceBatchStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceBatchStartData) context.Context {
	for _, q := range d.Batch.QueuedQueries {
		if strings.EqualFold(strings.TrimSpace(q.SQL), "commit") {
			c.n.Add(1)
		}
	}
	return ctx
}

func (c *commitCounter) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}

func (c *commitCounter) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData) {}

// FinishSteps records successes, fresh skips and retries of several runs, with
// their log lines and the claim for next, in one transaction; a final failure
// costs one of its own, and a refused report none.
func TestFinishStepsTransactions(t *testing.T) {
	t.Parallel()
	counter := &commitCounter{}
	s := openStore(t, WithPoolConfig(func(c *pgxpool.Config) { c.ConnConfig.Tracer = counter }))
	syncDefs(t, s, daily(t, "test/a", "2024-01-01"), daily(t, "test/b", "2024-01-01"))
	ctx := t.Context()
	for _, asset := range []assets.Key{"test/a", "test/b"} {
		nr := independentRun(asset, 12)
		for i := range nr.Steps {
			nr.Steps[i].MaxAttempts = 2
		}
		if _, err := s.CreateRun(ctx, nr); err != nil {
			t.Fatal(err)
		}
	}
	req := store.ClaimRequest{Worker: "w", Limit: 20, Lease: time.Hour}
	cs, err := s.ClaimSteps(ctx, req)
	if err != nil || len(cs) != 20 {
		t.Fatalf("claim: %d steps, %v", len(cs), err)
	}
	report := func(c store.ClaimedStep, outcome store.StepOutcome) store.StepResult {
		res := store.StepResult{StepID: c.ID, Attempt: c.Attempt, Worker: "w", Outcome: outcome,
			Log: []store.LogLine{{Attempt: c.Attempt, Stream: store.System, Text: "$ build"}}, LogCap: 1 << 20}
		if outcome == store.OutcomeSucceeded {
			res = succeedResult(c, "w")
			res.Log, res.LogCap = []store.LogLine{{Attempt: c.Attempt, Stream: store.Stdout, Text: "done"}}, 1<<20
		}
		return res
	}

	// Successes of both runs, a skip, a retry and a report of a worker that lost
	// its lease: one transaction, with the claim.
	var results []store.StepResult
	for _, c := range cs[:10] {
		results = append(results, report(c, store.OutcomeSucceeded))
	}
	results = append(results, report(cs[10], store.OutcomeSkippedFresh))
	retry := report(cs[11], store.OutcomeFailed)
	retry.Retry = true
	results = append(results, retry)
	late := report(cs[12], store.OutcomeSucceeded)
	late.Worker = "w-late"
	results = append(results, late)
	before := counter.n.Load()
	next := store.ClaimRequest{Worker: "w", Limit: 3, Lease: time.Hour}
	fs, err := s.FinishSteps(ctx, results, &next)
	if err != nil {
		t.Fatal(err)
	}
	if n := counter.n.Load() - before; n != 1 {
		t.Errorf("FinishSteps of %d successes, a skip, a retry and a refused report committed %d transactions, want 1", 10, n)
	}
	for i, err := range fs.Errors {
		if (i == len(results)-1) != (err != nil) {
			t.Errorf("report %d: error %v", i, err)
		}
	}
	if len(fs.Claimed) != 3 {
		t.Errorf("FinishSteps claimed %d steps for next, want 3", len(fs.Claimed))
	}
	if p, err := s.StepLog(ctx, cs[0].ID, 0, 0); err != nil || len(p.Lines) != 1 || p.Lines[0].Text != "done" {
		t.Errorf("log of a success: %+v, %v; want its line", p, err)
	}

	// A final failure among successes: its own transaction, then the batch.
	results = []store.StepResult{report(cs[13], store.OutcomeSucceeded), report(cs[14], store.OutcomeFailed),
		report(cs[15], store.OutcomeSucceeded)}
	before = counter.n.Load()
	if fs, err = s.FinishSteps(ctx, results, nil); err != nil {
		t.Fatal(err)
	}
	for i, err := range fs.Errors {
		if err != nil {
			t.Errorf("report %d: %v", i, err)
		}
	}
	if n := counter.n.Load() - before; n != 3 {
		t.Errorf("FinishSteps of a success, a final failure and a success committed %d transactions, want 3 (in order: one each)", n)
	}
	if fs.Results[1].Step.Status != store.StepFailed {
		t.Errorf("the final failure: %s", fs.Results[1].Step.Status)
	}
	verifyClean(t, s)
}

// Workers of several processes (stores) report in batches, with next, over runs
// whose steps overlap (they join each other's steps) and depend on each other;
// some repeat a call as after an error whose outcome they could not know. No
// call fails (no deadlock is left unresolved), no step is recorded twice, every
// run succeeds with every partition materialized once per run.
func TestFinishStepsConcurrentBatches(t *testing.T) {
	t.Parallel()
	const runs, workers = 16, 6
	stores := openStores(t, 3)
	syncDefs(t, stores[0], daily(t, "test/raw", "2024-01-01"), daily(t, "test/clean", "2024-01-01", "test/raw"))
	ctx := t.Context()
	rng := rand.New(rand.NewPCG(1, 2))
	var created []*store.Run
	for range runs {
		lo := rng.IntN(10)
		hi := lo + 2 + rng.IntN(6)
		nr := store.NewRun{Trigger: store.TriggerManual, Selection: "test"}
		for i := lo; i < hi; i++ {
			nr.Steps = append(nr.Steps, store.NewStep{Asset: "test/raw", Partitions: []string{dayKey(i)}, MaxAttempts: 1})
		}
		for i := lo; i < hi; i += 2 {
			j := min(hi, i+2)
			st := store.NewStep{Asset: "test/clean", MaxAttempts: 1}
			for k := i; k < j; k++ {
				st.Partitions = append(st.Partitions, dayKey(k))
				st.Deps = append(st.Deps, k-lo)
			}
			nr.Steps = append(nr.Steps, st)
		}
		r, err := stores[len(created)%len(stores)].CreateRun(ctx, nr)
		if err != nil {
			t.Fatal(err)
		}
		created = append(created, r)
	}

	deadline := time.Now().Add(2 * patience)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			s := stores[w%len(stores)]
			worker := fmt.Sprintf("w%d", w)
			req := store.ClaimRequest{Worker: worker, Limit: 1 + w%4, Lease: time.Hour}
			var mine []store.ClaimedStep
			idle := 0
			for !t.Failed() {
				if time.Now().After(deadline) {
					t.Errorf("%s: the runs did not end after %s", worker, 2*patience)
					return
				}
				if len(mine) == 0 {
					cs, err := s.ClaimSteps(ctx, req)
					if err != nil {
						t.Errorf("%s: ClaimSteps: %v", worker, err)
						return
					}
					if mine = cs; len(mine) == 0 {
						if allDone(t, s, created) {
							return
						}
						if idle++; idle%100 == 0 {
							t.Logf("%s: idle", worker)
						}
						time.Sleep(2 * time.Millisecond)
						continue
					}
				}
				idle = 0
				results := make([]store.StepResult, len(mine))
				for i, c := range mine {
					results[i] = succeedResult(c, worker)
				}
				fs, err := s.FinishSteps(ctx, results, &req)
				if err != nil {
					t.Errorf("%s: FinishSteps: %v", worker, err)
					return
				}
				for i, err := range fs.Errors {
					if err != nil {
						t.Errorf("%s: report %d: %v", worker, i, err)
					}
				}
				if w%2 == 0 {
					// The call is repeated: every report is refused, nothing claimed twice.
					again, err := s.FinishSteps(ctx, results, nil)
					if err != nil {
						t.Errorf("%s: FinishSteps repeated: %v", worker, err)
						return
					}
					for i, err := range again.Errors {
						if !errors.Is(err, store.ErrLeaseLost) {
							t.Errorf("%s: repeated report %d: %v, want ErrLeaseLost", worker, i, err)
						}
					}
				}
				mine = fs.Claimed
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	for _, r := range created {
		got, err := stores[0].GetRun(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != store.RunSucceeded {
			t.Errorf("run %s: %s with counts %v, want SUCCEEDED", r.ID, got.Status, got.Counts)
		}
	}
	var twice, attempts, missing int
	err := stores[0].pool.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM (SELECT 1 FROM events WHERE kind = 'materialization'
		                       GROUP BY run_id, asset_id, partition_key HAVING count(*) > 1) x),
		(SELECT count(*) FROM attempts WHERE attempt > 1 OR status <> 'SUCCEEDED'),
		(SELECT count(*) FROM steps s WHERE EXISTS (SELECT 1 FROM unnest(s.partition_keys) k
		     WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.step_id = s.id AND e.partition_key = k
		                       AND e.kind = 'materialization')))`).Scan(&twice, &attempts, &missing)
	if err != nil {
		t.Fatal(err)
	}
	if twice != 0 || attempts != 0 || missing != 0 {
		t.Errorf("%d (run, asset, partition) recorded twice, %d attempts other than one success, %d steps missing a materialization; want none",
			twice, attempts, missing)
	}
	verifyClean(t, stores[0])
}

// allDone reports whether every run ended.
func allDone(t *testing.T, s *Store, runs []*store.Run) bool {
	for _, r := range runs {
		got, err := s.GetRun(t.Context(), r.ID)
		if err != nil {
			t.Errorf("GetRun: %v", err)
			return true
		}
		if !got.Status.Done() {
			return false
		}
	}
	return true
}

// Migration 00004 goes down to the claim of 00003, exactly as 00003 created it,
// and up again; the store works on the schema after.
func TestMigrationClaimDownAndUp(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	url := pgtest.URL(t)
	s := must(Open(ctx, url))(t)
	defer s.Close()
	ref := must(Open(ctx, pgtest.URL(t), WithoutMigrations()))(t)
	defer ref.Close()

	provider := func(st *Store) *goose.Provider { return migrationProvider(t, st) }
	claimDef := func(st *Store) string { return claimFunctionDef(t, st) }
	if _, err := provider(ref).UpTo(ctx, 3); err != nil {
		t.Fatalf("up to 3: %v", err)
	}
	p := provider(s)
	up := claimDef(s)
	if !strings.Contains(up, "materialized boolean") {
		t.Errorf("after 00004 up, the claim returns no materialized column:\n%s", up)
	}
	if _, err := p.DownTo(ctx, 3); err != nil {
		t.Fatalf("down to 3: %v", err)
	}
	if got, want := claimDef(s), claimDef(ref); got != want {
		t.Errorf("after 00004 down, the claim is not 00003's:\n got %s\nwant %s", got, want)
	}
	if _, err := p.Up(ctx); err != nil {
		t.Fatalf("up again: %v", err)
	}
	if got := claimDef(s); got != up {
		t.Errorf("after 00004 up again, the claim differs from the first up:\n got %s\nwant %s", got, up)
	}

	syncDefs(t, s, daily(t, "test/a", "2024-01-01"))
	appendEvents(t, s, materialization("test/a", 1, "v1"))
	if _, err := s.CreateRun(ctx, independentRun("test/a", 2)); err != nil {
		t.Fatal(err)
	}
	cs, err := s.ClaimSteps(ctx, store.ClaimRequest{Worker: "w", Limit: 2, Lease: time.Hour})
	if err != nil || len(cs) != 2 {
		t.Fatalf("claim after down and up: %d steps, %v", len(cs), err)
	}
	for _, c := range cs {
		if want := c.Partitions[0] == dayKey(1); c.Materialized != want {
			t.Errorf("claimed step over %s: Materialized %v, want %v", c.Partitions[0], c.Materialized, want)
		}
	}
}

// migrationProvider is a goose provider of the PostgreSQL migrations on st.
func migrationProvider(t *testing.T, st *Store) *goose.Provider {
	t.Helper()
	db := stdlib.OpenDBFromPool(st.pool)
	t.Cleanup(func() { db.Close() })
	p, err := goose.NewProvider(goose.DialectPostgres, db, os.DirFS("../../migrations/postgres"),
		goose.WithDisableGlobalRegistry(true))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// claimFunctionDef returns the claim function as st's schema defines it, without
// the schema's name.
func claimFunctionDef(t *testing.T, st *Store) string {
	t.Helper()
	var def, schema string
	err := st.pool.QueryRow(t.Context(), `SELECT pg_get_functiondef(p.oid), n.nspname FROM pg_proc p
		JOIN pg_namespace n ON n.oid = p.pronamespace
		WHERE p.proname = 'freshet_claim_steps' AND n.nspname = current_schema()`).Scan(&def, &schema)
	if err != nil {
		t.Fatal(err)
	}
	return strings.ReplaceAll(def, schema+".", "")
}

// TestMigrationClaimProbesByKeyDownAndUp checks that 00005 goes down to 00004's
// claim and up again to its own, which probes partition state by key.
func TestMigrationClaimProbesByKeyDownAndUp(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := must(Open(ctx, pgtest.URL(t)))(t)
	defer s.Close()
	ref := must(Open(ctx, pgtest.URL(t), WithoutMigrations()))(t)
	defer ref.Close()
	if _, err := migrationProvider(t, ref).UpTo(ctx, 4); err != nil {
		t.Fatalf("up to 4: %v", err)
	}
	up := claimFunctionDef(t, s)
	if !strings.Contains(up, "unnest(c.partition_keys) AS k(key)") || strings.Contains(up, "= ANY (c.partition_keys)") {
		t.Errorf("after 00005 up, the claim does not probe partition state by key:\n%s", up)
	}
	p := migrationProvider(t, s)
	if _, err := p.DownTo(ctx, 4); err != nil {
		t.Fatalf("down to 4: %v", err)
	}
	if got, want := claimFunctionDef(t, s), claimFunctionDef(t, ref); got != want {
		t.Errorf("after 00005 down, the claim is not 00004's:\n got %s\nwant %s", got, want)
	}
	if _, err := p.Up(ctx); err != nil {
		t.Fatalf("up again: %v", err)
	}
	if got := claimFunctionDef(t, s); got != up {
		t.Errorf("after 00005 up again, the claim differs from the first up:\n got %s\nwant %s", got, up)
	}
}

// statementCounter is a pgx tracer that counts the statements run alone (not in
// a batch) whose text starts with prefix.
type statementCounter struct {
	prefix string
	n      atomic.Int64
}

func (c *statementCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	if strings.HasPrefix(strings.TrimSpace(d.SQL), c.prefix) {
		c.n.Add(1)
	}
	return ctx
}

func (c *statementCounter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// A process's first materialization of an asset reads the asset's code versions
// and dep sets with the catalog clock, in the report's first round trip, not in a
// round trip of its own; the ids it assigns follow those another process
// assigned.
func TestFirstMaterializationInternsWithoutARoundTrip(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	url := pgtest.URL(t)
	other := must(Open(ctx, url))(t)
	defer other.Close()
	counter := &statementCounter{prefix: "SELECT asset_id, id, code_version"}
	s := must(Open(ctx, url, WithPoolConfig(func(c *pgxpool.Config) { c.ConnConfig.Tracer = counter })))(t)
	defer s.Close()
	syncDefs(t, other, daily(t, "test/a", "2024-01-01"), daily(t, "test/b", "2024-01-01"))
	first := materialization("test/a", 0, "v0")
	first.Code = &store.Code{Version: "old"}
	appendEvents(t, other, first) // test/a: code version "old" is id 0

	if _, err := s.CreateRun(ctx, independentRun("test/a", 2)); err != nil {
		t.Fatal(err)
	}
	cs, err := s.ClaimSteps(ctx, store.ClaimRequest{Worker: "w", Limit: 2, Lease: time.Hour})
	if err != nil || len(cs) != 2 {
		t.Fatalf("claim: %d steps, %v", len(cs), err)
	}
	if _, err := s.FinishStep(ctx, succeedResult(cs[0], "w")); err != nil {
		t.Fatal(err)
	}
	appendEvents(t, s, materialization("test/b", 3, "v3"))
	if n := counter.n.Load(); n != 0 {
		t.Errorf("the first materializations of two assets in a process read code versions in %d round trips of their own, want 0", n)
	}
	snap := must(s.ReadState(ctx, []assets.Key{"test/a"}))(t)
	if a := snap.Assets["test/a"]; fmt.Sprint(a.CodeVersions) != "[old 1]" {
		t.Errorf("test/a: code versions %q; want [old 1], the new one numbered after the other process's", a.CodeVersions)
	}
	verifyClean(t, s)
}
