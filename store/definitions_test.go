package store_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/freshetdev/freshet/assets"
	"github.com/freshetdev/freshet/store"
)

func command(argv ...string) assets.CommandCompute { return assets.CommandCompute{Argv: argv} }

func built(key assets.Key, p *assets.Partitions, deps ...assets.Key) *assets.Asset {
	a := &assets.Asset{Key: key, CodeVersion: "1", Partitions: p, Compute: command("true")}
	for _, d := range deps {
		a.Deps = append(a.Deps, assets.Dep{Asset: d})
	}
	return a
}

// decoded returns the stored definition JSON as a generic value.
func decoded(t *testing.T, def []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(def, &m); err != nil {
		t.Fatalf("definition JSON %s: %v", def, err)
	}
	return m
}

func TestDefinitionOf(t *testing.T) {
	daily := mustPartitions(t, assets.PartitionsSpec{Granularity: assets.Daily, Start: "2026-01-01"})
	a := built("sales/clean", daily, "src/z", "src/a")
	a.Deps = append(a.Deps, assets.Dep{Asset: "src/m", StartOffset: -1})
	a.Description, a.Group, a.Owners, a.Tags = "clean orders", "sales", []string{"team:data"}, []string{"pii"}
	a.CodeVersion = "3"
	a.Retries = assets.Retries{Max: 2, Backoff: 30 * time.Second}
	a.Timeout = 15 * time.Minute

	rec := store.DefinitionOf(a)
	if rec.Key != a.Key || rec.CodeVersion != "3" || rec.IsSource {
		t.Errorf("record %+v: want key %s, code version 3, not a source", rec, a.Key)
	}
	if want := []assets.Key{"src/a", "src/m", "src/z"}; !slices.Equal(rec.Deps, want) {
		t.Errorf("Deps = %v, want %v (sorted)", rec.Deps, want)
	}
	if want := (assets.PartitionsSpec{Granularity: assets.Daily, Start: "2026-01-01", Timezone: "UTC"}); rec.Partitions == nil || *rec.Partitions != want {
		t.Errorf("Partitions = %+v, want %+v (timezone filled in)", rec.Partitions, want)
	}
	m := decoded(t, rec.Definition)
	for field, want := range map[string]any{
		"key": "sales/clean", "description": "clean orders", "group": "sales", "code_version": "3",
		"is_source": false, "timeout": "15m0s",
	} {
		if m[field] != want {
			t.Errorf("definition %s = %v, want %v", field, m[field], want)
		}
	}
	if p, _ := m["partitions"].(map[string]any); p["granularity"] != "daily" || p["start"] != "2026-01-01" {
		t.Errorf("definition partitions = %v", m["partitions"])
	}
	if deps, _ := m["deps"].([]any); len(deps) != 3 {
		t.Errorf("definition deps = %v, want the 3 deps with their mappings", m["deps"])
	}
	if c, _ := m["compute"].(map[string]any); c["kind"] != "command" {
		t.Errorf("definition compute = %v, want kind command", m["compute"])
	}
	if r, _ := m["retries"].(map[string]any); r["max"] != 2.0 || r["backoff"] != "30s" || r["max_backoff"] != nil {
		t.Errorf("definition retries = %v, want max 2, backoff 30s, no max_backoff", m["retries"])
	}
	if len(rec.Fingerprint) != 32 {
		t.Errorf("Fingerprint = %q, want 32 hex digits", rec.Fingerprint)
	}
	if again := store.DefinitionOf(built("sales/clean", daily)); again.Fingerprint == rec.Fingerprint {
		t.Errorf("different definitions share the fingerprint %s", rec.Fingerprint)
	}
}

func TestDefinitionOfSourcesAndUnpartitioned(t *testing.T) {
	src := &assets.Asset{Key: "src/rates", Observe: command("stat", "rates.csv")}
	rec := store.DefinitionOf(src)
	if !rec.IsSource || rec.Partitions != nil || len(rec.Deps) != 0 {
		t.Errorf("source record %+v: want a source, unpartitioned, no deps", rec)
	}
	m := decoded(t, rec.Definition)
	if m["is_source"] != true || m["partitions"] != nil || m["compute"] != nil {
		t.Errorf("source definition %s: want is_source, no partitions, no compute", rec.Definition)
	}
	if o, _ := m["observe"].(map[string]any); o["kind"] != "command" {
		t.Errorf("source definition observe = %v, want the observe command", m["observe"])
	}
}

func TestDefinitionOfComputeKinds(t *testing.T) {
	cases := []struct {
		name    string
		compute assets.Compute
		want    map[string]any
	}{
		{"command", assets.CommandCompute{Argv: []string{"python3", "x.py"}, Dir: "jobs"},
			map[string]any{"kind": "command", "command": []any{"python3", "x.py"}, "dir": "jobs"}},
		{"command pointer", &assets.CommandCompute{Argv: []string{"python3", "x.py"}, Dir: "jobs"},
			map[string]any{"kind": "command", "command": []any{"python3", "x.py"}, "dir": "jobs"}},
		{"sql", assets.SQLCompute{File: "t.sql", Connection: "wh"},
			map[string]any{"kind": "sql", "sql": "t.sql", "connection": "wh"}},
		{"http", &assets.HTTPCompute{URL: "https://x.example/build"},
			map[string]any{"kind": "http", "url": "https://x.example/build"}},
		{"func", assets.FuncCompute{Name: "build_it"},
			map[string]any{"kind": "func", "func": "build_it"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := &assets.Asset{Key: "a/b", Compute: tc.compute}
			got, _ := decoded(t, store.DefinitionOf(a).Definition)["compute"].(map[string]any)
			gotJSON, _ := json.Marshal(got)
			wantJSON, _ := json.Marshal(tc.want)
			if string(gotJSON) != string(wantJSON) {
				t.Errorf("compute = %s, want %s", gotJSON, wantJSON)
			}
		})
	}
}

func TestDefinitionOfKeepsSecretsOut(t *testing.T) {
	const envValue, headerValue = "s3cr3t-token-1a2b", "Bearer hunter2-3c4d"
	cmd := &assets.Asset{Key: "sec/cmd", Compute: assets.CommandCompute{
		Argv: []string{"load"}, Env: map[string]string{"TOKEN": envValue, "A_REGION": "eu-region-value"},
	}}
	call := &assets.Asset{Key: "sec/http", Compute: assets.HTTPCompute{
		URL: "https://x.example", Headers: map[string]string{"Authorization": headerValue, "X-Team": "data-team-value"},
	}}
	for _, tc := range []struct {
		a     *assets.Asset
		field string
		names []any
	}{
		{cmd, "env", []any{"A_REGION", "TOKEN"}},
		{call, "headers", []any{"Authorization", "X-Team"}},
	} {
		rec := store.DefinitionOf(tc.a)
		for _, secret := range []string{envValue, headerValue, "eu-region-value", "data-team-value", "hunter2", "s3cr3t"} {
			if strings.Contains(string(rec.Definition), secret) {
				t.Errorf("%s: definition holds the value %q: %s", tc.a.Key, secret, rec.Definition)
			}
		}
		c, _ := decoded(t, rec.Definition)["compute"].(map[string]any)
		if got, _ := c[tc.field].([]any); !slices.Equal(got, tc.names) {
			t.Errorf("%s: compute %s = %v, want the names only, sorted: %v", tc.a.Key, tc.field, c[tc.field], tc.names)
		}
	}
	// A secret's value is not part of the definition: changing it changes nothing.
	rotated := &assets.Asset{Key: "sec/cmd", Compute: assets.CommandCompute{
		Argv: []string{"load"}, Env: map[string]string{"TOKEN": "rotated", "A_REGION": "eu-region-value"},
	}}
	if a, b := store.DefinitionOf(cmd), store.DefinitionOf(rotated); a.Fingerprint != b.Fingerprint {
		t.Errorf("rotating a secret changed the fingerprint: %s → %s", a.Fingerprint, b.Fingerprint)
	}
}

func TestDepKeys(t *testing.T) {
	a := &assets.Asset{Key: "x/y", Deps: []assets.Dep{{Asset: "b/b"}, {Asset: "a/a"}, {Asset: "b/b"}}}
	if got, want := store.DepKeys(a), []assets.Key{"a/a", "b/b"}; !slices.Equal(got, want) {
		t.Errorf("DepKeys = %v, want %v (sorted, distinct)", got, want)
	}
	if got := store.DepKeys(&assets.Asset{Key: "x/y"}); got == nil || len(got) != 0 {
		t.Errorf("DepKeys(no deps) = %#v, want an empty list", got)
	}
}

func TestChangedFields(t *testing.T) {
	daily := mustPartitions(t, assets.PartitionsSpec{Granularity: assets.Daily, Start: "2026-01-01"})
	earlier := mustPartitions(t, assets.PartitionsSpec{Granularity: assets.Daily, Start: "2025-12-01"})
	berlin := mustPartitions(t, assets.PartitionsSpec{Granularity: assets.Daily, Start: "2026-01-01", Timezone: "Europe/Berlin"})
	base := func() *assets.Asset { return built("a/target", daily, "a/up") }
	cases := []struct {
		name   string
		change func(a *assets.Asset)
		want   []string
	}{
		{"nothing", func(*assets.Asset) {}, nil},
		{"code version", func(a *assets.Asset) { a.CodeVersion = "2" }, []string{store.FieldCodeVersion}},
		{"deps", func(a *assets.Asset) { a.Deps = append(a.Deps, assets.Dep{Asset: "a/other"}) }, []string{store.FieldDeps}},
		{"dep mapping only", func(a *assets.Asset) { a.Deps[0].StartOffset = -1 }, []string{store.FieldDefinition}},
		{"partitions start", func(a *assets.Asset) { a.Partitions = earlier }, []string{store.FieldPartitions}},
		{"partitions timezone", func(a *assets.Asset) { a.Partitions = berlin }, []string{store.FieldPartitions}},
		{"unpartitioned", func(a *assets.Asset) { a.Partitions = nil }, []string{store.FieldPartitions}},
		{"description", func(a *assets.Asset) { a.Description = "new" }, []string{store.FieldDefinition}},
		{"compute", func(a *assets.Asset) { a.Compute = command("false") }, []string{store.FieldDefinition}},
		{"becomes a source", func(a *assets.Asset) { a.Compute, a.Deps = nil, nil }, []string{store.FieldDeps}},
		{"code version and partitions", func(a *assets.Asset) {
			a.CodeVersion = "2"
			a.Partitions = earlier
			a.Description = "also"
		}, []string{store.FieldCodeVersion, store.FieldPartitions}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			old := store.DefinitionOf(base())
			a := base()
			tc.change(a)
			rec := store.DefinitionOf(a)
			if got := store.ChangedFields(&old, &rec); !slices.Equal(got, tc.want) {
				t.Errorf("ChangedFields = %q, want %q", got, tc.want)
			}
		})
	}
	// A record that only differs in IsSource (same fingerprint) still changed.
	old := store.DefinitionOf(base())
	rec := old
	rec.IsSource = true
	if got := store.ChangedFields(&old, &rec); !slices.Equal(got, []string{store.FieldDefinition}) {
		t.Errorf("ChangedFields(IsSource only) = %q, want [definition]", got)
	}
}

func TestPartitionsRoundTrip(t *testing.T) {
	cases := []struct {
		name string
		spec *assets.PartitionsSpec
		json string // "": not checked
	}{
		{"unpartitioned", nil, ""},
		{"daily", &assets.PartitionsSpec{Granularity: assets.Daily, Start: "2026-01-01", Timezone: "UTC"},
			`{"granularity":"daily","start":"2026-01-01","timezone":"UTC"}`},
		{"hourly Berlin", &assets.PartitionsSpec{Granularity: assets.Hourly, Start: "2026-03-29T00:00", Timezone: "Europe/Berlin"}, ""},
		{"weekly with end", &assets.PartitionsSpec{Granularity: assets.Weekly, Start: "2026-01-05", End: "2026-06-01", Timezone: "UTC"},
			`{"granularity":"weekly","start":"2026-01-05","end":"2026-06-01","timezone":"UTC"}`},
		{"monthly lagging", &assets.PartitionsSpec{Granularity: assets.Monthly, Start: "2025-01-01", Timezone: "America/New_York", EndOffset: -1}, ""},
		{"daily in progress", &assets.PartitionsSpec{Granularity: assets.Daily, Start: "2026-01-01T06:00", Timezone: "UTC", EndOffset: 1}, ""},
		{"no timezone", &assets.PartitionsSpec{Granularity: assets.Daily, Start: "2026-01-01"},
			`{"granularity":"daily","start":"2026-01-01"}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := store.MarshalPartitions(tc.spec)
			if tc.spec == nil {
				if b != nil {
					t.Errorf("MarshalPartitions(nil) = %q, want nil (SQL NULL)", b)
				}
			} else if tc.json != "" && string(b) != tc.json {
				t.Errorf("MarshalPartitions = %s, want %s", b, tc.json)
			}
			got, err := store.UnmarshalPartitions(b)
			if err != nil {
				t.Fatalf("UnmarshalPartitions(%s): %v", b, err)
			}
			if !store.SamePartitions(got, tc.spec) {
				t.Errorf("round trip: %+v, want %+v", got, tc.spec)
			}
			if got != nil {
				if _, err := assets.NewPartitions(*got); err != nil {
					t.Errorf("round-tripped spec %+v is not valid: %v", *got, err)
				}
			}
		})
	}
}

func TestUnmarshalPartitionsErrors(t *testing.T) {
	for _, in := range []string{`{`, `{"granularity":"yearly","start":"2026-01-01"}`, `{"granularity":"","start":"2026-01-01"}`, `[1]`} {
		if spec, err := store.UnmarshalPartitions([]byte(in)); err == nil {
			t.Errorf("UnmarshalPartitions(%s) = %+v, want an error", in, spec)
		} else if !strings.Contains(err.Error(), "stored partitions definition") {
			t.Errorf("UnmarshalPartitions(%s) error %q does not say what it was reading", in, err)
		}
	}
	if spec, err := store.UnmarshalPartitions(nil); spec != nil || err != nil {
		t.Errorf("UnmarshalPartitions(nil) = %+v, %v; want nil, nil", spec, err)
	}
}

func TestSamePartitions(t *testing.T) {
	d := &assets.PartitionsSpec{Granularity: assets.Daily, Start: "2026-01-01", Timezone: "UTC"}
	same := *d
	other := *d
	other.Timezone = "Europe/Berlin"
	cases := []struct {
		a, b *assets.PartitionsSpec
		want bool
	}{
		{nil, nil, true},
		{d, nil, false},
		{nil, d, false},
		{d, &same, true},
		{d, &other, false},
	}
	for _, tc := range cases {
		if got := store.SamePartitions(tc.a, tc.b); got != tc.want {
			t.Errorf("SamePartitions(%+v, %+v) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestJoinSplitKeys(t *testing.T) {
	for _, keys := range [][]assets.Key{{}, {"a/b"}, {"a/b", "c/d", "e"}} {
		s := store.JoinKeys(keys)
		got := store.SplitKeys(s)
		if got == nil || !slices.Equal(got, keys) {
			t.Errorf("SplitKeys(JoinKeys(%v)) = %#v", keys, got)
		}
	}
	if s := store.JoinKeys([]assets.Key{"a/b", "c/d"}); s != "a/b\nc/d" {
		t.Errorf("JoinKeys = %q, want one key per line", s)
	}
}
