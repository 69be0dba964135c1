// Package graph owns the asset graph: assets as nodes and their dependencies as edges,
// in topological order, with up- and downstream closures and, for every edge, the
// partition mapping that turns one downstream partition into the contiguous range of
// upstream partitions it needs.
//
// A Graph is immutable once built and safe for concurrent use. Nodes are dense
// integers in definition order, so callers can keep per-asset state in slices.
package graph

import (
	"fmt"
	"strings"

	"github.com/freshetdev/freshet/assets"
)

// Graph is the dependency graph of a set of definitions.
type Graph struct {
	defs   *assets.Definitions
	nodes  []*assets.Asset
	index  map[assets.Key]int
	edges  []Edge
	in     [][]int // node → ids of its upstream edges, in dep order
	out    [][]int // node → ids of its downstream edges
	topo   []int   // upstream before downstream; ties in definition order
	levels [][]int // levels[l]: nodes whose longest path from a root has l edges
}

// Edge is one dependency: From is built before, and read by, To.
type Edge struct {
	ID       int
	From, To int
	Dep      assets.Dep
	// Mapping is the mapping in force, the default filled in.
	Mapping assets.Mapping
	time    assets.TimeMapping // both sides partitioned
	upEnd   int                // upstream partitions past this never exist; -1: open
	upPart  bool
	dnPart  bool
}

// New builds the graph of defs. The definitions should have passed Validate; New
// still refuses unknown upstreams and cycles, since nothing below could work with them.
func New(defs *assets.Definitions) (*Graph, error) {
	g := &Graph{defs: defs, nodes: defs.Assets, index: make(map[assets.Key]int, len(defs.Assets))}
	for i, a := range defs.Assets {
		if _, dup := g.index[a.Key]; dup {
			return nil, fmt.Errorf("graph: duplicate asset key %s", a.Key)
		}
		g.index[a.Key] = i
	}
	g.in = make([][]int, len(g.nodes))
	g.out = make([][]int, len(g.nodes))
	for to, a := range g.nodes {
		for _, dep := range a.Deps {
			from, ok := g.index[dep.Asset]
			if !ok {
				return nil, fmt.Errorf("graph: asset %s depends on unknown asset %s", a.Key, dep.Asset)
			}
			up := g.nodes[from]
			e := Edge{
				ID: len(g.edges), From: from, To: to, Dep: dep,
				Mapping: dep.EffectiveMapping(a, up),
				upEnd:   -1, upPart: up.Partitions != nil, dnPart: a.Partitions != nil,
			}
			if e.upPart {
				e.upEnd = up.Partitions.EndCount()
			}
			if e.upPart && e.dnPart {
				e.time = assets.NewTimeMapping(a.Partitions, up.Partitions, dep.StartOffset, dep.EndOffset)
			}
			g.edges = append(g.edges, e)
			g.in[to] = append(g.in[to], e.ID)
			g.out[from] = append(g.out[from], e.ID)
		}
	}
	if err := g.sort(); err != nil {
		return nil, err
	}
	return g, nil
}

// sort computes the topological order and levels (Kahn's algorithm).
func (g *Graph) sort() error {
	n := len(g.nodes)
	pending := make([]int, n)
	level := make([]int, n)
	queue := make([]int, 0, n)
	for i := range g.nodes {
		pending[i] = len(g.in[i])
		if pending[i] == 0 {
			queue = append(queue, i)
		}
	}
	for head := 0; head < len(queue); head++ {
		u := queue[head]
		for _, id := range g.out[u] {
			v := g.edges[id].To
			level[v] = max(level[v], level[u]+1)
			if pending[v]--; pending[v] == 0 {
				queue = append(queue, v)
			}
		}
	}
	if len(queue) != n {
		var stuck []string
		for i, p := range pending {
			if p > 0 {
				stuck = append(stuck, string(g.nodes[i].Key))
			}
		}
		return fmt.Errorf("graph: dependency cycle among %s", strings.Join(stuck, ", "))
	}
	g.topo = queue
	for _, u := range g.topo {
		for len(g.levels) <= level[u] {
			g.levels = append(g.levels, nil)
		}
		g.levels[level[u]] = append(g.levels[level[u]], u)
	}
	return nil
}

// Definitions returns the definitions the graph was built from.
func (g *Graph) Definitions() *assets.Definitions { return g.defs }

// Len returns the number of assets.
func (g *Graph) Len() int { return len(g.nodes) }

// Asset returns node i's asset.
func (g *Graph) Asset(i int) *assets.Asset { return g.nodes[i] }

// Index returns the node of key k.
func (g *Graph) Index(k assets.Key) (int, bool) {
	i, ok := g.index[k]
	return i, ok
}

// Topo returns every node, each after all of its upstreams. Do not modify it.
func (g *Graph) Topo() []int { return g.topo }

// Levels groups the nodes by the length of their longest upstream path: nodes of
// one level never depend on each other, so they can be processed in parallel.
func (g *Graph) Levels() [][]int { return g.levels }

// Edge returns edge id.
func (g *Graph) Edge(id int) *Edge { return &g.edges[id] }

// NumEdges returns the number of edges.
func (g *Graph) NumEdges() int { return len(g.edges) }

// In returns the ids of node i's upstream edges, in the order its deps were declared.
func (g *Graph) In(i int) []int { return g.in[i] }

// Out returns the ids of node i's downstream edges.
func (g *Graph) Out(i int) []int { return g.out[i] }

// Direction of a closure.
type Direction uint8

// The closure directions.
const (
	Upstream Direction = iota + 1
	Downstream
)

// Closure returns the nodes reachable from roots in direction dir within depth edges
// (depth < 0: unlimited), roots included, with the distance of each from the nearest
// root (-1 when not reached).
func (g *Graph) Closure(roots []int, dir Direction, depth int) []int {
	dist := make([]int, len(g.nodes))
	for i := range dist {
		dist[i] = -1
	}
	queue := make([]int, 0, len(roots))
	for _, r := range roots {
		if dist[r] < 0 {
			dist[r] = 0
			queue = append(queue, r)
		}
	}
	for head := 0; head < len(queue); head++ {
		u := queue[head]
		if depth >= 0 && dist[u] >= depth {
			continue
		}
		ids := g.out[u]
		if dir == Upstream {
			ids = g.in[u]
		}
		for _, id := range ids {
			v := g.edges[id].To
			if dir == Upstream {
				v = g.edges[id].From
			}
			if dist[v] < 0 {
				dist[v] = dist[u] + 1
				queue = append(queue, v)
			}
		}
	}
	return dist
}

// Range returns the inclusive range [lo, hi] of upstream partition indices that
// downstream partition i needs (i is 0 for an unpartitioned downstream), given that
// upCount upstream partitions exist now. Partitions before the upstream's start or
// past its end never exist and are left out, so the range may be empty (lo > hi).
// A range reaching past upCount-1 needs a window that is not complete yet.
func (e *Edge) Range(i, upCount int) (lo, hi int) {
	switch {
	case !e.upPart:
		return 0, 0
	case !e.dnPart:
		if e.Mapping == assets.MappingLast {
			last := max(upCount-1, 0)
			return last, last
		}
		return 0, max(upCount-1, 0)
	}
	lo, hi = e.time.Range(i)
	return e.clip(lo, hi)
}

func (e *Edge) clip(lo, hi int) (int, int) {
	lo = max(lo, 0)
	if e.upEnd >= 0 {
		hi = min(hi, e.upEnd-1)
	}
	return lo, hi
}

// Shift reports whether the edge maps downstream partition i to the upstream range
// [i+lo, i+hi] (before clipping to the partitions that exist) for every i, which lets
// a caller walk both sides in lockstep.
func (e *Edge) Shift() (lo, hi int, ok bool) {
	if !e.upPart || !e.dnPart {
		return 0, 0, false
	}
	return e.time.Shift()
}

// UpstreamEnd returns the number of upstream partitions that can ever exist, or -1
// when the upstream has no end.
func (e *Edge) UpstreamEnd() int { return e.upEnd }
