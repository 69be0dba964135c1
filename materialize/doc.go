// Package materialize owns deciding what to build and building it: the planner,
// the catalog snapshot it plans on, runs made from plans, the worker that runs
// their steps, and the executors that run one step; and, for a long-running
// server, the Engine that serves one project (reloadable definitions, cached
// statuses, launching runs and backfills), the Leader election, the Scheduler,
// the FreshnessChecker with its notifiers, and the engine's Metrics.
//
// # Planning
//
// The planner is pure logic over an immutable snapshot. LoadCatalog reads the
// recorded state of every partition of a graph's assets from a store.Store into a
// State; Catalog.Refresh keeps it current by reading only what changed after its
// watermark, and Catalog.State returns the snapshot of the moment, which never
// changes once returned. Compute(graph, state, request) returns a *Plan: every
// target partition's status (fresh, stale, missing, failed, blocked), why, and the
// steps that would make the selection fresh, in dependency order. It does no I/O,
// so the same inputs always give the same plan and planning 10,000 assets is a
// matter of memory, not of round trips.
//
// # Serving
//
// OpenEngine loads a definitions folder, syncs it and reads the catalog; its
// Plan, Launch, LaunchBackfill and Retry are what the API's mutations call,
// Reload what SIGHUP does. Among the processes serving one catalog, the one
// holding the lease row LeaderLease (Leader) runs the Scheduler (each tick
// recorded once before its run is launched) and the FreshnessChecker (each
// status change recorded, then sent to the notifiers). EvaluateFreshness
// evaluates every policy at once over a State, for the checker and the API.
//
// # Runs
//
// Plan.NewRun turns a plan into a store.NewRun: one step per asset and contiguous
// batch of partitions (at most the asset's batch.max_partitions), with the steps it
// needs in the run as dependencies. The store records it (store.Queue.CreateRun)
// and from then on owns the run's state: which steps are ready, who runs what, at
// most one step in flight per (asset, partition) across runs.
//
// # Workers
//
// A Worker runs ready steps from a QueueStore, Parallel at a time. It claims them
// under a lease it renews by heartbeat (a third of the lease), and puts back the
// steps of workers whose lease expired; any number of workers, in any number of
// processes, may share one PostgreSQL store. It wakes on the store's notifications
// and polls besides.
//
// For each claimed step it checks, just before starting, whether the step is still
// needed (stillFresh: every partition materialized with the current code version
// and upstream set, no input changed since; skipped for a step never materialized
// and for forced runs): if not, the step ends SKIPPED_FRESH. Otherwise the asset's
// executor runs, its output lines go to the step's log, and the end is reported:
// success with one materialization per partition, or failure, retried with
// exponential backoff and jitter while the asset's retries allow.
//
// Reports go through one completer per worker, which records every report that is
// waiting with one store.Queue.FinishSteps call (one transaction in the common
// case) and claims, in the same transaction, a step for each slot they free. A
// busy worker thus pays one commit for many steps, and an idle one reports each
// step as soon as it ends. The last lines of a step's log travel with its report.
// Reports are fenced by the lease, so a report that reaches the store twice (the
// first answer was lost) or too late (the lease expired) is refused, never
// recorded twice.
//
// When its context ends, a worker stops the attempts in progress and reports them
// as failed with an immediate retry, so another worker takes them at once.
//
// # Executors
//
// Executors maps an asset's compute to an Executor: a command (argv, placeholders
// substituted per argument, the FRESHET_* environment, FRESHET_OUTPUT for the
// step's data version and metadata, SIGTERM then SIGKILL to its process group on
// cancel), a SQL file in one transaction on a named PostgreSQL connection with bind
// parameters, an HTTP POST, or a Go function (assets.FuncCompute) for programs that
// embed Freshet. Close releases the connection pools and files they hold.
package materialize
