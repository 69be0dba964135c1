package gql

import "time"

// Complexity: every field costs 1 plus what it selects (gqlgen's default); a
// list field multiplies what it selects by how many items it may return, so that
// a query fanning out list inside list (upstream { downstream { upstream … } })
// adds up to what it would cost to answer. The assetGraph's nodes and a log
// page's lines are counted once: they are the UI's main reads and cost little
// per item.
const (
	neighbourFanOut = 10  // upstream or downstream assets of one asset, a guess
	stepsPerRun     = 100 // steps of one run, a guess
)

func listOf(n *int, def, child int) int {
	k := def
	if n != nil && *n > 0 {
		k = *n
	}
	return 1 + k*child
}

func setComplexity(c *ComplexityRoot) {
	c.Asset.Upstream = func(child int) int { return 1 + neighbourFanOut*child }
	c.Asset.Downstream = func(child int) int { return 1 + neighbourFanOut*child }
	c.Asset.Materializations = func(child int, first *int, _ *string) int { return listOf(first, 20, child) }
	c.Partition.History = func(child int, first *int) int { return listOf(first, 20, child) }
	c.Query.Runs = func(child int, _ *RunStatus, _ *string, first *int, _ *string) int { return listOf(first, 50, child) }
	c.Query.Backfills = func(child int, first *int) int { return listOf(first, 50, child) }
	c.Run.Steps = func(child int) int { return 1 + stepsPerRun*child }
	c.Schedule.Ticks = func(child int, first *int) int { return listOf(first, 10, child) }
	c.Query.FreshnessEvents = func(child int, _ *time.Time, _ *string, first *int) int { return listOf(first, 100, child) }
}
