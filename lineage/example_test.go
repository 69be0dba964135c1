package lineage_test

import (
	"fmt"
	"log"
	"os"

	"github.com/freshetdev/freshet/assets"
	"github.com/freshetdev/freshet/graph"
	"github.com/freshetdev/freshet/lineage"
)

// salesGraph is the daily sales pipeline of the design document, built in code.
func salesGraph() *graph.Graph {
	daily, err := assets.NewPartitions(assets.PartitionsSpec{Granularity: assets.Daily, Start: "2026-01-01"})
	if err != nil {
		log.Fatal(err)
	}
	weekly, err := assets.NewPartitions(assets.PartitionsSpec{Granularity: assets.Weekly, Start: "2026-01-05"})
	if err != nil {
		log.Fatal(err)
	}
	sql := assets.SQLCompute{File: "transform.sql", Connection: "warehouse"}
	g, err := graph.New(&assets.Definitions{Assets: []*assets.Asset{
		{Key: "sales/raw_orders", Group: "sales", Owners: []string{"team:data-eng"}, Tags: []string{"pii"},
			Partitions: daily, Compute: assets.CommandCompute{Argv: []string{"python3", "fetch.py", "--date", "{partition}"}}},
		{Key: "sales/orders_clean", Group: "sales", Tags: []string{"pii"}, Partitions: daily,
			Deps: []assets.Dep{{Asset: "sales/raw_orders"}}, Compute: sql},
		{Key: "sales/weekly_revenue", Group: "sales", Partitions: weekly,
			Deps: []assets.Dep{{Asset: "sales/orders_clean"}}, Compute: sql},
		{Key: "sales/rolling_7d", Group: "sales", Partitions: daily,
			Deps: []assets.Dep{{Asset: "sales/orders_clean", StartOffset: -6}}, Compute: sql},
		{Key: "sales/all_time_summary", Group: "sales",
			Deps: []assets.Dep{{Asset: "sales/orders_clean", Mapping: assets.MappingAll}}, Compute: sql},
		{Key: "sales/exchange_rates", Group: "finance"},
	}})
	if err != nil {
		log.Fatal(err)
	}
	return g
}

func ExampleSelect() {
	g := salesGraph()
	for _, expr := range []string{
		"sales/orders_clean+1",
		"tag:pii,sales/*",
		"+sales/weekly_revenue group:finance",
		"owner:team:data-eng+1",
		"tag:nightly",
		"sales/raw_order",
	} {
		sel, err := lineage.Select(g, expr)
		if err != nil {
			fmt.Printf("%-36s error: %v\n", expr, err)
			continue
		}
		var keys []assets.Key
		for i, ok := range sel {
			if ok {
				keys = append(keys, g.Asset(i).Key)
			}
		}
		fmt.Printf("%-36s %v\n", expr, keys)
	}
	_, err := lineage.Parse("sales/orders_clean++")
	fmt.Println(err)
	// Output:
	// sales/orders_clean+1                 [sales/orders_clean sales/weekly_revenue sales/rolling_7d sales/all_time_summary]
	// tag:pii,sales/*                      [sales/raw_orders sales/orders_clean]
	// +sales/weekly_revenue group:finance  [sales/raw_orders sales/orders_clean sales/weekly_revenue sales/exchange_rates]
	// owner:team:data-eng+1                [sales/raw_orders sales/orders_clean]
	// tag:nightly                          []
	// sales/raw_order                      error: unknown asset "sales/raw_order" (did you mean "sales/raw_orders"?)
	// selection "sales/orders_clean++": column 20: unexpected "+"
}

func ExampleTraverse() {
	g := salesGraph()
	l, err := lineage.Traverse(g, "sales/orders_clean", lineage.Both, 1)
	if err != nil {
		log.Fatal(err)
	}
	for _, n := range l.Nodes {
		fmt.Printf("%+d %s\n", n.Degree, n.Key)
	}
	fmt.Println()
	if err := l.WriteText(os.Stdout); err != nil {
		log.Fatal(err)
	}
	// Output:
	// -1 sales/raw_orders
	// +0 sales/orders_clean
	// +1 sales/all_time_summary
	// +1 sales/rolling_7d
	// +1 sales/weekly_revenue
	//
	//   ↑ sales/raw_orders
	// sales/orders_clean
	//   ↓ sales/all_time_summary (all)
	//   ↓ sales/rolling_7d [-6..0]
	//   ↓ sales/weekly_revenue
}
