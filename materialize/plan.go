package materialize

import (
	"fmt"
	"iter"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/freshetdev/freshet/assets"
	"github.com/freshetdev/freshet/graph"
)

// Request says what to plan.
type Request struct {
	// Selected marks, per graph node, the assets the plan may build; nil selects all.
	Selected []bool
	// From and To bound the targets by date, inclusive: a partition is a target when
	// its window starts in [From 00:00, To+1 00:00) in its asset's timezone. Only the
	// date of each is used; a zero value leaves that side open.
	From, To time.Time
	// Now fixes which partitions exist: every window up to the newest complete one.
	Now time.Time
}

// Step is one planned invocation: an asset over a contiguous range of partitions,
// at most its batch size.
type Step struct {
	Asset  int32 // graph node
	Lo, Hi int32 // partition indices [Lo, Hi); [0, 1) for an unpartitioned asset
	Status Status
}

// Run is a maximal range of consecutive planned partitions of one asset that share a
// status. A plan keeps runs rather than steps so that planning a backfill of millions
// of partitions costs a few runs, not millions of objects.
type Run Step

// BlockKind says why a partition cannot be planned.
type BlockKind uint8

// The reasons a partition is blocked.
const (
	// BlockWaitingWindow: an upstream partition it needs is not complete yet.
	BlockWaitingWindow BlockKind = iota + 1
	// BlockUpstreamMissing: an upstream partition it needs is missing and will not be
	// built by this plan (not selected, a source, or itself blocked).
	BlockUpstreamMissing
	// BlockUpstreamStale: it is stale only because an upstream partition is stale, and
	// that upstream is not in the plan, so rebuilding it would change nothing.
	BlockUpstreamStale
)

// Blocked is a partition that the selection asks for but the plan cannot build.
type Blocked struct {
	Asset, Partition int32
	Kind             BlockKind
	// Upstream and UpstreamPartition name the upstream partition that blocks it.
	Upstream, UpstreamPartition int32
}

// Plan is the result of planning: per-partition status of every asset and the steps
// that make every target fresh, in dependency order.
type Plan struct {
	g      *graph.Graph
	state  *State
	now    time.Time
	assets []assetPlan

	// Runs are the planned partitions, as maximal runs of consecutive partitions of
	// one asset with one status, in dependency order: every run comes after all runs
	// it needs. Steps cuts them into steps.
	Runs []Run
	// Blocked are the targets (and needed partitions) that cannot be built, and why.
	Blocked []Blocked
}

// The plan byte of a partition.
const (
	pTarget    = 1 << iota // selected, in the window and not fresh
	pNeeded                // a planned partition downstream needs it
	pCandidate             // target or needed, not fresh, and buildable by this plan
	pPlanned
	pBlocked
)

type assetPlan struct {
	n        int     // partitions that exist now (1 when unpartitioned)
	status   []uint8 // status byte per partition
	plan     []uint8 // plan byte per partition
	selected bool
	lo, hi   int // targets lie in [lo, hi)
	nCand    int
}

// Compute plans req over the catalog state st. It is pure: it reads g and st, which
// must not change meanwhile, and does no I/O.
func Compute(g *graph.Graph, st *State, req Request) (*Plan, error) {
	if len(st.Assets) != g.Len() {
		return nil, fmt.Errorf("plan: state has %d assets, graph has %d", len(st.Assets), g.Len())
	}
	if req.Selected != nil && len(req.Selected) != g.Len() {
		return nil, fmt.Errorf("plan: selection has %d entries, graph has %d assets", len(req.Selected), g.Len())
	}
	if req.Now.IsZero() {
		return nil, fmt.Errorf("plan: Now is not set")
	}
	p := &Plan{g: g, state: st, now: req.Now, assets: make([]assetPlan, g.Len())}
	total := 0
	for a := range p.assets {
		asset := g.Asset(a)
		if err := checkState(&st.Assets[a], asset.Key); err != nil {
			return nil, fmt.Errorf("plan: %w", err)
		}
		ap := &p.assets[a]
		ap.selected = (req.Selected == nil || req.Selected[a]) && !asset.IsSource()
		ap.n, ap.lo, ap.hi = 1, 0, 1
		if parts := asset.Partitions; parts != nil {
			ap.n = parts.Count(req.Now)
			ap.lo, ap.hi = 0, ap.n
			if !req.From.IsZero() {
				y, m, d := req.From.Date()
				ap.lo = parts.FirstStartingAtOrAfter(time.Date(y, m, d, 0, 0, 0, 0, parts.Location()))
			}
			if !req.To.IsZero() {
				y, m, d := req.To.Date()
				ap.hi = parts.FirstStartingAtOrAfter(time.Date(y, m, d+1, 0, 0, 0, 0, parts.Location()))
			}
			ap.lo, ap.hi = max(ap.lo, 0), min(ap.hi, ap.n)
		}
		total += ap.n
	}

	// One block holds every partition's status and plan bytes: two allocations per
	// plan instead of two per asset.
	block := make([]uint8, 2*total)
	for a := range p.assets {
		ap := &p.assets[a]
		ap.status, block = block[:ap.n:ap.n], block[ap.n:]
		ap.plan, block = block[:ap.n:ap.n], block[ap.n:]
	}
	workers := 1
	if total > 50_000 {
		workers = runtime.GOMAXPROCS(0)
	}
	levels := g.Levels()
	p.eachAsset(levels, false, workers, p.computeStatus)
	p.eachAsset(levels, true, workers, p.markNeeded)
	blocked := make([][]Blocked, g.Len())
	p.eachAsset(levels, false, workers, func(s *scratch, a int) { blocked[a] = p.decide(s, a) })
	p.collect(blocked)
	return p, nil
}

// scratch is one worker's reusable memory.
type scratch struct {
	deque []int32
	flags []uint8
}

// eachAsset calls fn for every asset, level by level (upstream first, or downstream
// first when reverse), the assets of one level in parallel.
func (p *Plan) eachAsset(levels [][]int, reverse bool, workers int, fn func(s *scratch, a int)) {
	scratches := make([]scratch, workers)
	for li := range levels {
		level := levels[li]
		if reverse {
			level = levels[len(levels)-1-li]
		}
		if workers == 1 || len(level) == 1 {
			for _, a := range level {
				fn(&scratches[0], a)
			}
			continue
		}
		var next atomic.Int64
		var wg sync.WaitGroup
		for w := 0; w < min(workers, len(level)); w++ {
			wg.Add(1)
			go func(s *scratch) {
				defer wg.Done()
				for {
					k := int(next.Add(1)) - 1
					if k >= len(level) {
						return
					}
					fn(s, level[k])
				}
			}(&scratches[w])
		}
		wg.Wait()
	}
}

// computeStatus derives the status byte of every partition of asset a from the
// recorded state and the (already computed) status of its upstreams.
func (p *Plan) computeStatus(s *scratch, a int) {
	asset := p.g.Asset(a)
	ap := &p.assets[a]
	st := &p.state.Assets[a]
	n := ap.n
	bits := ap.status

	// Most assets have one recorded code version and dep set, or a few that are all
	// current or all outdated: then the per-partition ids need not be read at all.
	codeChanged, codeCommon := changedIDs(st.CodeVersions, func(v string) bool { return v != asset.CodeVersion })
	var current []assets.Key
	if len(st.DepSets) > 0 {
		current = currentDepSet(asset)
	}
	depsChanged, depsCommon := changedIDs(st.DepSets, func(set []assets.Key) bool { return !slices.Equal(set, current) })
	var common uint8
	if codeCommon == 1 {
		common |= uint8(CauseCodeChanged)
	}
	if depsCommon == 1 {
		common |= uint8(CauseDepsChanged)
	}
	recorded := min(n, len(st.Flags))
	flags, codes, depSets := st.Flags[:recorded], st.CodeVersion[:recorded], st.DepSet[:recorded]
	source := asset.IsSource()
	if source {
		common = 0 // a source has no code or deps of its own to go stale
	}
	for i, f := range flags {
		if f&FlagMaterialized == 0 {
			bits[i] = bitMissing
			continue
		}
		b := common
		if codeCommon < 0 && !source {
			if cv := codes[i]; int(cv) >= len(codeChanged) || codeChanged[cv] {
				b |= uint8(CauseCodeChanged)
			}
		}
		if depsCommon < 0 && !source {
			if ds := depSets[i]; int(ds) >= len(depsChanged) || depsChanged[ds] {
				b |= uint8(CauseDepsChanged)
			}
		}
		bits[i] = b
	}
	for i := recorded; i < n; i++ {
		bits[i] = bitMissing
	}
	if asset.IsSource() {
		return
	}
	inputSeq := st.InputSeq
	for _, id := range p.g.In(a) {
		e := p.g.Edge(id)
		up := &p.assets[e.From]
		upDCS := p.state.Assets[e.From].DataChangedSeq
		upDCS = upDCS[:min(len(upDCS), up.n)]
		r := newEdgeRange(e, up.n)
		if r.unit() {
			// One upstream partition per downstream partition: walk in lockstep.
			// Only recorded partitions can be materialized, so only they can go stale.
			first, last := max(0, -r.lo), min(n, up.n-r.lo, len(inputSeq))
			if r.upEnd >= 0 {
				last = min(last, r.upEnd-r.lo)
			}
			if first >= last {
				continue
			}
			// Reslice so that both sides share one index and the loop is free of
			// bounds checks.
			down, in := bits[first:last], inputSeq[first:last]
			upBits := up.status[first+r.lo : last+r.lo]
			dcs := upDCS[min(first+r.lo, len(upDCS)):min(last+r.lo, len(upDCS))]
			for k := range down {
				if down[k]&bitMissing != 0 {
					continue
				}
				b := down[k]
				ub := upBits[k]
				if ub&bitMissing != 0 {
					b |= uint8(CauseUpstreamMissing)
				} else if ub&staleMask != 0 {
					b |= uint8(CauseUpstreamStale)
				}
				if k < len(dcs) && dcs[k] > in[k] {
					b |= uint8(CauseUpstreamChanged)
				}
				down[k] = b
			}
			continue
		}
		sw := newSweep(s, up.status, upDCS, nil)
		for i := 0; i < n; i++ {
			if bits[i]&bitMissing != 0 {
				continue
			}
			lo, hi := r.at(i)
			hi = min(hi, up.n-1) // windows not complete yet do not make it stale
			if lo > hi {
				continue
			}
			sw.moveTo(lo, hi)
			if sw.missing > 0 {
				bits[i] |= uint8(CauseUpstreamMissing)
			}
			if sw.stale > 0 {
				bits[i] |= uint8(CauseUpstreamStale)
			}
			if sw.max() > inputSeq[i] {
				bits[i] |= uint8(CauseUpstreamChanged)
			}
		}
		s.deque = sw.deque
	}
}

// changedIDs evaluates changed for every interned value, and says whether the answer
// is common to all of them: 0 (none changed), 1 (all changed) or -1 (it depends).
func changedIDs[T any](values []T, changed func(T) bool) ([]bool, int) {
	out := make([]bool, len(values))
	some, all := false, true
	for id, v := range values {
		out[id] = changed(v)
		some = some || out[id]
		all = all && out[id]
	}
	switch {
	case !some:
		return out, 0
	case all:
		return out, 1
	}
	return out, -1
}

// currentDepSet returns the sorted keys of a's upstream assets.
func currentDepSet(a *assets.Asset) []assets.Key {
	keys := make([]assets.Key, len(a.Deps))
	for i, d := range a.Deps {
		keys[i] = d.Asset
	}
	slices.Sort(keys)
	return keys
}

// markNeeded computes asset a's plan byte: its targets, the partitions its planned
// downstream partitions need (a's downstreams are done, since this runs downstream
// first), and from both its candidates.
func (p *Plan) markNeeded(s *scratch, a int) {
	ap := &p.assets[a]
	n := ap.n
	plan := ap.plan
	bits := ap.status
	if ap.selected {
		for i := ap.lo; i < ap.hi; i++ {
			if bits[i] != 0 {
				plan[i] = pTarget
			}
		}
	}
	for _, id := range p.g.Out(a) {
		e := p.g.Edge(id)
		down := &p.assets[e.To]
		if down.nCand == 0 {
			continue
		}
		r := newEdgeRange(e, n)
		if r.unit() {
			first, last := max(0, -r.lo), min(len(down.plan), n-r.lo)
			if first < last {
				dp, up := down.plan[first:last], plan[first+r.lo:last+r.lo]
				for k, pb := range dp {
					if pb&pCandidate != 0 {
						up[k] |= pNeeded
					}
				}
			}
			continue
		}
		marked := -1 // plan[0..marked] are marked already; ranges only move forward
		for i, pb := range down.plan {
			if pb&pCandidate == 0 {
				continue
			}
			lo, hi := r.at(i)
			lo, hi = max(lo, marked+1), min(hi, n-1)
			for j := lo; j <= hi; j++ {
				plan[j] |= pNeeded
			}
			marked = max(marked, hi)
		}
	}
	if !ap.selected {
		return
	}
	for i, pb := range plan {
		if pb != 0 && bits[i] != 0 {
			plan[i] = pb | pCandidate
			ap.nCand++
		}
	}
}

// decide settles, upstream first, which of asset a's candidates are planned and which
// are blocked, and returns the blocked ones.
func (p *Plan) decide(s *scratch, a int) []Blocked {
	ap := &p.assets[a]
	if ap.nCand == 0 {
		return nil
	}
	// Per candidate: fUpPlanned (some upstream partition it needs is planned),
	// fBlocked (a Blocked entry was recorded).
	const (
		fUpPlanned = 1 << iota
		fBlocked
	)
	if cap(s.flags) < ap.n {
		s.flags = make([]uint8, ap.n)
	}
	flags := s.flags[:ap.n]
	clear(flags)
	var blocked []Blocked
	block := func(i int, kind BlockKind, up, j int) {
		if flags[i]&fBlocked == 0 {
			flags[i] |= fBlocked
			blocked = append(blocked, Blocked{Asset: int32(a), Partition: int32(i), Kind: kind, Upstream: int32(up), UpstreamPartition: int32(j)})
		}
	}
	ins := p.g.In(a)
	for _, id := range ins {
		e := p.g.Edge(id)
		up := &p.assets[e.From]
		r := newEdgeRange(e, up.n)
		if r.unit() {
			for i, pb := range ap.plan {
				j := i + r.lo
				if pb&pCandidate == 0 || !r.exists(j) {
					continue
				}
				switch {
				case j >= up.n:
					block(i, BlockWaitingWindow, e.From, up.n)
				case up.plan[j]&pPlanned != 0:
					flags[i] |= fUpPlanned
				case up.status[j]&bitMissing != 0:
					block(i, BlockUpstreamMissing, e.From, j)
				}
			}
			continue
		}
		sw := newSweep(s, up.status, nil, up.plan)
		for i, pb := range ap.plan {
			if pb&pCandidate == 0 {
				continue
			}
			lo, hi := r.at(i)
			if lo > hi {
				continue
			}
			if hi >= up.n {
				block(i, BlockWaitingWindow, e.From, up.n)
				hi = up.n - 1
				if lo > hi {
					continue
				}
			}
			sw.moveTo(lo, hi)
			if sw.planned > 0 {
				flags[i] |= fUpPlanned
			}
			if sw.missingUnplanned > 0 {
				block(i, BlockUpstreamMissing, e.From, firstIn(up, lo, hi, func(b, pb uint8) bool { return b&bitMissing != 0 && pb&pPlanned == 0 }))
			}
		}
		s.deque = sw.deque
	}
	bits := ap.status
	for i, pb := range ap.plan {
		if pb&pCandidate == 0 {
			continue
		}
		switch {
		case flags[i]&fBlocked != 0:
			ap.plan[i] = pb | pBlocked
		case bits[i]&(bitMissing|directMask) != 0 || flags[i]&fUpPlanned != 0:
			ap.plan[i] = pb | pPlanned
		case pb&pTarget != 0:
			// Stale only through upstreams that this plan does not rebuild.
			for _, id := range ins {
				e := p.g.Edge(id)
				up := &p.assets[e.From]
				lo, hi := e.Range(i, up.n)
				if j := firstIn(up, lo, min(hi, up.n-1), func(b, _ uint8) bool { return b != 0 }); j >= 0 {
					block(i, BlockUpstreamStale, e.From, j)
					break
				}
			}
			ap.plan[i] = pb | pBlocked
		}
	}
	if len(ins) > 1 {
		slices.SortStableFunc(blocked, func(x, y Blocked) int { return int(x.Partition - y.Partition) })
	}
	return blocked
}

// firstIn returns the first partition in [lo, hi] of up matching f, or -1.
func firstIn(up *assetPlan, lo, hi int, f func(status, plan uint8) bool) int {
	for j := max(lo, 0); j <= hi; j++ {
		if f(up.status[j], up.plan[j]) {
			return j
		}
	}
	return -1
}

// collect gathers the planned partitions into runs and the blocked partitions, both
// in topological order.
func (p *Plan) collect(blocked [][]Blocked) {
	nBlocked := 0
	for _, b := range blocked {
		nBlocked += len(b)
	}
	p.Blocked = make([]Blocked, 0, nBlocked)
	for _, a := range p.g.Topo() {
		p.Blocked = append(p.Blocked, blocked[a]...)
		ap := &p.assets[a]
		if ap.nCand == 0 {
			continue
		}
		for i := 0; i < ap.n; {
			if ap.plan[i]&pPlanned == 0 {
				i++
				continue
			}
			status := statusOf(ap.status[i])
			j := i + 1
			for j < ap.n && ap.plan[j]&pPlanned != 0 && statusOf(ap.status[j]) == status {
				j++
			}
			p.Runs = append(p.Runs, Run{Asset: int32(a), Lo: int32(i), Hi: int32(j), Status: status})
			i = j
		}
	}
}

// Steps yields the plan's steps in dependency order: each run cut into steps of at
// most the asset's batch size (one partition per step when it does not batch).
func (p *Plan) Steps() iter.Seq[Step] {
	return func(yield func(Step) bool) {
		for _, r := range p.Runs {
			batch := int32(max(p.g.Asset(int(r.Asset)).Batch.MaxPartitions, 1))
			for lo := r.Lo; lo < r.Hi; lo += batch {
				if !yield(Step{Asset: r.Asset, Lo: lo, Hi: min(lo+batch, r.Hi), Status: r.Status}) {
					return
				}
			}
		}
	}
}

// NumSteps returns how many steps Steps yields.
func (p *Plan) NumSteps() int {
	n := 0
	for _, r := range p.Runs {
		batch := int32(max(p.g.Asset(int(r.Asset)).Batch.MaxPartitions, 1))
		n += int((r.Hi - r.Lo + batch - 1) / batch)
	}
	return n
}

// NumPartitions returns how many partitions the plan builds.
func (p *Plan) NumPartitions() int {
	n := 0
	for _, r := range p.Runs {
		n += int(r.Hi - r.Lo)
	}
	return n
}

// edgeRange answers Edge.Range for one edge and a fixed upstream count, inline for
// the common index-shift mappings.
type edgeRange struct {
	e      *graph.Edge
	upN    int
	shift  bool
	lo, hi int // the shift's offsets
	upEnd  int
}

func newEdgeRange(e *graph.Edge, upN int) edgeRange {
	lo, hi, ok := e.Shift()
	return edgeRange{e: e, upN: upN, shift: ok, lo: lo, hi: hi, upEnd: e.UpstreamEnd()}
}

// unit reports whether every downstream partition i needs exactly upstream i+lo.
func (r *edgeRange) unit() bool { return r.shift && r.lo == r.hi }

func (r *edgeRange) at(i int) (lo, hi int) {
	if !r.shift {
		return r.e.Range(i, r.upN)
	}
	lo, hi = max(i+r.lo, 0), i+r.hi
	if r.upEnd >= 0 && hi >= r.upEnd {
		hi = r.upEnd - 1
	}
	return lo, hi
}

// exists reports whether upstream partition j can ever exist.
func (r *edgeRange) exists(j int) bool { return j >= 0 && (r.upEnd < 0 || j < r.upEnd) }

// sweep aggregates an upstream's partitions over a window [lo, hi] that only ever
// moves forward, so a pass over all downstream partitions costs O(n + upstream n)
// whatever the width of the ranges: a monotonic deque gives the range max of the
// data-changed seqs, running counts the missing, stale and planned partitions.
type sweep struct {
	status []uint8
	dcs    []int64 // nil: max not needed
	plan   []uint8 // nil: plan counts not needed
	lo, hi int
	deque  []int32
	head   int

	missing, stale, planned, missingUnplanned int
}

func newSweep(s *scratch, status []uint8, dcs []int64, plan []uint8) sweep {
	return sweep{status: status, dcs: dcs, plan: plan, hi: -1, deque: s.deque[:0]}
}

func (w *sweep) moveTo(lo, hi int) {
	for w.hi < hi {
		w.hi++
		w.count(w.hi, 1)
		if w.dcs != nil {
			v := w.value(w.hi)
			for len(w.deque) > w.head && w.value(int(w.deque[len(w.deque)-1])) <= v {
				w.deque = w.deque[:len(w.deque)-1]
			}
			w.deque = append(w.deque, int32(w.hi))
		}
	}
	for w.lo < lo {
		if w.lo <= w.hi {
			w.count(w.lo, -1)
		}
		if w.head < len(w.deque) && int(w.deque[w.head]) == w.lo {
			w.head++
		}
		w.lo++
	}
}

func (w *sweep) count(j, d int) {
	b := w.status[j]
	if b&bitMissing != 0 {
		w.missing += d
		if w.plan != nil && w.plan[j]&pPlanned == 0 {
			w.missingUnplanned += d
		}
	} else if b&staleMask != 0 {
		w.stale += d
	}
	if w.plan != nil && w.plan[j]&pPlanned != 0 {
		w.planned += d
	}
}

func (w *sweep) value(j int) int64 {
	if j < len(w.dcs) {
		return w.dcs[j]
	}
	return 0
}

func (w *sweep) max() int64 {
	if w.head < len(w.deque) {
		return w.value(int(w.deque[w.head]))
	}
	return 0
}
