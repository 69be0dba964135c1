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
// appends, cold state loads and incremental reads at production sizes.
package postgres
