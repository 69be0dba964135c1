package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/freshetdev/freshet/assets"
	"github.com/freshetdev/freshet/store"
)

// smallAppend is the event count below which an Append sends all its writes in
// one pipelined batch of statements; from it on, COPY is cheaper.
const smallAppend = 64

const insertEventSQL = `INSERT INTO events (seq, kind, asset_id, partition_key, at, run_id, step_id,
	data_version, data_changed, input_seq, code_version, dep_set_id, metadata, error)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`

var eventColumnNames = []string{"seq", "kind", "asset_id", "partition_key", "at", "run_id", "step_id",
	"data_version", "data_changed", "input_seq", "code_version", "dep_set_id", "metadata", "error"}

// Append appends events in one transaction: it takes len(events) seqs from the
// catalog clock, validates the events against the synced definitions
// (store.Prepare), folds them into the state of the partitions they touch
// (PartitionRecord.Apply) and writes the events and the state rows. A bad event
// fails the whole call with a *store.BadEventsError and nothing is written.
func (s *Store) Append(ctx context.Context, events []store.Event) ([]store.Event, error) {
	if len(events) == 0 {
		return []store.Event{}, nil
	}
	if len(events) > store.MaxEventsPerAppend {
		// Prepare reports the size error before it looks at any event.
		_, err := store.Prepare(events, nil, 0, time.Time{})
		return nil, err
	}
	out, interned, err := s.appendTx(ctx, events)
	if err != nil {
		var bad *store.BadEventsError
		if errors.As(err, &bad) {
			return nil, err
		}
		return nil, fmt.Errorf("append events: %w", err)
	}
	s.cache.remember(interned)
	if len(events) >= smallAppend {
		s.analyzeAfterBulk(ctx, len(events))
	}
	return out, nil
}

// analyzeAfterBulk refreshes the planner's statistics of the event log and the
// partition state after a bulk append that grew them by more than a tenth, as
// autovacuum would, because the server's autovacuum may be off or not have come
// round yet: without statistics the planner takes a fresh catalog's tables for
// empty and reads an asset's whole history to show its ten newest events. A
// failure only costs speed, so it is logged nowhere and returned to no one.
func (s *Store) analyzeAfterBulk(ctx context.Context, appended int) {
	var rows float64
	if err := s.pool.QueryRow(ctx, `SELECT reltuples FROM pg_class WHERE oid = 'events'::regclass`).Scan(&rows); err != nil {
		return
	}
	// reltuples is -1 before the first ANALYZE (PostgreSQL 14 on).
	if rows >= 0 && float64(appended) < 50+0.1*rows {
		return
	}
	_, _ = s.pool.Exec(ctx, `ANALYZE events, partition_state`)
}

// appendTx does Append's work in one transaction. It returns the interning tables it
// read or extended, for the cache once the transaction committed.
//
// A small Append (a step's events) costs two round trips: the BEGIN, the clock,
// the synced definitions and the state of the touched partitions in one batch, and
// every write with the COMMIT in another (three when a code version is new to the
// cache). A large one reads the state by index range and writes with COPY.
func (s *Store) appendTx(ctx context.Context, events []store.Event) ([]store.Event, map[int64]*internTable, error) {
	w := s.newAppendWork(events, len(events) < smallAppend)
	b := txBatch(writeTx)
	if w.small() {
		// Key lookups only: plan them as the queue's statements are planned.
		b.Queue(planSettingsSQL)
	}
	w.queueLoad(b)
	tx, results, err := s.beginBatch(ctx, b)
	if err != nil {
		return nil, nil, err
	}
	defer tx.release()
	if w.small() {
		if _, err := results.Exec(); err != nil {
			_ = results.Close()
			return nil, nil, err
		}
	}
	if err := w.load(results); err != nil {
		_ = results.Close()
		return nil, nil, err
	}
	if err := results.Close(); err != nil {
		return nil, nil, err
	}
	if err := w.prepare(ctx, tx); err != nil {
		return nil, nil, err
	}
	if w.small() {
		b := &pgx.Batch{}
		w.queueWrites(b)
		if err := tx.commitWith(ctx, b, nil); err != nil {
			return nil, nil, fmt.Errorf("write events and partition state: %w", err)
		}
	} else {
		if err := w.write(ctx, tx); err != nil {
			return nil, nil, err
		}
		if err := tx.Commit(ctx); err != nil {
			return nil, nil, fmt.Errorf("commit: %w", err)
		}
	}
	return w.recorded(), w.in.tables, nil
}

// appendWork is an Append's work inside a transaction, in phases, so that its
// statements can share round trips with those of a caller that appends as part of
// a larger transaction (FinishStep records a step's end with its events):
//
//   - queueLoad adds to a batch the statements that take the catalog clock's lock
//     and read what the events need: the synced definitions of their assets and,
//     for a small append, the state of the partitions they touch, by key;
//   - load reads those statements' results;
//   - prepare validates the events (store.Prepare), interns their code and folds
//     them into the state of their partitions (reading it by index range first, for
//     a large append);
//   - queueWrites adds every write to a batch (a small append), or write does them
//     with COPY.
//
// The statements run in the order queued, so everything is read after the clock's
// lock is held: no other writer of the catalog runs until the transaction ends.
type appendWork struct {
	s      *Store
	events []store.Event
	byKey  bool // the touched state is read by key with the clock, not by range after it
	// lockFirst takes the clock's lock without advancing it; the writes advance it
	// by the number of events prepared. With lenient, prepare then drops the events
	// store.Prepare refuses instead of failing: the failures a step's end records
	// must not keep it from ending (its asset may have been redefined meanwhile).
	lockFirst, lenient bool

	keys []string // the events' asset keys, each once
	// preload are the keys of the assets whose code versions and dep sets are
	// read with the clock, the cache not holding them; preloaded what was read.
	preload   []string
	preloaded []internedRow
	watermark int64
	synced    map[assets.Key]*store.SyncedAsset
	loaded    map[partitionKey]*partitionRow // state read by key

	prepared []store.PreparedEvent
	in       *interner
	codes    []codeIDs
	parts    *touchedPartitions
}

func (s *Store) newAppendWork(events []store.Event, byKey bool) *appendWork {
	return &appendWork{s: s, events: events, byKey: byKey}
}

// small reports whether the writes go in one batch of statements rather than COPY.
func (w *appendWork) small() bool { return len(w.events) < smallAppend }

// loadStateByKeySQL reads the state of partitions by (asset key, partition key),
// probing the primary key once per partition (a LATERAL subquery the planner
// cannot flatten: joined freely, a planner without statistics reads every row of
// the asset instead).
const loadStateByKeySQL = `
	SELECT ps.asset_id, ps.partition_key, ps.success_seq, ps.materialized_at, ps.data_version,
	       ps.data_changed_seq, ps.input_seq, ps.code_version_id, ps.dep_set_id, ps.failed, ps.failed_seq, ps.last_seq
	FROM unnest($1::text[], $2::text[]) AS k(key, partition_key)
	JOIN assets a ON a.key = k.key,
	LATERAL (SELECT * FROM partition_state ps WHERE ps.asset_id = a.id AND ps.partition_key = k.partition_key OFFSET 0) ps`

// queueLoad adds to b the statements that advance the catalog clock by the number of
// events, taking its lock, and read the synced definitions of the events' assets
// and, when byKey, the stored state of the partitions they name.
func (w *appendWork) queueLoad(b *pgx.Batch) {
	seen := make(map[assets.Key]bool)
	type pair struct{ key, partition string }
	seenPair := make(map[pair]bool)
	var pairKeys, pairPartitions []string
	for i := range w.events {
		e := &w.events[i]
		// A key PostgreSQL cannot hold names no asset (Prepare says so), and must
		// not reach the query.
		if !isStorableText(string(e.Asset)) {
			continue
		}
		if !seen[e.Asset] {
			seen[e.Asset] = true
			w.keys = append(w.keys, string(e.Asset))
		}
		if p := (pair{string(e.Asset), e.Partition}); w.byKey && !seenPair[p] && isStorableText(e.Partition) {
			seenPair[p] = true
			pairKeys, pairPartitions = append(pairKeys, p.key), append(pairPartitions, p.partition)
		}
	}
	if w.lockFirst {
		b.Queue(`SELECT seq FROM catalog_clock WHERE id = 1 FOR UPDATE`)
	} else {
		b.Queue(advanceClockSQL, int64(len(w.events)))
	}
	b.Queue(`SELECT id, key, partitions, partitions_seq, code_version, deps, is_source, removed_seq IS NOT NULL
		FROM assets WHERE key = ANY($1::text[])`, w.keys)
	if w.byKey {
		b.Queue(loadStateByKeySQL, pairKeys, pairPartitions)
	}
	// The code versions and dep sets of assets materialized here whose ids the
	// cache does not hold (a process's first materialization of each asset):
	// read now, with the clock, rather than in a round trip of their own when the
	// ids are assigned.
	seenKey := map[string]bool{}
	for i := range w.events {
		k := string(w.events[i].Asset)
		if w.events[i].Kind == store.Materialization && !seenKey[k] && isStorableText(k) && !w.s.cache.hasInterned(k) {
			seenKey[k] = true
			w.preload = append(w.preload, k)
		}
	}
	if len(w.preload) > 0 {
		b.Queue(preloadInternSQL, w.preload)
	}
}

// preloadInternSQL reads every code version and dep set id of the assets of the
// keys $1 (as interner.load does by asset id).
const preloadInternSQL = `SELECT a.id, x.id, x.value, x.dep_set FROM assets a,
	LATERAL (SELECT c.id, c.code_version AS value, false AS dep_set FROM code_versions c WHERE c.asset_id = a.id
	         UNION ALL
	         SELECT d.id, d.deps, true FROM dep_sets d WHERE d.asset_id = a.id) x
	WHERE a.key = ANY ($1::text[])`

// load reads the results of the statements queueLoad queued.
func (w *appendWork) load(results pgx.BatchResults) error {
	n := int64(len(w.events))
	if w.lockFirst {
		n = 0
	}
	var end int64
	if err := results.QueryRow().Scan(&end); err != nil {
		return clockError(err)
	}
	w.watermark = end - n
	rows, err := results.Query()
	if err != nil {
		return fmt.Errorf("read synced assets: %w", err)
	}
	if w.synced, err = w.s.scanSynced(rows, len(w.keys)); err != nil {
		return fmt.Errorf("read synced assets: %w", err)
	}
	if w.byKey {
		rows, err = results.Query()
		if err != nil {
			return fmt.Errorf("read partition state: %w", err)
		}
		w.loaded = map[partitionKey]*partitionRow{}
		err = scanPartitionRows(rows, func(k partitionKey) *partitionRow {
			row := &partitionRow{partitionKey: k}
			w.loaded[k] = row
			return row
		})
		if err != nil {
			return fmt.Errorf("read partition state: %w", err)
		}
	}
	if len(w.preload) > 0 {
		rows, _ := results.Query()
		var r internedRow
		_, err := pgx.ForEachRow(rows, []any{&r.assetID, &r.id, &r.value, &r.isDepSet}, func() error {
			w.preloaded = append(w.preloaded, r)
			return nil
		})
		if err != nil {
			return fmt.Errorf("read code versions: %w", err)
		}
	}
	return nil
}

// scanPartitionRows reads partition_state rows of (asset_id, partition_key,
// success_seq, materialized_at, data_version, data_changed_seq, input_seq,
// code_version_id, dep_set_id, failed, failed_seq, last_seq) into the rows rowOf
// returns (nil: skip the row).
func scanPartitionRows(rows pgx.Rows, rowOf func(partitionKey) *partitionRow) error {
	defer rows.Close()
	for rows.Next() {
		var (
			k              partitionKey
			r              store.PartitionRecord
			materializedAt pgtype.Timestamptz
			dataVersion    pgtype.Text
			codeID, depID  pgtype.Int4
		)
		if err := rows.Scan(&k.assetID, &k.partition, &r.SuccessSeq, &materializedAt, &dataVersion,
			&r.DataChangedSeq, &r.InputSeq, &codeID, &depID, &r.Failed, &r.FailedSeq, &r.LastSeq); err != nil {
			return err
		}
		row := rowOf(k)
		if row == nil {
			continue
		}
		r.MaterializedAt = materializedAt.Time.UTC()
		r.DataVersion = dataVersion.String
		row.rec = r
		row.exists = true
		row.hasCode = codeID.Valid && depID.Valid
		row.code = codeIDs{version: codeID.Int32, deps: depID.Int32}
	}
	return rows.Err()
}

// prepare validates the events against the synced definitions, interns the code
// of their materializations and folds them into the state of their partitions. A
// bad event fails it with a *store.BadEventsError, unwrapped.
func (w *appendWork) prepare(ctx context.Context, tx pgx.Tx) error {
	unfit := unstorable(w.events)
	prepared, err := store.Prepare(w.events, func(k assets.Key) *store.SyncedAsset { return w.synced[k] },
		w.watermark, w.s.now())
	for w.lenient && err != nil {
		var bad *store.BadEventsError
		if !errors.As(err, &bad) {
			break
		}
		drop := map[int]bool{}
		for _, e := range bad.Errors {
			drop[e.N] = true
		}
		kept := make([]store.Event, 0, len(w.events))
		for i, e := range w.events {
			if !drop[i] {
				kept = append(kept, e)
			}
		}
		w.events = kept
		prepared, err = store.Prepare(w.events, func(k assets.Key) *store.SyncedAsset { return w.synced[k] },
			w.watermark, w.s.now())
	}
	if err != nil {
		var bad *store.BadEventsError
		if errors.As(err, &bad) {
			mergeBadEvents(bad, unfit)
		}
		return err
	}
	if len(unfit) > 0 {
		bad := &store.BadEventsError{}
		mergeBadEvents(bad, unfit)
		return bad
	}
	for i := range prepared {
		prepared[i].Error = storableText(prepared[i].Error)
	}
	w.prepared = prepared
	w.in = newInterner(&w.s.cache)
	for _, k := range w.preload {
		if a := w.synced[assets.Key(k)]; a != nil {
			w.in.seed(a.ID, w.preloaded)
		}
	}
	if w.codes, err = w.in.resolve(ctx, tx, prepared); err != nil {
		return fmt.Errorf("intern code versions: %w", err)
	}
	if w.byKey {
		w.parts = w.touchedByKey()
	} else if w.parts, err = loadTouched(ctx, tx, prepared); err != nil {
		return fmt.Errorf("read partition state: %w", err)
	}
	w.parts.fold(prepared, w.codes)
	return nil
}

// check validates events as prepare does, alone: it returns the error prepare
// would return for them.
func (w *appendWork) check(events []store.Event) error {
	unfit := unstorable(events)
	_, err := store.Prepare(events, func(k assets.Key) *store.SyncedAsset { return w.synced[k] }, w.watermark, w.s.now())
	var bad *store.BadEventsError
	switch {
	case errors.As(err, &bad):
		mergeBadEvents(bad, unfit)
		return err
	case err != nil:
		return err
	case len(unfit) > 0:
		bad = &store.BadEventsError{}
		mergeBadEvents(bad, unfit)
		return bad
	}
	return nil
}

// touchedByKey returns the touched partitions with the state load read by key.
func (w *appendWork) touchedByKey() *touchedPartitions {
	t := &touchedPartitions{index: make(map[partitionKey]int)}
	for i := range w.prepared {
		p := &w.prepared[i]
		if !p.Kind.Touches() {
			continue
		}
		k := partitionKey{p.AssetID, p.Partition}
		if _, ok := t.index[k]; ok {
			continue
		}
		t.index[k] = len(t.rows)
		row := partitionRow{partitionKey: k}
		if loaded := w.loaded[k]; loaded != nil {
			row = *loaded
		}
		t.rows = append(t.rows, row)
	}
	return t
}

// writeSmallSQL does every write of a small append but the new code versions and
// dep sets, in one statement: advance the clock by $1 (with lockFirst; 0
// otherwise: the load advanced it), insert the events ($2 … $15, column by
// column) and insert or update the partition state ($16 … $29, with $29 saying
// which rows exist). From setWrites events on, one statement rather than one per
// row: a statement's fixed cost, not the rows, is most of a small append's time
// on the server; below, the statements of one row each cost less than the larger
// one.
const writeSmallSQL = `WITH clock AS (UPDATE catalog_clock SET seq = seq + $1 WHERE id = 1 AND $1 > 0),
	ev AS (
		INSERT INTO events (seq, kind, asset_id, partition_key, at, run_id, step_id, data_version, data_changed,
			input_seq, code_version, dep_set_id, metadata, error)
		SELECT e.seq, e.kind, e.asset_id, e.partition_key, e.at, e.run_id, e.step_id, e.data_version, e.data_changed,
			e.input_seq, e.code_version, e.dep_set_id, e.metadata::jsonb, e.error
		FROM unnest($2::bigint[], $3::text[], $4::bigint[], $5::text[], $6::timestamptz[], $7::uuid[], $8::uuid[],
			$9::text[], $10::boolean[], $11::bigint[], $12::text[], $13::integer[], $14::text[], $15::text[])
			AS e(seq, kind, asset_id, partition_key, at, run_id, step_id, data_version, data_changed, input_seq,
			     code_version, dep_set_id, metadata, error)),
	st AS (
		SELECT * FROM unnest($16::bigint[], $17::text[], $18::integer[], $19::bigint[], $20::bigint[],
			$21::timestamptz[], $22::text[], $23::bigint[], $24::bigint[], $25::integer[], $26::integer[],
			$27::boolean[], $28::bigint[], $29::boolean[])
			AS u(asset_id, partition_key, partition_idx, last_seq, success_seq, materialized_at, data_version,
			     data_changed_seq, input_seq, code_version_id, dep_set_id, failed, failed_seq, present)),
	ins AS (
		INSERT INTO partition_state (asset_id, partition_key, partition_idx, last_seq, success_seq, materialized_at,
			data_version, data_changed_seq, input_seq, code_version_id, dep_set_id, failed, failed_seq)
		SELECT u.asset_id, u.partition_key, u.partition_idx, u.last_seq, u.success_seq, u.materialized_at,
			u.data_version, u.data_changed_seq, u.input_seq, u.code_version_id, u.dep_set_id, u.failed, u.failed_seq
		FROM st u WHERE NOT u.present)
	UPDATE partition_state ps SET partition_idx = u.partition_idx, last_seq = u.last_seq, success_seq = u.success_seq,
		materialized_at = u.materialized_at, data_version = u.data_version, data_changed_seq = u.data_changed_seq,
		input_seq = u.input_seq, code_version_id = u.code_version_id, dep_set_id = u.dep_set_id, failed = u.failed,
		failed_seq = u.failed_seq
	FROM st u WHERE u.present AND ps.asset_id = u.asset_id AND ps.partition_key = u.partition_key`

// setWrites is the event count from which queueWrites writes with writeSmallSQL.
const setWrites = 3

// queueWrites adds every write of a small append to b: new code versions and dep
// sets, then the clock (with lockFirst), the events and the partition state.
func (w *appendWork) queueWrites(b *pgx.Batch) {
	if len(w.prepared) == 0 {
		return
	}
	if len(w.prepared) < setWrites {
		if w.lockFirst {
			b.Queue(advanceClockSQL, int64(len(w.prepared)))
		}
		w.in.queue(b)
		for i := range w.prepared {
			b.Queue(insertEventSQL, eventValues(&w.prepared[i], w.codes[i])...)
		}
		for i := range w.parts.rows {
			if row := &w.parts.rows[i]; row.exists {
				b.Queue(updateStateSQL, stateValues(row)...)
			} else {
				b.Queue(insertStateSQL, stateValues(row)...)
			}
		}
		return
	}
	w.in.queue(b)
	var advance int64
	if w.lockFirst {
		advance = int64(len(w.prepared))
	}
	n := len(w.prepared)
	var (
		seqs, assetIDs, inputSeqs           = make([]int64, n), make([]int64, n), make([]pgtype.Int8, n)
		kinds, partitions                   = make([]string, n), make([]string, n)
		ats                                 = make([]time.Time, n)
		runIDs, stepIDs                     = make([]pgtype.UUID, n), make([]pgtype.UUID, n)
		versions, codes, metadata, errTexts = make([]pgtype.Text, n), make([]pgtype.Text, n), make([]pgtype.Text, n), make([]pgtype.Text, n)
		changed                             = make([]bool, n)
		depSets                             = make([]pgtype.Int4, n)
	)
	for i := range w.prepared {
		p := &w.prepared[i]
		e := &p.Event
		seqs[i], kinds[i], assetIDs[i], partitions[i], ats[i] = e.Seq, string(e.Kind), p.AssetID, e.Partition, e.At
		runIDs[i] = pgtype.UUID{Bytes: e.RunID, Valid: e.RunID != [16]byte{}}
		stepIDs[i] = pgtype.UUID{Bytes: e.StepID, Valid: e.StepID != [16]byte{}}
		versions[i] = pgtype.Text{String: e.DataVersion, Valid: e.DataVersion != ""}
		changed[i] = e.DataChanged
		if e.Kind == store.Materialization {
			inputSeqs[i] = pgtype.Int8{Int64: e.InputSeq, Valid: true}
			codes[i] = pgtype.Text{String: e.Code.Version, Valid: true}
			depSets[i] = pgtype.Int4{Int32: w.codes[i].deps, Valid: true}
		}
		metadata[i] = pgtype.Text{String: string(e.Metadata), Valid: e.Metadata != nil}
		errTexts[i] = pgtype.Text{String: e.Error, Valid: e.Error != ""}
	}
	m := len(w.parts.rows)
	var (
		stAssets, lastSeqs, successSeqs, changedSeqs, stInputSeqs, failedSeqs = make([]int64, m), make([]int64, m), make([]int64, m), make([]int64, m), make([]int64, m), make([]int64, m)
		stKeys                                                                = make([]string, m)
		indexes                                                               = make([]int32, m)
		materializedAt                                                        = make([]pgtype.Timestamptz, m)
		dataVersions                                                          = make([]pgtype.Text, m)
		codeIDs, depIDs                                                       = make([]pgtype.Int4, m), make([]pgtype.Int4, m)
		failed, present                                                       = make([]bool, m), make([]bool, m)
	)
	for i := range w.parts.rows {
		row := &w.parts.rows[i]
		rec := &row.rec
		stAssets[i], stKeys[i], indexes[i] = row.assetID, row.partition, row.index
		lastSeqs[i], successSeqs[i], changedSeqs[i], stInputSeqs[i] = rec.LastSeq, rec.SuccessSeq, rec.DataChangedSeq, rec.InputSeq
		failed[i], failedSeqs[i], present[i] = rec.Failed, rec.FailedSeq, row.exists
		if rec.SuccessSeq != 0 {
			materializedAt[i] = pgtype.Timestamptz{Time: rec.MaterializedAt, Valid: true}
			dataVersions[i] = pgtype.Text{String: rec.DataVersion, Valid: true}
		}
		if row.hasCode {
			codeIDs[i] = pgtype.Int4{Int32: row.code.version, Valid: true}
			depIDs[i] = pgtype.Int4{Int32: row.code.deps, Valid: true}
		}
	}
	b.Queue(writeSmallSQL, advance,
		seqs, kinds, assetIDs, partitions, ats, runIDs, stepIDs, versions, changed, inputSeqs, codes, depSets, metadata, errTexts,
		stAssets, stKeys, indexes, lastSeqs, successSeqs, materializedAt, dataVersions, changedSeqs, stInputSeqs,
		codeIDs, depIDs, failed, failedSeqs, present)
}

// write does the writes of a large append, with COPY.
func (w *appendWork) write(ctx context.Context, tx pgx.Tx) error {
	if w.lockFirst && len(w.prepared) > 0 {
		if _, err := tx.Exec(ctx, advanceClockSQL, int64(len(w.prepared))); err != nil {
			return clockError(err)
		}
	}
	if err := w.in.write(ctx, tx); err != nil {
		return fmt.Errorf("record code versions: %w", err)
	}
	if err := writeEvents(ctx, tx, w.prepared, w.codes); err != nil {
		return fmt.Errorf("write events: %w", err)
	}
	if err := w.parts.write(ctx, tx); err != nil {
		return fmt.Errorf("write partition state: %w", err)
	}
	return nil
}

// recorded returns the events as prepared for the log.
func (w *appendWork) recorded() []store.Event {
	out := make([]store.Event, len(w.prepared))
	for i := range w.prepared {
		out[i] = w.prepared[i].Event
	}
	return out
}

// maxReportedErrors caps the bad events a BadEventsError lists, as store.Prepare does.
const maxReportedErrors = 20

// unstorable finds the events whose content PostgreSQL cannot store, as bad
// events: text holds neither NUL bytes nor invalid UTF-8, and jsonb no \u0000
// escape. (Error texts are not refused but cleaned, by storableText: a failure is
// recorded whatever its process printed.)
func unstorable(events []store.Event) []*store.EventError {
	var out []*store.EventError
	for n := range events {
		e := &events[n]
		msg := ""
		switch {
		case !isStorableText(e.DataVersion):
			msg = "the data version contains a NUL byte or is not valid UTF-8"
		case e.Metadata != nil && (!utf8.Valid(e.Metadata) || hasNULEscape(e.Metadata)):
			msg = "the metadata contains a \\u0000 (NUL) escape or invalid UTF-8, which the catalog cannot store"
		case e.Code != nil && !isStorableText(e.Code.Version):
			msg = "the code version contains a NUL byte or is not valid UTF-8"
		case e.Code != nil && slices.ContainsFunc(e.Code.Deps, func(k assets.Key) bool { return !isStorableText(string(k)) }):
			msg = "a dep key of the code contains a NUL byte or is not valid UTF-8"
		default:
			continue
		}
		out = append(out, &store.EventError{N: n, Asset: e.Asset, Partition: e.Partition, Msg: msg})
	}
	return out
}

// mergeBadEvents adds to bad the errors of events it does not list yet, keeping
// them in event order and within the cap.
func mergeBadEvents(bad *store.BadEventsError, more []*store.EventError) {
	listed := make(map[int]bool, len(bad.Errors))
	for _, e := range bad.Errors {
		listed[e.N] = true
	}
	for _, e := range more {
		if !listed[e.N] {
			bad.Errors = append(bad.Errors, e)
		}
	}
	slices.SortStableFunc(bad.Errors, func(a, b *store.EventError) int { return a.N - b.N })
	if len(bad.Errors) > maxReportedErrors {
		bad.More += len(bad.Errors) - maxReportedErrors
		bad.Errors = bad.Errors[:maxReportedErrors]
	}
}

func isStorableText(s string) bool {
	return utf8.ValidString(s) && strings.IndexByte(s, 0) < 0
}

// storableText replaces NUL bytes and invalid UTF-8 with U+FFFD, keeping the rest.
func storableText(s string) string {
	if isStorableText(s) {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}

// hasNULEscape reports whether JSON text holds a \u0000 escape (one not itself
// an escaped backslash followed by "u0000").
func hasNULEscape(j []byte) bool {
	const esc = `\u0000`
	for off := 0; ; {
		i := bytes.Index(j[off:], []byte(esc))
		if i < 0 {
			return false
		}
		i += off
		backslashes := 0
		for k := i; k >= 0 && j[k] == '\\'; k-- {
			backslashes++
		}
		if backslashes%2 == 1 {
			return true
		}
		off = i + len(esc)
	}
}

func (s *Store) scanSynced(rows pgx.Rows, n int) (map[assets.Key]*store.SyncedAsset, error) {
	defer rows.Close()
	synced := make(map[assets.Key]*store.SyncedAsset, n)
	for rows.Next() {
		var (
			a             store.SyncedAsset
			key, deps     string
			partitions    []byte
			partitionsSeq int64
		)
		if err := rows.Scan(&a.ID, &key, &partitions, &partitionsSeq, &a.Code.Version, &deps, &a.IsSource, &a.Removed); err != nil {
			return nil, err
		}
		a.Key = assets.Key(key)
		a.Code.Deps = store.SplitKeys(deps)
		s.cache.learnID(key, a.ID)
		var err error
		if a.Partitions, err = s.cache.partitionsOf(a.ID, partitionsSeq, partitions); err != nil {
			return nil, fmt.Errorf("asset %s: %w", key, err)
		}
		synced[a.Key] = &a
	}
	return synced, rows.Err()
}

// eventValues returns an event's column values, in eventColumnNames order.
func eventValues(p *store.PreparedEvent, code codeIDs) []any {
	e := &p.Event
	vals := []any{e.Seq, string(e.Kind), p.AssetID, e.Partition, e.At, nullUUID(e.RunID), nullUUID(e.StepID),
		nullString(e.DataVersion), e.DataChanged, nil, nil, nil, nil, nullString(e.Error)}
	if e.Kind == store.Materialization {
		vals[9], vals[10], vals[11] = e.InputSeq, e.Code.Version, code.deps
	}
	if e.Metadata != nil {
		vals[12] = []byte(e.Metadata)
	}
	return vals
}

func nullUUID(id [16]byte) any {
	if id == ([16]byte{}) {
		return nil
	}
	return pgtype.UUID{Bytes: id, Valid: true}
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// writeEvents inserts the prepared events, with their code ids.
func writeEvents(ctx context.Context, tx pgx.Tx, prepared []store.PreparedEvent, codes []codeIDs) error {
	return copyIn(ctx, tx, "events", eventColumnNames, len(prepared), func(i int, r *copyRow) {
		p := &prepared[i]
		e := &p.Event
		r.int8(e.Seq)
		r.text(string(e.Kind))
		r.int8(p.AssetID)
		r.text(e.Partition)
		r.timestamptz(e.At)
		r.uuidOrNull(e.RunID)
		r.uuidOrNull(e.StepID)
		r.textOrNull(e.DataVersion)
		r.bool(e.DataChanged)
		if e.Kind == store.Materialization {
			r.int8(e.InputSeq)
			r.text(e.Code.Version)
			r.int4(codes[i].deps)
		} else {
			r.null()
			r.null()
			r.null()
		}
		r.jsonbOrNull(e.Metadata)
		r.textOrNull(e.Error)
	})
}
