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

var eventColumnNames = []string{"seq", "kind", "asset_id", "partition_key", "at", "run_id", "step_id",
	"data_version", "data_changed", "input_seq", "code_version", "dep_set_id", "metadata", "error"}

const insertEventSQL = `INSERT INTO events (seq, kind, asset_id, partition_key, at, run_id, step_id,
	data_version, data_changed, input_seq, code_version, dep_set_id, metadata, error)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`

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
	return out, nil
}

// appendTx does Append's work in one transaction. It returns the interning tables it
// read or extended, for the cache once the transaction committed.
func (s *Store) appendTx(ctx context.Context, events []store.Event) ([]store.Event, map[int64]*internTable, error) {
	tx, err := s.pool.BeginTx(ctx, writeTx)
	if err != nil {
		return nil, nil, err
	}
	defer rollback(tx)
	watermark, synced, err := s.lockAndLoadSynced(ctx, tx, events)
	if err != nil {
		return nil, nil, err
	}
	unfit := unstorable(events)
	prepared, err := store.Prepare(events, func(k assets.Key) *store.SyncedAsset { return synced[k] },
		watermark, s.now())
	if err != nil {
		var bad *store.BadEventsError
		if errors.As(err, &bad) {
			mergeBadEvents(bad, unfit)
		}
		return nil, nil, err
	}
	if len(unfit) > 0 {
		bad := &store.BadEventsError{}
		mergeBadEvents(bad, unfit)
		return nil, nil, bad
	}
	for i := range prepared {
		prepared[i].Error = storableText(prepared[i].Error)
	}
	in := newInterner(&s.cache)
	codes, err := in.resolve(ctx, tx, prepared)
	if err != nil {
		return nil, nil, fmt.Errorf("intern code versions: %w", err)
	}
	parts, err := loadTouched(ctx, tx, prepared)
	if err != nil {
		return nil, nil, fmt.Errorf("read partition state: %w", err)
	}
	parts.fold(prepared, codes)
	if len(prepared) < smallAppend {
		// Every write in one pipelined batch: one round trip.
		batch := &pgx.Batch{}
		in.queue(batch)
		for i := range prepared {
			batch.Queue(insertEventSQL, eventValues(&prepared[i], codes[i])...)
		}
		for i := range parts.rows {
			row := &parts.rows[i]
			if row.exists {
				batch.Queue(updateStateSQL, stateValues(row)...)
			} else {
				batch.Queue(insertStateSQL, stateValues(row)...)
			}
		}
		if err := tx.SendBatch(ctx, batch).Close(); err != nil {
			return nil, nil, fmt.Errorf("write events and partition state: %w", err)
		}
	} else {
		if err := in.write(ctx, tx); err != nil {
			return nil, nil, fmt.Errorf("record code versions: %w", err)
		}
		if err := writeEvents(ctx, tx, prepared, codes); err != nil {
			return nil, nil, fmt.Errorf("write events: %w", err)
		}
		if err := parts.write(ctx, tx); err != nil {
			return nil, nil, fmt.Errorf("write partition state: %w", err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, nil, fmt.Errorf("commit: %w", err)
	}
	out := make([]store.Event, len(prepared))
	for i := range prepared {
		out[i] = prepared[i].Event
	}
	return out, in.tables, nil
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

// lockAndLoadSynced advances the catalog clock by len(events) seqs, taking its
// lock, and then reads the synced definitions of the assets the events name. The
// two statements go in one round trip; the server runs them in order, so the
// definitions are read after the lock is held and a concurrent sync is either
// wholly visible or not at all. It returns the watermark before the advance.
func (s *Store) lockAndLoadSynced(ctx context.Context, tx pgx.Tx, events []store.Event) (int64, map[assets.Key]*store.SyncedAsset, error) {
	seen := make(map[assets.Key]bool)
	var keys []string
	for i := range events {
		// A key PostgreSQL cannot hold names no asset (Prepare says so), and must
		// not reach the query.
		if k := events[i].Asset; !seen[k] && isStorableText(string(k)) {
			seen[k] = true
			keys = append(keys, string(k))
		}
	}
	n := int64(len(events))
	batch := &pgx.Batch{}
	batch.Queue(advanceClockSQL, n)
	batch.Queue(`SELECT id, key, partitions, partitions_seq, code_version, deps, is_source, removed_seq IS NOT NULL
		FROM assets WHERE key = ANY($1::text[])`, keys)
	results := tx.SendBatch(ctx, batch)
	defer results.Close()
	var end int64
	if err := results.QueryRow().Scan(&end); err != nil {
		return 0, nil, clockError(err)
	}
	rows, err := results.Query()
	if err != nil {
		return 0, nil, fmt.Errorf("read synced assets: %w", err)
	}
	synced, err := s.scanSynced(rows, len(keys))
	if err != nil {
		return 0, nil, fmt.Errorf("read synced assets: %w", err)
	}
	return end - n, synced, results.Close()
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
