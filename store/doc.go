// Package store owns the catalog's persistence: the Store interface that the
// PostgreSQL (store/postgres) and embedded SQLite (store/sqlite) drivers implement,
// the types they exchange, and the rules both follow, so that one conformance suite
// (store/storetest) can hold them to the same behaviour.
//
// # What the catalog keeps
//
// Definitions. SyncDefinitions records the assets a project declares: code version,
// upstream assets and partitions definition, plus the whole definition for display.
// Every change is kept in a history; an asset that leaves the definitions is marked
// removed, never deleted.
//
// The event log. Append records materializations, observations, failures and
// planned builds. Each event gets a seq from the catalog's clock, global and
// increasing, handed out in commit order: once a reader has seen seq N it has seen
// everything at or below N. Definition changes take seqs from the same clock, so
// the watermark orders both. The log is append-only; the database refuses updates
// and deletes of it.
//
// Partition state. In the transaction that appends events, the state of every
// (asset, partition) they touch is derived from them (PartitionRecord.Apply is the
// rule): the latest success, its data version and input seq, the code version and
// dep set it was built with, the data-changed seq (the latest success whose data
// version differed from the one before), and whether the latest attempt failed.
// Verify replays the log and checks the state against it.
//
// # How the planner reads it
//
// ReadState returns the state as columnar arrays per asset, indexed by partition
// index (AssetState), ready for the planner. ReadChanges returns only what changed
// after a watermark, so a long-running process keeps its copy current without
// reloading; an asset whose partitions definition changed comes back in full.
//
// # Choosing a driver
//
// PostgreSQL is the production store: many processes, many machines. SQLite is the
// embedded default for one process: a file beside the definitions. Both apply their
// migrations (package migrations) when opened.
package store
