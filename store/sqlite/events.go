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

// Page sizes of Events.
const (
	defaultEventLimit = 100
	maxEventLimit     = 10_000
)

// eventColumns are the columns scanEvent reads; the query joins events e with
// assets a and, for the dep set of a materialization, dep_sets d.
const eventColumns = `e.seq, e.kind, a.key, e.partition_key, e.at, e.run_id, e.step_id, e.data_version,
	e.data_changed, e.input_seq, e.code_version, d.deps, e.metadata, e.error`

const eventJoins = ` FROM events e JOIN assets a ON a.id = e.asset_id
	LEFT JOIN dep_sets d ON d.asset_id = e.asset_id AND d.id = e.dep_set_id`

// Events returns a page of the event log, newest first. An unknown asset has no
// events.
func (s *Store) Events(ctx context.Context, q store.EventQuery) (*store.EventPage, error) {
	limit := q.Limit
	switch {
	case limit <= 0:
		limit = defaultEventLimit
	case limit > maxEventLimit:
		limit = maxEventLimit
	}
	page := &store.EventPage{Events: []store.Event{}}
	if q.Partitions != nil && len(q.Partitions) == 0 {
		return page, nil // filtered to no partitions at all
	}
	var (
		where []string
		args  []any
	)
	if q.Before > 0 {
		where, args = append(where, `e.seq < ?`), append(args, q.Before)
	}
	if len(q.Kinds) > 0 {
		where, args = append(where, `e.kind IN (SELECT value FROM json_each(?))`), append(args, jsonArray(q.Kinds))
	}
	err := s.inReadTx(ctx, func(tx *sql.Tx) error {
		if q.Asset != "" {
			id, err := lookupAssetID(ctx, tx, q.Asset)
			if errors.Is(err, store.ErrNotFound) {
				return nil
			}
			if err != nil {
				return err
			}
			where, args = append(where, `e.asset_id = ?`), append(args, id)
		}
		if q.Partitions != nil {
			// Meant with Asset; without, the keys match in every asset.
			where, args = append(where, `e.partition_key IN (SELECT value FROM json_each(?))`), append(args, jsonArray(q.Partitions))
		}
		query := `SELECT ` + eventColumns + eventJoins
		if len(where) > 0 {
			query += ` WHERE ` + strings.Join(where, ` AND `)
		}
		// One more than the page tells whether an older page exists.
		query += ` ORDER BY e.seq DESC LIMIT ?`
		rows, err := tx.QueryContext(ctx, query, append(args, limit+1)...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			e, err := scanEvent(rows)
			if err != nil {
				return err
			}
			if len(page.Events) == limit {
				page.Next = page.Events[limit-1].Seq
				break
			}
			page.Events = append(page.Events, e)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("read events: %w", err)
	}
	return page, nil
}

// scanEvent reads one row of eventColumns.
func scanEvent(rows *sql.Rows) (store.Event, error) {
	var (
		e                   store.Event
		kind                string
		at                  int64
		runID, stepID       sql.NullString
		dataVersion         sql.NullString
		inputSeq            sql.NullInt64
		codeVersion, deps   sql.NullString
		metadata, eventErr  sql.NullString
		asset, partitionKey string
	)
	err := rows.Scan(&e.Seq, &kind, &asset, &partitionKey, &at, &runID, &stepID, &dataVersion,
		&e.DataChanged, &inputSeq, &codeVersion, &deps, &metadata, &eventErr)
	if err != nil {
		return e, fmt.Errorf("read event: %w", err)
	}
	e.Kind = store.EventKind(kind)
	e.Asset = assets.Key(asset)
	e.Partition = partitionKey
	e.At = fromMicros(at)
	if e.RunID, err = parseNullUUID(runID); err != nil {
		return e, fmt.Errorf("event %d: run id: %w", e.Seq, err)
	}
	if e.StepID, err = parseNullUUID(stepID); err != nil {
		return e, fmt.Errorf("event %d: step id: %w", e.Seq, err)
	}
	e.DataVersion = dataVersion.String
	e.InputSeq = inputSeq.Int64
	if codeVersion.Valid {
		e.Code = &store.Code{Version: codeVersion.String, Deps: store.SplitKeys(deps.String)}
	}
	if metadata.Valid {
		e.Metadata = []byte(metadata.String)
	}
	e.Error = eventErr.String
	return e, nil
}

func parseNullUUID(s sql.NullString) (uuid.UUID, error) {
	if !s.Valid {
		return uuid.Nil, nil
	}
	return uuid.Parse(s.String)
}
