package materialize

import (
	"iter"
	"slices"
	"sort"

	"github.com/google/uuid"

	"github.com/freshetdev/freshet/store"
)

// RunOptions describes the run a plan becomes.
type RunOptions struct {
	ID           uuid.UUID // uuid.Nil: a new one
	Trigger      store.Trigger
	Selection    string
	From, To     string // the window as YYYY-MM-DD ("" when open)
	Force        bool
	MaxParallel  int
	BackfillID   uuid.UUID
	ScheduleName string
	ParentRunID  uuid.UUID
	// PlannedSeq is the watermark of the state the plan was computed on.
	PlannedSeq int64
}

// NewRun turns the plan into a run to record: one step per planned step (batches
// cut by each asset's batch size), in the plan's dependency order, each with the
// steps of the same run it reads from. With opt.Force the run also rebuilds the
// fresh targets (see ForcedSteps).
func (p *Plan) NewRun(opt RunOptions) store.NewRun {
	run := store.NewRun{
		ID: opt.ID, Trigger: opt.Trigger, Selection: opt.Selection, From: opt.From, To: opt.To,
		Force: opt.Force, MaxParallel: opt.MaxParallel, BackfillID: opt.BackfillID,
		ScheduleName: opt.ScheduleName, ParentRunID: opt.ParentRunID, PlannedSeq: opt.PlannedSeq,
	}
	if run.ID == uuid.Nil {
		run.ID = uuid.New()
	}
	steps := p.Steps()
	if opt.Force {
		steps = p.ForcedSteps()
	}
	var planned []Step
	for s := range steps {
		planned = append(planned, s)
	}
	deps := p.stepDeps(planned)
	run.Steps = make([]store.NewStep, len(planned))
	for k, s := range planned {
		asset := p.g.Asset(int(s.Asset))
		keys := p.PartitionKeys(s)
		if len(keys) == 0 {
			keys = []string{""}
		}
		run.Steps[k] = store.NewStep{
			ID: uuid.New(), Asset: asset.Key, Partitions: keys,
			MaxAttempts: asset.Retries.Max + 1, Deps: deps[k],
		}
	}
	return run
}

// stepDeps returns, for each step, the indexes of the earlier steps whose
// partitions it reads through its dependencies' mappings.
func (p *Plan) stepDeps(steps []Step) [][]int {
	// Each asset's steps sorted by first partition, to find those overlapping a
	// mapped range by binary search.
	byAsset := make(map[int32][]int)
	for k, s := range steps {
		byAsset[s.Asset] = append(byAsset[s.Asset], k)
	}
	for _, ks := range byAsset {
		sort.Slice(ks, func(i, j int) bool { return steps[ks[i]].Lo < steps[ks[j]].Lo })
	}
	deps := make([][]int, len(steps))
	for k, s := range steps {
		for _, eid := range p.g.In(int(s.Asset)) {
			e := p.g.Edge(eid)
			ups := byAsset[int32(e.From)]
			if len(ups) == 0 {
				continue
			}
			upCount := p.Count(e.From)
			// Mappings are monotone and contiguous: the ranges of the first and the
			// last partition bound the union.
			lo, _ := e.Range(int(s.Lo), upCount)
			_, hi := e.Range(int(s.Hi-1), upCount)
			if lo > hi {
				continue
			}
			// The first upstream step ending after lo, then every one starting at or
			// before hi.
			i := sort.Search(len(ups), func(i int) bool { return int(steps[ups[i]].Hi) > lo })
			for ; i < len(ups) && int(steps[ups[i]].Lo) <= hi; i++ {
				if ups[i] < k {
					deps[k] = append(deps[k], ups[i])
				}
			}
		}
		slices.Sort(deps[k])
		deps[k] = slices.Compact(deps[k])
	}
	return deps
}

// ForcedSteps yields the steps that rebuild every target of the plan, fresh or
// not, with what the plan builds besides (stale or missing partitions the
// targets need), in dependency order. Blocked partitions stay out: they cannot be
// built.
func (p *Plan) ForcedSteps() iter.Seq[Step] {
	return func(yield func(Step) bool) {
		for _, a := range p.g.Topo() {
			ap := &p.assets[a]
			build := func(i int) bool {
				if ap.plan[i]&pPlanned != 0 {
					return true
				}
				return ap.selected && i >= ap.lo && i < ap.hi && ap.plan[i]&pBlocked == 0 &&
					statusOf(ap.status[i]) == StatusFresh
			}
			batch := max(p.g.Asset(a).Batch.MaxPartitions, 1)
			for i := 0; i < ap.n; {
				if !build(i) {
					i++
					continue
				}
				j := i + 1
				for j < ap.n && j-i < batch && build(j) {
					j++
				}
				if !yield(Step{Asset: int32(a), Lo: int32(i), Hi: int32(j), Status: statusOf(ap.status[i])}) {
					return
				}
				i = j
			}
		}
	}
}
