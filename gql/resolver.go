package gql

import (
	"sync"

	"github.com/hashicorp/go-hclog"

	"github.com/freshetdev/freshet/graph"
	"github.com/freshetdev/freshet/materialize"
)

// Resolver is the root of the API's resolvers: it serves what an Engine holds
// (the definitions, the catalog, the engine's queue).
type Resolver struct {
	Engine *materialize.Engine
	Logger hclog.Logger

	objects graphObjectsCache
}

func (r *Resolver) logger() hclog.Logger {
	if r.Logger == nil {
		return hclog.NewNullLogger()
	}
	return r.Logger
}

// graphObjects are the API objects of every asset and edge of one graph (the
// definitions served), built once per graph and shared by the requests that
// read it: they hold nothing of the catalog state, and an assetGraph of 10,000
// assets would otherwise build them all, edge mappings formatted, per request.
// Nothing may change them once built.
type graphObjects struct {
	g     *graph.Graph
	nodes []*Asset     // by graph node
	edges []*AssetEdge // by edge id
}

// graphObjectsCache keeps the objects of the graph served last (a reload
// replaces them).
type graphObjectsCache struct {
	mu   sync.Mutex
	last *graphObjects
}

// objectsOf returns the objects of g, built on first use.
func (r *Resolver) objectsOf(g *graph.Graph) *graphObjects {
	r.objects.mu.Lock()
	defer r.objects.mu.Unlock()
	if o := r.objects.last; o != nil && o.g == g {
		return o
	}
	o := &graphObjects{g: g, nodes: make([]*Asset, g.Len()), edges: make([]*AssetEdge, g.NumEdges())}
	nodes := make([]Asset, g.Len()) // one allocation for all
	for a := range nodes {
		nodes[a] = Asset{idx: a, def: g.Asset(a)}
		o.nodes[a] = &nodes[a]
	}
	edges := make([]AssetEdge, g.NumEdges())
	for id := range edges {
		e := g.Edge(id)
		edges[id] = AssetEdge{From: string(g.Asset(e.From).Key), To: string(g.Asset(e.To).Key), Mapping: mappingText(e)}
		o.edges[id] = &edges[id]
	}
	r.objects.last = o
	return o
}
