package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/freshetdev/freshet/assets"
	"github.com/freshetdev/freshet/store"
)

// Event page sizes.
const (
	defaultEventLimit = 100
	maxEventLimit     = 10_000
)

// Events returns a page of the event log, newest first. It pages by seq: the next
// page's Before is the last seq of this one, so a page never repeats or skips an
// event, whatever is appended meanwhile. A filter on an unknown asset matches no
// events.
func (s *Store) Events(ctx context.Context, q store.EventQuery) (*store.EventPage, error) {
	page, err := s.events(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("read events: %w", err)
	}
	return page, nil
}

func (s *Store) events(ctx context.Context, q store.EventQuery) (*store.EventPage, error) {
	pages, err := s.eventPages(ctx, []store.EventQuery{q})
	if err != nil {
		return nil, err
	}
	return pages[0], nil
}

// EventPages reads a page of events for each query, as Events would, in two
// round trips whatever their number: the assets' ids, then every page.
func (s *Store) EventPages(ctx context.Context, qs []store.EventQuery) ([]*store.EventPage, error) {
	pages, err := s.eventPages(ctx, qs)
	if err != nil {
		return nil, fmt.Errorf("read events: %w", err)
	}
	return pages, nil
}

func (s *Store) eventPages(ctx context.Context, qs []store.EventQuery) ([]*store.EventPage, error) {
	for _, q := range qs {
		if q.Partitions != nil && q.Asset == "" {
			return nil, errors.New("a partitions filter needs an asset")
		}
	}
	// By id, not by a join on the key: the planner then knows how many events
	// the asset has and picks the index that fits.
	var keys []string
	for _, q := range qs {
		if q.Asset != "" {
			keys = append(keys, string(q.Asset))
		}
	}
	ids := map[assets.Key]int64{}
	if len(keys) > 0 {
		rows, err := s.pool.Query(ctx, `SELECT key, id FROM assets WHERE key = ANY ($1::text[])`, keys)
		if err != nil {
			return nil, err
		}
		var (
			key string
			id  int64
		)
		if _, err := pgx.ForEachRow(rows, []any{&key, &id}, func() error { ids[assets.Key(key)] = id; return nil }); err != nil {
			return nil, err
		}
	}
	pages := make([]*store.EventPage, len(qs))
	limits := make([]int, len(qs))
	b := &pgx.Batch{}
	for i, q := range qs {
		pages[i] = &store.EventPage{Events: []store.Event{}}
		id, known := ids[q.Asset]
		if q.Asset != "" && !known {
			continue // an unknown asset has no events
		}
		sql, args, limit := eventsSQL(q, id)
		limits[i] = limit
		b.Queue(sql, args...)
	}
	if b.Len() == 0 {
		return pages, nil
	}
	results := s.pool.SendBatch(ctx, b)
	defer results.Close()
	for i, q := range qs {
		if _, known := ids[q.Asset]; q.Asset != "" && !known {
			continue
		}
		rows, err := results.Query()
		if err != nil {
			return nil, err
		}
		page := pages[i]
		for rows.Next() {
			e, err := scanEvent(rows)
			if err != nil {
				rows.Close()
				return nil, err
			}
			page.Events = append(page.Events, e)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
		if limit := limits[i]; len(page.Events) > limit {
			page.Events = page.Events[:limit]
			page.Next = page.Events[limit-1].Seq
		}
	}
	return pages, results.Close()
}

// eventsSQL is the statement of one page of events of q (assetID: q.Asset's),
// with its arguments and the page's size (it reads one more row: whether there is
// one says if there is a next page).
func eventsSQL(q store.EventQuery, assetID int64) (string, []any, int) {
	limit := q.Limit
	switch {
	case limit <= 0:
		limit = defaultEventLimit
	case limit > maxEventLimit:
		limit = maxEventLimit
	}
	var (
		where []string
		args  []any
	)
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if q.Asset != "" {
		where = append(where, "e.asset_id = "+arg(assetID))
	}
	// The order names the columns of the index that serves the filter, so that
	// the planner walks it backwards and stops at the page's end whatever its
	// statistics say (without them, a fresh catalog's, it would rather read
	// every event of the asset and sort them).
	order := "e.seq DESC"
	switch {
	case len(q.Partitions) == 1:
		where = append(where, "e.partition_key = "+arg(q.Partitions[0]))
		order = "e.asset_id DESC, e.partition_key DESC, e.seq DESC" // events_partition
	case q.Partitions != nil:
		where = append(where, "e.partition_key = ANY("+arg(q.Partitions)+"::text[])")
	case q.Asset != "":
		order = "e.asset_id DESC, e.seq DESC" // events_asset
	}
	if len(q.Kinds) > 0 {
		kinds := make([]string, len(q.Kinds))
		for i, k := range q.Kinds {
			kinds[i] = string(k)
		}
		where = append(where, "e.kind = ANY("+arg(kinds)+"::text[])")
	}
	if q.Before > 0 {
		where = append(where, "e.seq < "+arg(q.Before))
	}
	sql := `SELECT e.seq, e.kind, a.key, e.partition_key, e.at, e.run_id, e.step_id, e.data_version, e.data_changed,
		       e.input_seq, e.code_version, ds.deps, e.metadata, e.error
		FROM events e JOIN assets a ON a.id = e.asset_id
		LEFT JOIN dep_sets ds ON ds.asset_id = e.asset_id AND ds.id = e.dep_set_id`
	if len(where) > 0 {
		sql += " WHERE " + strings.Join(where, " AND ")
	}
	sql += " ORDER BY " + order + " LIMIT " + arg(limit+1)
	return sql, args, limit
}

func scanEvent(rows pgx.Rows) (store.Event, error) {
	var (
		e                        store.Event
		kind, key                string
		runID, stepID            pgtype.UUID
		dataVersion, codeVersion pgtype.Text
		deps, errText            pgtype.Text
		inputSeq                 pgtype.Int8
		metadata                 []byte
	)
	err := rows.Scan(&e.Seq, &kind, &key, &e.Partition, &e.At, &runID, &stepID, &dataVersion, &e.DataChanged,
		&inputSeq, &codeVersion, &deps, &metadata, &errText)
	if err != nil {
		return e, err
	}
	e.Kind, e.Asset = store.EventKind(kind), assets.Key(key)
	e.At = e.At.UTC()
	if runID.Valid {
		e.RunID = uuid.UUID(runID.Bytes)
	}
	if stepID.Valid {
		e.StepID = uuid.UUID(stepID.Bytes)
	}
	e.DataVersion, e.InputSeq, e.Error = dataVersion.String, inputSeq.Int64, errText.String
	if codeVersion.Valid {
		e.Code = &store.Code{Version: codeVersion.String, Deps: store.SplitKeys(deps.String)}
	}
	if metadata != nil {
		e.Metadata = metadata
	}
	return e, nil
}

// partitionColumns are the columns a recordRow reads: a partition_state row ps
// with its code version cv and dep set ds (partitionJoins). Partition and
// PartitionRecords read records through them.
const partitionColumns = `ps.partition_idx, ps.last_seq, ps.success_seq, ps.materialized_at, ps.data_version,
	ps.data_changed_seq, ps.input_seq, cv.code_version, ds.deps, ps.failed, ps.failed_seq`

// partitionJoins joins partition_state ps with its code version and dep set.
const partitionJoins = `
	LEFT JOIN code_versions cv ON cv.asset_id = ps.asset_id AND cv.id = ps.code_version_id
	LEFT JOIN dep_sets ds ON ds.asset_id = ps.asset_id AND ds.id = ps.dep_set_id`

// recordRow is one row of partitionColumns as scanned.
type recordRow struct {
	index                      pgtype.Int4
	lastSeq                    pgtype.Int8
	successSeq, dataChangedSeq pgtype.Int8
	materializedAt             pgtype.Timestamptz
	dataVersion, version, deps pgtype.Text
	inputSeq, failedSeq        pgtype.Int8
	failed                     pgtype.Bool
}

// dest returns the scan destinations of partitionColumns, in order.
func (p *recordRow) dest() []any {
	return []any{&p.index, &p.lastSeq, &p.successSeq, &p.materializedAt, &p.dataVersion,
		&p.dataChangedSeq, &p.inputSeq, &p.version, &p.deps, &p.failed, &p.failedSeq}
}

// found reports whether a row was recorded (the left join found one).
func (p *recordRow) found() bool { return p.lastSeq.Valid }

// record returns the row as the record of key's partition.
func (p *recordRow) record(key assets.Key, partition string) *store.PartitionRecord {
	r := &store.PartitionRecord{Asset: key, Partition: partition, Index: -1}
	if p.index.Valid {
		r.Index = int(p.index.Int32)
	}
	r.LastSeq, r.SuccessSeq, r.DataChangedSeq = p.lastSeq.Int64, p.successSeq.Int64, p.dataChangedSeq.Int64
	r.InputSeq, r.Failed, r.FailedSeq = p.inputSeq.Int64, p.failed.Bool, p.failedSeq.Int64
	r.DataVersion = p.dataVersion.String
	if p.materializedAt.Valid {
		r.MaterializedAt = p.materializedAt.Time.UTC()
	}
	if p.version.Valid {
		r.Code = &store.Code{Version: p.version.String, Deps: store.SplitKeys(p.deps.String)}
	}
	return r
}

// Partition returns the recorded state of one partition, with the code it was last
// built with. It wraps store.ErrNotFound when the asset is unknown or nothing was
// recorded for the partition.
func (s *Store) Partition(ctx context.Context, key assets.Key, partition string) (*store.PartitionRecord, error) {
	var (
		known bool
		row   recordRow
	)
	// A left join from the asset tells an unknown asset from an unrecorded partition.
	err := s.pool.QueryRow(ctx, `
		SELECT true, `+partitionColumns+`
		FROM assets a
		LEFT JOIN partition_state ps ON ps.asset_id = a.id AND ps.partition_key = $2`+partitionJoins+`
		WHERE a.key = $1`, string(key), partition,
	).Scan(append([]any{&known}, row.dest()...)...)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, fmt.Errorf("partition %q of %s: asset %w", partition, key, store.ErrNotFound)
	case err != nil:
		return nil, fmt.Errorf("partition %q of %s: %w", partition, key, err)
	case !row.found():
		return nil, fmt.Errorf("partition %q of %s: %w", partition, key, store.ErrNotFound)
	}
	return row.record(key, partition), nil
}

// PartitionRanges returns the recorded state of partitions [lo, hi) of an asset as
// run-length ranges, streaming the rows in index order.
func (s *Store) PartitionRanges(ctx context.Context, key assets.Key, lo, hi int) ([]store.Range, error) {
	if lo < 0 || hi < lo {
		return nil, fmt.Errorf("partition ranges of %s: bad range [%d, %d)", key, lo, hi)
	}
	var assetID int64
	if err := s.pool.QueryRow(ctx, `SELECT id FROM assets WHERE key = $1`, string(key)).Scan(&assetID); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, fmt.Errorf("partition ranges of %s: asset %w", key, store.ErrNotFound)
		}
		return nil, fmt.Errorf("partition ranges of %s: %w", key, err)
	}
	b := store.NewRangeBuilder(lo, hi)
	if lo == hi {
		return b.Ranges(), nil
	}
	rows, err := s.pool.Query(ctx, `
		SELECT partition_idx, success_seq <> 0, failed FROM partition_state
		WHERE asset_id = $1 AND partition_idx >= $2 AND partition_idx < $3
		ORDER BY partition_idx`, assetID, clampInt32(lo), clampInt32(hi))
	if err != nil {
		return nil, fmt.Errorf("partition ranges of %s: %w", key, err)
	}
	defer rows.Close()
	var (
		index                    int32
		materialized, failedFlag bool
	)
	_, err = pgx.ForEachRow(rows, []any{&index, &materialized, &failedFlag}, func() error {
		var f store.PartitionFlags
		if materialized {
			f |= store.FlagMaterialized
		}
		if failedFlag {
			f |= store.FlagFailed
		}
		b.Add(int(index), store.RecordedOf(f))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("partition ranges of %s: %w", key, err)
	}
	return b.Ranges(), nil
}

func clampInt32(i int) int32 {
	const maxInt32 = 1<<31 - 1
	if i > maxInt32 {
		return maxInt32
	}
	return int32(i)
}
