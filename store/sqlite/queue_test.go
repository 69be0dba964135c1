package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/pressly/goose/v3"

	"github.com/freshetdev/freshet/assets"
	"github.com/freshetdev/freshet/store"
	"github.com/freshetdev/freshet/store/storetest"
)

func TestQueueConformance(t *testing.T) {
	storetest.RunQueue(t, func(t *testing.T) storetest.QueueStore {
		s, err := Open(context.Background(), filepath.Join(t.TempDir(), ".freshet", "freshet.db"))
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		t.Cleanup(func() {
			if err := s.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
		return s
	})
}

// fakeClock is a store clock tests move by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 4, 8, 9, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// queueStore opens a store on clock with a daily asset a/x, a/y built from it
// and an unpartitioned asset a/u.
func queueStore(t testing.TB, clock *fakeClock) (*Store, *assets.Partitions) {
	t.Helper()
	var opts []Option
	if clock != nil {
		opts = append(opts, WithClock(clock.Now))
	}
	s, _ := openTemp(t, opts...)
	p := dailyFrom(t, "2026-01-01")
	mustSync(t, s, defsOf(built("a/x", p), built("a/y", p, "a/x"), built("a/u", nil)))
	return s, p
}

func mustCreateRun(t testing.TB, s *Store, nr store.NewRun) *store.Run {
	t.Helper()
	if nr.Trigger == "" {
		nr.Trigger = store.TriggerManual
	}
	r, err := s.CreateRun(context.Background(), nr)
	if err != nil {
		t.Fatalf("CreateRun: %v", err)
	}
	return r
}

func mustClaim(t testing.TB, s *Store, worker string, limit int, lease time.Duration) []store.ClaimedStep {
	t.Helper()
	cs, err := s.ClaimSteps(context.Background(), store.ClaimRequest{Worker: worker, Limit: limit, Lease: lease})
	if err != nil {
		t.Fatalf("ClaimSteps: %v", err)
	}
	return cs
}

func mustFinish(t testing.TB, s *Store, res store.StepResult) *store.FinishResult {
	t.Helper()
	out, err := s.FinishStep(context.Background(), res)
	if err != nil {
		t.Fatalf("FinishStep(%s %s): %v", res.StepID, res.Outcome, err)
	}
	return out
}

// succeeded reports c succeeded, one materialization per partition.
func succeeded(c store.ClaimedStep) store.StepResult {
	res := store.StepResult{StepID: c.ID, Attempt: c.Attempt, Worker: c.LeaseOwner, Outcome: store.OutcomeSucceeded}
	for _, p := range c.Partitions {
		e := materialization(c.Asset, p, "v")
		e.InputSeq = c.InputSeq
		res.Events = append(res.Events, e)
	}
	return res
}

func mustStep(t testing.TB, s *Store, id uuid.UUID) *store.Step {
	t.Helper()
	st, err := s.GetStep(context.Background(), id)
	if err != nil {
		t.Fatalf("GetStep: %v", err)
	}
	return st
}

func mustRun(t testing.TB, s *Store, id uuid.UUID) *store.Run {
	t.Helper()
	r, err := s.GetRun(context.Background(), id)
	if err != nil {
		t.Fatalf("GetRun: %v", err)
	}
	return r
}

// TestQueueLifecycle drives a small DAG and a joining run through the queue.
func TestQueueLifecycle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, p := queueStore(t, nil)
	days := dayKeys(p, 0, 2)
	run := mustCreateRun(t, s, store.NewRun{Selection: "a/*", Steps: []store.NewStep{
		{Asset: "a/x", Partitions: days, MaxAttempts: 1},
		{Asset: "a/y", Partitions: days[:1], MaxAttempts: 1, Deps: []int{0}},
		{Asset: "a/y", Partitions: days[1:], MaxAttempts: 1, Deps: []int{0}},
		{Asset: "a/u", Partitions: []string{""}, MaxAttempts: 1, Deps: []int{1, 2}},
	}})
	if got := []store.StepStatus{run.Steps[0].Status, run.Steps[1].Status, run.Steps[3].Status}; !slices.Equal(got, []store.StepStatus{store.StepReady, store.StepPending, store.StepPending}) {
		t.Fatalf("statuses at creation %v", got)
	}
	steps, err := s.RunSteps(ctx, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	for i := range steps {
		if fmt.Sprint(steps[i]) != fmt.Sprint(run.Steps[i]) {
			t.Errorf("RunSteps[%d] = %+v\nCreateRun gave %+v", i, steps[i], run.Steps[i])
		}
	}

	// A second run over a/x's first day joins the first run's step.
	other := mustCreateRun(t, s, store.NewRun{Steps: []store.NewStep{{Asset: "a/x", Partitions: days[:1], MaxAttempts: 1}}})
	if st := other.Steps[0]; st.Status != store.StepPending || !slices.Equal(st.Joined, []uuid.UUID{run.Steps[0].ID}) {
		t.Fatalf("joining step %+v", st)
	}

	cs := mustClaim(t, s, "w1", 10, time.Minute)
	if len(cs) != 1 || cs[0].ID != run.Steps[0].ID || cs[0].Attempt != 1 {
		t.Fatalf("first claim %+v", cs)
	}
	fr := mustFinish(t, s, succeeded(cs[0]))
	if len(fr.Events) != 2 || fr.Events[0].RunID != run.ID || fr.Events[0].StepID != cs[0].ID || fr.RunStatus != store.RunRunning {
		t.Fatalf("finish %+v", fr)
	}
	wantReady := []uuid.UUID{run.Steps[1].ID, run.Steps[2].ID, other.Steps[0].ID}
	if !sameSet(fr.Ready, wantReady) {
		t.Fatalf("ready after first step %v, want %v", fr.Ready, wantReady)
	}
	// Then the rest, a/u last: it needs both a/y steps.
	var order []uuid.UUID
	for {
		cs := mustClaim(t, s, "w1", 10, time.Minute)
		if len(cs) == 0 {
			break
		}
		for _, c := range cs {
			order = append(order, c.ID)
			fr = mustFinish(t, s, succeeded(c))
		}
	}
	wantOrder := []uuid.UUID{run.Steps[1].ID, run.Steps[2].ID, other.Steps[0].ID, run.Steps[3].ID}
	if !slices.Equal(order, wantOrder) {
		t.Fatalf("claimed %v, want %v", order, wantOrder)
	}
	if fr.RunStatus != store.RunSucceeded {
		t.Fatalf("run ends %s", fr.RunStatus)
	}
	r := mustRun(t, s, run.ID)
	if r.Counts[store.StepSucceeded] != 4 || r.Partitions[store.StepSucceeded] != 5 || r.FinishedAt.IsZero() || r.StartedAt.IsZero() {
		t.Fatalf("run %+v", r)
	}
	if r := mustRun(t, s, other.ID); r.Status != store.RunSucceeded {
		t.Fatalf("other run %s", r.Status)
	}
	var inflight int
	if err := s.read.QueryRow(`SELECT count(*) FROM inflight_partitions`).Scan(&inflight); err != nil || inflight != 0 {
		t.Fatalf("%d in-flight rows left (%v)", inflight, err)
	}
	mustVerify(t, s)

	page, err := s.ListRuns(ctx, store.RunQuery{Limit: 1})
	if err != nil || len(page.Runs) != 1 || page.Runs[0].ID != other.ID || page.Next != other.ID {
		t.Fatalf("ListRuns page 1 = %+v, %v", page, err)
	}
	page, err = s.ListRuns(ctx, store.RunQuery{Before: page.Next, Asset: "a/u"})
	if err != nil || len(page.Runs) != 1 || page.Runs[0].ID != run.ID || page.Next != uuid.Nil || page.Runs[0].Counts[store.StepSucceeded] != 4 {
		t.Fatalf("ListRuns page 2 = %+v, %v", page, err)
	}
}

func sameSet(a, b []uuid.UUID) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	cmp := func(x, y uuid.UUID) int { return strings.Compare(x.String(), y.String()) }
	slices.SortFunc(a, cmp)
	slices.SortFunc(b, cmp)
	return slices.Equal(a, b)
}

// TestQueueLeaseExpiryWithClock moves the store's clock past leases: the step
// comes back, the late worker is refused, and the last attempt's expiry fails it.
func TestQueueLeaseExpiryWithClock(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := newFakeClock()
	s, p := queueStore(t, clock)
	run := mustCreateRun(t, s, store.NewRun{Steps: []store.NewStep{
		{Asset: "a/x", Partitions: dayKeys(p, 0, 2), MaxAttempts: 2},
		{Asset: "a/y", Partitions: dayKeys(p, 0, 1), MaxAttempts: 1, Deps: []int{0}},
	}})
	step := run.Steps[0].ID

	cs := mustClaim(t, s, "w1", 1, time.Minute)
	if len(cs) != 1 || !cs[0].LeaseExpiresAt.Equal(clock.Now().Add(time.Minute)) {
		t.Fatalf("claim %+v", cs)
	}
	clock.Advance(50 * time.Second)
	if exp, err := s.ExpireLeases(ctx); err != nil || len(exp) != 0 {
		t.Fatalf("ExpireLeases before the lease ends = %v, %v", exp, err)
	}
	// A heartbeat moves the lease on.
	states, err := s.Heartbeat(ctx, "w1", []store.Lease{{StepID: step, Attempt: 1}, {StepID: step, Attempt: 2}}, time.Minute)
	if err != nil || !states[0].Held || states[1].Held || states[0].CancelRequested {
		t.Fatalf("Heartbeat = %+v, %v", states, err)
	}
	clock.Advance(50 * time.Second)
	if exp, err := s.ExpireLeases(ctx); err != nil || len(exp) != 0 {
		t.Fatalf("ExpireLeases after a heartbeat = %v, %v", exp, err)
	}
	clock.Advance(11 * time.Second)
	exp, err := s.ExpireLeases(ctx)
	if err != nil || len(exp) != 1 || exp[0].StepID != step || exp[0].Status != store.StepReady || exp[0].Worker != "w1" || exp[0].Attempt != 1 {
		t.Fatalf("ExpireLeases = %+v, %v", exp, err)
	}
	if _, err := s.FinishStep(ctx, succeeded(cs[0])); !errors.Is(err, store.ErrLeaseLost) {
		t.Fatalf("late worker's FinishStep: %v, want ErrLeaseLost", err)
	}
	if st := mustStep(t, s, step); st.Status != store.StepReady || st.LeaseOwner != "" || !st.NotBefore.IsZero() {
		t.Fatalf("expired step %+v", st)
	}

	cs = mustClaim(t, s, "w2", 1, time.Minute)
	if len(cs) != 1 || cs[0].Attempt != 2 {
		t.Fatalf("second claim %+v", cs)
	}
	clock.Advance(2 * time.Minute)
	exp, err = s.ExpireLeases(ctx)
	if err != nil || len(exp) != 1 || exp[0].Status != store.StepFailed {
		t.Fatalf("ExpireLeases of the last attempt = %+v, %v", exp, err)
	}
	if st := mustStep(t, s, run.Steps[1].ID); st.Status != store.StepUpstreamFailed || !strings.Contains(st.Error, "a/x") {
		t.Fatalf("dependent %+v", st)
	}
	if r := mustRun(t, s, run.ID); r.Status != store.RunFailed || !r.FinishedAt.Equal(clock.Now()) {
		t.Fatalf("run %+v", r)
	}
	as, err := s.Attempts(ctx, step)
	if err != nil || len(as) != 2 || as[0].Status != store.AttemptLeaseExpired || as[1].Status != store.AttemptLeaseExpired ||
		as[1].Error != "lease of worker w2 expired" || !as[1].FinishedAt.Equal(clock.Now()) {
		t.Fatalf("Attempts = %+v, %v", as, err)
	}
	failures, err := s.Events(ctx, store.EventQuery{Kinds: []store.EventKind{store.Failure}})
	if err != nil || len(failures.Events) != 2 || failures.Events[0].StepID != step || failures.Events[0].Error != "lease of worker w2 expired" {
		t.Fatalf("failure events %+v, %v", failures, err)
	}
	mustVerify(t, s)
}

// TestQueueBackoffWithClock: a retried step is claimable only once the store's
// clock passes its backoff.
func TestQueueBackoffWithClock(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	s, p := queueStore(t, clock)
	run := mustCreateRun(t, s, store.NewRun{Steps: []store.NewStep{{Asset: "a/x", Partitions: dayKeys(p, 0, 1), MaxAttempts: 3}}})
	cs := mustClaim(t, s, "w1", 1, time.Minute)
	exit := 3
	fr := mustFinish(t, s, store.StepResult{StepID: cs[0].ID, Attempt: 1, Worker: "w1", Outcome: store.OutcomeFailed,
		ExitCode: &exit, Error: "boom", Retry: true, RetryAfter: 10 * time.Second})
	if fr.Step.Status != store.StepReady || !fr.Step.NotBefore.Equal(clock.Now().Add(10*time.Second)) || fr.Step.Error != "boom" {
		t.Fatalf("retried step %+v", fr.Step)
	}
	if got := mustClaim(t, s, "w1", 1, time.Minute); len(got) != 0 {
		t.Fatalf("claimed during backoff: %+v", got)
	}
	clock.Advance(9 * time.Second)
	if got := mustClaim(t, s, "w1", 1, time.Minute); len(got) != 0 {
		t.Fatalf("claimed 1s before the backoff ends: %+v", got)
	}
	clock.Advance(time.Second)
	cs = mustClaim(t, s, "w2", 1, time.Minute)
	if len(cs) != 1 || cs[0].Attempt != 2 || cs[0].ID != run.Steps[0].ID {
		t.Fatalf("claim after backoff %+v", cs)
	}
	as, err := s.Attempts(context.Background(), cs[0].ID)
	if err != nil || len(as) != 2 || as[0].Status != store.AttemptFailed || as[0].ExitCode == nil || *as[0].ExitCode != 3 || as[1].Worker != "w2" {
		t.Fatalf("Attempts = %+v, %v", as, err)
	}
}

// TestQueueListen: every listener of the store is woken, wake-ups coalesce and
// never block, and channels close with their context or the store.
func TestQueueListen(t *testing.T) {
	t.Parallel()
	s, p := queueStore(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	a, err := s.Listen(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Listen(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	pending := func(ch <-chan struct{}) int {
		n := 0
		for {
			select {
			case _, ok := <-ch:
				if !ok {
					return n
				}
				n++
			default:
				return n
			}
		}
	}
	if pending(a)+pending(b) != 0 {
		t.Fatal("a wake-up before anything happened")
	}
	// Three runs with ready steps: the wake-ups coalesce into one per listener.
	for i := range 3 {
		mustCreateRun(t, s, store.NewRun{Steps: []store.NewStep{{Asset: "a/x", Partitions: dayKeys(p, i, i+1), MaxAttempts: 1}}})
	}
	if na, nb := pending(a), pending(b); na != 1 || nb != 1 {
		t.Fatalf("wake-ups: %d and %d, want 1 each", na, nb)
	}
	// A run whose step waits wakes nobody.
	mustCreateRun(t, s, store.NewRun{Steps: []store.NewStep{{Asset: "a/x", Partitions: dayKeys(p, 0, 1), MaxAttempts: 1}}})
	if na := pending(a); na != 0 {
		t.Fatalf("a joining run woke a listener")
	}
	// A finish that makes the joiner ready wakes them.
	cs := mustClaim(t, s, "w", 1, time.Minute)
	mustFinish(t, s, succeeded(cs[0]))
	if na, nb := pending(a), pending(b); na != 1 || nb != 1 {
		t.Fatalf("wake-ups after a finish: %d and %d, want 1 each", na, nb)
	}
	cancel()
	for range a { // closed once the context ends
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for range b { // closed by Close
	}
}

// TestMigrationRebuildsAttempts migrates a database at version 2 that holds runs,
// steps and attempts: the attempts table is rebuilt with its rows intact.
func TestMigrationRebuildsAttempts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "v2.db")
	db, err := sql.Open("sqlite", dsn(path, pragmas(time.Second, false)))
	if err != nil {
		t.Fatal(err)
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, db, os.DirFS("../../migrations/sqlite"), goose.WithDisableGlobalRegistry(true))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(ctx, 2); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`INSERT INTO assets (id, key, code_version, deps, partitions_seq, is_source, definition, fingerprint,
			created_seq, updated_seq, created_at, updated_at) VALUES (1, 'a/x', '1', '', 0, 0, '{}', 'f', 1, 1, 0, 0)`,
		`INSERT INTO runs (id, status, trigger, selection, planned_seq, created_at)
			VALUES ('r1', 'RUNNING', 'manual', 'a/x', 0, 10)`,
		`INSERT INTO steps (id, run_id, asset_id, partition_first, partition_last, partition_count, ordinal, status,
			max_attempts, created_at) VALUES ('s1', 'r1', 1, '2026-01-01', '2026-01-01', 1, 0, 'RUNNING', 2, 10),
			('s2', 'r1', 1, '2026-01-02', '2026-01-02', 1, 1, 'PENDING', 1, 10)`,
		`INSERT INTO step_deps (step_id, upstream_step_id) VALUES ('s2', 's1')`,
		`INSERT INTO attempts (step_id, attempt, worker, started_at, finished_at, status, exit_code, error)
			VALUES ('s1', 1, 'w', 20, 30, 'FAILED', 1, 'boom'), ('s1', 2, 'w', 40, NULL, 'RUNNING', NULL, NULL)`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if _, err := db.ExecContext(ctx, `UPDATE attempts SET status = 'SKIPPED' WHERE attempt = 2`); err == nil {
		t.Fatal("version 2 accepted an attempt SKIPPED")
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			s.Close()
		}
	}()
	var got []string
	rows, err := s.read.QueryContext(ctx, `SELECT step_id, attempt, worker, started_at, coalesce(finished_at, -1), status,
		coalesce(exit_code, -1), coalesce(error, '-'), input_seq FROM attempts ORDER BY step_id, attempt`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var (
			step, worker, status, msg        string
			attempt, started, finished, exit int
			inputSeq                         int64
		)
		if err := rows.Scan(&step, &attempt, &worker, &started, &finished, &status, &exit, &msg, &inputSeq); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintln(step, attempt, worker, started, finished, status, exit, msg, inputSeq))
	}
	rows.Close()
	want := []string{"s1 1 w 20 30 FAILED 1 boom 0\n", "s1 2 w 40 -1 RUNNING -1 - 0\n"}
	if !slices.Equal(got, want) {
		t.Fatalf("attempts after the migration:\n%s\nwant\n%s", strings.Join(got, ""), strings.Join(want, ""))
	}
	// The new CHECK takes SKIPPED and still refuses nonsense; the primary key and
	// the foreign key to steps hold.
	if _, err := s.write.ExecContext(ctx, `UPDATE attempts SET status = 'SKIPPED' WHERE attempt = 2`); err != nil {
		t.Fatalf("SKIPPED after the migration: %v", err)
	}
	if _, err := s.write.ExecContext(ctx, `UPDATE attempts SET status = 'BOGUS' WHERE attempt = 2`); err == nil {
		t.Fatal("the rebuilt attempts table took status BOGUS")
	}
	if _, err := s.write.ExecContext(ctx, `INSERT INTO attempts (step_id, attempt, worker, started_at, status) VALUES ('s1', 1, 'w', 0, 'RUNNING')`); err == nil {
		t.Fatal("the rebuilt attempts table took a duplicate (step, attempt)")
	}
	if _, err := s.write.ExecContext(ctx, `INSERT INTO attempts (step_id, attempt, worker, started_at, status) VALUES ('nope', 1, 'w', 0, 'RUNNING')`); err == nil {
		t.Fatal("the rebuilt attempts table took an attempt of no step")
	}
	var check string
	if err := s.read.QueryRowContext(ctx, `PRAGMA integrity_check`).Scan(&check); err != nil || check != "ok" {
		t.Fatalf("integrity_check = %q, %v", check, err)
	}
	var keys, kind string
	if err := s.read.QueryRowContext(ctx, `SELECT s.partition_keys, d.kind FROM steps s JOIN step_deps d ON d.step_id = s.id`).Scan(&keys, &kind); err != nil ||
		keys != `["2026-01-02"]` || kind != "run" {
		t.Fatalf("migrated step: keys %s, dep kind %s (%v)", keys, kind, err)
	}
	closed = true
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Down to version 2 and up again: the skipped attempt goes back as a success.
	db, err = sql.Open("sqlite", dsn(path, pragmas(time.Second, false)))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if p, err = goose.NewProvider(goose.DialectSQLite3, db, os.DirFS("../../migrations/sqlite"), goose.WithDisableGlobalRegistry(true)); err != nil {
		t.Fatal(err)
	}
	if _, err := p.DownTo(ctx, 2); err != nil {
		t.Fatalf("migrate down to 2: %v", err)
	}
	var status string
	if err := db.QueryRowContext(ctx, `SELECT status FROM attempts WHERE attempt = 2`).Scan(&status); err != nil || status != "SUCCEEDED" {
		t.Fatalf("attempt 2 after migrating down: %q, %v", status, err)
	}
	if _, err := db.ExecContext(ctx, `SELECT input_seq FROM attempts`); err == nil {
		t.Fatal("attempts.input_seq survived migrating down")
	}
	if _, err := p.Up(ctx); err != nil {
		t.Fatalf("migrate up again: %v", err)
	}
}

// TestQueueCapsUnderConcurrentClaims: claimers racing on one store never pass an
// asset's cap or a run's max parallel.
func TestQueueCapsUnderConcurrentClaims(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, p := queueStore(t, nil)
	var steps []store.NewStep
	for i := range 40 {
		steps = append(steps, store.NewStep{Asset: "a/x", Partitions: dayKeys(p, i, i+1), MaxAttempts: 1})
		steps = append(steps, store.NewStep{Asset: "a/y", Partitions: dayKeys(p, i, i+1), MaxAttempts: 1})
	}
	run := mustCreateRun(t, s, store.NewRun{MaxParallel: 5, Steps: steps})
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		problems []string
	)
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			worker := fmt.Sprintf("w%d", w)
			req := store.ClaimRequest{Worker: worker, Limit: 2, Lease: time.Minute, Concurrency: map[assets.Key]int{"a/x": 2}}
			for {
				cs, err := s.ClaimSteps(ctx, req)
				if err != nil {
					mu.Lock()
					problems = append(problems, err.Error())
					mu.Unlock()
					return
				}
				var x, all int
				if err := s.read.QueryRowContext(ctx, `SELECT count(*) FILTER (WHERE asset_id = (SELECT id FROM assets WHERE key = 'a/x')),
					count(*) FROM steps WHERE status = 'RUNNING'`).Scan(&x, &all); err != nil {
					panic(err)
				}
				if x > 2 || all > 5 {
					mu.Lock()
					problems = append(problems, fmt.Sprintf("%d steps of a/x and %d in all running", x, all))
					mu.Unlock()
				}
				if len(cs) == 0 {
					r, err := s.GetRun(ctx, run.ID)
					if err != nil || r.Status.Done() {
						return
					}
					time.Sleep(time.Millisecond)
					continue
				}
				for _, c := range cs {
					if _, err := s.FinishStep(ctx, succeeded(c)); err != nil {
						mu.Lock()
						problems = append(problems, err.Error())
						mu.Unlock()
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	for _, p := range problems {
		t.Error(p)
	}
	if r := mustRun(t, s, run.ID); r.Status != store.RunSucceeded || r.Counts[store.StepSucceeded] != 80 {
		t.Fatalf("run %+v", r)
	}
}

// TestQueueLogCap checks numbering and the cap on a SQLite log directly.
func TestQueueLogCap(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, p := queueStore(t, nil)
	run := mustCreateRun(t, s, store.NewRun{Steps: []store.NewStep{{Asset: "a/x", Partitions: dayKeys(p, 0, 1), MaxAttempts: 1}}})
	id := run.Steps[0].ID
	line := func(text string) store.LogLine { return store.LogLine{Attempt: 1, Stream: store.Stdout, Text: text} }
	if err := s.AppendStepLog(ctx, id, []store.LogLine{line("aaaa"), line("bbbb"), line("cccc")}, 10); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendStepLog(ctx, id, []store.LogLine{line("dd"), line("bad\xff\x00")}, 10); err != nil {
		t.Fatal(err)
	}
	page, err := s.StepLog(ctx, id, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range page.Lines {
		got = append(got, fmt.Sprintf("%d:%s", l.No, l.Text))
	}
	// The first append keeps bbbb and cccc (8 bytes); the second cannot keep dd
	// beside its last line (9 bytes), nor the older two.
	want := []string{"5:bad\uFFFD\uFFFD"}
	if !slices.Equal(got, want) || page.Next != 5 || page.KeptBytes != 9 {
		t.Fatalf("log %q (next %d, kept %d bytes), want %q, next 5, 9 bytes", got, page.Next, page.KeptBytes, want)
	}
	if page.DroppedLines != 4 || page.DroppedBytes != 14 {
		t.Fatalf("dropped %d lines, %d bytes; want 4, 14", page.DroppedLines, page.DroppedBytes)
	}
	// Numbering goes on after the cut.
	if err := s.AppendStepLog(ctx, id, []store.LogLine{line("e")}, 10); err != nil {
		t.Fatal(err)
	}
	if page, err := s.StepLog(ctx, id, 5, 0); err != nil || len(page.Lines) != 1 || page.Lines[0].No != 6 || page.Next != 6 {
		t.Fatalf("StepLog after 5 = %+v, %v", page, err)
	}
}
