// Package postgres is the PostgreSQL driver of the catalog store: the production
// store.Store, safe for many processes on many machines sharing one database.
//
// # Opening
//
//	s, err := postgres.Open(ctx, "postgres://freshet:secret@db.internal:5432/freshet?sslmode=require")
//	if err != nil { … }
//	defer s.Close()
//
// The URL is a libpq-style URL, postgres:// or postgresql:// (the key=value form is
// not accepted). Besides the usual parts, its query string may carry:
//
//   - libpq parameters: sslmode, sslrootcert, sslcert, sslkey, connect_timeout,
//     application_name, target_session_attrs, …
//   - pool settings: pool_max_conns (default: the larger of 4 and the number of
//     CPUs), pool_min_conns, pool_max_conn_lifetime (default 1h),
//     pool_max_conn_idle_time (default here 5m), pool_health_check_period
//     (default 1m);
//   - any other parameter, which is sent to the server as a run-time setting of
//     every connection. search_path selects the schema the catalog lives in, so one
//     database can hold several catalogs:
//     postgres://…/freshet?search_path=team_a. The schema must exist; the tables
//     are created in it.
//
// A password may also come from PGPASSWORD or ~/.pgpass, as with psql.
//
// Open creates the pool and applies pending migrations (package migrations) before
// it returns, so a store it returns is ready. Processes that start at once on the
// same schema are serialized by a session lock (one per schema) while migrating:
// the second finds nothing to do.
// WithoutMigrations skips this (Open then only checks that the server answers);
// Migrate and SchemaVersion serve `freshet migrate`. WithPoolConfig adjusts the
// parsed pool configuration, WithClock replaces time.Now for event and
// definition-change times.
//
// # How writes are ordered
//
// The catalog_clock table has one row holding the last seq handed out. Every
// transaction that writes the catalog first takes the row's lock, held until the
// transaction ends: Append by advancing it with UPDATE … RETURNING, SyncDefinitions
// with SELECT … FOR UPDATE (it advances the clock once it knows how many changes
// it writes).
// Writers are therefore serialized and commit in seq order: a reader that sees
// watermark N sees every event and definition change at or below N, and none above.
// Readers never take the lock; ReadState, ReadChanges and Verify run in one
// REPEATABLE READ read-only transaction each, so the watermark and the rows they
// return are from one snapshot.
//
// Because writers are serialized, Append knows exactly which partition_state rows
// exist: it reads those its events touch (by index range, one index descent per
// run of consecutive partitions), folds the events into them in memory
// (store.PartitionRecord.Apply) and writes new rows with COPY straight into the
// table, existing ones with a pipelined batch of UPDATEs (or, from 256 rows on,
// staged with COPY and updated in one join). Events are written with COPY. COPY
// rows are encoded directly in PostgreSQL's binary format, without an allocation
// per value. An Append of fewer than 64 events (a step that finished) instead
// sends all its writes as one pipelined batch of statements: one round trip. One Append of 1,000,000 events is allowed, but chunks of 10,000 to
// 50,000 keep transactions short: the clock lock blocks every other writer while
// an Append runs.
//
// What PostgreSQL cannot store is refused as a bad event: a data version, code
// version or dep key with a NUL byte or invalid UTF-8, metadata with a \u0000
// escape. Error texts are never refused: NUL bytes and invalid UTF-8 in them are
// replaced with U+FFFD.
//
// Code versions and dep sets recorded with materializations are numbered per asset
// from 0 (code_versions, dep_sets), so the columnar state holds small integers. Ids
// are assigned under the clock lock; the store caches those it has seen committed,
// as it caches parsed partitions definitions, keyed by the seq of the definition
// change that set them.
//
// # Reading state
//
// ReadState reads partition_state in one pass in storage order, decoding the
// binary wire format of each row without allocating, and places each row at its
// partition index. ReadChanges finds the assets whose definition changes after the
// watermark added them or changed their partitions (returned whole) and reads the
// other changed rows by the index on last_seq. Verify streams the event log and the
// state through two server-side cursors of one snapshot, merging them partition by
// partition.
//
// # The engine queue
//
// The queue (store.Queue: runs, steps, attempts, leases, logs, backfills) lives in
// the tables of migrations 00002 to 00004, beside the catalog:
//
//   - runs and steps: a step's status (PENDING, READY, RUNNING, then a final one),
//     its attempt count, and while RUNNING its lease (lease_owner, the worker, and
//     lease_expires_at); attempts: one row per attempt, with the catalog watermark
//     it was claimed at (input_seq);
//   - step_deps: a step's dependencies, kind 'run' (a step of its run it needs) or
//     'join' (a step of another run holding one of its partitions);
//   - inflight_partitions: one row per (asset, partition) queued or running, its
//     primary key the guarantee that one step at a time builds a partition. A step
//     holds the rows of all its partitions or of none;
//   - step_logs and step_log_stats: a step's log lines, numbered from 1 across
//     attempts, and what its cap dropped.
//
// Every change is a transaction of a few pipelined round trips (pipeTx): the
// reads that decide it travel with the BEGIN, the writes with the COMMIT.
//
// Claims. freshet_claim_steps, a PL/pgSQL function (migration 00004), claims in
// one call: active runs oldest first, each run's READY steps in plan order, picked
// with FOR NO KEY UPDATE SKIP LOCKED, so claimers never wait on each other's
// steps nor take the same one. In the common case (the steps hold their
// partitions, their assets have no cap) one statement picks and claims the steps a
// run may still give. Caps (an asset's concurrency, a run's MaxParallel) are
// counted under the lock of the asset's or run's row; ClaimSteps waits for those
// rows, the claim that ends a report passes over rows another transaction holds.
// A step that holds no partition takes them all or, when any is held, joins every
// holder (locked FOR SHARE first, so that no holder ends unaware of the join) and
// goes back to PENDING. A claimed step comes with the watermark read in the claim
// (its attempt's InputSeq) and whether any of its partitions has a success
// recorded (Materialized), in one snapshot.
//
// Fencing. A report (FinishStep, FinishSteps) is recorded only when its step is
// RUNNING, leased to its worker, for its attempt, checked under the step's row
// lock; otherwise it is refused with store.ErrLeaseLost and writes nothing.
// ExpireLeases puts back (or fails) steps whose lease lapsed, passing over those a
// report holds. A report that arrives after is refused, so repeating a call whose
// outcome is unknown is safe.
//
// Batching. FinishSteps records consecutive successes, fresh skips and retries in
// one transaction of two round trips, whatever their number (more only when events
// bring a code version the store has not cached, or are many enough for COPY).
// With the BEGIN: the locks of their runs, then of their steps, each in id order
// and in one statement, the catalog clock and what their events need, the
// in-flight rows of the steps that end. With the COMMIT: the events and partition
// state, the retries, the ends of all the steps (which lock their dependents) in
// one statement, the log lines, the dependents made READY and the runs ended in
// one statement, and the claim for next. A run's lock is taken once for all its
// steps of the call, where one report per transaction would queue the run's
// reports one behind the other. A final failure or a cancel, whose cascade reaches
// other steps, is recorded alone, in order; a refused report costs nothing; a
// retry the store refuses (no attempt left, a cancel requested) splits the batch
// there. Each report's result is the one FinishStep would give it, the reports
// recorded one after the other. FinishStep is a batch of one.
//
// Logs. AppendStepLog appends in one round trip and commits without waiting for
// the WAL to reach the disk (a crash may lose the last fraction of a second of a
// log, never state). The lines a report carries are written in its transaction,
// durably, after the lines appended before. Both take the step's stats row lock
// (one appender at a time per step), number the lines after every line the log
// ever had, and drop the oldest lines beyond the cap in one DELETE bounded by line
// number, counting them.
//
// Notifications. A transaction that makes steps READY and leaves some unclaimed
// (or creates a run, or puts a step back) sends NOTIFY freshet_steps, delivered
// at commit. Listen holds one connection of its own outside the pool, named after
// the pool's application_name with " listen" (or "freshet listen") in
// pg_stat_activity, reconnects with backoff when it drops and then wakes its
// reader once. A notification is a hint: workers also
// poll, so a lost one delays a claim, never loses a step.
//
// Lock order. Writers of the queue take row locks in one order: runs, then steps,
// each in id order; then the catalog clock; then in-flight rows, in key order;
// then dependents (PENDING steps) and cascades, in id order; then backfills.
// Claims lock capped assets then runs (waiting only in ClaimSteps), steps SKIP
// LOCKED, holders FOR SHARE. Cascades across runs (a failure or cancel reaching
// steps that joined another run) and claims waiting for a holder may still meet
// another writer the other way: the deadlock is detected and the loser's
// transaction is run again (up to five times, as after a serialization failure).
//
// # Coordination and batch reads
//
// Coordination (coordination.go) keeps the leases, schedule_ticks and
// freshness_events tables of migration 00002. AcquireLease is one INSERT … ON
// CONFLICT (name) DO UPDATE … WHERE the lease is the caller's or lapsed,
// judged with now(), the database's clock: holders racing for a lease are
// serialized by its row (or, for a new one, its primary key), and the losers
// read who won. ReleaseLease ends the lease at now(), keeping the row and its
// last holder. RecordTick is an INSERT … ON CONFLICT DO NOTHING on the primary
// key (schedule, tick_at); LastTicks skips through that index, one descent per
// schedule. RecordFreshness looks the assets up, then inserts the changes in
// one pipelined transaction.
//
// The batch reads (batch_read.go) are one statement each: PartitionRecords
// joins the keys, passed as two arrays (unnest … WITH ORDINALITY), to the
// state's primary key; StepsOfRuns and AttemptsOf take an array of ids. They
// read the columns of Partition, RunSteps and Attempts with the same scans.
//
// # Errors
//
// Errors say what was being done ("append events: …"). A bad event in an Append is
// a *store.BadEventsError listing every bad event, returned unwrapped; nothing is
// written then, not even the seqs. Unknown assets and partitions wrap
// store.ErrNotFound.
//
// # Tests
//
// The tests need a real PostgreSQL: FRESHET_TEST_DATABASE_URL, or by default
// postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable. Package pgtest gives
// each test a fresh schema there and drops it afterwards; other packages' tests use
// it too. The benchmarks (go test -run '^$' -bench . ./store/postgres) measure bulk
// appends, cold state loads and incremental reads at production sizes, and the
// queue's loop: BenchmarkClaimFinish (a chain of steps, each report claiming the
// next) and BenchmarkFinishSteps (reports in batches of 1, 8 and 32).
package postgres
