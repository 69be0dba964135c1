package gql

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/vikstrous/dataloadgen"

	"github.com/freshetdev/freshet/assets"
	"github.com/freshetdev/freshet/store"

	"github.com/freshetdev/freshet/graph"
	"github.com/freshetdev/freshet/materialize"
)

// view is what one request reads: the graph and the catalog state, taken once,
// when the request first needs them, and the statuses of every partition at that
// state, computed once. Every resolver of a request thus answers from the same
// snapshot, and a query over many assets plans once, not per asset.
type view struct {
	e *materialize.Engine

	stateOnce sync.Once
	g         *graph.Graph
	st        *materialize.State
	stateErr  error

	planOnce  sync.Once
	plan      *materialize.Plan
	planErr   error
	summaries []materialize.AssetSummary

	flightOnce sync.Once
	flight     map[int]map[int]store.StepStatus // graph node → partition index → status of the step holding it
	flightErr  error

	statusTableOnce sync.Once
	statusTable     []AssetStatus // by graph node
	statusTableErr  error

	freshOnce sync.Once
	fresh     map[int]materialize.AssetFreshness // by graph node
	freshErr  error

	// Loaders batch the reads that many objects of one response make (a page
	// of runs with their steps, many assets' partitions) into one query each.
	loadersOnce sync.Once
	steps       *dataloadgen.Loader[uuid.UUID, []store.Step]
	partitions  *dataloadgen.Loader[store.PartitionKey, *store.PartitionRecord]
	events      *dataloadgen.Loader[eventsKey, *store.EventPage]
}

// eventsKey names a page of events (an EventQuery made comparable): of an asset,
// of one partition of it when onePartition, successes only (materializations and
// observations) or every kind.
type eventsKey struct {
	asset        assets.Key
	partition    string
	onePartition bool
	successes    bool
	before       int64
	limit        int
}

func (k eventsKey) query() store.EventQuery {
	q := store.EventQuery{Asset: k.asset, Before: k.before, Limit: k.limit}
	if k.onePartition {
		q.Partitions = []string{k.partition}
	}
	if k.successes {
		q.Kinds = []store.EventKind{store.Materialization, store.Observation}
	}
	return q
}

// loaderWait is how long a loader waits for more keys before it reads: long
// enough for the resolvers of one level of a response to ask.
const loaderWait = 2 * time.Millisecond

func (v *view) loaders() {
	v.loadersOnce.Do(func() {
		q := v.e.Store()
		v.steps = dataloadgen.NewMappedLoader(func(ctx context.Context, ids []uuid.UUID) (map[uuid.UUID][]store.Step, error) {
			return q.StepsOfRuns(ctx, ids)
		}, dataloadgen.WithWait(loaderWait))
		v.events = dataloadgen.NewLoader(func(ctx context.Context, keys []eventsKey) ([]*store.EventPage, []error) {
			qs := make([]store.EventQuery, len(keys))
			for i, k := range keys {
				qs[i] = k.query()
			}
			pages, err := q.EventPages(ctx, qs)
			if err != nil {
				return nil, []error{err}
			}
			return pages, nil
		}, dataloadgen.WithWait(loaderWait))
		v.partitions = dataloadgen.NewLoader(func(ctx context.Context, keys []store.PartitionKey) ([]*store.PartitionRecord, []error) {
			recs, err := q.PartitionRecords(ctx, keys)
			if err != nil {
				return nil, []error{err}
			}
			return recs, nil
		}, dataloadgen.WithWait(loaderWait))
	})
}

// runSteps loads a run's steps, batched with the request's other runs.
func (v *view) runSteps(ctx context.Context, id uuid.UUID) ([]store.Step, error) {
	v.loaders()
	steps, err := v.steps.Load(ctx, id)
	if errors.Is(err, dataloadgen.ErrNotFound) {
		return []store.Step{}, nil // a run without steps
	}
	return steps, err
}

// eventPage loads a page of events, batched with the request's other pages.
func (v *view) eventPage(ctx context.Context, k eventsKey) (*store.EventPage, error) {
	v.loaders()
	return v.events.Load(ctx, k)
}

// partition loads a partition's record (nil: nothing recorded), batched.
func (v *view) partition(ctx context.Context, key store.PartitionKey) (*store.PartitionRecord, error) {
	v.loaders()
	return v.partitions.Load(ctx, key)
}

type viewKey struct{}

// withView gives ctx a view of its own: one per request.
func withView(ctx context.Context, e *materialize.Engine) context.Context {
	return context.WithValue(ctx, viewKey{}, &view{e: e})
}

// viewOf returns the request's view (a new one outside a request, as in tests
// that call resolvers directly).
func (r *Resolver) viewOf(ctx context.Context) *view {
	if v, ok := ctx.Value(viewKey{}).(*view); ok {
		return v
	}
	return &view{e: r.Engine}
}

// viewFrom returns the request's view, for the models' methods (which have no
// resolver at hand; NewHandler gives every request one).
func viewFrom(ctx context.Context) *view {
	v, _ := ctx.Value(viewKey{}).(*view)
	return v
}

// state returns the graph and the catalog state of the request.
func (v *view) state(ctx context.Context) (*graph.Graph, *materialize.State, error) {
	v.stateOnce.Do(func() {
		v.g, v.st, v.stateErr = v.e.State(ctx)
	})
	return v.g, v.st, v.stateErr
}

// statuses returns the plan of nothing (no selection) over the request's state:
// what it holds are the per-partition statuses and causes of every asset. The
// engine keeps it for the requests that read the same state.
func (v *view) statuses(ctx context.Context) (*materialize.Plan, error) {
	v.planOnce.Do(func() {
		g, st, err := v.state(ctx)
		if err != nil {
			v.planErr = err
			return
		}
		if v.plan, v.planErr = v.e.Statuses(g, st); v.planErr == nil {
			v.summaries = v.e.Summaries(v.plan)
		}
	})
	return v.plan, v.planErr
}

// freshness evaluates every asset's freshness policy once for the request.
func (v *view) freshness(ctx context.Context) (map[int]materialize.AssetFreshness, error) {
	v.freshOnce.Do(func() {
		g, st, err := v.state(ctx)
		if err != nil {
			v.freshErr = err
			return
		}
		all, err := materialize.EvaluateFreshness(ctx, v.e.Store(), g, st, v.e.Now())
		if err != nil {
			v.freshErr = err
			return
		}
		v.fresh = make(map[int]materialize.AssetFreshness, len(all))
		for _, f := range all {
			v.fresh[f.Asset] = f
		}
	})
	return v.fresh, v.freshErr
}

// inFlight returns, per asset of the request's graph, the partitions a step not
// ended holds, with that step's status; read once for the request.
func (v *view) inFlight(ctx context.Context) (map[int]map[int]store.StepStatus, error) {
	v.flightOnce.Do(func() {
		g, _, err := v.state(ctx)
		if err != nil {
			v.flightErr = err
			return
		}
		held, err := v.e.Store().InFlight(ctx)
		if err != nil {
			v.flightErr = err
			return
		}
		v.flight = map[int]map[int]store.StepStatus{}
		for _, p := range held {
			a, ok := g.Index(p.Asset)
			if !ok {
				continue
			}
			i := 0
			if parts := g.Asset(a).Partitions; parts != nil {
				if i, err = parts.Index(p.Partition); err != nil {
					continue // a key of an older partitions definition
				}
			}
			if v.flight[a] == nil {
				v.flight[a] = map[int]store.StepStatus{}
			}
			v.flight[a][i] = p.Status
		}
	})
	return v.flight, v.flightErr
}

// assetStatuses returns the status field of every asset of the request's graph,
// by graph node: the counts of the statuses (kept by the engine per plan) with
// the partitions in flight, computed once for the request. Its entries are
// shared by the request's objects and must not be changed.
func (v *view) assetStatuses(ctx context.Context) ([]AssetStatus, error) {
	v.statusTableOnce.Do(func() {
		if _, err := v.statuses(ctx); err != nil {
			v.statusTableErr = err
			return
		}
		flight, err := v.inFlight(ctx)
		if err != nil {
			v.statusTableErr = err
			return
		}
		table := make([]AssetStatus, len(v.summaries))
		for a, s := range v.summaries {
			table[a] = AssetStatus{Fresh: s.Fresh, Stale: s.Stale, Missing: s.Missing, Failed: s.Failed, Total: s.Total}
		}
		for a, held := range flight {
			for _, st := range held {
				if st == store.StepRunning {
					table[a].Running++
				} else {
					table[a].Queued++
				}
			}
		}
		v.statusTable = table
	})
	return v.statusTable, v.statusTableErr
}
