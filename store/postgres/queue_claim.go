package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/freshetdev/freshet/store"
)

// ClaimSteps claims up to req.Limit READY steps, in one transaction of one round
// trip: freshet_claim_steps (migrations 00003 and 00004) picks and claims them, waiting for
// the rows of capped assets and runs it must count under their locks.
func (s *Store) ClaimSteps(ctx context.Context, req store.ClaimRequest) ([]store.ClaimedStep, error) {
	if err := checkClaim(&req); err != nil {
		return nil, fmt.Errorf("claim steps: %w", err)
	}
	if req.Limit <= 0 {
		return []store.ClaimedStep{}, nil
	}
	var claimed []store.ClaimedStep
	err := retry(ctx, func() error {
		b := txBatch(writeTx)
		b.Queue(planSettingsSQL)
		queueClaim(b, &req, true, nil)
		return s.batchTx(ctx, b, func(results pgx.BatchResults) error {
			if _, err := results.Exec(); err != nil {
				return err
			}
			var err error
			claimed, err = readClaim(results)
			return err
		})
	})
	if err != nil {
		return nil, fmt.Errorf("claim steps for worker %s: %w", req.Worker, err)
	}
	return claimed, nil
}

func checkClaim(req *store.ClaimRequest) error {
	switch {
	case req.Worker == "" || !isStorableText(req.Worker):
		return errors.New("a claim needs a worker name (printable text)")
	case req.Lease <= 0 && req.Limit > 0:
		return fmt.Errorf("lease %s: a claim needs a positive lease", req.Lease)
	}
	return nil
}

// queueClaim adds the claim of req to b. wait says whether the claim may wait for
// the rows of capped assets and runs (a plain claim, which holds no other lock) or
// must pass over those another transaction holds (the claim that ends FinishStep).
// The claim notifies the listeners when a dependent of a step of notify is READY
// once it claimed.
func queueClaim(b *pgx.Batch, req *store.ClaimRequest, wait bool, notify []uuid.UUID) {
	if notify == nil {
		notify = []uuid.UUID{}
	}
	keys := make([]string, 0, len(req.Concurrency))
	caps := make([]int32, 0, len(req.Concurrency))
	for k, c := range req.Concurrency {
		// A cap of 0 is no cap, as an asset's concurrency of 0 is.
		if c > 0 && isStorableText(string(k)) {
			keys, caps = append(keys, string(k)), append(caps, int32(min(c, 1<<30)))
		}
	}
	b.Queue(`SELECT * FROM freshet_claim_steps($1, $2, $3, $4, $5, $6, $7)`,
		req.Worker, int32(min(req.Limit, 1<<20)), micros(req.Lease), keys, caps, wait, notify)
}

// readClaim reads the steps queueClaim's statement claimed.
func readClaim(results pgx.BatchResults) ([]store.ClaimedStep, error) {
	rows, err := results.Query()
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	claimed := []store.ClaimedStep{}
	for rows.Next() {
		var c store.ClaimedStep
		var err error
		c.Step, err = scanStep(claimRow{rows, &c})
		if err != nil {
			return nil, err
		}
		claimed = append(claimed, c)
	}
	return claimed, rows.Err()
}

// claimRow scans a row of freshet_claim_steps: a step's columns, then the input
// seq, the run's force flag and whether a partition of the step was materialized.
type claimRow struct {
	rows pgx.Rows
	c    *store.ClaimedStep
}

func (r claimRow) Scan(dest ...any) error {
	return r.rows.Scan(append(dest, &r.c.InputSeq, &r.c.Force, &r.c.Materialized)...)
}

// Heartbeat renews the leases a worker holds, in one statement.
func (s *Store) Heartbeat(ctx context.Context, worker string, leases []store.Lease, extend time.Duration) ([]store.LeaseState, error) {
	out := make([]store.LeaseState, len(leases))
	if len(leases) == 0 {
		return out, nil
	}
	ids := make([]uuid.UUID, len(leases))
	attempts := make([]int32, len(leases))
	for i, l := range leases {
		ids[i], attempts[i] = l.StepID, int32(min(max(l.Attempt, 0), 1<<30))
	}
	// The final SELECT reads the steps as they were before the UPDATE (one
	// snapshot): the cancel flag, which the UPDATE does not change.
	rows, err := s.pool.Query(ctx, `
		WITH l AS (SELECT * FROM unnest($2::uuid[], $3::integer[]) WITH ORDINALITY AS l(step_id, attempt, n)),
		renewed AS (
			UPDATE steps s SET lease_expires_at = now() + $4 * interval '1 microsecond'
			FROM (SELECT DISTINCT step_id, attempt FROM l) l
			WHERE s.id = l.step_id AND s.status = 'RUNNING' AND s.lease_owner = $1 AND s.attempt = l.attempt
			RETURNING s.id, s.attempt)
		SELECT l.n, EXISTS (SELECT 1 FROM renewed r WHERE r.id = l.step_id AND r.attempt = l.attempt),
		       coalesce(s.cancel_requested_at IS NOT NULL, false)
		FROM l LEFT JOIN steps s ON s.id = l.step_id
		ORDER BY l.n`, worker, ids, attempts, micros(extend))
	if err != nil {
		return nil, fmt.Errorf("renew %d leases of worker %s: %w", len(leases), worker, err)
	}
	var (
		n                   int64
		held, cancelRequest bool
	)
	_, err = pgx.ForEachRow(rows, []any{&n, &held, &cancelRequest}, func() error {
		out[n-1] = store.LeaseState{Held: held, CancelRequested: cancelRequest}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("renew %d leases of worker %s: %w", len(leases), worker, err)
	}
	return out, nil
}

// sortedIDs returns ids sorted, without repeats.
func sortedIDs(ids []uuid.UUID) []uuid.UUID {
	out := slices.Clone(ids)
	slices.SortFunc(out, func(a, b uuid.UUID) int { return compareUUID(a, b) })
	return slices.Compact(out)
}

func compareUUID(a, b uuid.UUID) int {
	for i := range a {
		if a[i] != b[i] {
			if a[i] < b[i] {
				return -1
			}
			return 1
		}
	}
	return 0
}
