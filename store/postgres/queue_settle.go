package postgres

import (
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/freshetdev/freshet/store"
)

// What every transaction that ends steps does before it commits: make the
// dependents whose dependencies are now all done READY, decide the status of the
// runs (and backfills) whose steps changed, claim more steps for ClaimNext and
// wake the listeners. These statements go in the transaction's last batch, with
// the COMMIT: in the common case (a step succeeded) one statement, the claim and
// the COMMIT.

// lockDependentsSQL locks the PENDING dependents of the steps $1 before settleSQL
// looks at their dependencies, in a statement of its own: two transactions each
// ending one dependency of a step (of different runs, joined) are then ordered,
// and the second sees the first's end, so the step does not stay PENDING with
// every dependency done. (The statements that end steps, endStepSQL and
// endStepsSQL, lock them themselves, in a CTE.)
//
// Dependents are found from the dependency rows and reached by primary key, in
// LATERAL subqueries the planner cannot flatten: joined freely, a planner without
// statistics (a fresh schema) scans every PENDING step of every run instead, and a
// long chain of steps becomes quadratic.
const lockDependentsSQL = `SELECT x.id
	FROM (SELECT DISTINCT d.step_id FROM step_deps d WHERE d.upstream_step_id = ANY ($1::uuid[]) ORDER BY d.step_id) dep,
	LATERAL (SELECT s.id FROM steps s WHERE s.id = dep.step_id AND s.status = 'PENDING' FOR NO KEY UPDATE) x`

// settleSQL makes READY the PENDING dependents of the steps $1 whose
// dependencies are all done, ends the runs $2 none of whose steps is open any more,
// and returns the steps made ready and each run's status (in run id order). A run
// ends CANCELED when a cancel was requested or a step was canceled, else FAILED
// when a step failed or upstream-failed, else SUCCEEDED. The caller holds the
// runs' rows, so the last transaction to end a run's step, which commits last,
// sees every other end. (Making steps ready changes no run's end: PENDING and READY
// are both open.)
const settleSQL = `WITH ready AS (
		UPDATE steps x SET status = 'READY', ready_at = now()
		FROM (SELECT DISTINCT d.step_id FROM step_deps d WHERE d.upstream_step_id = ANY ($1::uuid[])) dep,
		LATERAL (SELECT s.id FROM steps s WHERE s.id = dep.step_id AND s.status = 'PENDING'
		         AND NOT EXISTS (SELECT 1 FROM step_deps d JOIN steps u ON u.id = d.upstream_step_id
		                         WHERE d.step_id = s.id AND NOT ` + depDoneSQL + `)
		         OFFSET 0) r
		WHERE x.id = r.id
		RETURNING x.id),
	ended AS (
		UPDATE runs r SET finished_at = now(), status = CASE
			WHEN r.canceled_at IS NOT NULL OR EXISTS (SELECT 1 FROM steps s WHERE s.run_id = r.id AND s.status = 'CANCELED')
				THEN 'CANCELED'
			WHEN EXISTS (SELECT 1 FROM steps s WHERE s.run_id = r.id AND s.status IN ('FAILED', 'UPSTREAM_FAILED'))
				THEN 'FAILED'
			ELSE 'SUCCEEDED' END
		WHERE r.id = ANY ($2::uuid[]) AND r.status IN ('QUEUED', 'RUNNING')
		  AND NOT EXISTS (SELECT 1 FROM steps s WHERE s.run_id = r.id AND s.status IN ` + openSQL + `)
		RETURNING r.id, r.status)
	SELECT ARRAY(SELECT id FROM ready),
		ARRAY(SELECT r.id FROM runs r WHERE r.id = ANY ($2::uuid[]) ORDER BY r.id),
		ARRAY(SELECT coalesce(e.status, r.status) FROM runs r LEFT JOIN ended e ON e.id = r.id
		      WHERE r.id = ANY ($2::uuid[]) ORDER BY r.id)`

// notifyIfReadySQL wakes the listeners when a dependent of the steps $1 is READY
// (made ready by the transaction; freshet_claim_steps does the same after its
// claim).
const notifyIfReadySQL = notifySQL + ` WHERE EXISTS (
	SELECT 1 FROM (SELECT d.step_id FROM step_deps d WHERE d.upstream_step_id = ANY ($1::uuid[])) dep,
	LATERAL (SELECT 1 FROM steps x WHERE x.id = dep.step_id AND x.status = 'READY' OFFSET 0) r)`

// lockBackfillsSQL and backfillStatusSQL do for the backfills of the runs $1 what
// the run locks and settleSQL do for runs: a backfill ends with its last run.
// Only the backfills of runs that ended are locked: the others cannot end.
const (
	lockBackfillsSQL = `SELECT b.id FROM backfills b
		WHERE b.id IN (SELECT r.backfill_id FROM runs r WHERE r.id = ANY ($1::uuid[]) AND r.status NOT IN ('QUEUED', 'RUNNING'))
		  AND b.status IN ('REQUESTED', 'RUNNING')
		ORDER BY b.id FOR NO KEY UPDATE`
	backfillStatusSQL = `UPDATE backfills b SET finished_at = now(), status = CASE
			WHEN b.canceled_at IS NOT NULL OR EXISTS (SELECT 1 FROM runs r WHERE r.backfill_id = b.id AND r.status = 'CANCELED')
				THEN 'CANCELED'
			WHEN EXISTS (SELECT 1 FROM runs r WHERE r.backfill_id = b.id AND r.status = 'FAILED')
				THEN 'FAILED'
			ELSE 'SUCCEEDED' END
		WHERE b.id IN (SELECT r.backfill_id FROM runs r WHERE r.id = ANY ($1::uuid[])) AND b.status IN ('REQUESTED', 'RUNNING')
		  AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.backfill_id = b.id AND r.status IN ('QUEUED', 'RUNNING'))`
)

// settle is the end of a transaction that ended steps.
type settle struct {
	// done are the steps that ended: their dependents may be ready. locked says
	// the caller locked those dependents already.
	done   []uuid.UUID
	locked bool
	// runs are the runs whose steps changed. The caller holds the first's row;
	// the others are locked here, unless runsLocked says the caller holds them
	// all.
	runs       []uuid.UUID
	runsLocked bool
	// backfills says a run may belong to a backfill.
	backfills bool
	// notify wakes the listeners whatever becomes ready (steps were put back READY).
	notify bool
	// claim, when set, claims steps after the rest; wait as in queueClaim.
	claim *store.ClaimRequest
	wait  bool

	ready     []uuid.UUID
	runStatus map[uuid.UUID]store.RunStatus
	claimed   []store.ClaimedStep
}

// queue adds the settling statements to b.
func (st *settle) queue(b *pgx.Batch) {
	st.runs = dedupeFirst(st.runs)
	if st.done == nil {
		st.done = []uuid.UUID{}
	}
	if len(st.runs) > 1 && !st.runsLocked {
		b.Queue(`SELECT id FROM runs WHERE id = ANY ($1::uuid[]) ORDER BY id FOR NO KEY UPDATE`, st.runs[1:])
	}
	if len(st.done) > 0 && !st.locked {
		b.Queue(lockDependentsSQL, st.done)
	}
	b.Queue(settleSQL, st.done, st.runs)
	if st.backfills {
		b.Queue(lockBackfillsSQL, st.runs)
		b.Queue(backfillStatusSQL, st.runs)
	}
	switch {
	case st.claim != nil && !st.notify:
		queueClaim(b, st.claim, st.wait, st.done)
	case st.claim != nil:
		queueClaim(b, st.claim, st.wait, nil)
		b.Queue(notifySQL)
	case st.notify:
		b.Queue(notifySQL)
	case len(st.done) > 0:
		b.Queue(notifyIfReadySQL, st.done)
	}
}

// read reads the results of the statements queue added, in order.
func (st *settle) read(results pgx.BatchResults) error {
	st.claimed = []store.ClaimedStep{}
	if len(st.runs) > 1 && !st.runsLocked {
		if _, err := results.Exec(); err != nil {
			return fmt.Errorf("lock runs: %w", err)
		}
	}
	if len(st.done) > 0 && !st.locked {
		if _, err := results.Exec(); err != nil {
			return fmt.Errorf("lock dependents: %w", err)
		}
	}
	var (
		runIDs   []uuid.UUID
		statuses []string
	)
	if err := results.QueryRow().Scan(&st.ready, &runIDs, &statuses); err != nil {
		return fmt.Errorf("make dependents ready and decide run status: %w", err)
	}
	st.ready = emptyIfNil(st.ready)
	st.runStatus = make(map[uuid.UUID]store.RunStatus, len(runIDs))
	for i, id := range runIDs {
		st.runStatus[id] = store.RunStatus(statuses[i])
	}
	if st.backfills {
		for _, what := range []string{"lock backfills", "decide backfill status"} {
			if _, err := results.Exec(); err != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
		}
	}
	if st.claim != nil {
		var err error
		if st.claimed, err = readClaim(results); err != nil {
			return fmt.Errorf("claim steps: %w", err)
		}
	}
	if st.notify || (st.claim == nil && len(st.done) > 0) {
		if _, err := results.Exec(); err != nil {
			return fmt.Errorf("notify: %w", err)
		}
	}
	return nil
}

// The cascades: what a step's end does to the steps that depend on it.

// downSQL is the recursive CTE "down" of the steps not started yet that depend,
// transitively, on the steps $1, over the deps that kindSQL admits.
func downSQL(kindSQL string) string {
	return `WITH RECURSIVE down(id) AS (
			SELECT d.step_id FROM step_deps d JOIN steps x ON x.id = d.step_id
			WHERE d.upstream_step_id = ANY ($1::uuid[]) AND ` + kindSQL + ` AND x.status IN ('PENDING', 'READY')
		UNION
			SELECT d.step_id FROM down JOIN step_deps d ON d.upstream_step_id = down.id JOIN steps x ON x.id = d.step_id
			WHERE ` + kindSQL + ` AND x.status IN ('PENDING', 'READY'))`
}

// A cascade is two statements: the first locks the steps it will change, the
// second, with a snapshot taken once it holds them, finds them again and changes
// them. A claim that joins one of them holds it (FOR SHARE) until it commits, so
// the join is either seen by the second statement or made after the cascade
// committed, when the claim finds the step ended and its partitions free.
var (
	// failLockSQL and failCascadeSQL make UPSTREAM_FAILED every step depending,
	// over run and join deps, on the failed step $1 (one root per call: the errors
	// name it). A step that joined a failed step names that step; the others name
	// the root ($2: "upstream … failed").
	failLockSQL    = downSQL("true") + ` SELECT x.id FROM steps x WHERE x.id IN (SELECT id FROM down) ORDER BY x.id FOR NO KEY UPDATE`
	failCascadeSQL = downSQL("true") + `,
		failed AS (
			UPDATE steps s SET status = 'UPSTREAM_FAILED', finished_at = now(), not_before = NULL,
				error = coalesce((
					SELECT 'joined step ' || h.id || ' of run ' || h.run_id || ' for ' || ha.key ||
						coalesce(' ' || nullif((SELECT string_agg(p.k, ', ' ORDER BY p.n)
						                        FROM unnest(h.partition_keys) WITH ORDINALITY AS p(k, n)
						                        WHERE p.k = ANY (s.partition_keys)), ''), '') ||
						' failed' || CASE WHEN h.id = ANY ($1::uuid[]) THEN '' ELSE ': ' || $2 END
					FROM step_deps jd JOIN steps h ON h.id = jd.upstream_step_id JOIN assets ha ON ha.id = h.asset_id
					WHERE jd.step_id = s.id AND jd.kind = 'join' AND (h.id = ANY ($1::uuid[]) OR h.id IN (SELECT id FROM down))
					ORDER BY h.id = ANY ($1::uuid[]) DESC, h.id LIMIT 1), $2)
			FROM (SELECT DISTINCT id FROM down) v
			WHERE s.id = v.id AND s.status IN ('PENDING', 'READY')
			RETURNING s.id, s.run_id),
		released AS (DELETE FROM inflight_partitions WHERE step_id IN (SELECT id FROM failed))
		SELECT id, run_id FROM failed`

	// cancelLockSQL and cancelCascadeSQL make CANCELED every step depending, over
	// run deps, on the canceled steps $1 ($2: the error). Steps that joined them
	// see the dependency done: settle makes them ready.
	cancelLockSQL    = downSQL("d.kind = 'run'") + ` SELECT x.id FROM steps x WHERE x.id IN (SELECT id FROM down) ORDER BY x.id FOR NO KEY UPDATE`
	cancelCascadeSQL = downSQL("d.kind = 'run'") + `,
		canceled AS (
			UPDATE steps s SET status = 'CANCELED', finished_at = now(), not_before = NULL, error = $2
			FROM (SELECT DISTINCT id FROM down) v
			WHERE s.id = v.id AND s.status IN ('PENDING', 'READY')
			RETURNING s.id, s.run_id),
		released AS (DELETE FROM inflight_partitions WHERE step_id IN (SELECT id FROM canceled))
		SELECT id, run_id FROM canceled`
)

// cascade collects the steps a cascade changed.
type cascade struct {
	steps []uuid.UUID
	runs  []uuid.UUID
}

// queueFail adds the failure cascade of step root to b; msg names it.
func queueFail(b *pgx.Batch, root uuid.UUID, msg string) {
	roots := []uuid.UUID{root}
	b.Queue(failLockSQL, roots)
	b.Queue(failCascadeSQL, roots, msg)
}

// queueCancel adds the cancel cascade of the steps roots to b.
func queueCancel(b *pgx.Batch, roots []uuid.UUID, msg string) {
	b.Queue(cancelLockSQL, roots)
	b.Queue(cancelCascadeSQL, roots, msg)
}

// read reads the results of a cascade queued by queueFail or queueCancel.
func (c *cascade) read(results pgx.BatchResults) error {
	if _, err := results.Exec(); err != nil {
		return fmt.Errorf("lock dependents: %w", err)
	}
	rows, _ := results.Query()
	var step, run uuid.UUID
	_, err := pgx.ForEachRow(rows, []any{&step, &run}, func() error {
		c.steps, c.runs = append(c.steps, step), append(c.runs, run)
		return nil
	})
	if err != nil {
		return fmt.Errorf("end dependents: %w", err)
	}
	return nil
}

// dedupeFirst returns ids without repeats, keeping the first in place.
func dedupeFirst(ids []uuid.UUID) []uuid.UUID {
	if len(ids) <= 1 {
		return ids
	}
	seen := map[uuid.UUID]bool{}
	out := ids[:0:0]
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}
