package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/freshetdev/freshet/store"
)

// Page sizes of StepLog.
const (
	defaultLogLimit = 1000
	maxLogLimit     = 10_000
)

const (
	logStatsSQL  = `SELECT kept_bytes, kept_lines, dropped_bytes, dropped_lines FROM step_log_stats WHERE step_id = ?`
	insertLogSQL = `INSERT INTO step_logs (step_id, line_no, attempt, stream, at, line)
		SELECT ?1, value->>'$[0]', value->>'$[1]', value->>'$[2]', value->>'$[3]', value->>'$[4]' FROM json_each(?2)`
	// oldestLinesSQL walks the kept lines oldest first, with their sizes, to find
	// how many must go.
	oldestLinesSQL = `SELECT line_no, octet_length(line) FROM step_logs WHERE step_id = ? ORDER BY line_no`
	dropLinesSQL   = `DELETE FROM step_logs WHERE step_id = ? AND line_no <= ?`
	saveStatsSQL   = `INSERT INTO step_log_stats (step_id, kept_bytes, kept_lines, dropped_bytes, dropped_lines)
		VALUES (?, ?, ?, ?, ?) ON CONFLICT (step_id) DO UPDATE SET kept_bytes = excluded.kept_bytes,
		kept_lines = excluded.kept_lines, dropped_bytes = excluded.dropped_bytes, dropped_lines = excluded.dropped_lines`
)

// logStats is a step's step_log_stats row.
type logStats struct {
	keptBytes, keptLines, droppedBytes, droppedLines int64
}

// AppendStepLog appends lines to a step's log, keeping at most maxBytes of text
// (maxBytes <= 0: no cap): the oldest lines are dropped and counted.
func (s *Store) AppendStepLog(ctx context.Context, stepID uuid.UUID, lines []store.LogLine, maxBytes int64) error {
	if len(lines) == 0 {
		return nil
	}
	b, err := newLogBatch(lines, maxBytes)
	if err != nil {
		return fmt.Errorf("append to the log of step %s: %w", stepID, err)
	}
	now := s.now()
	err = s.withWriteTx(ctx, func(w *writeTx) error {
		return w.appendLog(ctx, stepID, b, now)
	})
	if err != nil {
		return fmt.Errorf("append to the log of step %s: %w", stepID, err)
	}
	return nil
}

// logBatch is lines to append to a step's log, checked and made storable before
// the transaction: AppendStepLog's, or a report's.
type logBatch struct {
	lines []store.LogLine
	// texts are the lines' texts as stored, each cut to its tail when longer
	// than the cap; cutBytes counts what was cut.
	texts    []string
	cutBytes int64
	maxBytes int64
}

// newLogBatch checks lines' streams and prepares their texts for a log capped
// at maxBytes (<= 0: no cap).
func newLogBatch(lines []store.LogLine, maxBytes int64) (*logBatch, error) {
	b := &logBatch{lines: lines, texts: make([]string, len(lines)), maxBytes: maxBytes}
	for i, l := range lines {
		switch l.Stream {
		case store.Stdout, store.Stderr, store.System:
		default:
			return nil, fmt.Errorf("line %d: unknown stream %q (want stdout, stderr or system)", i+1, l.Stream)
		}
		text := strings.ReplaceAll(strings.ToValidUTF8(l.Text, "\uFFFD"), "\x00", "\uFFFD")
		if maxBytes > 0 && int64(len(text)) > maxBytes {
			// Keep the line's tail, from a character boundary.
			start := len(text) - int(maxBytes)
			for start < len(text) && !utf8.RuneStart(text[start]) {
				start++
			}
			b.cutBytes += int64(start)
			text = text[start:]
		}
		b.texts[i] = text
	}
	return b, nil
}

// appendLog appends a batch of lines to a step's log in w, numbered on from the
// last line ever appended, and drops the oldest lines past the cap. Lines
// without a time get now. It wraps store.ErrNotFound for an unknown step.
func (w *writeTx) appendLog(ctx context.Context, stepID uuid.UUID, b *logBatch, now time.Time) error {
	lines, texts, maxBytes := b.lines, b.texts, b.maxBytes
	var st logStats
	err := w.QueryRowContext(ctx, logStatsSQL, stepID.String()).Scan(&st.keptBytes, &st.keptLines, &st.droppedBytes, &st.droppedLines)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		var exists bool
		if err := w.QueryRowContext(ctx, stepExistsSQL, stepID.String()).Scan(&exists); err != nil {
			return fmt.Errorf("look up step: %w", err)
		}
		if !exists {
			return store.ErrNotFound
		}
	case err != nil:
		return fmt.Errorf("read log stats: %w", err)
	}
	// Lines are numbered on from the last one ever appended, kept or not.
	next := st.keptLines + st.droppedLines + 1
	st.droppedBytes += b.cutBytes

	// Lines of this batch that the cap would drop at once are never written.
	first := 0
	if maxBytes > 0 {
		var batch int64
		for _, t := range texts {
			batch += int64(len(t))
		}
		for batch > maxBytes {
			batch -= int64(len(texts[first]))
			st.droppedBytes += int64(len(texts[first]))
			st.droppedLines++
			first++
		}
	}
	rows := make([][5]any, 0, len(lines)-first)
	for i := first; i < len(lines); i++ {
		l := lines[i]
		at := l.At
		if at.IsZero() {
			at = now
		}
		rows = append(rows, [5]any{next + int64(i), l.Attempt, string(l.Stream), micros(at), texts[i]})
		st.keptBytes += int64(len(texts[i]))
		st.keptLines++
	}
	if len(rows) > 0 {
		if _, err := w.ExecContext(ctx, insertLogSQL, stepID.String(), jsonArray(rows)); err != nil {
			return fmt.Errorf("write lines: %w", err)
		}
	}
	if maxBytes > 0 && st.keptBytes > maxBytes {
		if err := w.dropOldest(ctx, stepID, &st, st.keptBytes-maxBytes); err != nil {
			return err
		}
	}
	if _, err := w.ExecContext(ctx, saveStatsSQL, stepID.String(), st.keptBytes, st.keptLines, st.droppedBytes, st.droppedLines); err != nil {
		return fmt.Errorf("write log stats: %w", err)
	}
	return nil
}

// dropOldest drops the oldest lines of a step's log holding at least excess
// bytes, in one DELETE, and counts them in st.
func (w *writeTx) dropOldest(ctx context.Context, stepID uuid.UUID, st *logStats, excess int64) error {
	rows, err := w.QueryContext(ctx, oldestLinesSQL, stepID.String())
	if err != nil {
		return fmt.Errorf("find the oldest lines: %w", err)
	}
	var (
		bound, bytes, lines int64
	)
	for bytes < excess && rows.Next() {
		var size int64
		if err := rows.Scan(&bound, &size); err != nil {
			rows.Close()
			return fmt.Errorf("find the oldest lines: %w", err)
		}
		bytes += size
		lines++
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("find the oldest lines: %w", err)
	}
	if lines == 0 {
		return nil
	}
	if _, err := w.ExecContext(ctx, dropLinesSQL, stepID.String(), bound); err != nil {
		return fmt.Errorf("drop the oldest lines: %w", err)
	}
	st.keptBytes -= bytes
	st.keptLines -= lines
	st.droppedBytes += bytes
	st.droppedLines += lines
	return nil
}

// StepLog returns up to limit lines of a step's log after line number after.
func (s *Store) StepLog(ctx context.Context, stepID uuid.UUID, after int64, limit int) (*store.LogPage, error) {
	switch {
	case limit <= 0:
		limit = defaultLogLimit
	case limit > maxLogLimit:
		limit = maxLogLimit
	}
	page := &store.LogPage{Lines: []store.LogLine{}, Next: after}
	err := s.inReadTx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, logStatsSQL, stepID.String()).Scan(&page.KeptBytes, new(int64), &page.DroppedBytes, &page.DroppedLines)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			var exists bool
			if err := tx.QueryRowContext(ctx, stepExistsSQL, stepID.String()).Scan(&exists); err != nil {
				return fmt.Errorf("look up step: %w", err)
			}
			if !exists {
				return store.ErrNotFound
			}
			return nil // no log yet
		case err != nil:
			return fmt.Errorf("read log stats: %w", err)
		}
		rows, err := tx.QueryContext(ctx, `SELECT line_no, attempt, stream, at, line FROM step_logs
			WHERE step_id = ? AND line_no > ? ORDER BY line_no LIMIT ?`, stepID.String(), after, limit)
		if err != nil {
			return fmt.Errorf("read lines: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var (
				l      store.LogLine
				stream string
				at     int64
			)
			if err := rows.Scan(&l.No, &l.Attempt, &stream, &at, &l.Text); err != nil {
				return fmt.Errorf("read lines: %w", err)
			}
			l.Stream, l.At = store.LogStream(stream), fromMicros(at)
			page.Lines = append(page.Lines, l)
			page.Next = l.No
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("read the log of step %s: %w", stepID, err)
	}
	return page, nil
}
