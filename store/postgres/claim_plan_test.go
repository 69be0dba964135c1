package postgres

import (
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/freshetdev/freshet/store"
)

// TestClaimReadsOnlyItsStepsPartitionState checks that claiming a step reads the
// state of that step's partitions only, however many partitions of its asset are
// materialized, whatever the table held when the claim's statements were planned
// (a connection plans them once, at its first claim, and keeps the plan). Each
// case materializes early partitions before the first claim, then 800 more.
//
// The claim says whether a step's partitions were ever materialized. Written as
// "partition_key = ANY (the step's keys)", a plan made while the table held a few
// rows and no statistics read every partition of the asset instead, by the
// (asset_id, partition_idx) index: an hourly backfill of 8,694 steps took 2
// minutes instead of 13 seconds when a worker's connection had planned it so.
func TestClaimReadsOnlyItsStepsPartitionState(t *testing.T) {
	for _, early := range []int{0, 24, 100, 200} {
		t.Run(fmt.Sprintf("early=%d", early), func(t *testing.T) { claimPlanCase(t, early) })
	}
}

func claimPlanCase(t *testing.T, early int) {
	// One connection: the claims share its plans, and it reads its own statistics.
	s := openStore(t, WithPoolConfig(func(c *pgxpool.Config) { c.MaxConns = 1 }))
	ctx := t.Context()
	a := daily(t, "big", "2024-01-01")
	syncDefs(t, s, a)
	const done = 800 // partitions materialized between the two claims (all before now)
	run, err := s.CreateRun(ctx, store.NewRun{Trigger: store.TriggerManual, Steps: []store.NewStep{
		{Asset: a.Key, Partitions: []string{dayKey(done)}, MaxAttempts: 1},
		{Asset: a.Key, Partitions: []string{dayKey(done + 1)}, MaxAttempts: 1},
	}})
	if err != nil {
		t.Fatal(err)
	}
	// Materialize partitions lo … hi-1 in appends small enough not to refresh the
	// planner's statistics (which would plan the claim again).
	materialize := func(lo, hi int) {
		for ; lo < hi; lo += 50 {
			var events []store.Event
			for i := lo; i < min(lo+50, hi); i++ {
				events = append(events, materialization(string(a.Key), i, "v1"))
			}
			appendEvents(t, s, events...)
		}
	}
	req := store.ClaimRequest{Worker: "w", Limit: 1, Lease: time.Minute}
	materialize(done+10, done+10+early)
	if c, err := s.ClaimSteps(ctx, req); err != nil || len(c) != 1 {
		t.Fatalf("first claim: %v, %v", c, err)
	}

	materialize(0, done)

	read := func() int64 {
		t.Helper()
		// This backend's counters reach the statistics at the end of a transaction.
		if _, err := s.pool.Exec(ctx, `SELECT pg_stat_force_next_flush()`); err != nil {
			t.Fatal(err)
		}
		var n int64
		err := s.pool.QueryRow(ctx, `SELECT coalesce(sum(idx_tup_read), 0) FROM pg_stat_user_indexes
			WHERE relid = 'partition_state'::regclass`).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := read()
	claimed, err := s.ClaimSteps(ctx, req)
	if err != nil || len(claimed) != 1 || claimed[0].RunID != run.ID {
		t.Fatalf("second claim: %v, %v", claimed, err)
	}
	if n := read() - before; n > 10 {
		t.Errorf("claiming a step of one partition read %d partition state entries (%d partitions of the asset are materialized); want at most 10", n, done)
	}
}
