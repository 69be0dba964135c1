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
//
// # Coordination and batch reads
//
// Both drivers also implement Coordination, what the processes serving one
// catalog agree on, and BatchReader, the reads of the API's loaders.
//
// Leases (AcquireLease, ReleaseLease, GetLease) name one holder at a time: the
// leader that runs the scheduler and the freshness checker takes the lease and
// renews it well within its ttl; another process takes it over once it lapses,
// or at once when the leader releases it on shutdown. Expiry is judged on one
// clock, the database's for PostgreSQL (so machines whose clocks disagree still
// agree), the store's for SQLite. A takeover is atomic: of holders racing for a
// free or lapsed lease, exactly one gets it, and the others are told who did.
//
// Schedule ticks are recorded once per (schedule, tick time) by any process
// (RecordTick says whether this call recorded it), so a restart or a second
// server neither loses nor doubles a tick; UpdateTick records what the tick
// did (the run it launched, or why it skipped or failed). Freshness changes
// (RecordFreshness) are the checker's status changes, appended all or none,
// listed newest first (by time, then id), with MarkNotified recording when the
// notifiers sent them.
//
// PartitionRecords, StepsOfRuns and AttemptsOf read many records in one query
// each, exactly as Partition, RunSteps and Attempts read them one by one
// (storetest.RunBatchReads holds them to that): what the single read does not
// find is nil, or absent from the map.
package store
