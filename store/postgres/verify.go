package postgres

import (
	"cmp"
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/freshetdev/freshet/assets"
	"github.com/freshetdev/freshet/store"
)

// verifyFetchSize is how many rows Verify fetches from a cursor at a time: its
// memory stays bounded whatever the size of the log.
const verifyFetchSize = 10_000

// Verify replays the event log and compares the result with the stored partition
// state. It reads both in one REPEATABLE READ snapshot through two server-side
// cursors, ordered alike by (asset, partition), and merges them one partition at a
// time, so memory stays bounded. It also checks that the catalog clock is not
// behind the seqs it handed out.
func (s *Store) Verify(ctx context.Context) ([]store.Inconsistency, error) {
	tx, clock, err := s.snapshotTx(ctx)
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	defer rollback(tx)
	out, err := verify(ctx, tx, clock)
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	return out, nil
}

func verify(ctx context.Context, tx pgx.Tx, clock int64) ([]store.Inconsistency, error) {
	var out []store.Inconsistency
	var maxEvent, maxChange int64
	err := tx.QueryRow(ctx, `SELECT (SELECT coalesce(max(seq), 0) FROM events),
		(SELECT coalesce(max(seq), 0) FROM definition_changes)`).Scan(&maxEvent, &maxChange)
	if err != nil {
		return nil, err
	}
	if top := max(maxEvent, maxChange); clock < top {
		out = append(out, store.Inconsistency{Problem: fmt.Sprintf(
			"the catalog clock is at %d but seq %d was handed out: new seqs would repeat old ones", clock, top)})
	}
	names, err := assetKeys(ctx, tx, assetFilter{where: "true"})
	if err != nil {
		return nil, err
	}
	codes, err := readCodeTables(ctx, tx)
	if err != nil {
		return nil, err
	}
	// Both cursors order partitions by byte order ("C"), as Go compares strings.
	if _, err := tx.Exec(ctx, `DECLARE verify_events NO SCROLL CURSOR FOR
		SELECT asset_id, partition_key, seq, kind, at, data_version, data_changed, input_seq, code_version, dep_set_id
		FROM events ORDER BY asset_id, partition_key COLLATE "C", seq`); err != nil {
		return nil, err
	}
	if _, err := tx.Exec(ctx, `DECLARE verify_state NO SCROLL CURSOR FOR
		SELECT asset_id, partition_key, partition_idx, last_seq, success_seq, materialized_at, data_version,
		       data_changed_seq, input_seq, code_version_id, dep_set_id, failed, failed_seq
		FROM partition_state ORDER BY asset_id, partition_key COLLATE "C"`); err != nil {
		return nil, err
	}
	events := &cursor[verifyEvent]{name: "verify_events", scan: codes.scanEvent}
	states := &cursor[verifyState]{name: "verify_state", scan: codes.scanState}
	var group []store.Event
	for {
		e, err := events.peek(ctx, tx)
		if err != nil {
			return nil, fmt.Errorf("read events: %w", err)
		}
		st, err := states.peek(ctx, tx)
		if err != nil {
			return nil, fmt.Errorf("read partition state: %w", err)
		}
		var at partitionKey
		switch {
		case e == nil && st == nil:
			return out, nil
		case e == nil:
			at = st.partitionKey
		case st == nil:
			at = e.partitionKey
		case comparePartitions(e.partitionKey, st.partitionKey) <= 0:
			at = e.partitionKey
		default:
			at = st.partitionKey
		}
		group = group[:0]
		for e != nil && e.partitionKey == at {
			group = append(group, e.Event)
			events.advance()
			if e, err = events.peek(ctx, tx); err != nil {
				return nil, fmt.Errorf("read events: %w", err)
			}
		}
		var stored *store.PartitionRecord
		if st != nil && st.partitionKey == at {
			rec := st.PartitionRecord
			stored = &rec
			states.advance()
		}
		name, ok := names[at.assetID]
		if !ok {
			name = assets.Key(fmt.Sprintf("(asset id %d)", at.assetID))
		}
		out = append(out, store.VerifyPartition(name, at.partition, group, stored)...)
	}
}

func comparePartitions(a, b partitionKey) int {
	if c := cmp.Compare(a.assetID, b.assetID); c != 0 {
		return c
	}
	return cmp.Compare(a.partition, b.partition)
}

type verifyEvent struct {
	partitionKey
	store.Event
}

type verifyState struct {
	partitionKey
	store.PartitionRecord
}

// cursor reads a server-side cursor of tx in pages of verifyFetchSize rows.
type cursor[T any] struct {
	name string
	scan pgx.RowToFunc[T]
	page []T
	pos  int
	done bool
}

// peek returns the current row, or nil after the last.
func (c *cursor[T]) peek(ctx context.Context, tx pgx.Tx) (*T, error) {
	if c.pos < len(c.page) {
		return &c.page[c.pos], nil
	}
	if c.done {
		return nil, nil
	}
	rows, err := tx.Query(ctx, fmt.Sprintf("FETCH %d FROM %s", verifyFetchSize, c.name))
	if err != nil {
		return nil, err
	}
	c.page, c.pos = c.page[:0], 0
	c.page, err = pgx.AppendRows(c.page, rows, c.scan)
	if err != nil {
		return nil, err
	}
	if len(c.page) < verifyFetchSize {
		c.done = true
	}
	if len(c.page) == 0 {
		return nil, nil
	}
	return &c.page[0], nil
}

func (c *cursor[T]) advance() { c.pos++ }

// codeTables holds every code version and dep set, by asset and id.
type codeTables struct {
	versions map[[2]int64]string
	depSets  map[[2]int64][]assets.Key
}

func readCodeTables(ctx context.Context, tx pgx.Tx) (*codeTables, error) {
	t := &codeTables{versions: map[[2]int64]string{}, depSets: map[[2]int64][]assets.Key{}}
	rows, err := tx.Query(ctx, `SELECT asset_id, id, code_version, false FROM code_versions
		UNION ALL SELECT asset_id, id, deps, true FROM dep_sets`)
	if err != nil {
		return nil, err
	}
	var (
		assetID, id int64
		value       string
		isDepSet    bool
	)
	_, err = pgx.ForEachRow(rows, []any{&assetID, &id, &value, &isDepSet}, func() error {
		if isDepSet {
			t.depSets[[2]int64{assetID, id}] = store.SplitKeys(value)
		} else {
			t.versions[[2]int64{assetID, id}] = value
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read code versions: %w", err)
	}
	return t, nil
}

func (t *codeTables) scanEvent(rows pgx.CollectableRow) (verifyEvent, error) {
	var (
		e                        verifyEvent
		kind                     string
		dataVersion, codeVersion pgtype.Text
		inputSeq                 pgtype.Int8
		depSetID                 pgtype.Int4
	)
	err := rows.Scan(&e.assetID, &e.partition, &e.Seq, &kind, &e.At, &dataVersion, &e.DataChanged, &inputSeq,
		&codeVersion, &depSetID)
	if err != nil {
		return e, err
	}
	e.Kind, e.At = store.EventKind(kind), e.At.UTC()
	e.DataVersion, e.InputSeq = dataVersion.String, inputSeq.Int64
	if codeVersion.Valid {
		e.Code = &store.Code{Version: codeVersion.String, Deps: t.depSets[[2]int64{e.assetID, int64(depSetID.Int32)}]}
	}
	return e, nil
}

func (t *codeTables) scanState(rows pgx.CollectableRow) (verifyState, error) {
	var (
		s              verifyState
		index          pgtype.Int4
		materializedAt pgtype.Timestamptz
		dataVersion    pgtype.Text
		codeID, depID  pgtype.Int4
	)
	err := rows.Scan(&s.assetID, &s.partition, &index, &s.LastSeq, &s.SuccessSeq, &materializedAt, &dataVersion,
		&s.DataChangedSeq, &s.InputSeq, &codeID, &depID, &s.Failed, &s.FailedSeq)
	if err != nil {
		return s, err
	}
	s.Index = -1
	if index.Valid {
		s.Index = int(index.Int32)
	}
	s.MaterializedAt = materializedAt.Time.UTC()
	s.DataVersion = dataVersion.String
	if codeID.Valid {
		version, ok := t.versions[[2]int64{s.assetID, int64(codeID.Int32)}]
		if !ok {
			version = fmt.Sprintf("(unknown code version id %d)", codeID.Int32)
		}
		s.Code = &store.Code{Version: version, Deps: t.depSets[[2]int64{s.assetID, int64(depID.Int32)}]}
	}
	return s, nil
}
