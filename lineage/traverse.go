package lineage

import (
	"bufio"
	"cmp"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/freshetdev/freshet/assets"
	"github.com/freshetdev/freshet/graph"
)

// Direction says which way Traverse walks from its asset.
type Direction uint8

// The traversal directions.
const (
	Upstream   Direction = iota + 1 // the assets it is built from
	Downstream                      // the assets built from it
	Both
)

var directionNames = [...]string{Upstream: "upstream", Downstream: "downstream", Both: "both"}

func (d Direction) String() string {
	if d >= Upstream && d <= Both {
		return directionNames[d]
	}
	return fmt.Sprintf("Direction(%d)", uint8(d))
}

// ParseDirection parses "upstream", "downstream" or "both".
func ParseDirection(s string) (Direction, error) {
	for d := Upstream; d <= Both; d++ {
		if directionNames[d] == s {
			return d, nil
		}
	}
	return 0, fmt.Errorf("unknown lineage direction %q (want upstream, downstream or both)", s)
}

// Lineage is the neighbourhood of one asset in the graph.
type Lineage struct {
	// Nodes are sorted by Degree, then Key: the farthest upstream first, the root (the
	// only node of degree 0), then downstream.
	Nodes []Node
	// Edges are every dependency between two of the Nodes, sorted by the positions of
	// From, then To, in Nodes.
	Edges []Edge
	// Truncated is true when the depth limit left out assets that exist further away.
	Truncated bool
}

// Node is one asset of a Lineage.
type Node struct {
	Key assets.Key
	// Degree is the signed distance from the root, in edges along the shortest path:
	// negative upstream, positive downstream, 0 for the root.
	Degree int
}

// Edge is one dependency of a Lineage: To is built from From.
type Edge struct {
	From, To assets.Key
	// Mapping is the partition mapping in force, the default filled in.
	Mapping assets.Mapping
	// StartOffset and EndOffset widen a time mapping, in downstream windows.
	StartOffset, EndOffset int
}

// Traverse returns the lineage of the asset key: the assets up to depth edges away in
// direction dir (depth < 0: unlimited; 0: the asset alone) and the edges between them.
// An unknown key is an *UnknownAssetError with the closest existing key as suggestion.
func Traverse(g *graph.Graph, key assets.Key, dir Direction, depth int) (*Lineage, error) {
	if dir < Upstream || dir > Both {
		return nil, fmt.Errorf("lineage: invalid direction %d (want Upstream, Downstream or Both)", dir)
	}
	root, ok := g.Index(key)
	if !ok {
		return nil, unknownAsset(g, key)
	}
	depth = max(depth, unlimited)

	n := g.Len()
	degree := make([]int, n)
	in := make([]bool, n)
	l := &Lineage{}
	for _, side := range []struct {
		dir  graph.Direction
		sign int
	}{{graph.Upstream, -1}, {graph.Downstream, 1}} {
		if side.dir == graph.Upstream && dir == Downstream || side.dir == graph.Downstream && dir == Upstream {
			continue
		}
		dist := g.Closure([]int{root}, side.dir, depth)
		for u, d := range dist {
			if d < 0 {
				continue
			}
			in[u] = true
			degree[u] = side.sign * d
			if d == depth && !l.Truncated {
				l.Truncated = reachesBeyond(g, dist, u, side.dir)
			}
		}
	}

	pos := make([]int, n)
	var nodes []int
	for u, ok := range in {
		if ok {
			nodes = append(nodes, u)
		}
	}
	slices.SortFunc(nodes, func(a, b int) int {
		return cmp.Or(cmp.Compare(degree[a], degree[b]), cmp.Compare(g.Asset(a).Key, g.Asset(b).Key))
	})
	l.Nodes = make([]Node, len(nodes))
	var edges []int
	for p, u := range nodes {
		pos[u] = p
		l.Nodes[p] = Node{Key: g.Asset(u).Key, Degree: degree[u]}
		for _, id := range g.Out(u) {
			if in[g.Edge(id).To] {
				edges = append(edges, id)
			}
		}
	}
	slices.SortFunc(edges, func(a, b int) int {
		ea, eb := g.Edge(a), g.Edge(b)
		return cmp.Or(cmp.Compare(pos[ea.From], pos[eb.From]), cmp.Compare(pos[ea.To], pos[eb.To]))
	})
	l.Edges = make([]Edge, len(edges))
	for i, id := range edges {
		e := g.Edge(id)
		l.Edges[i] = Edge{
			From: g.Asset(e.From).Key, To: g.Asset(e.To).Key, Mapping: e.Mapping,
			StartOffset: e.Dep.StartOffset, EndOffset: e.Dep.EndOffset,
		}
	}
	return l, nil
}

// reachesBeyond reports whether node u has a neighbour in direction dir that the
// closure with distances dist did not reach.
func reachesBeyond(g *graph.Graph, dist []int, u int, dir graph.Direction) bool {
	if dir == graph.Upstream {
		for _, id := range g.In(u) {
			if dist[g.Edge(id).From] < 0 {
				return true
			}
		}
		return false
	}
	for _, id := range g.Out(u) {
		if dist[g.Edge(id).To] < 0 {
			return true
		}
	}
	return false
}

// WriteText writes the lineage as an indented tree for a terminal:
//
//	    ↑ sales/raw_orders
//	  ↑ sales/orders_clean [-6..0]
//	sales/rolling_7d
//	  ↓ sales/dashboard (last)
//
// Upstream assets stand above the root, each one level deeper than the asset it feeds
// (the next shallower line below it); downstream assets stand below, each one level
// deeper than the asset it reads (the next shallower line above it). A line notes the
// mapping of its edge unless it is the plain time mapping: (all), (last), or the offsets
// of a widened time mapping, [-6..0]. An asset reached again is not expanded twice:
// "(see below)" or "(see above)" points to where its own lineage is shown. A last
// line says when the depth limit truncated the lineage.
func (l *Lineage) WriteText(w io.Writer) error {
	var root assets.Key
	found := false
	for _, n := range l.Nodes {
		if n.Degree == 0 {
			root, found = n.Key, true
			break
		}
	}
	if !found {
		return errors.New("lineage: no root node (degree 0)")
	}
	ups := map[assets.Key][]Edge{}   // edges into a key
	downs := map[assets.Key][]Edge{} // edges out of a key
	for _, e := range l.Edges {
		ups[e.To] = append(ups[e.To], e)
		downs[e.From] = append(downs[e.From], e)
	}
	for _, es := range ups {
		slices.SortFunc(es, func(a, b Edge) int { return cmp.Compare(a.From, b.From) })
	}
	for _, es := range downs {
		slices.SortFunc(es, func(a, b Edge) int { return cmp.Compare(a.To, b.To) })
	}

	// The upstream tree is built in pre-order with siblings last to first and printed
	// reversed, so each asset's own upstream ends up right above it, siblings in order.
	var up []string
	expanded := map[assets.Key]bool{}
	var walkUp func(k assets.Key, level int)
	walkUp = func(k assets.Key, level int) {
		es := ups[k]
		for i := len(es) - 1; i >= 0; i-- {
			e := es[i]
			line := treeLine(level, "↑", e.From, e)
			if expanded[e.From] {
				if len(ups[e.From]) > 0 {
					line += " (see below)"
				}
				up = append(up, line)
				continue
			}
			expanded[e.From] = true
			up = append(up, line)
			walkUp(e.From, level+1)
		}
	}
	walkUp(root, 1)

	bw := bufio.NewWriter(w)
	for i := len(up) - 1; i >= 0; i-- {
		bw.WriteString(up[i])
		bw.WriteByte('\n')
	}
	bw.WriteString(string(root))
	bw.WriteByte('\n')

	clear(expanded)
	var walkDown func(k assets.Key, level int)
	walkDown = func(k assets.Key, level int) {
		for _, e := range downs[k] {
			bw.WriteString(treeLine(level, "↓", e.To, e))
			if expanded[e.To] {
				if len(downs[e.To]) > 0 {
					bw.WriteString(" (see above)")
				}
				bw.WriteByte('\n')
				continue
			}
			expanded[e.To] = true
			bw.WriteByte('\n')
			walkDown(e.To, level+1)
		}
	}
	walkDown(root, 1)

	if l.Truncated {
		bw.WriteString("(truncated: more lineage exists beyond this depth)\n")
	}
	return bw.Flush()
}

func treeLine(level int, arrow string, k assets.Key, e Edge) string {
	s := strings.Repeat("  ", level) + arrow + " " + string(k)
	switch {
	case e.Mapping != assets.MappingTime && e.Mapping != "":
		s += " (" + string(e.Mapping) + ")"
	case e.StartOffset != 0 || e.EndOffset != 0:
		s += fmt.Sprintf(" [%d..%d]", e.StartOffset, e.EndOffset)
	}
	return s
}
