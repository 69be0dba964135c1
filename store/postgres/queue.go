package postgres

import (
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/freshetdev/freshet/assets"
	"github.com/freshetdev/freshet/store"
)

// The engine queue (store.Queue) in PostgreSQL: runs, steps, attempts, leases,
// logs and backfills, in the tables of migrations 00002 and 00003.
//
// Every state change is a transaction of a few round trips (see pipeTx): the
// reads that decide it go in one batch with the BEGIN, the writes in one batch
// with the COMMIT. Rows are locked in one order where a transaction needs several:
// a run's row before its steps' rows, so that everything that changes a run's
// steps (FinishStep, FinishSteps, ExpireLeases, CancelRun, CancelStep) is
// serialized per run and a run's status is decided by the last of them to commit.
// Claims take steps with FOR NO KEY UPDATE SKIP LOCKED and lock run and asset rows
// only where a cap must be counted (see freshet_claim_steps in migrations 00003
// and 00004). doc.go describes the whole, for operators and driver authors.
var _ store.Queue = (*Store)(nil)

// notifyChannel is the channel of LISTEN/NOTIFY that says steps may have become
// ready. It is database-wide: stores of several schemas in one database wake each
// other's workers, which then find nothing (a notification is only a hint).
const notifyChannel = "freshet_steps"

// notifySQL wakes the listeners when the transaction commits. NOTIFY is
// transactional and a transaction's identical notifications are delivered once.
const notifySQL = `SELECT pg_notify('` + notifyChannel + `', '')`

// doneForRunSQL and doneForJoinSQL are the conditions, on the upstream step u of a
// dependency, under which it is done: a run dep when its upstream succeeded or was
// skipped as fresh, a join dep also when its holder was canceled.
const (
	depDoneSQL = `(u.status IN ('SUCCEEDED', 'SKIPPED_FRESH') OR (d.kind = 'join' AND u.status = 'CANCELED'))`
	openSQL    = `('PENDING', 'READY', 'RUNNING')`
)

// stepColumns are the columns scanStep reads, of steps s joined with assets a.
const stepColumns = `s.id, s.run_id, a.key, s.partition_keys, s.ordinal, s.status, s.attempt, s.max_attempts,
	ARRAY(SELECT d.upstream_step_id FROM step_deps d JOIN steps u ON u.id = d.upstream_step_id
	      WHERE d.step_id = s.id AND d.kind = 'run' ORDER BY u.ordinal),
	ARRAY(SELECT d.upstream_step_id FROM step_deps d WHERE d.step_id = s.id AND d.kind = 'join' ORDER BY d.upstream_step_id),
	s.not_before, coalesce(s.lease_owner, ''), s.lease_expires_at, s.cancel_requested_at IS NOT NULL,
	s.created_at, s.ready_at, s.started_at, s.finished_at, coalesce(s.error, '')`

// stepFrom is the FROM clause of stepColumns.
const stepFrom = ` FROM steps s JOIN assets a ON a.id = s.asset_id `

func scanStep(row pgx.Row) (store.Step, error) {
	var (
		s                              store.Step
		key, status                    string
		notBefore, leaseExpires        pgtype.Timestamptz
		readyAt, startedAt, finishedAt pgtype.Timestamptz
		ordinal, attempt, maxAttempts  int32
		deps, joined                   []uuid.UUID
	)
	err := row.Scan(&s.ID, &s.RunID, &key, &s.Partitions, &ordinal, &status, &attempt, &maxAttempts, &deps, &joined,
		&notBefore, &s.LeaseOwner, &leaseExpires, &s.CancelRequested, &s.CreatedAt, &readyAt, &startedAt, &finishedAt, &s.Error)
	if err != nil {
		return s, err
	}
	s.Asset, s.Status = assets.Key(key), store.StepStatus(status)
	s.Ordinal, s.Attempt, s.MaxAttempts = int(ordinal), int(attempt), int(maxAttempts)
	s.Deps, s.Joined = emptyIfNil(deps), emptyIfNil(joined)
	s.CreatedAt = s.CreatedAt.UTC()
	s.NotBefore, s.LeaseExpiresAt = timeOf(notBefore), timeOf(leaseExpires)
	s.ReadyAt, s.StartedAt, s.FinishedAt = timeOf(readyAt), timeOf(startedAt), timeOf(finishedAt)
	return s, nil
}

func scanSteps(rows pgx.Rows) ([]store.Step, error) {
	defer rows.Close()
	steps := []store.Step{}
	for rows.Next() {
		s, err := scanStep(rows)
		if err != nil {
			return nil, err
		}
		steps = append(steps, s)
	}
	return steps, rows.Err()
}

// runColumns are the columns scanRun reads, of runs r, with the run's step and
// partition counts per status.
const runColumns = `r.id, r.status, r.trigger, r.selection, coalesce(r.from_day, ''), coalesce(r.to_day, ''), r.force,
	r.max_parallel, r.backfill_id, coalesce(r.schedule_name, ''), r.parent_run_id, r.planned_seq,
	r.created_at, r.started_at, r.finished_at, r.canceled_at, c.statuses, c.steps, c.partitions`

// runFrom is the FROM clause of runColumns.
const runFrom = ` FROM runs r LEFT JOIN LATERAL (
		SELECT array_agg(x.status) AS statuses, array_agg(x.n) AS steps, array_agg(x.p) AS partitions
		FROM (SELECT s.status, count(*) AS n, sum(s.partition_count) AS p FROM steps s WHERE s.run_id = r.id
		      GROUP BY s.status) x) c ON true `

func scanRun(row pgx.Row) (store.Run, error) {
	var (
		r                           store.Run
		status, trigger             string
		maxParallel                 int32
		backfill, parent            pgtype.UUID
		started, finished, canceled pgtype.Timestamptz
		statuses                    []string
		steps, partitions           []int64
	)
	err := row.Scan(&r.ID, &status, &trigger, &r.Selection, &r.From, &r.To, &r.Force, &maxParallel, &backfill,
		&r.ScheduleName, &parent, &r.PlannedSeq, &r.CreatedAt, &started, &finished, &canceled,
		&statuses, &steps, &partitions)
	if err != nil {
		return r, err
	}
	r.Status, r.Trigger, r.MaxParallel = store.RunStatus(status), store.Trigger(trigger), int(maxParallel)
	r.BackfillID, r.ParentRunID = uuidOf(backfill), uuidOf(parent)
	r.CreatedAt = r.CreatedAt.UTC()
	r.StartedAt, r.FinishedAt, r.CanceledAt = timeOf(started), timeOf(finished), timeOf(canceled)
	r.Counts, r.Partitions = map[store.StepStatus]int{}, map[store.StepStatus]int{}
	for i, st := range statuses {
		r.Counts[store.StepStatus(st)] = int(steps[i])
		r.Partitions[store.StepStatus(st)] = int(partitions[i])
	}
	return r, nil
}

func timeOf(t pgtype.Timestamptz) time.Time {
	if !t.Valid {
		return time.Time{}
	}
	return t.Time.UTC()
}

func uuidOf(u pgtype.UUID) uuid.UUID {
	if !u.Valid {
		return uuid.Nil
	}
	return uuid.UUID(u.Bytes)
}

func emptyIfNil(ids []uuid.UUID) []uuid.UUID {
	if ids == nil {
		return []uuid.UUID{}
	}
	return ids
}

// micros returns d in whole microseconds, the database's precision.
func micros(d time.Duration) int64 { return d.Microseconds() }

// partitionsText names a step's partitions in messages: all of them up to a
// few, else the first and the last.
func partitionsText(ps []string) string {
	switch {
	case len(ps) == 0:
		return "(no partitions)"
	case len(ps) == 1 && ps[0] == "":
		return "(unpartitioned)"
	case len(ps) <= 8:
		return strings.Join(ps, ", ")
	}
	return fmt.Sprintf("%s … %s (%d partitions)", ps[0], ps[len(ps)-1], len(ps))
}

// stepText names a step in messages: its asset and partitions.
func stepText(asset assets.Key, partitions []string) string {
	return string(asset) + " " + partitionsText(partitions)
}
