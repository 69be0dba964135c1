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
// The suite sees one store handle at a time: that several processes share one
// PostgreSQL catalog is for the driver's own tests.
//
// Failures name what was expected and what came, so a driver author can tell a
// driver bug from a suite bug by reading the contract in package store.
package storetest
