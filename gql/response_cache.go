package gql

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/freshetdev/freshet/graph"
	"github.com/freshetdev/freshet/materialize"
)

// graphCache keeps the responses of queries made only of assetGraph fields: the
// UI's graph of a large catalog, which every open browser polls, is the same
// for all until the catalog changes, and costs some 14µs per asset to marshal
// when it selects more than the direct writer takes (graph_json.go; about 0.2µs
// when it does not).
// A response is a function of the definitions, the catalog state, the
// partitions in flight and the minute (which partitions exist), and is kept
// while none of them changes: any change (a materialization, a step starting or
// ending, a reload) makes the next query compute it afresh.
type graphCache struct {
	mu      sync.Mutex
	entries map[graphCacheKey]json.RawMessage
}

// graphCacheKey names a response: the query and its variables, and what the
// response was computed from.
type graphCacheKey struct {
	query  uint64 // hash of the query text, operation name and variables
	g      *graph.Graph
	st     *materialize.State
	flight uint64 // hash of the partitions in flight
	minute int64
}

// graphCacheSize bounds the responses kept (a few selections of a few states).
const graphCacheSize = 16

// around is the response middleware that serves and fills the cache.
func (c *graphCache) around(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
	if !graphql.HasOperationContext(ctx) {
		return next(ctx)
	}
	oc := graphql.GetOperationContext(ctx)
	v, _ := ctx.Value(viewKey{}).(*view)
	if v == nil || !onlyAssetGraph(oc) {
		return next(ctx)
	}
	key, ok := c.key(ctx, v, oc)
	if !ok {
		return next(ctx)
	}
	c.mu.Lock()
	hit := c.entries[key]
	c.mu.Unlock()
	if hit != nil {
		return &graphql.Response{Data: hit}
	}
	resp := next(ctx)
	if resp != nil && len(resp.Errors) == 0 && len(resp.Data) > 0 {
		c.mu.Lock()
		if c.entries == nil || len(c.entries) >= graphCacheSize {
			c.entries = map[graphCacheKey]json.RawMessage{}
		}
		c.entries[key] = resp.Data
		c.mu.Unlock()
	}
	return resp
}

// onlyAssetGraph reports whether the operation is a query whose root fields are
// all assetGraph.
func onlyAssetGraph(oc *graphql.OperationContext) bool {
	if oc.Operation == nil || oc.Operation.Operation != ast.Query || len(oc.Operation.SelectionSet) == 0 {
		return false
	}
	for _, sel := range oc.Operation.SelectionSet {
		f, ok := sel.(*ast.Field)
		if !ok || f.Name != "assetGraph" {
			return false
		}
	}
	return true
}

func (c *graphCache) key(ctx context.Context, v *view, oc *graphql.OperationContext) (graphCacheKey, bool) {
	g, st, err := v.state(ctx)
	if err != nil {
		return graphCacheKey{}, false
	}
	flight, err := v.inFlight(ctx)
	if err != nil {
		return graphCacheKey{}, false
	}
	vars, err := json.Marshal(oc.Variables) // map keys marshal sorted
	if err != nil {
		return graphCacheKey{}, false
	}
	q := fnv.New64a()
	fmt.Fprintf(q, "%s\x00%s\x00%s", oc.RawQuery, oc.OperationName, vars)
	// The partitions in flight, hashed in any order (maps iterate randomly): the
	// sum of one hash per (asset, partition, status).
	var held uint64
	for a, parts := range flight {
		for i, status := range parts {
			f := fnv.New64a()
			fmt.Fprintf(f, "%d/%d/%s", a, i, status)
			held += f.Sum64()
		}
	}
	return graphCacheKey{query: q.Sum64(), g: g, st: st, flight: held, minute: v.e.Now().Truncate(time.Minute).Unix()}, true
}
