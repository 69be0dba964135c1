package sqlite

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/freshetdev/freshet/store"
)

// ClaimSteps claims up to req.Limit READY steps for req.Worker.
func (s *Store) ClaimSteps(ctx context.Context, req store.ClaimRequest) ([]store.ClaimedStep, error) {
	if err := checkClaimRequest(req); err != nil {
		return nil, err
	}
	var claimed []store.ClaimedStep
	if req.Limit > 0 {
		err := s.withWriteTx(ctx, func(w *writeTx) error {
			var err error
			claimed, err = w.claim(ctx, req, s.now())
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("claim steps for worker %s: %w", req.Worker, err)
		}
	}
	if claimed == nil {
		claimed = []store.ClaimedStep{}
	}
	return claimed, nil
}

func checkClaimRequest(req store.ClaimRequest) error {
	switch {
	case req.Worker == "":
		return errors.New("claim steps: no worker named")
	case req.Lease <= 0:
		return fmt.Errorf("claim steps for worker %s: lease %s; it must be positive", req.Worker, req.Lease)
	}
	return nil
}

// The statements of a claim.
const (
	// claimableRunsSQL lists the runs with a claimable step, oldest first. The
	// EXISTS is one index seek per active run: runs waiting on running steps are
	// passed over without a query of their own.
	claimableRunsSQL = `SELECT r.id, r.max_parallel, r.force FROM runs r INDEXED BY runs_active
		WHERE r.status IN ('QUEUED', 'RUNNING') AND EXISTS (SELECT 1 FROM steps s
			WHERE s.run_id = r.id AND s.status = 'READY' AND (s.not_before IS NULL OR s.not_before <= ?))
		ORDER BY r.created_at, r.id`
	// claimableSQL lists a run's claimable steps in plan order, with how many of
	// their partitions they hold.
	claimableSQL = `SELECT s.id, s.asset_id, s.partition_keys, s.partition_count,
			(SELECT count(*) FROM inflight_partitions i WHERE i.step_id = s.id)
		FROM steps s WHERE s.run_id = ? AND s.status = 'READY' AND (s.not_before IS NULL OR s.not_before <= ?)
		ORDER BY s.ordinal`
	runRunningSQL   = `SELECT count(*) FROM steps WHERE run_id = ? AND status = 'RUNNING'`
	assetRunningSQL = `SELECT count(*) FROM steps WHERE asset_id = ? AND status = 'RUNNING'`
	claimStepSQL    = `UPDATE steps SET status = 'RUNNING', attempt = attempt + 1, lease_owner = ?, lease_expires_at = ?,
		started_at = coalesce(started_at, ?), not_before = NULL WHERE id = ?` + returningStep
	insertAttemptSQL = `INSERT INTO attempts (step_id, attempt, worker, started_at, status, input_seq)
		VALUES (?, ?, ?, ?, 'RUNNING', ?)`
	startRunSQL = `UPDATE runs SET status = 'RUNNING', started_at = coalesce(started_at, ?) WHERE id = ? AND status = 'QUEUED'`

	takeInflightSQL = `INSERT INTO inflight_partitions (asset_id, partition_key, step_id)
		SELECT ?, value, ? FROM json_each(?) WHERE true ON CONFLICT DO NOTHING`
	stepHoldersSQL = `SELECT i.step_id FROM json_each(?) j
		JOIN inflight_partitions i ON i.asset_id = ? AND i.partition_key = j.value
		WHERE i.step_id <> ? ORDER BY j.key`
	joinAtClaimSQL   = `INSERT INTO step_deps (step_id, upstream_step_id, kind) VALUES (?, ?, 'join') ON CONFLICT DO NOTHING`
	backToPendingSQL = `UPDATE steps SET status = 'PENDING', ready_at = NULL, waits_on_step_id = ? WHERE id = ?`

	// materializedSQL returns those of the given steps with a success recorded
	// for at least one of their partitions: one primary-key probe of
	// partition_state per partition, up to the first found (CROSS JOIN keeps
	// that order: without statistics the planner would rather scan the asset's
	// rows).
	materializedSQL = `SELECT s.id FROM json_each(?) j JOIN steps s ON s.id = j.value
		WHERE EXISTS (SELECT 1 FROM json_each(s.partition_keys) k CROSS JOIN partition_state p
			ON p.asset_id = s.asset_id AND p.partition_key = k.value WHERE p.success_seq <> 0)`
)

// candidate is a claimable step.
type candidate struct {
	id           string
	assetID      int64
	keys         string
	count, holds int
}

// claim claims up to req.Limit steps: oldest run first, plan order within a run,
// skipping assets at their concurrency cap and runs at their max parallel. The
// transaction is the only writer, so the counts it reads stay true until it
// commits: the caps are exact.
func (w *writeTx) claim(ctx context.Context, req store.ClaimRequest, now time.Time) ([]store.ClaimedStep, error) {
	nowUS := micros(now)
	expires := micros(now.Add(req.Lease))
	watermark, err := readClock(ctx, w)
	if err != nil {
		return nil, err
	}

	// Running steps per capped asset, kept current as steps are claimed.
	capOf := make(map[int64]int, len(req.Concurrency))
	running := make(map[int64]int, len(req.Concurrency))
	for key, n := range req.Concurrency {
		if n <= 0 {
			continue // no cap, as for a run's MaxParallel
		}
		id, err := lookupAssetID(ctx, w, key)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		capOf[id] = n
		var count int
		if err := w.QueryRowContext(ctx, assetRunningSQL, id).Scan(&count); err != nil {
			return nil, fmt.Errorf("count running steps of %s: %w", key, err)
		}
		running[id] = count
	}

	type activeRun struct {
		id          string
		maxParallel int
		force       bool
	}
	var runs []activeRun
	rows, err := w.QueryContext(ctx, claimableRunsSQL, nowUS)
	if err != nil {
		return nil, fmt.Errorf("list active runs: %w", err)
	}
	for rows.Next() {
		var r activeRun
		if err := rows.Scan(&r.id, &r.maxParallel, &r.force); err != nil {
			rows.Close()
			return nil, fmt.Errorf("list active runs: %w", err)
		}
		runs = append(runs, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list active runs: %w", err)
	}

	var claimed []store.ClaimedStep
	for _, r := range runs {
		if len(claimed) >= req.Limit {
			break
		}
		runRunning := 0
		if r.maxParallel > 0 {
			if err := w.QueryRowContext(ctx, runRunningSQL, r.id).Scan(&runRunning); err != nil {
				return nil, fmt.Errorf("count running steps of run %s: %w", r.id, err)
			}
		}
		started := false
		for {
			room := req.Limit - len(claimed)
			if r.maxParallel > 0 {
				room = min(room, r.maxParallel-runRunning)
			}
			if room <= 0 {
				break
			}
			picked, err := w.pickCandidates(ctx, r.id, nowUS, room, capOf, running)
			if err != nil {
				return nil, err
			}
			joined := false
			for _, c := range picked {
				if c.holds < c.count {
					took, err := w.takePartitions(ctx, c)
					if err != nil {
						return nil, err
					}
					if !took {
						joined = true
						continue
					}
				}
				st, err := scanStep(w.QueryRowContext(ctx, claimStepSQL, req.Worker, expires, nowUS, c.id))
				if err != nil {
					return nil, fmt.Errorf("claim step %s: %w", c.id, err)
				}
				if _, err := w.ExecContext(ctx, insertAttemptSQL, c.id, st.Attempt, req.Worker, nowUS, watermark); err != nil {
					return nil, fmt.Errorf("record attempt %d of step %s: %w", st.Attempt, c.id, err)
				}
				claimed = append(claimed, store.ClaimedStep{Step: st, InputSeq: watermark, Force: r.force})
				runRunning++
				if _, capped := capOf[c.assetID]; capped {
					running[c.assetID]++
				}
				started = true
			}
			// Unless a step joined another and left room, the run has given
			// what it can.
			if !joined || len(picked) == 0 {
				break
			}
		}
		if started {
			if _, err := w.ExecContext(ctx, startRunSQL, nowUS, r.id); err != nil {
				return nil, fmt.Errorf("start run %s: %w", r.id, err)
			}
		}
	}
	if len(claimed) == 0 {
		return nil, nil
	}
	ids := make([]uuid.UUID, len(claimed))
	byID := make(map[uuid.UUID]*store.Step, len(claimed))
	for i := range claimed {
		ids[i] = claimed[i].ID
		byID[ids[i]] = &claimed[i].Step
	}
	idsJSON := jsonArray(ids)
	if err := loadDeps(ctx, w, depsByIDsSQL, idsJSON, byID); err != nil {
		return nil, err
	}
	if err := w.markMaterialized(ctx, claimed, idsJSON); err != nil {
		return nil, err
	}
	return claimed, nil
}

// markMaterialized sets the Materialized of claimed steps (ids: their ids as a
// JSON array). The watermark the claim hands out is the clock's current value,
// so every success recorded is at or before their InputSeq.
func (w *writeTx) markMaterialized(ctx context.Context, claimed []store.ClaimedStep, ids string) error {
	rows, err := w.QueryContext(ctx, materializedSQL, ids)
	if err != nil {
		return fmt.Errorf("look up materializations of claimed steps: %w", err)
	}
	defer rows.Close()
	found := make(map[string]bool, len(claimed))
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return fmt.Errorf("look up materializations of claimed steps: %w", err)
		}
		found[id] = true
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("look up materializations of claimed steps: %w", err)
	}
	for i := range claimed {
		claimed[i].Materialized = found[claimed[i].ID.String()]
	}
	return nil
}

// pickCandidates returns up to room claimable steps of a run in plan order,
// skipping those of assets at their cap (capOf) given the steps running.
func (w *writeTx) pickCandidates(ctx context.Context, runID string, nowUS int64, room int, capOf, running map[int64]int) ([]candidate, error) {
	rows, err := w.QueryContext(ctx, claimableSQL, runID, nowUS)
	if err != nil {
		return nil, fmt.Errorf("list ready steps of run %s: %w", runID, err)
	}
	defer rows.Close()
	var picked []candidate
	pickedOf := make(map[int64]int)
	for len(picked) < room && rows.Next() {
		var c candidate
		if err := rows.Scan(&c.id, &c.assetID, &c.keys, &c.count, &c.holds); err != nil {
			return nil, fmt.Errorf("list ready steps of run %s: %w", runID, err)
		}
		if n, capped := capOf[c.assetID]; capped && running[c.assetID]+pickedOf[c.assetID] >= n {
			continue
		}
		pickedOf[c.assetID]++
		picked = append(picked, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list ready steps of run %s: %w", runID, err)
	}
	return picked, nil
}

// takePartitions makes a step that does not hold its partitions (it joined
// another at creation, or at an earlier claim) take them, all or none: when any is
// held by another step it takes none, joins every holder and goes back to
// PENDING. It returns whether the step now holds all its partitions. (The claim
// is the only writer: what it reads stays true until it commits.)
func (w *writeTx) takePartitions(ctx context.Context, c candidate) (bool, error) {
	rows, err := w.QueryContext(ctx, stepHoldersSQL, c.keys, c.assetID, c.id)
	if err != nil {
		return false, fmt.Errorf("find in-flight holders of step %s: %w", c.id, err)
	}
	var holders []string
	for rows.Next() {
		var h string
		if err := rows.Scan(&h); err != nil {
			rows.Close()
			return false, fmt.Errorf("find in-flight holders of step %s: %w", c.id, err)
		}
		if !slices.Contains(holders, h) {
			holders = append(holders, h)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return false, fmt.Errorf("find in-flight holders of step %s: %w", c.id, err)
	}
	if len(holders) == 0 {
		if _, err := w.ExecContext(ctx, takeInflightSQL, c.assetID, c.id, c.keys); err != nil {
			return false, fmt.Errorf("take in-flight partitions of step %s: %w", c.id, err)
		}
		return true, nil
	}
	if c.holds > 0 {
		// All or none: a step never keeps part of its partitions.
		if _, err := w.ExecContext(ctx, releaseSQL, c.id); err != nil {
			return false, fmt.Errorf("release partitions of step %s: %w", c.id, err)
		}
	}
	for _, h := range holders {
		if _, err := w.ExecContext(ctx, joinAtClaimSQL, c.id, h); err != nil {
			return false, fmt.Errorf("record step %s joining step %s: %w", c.id, h, err)
		}
	}
	if _, err := w.ExecContext(ctx, backToPendingSQL, holders[0], c.id); err != nil {
		return false, fmt.Errorf("put step %s back to pending: %w", c.id, err)
	}
	return false, nil
}

// Heartbeat renews the leases worker holds until now+extend, in one statement.
func (s *Store) Heartbeat(ctx context.Context, worker string, leases []store.Lease, extend time.Duration) ([]store.LeaseState, error) {
	out := make([]store.LeaseState, len(leases))
	if len(leases) == 0 {
		return out, nil
	}
	type leaseRow struct {
		ID      string `json:"i"`
		Attempt int    `json:"a"`
	}
	rows := make([]leaseRow, len(leases))
	ids := make([]string, len(leases))
	for i, l := range leases {
		rows[i] = leaseRow{l.StepID.String(), l.Attempt}
		ids[i] = rows[i].ID
	}
	type held struct {
		id      string
		attempt int
	}
	err := s.withWriteTx(ctx, func(w *writeTx) error {
		expires := micros(s.now().Add(extend))
		found, err := w.QueryContext(ctx, `UPDATE steps SET lease_expires_at = ?1
			FROM (SELECT value->>'i' AS id, value->>'a' AS attempt FROM json_each(?2)) l
			WHERE steps.id = l.id AND steps.attempt = l.attempt AND steps.status = 'RUNNING' AND steps.lease_owner = ?3
			RETURNING steps.id, steps.attempt, steps.cancel_requested_at IS NOT NULL`, expires, jsonArray(rows), worker)
		if err != nil {
			return fmt.Errorf("renew leases: %w", err)
		}
		renewed := make(map[held]bool, len(leases))
		cancel := make(map[string]bool, len(leases))
		for found.Next() {
			var (
				h         held
				requested bool
			)
			if err := found.Scan(&h.id, &h.attempt, &requested); err != nil {
				found.Close()
				return fmt.Errorf("renew leases: %w", err)
			}
			renewed[h] = true
			cancel[h.id] = requested
		}
		found.Close()
		if err := found.Err(); err != nil {
			return fmt.Errorf("renew leases: %w", err)
		}
		if len(renewed) < len(leases) {
			// Leases not held: still say whether their steps were asked to stop.
			requested, err := w.QueryContext(ctx, `SELECT id, cancel_requested_at IS NOT NULL FROM steps
				WHERE id IN (SELECT value FROM json_each(?))`, jsonArray(ids))
			if err != nil {
				return fmt.Errorf("read cancel requests: %w", err)
			}
			defer requested.Close()
			for requested.Next() {
				var (
					id string
					r  bool
				)
				if err := requested.Scan(&id, &r); err != nil {
					return fmt.Errorf("read cancel requests: %w", err)
				}
				cancel[id] = r
			}
			if err := requested.Err(); err != nil {
				return fmt.Errorf("read cancel requests: %w", err)
			}
		}
		for i, r := range rows {
			out[i] = store.LeaseState{Held: renewed[held{r.ID, r.Attempt}], CancelRequested: cancel[r.ID]}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("heartbeat of worker %s: %w", worker, err)
	}
	return out, nil
}
