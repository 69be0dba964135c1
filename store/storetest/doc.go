// Package storetest is the conformance suite of the catalog store: the behaviour
// every store.Store driver (store/postgres, store/sqlite) must show, checked
// through the interface alone, against a real database.
//
// # Using it from a driver
//
// A driver calls Run from its own test, with a function that opens a fresh, empty,
// migrated store on every call and registers its cleanup:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store {
//			s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "catalog.db"))
//			if err != nil {
//				t.Fatal(err)
//			}
//			t.Cleanup(func() { s.Close() })
//			return s
//		})
//	}
//
// For PostgreSQL, open would create a schema of its own per call (and drop it in
// the cleanup), so that stores never see each other's rows.
//
// open is called from parallel subtests, so it must be safe for concurrent use,
// and each store it returns must be independent of the others. It must not tie
// the store to t.Context(): that context is canceled before the cleanups run.
//
// # What it checks
//
// Run registers one subtest per area, each holding table-driven subtests that
// open their own store and run in parallel:
//
//   - Definitions: SyncDefinitions adds, changes (with the changed fields in the
//     history, newest first), re-indexes and removes assets; re-syncing unchanged
//     definitions writes nothing; secrets stay out of the stored definition.
//   - Append: seqs, data versions and DataChanged, input seqs, code versions,
//     failures, planned events, sources and observations, and validation: every
//     bad event reported at once in a *store.BadEventsError, nothing written.
//     What real builds report is stored or refused as a bad event, never failed
//     in the database: long error texts cut on a character boundary, binary
//     error output, JSON escapes, large batches.
//   - Events: newest first, filters, paging that sees every event once, and the
//     round trip of metadata, times, run and step ids.
//   - State and Partition: ReadState's columnar arrays (hourly DST and monthly
//     keys too), Partition's records and ErrNotFound, PartitionRanges' run-length
//     ranges covering [lo, hi) exactly.
//   - Changes: ReadChanges returns exactly what changed, whole assets when their
//     partitions changed, and, applied by a reader while other goroutines append
//     and re-index, ends equal to a fresh ReadState.
//   - Verify, Schema and Concurrency: a healthy catalog verifies clean, migrating
//     a migrated store does nothing, concurrent appends and definition changes get
//     distinct gap-free seqs, concurrent syncs of the same definitions add once.
//
// # The engine queue
//
// RunQueue checks store.Queue the same way, for a driver that implements it
// (wired as TestQueueConformance: open returns a storetest.QueueStore). Every
// test syncs the queue catalog (the standard catalog plus sales/clean, built
// from sales/raw, and ops/metrics, an independent branch), then drives runs as
// the engine and its workers do, by area:
//
//   - CreateRun: statuses (READY when the upstream steps are done, PENDING
//     otherwise) and the round trip of every field; validation: every invalid run
//     refused, naming the step, nothing written.
//   - Join: at most one step per (asset, partition) in flight across runs; a step
//     holds all its partitions or none, joins every holder (at creation or at its
//     claim) and waits while it holds nothing; joiners go on when the holder
//     succeeds, fail when it fails, and joins never deadlock.
//   - Claim: oldest run first, plan order, Limit; retry backoff; per-asset caps
//     and a run's MaxParallel; attempts numbered from 1 with the watermark as
//     InputSeq and the run's Force; Materialized set exactly when one of the
//     step's partitions, at least, has a recorded materialization, whichever way
//     the step is claimed (ClaimSteps, FinishStep's ClaimNext, FinishSteps' next).
//   - Finish: what FinishStep records for each outcome, a success (one
//     materialization per partition, no more, no fewer; bad events refused and
//     named), a fresh skip, a retry (READY after its backoff, partitions kept; a
//     final failure past MaxAttempts, a cancel when one was requested), a final
//     failure (one failure per partition, everything downstream over run and join
//     deps UPSTREAM_FAILED), a cancel; fencing: a report without the lease, or
//     repeated, is refused with ErrLeaseLost and writes nothing; ClaimNext.
//   - FinishSteps: several reports in one call, each recorded or refused exactly
//     as FinishStep would (checked against a twin store given the same calls, one
//     FinishStep per report: results, steps, attempts, events, logs and partition
//     state read alike), a refused report's error at its index and nothing of it
//     written, the others recorded; retries of steps asked to cancel or out of
//     attempts; next, which claims after the reports, within Limit, caps and
//     MaxParallel, steps the reports made ready included, while the reports' own
//     ClaimNext is ignored, and with no reports just claims; a call repeated
//     after it committed refused whole with ErrLeaseLost, nothing recorded twice.
//   - Lease and Cancel: Heartbeat renews and reports cancel requests; expired
//     leases put steps back (or fail or cancel them) once, late reports fenced;
//     CancelRun and CancelStep, of pending, running and finished steps.
//   - Read: GetRun's and ListRuns' counts, RunSteps' plan order, ListRuns'
//     filters and paging.
//   - Log: numbering from 1 across calls and attempts, paging, the byte cap that
//     drops and counts the oldest lines, long lines cut to their tail, invalid
//     UTF-8 made valid; the lines a report carries (StepResult.Log), recorded
//     with it through FinishStep and FinishSteps after the lines appended before,
//     as given, LogCap capping as AppendStepLog's maxBytes (0: no cap), none for
//     a refused report.
//   - Backfill, ReadRanges and Listen: backfill progress and cancel; ranges read
//     as ReadState reads them; wake-ups after CreateRun and a finish that made a
//     step ready.
//   - Concurrency: workers claiming and finishing a DAG at once (with FinishStep
//     and ClaimNext, and with FinishSteps and next over a run of 200 steps, wide
//     and chained) run every attempt once and record every (asset, partition)
//     once; caps hold at every moment; concurrent expiries put a step back once;
//     overlapping runs created while workers run all end, never two steps over
//     one partition at once.
//
// # Coordination and batch reads
//
// RunCoordination and RunBatchReads check store.Coordination and
// store.BatchReader, for a driver that implements them with the queue (wired as
// TestCoordination and TestBatchReads: open returns a
// storetest.CoordinationStore), on the queue catalog:
//
//   - Lease: a free lease is taken, a held one refused to others (told who
//     holds it) and renewed by its holder (acquired as before, expiring later);
//     after expiry (a 200ms lease, polled) another takes it, never before its
//     ExpiresAt; a release lets another take it at once, a release by anyone
//     else does nothing; 8 holders racing for a free or lapsed lease: exactly
//     one holds it; bad names, holders and ttls refused, naming them.
//   - Tick: recorded once per (schedule, instant), also by 8 racers at once;
//     UpdateTick and ErrNotFound for a tick never recorded or a run that does
//     not exist; LastTicks, each schedule's newest tick whole; Ticks newest
//     first, 50 by default; bad ticks refused, naming the field.
//   - Freshness: the round trip of every field, ids increasing; an unknown
//     asset refused, named, nothing recorded; bad statuses and lags refused;
//     LatestFreshness by time then id; FreshnessEvents' asset, since and limit
//     filters, newest first; MarkNotified, all or none.
//   - BatchReads: each batch read equal, key by key, to the single read
//     (Partition, RunSteps, Attempts), nil or absent where it finds nothing.
//
// The suite sees one store handle at a time: that several processes share one
// PostgreSQL catalog is for the driver's own tests.
//
// Failures name what was expected and what came, so a driver author can tell a
// driver bug from a suite bug by reading the contract in package store.
package storetest
