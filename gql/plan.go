package gql

import (
	"slices"

	"github.com/freshetdev/freshet/materialize"
)

// Plan is the plan as the API gives it. Its steps and blocked partitions are the
// content of `freshet plan --json`; they are built only when asked for, since a
// preview asks for the summary alone and a whole catalog's plan can hold
// hundreds of thousands of steps.
type Plan struct {
	p *materialize.Plan
}

func (p *Plan) Steps() []*PlanStep {
	g := p.p.Graph()
	out := []*PlanStep{}
	for s := range p.p.Steps() {
		causes := []*Cause{}
		for _, c := range p.p.StepCauses(s) {
			causes = append(causes, &Cause{Kind: c.Kind.String(), Asset: string(c.Asset), Partition: c.Partition})
		}
		out = append(out, &PlanStep{Asset: string(g.Asset(int(s.Asset)).Key), Partitions: p.p.PartitionKeys(s), Status: s.Status.String(), Causes: causes})
	}
	return out
}

func (p *Plan) Blocked() []*BlockedPartition {
	g := p.p.Graph()
	out := make([]*BlockedPartition, 0, len(p.p.Blocked))
	for _, b := range p.p.Blocked {
		out = append(out, &BlockedPartition{Asset: string(g.Asset(int(b.Asset)).Key), Partition: p.p.BlockedKey(b), Reason: p.p.Reason(b)})
	}
	return out
}

// maxExamples is how many example causes an asset's summary names.
const maxExamples = 3

// Summary sums the plan up per asset and the blocked partitions per asset and
// reason, as the UI's preview shows them.
func (p *Plan) Summary() *PlanSummary {
	g := p.p.Graph()
	out := &PlanSummary{Assets: []*PlanAssetSummary{}, Blocked: []*BlockedGroup{}}
	type span struct{ lo, hi int32 } // the lowest and highest partition index seen
	widen := func(sp *span, lo, hi int32) {
		sp.lo, sp.hi = min(sp.lo, lo), max(sp.hi, hi)
	}
	keyOf := func(asset, i int32) string {
		if parts := g.Asset(int(asset)).Partitions; parts != nil {
			return parts.Key(int(i))
		}
		return ""
	}

	type assetSum struct {
		*PlanAssetSummary
		span
		kinds map[string]bool
	}
	byAsset := map[int32]*assetSum{}
	var order []int32
	for s := range p.p.Steps() {
		a := byAsset[s.Asset]
		if a == nil {
			a = &assetSum{PlanAssetSummary: &PlanAssetSummary{Asset: string(g.Asset(int(s.Asset)).Key),
				Statuses: []*NamedCount{}, Causes: []*NamedCount{}, Examples: []string{}}, span: span{s.Lo, s.Hi - 1},
				kinds: map[string]bool{}}
			byAsset[s.Asset] = a
			order = append(order, s.Asset)
		}
		widen(&a.span, s.Lo, s.Hi-1)
		n := int(s.Hi - s.Lo)
		a.Steps++
		a.Partitions += n
		out.Steps++
		out.Partitions += n
		a.Statuses = addCount(a.Statuses, s.Status.String())
		clear(a.kinds) // the cause kinds of this step
		for _, c := range p.p.StepCauses(s) {
			kind := c.Kind.String()
			if !a.kinds[kind] {
				a.kinds[kind] = true
				a.Causes = addCount(a.Causes, kind) // a step counts once per kind
			}
			if c.Asset == "" || len(a.Examples) >= maxExamples {
				continue
			}
			ex := kind + " " + string(c.Asset)
			if c.Partition != "" {
				ex += " " + c.Partition
			}
			if !slices.Contains(a.Examples, ex) {
				a.Examples = append(a.Examples, ex)
			}
		}
	}
	for _, asset := range order {
		a := byAsset[asset]
		a.FirstPartition, a.LastPartition = keyOf(asset, a.lo), keyOf(asset, a.hi)
		out.Assets = append(out.Assets, a.PlanAssetSummary)
	}

	type groupKey struct {
		asset  int32
		reason string
	}
	type groupSum struct {
		*BlockedGroup
		span
	}
	groups := map[groupKey]*groupSum{}
	var groupOrder []groupKey
	for _, b := range p.p.Blocked {
		k := groupKey{b.Asset, p.p.Reason(b)}
		grp := groups[k]
		if grp == nil {
			grp = &groupSum{BlockedGroup: &BlockedGroup{Asset: string(g.Asset(int(b.Asset)).Key), Reason: k.reason},
				span: span{b.Partition, b.Partition}}
			groups[k] = grp
			groupOrder = append(groupOrder, k)
		}
		widen(&grp.span, b.Partition, b.Partition)
		grp.Partitions++
		out.BlockedPartitions++
	}
	for _, k := range groupOrder {
		grp := groups[k]
		grp.FirstPartition, grp.LastPartition = keyOf(k.asset, grp.lo), keyOf(k.asset, grp.hi)
		out.Blocked = append(out.Blocked, grp.BlockedGroup)
	}
	return out
}

// addCount counts one more of name in counts, which keeps the order names were
// first seen in.
func addCount(counts []*NamedCount, name string) []*NamedCount {
	for _, c := range counts {
		if c.Name == name {
			c.Count++
			return counts
		}
	}
	return append(counts, &NamedCount{Name: name, Count: 1})
}
