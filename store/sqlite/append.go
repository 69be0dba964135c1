package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/google/uuid"

	"github.com/freshetdev/freshet/assets"
	"github.com/freshetdev/freshet/store"
)

// noID marks a NULL code_version_id or dep_set_id.
const noID = -1

// batchRows is how many rows one multi-row INSERT writes. Bulk appends spend
// most of their time per statement, not per row; 64 rows of the widest table
// stay far below SQLite's limit of 32,766 parameters.
const batchRows = 64

// The statements Append runs. Multi-row inserts are built from the one-row ones.
const (
	lookupAssetSQL = `SELECT id, code_version, deps, partitions, is_source, removed_seq IS NOT NULL FROM assets WHERE key = ?`

	loadPartitionsSQL = `
		SELECT partition_key, last_seq, success_seq, materialized_at, data_version, data_changed_seq, input_seq,
			code_version_id, dep_set_id, failed, failed_seq
		FROM partition_state WHERE asset_id = ? AND partition_key IN (SELECT value FROM json_each(?))`

	insertEventHead = `INSERT INTO events (seq, kind, asset_id, partition_key, at, run_id, step_id, data_version,
		data_changed, input_seq, code_version, dep_set_id, metadata, error) VALUES `
	insertEventWidth = 14

	upsertPartitionHead = `INSERT INTO partition_state (asset_id, partition_key, partition_idx, last_seq, success_seq,
		materialized_at, data_version, data_changed_seq, input_seq, code_version_id, dep_set_id, failed, failed_seq) VALUES `
	upsertPartitionWidth = 13
	upsertPartitionTail  = ` ON CONFLICT (asset_id, partition_key) DO UPDATE SET
		partition_idx = excluded.partition_idx, last_seq = excluded.last_seq,
		success_seq = excluded.success_seq, materialized_at = excluded.materialized_at,
		data_version = excluded.data_version, data_changed_seq = excluded.data_changed_seq,
		input_seq = excluded.input_seq, code_version_id = excluded.code_version_id,
		dep_set_id = excluded.dep_set_id, failed = excluded.failed, failed_seq = excluded.failed_seq`
)

// insertSQL returns head followed by rows placeholder tuples of width values, and tail.
func insertSQL(head string, width, rows int, tail string) string {
	tuple := "(" + strings.Repeat("?, ", width-1) + "?)"
	var b strings.Builder
	b.WriteString(head)
	for i := range rows {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(tuple)
	}
	b.WriteString(tail)
	return b.String()
}

var (
	insertEventSQL      = insertSQL(insertEventHead, insertEventWidth, 1, "")
	insertEventsSQL     = insertSQL(insertEventHead, insertEventWidth, batchRows, "")
	upsertPartitionSQL  = insertSQL(upsertPartitionHead, upsertPartitionWidth, 1, upsertPartitionTail)
	upsertPartitionsSQL = insertSQL(upsertPartitionHead, upsertPartitionWidth, batchRows, upsertPartitionTail)
)

// partitionRow is the state of one (asset, partition) while an Append folds its
// events into it.
type partitionRow struct {
	assetID int64
	index   int
	rec     store.PartitionRecord
	// codeID and depSetID are the interned ids of rec.Code (noID: none).
	codeID, depSetID int64
}

type partitionRef struct {
	assetID   int64
	partition string
}

// Append appends events to the log and updates the partition state they touch,
// in one transaction.
func (s *Store) Append(ctx context.Context, events []store.Event) ([]store.Event, error) {
	if len(events) == 0 {
		return []store.Event{}, nil
	}
	if len(events) > store.MaxEventsPerAppend {
		return nil, fmt.Errorf("append %d events: at most %d at once", len(events), store.MaxEventsPerAppend)
	}
	var out []store.Event
	err := s.withWriteTx(ctx, func(w *writeTx) error {
		var err error
		out, err = w.append(ctx, events)
		return err
	})
	if err != nil {
		var bad *store.BadEventsError
		if errors.As(err, &bad) {
			return nil, bad
		}
		return nil, fmt.Errorf("append %d events: %w", len(events), err)
	}
	return out, nil
}

// maxStatements bounds the writer's prepared statements. Write transactions use
// a fixed set of queries, far fewer; the bound only guards against a bug that
// would build a new query per call.
const maxStatements = 512

// sharedStatements returns the writer's prepared statements. The map is never
// modified (learnStatements replaces it), so transactions read it without a lock.
func (s *Store) sharedStatements() map[string]*sql.Stmt {
	s.stmtsMu.Lock()
	defer s.stmtsMu.Unlock()
	return s.stmts
}

// learnStatements prepares queries on the writer connection, for every later
// transaction to reuse: a query a write transaction had to prepare for itself is
// prepared once for all right after it. It runs outside any transaction, since
// the writer's only connection is taken while one is open. A query that fails to
// prepare (a table not migrated yet) is simply left to be prepared per
// transaction.
func (s *Store) learnStatements(ctx context.Context, queries []string) {
	s.stmtsMu.Lock()
	defer s.stmtsMu.Unlock()
	if s.stmtsClosed || len(s.stmts)+len(queries) > maxStatements {
		return
	}
	next := make(map[string]*sql.Stmt, len(s.stmts)+len(queries))
	for query, st := range s.stmts {
		next[query] = st
	}
	for _, query := range queries {
		if next[query] != nil {
			continue
		}
		st, err := s.write.PrepareContext(context.WithoutCancel(ctx), query)
		if err != nil {
			continue
		}
		next[query] = st
	}
	s.stmts = next
}

// withWriteTx runs fn in a write transaction (see inWriteTx) with the writer's
// prepared statements, and commits when fn returns nil. Ids of code versions and
// dep sets fn interned are cached only once they are committed.
func (s *Store) withWriteTx(ctx context.Context, fn func(w *writeTx) error) error {
	shared := s.sharedStatements()
	var (
		interned map[internKey]uint32
		missed   []string
	)
	err := s.inWriteTx(ctx, func(tx *sql.Tx) error {
		w := &writeTx{s: s, tx: tx, shared: shared, interned: make(map[internKey]uint32)}
		defer w.close()
		err := fn(w)
		interned, missed = w.interned, w.missed
		return err
	})
	if len(missed) > 0 {
		s.learnStatements(ctx, missed)
	}
	if err != nil {
		return err
	}
	s.rememberInterned(interned)
	return nil
}

// writeTx is a write transaction and the statements it uses: Append's, and the
// queue's, which append events in the same transactions as their own writes.
type writeTx struct {
	s  *Store
	tx *sql.Tx
	// shared are the writer's prepared statements (never modified); stmts are
	// those bound to this transaction.
	shared map[string]*sql.Stmt
	stmts  map[string]*sql.Stmt
	// interned holds the ids this transaction looked up or created.
	interned map[internKey]uint32
	// missed lists the queries that had no shared statement.
	missed []string
}

func (w *writeTx) close() {
	for _, st := range w.stmts {
		st.Close()
	}
}

// stmt returns query as a statement of the transaction: the writer's prepared
// statement when there is one, else prepared now, once per transaction (and for
// every later transaction once this one ends).
func (w *writeTx) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	if st, ok := w.stmts[query]; ok {
		return st, nil
	}
	var st *sql.Stmt
	if shared := w.shared[query]; shared != nil {
		st = w.tx.StmtContext(ctx, shared)
	} else {
		var err error
		if st, err = w.tx.PrepareContext(ctx, query); err != nil {
			return nil, fmt.Errorf("prepare statement: %w", err)
		}
		w.missed = append(w.missed, query)
	}
	if w.stmts == nil {
		w.stmts = make(map[string]*sql.Stmt)
	}
	w.stmts[query] = st
	return st, nil
}

func (w *writeTx) append(ctx context.Context, events []store.Event) ([]store.Event, error) {
	clock, err := w.stmt(ctx, advanceClockSQL)
	if err != nil {
		return nil, err
	}
	var last int64
	if err := clock.QueryRowContext(ctx, len(events)).Scan(&last); err != nil {
		return nil, fmt.Errorf("advance catalog clock: %w", err)
	}
	watermark := last - int64(len(events))
	synced, err := w.loadSynced(ctx, events)
	if err != nil {
		return nil, err
	}
	prepared, err := store.Prepare(events, func(k assets.Key) *store.SyncedAsset { return synced[k] }, watermark, w.s.now())
	if err != nil {
		return nil, err
	}

	rows, touched, err := w.loadPartitions(ctx, prepared)
	if err != nil {
		return nil, err
	}
	eventCode := make([]internedCode, len(prepared))
	for i := range prepared {
		p := &prepared[i]
		if p.Kind == store.Materialization {
			if eventCode[i], err = w.internCode(ctx, p.AssetID, p.Code); err != nil {
				return nil, err
			}
		}
		if !p.Kind.Touches() {
			continue
		}
		row := rows[partitionRef{p.AssetID, p.Partition}]
		row.rec.Apply(&p.Event)
		switch p.Kind {
		case store.Materialization:
			row.codeID, row.depSetID = eventCode[i].codeID, eventCode[i].depSetID
		case store.Observation:
			row.codeID, row.depSetID = noID, noID
		}
	}

	if err := w.insertEvents(ctx, prepared, eventCode); err != nil {
		return nil, err
	}
	if err := w.upsertPartitions(ctx, touched); err != nil {
		return nil, err
	}
	out := make([]store.Event, len(prepared))
	for i := range prepared {
		out[i] = prepared[i].Event
	}
	return out, nil
}

// loadSynced reads the definitions of the assets events name, as last synced.
func (w *writeTx) loadSynced(ctx context.Context, events []store.Event) (map[assets.Key]*store.SyncedAsset, error) {
	synced := make(map[assets.Key]*store.SyncedAsset)
	seen := make(map[assets.Key]bool)
	query, err := w.stmt(ctx, lookupAssetSQL)
	if err != nil {
		return nil, err
	}
	for i := range events {
		key := events[i].Asset
		if seen[key] {
			continue
		}
		seen[key] = true
		var (
			sa         = store.SyncedAsset{Key: key}
			deps       string
			partitions sql.NullString
		)
		err := query.QueryRowContext(ctx, string(key)).Scan(&sa.ID, &sa.Code.Version, &deps, &partitions, &sa.IsSource, &sa.Removed)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			continue // Prepare reports it
		case err != nil:
			return nil, fmt.Errorf("read asset %s: %w", key, err)
		}
		sa.Code.Deps = store.SplitKeys(deps)
		if partitions.Valid {
			if sa.Partitions, err = w.s.parsePartitions(partitions.String); err != nil {
				return nil, fmt.Errorf("asset %s: %w", key, err)
			}
		}
		synced[key] = &sa
	}
	return synced, nil
}

// parsePartitions parses a stored partitions definition, caching the result: the
// JSON determines the definition, so a cached entry can never be out of date.
func (s *Store) parsePartitions(stored string) (*assets.Partitions, error) {
	s.parsedMu.Lock()
	p, ok := s.parsed[stored]
	s.parsedMu.Unlock()
	if ok {
		return p, nil
	}
	spec, err := store.UnmarshalPartitions([]byte(stored))
	if err != nil {
		return nil, err
	}
	if p, err = assets.NewPartitions(*spec); err != nil {
		return nil, fmt.Errorf("stored partitions definition %s: %w", stored, err)
	}
	s.parsedMu.Lock()
	if len(s.parsed) >= maxCached {
		clear(s.parsed)
	}
	s.parsed[stored] = p
	s.parsedMu.Unlock()
	return p, nil
}

// loadPartitions reads the stored state of every partition the events touch, one
// query per asset, and starts empty ones for those without. touched lists them in
// the order the events first touch them.
func (w *writeTx) loadPartitions(ctx context.Context, prepared []store.PreparedEvent) (map[partitionRef]*partitionRow, []*partitionRow, error) {
	rows := make(map[partitionRef]*partitionRow)
	var touched []*partitionRow
	keysOf := make(map[int64][]string)
	var assetOrder []int64
	for i := range prepared {
		p := &prepared[i]
		ref := partitionRef{p.AssetID, p.Partition}
		if !p.Kind.Touches() || rows[ref] != nil {
			continue
		}
		row := &partitionRow{
			assetID: p.AssetID, index: p.Index,
			rec:    store.PartitionRecord{Asset: p.Asset, Partition: p.Partition, Index: p.Index},
			codeID: noID, depSetID: noID,
		}
		rows[ref] = row
		touched = append(touched, row)
		if keysOf[p.AssetID] == nil {
			assetOrder = append(assetOrder, p.AssetID)
		}
		keysOf[p.AssetID] = append(keysOf[p.AssetID], p.Partition)
	}
	query, err := w.stmt(ctx, loadPartitionsSQL)
	if err != nil {
		return nil, nil, err
	}
	for _, assetID := range assetOrder {
		if err := w.loadAssetPartitions(ctx, query, assetID, keysOf[assetID], rows); err != nil {
			return nil, nil, err
		}
	}
	return rows, touched, nil
}

func (w *writeTx) loadAssetPartitions(ctx context.Context, query *sql.Stmt, assetID int64, keys []string, rows map[partitionRef]*partitionRow) error {
	found, err := query.QueryContext(ctx, assetID, jsonArray(keys))
	if err != nil {
		return fmt.Errorf("read partition state: %w", err)
	}
	defer found.Close()
	for found.Next() {
		var (
			key              string
			rec              store.PartitionRecord
			materializedAt   sql.NullInt64
			dataVersion      sql.NullString
			codeID, depSetID sql.NullInt64
		)
		if err := found.Scan(&key, &rec.LastSeq, &rec.SuccessSeq, &materializedAt, &dataVersion, &rec.DataChangedSeq,
			&rec.InputSeq, &codeID, &depSetID, &rec.Failed, &rec.FailedSeq); err != nil {
			return fmt.Errorf("read partition state: %w", err)
		}
		row := rows[partitionRef{assetID, key}]
		if row == nil {
			continue
		}
		rec.Asset, rec.Partition, rec.Index = row.rec.Asset, row.rec.Partition, row.rec.Index
		if materializedAt.Valid {
			rec.MaterializedAt = fromMicros(materializedAt.Int64)
		}
		rec.DataVersion = dataVersion.String
		row.rec = rec
		if codeID.Valid {
			row.codeID = codeID.Int64
		}
		if depSetID.Valid {
			row.depSetID = depSetID.Int64
		}
	}
	if err := found.Err(); err != nil {
		return fmt.Errorf("read partition state: %w", err)
	}
	return nil
}

func (w *writeTx) insertEvents(ctx context.Context, prepared []store.PreparedEvent, codes []internedCode) error {
	batch := w.newBatch(insertEventSQL, insertEventsSQL, insertEventWidth)
	for i := range prepared {
		p := &prepared[i]
		var inputSeq, codeVersion, depSetID, metadata any
		if p.Kind == store.Materialization {
			inputSeq, codeVersion, depSetID = p.InputSeq, p.Code.Version, codes[i].depSetID
		}
		if p.Metadata != nil {
			metadata = string(p.Metadata)
		}
		err := batch.add(ctx, p.Seq, string(p.Kind), p.AssetID, p.Partition, micros(p.At),
			nullUUID(p.RunID), nullUUID(p.StepID), nullString(p.DataVersion), boolInt(p.DataChanged),
			inputSeq, codeVersion, depSetID, metadata, nullString(p.Error))
		if err != nil {
			return fmt.Errorf("insert events: %w", err)
		}
	}
	if err := batch.flush(ctx); err != nil {
		return fmt.Errorf("insert events: %w", err)
	}
	return nil
}

func (w *writeTx) upsertPartitions(ctx context.Context, rows []*partitionRow) error {
	batch := w.newBatch(upsertPartitionSQL, upsertPartitionsSQL, upsertPartitionWidth)
	for _, row := range rows {
		r := &row.rec
		var materializedAt, dataVersion any
		if r.SuccessSeq != 0 {
			materializedAt, dataVersion = micros(r.MaterializedAt), r.DataVersion
		}
		err := batch.add(ctx, row.assetID, r.Partition, row.index, r.LastSeq, r.SuccessSeq, materializedAt,
			dataVersion, r.DataChangedSeq, r.InputSeq, nullID(row.codeID), nullID(row.depSetID), boolInt(r.Failed), r.FailedSeq)
		if err != nil {
			return fmt.Errorf("write partition state: %w", err)
		}
	}
	if err := batch.flush(ctx); err != nil {
		return fmt.Errorf("write partition state: %w", err)
	}
	return nil
}

// rowBatch collects rows for an INSERT and writes them batchRows at a time.
type rowBatch struct {
	w         *writeTx
	one, many string // the statements for one row and for batchRows rows
	width     int
	args      []any
	// affected counts the rows the statements changed (an upsert that does
	// nothing changes none).
	affected int64
}

func (w *writeTx) newBatch(one, many string, width int) *rowBatch {
	return &rowBatch{w: w, one: one, many: many, width: width, args: make([]any, 0, width*batchRows)}
}

func (b *rowBatch) add(ctx context.Context, values ...any) error {
	b.args = append(b.args, values...)
	if len(b.args) == b.width*batchRows {
		return b.flush(ctx)
	}
	return nil
}

// flush writes the rows collected so far.
func (b *rowBatch) flush(ctx context.Context) error {
	defer func() { b.args = b.args[:0] }()
	if len(b.args) == b.width*batchRows {
		st, err := b.w.stmt(ctx, b.many)
		if err != nil {
			return err
		}
		res, err := st.ExecContext(ctx, b.args...)
		if err != nil {
			return err
		}
		return b.count(res)
	}
	// A partial batch goes row by row, so that only two statements are ever
	// prepared, whatever the batch sizes.
	st, err := b.w.stmt(ctx, b.one)
	if err != nil {
		return err
	}
	for row := b.args; len(row) > 0; row = row[b.width:] {
		res, err := st.ExecContext(ctx, row[:b.width]...)
		if err != nil {
			return err
		}
		if err := b.count(res); err != nil {
			return err
		}
	}
	return nil
}

func (b *rowBatch) count(res sql.Result) error {
	n, err := res.RowsAffected()
	b.affected += n
	return err
}

func nullUUID(id uuid.UUID) any {
	if id == uuid.Nil {
		return nil
	}
	return id.String()
}

func nullID(id int64) any {
	if id == noID {
		return nil
	}
	return id
}
