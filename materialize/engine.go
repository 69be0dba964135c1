package materialize

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/freshetdev/freshet/assets"
	"github.com/freshetdev/freshet/graph"
	"github.com/freshetdev/freshet/lineage"
	"github.com/freshetdev/freshet/store"
)

// ErrNothingToDo is returned by Launch when the plan has no step: every target is
// fresh (or blocked, which the plan says).
var ErrNothingToDo = errors.New("nothing to materialize: every selected partition is fresh or blocked")

// Project is one load of a definitions folder: the definitions, their graph, and
// what syncing them into the catalog changed. It is never modified; Reload
// publishes a new one.
type Project struct {
	Path     string
	Defs     *assets.Definitions
	Graph    *graph.Graph
	LoadedAt time.Time
	Sync     *store.SyncResult
}

// Engine serves one project to a long-running process (freshet serve): it keeps
// the definitions, which it loads again on request, and the catalog state, kept
// current, from which it plans and launches runs and backfills. What it launches
// is recorded in the store; workers run it.
type Engine struct {
	// Metrics counts plans and launches (nil: not counted). Set it before
	// serving.
	Metrics *Metrics

	store QueueStore
	now   func() time.Time

	mu       sync.Mutex // serializes Reload
	project  atomic.Pointer[Project]
	catalog  *Catalog
	onReload []func(*Project)

	statusMu  sync.Mutex
	status    *statusCache
	refreshes sharedRefresh
}

// statusCache is the statuses plan of one state, graph and minute.
type statusCache struct {
	g      *graph.Graph
	st     *State
	minute time.Time
	plan   *Plan

	summaryOnce sync.Once
	summaries   []AssetSummary
}

// OpenEngine serves the definitions defs (with their graph g), loaded from
// path, which Reload reads again: it syncs them into s and reads the catalog
// state. now is the clock plans are computed at (nil: time.Now).
func OpenEngine(ctx context.Context, s QueueStore, path string, defs *assets.Definitions, g *graph.Graph, now func() time.Time) (*Engine, error) {
	if now == nil {
		now = time.Now
	}
	e := &Engine{store: s, now: now}
	p, err := e.sync(ctx, path, defs, g)
	if err != nil {
		return nil, err
	}
	if e.catalog, err = LoadCatalog(ctx, s, p.Graph); err != nil {
		return nil, err
	}
	e.project.Store(p)
	return e, nil
}

// load reads and syncs the definitions at path.
func (e *Engine) load(ctx context.Context, path string) (*Project, error) {
	defs, err := assets.Load(path)
	if err != nil {
		return nil, err
	}
	g, err := graph.New(defs)
	if err != nil {
		return nil, err
	}
	return e.sync(ctx, path, defs, g)
}

// sync records loaded definitions in the catalog.
func (e *Engine) sync(ctx context.Context, path string, defs *assets.Definitions, g *graph.Graph) (*Project, error) {
	res, err := e.store.SyncDefinitions(ctx, defs)
	if err != nil {
		return nil, fmt.Errorf("sync definitions into the catalog: %w", err)
	}
	return &Project{Path: path, Defs: defs, Graph: g, LoadedAt: e.now(), Sync: res}, nil
}

// Store returns the store the engine records in.
func (e *Engine) Store() QueueStore { return e.store }

// Now returns the engine's clock reading.
func (e *Engine) Now() time.Time { return e.now() }

// Project returns the definitions being served.
func (e *Engine) Project() *Project { return e.project.Load() }

// OnReload registers fn to be called with every project Reload publishes (a
// worker switches to the new graph, say). Register before serving.
func (e *Engine) OnReload(fn func(*Project)) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.onReload = append(e.onReload, fn)
}

// Reload loads the definitions again from the same path, syncs them and switches
// the catalog to them. Definitions that do not load leave the served ones in
// place: the error says what is wrong, where.
func (e *Engine) Reload(ctx context.Context) (*Project, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	p, err := e.load(ctx, e.project.Load().Path)
	if err != nil {
		return nil, fmt.Errorf("reload definitions: %w", err)
	}
	if err := e.catalog.SetGraph(ctx, p.Graph); err != nil {
		return nil, fmt.Errorf("reload definitions: %w", err)
	}
	e.project.Store(p)
	for _, fn := range e.onReload {
		fn(p)
	}
	return p, nil
}

// State returns the catalog state, refreshed from the store, with the graph it is
// indexed by.
//
// Concurrent callers share refreshes: a caller waits for one that started after
// it called (so it sees every write that committed before it called) instead of
// queueing a store read of its own behind the others'. Two hundred clients
// polling at once thus cost a couple of reads per round, not two hundred.
func (e *Engine) State(ctx context.Context) (*graph.Graph, *State, error) {
	if err := e.refreshes.after(ctx, e.catalog.Refresh); err != nil {
		return nil, nil, err
	}
	g, st := e.catalog.Snapshot()
	return g, st, nil
}

// sharedRefresh runs a refresh for callers that arrive while none runs and lets
// the others wait for the next one to end.
type sharedRefresh struct {
	mu      sync.Mutex
	cond    *sync.Cond
	started int64 // refreshes started
	done    int64 // the number of the last refresh that ended
	running bool
	err     error // of the last refresh
}

// after returns once a refresh that started after the call has ended, running
// it if none is running.
func (r *sharedRefresh) after(ctx context.Context, refresh func(context.Context) (int, error)) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cond == nil {
		r.cond = sync.NewCond(&r.mu)
	}
	arrival := r.started
	for {
		if r.done > arrival {
			return r.err
		}
		if !r.running {
			r.running = true
			r.started++
			mine := r.started
			r.mu.Unlock()
			// Others wait on this read: it must not end with this caller's context.
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
			_, err := refresh(rctx)
			cancel()
			r.mu.Lock()
			r.running, r.done, r.err = false, mine, err
			r.cond.Broadcast()
			return err
		}
		r.cond.Wait()
	}
}

// Statuses returns every partition's status (the plan of nothing) over g and st,
// which must come from State. The result is kept until the state, the graph or
// the minute changes: a UI polling many assets at once costs one computation per
// change, and a partition that completes shows up within the minute.
func (e *Engine) Statuses(g *graph.Graph, st *State) (*Plan, error) {
	now := e.now()
	minute := now.Truncate(time.Minute)
	e.statusMu.Lock()
	defer e.statusMu.Unlock()
	if c := e.status; c != nil && c.g == g && c.st == st && c.minute.Equal(minute) {
		return c.plan, nil
	}
	began := time.Now()
	p, err := Compute(g, st, Request{Selected: make([]bool, g.Len()), Now: now})
	if err != nil {
		return nil, err
	}
	e.Metrics.planned(time.Since(began))
	e.status = &statusCache{g: g, st: st, minute: minute, plan: p}
	return p, nil
}

// Summaries returns plan.Summary of every asset of a plan Statuses returned,
// computed once per plan: a graph of 10,000 assets would otherwise count millions
// of partitions per request.
func (e *Engine) Summaries(p *Plan) []AssetSummary {
	e.statusMu.Lock()
	c := e.status
	e.statusMu.Unlock()
	if c == nil || c.plan != p {
		out := make([]AssetSummary, p.g.Len())
		for a := range out {
			out[a] = p.Summary(a)
		}
		return out
	}
	c.summaryOnce.Do(func() {
		c.summaries = make([]AssetSummary, p.g.Len())
		for a := range c.summaries {
			c.summaries[a] = p.Summary(a)
		}
	})
	return c.summaries
}

// PlanRequest says what to plan: a selection ("" means every asset) and a window
// of days, YYYY-MM-DD, inclusive ("" leaves a side open).
type PlanRequest struct {
	Selection string
	From, To  string
}

// ParseDay parses a day given as YYYY-MM-DD ("" is the zero time: no bound);
// the error names the field or flag it came from.
func ParseDay(name, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s: %q is not a date (YYYY-MM-DD)", name, s)
	}
	return t, nil
}

// window parses the request's days.
func (r PlanRequest) window() (from, to time.Time, err error) {
	if from, err = ParseDay("from", r.From); err != nil {
		return
	}
	if to, err = ParseDay("to", r.To); err != nil {
		return
	}
	if !from.IsZero() && !to.IsZero() && to.Before(from) {
		err = fmt.Errorf("to %s is before from %s", r.To, r.From)
	}
	return
}

// Plan computes what materializing the request would run now.
func (e *Engine) Plan(ctx context.Context, req PlanRequest) (*Plan, error) {
	began := time.Now()
	from, to, err := req.window()
	if err != nil {
		return nil, err
	}
	g, st, err := e.State(ctx)
	if err != nil {
		return nil, err
	}
	sel := req.Selection
	if sel == "" {
		sel = "*"
	}
	selected, err := lineage.Select(g, sel)
	if err != nil {
		return nil, err
	}
	p, err := Compute(g, st, Request{Selected: selected, From: from, To: to, Now: e.now()})
	e.Metrics.planned(time.Since(began))
	return p, err
}

// LaunchRequest is a plan to record as a run.
type LaunchRequest struct {
	PlanRequest
	Force   bool
	Trigger store.Trigger
	// MaxParallel caps the run's steps running at once (0: no cap).
	MaxParallel  int
	ScheduleName string
	ParentRunID  uuid.UUID
}

// Launch plans the request and records the plan as a run for the workers. It
// returns ErrNothingToDo (with the plan, which says what is blocked) when there is
// nothing to run.
func (e *Engine) Launch(ctx context.Context, req LaunchRequest) (*store.Run, *Plan, error) {
	plan, err := e.Plan(ctx, req.PlanRequest)
	if err != nil {
		return nil, nil, err
	}
	sel := req.Selection
	if sel == "" {
		sel = "*"
	}
	nr := plan.NewRun(RunOptions{
		Trigger: req.Trigger, Selection: sel, From: req.From, To: req.To, Force: req.Force,
		MaxParallel: req.MaxParallel, ScheduleName: req.ScheduleName, ParentRunID: req.ParentRunID,
		PlannedSeq: plan.state.Seq,
	})
	if len(nr.Steps) == 0 {
		return nil, plan, ErrNothingToDo
	}
	run, err := e.store.CreateRun(ctx, nr)
	if err != nil {
		return nil, plan, fmt.Errorf("record the run: %w", err)
	}
	e.Metrics.runLaunched(run.Trigger)
	return run, plan, nil
}

// BackfillRequest is a backfill to plan and record.
type BackfillRequest struct {
	PlanRequest
	Mode        store.BackfillMode // "" means missing_and_stale
	MaxParallel int                // 0 means 4
}

// LaunchBackfill plans a backfill and records it with its run; it returns the
// plan too, which says what is blocked. A backfill with nothing to build is
// recorded too (it is done at once), so that asking for one always leaves a
// trace of what was found.
func (e *Engine) LaunchBackfill(ctx context.Context, req BackfillRequest) (*store.Backfill, *Plan, error) {
	if req.Mode == "" {
		req.Mode = store.BackfillMissingAndStale
	}
	if req.Mode != store.BackfillMissingAndStale && req.Mode != store.BackfillAll {
		return nil, nil, fmt.Errorf("backfill mode %q: want missing_and_stale or all", req.Mode)
	}
	if req.MaxParallel == 0 {
		req.MaxParallel = 4
	}
	if req.MaxParallel < 0 {
		return nil, nil, fmt.Errorf("backfill maxParallel %d: must be 1 or more", req.MaxParallel)
	}
	plan, err := e.Plan(ctx, req.PlanRequest)
	if err != nil {
		return nil, nil, err
	}
	sel := req.Selection
	if sel == "" {
		sel = "*"
	}
	id := uuid.New()
	run := plan.NewRun(RunOptions{
		Trigger: store.TriggerBackfill, Selection: sel, From: req.From, To: req.To,
		Force: req.Mode == store.BackfillAll, MaxParallel: req.MaxParallel, BackfillID: id, PlannedSeq: plan.state.Seq,
	})
	b, err := e.store.CreateBackfill(ctx, store.NewBackfill{
		ID: id, Selection: sel, From: req.From, To: req.To, Mode: req.Mode, MaxParallel: req.MaxParallel, Run: run,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("record the backfill: %w", err)
	}
	if len(run.Steps) > 0 {
		e.Metrics.runLaunched(store.TriggerBackfill)
	}
	return b, plan, nil
}

// Retry launches the request of run id again, as a new run whose parent it is:
// with failedOnly, what is still missing or stale in its selection and window
// (the steps that failed, were canceled or never ran, and what changed since);
// without, all of its targets again, forced. (A forced run retried with
// failedOnly thus rebuilds only what is not fresh: what its failure left.) A run
// still in progress cannot be retried.
func (e *Engine) Retry(ctx context.Context, id uuid.UUID, failedOnly bool) (*store.Run, error) {
	old, err := e.store.GetRun(ctx, id)
	if err != nil {
		return nil, err
	}
	if !old.Status.Done() {
		return nil, fmt.Errorf("run %s is %s: cancel it or wait for it to end before retrying it", id, old.Status)
	}
	run, _, err := e.Launch(ctx, LaunchRequest{
		PlanRequest: PlanRequest{Selection: old.Selection, From: old.From, To: old.To},
		Force:       !failedOnly, Trigger: store.TriggerRetry, MaxParallel: old.MaxParallel, ParentRunID: old.ID,
	})
	return run, err
}

// ReportKeys returns the partition keys a report of materializations or
// observations made outside Freshet covers: the keys given, or the complete
// partitions whose window starts on one of the days from … to (inclusive, in the
// asset's timezone), or "" for an unpartitioned asset, which takes neither.
func ReportKeys(asset *assets.Asset, keys []string, from, to time.Time, now time.Time) ([]string, error) {
	parts := asset.Partitions
	ranged := !from.IsZero() || !to.IsZero()
	switch {
	case parts == nil && (len(keys) > 0 || ranged):
		return nil, fmt.Errorf("%s is not partitioned: name no partition and no range", asset.Key)
	case parts == nil:
		return []string{""}, nil
	case len(keys) > 0 && ranged:
		return nil, fmt.Errorf("give either partitions or a range (from and to), not both")
	case len(keys) > 0:
		return keys, nil // the store's Append checks them
	case !ranged:
		return nil, fmt.Errorf("%s is partitioned (%s): name partitions, or a range with from and to", asset.Key, parts.Granularity())
	case from.IsZero() || to.IsZero():
		return nil, fmt.Errorf("a range needs both from and to")
	case to.Before(from):
		return nil, fmt.Errorf("to %s is before from %s", to.Format(time.DateOnly), from.Format(time.DateOnly))
	}
	loc := parts.Location()
	lo := parts.FirstStartingAtOrAfter(time.Date(from.Year(), from.Month(), from.Day(), 0, 0, 0, 0, loc))
	hi := parts.FirstStartingAtOrAfter(time.Date(to.Year(), to.Month(), to.Day()+1, 0, 0, 0, 0, loc))
	lo, hi = max(lo, 0), min(hi, parts.Count(now))
	if lo >= hi {
		return nil, fmt.Errorf("no complete partition of %s starts between %s and %s", asset.Key, from.Format(time.DateOnly), to.Format(time.DateOnly))
	}
	if hi-lo > store.MaxEventsPerAppend {
		return nil, fmt.Errorf("%d partitions in one report: at most %d", hi-lo, store.MaxEventsPerAppend)
	}
	out := make([]string, 0, hi-lo)
	for i := lo; i < hi; i++ {
		out = append(out, parts.Key(i))
	}
	return out, nil
}
