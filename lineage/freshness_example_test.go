package lineage_test

import (
	"fmt"
	"log"
	"time"

	"github.com/freshetdev/freshet/assets"
	"github.com/freshetdev/freshet/lineage"
)

func ExampleEvaluateFreshness() {
	daily, err := assets.NewPartitions(assets.PartitionsSpec{Granularity: assets.Daily, Start: "2026-01-01"})
	if err != nil {
		log.Fatal(err)
	}
	orders := &assets.Asset{
		Key:        "sales/orders_clean",
		Partitions: daily,
		Compute:    assets.SQLCompute{File: "transform.sql", Connection: "warehouse"},
		Freshness:  &assets.FreshnessPolicy{MaxLag: 26 * time.Hour, WarnLag: 25 * time.Hour},
	}
	now := time.Date(2026, 1, 6, 2, 0, 0, 0, time.UTC)
	// 2026-01-01 .. 2026-01-05 exist; 2026-01-03 was never built.
	built := []bool{true, true, false, true, true}
	in := lineage.FreshnessInput{
		Count:        daily.Count(now),
		Materialized: func(i int) bool { return built[i] },
	}
	f := lineage.EvaluateFreshness(orders, in, now)
	fmt.Println(f.Status, f.Lag)
	fmt.Println(f.Reason)

	built[2] = true // backfilled
	f = lineage.EvaluateFreshness(orders, in, now)
	fmt.Println(f.Status, f.Lag)

	orders.Freshness = &assets.FreshnessPolicy{Deadline: &assets.Deadline{Cron: "0 9 * * *"}}
	built[4] = false
	f = lineage.EvaluateFreshness(orders, in, now.Add(8*time.Hour))
	fmt.Println(f.Status)
	fmt.Println(f.Reason)
	// Output:
	// FAIL 74h0m0s
	// sales/orders_clean is 74h old, more than max_lag 26h: its data is complete through 2026-01-03 00:00 UTC, and partition 2026-01-03 is not materialized
	// PASS 2h0m0s
	// FAIL
	// sales/orders_clean: partition 2026-01-05 was due at 2026-01-06 09:00 UTC and is not materialized, 1h late (deadline 0 9 * * * (UTC))
}
