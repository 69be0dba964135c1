// Package gql is Freshet's GraphQL API: the schema (schema.graphqls, written
// first; gqlgen generates generated.go and models_gen.go from it with `go
// generate ./gql`), the resolvers over a materialize.Engine, and the HTTP
// handler that serves them with their limits.
//
// # What a request reads
//
// Every request gets a view (view.go): the definitions and the catalog state
// taken once, when it first needs them, so that all the resolvers of one
// response answer from the same snapshot. What many objects of a response need
// is computed once per request or read in one batch: the status of every
// partition (a plan of nothing, kept by the engine while the state stands
// still), the freshness of every asset, the partitions in flight, and, through
// per-request loaders (dataloadgen), the steps of a page of runs, the records
// of many partitions and the pages of events of many assets and partitions. The
// API objects of the graph's assets and edges are built once per graph
// (Resolver.objectsOf), and every asset's status counts once per request
// (view.assetStatuses). An assetGraph field selecting only plain data of the
// graph is written straight to JSON (graph_json.go): gqlgen's execution, object
// by object and field by field, cost fifty times more for a large graph. The
// responses of queries made only of assetGraph fields are kept while the
// definitions, the catalog, the partitions in flight and the minute are
// unchanged (response_cache.go): every open UI polls that query.
//
// # Transports and limits
//
// NewHandler serves /graphql over POST (a JSON body, any operation), GET
// (queries only) and websocket (subscriptions, graphql-transport-ws), and the
// probes and metrics beside it. Mutations are refused unless they come as a
// POST with a JSON body, so that neither a link nor a cross-site form nor a
// websocket can change anything. Queries deeper than Options.MaxDepth (10) or
// costlier than Options.MaxComplexity (5,000; list fields multiply what they
// select, see complexity.go) are refused before they run; bodies over
// Options.MaxBodyBytes (1 MiB) are refused unread. With Options.AuthToken,
// /graphql and /metrics need "Authorization: Bearer <token>" (a websocket may
// send it in its connection_init payload instead); /healthz and /readyz stay
// open for the orchestrator.
//
// # Names
//
// The operations and fields the UI and outside tools depend on are fixed (see
// the top of schema.graphqls): add, never rename or remove.
package gql
