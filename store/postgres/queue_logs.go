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
// trip, the two statements of queueLogs: lock the step's stats row (creating it)
// and insert the lines numbered after the last, then drop the oldest lines beyond
// maxBytes with one DELETE bounded by line number.
//
// The transaction commits without waiting for its WAL to reach the disk
// (synchronous_commit off): a step's log is written every fraction of a second
// while it runs, and a crash of the server may lose the last fraction of a second
// of it, never anything the queue's state depends on. Steps and events are
// committed durably, and so are the lines a report carries (StepResult.Log),
// which are written in the report's transaction.
func (s *Store) AppendStepLog(ctx context.Context, stepID uuid.UUID, lines []store.LogLine, maxBytes int64) error {
	if len(lines) == 0 {
		return nil
	}
	l, err := newLogAppend(stepID, lines, maxBytes)
	if err != nil {
		return fmt.Errorf("append log of step %s: %w", stepID, err)
	}
	b := txBatch(writeTx)
	b.Queue(`SET LOCAL synchronous_commit = off`)
	queueLogs(b, []*logAppend{l})
	err = s.batchTx(ctx, b, nil)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23503" { // foreign key: no such step
		return fmt.Errorf("append log of step %s: step %w", stepID, store.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("append log of step %s: %w", stepID, err)
	}
	return nil
}

// logAppend is what appending lines to one step's log writes: the lines, checked,
// cleaned (storableText) and cut to the cap.
type logAppend struct {
	step     uuid.UUID
	attempts []int32
	streams  []string
	ats      []pgtype.Timestamptz
	texts    []string
	// bytes is the text of the lines as stored; cut the bytes cut from lines
	// longer than maxBytes (0: no cap), counted as dropped.
	bytes, cut, maxBytes int64
}

// newLogAppend checks and prepares lines for step's log under the cap maxBytes
// (0 or less: none). A line longer than the cap keeps its end, from a
// character's start.
func newLogAppend(step uuid.UUID, lines []store.LogLine, maxBytes int64) (*logAppend, error) {
	l := &logAppend{
		step:     step,
		attempts: make([]int32, len(lines)),
		streams:  make([]string, len(lines)),
		ats:      make([]pgtype.Timestamptz, len(lines)),
		texts:    make([]string, len(lines)),
		maxBytes: max(maxBytes, 0),
	}
	for i, line := range lines {
		switch line.Stream {
		case store.Stdout, store.Stderr, store.System:
		default:
			return nil, fmt.Errorf("log line %d: unknown stream %q (want stdout, stderr or system)", i+1, line.Stream)
		}
		text := storableText(line.Text)
		if l.maxBytes > 0 && int64(len(text)) > l.maxBytes {
			start := len(text) - int(l.maxBytes)
			for start < len(text) && !utf8.RuneStart(text[start]) {
				start++
			}
			l.cut += int64(start)
			text = text[start:]
		}
		l.attempts[i], l.streams[i], l.texts[i] = int32(min(max(line.Attempt, 0), 1<<30)), string(line.Stream), text
		if !line.At.IsZero() {
			l.ats[i] = pgtype.Timestamptz{Time: line.At.UTC().Truncate(time.Microsecond), Valid: true}
		}
		l.bytes += int64(len(text))
	}
	return l, nil
}

// appendLogsSQL appends lines to the logs of the steps $1 ($2 lines of $3 bytes
// each, $4 bytes cut from long lines), given line by line in $5 … $10 (step,
// position in the step's lines from 1, attempt, stream, time, text), in one
// statement: the stats rows are created or locked in step order, and the upsert
// returns each row as it is once locked (after any appender that held it), so the
// lines are numbered after every line the log ever had, kept or dropped. The
// stats count the new lines as kept; dropLogsSQL corrects them.
const appendLogsSQL = `WITH t AS (SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::bigint[], $4::bigint[]) AS t(step_id, lines, bytes, cut)),
	st AS (
		INSERT INTO step_log_stats AS st (step_id, kept_lines, kept_bytes, dropped_bytes)
		SELECT t.step_id, t.lines, t.bytes, t.cut FROM t ORDER BY t.step_id
		ON CONFLICT (step_id) DO UPDATE SET kept_lines = st.kept_lines + EXCLUDED.kept_lines,
			kept_bytes = st.kept_bytes + EXCLUDED.kept_bytes, dropped_bytes = st.dropped_bytes + EXCLUDED.dropped_bytes
		RETURNING st.step_id, st.kept_lines + st.dropped_lines AS total)
	INSERT INTO step_logs (step_id, line_no, attempt, stream, at, line)
	SELECT l.step_id, st.total - t.lines + l.k, l.attempt, l.stream, coalesce(l.at, now()), l.line
	FROM unnest($5::uuid[], $6::bigint[], $7::integer[], $8::text[], $9::timestamptz[], $10::text[])
		AS l(step_id, k, attempt, stream, at, line)
	JOIN st ON st.step_id = l.step_id JOIN t ON t.step_id = l.step_id`

// dropLogsSQL drops, for each step $1 whose log holds more than its cap $2 bytes,
// its oldest lines up to the first at which the running total of bytes from the
// oldest reaches the excess (the window stops there: LIMIT 1, so the cost is the
// lines dropped, not the lines kept), and counts them in the stats. It runs after
// appendLogsSQL, as a statement of its own, to see the lines it inserted.
const dropLogsSQL = `WITH over AS (
		SELECT st.step_id, st.kept_bytes - c.cap AS excess
		FROM unnest($1::uuid[], $2::bigint[]) AS c(step_id, cap) JOIN step_log_stats st ON st.step_id = c.step_id
		WHERE st.kept_bytes > c.cap),
	bound AS (
		SELECT o.step_id, b.line_no FROM over o, LATERAL (
			SELECT x.line_no FROM (
				SELECT l.line_no, sum(octet_length(l.line)) OVER (ORDER BY l.line_no ROWS UNBOUNDED PRECEDING) AS total
				FROM step_logs l WHERE l.step_id = o.step_id ORDER BY l.line_no) x
			WHERE x.total >= o.excess
			LIMIT 1) b),
	dropped AS (
		DELETE FROM step_logs l USING bound b WHERE l.step_id = b.step_id AND l.line_no <= b.line_no
		RETURNING l.step_id, octet_length(l.line) AS bytes),
	gone AS (SELECT step_id, count(*) AS lines, sum(bytes) AS bytes FROM dropped GROUP BY step_id)
	UPDATE step_log_stats st SET kept_lines = st.kept_lines - gone.lines, kept_bytes = st.kept_bytes - gone.bytes,
		dropped_lines = st.dropped_lines + gone.lines, dropped_bytes = st.dropped_bytes + gone.bytes
	FROM gone WHERE st.step_id = gone.step_id`

// queueLogs adds to b the statements that append logs (one per step at most) and
// returns how many it added: none without lines, one without a cap, else two.
// Several steps' logs cost the same two statements as one's.
func queueLogs(b *pgx.Batch, logs []*logAppend) int {
	var (
		steps               []uuid.UUID
		counts, bytes, cuts []int64
		lineSteps           []uuid.UUID
		ks                  []int64
		attempts            []int32
		streams, texts      []string
		ats                 []pgtype.Timestamptz
		capped              []uuid.UUID
		caps                []int64
	)
	for _, l := range logs {
		if l == nil || len(l.texts) == 0 {
			continue
		}
		steps, counts = append(steps, l.step), append(counts, int64(len(l.texts)))
		bytes, cuts = append(bytes, l.bytes), append(cuts, l.cut)
		for k := range l.texts {
			lineSteps, ks = append(lineSteps, l.step), append(ks, int64(k+1))
		}
		attempts, streams = append(attempts, l.attempts...), append(streams, l.streams...)
		ats, texts = append(ats, l.ats...), append(texts, l.texts...)
		if l.maxBytes > 0 {
			capped, caps = append(capped, l.step), append(caps, l.maxBytes)
		}
	}
	if len(steps) == 0 {
		return 0
	}
	b.Queue(appendLogsSQL, steps, counts, bytes, cuts, lineSteps, ks, attempts, streams, ats, texts)
	if len(capped) == 0 {
		return 1
	}
	b.Queue(dropLogsSQL, capped, caps)
	return 2
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
