package gql

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/google/uuid"

	"github.com/freshetdev/freshet/assets"
	"github.com/freshetdev/freshet/graph"
	"github.com/freshetdev/freshet/lineage"
	"github.com/freshetdev/freshet/materialize"
	"github.com/freshetdev/freshet/store"
)

// The resolver roots gqlgen asks for: one per object type with resolver fields.
func (r *Resolver) Asset() AssetResolver         { return &assetResolver{r} }
func (r *Resolver) Mutation() MutationResolver   { return &mutationResolver{r} }
func (r *Resolver) Partition() PartitionResolver { return &partitionResolver{r} }
func (r *Resolver) Query() QueryResolver         { return &queryResolver{r} }
func (r *Resolver) Run() RunResolver             { return &runResolver{r} }

type (
	assetResolver     struct{ *Resolver }
	mutationResolver  struct{ *Resolver }
	partitionResolver struct{ *Resolver }
	queryResolver     struct{ *Resolver }
	runResolver       struct{ *Resolver }
)

// Limits of list arguments: a page larger than these is refused, not trimmed,
// so that a client learns its page size was not honoured.
const (
	maxPage    = 1000
	maxLogPage = 10_000
)

func pageSize(name string, first *int, def, limit int) (int, error) {
	if first == nil {
		return def, nil
	}
	if *first < 1 || *first > limit {
		return 0, fmt.Errorf("%s: %d is out of range (1 to %d)", name, *first, limit)
	}
	return *first, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func parseUUID(what, s string) (uuid.UUID, error) {
	id, err := uuid.Parse(s)
	if err != nil {
		return uuid.Nil, fmt.Errorf("%s id %q is not a UUID", what, s)
	}
	return id, nil
}

// ---- Query ----

func (r *queryResolver) AssetGraph(ctx context.Context, selection *string) (*AssetGraph, error) {
	g, _, err := r.viewOf(ctx).state(ctx)
	if err != nil {
		return nil, err
	}
	sel := deref(selection)
	if sel == "" {
		sel = "*"
	}
	selected, err := lineage.Select(g, sel)
	if err != nil {
		return nil, err
	}
	all := r.objectsOf(g)
	if !slices.Contains(selected, false) {
		return &AssetGraph{Nodes: all.nodes, Edges: all.edges}, nil
	}
	out := &AssetGraph{Nodes: []*Asset{}, Edges: []*AssetEdge{}}
	for a, n := range all.nodes {
		if selected[a] {
			out.Nodes = append(out.Nodes, n)
		}
	}
	for id, e := range all.edges {
		if ge := g.Edge(id); selected[ge.From] && selected[ge.To] {
			out.Edges = append(out.Edges, e)
		}
	}
	return out, nil
}

// mappingText describes an edge's partition mapping: time (with its offsets when
// widened), all or last.
func mappingText(e *graph.Edge) string {
	m := string(e.Mapping)
	if e.Mapping == assets.MappingTime && (e.Dep.StartOffset != 0 || e.Dep.EndOffset != 0) {
		m += fmt.Sprintf("[%+d,%+d]", e.Dep.StartOffset, e.Dep.EndOffset)
	}
	return m
}

func (r *queryResolver) Asset(ctx context.Context, key string) (*Asset, error) {
	g, _, err := r.viewOf(ctx).state(ctx)
	if err != nil {
		return nil, err
	}
	a, ok := g.Index(assets.Key(key))
	if !ok {
		return nil, nil
	}
	return &Asset{idx: a, def: g.Asset(a)}, nil
}

func (r *queryResolver) Lineage(ctx context.Context, key string, direction *LineageDirection, depth *int) (*Lineage, error) {
	g, _, err := r.viewOf(ctx).state(ctx)
	if err != nil {
		return nil, err
	}
	dir := lineage.Both
	if direction != nil {
		switch *direction {
		case LineageDirectionUpstream:
			dir = lineage.Upstream
		case LineageDirectionDownstream:
			dir = lineage.Downstream
		}
	}
	d := -1
	if depth != nil {
		if *depth < 0 {
			return nil, fmt.Errorf("depth %d: must be 0 or more (leave it out for no limit)", *depth)
		}
		d = *depth
	}
	l, err := lineage.Traverse(g, assets.Key(key), dir, d)
	if err != nil {
		return nil, err
	}
	out := &Lineage{Nodes: make([]*LineageNode, len(l.Nodes)), Edges: make([]*LineageEdge, len(l.Edges)), Truncated: l.Truncated}
	for i, n := range l.Nodes {
		out.Nodes[i] = &LineageNode{Key: string(n.Key), Degree: n.Degree}
	}
	for i, e := range l.Edges {
		out.Edges[i] = &LineageEdge{From: string(e.From), To: string(e.To)}
	}
	return out, nil
}

func (r *queryResolver) Plan(ctx context.Context, selection, from, to *string) (*Plan, error) {
	p, err := r.Engine.Plan(ctx, materialize.PlanRequest{Selection: deref(selection), From: deref(from), To: deref(to)})
	if err != nil {
		return nil, err
	}
	return &Plan{p: p}, nil
}

func (r *queryResolver) Runs(ctx context.Context, status *RunStatus, asset *string, first *int, after *string) (*RunConnection, error) {
	n, err := pageSize("first", first, 50, maxPage)
	if err != nil {
		return nil, err
	}
	q := store.RunQuery{Asset: assets.Key(deref(asset)), Limit: n}
	if status != nil {
		q.Statuses = []store.RunStatus{store.RunStatus(*status)}
	}
	if after != nil && *after != "" {
		if q.Before, err = parseUUID("after: run", *after); err != nil {
			return nil, err
		}
	}
	page, err := r.Engine.Store().ListRuns(ctx, q)
	if err != nil {
		return nil, err
	}
	out := &RunConnection{Nodes: make([]*Run, len(page.Runs)), EndCursor: idOrNil(page.Next), HasNextPage: page.Next != uuid.Nil}
	for i := range page.Runs {
		out.Nodes[i] = &Run{r: &page.Runs[i]}
	}
	return out, nil
}

func (r *queryResolver) Run(ctx context.Context, id string) (*Run, error) {
	rid, err := parseUUID("run", id)
	if err != nil {
		return nil, err
	}
	run, err := r.Engine.Store().GetRun(ctx, rid)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &Run{r: run}, nil
}

func (r *queryResolver) StepLogs(ctx context.Context, stepID string, after, first *int) (*LogPage, error) {
	id, err := parseUUID("step", stepID)
	if err != nil {
		return nil, err
	}
	n, err := pageSize("first", first, 1000, maxLogPage)
	if err != nil {
		return nil, err
	}
	from := 0
	if after != nil {
		if *after < 0 {
			return nil, fmt.Errorf("after: %d must be 0 or more", *after)
		}
		from = *after
	}
	page, err := r.Engine.Store().StepLog(ctx, id, int64(from), n)
	if err != nil {
		return nil, err
	}
	out := &LogPage{Lines: make([]*LogLine, len(page.Lines)), Next: int(page.Next), DroppedLines: int(page.DroppedLines), DroppedBytes: int(page.DroppedBytes)}
	for i, l := range page.Lines {
		out.Lines[i] = &LogLine{No: int(l.No), Attempt: l.Attempt, Stream: string(l.Stream), At: l.At, Text: l.Text}
	}
	return out, nil
}

func (r *queryResolver) Backfills(ctx context.Context, first *int) ([]*Backfill, error) {
	n, err := pageSize("first", first, 50, maxPage)
	if err != nil {
		return nil, err
	}
	list, err := r.Engine.Store().ListBackfills(ctx, n)
	if err != nil {
		return nil, err
	}
	out := make([]*Backfill, len(list))
	for i := range list {
		out[i] = &Backfill{b: &list[i]}
	}
	return out, nil
}

func (r *queryResolver) Backfill(ctx context.Context, id string) (*Backfill, error) {
	bid, err := parseUUID("backfill", id)
	if err != nil {
		return nil, err
	}
	b, err := r.Engine.Store().GetBackfill(ctx, bid)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &Backfill{b: b}, nil
}

func (r *queryResolver) Definitions(ctx context.Context) (*DefinitionsInfo, error) {
	return definitionsInfo(r.Engine.Project()), nil
}

func definitionsInfo(p *materialize.Project) *DefinitionsInfo {
	keys := func(ks []assets.Key) []string {
		out := make([]string, len(ks))
		for i, k := range ks {
			out[i] = string(k)
		}
		return out
	}
	info := &DefinitionsInfo{Dir: p.Path, Assets: p.Graph.Len(), LoadedAt: p.LoadedAt, Added: []string{}, Changed: []string{}, Removed: []string{}}
	if p.Sync != nil {
		info.Added, info.Changed, info.Removed = keys(p.Sync.Added), keys(p.Sync.Changed), keys(p.Sync.Removed)
	}
	return info
}

// ---- Mutation ----

func (r *mutationResolver) MaterializeStale(ctx context.Context, selection, from, to *string) (*Run, error) {
	return r.launch(ctx, selection, from, to, false)
}

func (r *mutationResolver) Materialize(ctx context.Context, selection, from, to *string, force *bool) (*Run, error) {
	return r.launch(ctx, selection, from, to, force != nil && *force)
}

func (r *mutationResolver) launch(ctx context.Context, selection, from, to *string, force bool) (*Run, error) {
	run, _, err := r.Engine.Launch(ctx, materialize.LaunchRequest{
		PlanRequest: materialize.PlanRequest{Selection: deref(selection), From: deref(from), To: deref(to)},
		Force:       force, Trigger: store.TriggerAPI,
	})
	if err != nil {
		return nil, err
	}
	r.logger().Info("run launched", "run", run.ID, "steps", len(run.Steps), "selection", run.Selection)
	return &Run{r: run}, nil
}

func (r *mutationResolver) LaunchBackfill(ctx context.Context, input BackfillInput) (*Backfill, error) {
	req := materialize.BackfillRequest{
		PlanRequest: materialize.PlanRequest{Selection: deref(input.Selection), From: input.From, To: input.To},
		Mode:        store.BackfillMode(deref(input.Mode)),
	}
	if input.MaxParallel != nil {
		if *input.MaxParallel < 1 {
			return nil, fmt.Errorf("maxParallel %d: must be 1 or more", *input.MaxParallel)
		}
		req.MaxParallel = *input.MaxParallel
	}
	b, _, err := r.Engine.LaunchBackfill(ctx, req)
	if err != nil {
		return nil, err
	}
	r.logger().Info("backfill launched", "backfill", b.ID, "partitions", b.Targeted)
	return &Backfill{b: b}, nil
}

func (r *mutationResolver) CancelRun(ctx context.Context, id string) (*Run, error) {
	rid, err := parseUUID("run", id)
	if err != nil {
		return nil, err
	}
	run, err := r.Engine.Store().CancelRun(ctx, rid)
	if err != nil {
		return nil, err
	}
	return &Run{r: run}, nil
}

func (r *mutationResolver) CancelBackfill(ctx context.Context, id string) (*Backfill, error) {
	bid, err := parseUUID("backfill", id)
	if err != nil {
		return nil, err
	}
	b, err := r.Engine.Store().CancelBackfill(ctx, bid)
	if err != nil {
		return nil, err
	}
	return &Backfill{b: b}, nil
}

func (r *mutationResolver) RetryRun(ctx context.Context, id string, failedOnly *bool) (*Run, error) {
	rid, err := parseUUID("run", id)
	if err != nil {
		return nil, err
	}
	run, err := r.Engine.Retry(ctx, rid, failedOnly == nil || *failedOnly)
	if err != nil {
		return nil, err
	}
	return &Run{r: run}, nil
}

func (r *mutationResolver) ReportMaterialization(ctx context.Context, input ReportInput) ([]*MaterializationEvent, error) {
	return r.report(ctx, store.Materialization, input)
}

func (r *mutationResolver) ReportObservation(ctx context.Context, input ReportInput) ([]*MaterializationEvent, error) {
	if deref(input.DataVersion) == "" {
		return nil, errors.New("an observation needs a dataVersion")
	}
	return r.report(ctx, store.Observation, input)
}

func (r *mutationResolver) report(ctx context.Context, kind store.EventKind, input ReportInput) ([]*MaterializationEvent, error) {
	g, _, err := r.viewOf(ctx).state(ctx)
	if err != nil {
		return nil, err
	}
	a, ok := g.Index(assets.Key(input.Asset))
	if !ok {
		return nil, fmt.Errorf("asset %q: no such asset in the definitions", input.Asset)
	}
	asset := g.Asset(a)
	from, err := materialize.ParseDay("from", deref(input.From))
	if err != nil {
		return nil, err
	}
	to, err := materialize.ParseDay("to", deref(input.To))
	if err != nil {
		return nil, err
	}
	at := r.Engine.Now()
	if input.At != nil {
		at = *input.At
	}
	keys, err := materialize.ReportKeys(asset, input.Partitions, from, to, at)
	if err != nil {
		return nil, err
	}
	events := make([]store.Event, len(keys))
	for i, k := range keys {
		events[i] = store.Event{Kind: kind, Asset: asset.Key, Partition: k, At: at,
			DataVersion: deref(input.DataVersion), InputSeq: store.AtAppend, Metadata: []byte(input.Metadata)}
	}
	recorded, err := r.Engine.Store().Append(ctx, events)
	if err != nil {
		return nil, fmt.Errorf("nothing was recorded: %w", err)
	}
	out := make([]*MaterializationEvent, len(recorded))
	for i := range recorded {
		out[i] = &MaterializationEvent{e: &recorded[i]}
	}
	return out, nil
}

func (r *mutationResolver) ReloadDefinitions(ctx context.Context) (*DefinitionsInfo, error) {
	p, err := r.Engine.Reload(ctx)
	if err != nil {
		return nil, err
	}
	r.logger().Info("definitions reloaded", "assets", p.Graph.Len())
	return definitionsInfo(p), nil
}

// ---- Asset ----

func (r *assetResolver) PartitionsDef(ctx context.Context, obj *Asset) (*PartitionsDef, error) {
	return partitionsDefOf(obj.def, r.Engine.Now()), nil
}

// neighbours lists the assets obj is built from (upstream) or that are built
// from it, each once.
func (r *assetResolver) neighbours(ctx context.Context, obj *Asset, upstream bool) ([]*Asset, error) {
	g, _, err := r.viewOf(ctx).state(ctx)
	if err != nil {
		return nil, err
	}
	edges, end := g.Out(obj.idx), func(e *graph.Edge) int { return e.To }
	if upstream {
		edges, end = g.In(obj.idx), func(e *graph.Edge) int { return e.From }
	}
	out := []*Asset{}
	seen := map[int]bool{}
	for _, id := range edges {
		if a := end(g.Edge(id)); !seen[a] {
			seen[a] = true
			out = append(out, &Asset{idx: a, def: g.Asset(a)})
		}
	}
	return out, nil
}

func (r *assetResolver) Upstream(ctx context.Context, obj *Asset) ([]*Asset, error) {
	return r.neighbours(ctx, obj, true)
}

func (r *assetResolver) Downstream(ctx context.Context, obj *Asset) ([]*Asset, error) {
	return r.neighbours(ctx, obj, false)
}

// partitionStatus is the status the API shows for partition i of asset a:
// RUNNING while a step runs it, else FAILED when its latest attempt failed, else
// its derived status.
func partitionStatus(p *materialize.Plan, st *materialize.State, running map[int]store.StepStatus, a, i int) PartitionStatus {
	if running != nil && running[i] == store.StepRunning {
		return PartitionStatusRunning
	}
	if flags := st.Assets[a].Flags; i < len(flags) && flags[i]&materialize.FlagFailed != 0 {
		return PartitionStatusFailed
	}
	switch p.Status(a, i) {
	case materialize.StatusMissing:
		return PartitionStatusMissing
	case materialize.StatusStale:
		return PartitionStatusStale
	}
	return PartitionStatusFresh
}

func (r *assetResolver) PartitionStatus(ctx context.Context, obj *Asset, from, to *string) ([]*PartitionRange, error) {
	v := r.viewOf(ctx)
	p, err := v.statuses(ctx)
	if err != nil {
		return nil, err
	}
	_, st, _ := v.state(ctx)
	flight, err := v.inFlight(ctx)
	if err != nil {
		return nil, err
	}
	held := flight[obj.idx]
	n := p.Count(obj.idx)
	lo, hi := 0, n
	parts := obj.def.Partitions
	index := func(name string, key *string) (int, error) {
		if parts == nil {
			return 0, fmt.Errorf("%s: %s is not partitioned", name, obj.def.Key)
		}
		i, err := parts.Index(*key)
		if err != nil {
			return 0, fmt.Errorf("%s: partition %q of %s: %w", name, *key, obj.def.Key, err)
		}
		return i, nil
	}
	if from != nil {
		if lo, err = index("from", from); err != nil {
			return nil, err
		}
	}
	if to != nil {
		i, err := index("to", to)
		if err != nil {
			return nil, err
		}
		hi = min(i+1, n)
	}
	out := []*PartitionRange{}
	key := func(i int) string {
		if parts == nil {
			return ""
		}
		return parts.Key(i)
	}
	for i := lo; i < hi; {
		s := partitionStatus(p, st, held, obj.idx, i)
		j := i + 1
		for j < hi && partitionStatus(p, st, held, obj.idx, j) == s {
			j++
		}
		out = append(out, &PartitionRange{Start: key(i), End: key(j - 1), Status: s, Count: j - i})
		i = j
	}
	return out, nil
}

func (r *assetResolver) Partition(ctx context.Context, obj *Asset, key string) (*Partition, error) {
	v := r.viewOf(ctx)
	p, err := v.statuses(ctx)
	if err != nil {
		return nil, err
	}
	_, st, _ := v.state(ctx)
	i := 0
	if parts := obj.def.Partitions; parts != nil {
		if i, err = parts.Index(key); err != nil {
			return nil, fmt.Errorf("partition %q of %s: %w", key, obj.def.Key, err)
		}
		if i >= p.Count(obj.idx) {
			return nil, nil // not complete yet: it does not exist
		}
	} else if key != "" {
		return nil, fmt.Errorf("partition %q: %s is not partitioned (its one partition is \"\")", key, obj.def.Key)
	}
	flight, err := v.inFlight(ctx)
	if err != nil {
		return nil, err
	}
	out := &Partition{asset: obj, index: i, key: key, status: partitionStatus(p, st, flight[obj.idx], obj.idx, i), causes: []*Cause{}}
	for _, c := range p.Causes(obj.idx, i) {
		out.causes = append(out.causes, &Cause{Kind: c.Kind.String(), Asset: string(c.Asset), Partition: c.Partition})
	}
	if out.rec, err = v.partition(ctx, store.PartitionKey{Asset: obj.def.Key, Partition: key}); err != nil {
		return nil, err
	}
	return out, nil
}

// Freshness evaluates the asset's freshness policy now; null when it has none.
// Every asset's is evaluated at once, for the request (see view.freshness).
func (r *assetResolver) Freshness(ctx context.Context, obj *Asset) (*Freshness, error) {
	if obj.def.Freshness == nil {
		return nil, nil
	}
	all, err := r.viewOf(ctx).freshness(ctx)
	if err != nil {
		return nil, err
	}
	f, ok := all[obj.idx]
	if !ok {
		return nil, nil
	}
	return freshnessOut(f), nil
}

func freshnessOut(f materialize.AssetFreshness) *Freshness {
	return &Freshness{Status: string(f.Status), Policy: f.Policy, Reason: f.Reason,
		LastMaterializedAt: timeOrNil(f.LastMaterializedAt), LagSeconds: f.LagSeconds()}
}

func (r *assetResolver) Materializations(ctx context.Context, obj *Asset, first *int, after *string) (*MaterializationConnection, error) {
	n, err := pageSize("first", first, 20, maxPage)
	if err != nil {
		return nil, err
	}
	k := eventsKey{asset: obj.def.Key, successes: true, limit: n}
	if after != nil && *after != "" {
		if k.before, err = strconv.ParseInt(*after, 10, 64); err != nil || k.before <= 0 {
			return nil, fmt.Errorf("after: %q is not a cursor this API gave", *after)
		}
	}
	page, err := r.viewOf(ctx).eventPage(ctx, k)
	if err != nil {
		return nil, err
	}
	out := &MaterializationConnection{Nodes: make([]*MaterializationEvent, len(page.Events)), HasNextPage: page.Next != 0}
	for i := range page.Events {
		out.Nodes[i] = &MaterializationEvent{e: &page.Events[i]}
	}
	if page.Next != 0 {
		c := strconv.FormatInt(page.Next, 10)
		out.EndCursor = &c
	}
	return out, nil
}

// ---- Partition ----

func (r *partitionResolver) events(ctx context.Context, obj *Partition, n int) ([]store.Event, error) {
	page, err := r.viewOf(ctx).eventPage(ctx, eventsKey{asset: obj.asset.def.Key, partition: obj.key, onePartition: true, limit: n})
	if err != nil {
		return nil, err
	}
	return page.Events, nil
}

func (r *partitionResolver) LatestMaterialization(ctx context.Context, obj *Partition) (*MaterializationEvent, error) {
	if obj.rec == nil || obj.rec.SuccessSeq == 0 {
		return nil, nil
	}
	page, err := r.viewOf(ctx).eventPage(ctx, eventsKey{asset: obj.asset.def.Key, partition: obj.key, onePartition: true, successes: true, limit: 1})
	if err != nil || len(page.Events) == 0 {
		return nil, err
	}
	return &MaterializationEvent{e: &page.Events[0]}, nil
}

func (r *partitionResolver) Metadata(ctx context.Context, obj *Partition) (JSON, error) {
	m, err := r.LatestMaterialization(ctx, obj)
	if m == nil || err != nil {
		return nil, err
	}
	return m.Metadata(), nil
}

func (r *partitionResolver) History(ctx context.Context, obj *Partition, first *int) ([]*MaterializationEvent, error) {
	n, err := pageSize("first", first, 20, maxPage)
	if err != nil {
		return nil, err
	}
	events, err := r.events(ctx, obj, n)
	if err != nil {
		return nil, err
	}
	out := make([]*MaterializationEvent, len(events))
	for i := range events {
		out[i] = &MaterializationEvent{e: &events[i]}
	}
	return out, nil
}

// ---- Run ----

func (r *runResolver) Steps(ctx context.Context, obj *Run) ([]*Step, error) {
	steps := obj.r.Steps
	if steps == nil {
		var err error
		if steps, err = r.viewOf(ctx).runSteps(ctx, obj.r.ID); err != nil {
			return nil, err
		}
	}
	out := make([]*Step, len(steps))
	for i := range steps {
		out[i] = &Step{s: &steps[i]}
	}
	return out, nil
}
