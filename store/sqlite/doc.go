// Package sqlite is the embedded catalog store: store.Store on one SQLite file,
// with the pure-Go driver modernc.org/sqlite (no cgo, nothing to install). It is
// Freshet's default when no PostgreSQL URL is given, and is meant for one process
// at a time: a laptop, a CI job, a single-server deployment.
//
// # Where the file lives
//
// Open takes a file path. The CLI uses .freshet/freshet.db beside the definitions
// (`--db sqlite:PATH` names another); Open creates the folder when it is missing.
// SQLite keeps two companion files next to it while it is open, freshet.db-wal and
// freshet.db-shm: copy or back up the three together, or only after Close. The
// path ":memory:" opens a private in-memory catalog that is gone at Close, for
// tests and experiments.
//
//	s, err := sqlite.Open(ctx, ".freshet/freshet.db")
//	if err != nil { … }
//	defer s.Close()
//
// # What runs at Open
//
// Open connects, switches the file to WAL journaling (a persistent setting of the
// file), and applies the pending schema migrations (package migrations, goose) in
// a transaction each, so a fresh file gets the whole schema and an up-to-date one
// is left alone. WithoutMigrations skips that for tools that only want to look;
// Migrate and SchemaVersion do it explicitly (`freshet migrate`). Should two
// processes migrate the same file at once, the second finds the work done.
//
// Every connection gets the same settings through the DSN: a busy timeout (10s,
// WithBusyTimeout), foreign keys enforced and, for writes, synchronous=NORMAL,
// which in WAL mode never corrupts the file; a power cut can lose the last
// commits, not the database.
//
// # One writer, many readers
//
// SQLite lets one transaction write at a time. The store owns two connection
// pools: a writer pool of exactly one connection, whose transactions begin with
// BEGIN IMMEDIATE (they take the write lock up front and never fail half-way
// upgrading a read lock), and a pool of read-only connections (four by default,
// WithReaders). Writers of this process queue in Go for the writer connection,
// so they never see SQLITE_BUSY; another process writing the same file is waited
// for up to the busy timeout.
//
// In WAL mode readers do not block the writer and the writer does not block
// readers. Each read method runs in one read transaction, so everything it
// returns comes from one snapshot: ReadState, ReadChanges and Verify never see
// half an Append, and the watermark they report matches the rows they read.
//
// # The catalog clock
//
// Seqs come from the catalog_clock row. Every write transaction that appends
// events or records definition changes advances it first, under the write lock,
// so seqs are handed out in commit order: once a reader has seen seq N, every
// change at or below N is visible to it. ReadChanges relies on that to never miss
// an event. A rejected Append rolls the clock back with everything else.
//
// # Append
//
// One Append is one transaction: advance the clock by the number of events, read
// the assets they name, validate and complete them with store.Prepare (every bad
// event is reported in one *store.BadEventsError and nothing is written), read the
// stored state of the partitions they touch (one query per asset), fold the events
// into it with store.PartitionRecord.Apply, then write events and state rows with
// multi-row INSERTs on statements prepared once per store. Code versions and dep
// sets are numbered per asset (code_versions, dep_sets); the ids a transaction
// creates are cached only after it commits. Bulk appends run at roughly 100,000
// events a second; a single-event Append costs a fraction of a millisecond.
//
// # The engine queue
//
// The same file is the engine's queue (store.Queue): runs, their steps and
// step_deps, the attempts of each step, the in-flight partitions, step logs and
// backfills live in tables beside the catalog's, and a step's end commits in one
// transaction with everything it changes: its events (appended by Append's own
// code), the partition state, its dependents made READY or UPSTREAM_FAILED, the
// run's and the backfill's status.
//
// One writer. Every queue change is one BEGIN IMMEDIATE transaction on the
// writer connection, and SQLite runs them one at a time. A claim therefore sees
// every claim committed before it, and what it counts stays true until it
// commits: the per-asset concurrency caps and a run's MaxParallel are exact
// without locking any row (PostgreSQL needs its row locks for that). An
// (asset, partition) is held by at most one step through the primary key of
// inflight_partitions.
//
// The store's clock. Lease expiries, retry backoffs (a READY step's not_before)
// and the times recorded on runs, steps and attempts come from the store's clock
// (time.Now, or WithClock), never from SQLite's: ExpireLeases puts back the steps
// whose lease ended before that clock's now, and a test moves leases and backoffs
// forward by moving its clock instead of waiting.
//
// Fenced reports. FinishStep records an attempt's end only while the step is
// RUNNING under the reporting worker's lease for that attempt; a late report (its
// lease expired and the step was put back, or it was canceled) gets
// store.ErrLeaseLost and writes nothing. Lines a report carries (StepResult.Log)
// are written in its transaction, after those appended before, so that a short
// step's log costs no transaction of its own.
//
// Batches of reports. FinishSteps records many reports in one transaction, hence
// one commit, and claims the steps for next at its end. Each report runs
// FinishStep's own code in a savepoint of its own: a refused one (lease lost,
// bad events, an unknown outcome) is rolled back to its savepoint and gets its
// error at its index, while the others commit. An error of the transaction
// itself (SQLite aborted it, the context ended) fails the whole call and nothing
// is written, so the call can be repeated as it is. The savepoints'
// sub-journals stay in memory (temp_store=MEMORY on the writer). On two shared
// cores a worker finishing and claiming one step per
// transaction runs about 1,500 to 2,000 steps a second, with batches of 32 about
// 4,500 (BenchmarkClaimFinish, BenchmarkFinishSteps).
//
// Logs. Lines are rows of step_logs, numbered from 1 per step across attempts;
// step_log_stats keeps each step's kept and dropped totals, so an append within
// the cap reads one row besides writing its lines. Past the cap the oldest lines
// holding the excess go in one DELETE and are counted; lines the cap would drop
// at once are never written, and a line longer than the cap keeps its tail.
//
// A claimed step is Materialized when partition_state records a success for any
// of its partitions: one primary-key probe per partition, up to the first found.
//
// Listen is an in-process broadcast: after a commit that made steps claimable
// (a new run, a step's end promoting its dependents, a retry without backoff, an
// expired lease) every listener of the same *Store is woken, once, however many
// steps became ready. A SQLite store serves one process, so no other process is
// heard; workers poll as well.
//
// # Coordination and batch reads
//
// Coordination (coordination.go) keeps the leases, schedule_ticks and
// freshness_events tables. Each write is one transaction on the writer, so
// AcquireLease reads the lease and takes, renews or refuses it with no other
// writer in between; leases expire on the store's clock (WithClock), like the
// queue's. A tick is recorded once by the primary key (schedule, tick_at).
// The batch reads (batch_read.go) pass their keys as one JSON array
// (json_each) and read the columns of Partition, RunSteps and Attempts with
// the same scans, in one read transaction.
//
// # Storage conventions
//
// Times are unix microseconds (integers) and come back as UTC time.Time; UUIDs and
// JSON are text; booleans 0 and 1. Definitions keep their dep keys one per line
// (store.JoinKeys) and their partitions definition as JSON
// (store.MarshalPartitions). The event log is append-only: triggers refuse UPDATE
// and DELETE on it.
package sqlite
