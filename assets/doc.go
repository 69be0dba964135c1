// Package assets owns the asset model of Freshet: asset keys, dependencies and their
// partition mappings, compute and observe specifications, retry, timeout, batch and
// freshness policies, time-window partitions, and the loader that turns YAML
// definition files into the same Definitions values a Go program can build in code.
//
// The package is pure: apart from reading definition files it does no I/O, keeps no
// global state and starts no goroutines.
//
// # Partitions
//
// A partitioned asset is split into consecutive time windows: hourly, daily, weekly
// (weeks start on Monday) or monthly, beginning at a start date in an IANA timezone.
// Partition i is addressed by index arithmetic, so converting between an index, its
// window and its key is O(1) and never scans:
//
//	p, _ := assets.NewPartitions(assets.PartitionsSpec{Granularity: assets.Daily, Start: "2026-01-01"})
//	i, _ := p.Index("2026-04-08") // 97
//	start, end := p.Window(i)     // 2026-04-08T00:00Z, 2026-04-09T00:00Z
//
// Keys are the window start in the asset's timezone: "2026-04-08" (daily), "2026-04"
// (monthly), the Monday's date (weekly) and, for hourly partitions, "2026-04-08T13:00"
// in UTC or "2026-10-25T02:00+02:00" with the UTC offset in any other timezone, so the
// hour repeated when clocks go back has two distinct keys.
//
// # Definitions
//
// Definitions are loaded from one YAML file or a folder of them with Load, or built in
// Go. Either way Validate checks them as a whole and reports every problem at once;
// errors from files carry FILE:LINE:COL positions.
package assets
