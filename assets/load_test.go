package assets

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// y drops the leading newline of a raw string, so YAML in tests starts on line 1.
func y(s string) []byte { return []byte(strings.TrimPrefix(s, "\n")) }

func mustPartitions(t *testing.T, spec PartitionsSpec) *Partitions {
	t.Helper()
	p, err := NewPartitions(spec)
	if err != nil {
		t.Fatalf("NewPartitions(%+v): %v", spec, err)
	}
	return p
}

// assetView is an Asset with its Partitions replaced by their declaration, so two
// assets built separately compare with reflect.DeepEqual.
type assetView struct {
	Asset
	Spec *PartitionsSpec
}

func view(a *Asset) assetView {
	v := assetView{Asset: *a}
	v.Partitions = nil
	if a.Partitions != nil {
		s := a.Partitions.Spec()
		v.Spec = &s
	}
	return v
}

// diffDefs lists every difference between two Definitions.
func diffDefs(got, want *Definitions) []string {
	var diffs []string
	if got.Dir != want.Dir {
		diffs = append(diffs, fmt.Sprintf("Dir: got %q, want %q", got.Dir, want.Dir))
	}
	if len(got.Assets) != len(want.Assets) {
		diffs = append(diffs, fmt.Sprintf("got %d assets, want %d", len(got.Assets), len(want.Assets)))
	}
	for i := 0; i < min(len(got.Assets), len(want.Assets)); i++ {
		g, w := view(got.Assets[i]), view(want.Assets[i])
		gv, wv := reflect.ValueOf(g.Asset), reflect.ValueOf(w.Asset)
		for f := 0; f < gv.NumField(); f++ {
			if !reflect.DeepEqual(gv.Field(f).Interface(), wv.Field(f).Interface()) {
				diffs = append(diffs, fmt.Sprintf("assets[%d] (%s).%s:\n   got %#v\n  want %#v",
					i, w.Key, gv.Type().Field(f).Name, gv.Field(f).Interface(), wv.Field(f).Interface()))
			}
		}
		if !reflect.DeepEqual(g.Spec, w.Spec) {
			diffs = append(diffs, fmt.Sprintf("assets[%d] (%s).Partitions: got %+v, want %+v", i, w.Key, deref(g.Spec), deref(w.Spec)))
		}
	}
	for _, c := range []struct {
		name      string
		got, want any
	}{
		{"Schedules", got.Schedules, want.Schedules},
		{"Connections", got.Connections, want.Connections},
		{"Notifiers", got.Notifiers, want.Notifiers},
	} {
		if !reflect.DeepEqual(c.got, c.want) {
			diffs = append(diffs, fmt.Sprintf("%s:\n   got %#v\n  want %#v", c.name, c.got, c.want))
		}
	}
	return diffs
}

func deref(p *PartitionsSpec) any {
	if p == nil {
		return nil
	}
	return *p
}

func abs(t *testing.T, path string) string {
	t.Helper()
	a, err := filepath.Abs(path)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// designDefs is testdata/design/freshet.yaml (the DESIGN.md §3 example) built in Go.
func designDefs(t *testing.T) *Definitions {
	daily := func(tz string) *Partitions {
		return mustPartitions(t, PartitionsSpec{Granularity: Daily, Start: "2026-01-01", Timezone: tz})
	}
	return &Definitions{
		Dir: abs(t, "testdata/design"),
		Assets: []*Asset{
			{
				Key:         "sales/raw_orders",
				Group:       "sales",
				Owners:      []string{"team:data-eng"},
				Partitions:  daily("UTC"),
				Compute:     CommandCompute{Argv: []string{"python3", "fetch.py", "--date", "{partition}"}},
				Retries:     Retries{Max: 3, Backoff: 30 * time.Second, MaxBackoff: 10 * time.Minute},
				Timeout:     15 * time.Minute,
				CodeVersion: "1",
			},
			{
				Key:        "sales/orders_clean",
				Deps:       []Dep{{Asset: "sales/raw_orders"}},
				Partitions: daily(""),
				Compute:    SQLCompute{File: "transform.sql", Connection: "warehouse"},
				Freshness:  &FreshnessPolicy{Deadline: &Deadline{Cron: "0 9 * * *"}},
			},
			{
				Key:        "sales/weekly_revenue",
				Deps:       []Dep{{Asset: "sales/orders_clean"}},
				Partitions: mustPartitions(t, PartitionsSpec{Granularity: Weekly, Start: "2026-01-05"}),
				Batch:      Batch{MaxPartitions: 8},
				Compute:    CommandCompute{Argv: []string{"python3", "weekly.py", "{start}", "{end}"}},
			},
			{
				Key:        "sales/rolling_7d",
				Deps:       []Dep{{Asset: "sales/orders_clean", StartOffset: -6}},
				Partitions: daily(""),
				Compute:    SQLCompute{File: "rolling_7d.sql", Connection: "warehouse"},
			},
			{
				Key:     "sales/all_time_summary",
				Deps:    []Dep{{Asset: "sales/orders_clean", Mapping: MappingAll}},
				Compute: SQLCompute{File: "summary.sql", Connection: "warehouse"},
			},
			{
				Key:     "sales/exchange_rates",
				Observe: CommandCompute{Argv: []string{"sh", "-c", "stat -c %Y rates.csv"}},
			},
		},
		Schedules:   []Schedule{{Name: "nightly", Cron: "0 2 * * *", Timezone: "UTC", Select: "*"}},
		Connections: map[string]Connection{"warehouse": {Postgres: &PostgresConnection{URLEnv: "WAREHOUSE_URL"}}},
		Notifiers:   []Notifier{{Webhook: &WebhookNotifier{URLEnv: "ALERT_WEBHOOK_URL"}}},
	}
}

// fullDefs is testdata/full/freshet.yaml, which uses every field, built in Go.
func fullDefs(t *testing.T) *Definitions {
	retries := Retries{Max: 5, Backoff: time.Minute, MaxBackoff: time.Hour}
	return &Definitions{
		Dir: abs(t, "testdata/full"),
		Assets: []*Asset{
			{
				Key:         "web/events",
				Description: "Raw click events, one file per hour.",
				Group:       "web",
				Owners:      []string{"team:web", "alice@example.com"},
				Tags:        []string{"pii", "ingest"},
				CodeVersion: "1",
				Partitions:  mustPartitions(t, PartitionsSpec{Granularity: Hourly, Start: "2026-03-01T00:00", Timezone: "Europe/Berlin", EndOffset: 1}),
				Compute: CommandCompute{
					Argv: []string{"./ingest", "--hour", "{partition}"},
					Env:  map[string]string{"REGION": "eu", "DEBUG": ""},
					Dir:  "jobs/ingest",
				},
				Retries:     retries,
				Timeout:     90 * time.Minute,
				Concurrency: 4,
			},
			{
				Key:         "web/sessions",
				Description: "Sessions per local day, starting at 06:00 Berlin time.",
				Group:       "web",
				Deps:        []Dep{{Asset: "web/events", StartOffset: -1, EndOffset: 1}},
				Partitions:  mustPartitions(t, PartitionsSpec{Granularity: Daily, Start: "2026-03-01 06:00", End: "2027-01-01", Timezone: "Europe/Berlin"}),
				Compute: HTTPCompute{
					URL:     "https://jobs.example.com/sessions",
					Headers: map[string]string{"Authorization": "Bearer abc", "X-Team": "web"},
				},
				Retries:     Retries{Max: 1, Backoff: time.Minute, MaxBackoff: time.Hour},
				Freshness:   &FreshnessPolicy{MaxLag: 48 * time.Hour, WarnLag: 36 * time.Hour},
				Batch:       Batch{MaxPartitions: 31},
				CodeVersion: "v2.1",
			},
			{
				Key:        "finance/monthly_close",
				Group:      "finance",
				Deps:       []Dep{{Asset: "web/sessions"}},
				Partitions: mustPartitions(t, PartitionsSpec{Granularity: Monthly, Start: "2026-01-01", Timezone: "America/New_York"}),
				Compute:    SQLCompute{File: "sql/monthly_close.sql", Connection: "ledger"},
				Freshness:  &FreshnessPolicy{Deadline: &Deadline{Cron: "0 9 2 * *", Timezone: "America/New_York"}},
				Timeout:    36 * time.Hour,
			},
			{
				Key:     "finance/latest",
				Deps:    []Dep{{Asset: "finance/monthly_close", Mapping: MappingLast}},
				Compute: CommandCompute{Argv: []string{"python3", "latest.py"}},
				Retries: retries,
			},
			{
				Key:         "finance/fx",
				Description: "FX rates, owned by treasury.",
				Observe:     HTTPCompute{URL: "https://fx.example.com/version"},
			},
		},
		Schedules: []Schedule{
			{Name: "hourly_web", Cron: "5 * * * *", Timezone: "Europe/Berlin", Select: "group:web"},
			{Name: "nightly", Cron: "@daily", Select: "+finance/latest", Action: "materialize_stale"},
		},
		Connections: map[string]Connection{
			"ledger":    {Postgres: &PostgresConnection{URL: "postgres://ledger@db.internal:5432/ledger"}},
			"warehouse": {Postgres: &PostgresConnection{URLEnv: "WAREHOUSE_URL"}},
		},
		Notifiers: []Notifier{
			{Log: true},
			{Slack: &WebhookNotifier{URLEnv: "SLACK_WEBHOOK_URL"}},
			{Webhook: &WebhookNotifier{URL: "https://hooks.example.com/freshet"}},
		},
	}
}

// TestLoadMatchesGoAPI checks that the loader produces exactly the values a Go program
// builds for the same project.
func TestLoadMatchesGoAPI(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		path string
		want func(*testing.T) *Definitions
	}{
		{"testdata/design/freshet.yaml", designDefs},
		{"testdata/full/freshet.yaml", fullDefs},
	} {
		t.Run(tc.path, func(t *testing.T) {
			t.Parallel()
			want := tc.want(t)
			if errs := want.Validate(); len(errs) > 0 {
				t.Fatalf("the Go definitions do not validate:\n%v", errs)
			}
			got, err := Load(tc.path)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			for _, d := range diffDefs(got, want) {
				t.Error(d)
			}
		})
	}
}

// TestLoadDesignExample checks the values of the DESIGN.md §3 example that the
// planner relies on: partition keys and indices, mappings, compute kinds, policies.
func TestLoadDesignExample(t *testing.T) {
	t.Parallel()
	defs, err := Load("testdata/design/freshet.yaml")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	get := func(k Key) *Asset {
		a := defs.Asset(k)
		if a == nil {
			t.Fatalf("no asset %s", k)
		}
		return a
	}
	raw, clean := get("sales/raw_orders"), get("sales/orders_clean")
	weekly, rolling, summary, rates := get("sales/weekly_revenue"), get("sales/rolling_7d"), get("sales/all_time_summary"), get("sales/exchange_rates")

	t.Run("partitions", func(t *testing.T) {
		t.Parallel()
		if i, err := raw.Partitions.Index("2026-04-08"); err != nil || i != 97 {
			t.Errorf("raw_orders Index(2026-04-08) = %d, %v; want 97", i, err)
		}
		if k := raw.Partitions.Key(97); k != "2026-04-08" {
			t.Errorf("raw_orders Key(97) = %q", k)
		}
		if k := weekly.Partitions.Key(1); k != "2026-01-12" {
			t.Errorf("weekly_revenue Key(1) = %q, want the Monday 2026-01-12", k)
		}
		if g := weekly.Partitions.Granularity(); g != Weekly {
			t.Errorf("weekly_revenue granularity %v", g)
		}
		if tz := clean.Partitions.Spec().Timezone; tz != "UTC" {
			t.Errorf("default timezone %q, want UTC", tz)
		}
		if summary.Partitions != nil || rates.Partitions != nil {
			t.Error("all_time_summary and exchange_rates should be unpartitioned")
		}
	})
	t.Run("mappings", func(t *testing.T) {
		t.Parallel()
		// 7 daily → 1 weekly: week 0 (2026-01-05) needs days 4…10 of orders_clean.
		d := weekly.Deps[0]
		if m := d.EffectiveMapping(weekly, clean); m != MappingTime {
			t.Errorf("weekly mapping %q", m)
		}
		if lo, hi := NewTimeMapping(weekly.Partitions, clean.Partitions, d.StartOffset, d.EndOffset).Range(0); lo != 4 || hi != 10 {
			t.Errorf("weekly week 0 needs days [%d, %d], want [4, 10]", lo, hi)
		}
		// rolling_7d: the day and the 6 before it.
		d = rolling.Deps[0]
		if lo, hi := NewTimeMapping(rolling.Partitions, clean.Partitions, d.StartOffset, d.EndOffset).Range(10); lo != 4 || hi != 10 {
			t.Errorf("rolling_7d day 10 needs [%d, %d], want [4, 10]", lo, hi)
		}
		if m := summary.Deps[0].EffectiveMapping(summary, clean); m != MappingAll {
			t.Errorf("all_time_summary mapping %q", m)
		}
	})
	t.Run("compute and policies", func(t *testing.T) {
		t.Parallel()
		for _, c := range []struct {
			a    *Asset
			kind ComputeKind
		}{{raw, ComputeCommand}, {clean, ComputeSQL}, {weekly, ComputeCommand}, {summary, ComputeSQL}} {
			if c.a.Compute == nil || c.a.Compute.Kind() != c.kind {
				t.Errorf("%s compute %#v, want %s", c.a.Key, c.a.Compute, c.kind)
			}
		}
		if !rates.IsSource() || rates.Observe.Kind() != ComputeCommand {
			t.Errorf("exchange_rates: source %v, observe %#v", rates.IsSource(), rates.Observe)
		}
		if raw.Retries.Backoff != 30*time.Second || raw.Retries.MaxBackoff != 10*time.Minute || raw.Timeout != 15*time.Minute {
			t.Errorf("raw_orders retries %+v timeout %v", raw.Retries, raw.Timeout)
		}
		if f := clean.Freshness; f == nil || f.Deadline == nil || f.Deadline.Cron != "0 9 * * *" {
			t.Errorf("orders_clean freshness %+v", f)
		}
		if weekly.Batch.MaxPartitions != 8 {
			t.Errorf("weekly batch %+v", weekly.Batch)
		}
	})
	t.Run("project", func(t *testing.T) {
		t.Parallel()
		if len(defs.Schedules) != 1 || defs.Schedules[0].Cron != "0 2 * * *" || defs.Schedules[0].Select != "*" {
			t.Errorf("schedules %+v", defs.Schedules)
		}
		if c := defs.Connections["warehouse"]; c.Postgres == nil || c.Postgres.URLEnv != "WAREHOUSE_URL" {
			t.Errorf("connections %+v", defs.Connections)
		}
		if len(defs.Notifiers) != 1 || defs.Notifiers[0].Webhook == nil || defs.Notifiers[0].Webhook.URLEnv != "ALERT_WEBHOOK_URL" {
			t.Errorf("notifiers %+v", defs.Notifiers)
		}
		if !filepath.IsAbs(defs.Dir) || filepath.Base(defs.Dir) != "design" {
			t.Errorf("Dir %q, want the absolute path of testdata/design", defs.Dir)
		}
	})
}

// errorLines returns err's lines, failing unless it is an Errors in which every
// element is positioned.
func errorLines(t *testing.T, err error) []string {
	t.Helper()
	if err == nil {
		return nil
	}
	es, ok := err.(Errors)
	if !ok {
		t.Fatalf("error is a %T, want assets.Errors: %v", err, err)
	}
	for _, e := range es {
		if e.Pos.Line < 1 || e.Pos.Col < 1 || e.Pos.File == "" {
			t.Errorf("error without a position: %#v", e)
		}
	}
	return strings.Split(es.Error(), "\n")
}

func sameLines(t *testing.T, got, want []string) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %d errors:\n\t%s\nwant %d:\n\t%s", len(got), strings.Join(got, "\n\t"), len(want), strings.Join(want, "\n\t"))
	}
}

func TestLoadThreeMistakes(t *testing.T) {
	t.Parallel()
	defs, err := Load("testdata/bad/three_mistakes.yaml")
	if defs != nil {
		t.Error("definitions returned along with errors")
	}
	const f = "testdata/bad/three_mistakes.yaml"
	sameLines(t, errorLines(t, err), []string{
		f + `:4:55: asset sales/raw_orders: partitions.daily.timezone: unknown timezone "Europe/Berln": use an IANA name such as UTC or Europe/Berlin`,
		f + `:7:14: asset sales/raw_orders: timeout: bad duration "15 minutes": want a number and a unit (ms, s, m, h or d), such as 30s, 10m, 1h30m or 2d`,
		f + `:9:12: asset sales/orders_clean: deps[0].asset: unknown upstream asset "sales/raw_order" (did you mean "sales/raw_orders"?)`,
	})
	var es Errors
	if !errors.As(err, &es) || es[2].Path != "assets[1].deps[0].asset" || es[2].Asset != "sales/orders_clean" {
		t.Errorf("third error: %#v", es[2])
	}
}

// TestParseErrors has one case per class of mistake. Each lists every line the
// error prints: one mistake gives one error, not a cascade.
func TestParseErrors(t *testing.T) {
	t.Parallel()
	const assetFieldList = "key, description, group, owners, tags, code_version, partitions, deps, compute, observe, retries, timeout, freshness, batch, concurrency"
	for _, tc := range []struct {
		name string
		src  string
		want []string
	}{
		// Unknown fields, at every level.
		{"unknown top-level field", `
asset:
  - key: a
`, []string{`t.yaml:1:1: unknown field "asset" (did you mean "assets"?); allowed: assets, schedules, connections, notifiers`}},
		{"unknown asset field", `
assets:
  - key: a
    compute: {command: [x]}
    dpes: [b]
`, []string{`t.yaml:4:5: asset a: unknown field "dpes" (did you mean "deps"?); allowed: ` + assetFieldList}},
		{"unknown nested field, no suggestion", `
assets:
  - key: a
    compute: {command: [x]}
    retries: {max: 1, jitter: 2s}
`, []string{`t.yaml:4:23: asset a: retries: unknown field "jitter"; allowed: max, backoff, max_backoff`}},
		{"misspelled key is one error", `
assets:
  - kye: a
    compute: {command: [x]}
`, []string{`t.yaml:2:5: assets[0]: unknown field "kye" (did you mean "key"?); allowed: ` + assetFieldList}},
		{"misspelled connection is one error", `
assets:
  - key: a
    compute: {sql: a.sql, conection: dw}
connections:
  dw: {postgres: {url_env: DW}}
`, []string{`t.yaml:3:27: asset a: compute: unknown field "conection" (did you mean "connection"?); allowed: command, sql, http, env, dir, connection, headers`}},
		{"unknown field in a schedule", `
schedules:
  - {name: n, cron: "0 2 * * *", selct: "*"}
`, []string{`t.yaml:2:34: schedules[0]: unknown field "selct" (did you mean "select"?); allowed: name, cron, timezone, select, action`}},
		{"field given twice", `
assets:
  - key: a
    compute: {command: [x]}
    key: b
`, []string{`t.yaml:4:5: asset a: field "key" is given twice (first at line 2)`}},

		// References between assets.
		{"unknown upstream with a suggestion", `
assets:
  - key: sales/orders
    compute: {command: [x]}
  - key: sales/report
    deps: [sales/order]
    compute: {command: [x]}
`, []string{`t.yaml:5:12: asset sales/report: deps[0].asset: unknown upstream asset "sales/order" (did you mean "sales/orders"?)`}},
		{"duplicate asset keys", `
assets:
  - key: a
    compute: {command: [x]}
  - key: a
    compute: {command: [y]}
`, []string{`t.yaml:4:10: asset a: key: duplicate asset key: already defined as assets[0]`}},
		{"cycle", `
assets:
  - key: a
    deps: [b]
    compute: {command: [x]}
  - key: b
    deps: [{asset: a}]
    compute: {command: [x]}
`, []string{`t.yaml:6:20: asset b: deps[0].asset: dependency cycle: a → b → a (each asset is built from the one before it)`}},
		{"malformed asset key: its dependents are not echoed", `
assets:
  - key: Sales/Orders
    compute: {command: [x]}
  - key: sales/report
    deps: [Sales/Orders]
    compute: {command: [x]}
`, []string{`t.yaml:2:10: assets[0].key: asset key "Sales/Orders" contains 'S': segments may use only lowercase letters, digits and _`}},
		{"malformed upstream key", `
assets:
  - key: sales/report
    deps: [{asset: sales//orders}]
    compute: {command: [x]}
`, []string{`t.yaml:3:20: asset sales/report: deps[0].asset: asset key "sales//orders" has an empty segment (segment 2): keys are identifiers joined by single slashes, like sales/raw_orders`}},
		{"missing key", `
assets:
  - compute: {command: [x]}
`, []string{`t.yaml:2:5: assets[0].key: missing: every asset needs a key, like key: sales/raw_orders`}},

		// Partitions.
		{"bad date", `
assets:
  - key: a
    partitions: {daily: {start: 2026-02-30}}
    compute: {command: [x]}
`, []string{`t.yaml:3:33: asset a: partitions.daily.start: "2026-02-30" is not a date (YYYY-MM-DD) or local date-time (YYYY-MM-DDTHH:MM)`}},
		{"bad timezone and bad end, both reported", `
assets:
  - key: a
    partitions:
      hourly: {start: "2026-01-01T00:30", timezone: Mars/Olympus}
    compute: {command: [x]}
`, []string{
			`t.yaml:4:23: asset a: partitions.hourly.start: "2026-01-01T00:30": hourly partitions start on the hour`,
			`t.yaml:4:53: asset a: partitions.hourly.timezone: unknown timezone "Mars/Olympus": use an IANA name such as UTC or Europe/Berlin`,
		}},
		{"weekly start not a Monday", `
assets:
  - key: a
    partitions: {weekly: {start: 2026-01-07}}
    compute: {command: [x]}
`, []string{`t.yaml:3:34: asset a: partitions.weekly.start: "2026-01-07" is a Wednesday: weekly partitions start on a Monday (the Monday before is 2026-01-05)`}},
		{"monthly start not the first", `
assets:
  - key: a
    partitions: {monthly: {start: 2026-01-15}}
    compute: {command: [x]}
`, []string{`t.yaml:3:35: asset a: partitions.monthly.start: "2026-01-15": monthly partitions start on the first day of a month`}},
		{"end before start", `
assets:
  - key: a
    partitions: {daily: {start: 2026-01-10, end: 2026-01-01}}
    compute: {command: [x]}
`, []string{`t.yaml:3:50: asset a: partitions.daily.end: "2026-01-01" is not after start "2026-01-10"`}},
		{"two granularities", `
assets:
  - key: a
    partitions: {daily: {start: 2026-01-01}, weekly: {start: 2026-01-05}}
    compute: {command: [x]}
`, []string{`t.yaml:3:46: asset a: partitions: give one granularity, not both daily and weekly`}},
		{"unknown granularity, no echo in dependents", `
assets:
  - key: a
    partitions: {yearly: {start: 2026-01-01}}
    compute: {command: [x]}
  - key: b
    deps: [{asset: a, start_offset: -1}]
    partitions: {daily: {start: 2026-01-01}}
    compute: {command: [x]}
  - key: c
    deps: [{asset: a, mapping: last}]
    compute: {command: [x]}
`, []string{`t.yaml:3:18: asset a: partitions: unknown field "yearly"; allowed: hourly, daily, weekly, monthly`}},
		{"failed partitions are not echoed by offsets or batch", `
assets:
  - key: a
    partitions: {daily: {start: yesterday}}
    compute: {command: [x]}
    batch: {max_partitions: 7}
  - key: b
    deps: [{asset: a, start_offset: -1}]
    partitions: {daily: {start: 2026-01-01}}
    compute: {command: [x]}
`, []string{`t.yaml:3:33: asset a: partitions.daily.start: "yesterday" is not a date (YYYY-MM-DD) or local date-time (YYYY-MM-DDTHH:MM)`}},

		// Mappings.
		{"mapping all into a partitioned downstream", `
assets:
  - key: a
    partitions: {daily: {start: 2026-01-01}}
    compute: {command: [x]}
  - key: b
    deps: [{asset: a, mapping: all}]
    partitions: {daily: {start: 2026-01-01}}
    compute: {command: [x]}
`, []string{`t.yaml:6:32: asset b: deps[0].mapping: mapping "all" is for an unpartitioned downstream, and b is daily-partitioned: use the default time mapping`}},
		{"offsets on an unpartitioned side", `
assets:
  - key: a
    compute: {command: [x]}
  - key: b
    deps: [{asset: a, end_offset: 1}]
    partitions: {daily: {start: 2026-01-01}}
    compute: {command: [x]}
`, []string{`t.yaml:5:12: asset b: deps[0]: start_offset and end_offset need both b and a to be partitioned`}},
		{"start_offset after end_offset", `
assets:
  - key: a
    partitions: {daily: {start: 2026-01-01}}
    compute: {command: [x]}
  - key: b
    deps: [{asset: a, start_offset: 2, end_offset: 1}]
    partitions: {daily: {start: 2026-01-01}}
    compute: {command: [x]}
`, []string{`t.yaml:6:37: asset b: deps[0].start_offset: start_offset 2 is after end_offset 1`}},
		{"unknown mapping", `
assets:
  - key: a
    partitions: {daily: {start: 2026-01-01}}
    compute: {command: [x]}
  - key: b
    deps: [{asset: a, mapping: first}]
    compute: {command: [x]}
`, []string{`t.yaml:6:32: asset b: deps[0].mapping: unknown mapping "first" (want time, all or last)`}},

		// Durations, integers, crons and timezones.
		{"bad duration", `
assets:
  - key: a
    compute: {command: [x]}
    retries: {max: 2, backoff: 30 secs}
`, []string{`t.yaml:4:32: asset a: retries.backoff: bad duration "30 secs": want a number and a unit (ms, s, m, h or d), such as 30s, 10m, 1h30m or 2d`}},
		{"duration without a unit", `
assets:
  - key: a
    compute: {command: [x]}
    timeout: 30
`, []string{`t.yaml:4:14: asset a: timeout: bad duration "30": give a unit, such as 30s, 30m, 30h or 30d`}},
		{"bad max_lag is one error", `
assets:
  - key: a
    compute: {command: [x]}
    freshness: {max_lag: 1 day, warn_lag: 12h}
`, []string{`t.yaml:4:26: asset a: freshness.max_lag: bad duration "1 day": want a number and a unit (ms, s, m, h or d), such as 30s, 10m, 1h30m or 2d`}},
		{"non-integer integers", `
assets:
  - key: a
    partitions: {daily: {start: 2026-01-01}}
    compute: {command: [x]}
    retries: {max: three}
    batch: {max_partitions: 2.5}
    concurrency: "4"
`, []string{
			`t.yaml:5:20: asset a: retries.max: must be an integer, got the string "three"`,
			`t.yaml:6:29: asset a: batch.max_partitions: must be an integer, got the number 2.5`,
			`t.yaml:7:18: asset a: concurrency: must be an integer, got the string "4"`,
		}},
		{"integer out of range", `
assets:
  - key: a
    partitions: {daily: {start: 2026-01-01, end_offset: 99999999999}}
    compute: {command: [x]}
`, []string{`t.yaml:3:57: asset a: partitions.daily.end_offset: integer 99999999999 is out of range: give one between -2147483648 and 2147483647`}},
		{"bad crons", `
assets:
  - key: a
    compute: {command: [x]}
    freshness: {deadline: {cron: "0 9 * *"}}
schedules:
  - {name: n, cron: "TZ=Europe/Berlin", select: "*"}
`, []string{
			`t.yaml:4:34: asset a: freshness.deadline.cron: bad cron "0 9 * *": expected exactly 5 fields, found 4: [0 9 * *]`,
			`t.yaml:6:21: schedules[0].cron: bad cron "TZ=Europe/Berlin": put the timezone in the timezone field, not in the cron expression`,
		}},
		{"bad timezones", `
assets:
  - key: a
    compute: {command: [x]}
    freshness: {deadline: {cron: "0 9 * * *", timezone: Berlin}}
schedules:
  - {name: n, cron: "0 2 * * *", timezone: Local, select: "*"}
`, []string{
			`t.yaml:4:57: asset a: freshness.deadline.timezone: unknown timezone "Berlin": use an IANA name such as UTC or Europe/Berlin`,
			`t.yaml:6:44: schedules[0].timezone: unknown timezone "Local": use an IANA name such as UTC or Europe/Berlin`,
		}},

		// Compute.
		{"compute as a shell string", `
assets:
  - key: a
    compute:
      command: python3 fetch.py --date {partition}
`, []string{`t.yaml:4:16: asset a: compute.command: must be an argv list, not a string: commands are never run through a shell; write [python3, fetch.py, --date, "{partition}"] (or [sh, -c, "..."] to use a shell on purpose)`}},
		{"failed compute does not make a source", `
assets:
  - key: a
    compute: {command: run.sh}
    retries: {max: 2}
`, []string{`t.yaml:3:24: asset a: compute.command: must be an argv list, not a string: commands are never run through a shell; write [run.sh] (or [sh, -c, "..."] to use a shell on purpose)`}},
		{"sql with an unknown connection", `
assets:
  - key: a
    compute: {sql: a.sql, connection: warehose}
connections:
  warehouse: {postgres: {url_env: DW}}
`, []string{`t.yaml:3:39: asset a: compute.connection: unknown connection "warehose" (defined: warehouse)`}},
		{"two compute kinds", `
assets:
  - key: a
    compute: {command: [x], http: "https://x"}
`, []string{`t.yaml:3:29: asset a: compute: give exactly one of command, sql or http, not both command and http`}},
		{"no compute kind", `
assets:
  - key: a
    compute: {dir: jobs}
`, []string{`t.yaml:3:14: asset a: compute: needs one of command (an argv list), sql (a file, with connection) or http (a URL)`}},
		{"companion of another kind", `
assets:
  - key: a
    compute: {sql: a.sql, connection: dw, env: {A: b}}
connections:
  dw: {postgres: {url_env: DW}}
`, []string{`t.yaml:3:43: asset a: compute.env: env applies only to command compute, and this one is sql`}},
		{"argument that is a mapping", `
assets:
  - key: a
    compute: {command: [python3, --date: x]}
`, []string{`t.yaml:3:34: asset a: compute.command[1]: each argument must be a string, got a mapping (quote arguments that contain ": ")`}},
		{"observe on a built asset", `
assets:
  - key: a
    compute: {command: [x]}
    observe: {command: [y]}
`, []string{`t.yaml:4:5: asset a: observe: only source assets (no compute) are observed; this asset is materialized`}},

		// Wrong node kinds.
		{"root is a list", `
- key: a
`, []string{`t.yaml:1:1: the file must be a mapping with the fields assets, schedules, connections, notifiers, got a list`}},
		{"assets is a mapping", `
assets:
  sales/orders: {compute: {command: [x]}}
`, []string{`t.yaml:2:3: assets: must be a list of assets, each a mapping starting with key:, got a mapping`}},
		{"asset is a string", `
assets:
  - sales/orders
`, []string{`t.yaml:2:5: assets[0]: must be a mapping, like {key: sales/raw_orders, compute: {command: [python3, fetch.py]}}, got the string "sales/orders"`}},
		{"wrong kinds inside an asset", `
assets:
  - key: a
    owners: team:data
    deps: {asset: b}
    compute: [x]
    partitions: daily
    freshness: 26h
`, []string{
			`t.yaml:3:13: asset a: owners: must be a list of strings, like [a, b], got the string "team:data"`,
			`t.yaml:4:11: asset a: deps: must be a list of upstream assets, like [sales/raw_orders, {asset: sales/rates, start_offset: -1}], got a mapping`,
			`t.yaml:5:14: asset a: compute: must be a mapping, like {command: [python3, build.py, "{partition}"]}, got a list`,
			`t.yaml:6:17: asset a: partitions: must be a mapping, like {daily: {start: 2026-01-01}}, got the string "daily"`,
			`t.yaml:7:16: asset a: freshness: must be a mapping, like {max_lag: 26h} or {deadline: {cron: "0 9 * * *"}}, got the string "26h"`,
		}},
		{"dep is a list", `
assets:
  - key: a
    compute: {command: [x]}
    deps: [[b, c]]
`, []string{`t.yaml:4:12: asset a: deps[0]: must be an upstream asset key, or a mapping like {asset: sales/raw_orders, start_offset: -1}, got a list`}},
		{"description is a mapping", `
assets:
  - key: a
    compute: {command: [x]}
    description: {text: hi}
`, []string{`t.yaml:4:18: asset a: description: must be a string, got a mapping`}},

		// Schedules, connections and notifiers.
		{"schedule mistakes", `
schedules:
  - {name: n, cron: "0 2 * * *", select: "*", action: run_all}
  - {name: n, cron: "0 3 * * *"}
`, []string{
			`t.yaml:2:55: schedules[0].action: unknown action "run_all" (want materialize_stale)`,
			`t.yaml:3:5: schedules[1].select: a schedule needs a selection, such as "*"`,
			`t.yaml:3:12: schedules[1].name: duplicate schedule name "n": already used by schedules[0]`,
		}},
		{"broken connection is not echoed by its users", `
assets:
  - key: a
    compute: {sql: a.sql, connection: dw}
connections:
  dw: {postgress: {url_env: DW}}
`, []string{`t.yaml:5:8: connections.dw: unknown field "postgress" (did you mean "postgres"?); allowed: postgres`}},
		{"connection with url and url_env", `
connections:
  dw: {postgres: {url: "postgres://x", url_env: DW}}
`, []string{`t.yaml:2:8: connections.dw.postgres: give exactly one of url or url_env`}},
		{"notifier mistakes", `
notifiers:
  - {log: yes}
  - {slack: {}}
  - {email: {to: x}}
`, []string{
			`t.yaml:2:11: notifiers[0].log: must be true or false, got the string "yes"`,
			`t.yaml:3:5: notifiers[1]: give exactly one of url or url_env`,
			`t.yaml:4:6: notifiers[2]: unknown field "email"; allowed: log, webhook, slack`,
		}},

		// YAML itself.
		{"syntax error", `
assets:
  - key: a
    compute: {command: [x]
  - key: b
`, []string{`t.yaml:3:5: YAML syntax error: did not find expected ',' or '}'`}},
		{"mapping value in a scalar", `
assets:
  - key: a
    description: costs: a lot
`, []string{`t.yaml:3:5: YAML syntax error: mapping values are not allowed in this context`}},
		{"tab indentation", "assets:\n\t- key: a\n", []string{`t.yaml:2:2: YAML syntax error: found character that cannot start any token (YAML is indented with spaces; this line has a tab)`}},
		{"unknown anchor", `
assets:
  - key: a
    retries: *defaults
`, []string{`t.yaml:3:14: YAML syntax error: unknown anchor 'defaults' referenced`}},
		{"second document", `
assets: []
---
assets: []
`, []string{`t.yaml:3:1: a definitions file holds one YAML document; this second one (after ---) would be ignored: put its definitions in the first document or in another file`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			defs, err := Parse("t.yaml", y(tc.src))
			if err == nil {
				t.Fatalf("no error; definitions %+v", defs)
			}
			if defs != nil {
				t.Error("definitions returned along with errors")
			}
			sameLines(t, errorLines(t, err), tc.want)
		})
	}
}

func TestParseValid(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		src   string
		check func(*testing.T, *Definitions)
	}{
		{"empty input", "", func(t *testing.T, d *Definitions) {
			if len(d.Assets)+len(d.Schedules)+len(d.Connections)+len(d.Notifiers) != 0 {
				t.Errorf("%+v", d)
			}
		}},
		{"comments only", "# nothing yet\n", nil},
		{"empty lists and nulls", `
assets: []
schedules:
connections: ~
notifiers: null
`, nil},
		{"nulls are absent fields", `
assets:
  - key: a
    partitions: ~
    deps:
    freshness: null
    compute: {command: [x]}
`, func(t *testing.T, d *Definitions) {
			if a := d.Assets[0]; a.Partitions != nil || a.Deps != nil || a.Freshness != nil {
				t.Errorf("%+v", a)
			}
		}},
		{"scalars kept as written", `
assets:
  - key: a
    code_version: 1.10
    description: 2026-01-01
    compute: {command: [run, 42, true, "{partition}"], env: {N: 3}}
`, func(t *testing.T, d *Definitions) {
			a := d.Assets[0]
			if a.CodeVersion != "1.10" || a.Description != "2026-01-01" {
				t.Errorf("code_version %q, description %q", a.CodeVersion, a.Description)
			}
			c := a.Compute.(CommandCompute)
			if !reflect.DeepEqual(c.Argv, []string{"run", "42", "true", "{partition}"}) || c.Env["N"] != "3" {
				t.Errorf("%#v", c)
			}
		}},
		{"integers in YAML forms", `
assets:
  - key: a
    compute: {command: [x]}
    retries: {max: 0x3}
    concurrency: 1_000
`, func(t *testing.T, d *Definitions) {
			if a := d.Assets[0]; a.Retries.Max != 3 || a.Concurrency != 1000 {
				t.Errorf("max %d, concurrency %d", a.Retries.Max, a.Concurrency)
			}
		}},
		{"anchors, aliases and merge keys", `
assets:
  - key: a
    compute: &cmd {command: [run, a]}
    retries: &r {max: 3, backoff: 1m}
  - key: b
    compute: *cmd
    retries: {<<: *r, backoff: 5m}
`, func(t *testing.T, d *Definitions) {
			b := d.Assets[1]
			if b.Retries != (Retries{Max: 3, Backoff: 5 * time.Minute}) || b.Compute.(CommandCompute).Argv[1] != "a" {
				t.Errorf("%+v", b)
			}
		}},
		{"day durations", `
assets:
  - key: a
    compute: {command: [x]}
    timeout: 1d12h
    freshness: {max_lag: 2d, warn_lag: 1d}
`, func(t *testing.T, d *Definitions) {
			a := d.Assets[0]
			if a.Timeout != 36*time.Hour || a.Freshness.MaxLag != 48*time.Hour || a.Freshness.WarnLag != 24*time.Hour {
				t.Errorf("timeout %v freshness %+v", a.Timeout, a.Freshness)
			}
		}},
		{"trailing empty document", "assets: []\n---\n", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d, err := Parse("t.yaml", y(tc.src))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if d.Dir != "" {
				t.Errorf("Parse set Dir %q", d.Dir)
			}
			if tc.check != nil {
				tc.check(t, d)
			}
		})
	}
}

func TestParseDuration(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want time.Duration
		err  string
	}{
		{in: "30s", want: 30 * time.Second},
		{in: "10m", want: 10 * time.Minute},
		{in: "26h", want: 26 * time.Hour},
		{in: "1h30m", want: 90 * time.Minute},
		{in: "2d", want: 48 * time.Hour},
		{in: "1d6h30m", want: 30*time.Hour + 30*time.Minute},
		{in: "0", want: 0},
		{in: "-5m", want: -5 * time.Minute},
		{in: "-1d", want: -24 * time.Hour},
		{in: "1.5h", want: 90 * time.Minute},
		{in: "", err: `bad duration ""`},
		{in: "soon", err: `bad duration "soon"`},
		{in: "5", err: `give a unit, such as 5s`},
		{in: "2 d", err: `bad duration "2 d"`},
		{in: "1d-2h", err: `bad duration "1d-2h"`},
		{in: "1d2d", err: `bad duration "1d2d"`},
		{in: "--5m", err: `bad duration "--5m"`},
		{in: "1.5d", err: `bad duration "1.5d"`},
		{in: "99999999d", err: `too long`},
		{in: "106751d23h59m", err: `too long`},
	} {
		t.Run(tc.in, func(t *testing.T) {
			t.Parallel()
			d, err := ParseDuration(tc.in)
			switch {
			case tc.err == "" && (err != nil || d != tc.want):
				t.Errorf("ParseDuration(%q) = %v, %v; want %v", tc.in, d, err, tc.want)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Errorf("ParseDuration(%q) = %v, %v; want an error containing %q", tc.in, d, err, tc.err)
			}
		})
	}
}

func TestLoadFolder(t *testing.T) {
	t.Parallel()
	t.Run("merges files in name order", func(t *testing.T) {
		t.Parallel()
		defs, err := Load("testdata/merge")
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		var keys []Key
		for _, a := range defs.Assets {
			keys = append(keys, a.Key)
		}
		// 10_sources.yaml, then 20_reports.yml; notes.txt and .hidden.yaml are skipped.
		if want := []Key{"sales/raw_orders", "sales/exchange_rates", "sales/daily_report"}; !reflect.DeepEqual(keys, want) {
			t.Errorf("assets %v, want %v", keys, want)
		}
		if len(defs.Schedules) != 1 || len(defs.Notifiers) != 1 || defs.Connections["warehouse"].Postgres == nil {
			t.Errorf("schedules %+v, notifiers %+v, connections %+v", defs.Schedules, defs.Notifiers, defs.Connections)
		}
		if defs.Dir != abs(t, "testdata/merge") {
			t.Errorf("Dir %q", defs.Dir)
		}
	})
	t.Run("errors name the file and the global index", func(t *testing.T) {
		t.Parallel()
		_, err := Load("testdata/merge_bad")
		const second = "testdata/merge_bad/20_reports.yaml"
		sameLines(t, errorLines(t, err), []string{
			second + `:6:14: asset sales/daily_report: timeout: bad duration "soon": want a number and a unit (ms, s, m, h or d), such as 30s, 10m, 1h30m or 2d`,
			second + `:8:3: connections.warehouse: connection "warehouse" is already defined at testdata/merge_bad/10_sources.yaml:8:3`,
		})
		es := err.(Errors)
		if es[0].Path != "assets[2].timeout" || es[0].Pos.File != second {
			t.Errorf("first error: path %q in %q, want assets[2].timeout in the second file", es[0].Path, es[0].Pos.File)
		}
	})
	t.Run("validation sees every file", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		write(t, filepath.Join(dir, "a.yaml"), "assets:\n  - key: a\n    compute: {command: [x]}\n")
		write(t, filepath.Join(dir, "b.yaml"), "assets:\n  - key: b\n    deps: [a, c]\n    compute: {command: [x]}\n")
		_, err := Load(dir)
		sameLines(t, errorLines(t, err), []string{
			filepath.Join(dir, "b.yaml") + `:3:15: asset b: deps[1].asset: unknown upstream asset "c" (did you mean "a"?)`,
		})
	})
	t.Run("a syntax error does not make the other files' references unknown", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		write(t, filepath.Join(dir, "a.yaml"), "assets:\n  - key: a\n    compute: {command: [x]\n")
		write(t, filepath.Join(dir, "b.yaml"), "assets:\n  - key: b\n    deps: [a]\n    compute: {command: [x]}\n    timeout: 5 min\n")
		_, err := Load(dir)
		lines := errorLines(t, err)
		if len(lines) != 2 || !strings.Contains(lines[0], "a.yaml:3:") || !strings.Contains(lines[1], `b.yaml:5:14: asset b: timeout: bad duration "5 min"`) {
			t.Errorf("got:\n%s", strings.Join(lines, "\n"))
		}
	})
}

func write(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLoadPaths(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(empty, "README.md"), "no definitions here\n")
	broken := filepath.Join(dir, "broken")
	if err := os.Mkdir(broken, 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(broken, "a.yaml"), "assets: []\n")
	if err := os.Symlink(filepath.Join(dir, "nowhere.yaml"), filepath.Join(broken, "b.yaml")); err != nil {
		t.Fatal(err)
	}
	noAssets := filepath.Join(dir, "freshet.yaml")
	write(t, noAssets, "# an empty project\nnotifiers:\n  - {log: true}\n")

	t.Run("no assets key", func(t *testing.T) {
		t.Parallel()
		defs, err := Load(noAssets)
		if err != nil || len(defs.Assets) != 0 || len(defs.Notifiers) != 1 || defs.Dir != dir {
			t.Errorf("Load = %+v, %v", defs, err)
		}
	})
	for _, tc := range []struct {
		name, path, want string
		is               error
	}{
		{"missing", filepath.Join(dir, "missing.yaml"), filepath.Join(dir, "missing.yaml"), fs.ErrNotExist},
		{"empty folder", empty, "folder " + empty + " holds no *.yaml or *.yml files", nil},
		{"unreadable file", broken, filepath.Join(broken, "b.yaml"), fs.ErrNotExist},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			defs, err := Load(tc.path)
			if err == nil || defs != nil {
				t.Fatalf("Load(%s) = %+v, %v", tc.path, defs, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %q is not %v", err, tc.is)
			}
		})
	}
}

// TestParseAliasBomb: aliases of aliases must not expand without limit.
func TestParseAliasBomb(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString("assets:\n  - &a {key: k, tags: [" + strings.Repeat("t, ", 3000) + "t]}\n")
	b.WriteString(strings.Repeat("  - *a\n", 3000))
	start := time.Now()
	_, err := Parse("bomb.yaml", []byte(b.String()))
	if err == nil {
		t.Fatal("no error")
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %v", d)
	}
	if !strings.Contains(err.Error(), "too many nodes through aliases") {
		t.Errorf("error does not mention the aliases:\n%.2000s", err)
	}
}

// TestParseLarge: a project of 10,000 assets loads, and one mistake in it is still one
// error, with a suggestion.
func TestParseLarge(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString("assets:\n")
	for i := 0; i < 10000; i++ {
		fmt.Fprintf(&b, "  - key: g%d/a%d\n    partitions: {daily: {start: 2026-01-01}}\n    compute: {command: [run, \"{partition}\"]}\n", i%50, i)
		switch {
		case i >= 3:
			fmt.Fprintf(&b, "    deps: [g%d/a%d, {asset: g%d/a%d, start_offset: -1}]\n", (i-1)%50, i-1, (i/2)%50, i/2)
		case i > 0:
			fmt.Fprintf(&b, "    deps: [g%d/a%d]\n", (i-1)%50, i-1)
		}
	}
	src := b.String()
	start := time.Now()
	defs, err := Parse("big.yaml", []byte(src))
	if err != nil {
		t.Fatalf("Parse: %.3000v", err)
	}
	if len(defs.Assets) != 10000 {
		t.Fatalf("Parse: %d assets", len(defs.Assets))
	}
	t.Logf("10,000 assets parsed in %v", time.Since(start))

	_, err = Parse("big.yaml", []byte(strings.Replace(src, "[g2/a2, {asset: g1/a1, start_offset: -1}]", "[g2/a2, {asset: g1/a01, start_offset: -1}]", 1)))
	if lines := errorLines(t, err); len(lines) != 1 || !strings.Contains(lines[0], `asset g3/a3: deps[1].asset: unknown upstream asset "g1/a01" (did you mean "g1/a1"?)`) {
		t.Errorf("got:\n%s", strings.Join(lines, "\n"))
	}
}
