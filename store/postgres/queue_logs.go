package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/freshetdev/freshet/store"
)

// Log page sizes.
const (
	defaultLogLimit = 1_000
	maxLogLimit     = 10_000
)

// AppendStepLog appends lines to a step's log in one transaction of one round
// trip: lock the step's stats row (creating it), insert the lines numbered after
// the last, drop the oldest lines beyond maxBytes with one DELETE bounded by line
// number, and update the stats.
//
// The transaction commits without waiting for its WAL to reach the disk
// (synchronous_commit off): a step's log is written every fraction of a second
// while it runs, and a crash of the server may lose the last fraction of a second
// of it, never anything the queue's state depends on. Steps and events are
// committed durably.
func (s *Store) AppendStepLog(ctx context.Context, stepID uuid.UUID, lines []store.LogLine, maxBytes int64) error {
	if len(lines) == 0 {
		return nil
	}
	var (
		attempts = make([]int32, len(lines))
		streams  = make([]string, len(lines))
		ats      = make([]pgtype.Timestamptz, len(lines))
		texts    = make([]string, len(lines))
		newBytes int64
		cutBytes int64
	)
	for i, l := range lines {
		switch l.Stream {
		case store.Stdout, store.Stderr, store.System:
		default:
			return fmt.Errorf("append log of step %s: line %d: unknown stream %q (want stdout, stderr or system)", stepID, i+1, l.Stream)
		}
		text := storableText(l.Text)
		if maxBytes > 0 && int64(len(text)) > maxBytes {
			// Keep the line's end, from a character's start.
			start := len(text) - int(maxBytes)
			for start < len(text) && !utf8.RuneStart(text[start]) {
				start++
			}
			cutBytes += int64(start)
			text = text[start:]
		}
		attempts[i], streams[i], texts[i] = int32(min(max(l.Attempt, 0), 1<<30)), string(l.Stream), text
		if !l.At.IsZero() {
			ats[i] = pgtype.Timestamptz{Time: l.At.UTC().Truncate(time.Microsecond), Valid: true}
		}
		newBytes += int64(len(text))
	}
	if maxBytes <= 0 {
		maxBytes = 1 << 62 // no cap
	}
	b := txBatch(writeTx)
	b.Queue(`SET LOCAL synchronous_commit = off`)
	// The stats row, locked: appenders of one step's log run one after the other.
	b.Queue(`INSERT INTO step_log_stats (step_id) VALUES ($1)
		ON CONFLICT (step_id) DO UPDATE SET step_id = EXCLUDED.step_id`, stepID)
	// Lines are numbered after every line the log ever had, kept or dropped.
	b.Queue(`INSERT INTO step_logs (step_id, line_no, attempt, stream, at, line)
		SELECT $1, st.kept_lines + st.dropped_lines + t.n, t.attempt, t.stream, coalesce(t.at, now()), t.line
		FROM step_log_stats st,
			unnest($2::integer[], $3::text[], $4::timestamptz[], $5::text[]) WITH ORDINALITY AS t(attempt, stream, at, line, n)
		WHERE st.step_id = $1`, stepID, attempts, streams, ats, texts)
	// The oldest lines whose bytes must go, up to the first line at which the
	// running total of bytes from the oldest reaches the excess: the window stops
	// there (LIMIT 1), so the cost is the lines dropped, not the lines kept.
	b.Queue(`WITH excess AS (SELECT kept_bytes + $2 - $3 AS bytes FROM step_log_stats WHERE step_id = $1),
		bound AS (
			SELECT x.line_no FROM (
				SELECT l.line_no, sum(octet_length(l.line)) OVER (ORDER BY l.line_no ROWS UNBOUNDED PRECEDING) AS total
				FROM step_logs l WHERE l.step_id = $1 ORDER BY l.line_no) x
			WHERE x.total >= (SELECT bytes FROM excess) AND (SELECT bytes FROM excess) > 0
			LIMIT 1),
		dropped AS (
			DELETE FROM step_logs l WHERE l.step_id = $1 AND l.line_no <= (SELECT line_no FROM bound)
			RETURNING octet_length(l.line) AS bytes),
		gone AS (SELECT count(*) AS lines, coalesce(sum(bytes), 0) AS bytes FROM dropped)
		UPDATE step_log_stats st SET
			kept_lines = st.kept_lines + $4 - gone.lines, kept_bytes = st.kept_bytes + $2 - gone.bytes,
			dropped_lines = st.dropped_lines + gone.lines, dropped_bytes = st.dropped_bytes + gone.bytes + $5
		FROM gone WHERE st.step_id = $1`, stepID, newBytes, maxBytes, int64(len(lines)), cutBytes)
	err := s.batchTx(ctx, b, nil)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23503" { // foreign key: no such step
		return fmt.Errorf("append log of step %s: step %w", stepID, store.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("append log of step %s: %w", stepID, err)
	}
	return nil
}

// StepLog returns up to limit lines of a step's log after line number after, with
// what was dropped, in one snapshot.
func (s *Store) StepLog(ctx context.Context, stepID uuid.UUID, after int64, limit int) (*store.LogPage, error) {
	switch {
	case limit <= 0:
		limit = defaultLogLimit
	case limit > maxLogLimit:
		limit = maxLogLimit
	}
	page := &store.LogPage{Lines: []store.LogLine{}, Next: after}
	var exists bool
	b := txBatch(readTx)
	b.Queue(`SELECT EXISTS (SELECT 1 FROM steps WHERE id = $1)`, stepID)
	b.Queue(`SELECT kept_bytes, dropped_lines, dropped_bytes FROM step_log_stats WHERE step_id = $1`, stepID)
	b.Queue(`SELECT line_no, attempt, stream, at, line FROM step_logs WHERE step_id = $1 AND line_no > $2
		ORDER BY line_no LIMIT $3`, stepID, after, int32(limit))
	err := s.batchTx(ctx, b, func(results pgx.BatchResults) error {
		if err := results.QueryRow().Scan(&exists); err != nil {
			return err
		}
		err := results.QueryRow().Scan(&page.KeptBytes, &page.DroppedLines, &page.DroppedBytes)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		rows, _ := results.Query()
		var (
			l       store.LogLine
			attempt int32
			stream  string
		)
		_, err = pgx.ForEachRow(rows, []any{&l.No, &attempt, &stream, &l.At, &l.Text}, func() error {
			l.Attempt, l.Stream, l.At = int(attempt), store.LogStream(stream), l.At.UTC()
			page.Lines = append(page.Lines, l)
			page.Next = l.No
			return nil
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read log of step %s: %w", stepID, err)
	}
	if !exists {
		return nil, fmt.Errorf("log of step %s: step %w", stepID, store.ErrNotFound)
	}
	return page, nil
}
