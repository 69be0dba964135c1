package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/freshetdev/freshet/assets"
	"github.com/freshetdev/freshet/store"
)

// The engine queue (store.Queue) on SQLite. Every state change is one write
// transaction on the writer connection (BEGIN IMMEDIATE): SQLite runs one at a
// time, so a claim sees every claim before it and the concurrency caps are exact
// without any locking of rows. A step's end commits with its events, appended by
// Append's own code (writeTx.append) in the same transaction. Times come from the
// store's clock (WithClock), so tests move leases and backoffs forward without
// waiting. The queries are static (lists are bound as one JSON array, bulk rows
// as multi-row INSERTs of fixed sizes), so the writer prepares each only once
// (learnStatements). Listen is an in-process broadcast: a SQLite store serves one
// process.

var _ store.Queue = (*Store)(nil)

// Step statuses as SQL lists, for the queries.
const (
	// stepNotDoneSQL are the statuses of a step that has not ended.
	stepNotDoneSQL = `('PENDING', 'READY', 'RUNNING')`
	// stepWaitingSQL are those of a step not started: what a cancel or an upstream
	// failure ends at once.
	stepWaitingSQL = `('PENDING', 'READY')`
)

// stepColumns are the columns scanStep reads, from steps s joined with assets a.
const stepColumns = `s.id, s.run_id, a.key, s.partition_keys, s.ordinal, s.status, s.attempt, s.max_attempts,
	s.not_before, s.lease_owner, s.lease_expires_at, s.cancel_requested_at IS NOT NULL, s.created_at,
	s.ready_at, s.started_at, s.finished_at, s.error`

// returningStep returns from an UPDATE of steps what stepColumns read.
const returningStep = ` RETURNING id, run_id, (SELECT key FROM assets WHERE assets.id = steps.asset_id), partition_keys,
	ordinal, status, attempt, max_attempts, not_before, lease_owner, lease_expires_at, cancel_requested_at IS NOT NULL,
	created_at, ready_at, started_at, finished_at, error`

// The queries reading steps with their deps. Deps come in the upstream's plan
// order, joins in the order they were made (the first holder first).
const (
	stepByIDSQL = `SELECT ` + stepColumns + ` FROM steps s JOIN assets a ON a.id = s.asset_id WHERE s.id = ?`
	depsByIDSQL = `SELECT d.step_id, d.upstream_step_id, d.kind FROM step_deps d JOIN steps u ON u.id = d.upstream_step_id
		WHERE d.step_id = ? ORDER BY d.kind, CASE d.kind WHEN 'run' THEN u.ordinal ELSE d.rowid END`

	depsByIDsSQL = `SELECT d.step_id, d.upstream_step_id, d.kind FROM json_each(?) j
		JOIN step_deps d ON d.step_id = j.value JOIN steps u ON u.id = d.upstream_step_id
		ORDER BY j.key, d.kind, CASE d.kind WHEN 'run' THEN u.ordinal ELSE d.rowid END`

	stepsOfRunSQL = `SELECT ` + stepColumns + ` FROM steps s JOIN assets a ON a.id = s.asset_id
		WHERE s.run_id = ? ORDER BY s.ordinal`
	depsOfRunSQL = `SELECT d.step_id, d.upstream_step_id, d.kind FROM steps s JOIN step_deps d ON d.step_id = s.id
		JOIN steps u ON u.id = d.upstream_step_id
		WHERE s.run_id = ? ORDER BY s.ordinal, d.kind, CASE d.kind WHEN 'run' THEN u.ordinal ELSE d.rowid END`
)

// scanner is a row of a query.
type scanner interface{ Scan(...any) error }

// eachRow reads every row of rows with scan, handing each value to add, and
// closes rows.
func eachRow[T any](rows *sql.Rows, scan func(scanner) (T, error), add func(T)) error {
	defer rows.Close()
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return err
		}
		add(v)
	}
	return rows.Err()
}

// scanStep reads one row of stepColumns.
func scanStep(row scanner) (store.Step, error) {
	var (
		st                             store.Step
		id, runID, status, keys        string
		asset                          string
		notBefore, leaseExpires        sql.NullInt64
		leaseOwner, stepErr            sql.NullString
		createdAt                      int64
		readyAt, startedAt, finishedAt sql.NullInt64
	)
	err := row.Scan(&id, &runID, &asset, &keys, &st.Ordinal, &status, &st.Attempt, &st.MaxAttempts,
		&notBefore, &leaseOwner, &leaseExpires, &st.CancelRequested, &createdAt,
		&readyAt, &startedAt, &finishedAt, &stepErr)
	if err != nil {
		return st, fmt.Errorf("read step: %w", err)
	}
	if st.ID, err = uuid.Parse(id); err != nil {
		return st, fmt.Errorf("read step: id %q: %w", id, err)
	}
	if st.RunID, err = uuid.Parse(runID); err != nil {
		return st, fmt.Errorf("read step %s: run id %q: %w", st.ID, runID, err)
	}
	if st.Partitions, err = parseKeys(keys); err != nil {
		return st, fmt.Errorf("read step %s: %w", st.ID, err)
	}
	st.Asset = assets.Key(asset)
	st.Status = store.StepStatus(status)
	st.NotBefore = nullTime(notBefore)
	st.LeaseOwner = leaseOwner.String
	st.LeaseExpiresAt = nullTime(leaseExpires)
	st.CreatedAt = fromMicros(createdAt)
	st.ReadyAt = nullTime(readyAt)
	st.StartedAt = nullTime(startedAt)
	st.FinishedAt = nullTime(finishedAt)
	st.Error = stepErr.String
	return st, nil
}

// loadSteps reads steps with stepsQuery and their deps with depsQuery, both taking
// arg; steps come in stepsQuery's order.
func loadSteps(ctx context.Context, q querier, stepsQuery, depsQuery string, arg any) ([]store.Step, error) {
	rows, err := q.QueryContext(ctx, stepsQuery, arg)
	if err != nil {
		return nil, fmt.Errorf("read steps: %w", err)
	}
	var steps []store.Step
	for rows.Next() {
		st, err := scanStep(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		steps = append(steps, st)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read steps: %w", err)
	}
	if len(steps) == 0 {
		return steps, nil
	}
	byID := make(map[uuid.UUID]*store.Step, len(steps))
	for i := range steps {
		byID[steps[i].ID] = &steps[i]
	}
	if err := loadDeps(ctx, q, depsQuery, arg, byID); err != nil {
		return nil, err
	}
	return steps, nil
}

// loadDeps fills the Deps and Joined of the steps in byID from depsQuery's rows
// (step id, upstream step id, kind).
func loadDeps(ctx context.Context, q querier, depsQuery string, arg any, byID map[uuid.UUID]*store.Step) error {
	rows, err := q.QueryContext(ctx, depsQuery, arg)
	if err != nil {
		return fmt.Errorf("read step deps: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var stepID, upstreamID, kind string
		if err := rows.Scan(&stepID, &upstreamID, &kind); err != nil {
			return fmt.Errorf("read step deps: %w", err)
		}
		id, err := uuid.Parse(stepID)
		if err != nil {
			return fmt.Errorf("read step deps: step id %q: %w", stepID, err)
		}
		up, err := uuid.Parse(upstreamID)
		if err != nil {
			return fmt.Errorf("read step deps: step id %q: %w", upstreamID, err)
		}
		st := byID[id]
		if st == nil {
			continue
		}
		if kind == depJoin {
			st.Joined = append(st.Joined, up)
		} else {
			st.Deps = append(st.Deps, up)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read step deps: %w", err)
	}
	return nil
}

// The kinds of step_deps rows.
const (
	depRun  = "run"
	depJoin = "join"
)

// readStep reads one step, wrapping store.ErrNotFound when there is none.
func readStep(ctx context.Context, q querier, id uuid.UUID) (*store.Step, error) {
	st, err := scanStep(q.QueryRowContext(ctx, stepByIDSQL, id.String()))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("step %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	if err := loadDeps(ctx, q, depsByIDSQL, id.String(), map[uuid.UUID]*store.Step{id: &st}); err != nil {
		return nil, err
	}
	return &st, nil
}

// runColumns are the columns scanRun reads from runs r.
const runColumns = `r.id, r.status, r.trigger, r.selection, r.from_day, r.to_day, r.force, r.max_parallel,
	r.backfill_id, r.schedule_name, r.parent_run_id, r.planned_seq, r.created_at, r.started_at, r.finished_at,
	r.canceled_at`

const runByIDSQL = `SELECT ` + runColumns + ` FROM runs r WHERE r.id = ?`

// runCountsSQL counts a run's steps and their partitions per status.
const runCountsSQL = `SELECT status, count(*), sum(partition_count) FROM steps WHERE run_id = ? GROUP BY status`

func scanRun(row scanner) (store.Run, error) {
	var (
		r                                 store.Run
		id, status, trigger               string
		fromDay, toDay, scheduleName      sql.NullString
		backfillID, parentID              sql.NullString
		createdAt                         int64
		startedAt, finishedAt, canceledAt sql.NullInt64
	)
	err := row.Scan(&id, &status, &trigger, &r.Selection, &fromDay, &toDay, &r.Force, &r.MaxParallel,
		&backfillID, &scheduleName, &parentID, &r.PlannedSeq, &createdAt, &startedAt, &finishedAt, &canceledAt)
	if err != nil {
		return r, fmt.Errorf("read run: %w", err)
	}
	if r.ID, err = uuid.Parse(id); err != nil {
		return r, fmt.Errorf("read run: id %q: %w", id, err)
	}
	if r.BackfillID, err = parseNullUUID(backfillID); err != nil {
		return r, fmt.Errorf("read run %s: backfill id: %w", r.ID, err)
	}
	if r.ParentRunID, err = parseNullUUID(parentID); err != nil {
		return r, fmt.Errorf("read run %s: parent run id: %w", r.ID, err)
	}
	r.Status = store.RunStatus(status)
	r.Trigger = store.Trigger(trigger)
	r.From, r.To, r.ScheduleName = fromDay.String, toDay.String, scheduleName.String
	r.CreatedAt = fromMicros(createdAt)
	r.StartedAt, r.FinishedAt, r.CanceledAt = nullTime(startedAt), nullTime(finishedAt), nullTime(canceledAt)
	return r, nil
}

// readRun reads a run with its counts, wrapping store.ErrNotFound when there is
// none.
func readRun(ctx context.Context, q querier, id uuid.UUID) (*store.Run, error) {
	r, err := scanRun(q.QueryRowContext(ctx, runByIDSQL, id.String()))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("run %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	rows, err := q.QueryContext(ctx, runCountsSQL, id.String())
	if err != nil {
		return nil, fmt.Errorf("count steps of run %s: %w", id, err)
	}
	defer rows.Close()
	r.Counts, r.Partitions = map[store.StepStatus]int{}, map[store.StepStatus]int{}
	for rows.Next() {
		var (
			status            string
			steps, partitions int
		)
		if err := rows.Scan(&status, &steps, &partitions); err != nil {
			return nil, fmt.Errorf("count steps of run %s: %w", id, err)
		}
		r.Counts[store.StepStatus(status)] = steps
		r.Partitions[store.StepStatus(status)] = partitions
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count steps of run %s: %w", id, err)
	}
	return &r, nil
}

// nullTime converts a nullable stored time; NULL is the zero time.
func nullTime(us sql.NullInt64) time.Time {
	if !us.Valid {
		return time.Time{}
	}
	return fromMicros(us.Int64)
}

// nullMicros stores the zero time as NULL.
func nullMicros(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return micros(t)
}

// parseKeys decodes a step's partition keys.
func parseKeys(stored string) ([]string, error) {
	var keys []string
	if err := json.Unmarshal([]byte(stored), &keys); err != nil {
		return nil, fmt.Errorf("partition keys %q: %w", stored, err)
	}
	return keys, nil
}

// describePartitions names a step's asset and partitions in messages.
func describePartitions(asset assets.Key, keys []string) string {
	switch {
	case len(keys) == 0 || (len(keys) == 1 && keys[0] == ""):
		return string(asset)
	case len(keys) == 1:
		return string(asset) + " " + keys[0]
	}
	return fmt.Sprintf("%s %s…%s (%d partitions)", asset, keys[0], keys[len(keys)-1], len(keys))
}

// QueryContext runs query with the writer's prepared statement, so that queue
// code reads through one querier inside and outside write transactions.
func (w *writeTx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	st, err := w.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

// QueryRowContext runs query with the writer's prepared statement.
func (w *writeTx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	st, err := w.stmt(ctx, query)
	if err != nil {
		// The transaction's own QueryRowContext reports the same failure in
		// its Row, where the caller looks for it.
		return w.tx.QueryRowContext(ctx, query, args...)
	}
	return st.QueryRowContext(ctx, args...)
}

// ExecContext runs query with the writer's prepared statement.
func (w *writeTx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	st, err := w.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(ctx, args...)
}

// exec runs a statement that changes rows and returns how many it changed.
func (w *writeTx) exec(ctx context.Context, query string, args ...any) (int64, error) {
	res, err := w.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// GetRun returns a run with its step counts.
func (s *Store) GetRun(ctx context.Context, id uuid.UUID) (*store.Run, error) {
	var r *store.Run
	err := s.inReadTx(ctx, func(tx *sql.Tx) error {
		var err error
		r, err = readRun(ctx, tx, id)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read run: %w", err)
	}
	return r, nil
}

// RunSteps returns a run's steps in plan order.
func (s *Store) RunSteps(ctx context.Context, runID uuid.UUID) ([]store.Step, error) {
	var steps []store.Step
	err := s.inReadTx(ctx, func(tx *sql.Tx) error {
		var exists bool
		if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM runs WHERE id = ?)`, runID.String()).Scan(&exists); err != nil {
			return err
		}
		if !exists {
			return fmt.Errorf("run %s: %w", runID, store.ErrNotFound)
		}
		var err error
		steps, err = loadSteps(ctx, tx, stepsOfRunSQL, depsOfRunSQL, runID.String())
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read steps of run %s: %w", runID, err)
	}
	if steps == nil {
		steps = []store.Step{}
	}
	return steps, nil
}

// GetStep returns one step.
func (s *Store) GetStep(ctx context.Context, id uuid.UUID) (*store.Step, error) {
	var st *store.Step
	err := s.inReadTx(ctx, func(tx *sql.Tx) error {
		var err error
		st, err = readStep(ctx, tx, id)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read step: %w", err)
	}
	return st, nil
}

// attemptColumns are the columns scanAttempt reads, of attempts.
const attemptColumns = `step_id, attempt, worker, input_seq, started_at, finished_at, status, exit_code, error`

// scanAttempt reads one row of attemptColumns.
func scanAttempt(row scanner) (store.Attempt, error) {
	var (
		a          store.Attempt
		stepID     string
		startedAt  int64
		finishedAt sql.NullInt64
		status     string
		exitCode   sql.NullInt64
		attemptErr sql.NullString
	)
	if err := row.Scan(&stepID, &a.Attempt, &a.Worker, &a.InputSeq, &startedAt, &finishedAt, &status, &exitCode, &attemptErr); err != nil {
		return a, fmt.Errorf("read attempt: %w", err)
	}
	var err error
	if a.StepID, err = uuid.Parse(stepID); err != nil {
		return a, fmt.Errorf("read attempt: step id %q: %w", stepID, err)
	}
	a.StartedAt, a.FinishedAt = fromMicros(startedAt), nullTime(finishedAt)
	a.Status = store.AttemptStatus(status)
	if exitCode.Valid {
		code := int(exitCode.Int64)
		a.ExitCode = &code
	}
	a.Error = attemptErr.String
	return a, nil
}

// scanAttempts reads rows of attemptColumns, handing each attempt to add.
func scanAttempts(rows *sql.Rows, add func(store.Attempt)) error {
	return eachRow(rows, scanAttempt, add)
}

// Attempts returns a step's attempts, first first.
func (s *Store) Attempts(ctx context.Context, stepID uuid.UUID) ([]store.Attempt, error) {
	out := []store.Attempt{}
	err := s.inReadTx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT `+attemptColumns+` FROM attempts WHERE step_id = ? ORDER BY attempt`, stepID.String())
		if err != nil {
			return err
		}
		if err := scanAttempts(rows, func(a store.Attempt) { out = append(out, a) }); err != nil {
			return err
		}
		if len(out) > 0 {
			return nil
		}
		var exists bool
		if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM steps WHERE id = ?)`, stepID.String()).Scan(&exists); err != nil {
			return err
		}
		if !exists {
			return fmt.Errorf("step %s: %w", stepID, store.ErrNotFound)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read attempts of step %s: %w", stepID, err)
	}
	return out, nil
}

// Page sizes of ListRuns.
const (
	defaultRunLimit = 50
	maxRunLimit     = 1000
)

// ListRuns returns a page of runs, newest first, with their counts.
func (s *Store) ListRuns(ctx context.Context, q store.RunQuery) (*store.RunPage, error) {
	limit := q.Limit
	switch {
	case limit <= 0:
		limit = defaultRunLimit
	case limit > maxRunLimit:
		limit = maxRunLimit
	}
	page := &store.RunPage{Runs: []store.Run{}}
	err := s.inReadTx(ctx, func(tx *sql.Tx) error {
		var (
			where []string
			args  []any
		)
		if q.Before != uuid.Nil {
			var createdAt int64
			err := tx.QueryRowContext(ctx, `SELECT created_at FROM runs WHERE id = ?`, q.Before.String()).Scan(&createdAt)
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("page before run %s: %w", q.Before, store.ErrNotFound)
			}
			if err != nil {
				return err
			}
			where = append(where, `(r.created_at < ? OR (r.created_at = ? AND r.id < ?))`)
			args = append(args, createdAt, createdAt, q.Before.String())
		}
		if len(q.Statuses) > 0 {
			where, args = append(where, `r.status IN (SELECT value FROM json_each(?))`), append(args, jsonArray(q.Statuses))
		}
		if q.BackfillID != uuid.Nil {
			where, args = append(where, `r.backfill_id = ?`), append(args, q.BackfillID.String())
		}
		if q.Asset != "" {
			id, err := lookupAssetID(ctx, tx, q.Asset)
			if errors.Is(err, store.ErrNotFound) {
				return nil // an unknown asset has no runs
			}
			if err != nil {
				return err
			}
			where = append(where, `EXISTS (SELECT 1 FROM steps s WHERE s.run_id = r.id AND s.asset_id = ?)`)
			args = append(args, id)
		}
		query := `SELECT ` + runColumns + ` FROM runs r`
		if len(where) > 0 {
			query += ` WHERE ` + strings.Join(where, ` AND `)
		}
		// One more than the page tells whether an older page exists.
		query += ` ORDER BY r.created_at DESC, r.id DESC LIMIT ?`
		rows, err := tx.QueryContext(ctx, query, append(args, limit+1)...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			r, err := scanRun(rows)
			if err != nil {
				return err
			}
			if len(page.Runs) == limit {
				page.Next = page.Runs[limit-1].ID
				break
			}
			page.Runs = append(page.Runs, r)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		rows.Close()
		return countRuns(ctx, tx, page.Runs)
	})
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	return page, nil
}

// countRuns fills the counts of runs, in one query.
func countRuns(ctx context.Context, q querier, runs []store.Run) error {
	if len(runs) == 0 {
		return nil
	}
	byID := make(map[string]*store.Run, len(runs))
	ids := make([]string, len(runs))
	for i := range runs {
		r := &runs[i]
		r.Counts, r.Partitions = map[store.StepStatus]int{}, map[store.StepStatus]int{}
		ids[i] = r.ID.String()
		byID[ids[i]] = r
	}
	rows, err := q.QueryContext(ctx, `SELECT run_id, status, count(*), sum(partition_count) FROM steps
		WHERE run_id IN (SELECT value FROM json_each(?)) GROUP BY run_id, status`, jsonArray(ids))
	if err != nil {
		return fmt.Errorf("count steps: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			runID, status     string
			steps, partitions int
		)
		if err := rows.Scan(&runID, &status, &steps, &partitions); err != nil {
			return fmt.Errorf("count steps: %w", err)
		}
		if r := byID[runID]; r != nil {
			r.Counts[store.StepStatus(status)] = steps
			r.Partitions[store.StepStatus(status)] = partitions
		}
	}
	return rows.Err()
}
