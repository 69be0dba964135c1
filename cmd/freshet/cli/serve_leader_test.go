package cli

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/freshetdev/freshet/store"
	"github.com/freshetdev/freshet/store/postgres"
	"github.com/freshetdev/freshet/store/postgres/pgtest"
)

// scheduleDefs: a source whose observations make its copy stale, and a schedule
// ticking every second that materializes what is stale.
const scheduleDefs = `assets:
  - key: ext/feed
  - key: ext/copy
    deps: [ext/feed]
    compute: {command: ["true"]}
schedules:
  - name: every_second
    cron: "@every 1s"
    select: ext/copy
`

// Two serve processes on one PostgreSQL catalog with a schedule ticking every
// second: one leads; each tick launches at most one run (as many schedule runs
// as ticks that launched one); killing the leader with SIGKILL hands the
// schedule to the other within the lease, and ticks go on.
func TestServeSchedulerLeaderTakeover(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "freshet.yaml"), scheduleDefs)
	url := pgtest.URL(t)
	const lease = 2 * time.Second
	args := []string{"--leader-lease", lease.String(), "--schedule-poll", "100ms", "--drain", "0s"}
	a := startServe(t, dir, url, args...)
	b := startServe(t, dir, url, args...)
	var feedVia atomic.Pointer[apiServer]
	feedVia.Store(a)

	st, err := postgres.Open(context.Background(), url, postgres.WithoutMigrations())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()

	// Keep the copy stale: a new observation of the feed every 300ms.
	stop := make(chan struct{})
	var feeding sync.WaitGroup
	feeding.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(300 * time.Millisecond):
			}
			// Not t.Fatal here (another goroutine), and a post to the killed
			// process may fail: the next one goes to the survivor.
			body := fmt.Sprintf(`{"query":"mutation { reportObservation(input: {asset: \"ext/feed\", dataVersion: \"%d\"}) { seq } }"}`, i)
			if resp, err := http.Post(feedVia.Load().url+"/graphql", "application/json", strings.NewReader(body)); err == nil {
				resp.Body.Close()
			}
		}
	})
	defer func() { close(stop); feeding.Wait() }()

	leaseOf := func() store.LeaseInfo {
		l, err := st.GetLease(ctx, "leader")
		if err != nil {
			t.Fatalf("leader lease: %v", err)
		}
		return *l
	}
	waitFor := func(what string, within time.Duration, ok func() bool) {
		deadline := time.Now().Add(within)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within %s", what, within)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	launched := func() []store.Tick {
		ticks, err := st.Ticks(ctx, "every_second", 1000)
		if err != nil {
			t.Fatal(err)
		}
		var out []store.Tick
		for _, tk := range ticks {
			if tk.Status == store.TickLaunched {
				out = append(out, tk)
			}
		}
		return out
	}
	waitFor("a leader", 10*time.Second, func() bool { l, err := st.GetLease(ctx, "leader"); return err == nil && l.Held })
	waitFor("4 ticks that launched a run", 30*time.Second, func() bool { return len(launched()) >= 4 })

	// The holder is host:pid:random (the worker name of the process).
	leader := leaseOf().Holder
	victim, survivor := a, b
	if strings.Contains(leader, fmt.Sprintf(":%d:", b.cmd.Process.Pid)) {
		victim, survivor = b, a
	} else if !strings.Contains(leader, fmt.Sprintf(":%d:", a.cmd.Process.Pid)) {
		t.Fatalf("the lease names %q: neither process", leader)
	}
	feedVia.Store(survivor)
	before := len(launched())
	killed := time.Now()
	if err := victim.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = victim.cmd.Wait()
	waitFor("the other process to lead", lease+5*time.Second, func() bool {
		l := leaseOf()
		return l.Held && l.Holder != leader
	})
	if took := time.Since(killed); took > lease+2*time.Second {
		t.Errorf("takeover took %s; the lease is %s", took.Round(time.Millisecond), lease)
	}
	waitFor("ticks after the takeover", 20*time.Second, func() bool { return len(launched()) >= before+3 })

	// As many schedule runs as launched ticks, each naming the run it launched:
	// no tick fired twice.
	ticks := launched()
	runs, err := st.ListRuns(ctx, store.RunQuery{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	scheduled := map[string]bool{}
	for _, r := range runs.Runs {
		if r.Trigger == store.TriggerSchedule && r.ScheduleName == "every_second" {
			scheduled[r.ID.String()] = true
		}
	}
	for _, tk := range ticks {
		if !scheduled[tk.RunID.String()] {
			t.Errorf("tick %s launched run %s, which is not a schedule run", tk.At, tk.RunID)
		}
		delete(scheduled, tk.RunID.String())
	}
	if len(scheduled) > 0 {
		t.Errorf("%d schedule runs no tick records: a tick fired twice", len(scheduled))
	}
}

// Ticks missed while no process served are evaluated once on start: the newest
// fires, the ones before it are passed over.
func TestServeCatchesUpMissedTicksOnce(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "freshet.yaml"), `assets:
  - key: ext/copy
    compute: {command: ["true"]}
schedules:
  - name: every_minute
    cron: "* * * * *"
    select: ext/copy
`)
	db := tempDB(t)
	if _, stderr, code := run(t, "migrate", "--db", db); code != 0 {
		t.Fatalf("migrate: %s", stderr)
	}
	st, err := openStore(context.Background(), db, dir, false)
	if err != nil {
		t.Fatal(err)
	}
	q := st.(store.Coordination)
	last := time.Now().UTC().Truncate(time.Minute).Add(-5 * time.Minute) // 5 ticks missed since
	if ok, err := q.RecordTick(context.Background(), store.Tick{Schedule: "every_minute", At: last, Status: store.TickSkipped, Reason: "before the test"}); err != nil || !ok {
		t.Fatalf("record the last tick: %v %v", ok, err)
	}
	st.Close()

	due := time.Now().UTC().Truncate(time.Minute) // the newest tick due when serve starts
	startServe(t, dir, db, "--schedule-poll", "100ms")
	st, err = openStore(context.Background(), db, dir, false)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	q = st.(store.Coordination)
	var ticks []store.Tick
	waitUntil(t, "the catch-up tick", 20*time.Second, func() bool {
		if ticks, err = q.Ticks(context.Background(), "every_minute", 100); err != nil {
			t.Fatal(err)
		}
		return len(ticks) >= 2 && ticks[0].Status != store.TickStarted
	})
	time.Sleep(500 * time.Millisecond) // five more checks
	if ticks, err = q.Ticks(context.Background(), "every_minute", 100); err != nil {
		t.Fatal(err)
	}
	var fired []string
	for _, tk := range ticks {
		if tk.At.After(last) {
			fired = append(fired, tk.At.Format(time.TimeOnly))
			if tk.At.Before(due) {
				t.Errorf("tick %s fired: one of the ticks missed before %s", tk.At.Format(time.TimeOnly), due.Format(time.TimeOnly))
			}
		}
	}
	// The first to fire is the newest due at start: due, or the minute after when
	// serve started across a minute boundary.
	if n := len(fired); n == 0 || fired[n-1] != due.Format(time.TimeOnly) && fired[n-1] != due.Add(time.Minute).Format(time.TimeOnly) {
		t.Errorf("ticks fired after %s: %v; want %s first (the newest due), none of the 4 before it", last.Format(time.TimeOnly), fired, due.Format(time.TimeOnly))
	}
	if ticks[0].Status != store.TickLaunched || ticks[0].RunID == uuid.Nil {
		t.Errorf("the catch-up tick: %+v; want a run launched", ticks[0])
	}
}
