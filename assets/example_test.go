package assets_test

import (
	"errors"
	"fmt"

	"github.com/freshetdev/freshet/assets"
)

// Parse turns one YAML file into Definitions: the same values a Go program could
// build with &assets.Definitions{...}. Load does the same for a file or a folder.
func ExampleParse() {
	defs, err := assets.Parse("freshet.yaml", []byte(`
assets:
  - key: sales/raw_orders
    partitions: {daily: {start: 2026-01-01}}
    compute: {command: [python3, fetch.py, --date, "{partition}"]}
  - key: sales/weekly_revenue
    deps: [sales/raw_orders]               # 7 daily partitions → 1 weekly
    partitions: {weekly: {start: 2026-01-05, timezone: Europe/Berlin}}
    compute: {command: [python3, weekly.py, "{start}", "{end}"]}
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, a := range defs.Assets {
		fmt.Printf("%s (%s)", a.Key, a.Partitions.Granularity())
		for _, d := range a.Deps {
			fmt.Printf(" ← %s", d.Asset)
		}
		fmt.Println()
	}
	weekly := defs.Asset("sales/weekly_revenue")
	start, end := weekly.Partitions.Window(2)
	fmt.Println("weekly partition 2:", weekly.Partitions.Key(2), start, "→", end)

	// Every mistake is reported at once, each at FILE:LINE:COL.
	_, err = assets.Parse("freshet.yaml", []byte(`
assets:
  - key: sales/raw_orders
    partitions: {daily: {start: 2026-01-01, timezone: Europe/Berln}}
    compute: {command: [python3, fetch.py]}
    timeout: 15 minutes
  - key: sales/orders_clean
    deps: [sales/raw_order]
    compute: {command: [python3, clean.py]}
`))
	fmt.Println(err)
	var errs assets.Errors
	if errors.As(err, &errs) {
		fmt.Println(len(errs), "errors; the last concerns", errs[2].Asset, "at", errs[2].Path)
	}
	// Output:
	// sales/raw_orders (daily)
	// sales/weekly_revenue (weekly) ← sales/raw_orders
	// weekly partition 2: 2026-01-19 2026-01-19 00:00:00 +0100 CET → 2026-01-26 00:00:00 +0100 CET
	// freshet.yaml:4:55: asset sales/raw_orders: partitions.daily.timezone: unknown timezone "Europe/Berln": use an IANA name such as UTC or Europe/Berlin
	// freshet.yaml:6:14: asset sales/raw_orders: timeout: bad duration "15 minutes": want a number and a unit (ms, s, m, h or d), such as 30s, 10m, 1h30m or 2d
	// freshet.yaml:8:12: asset sales/orders_clean: deps[0].asset: unknown upstream asset "sales/raw_order" (did you mean "sales/raw_orders"?)
	// 3 errors; the last concerns sales/orders_clean at assets[1].deps[0].asset
}
