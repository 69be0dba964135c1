package store

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/freshetdev/freshet/assets"
)

// DefinitionOf returns the record the catalog keeps of a: its code version, sorted
// dep keys, partitions definition and the whole definition as JSON with its
// fingerprint. Secrets stay out: of a command's environment and an HTTP call's
// headers only the names are kept.
func DefinitionOf(a *assets.Asset) AssetRecord {
	rec := AssetRecord{
		Key:         a.Key,
		CodeVersion: a.CodeVersion,
		Deps:        DepKeys(a),
		IsSource:    a.IsSource(),
	}
	if a.Partitions != nil {
		spec := a.Partitions.Spec()
		rec.Partitions = &spec
	}
	rec.Definition = definitionJSON(a, rec.Partitions)
	sum := sha256.Sum256(rec.Definition)
	rec.Fingerprint = hex.EncodeToString(sum[:16])
	return rec
}

// DepKeys returns the sorted, distinct keys of a's upstream assets.
func DepKeys(a *assets.Asset) []assets.Key {
	keys := make([]assets.Key, 0, len(a.Deps))
	for _, d := range a.Deps {
		keys = append(keys, d.Asset)
	}
	slices.Sort(keys)
	return slices.Compact(keys)
}

// JoinKeys and SplitKeys convert a sorted key list to and from its stored form,
// one key per line.
func JoinKeys(keys []assets.Key) string {
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(string(k))
	}
	return b.String()
}

// SplitKeys is the inverse of JoinKeys.
func SplitKeys(s string) []assets.Key {
	if s == "" {
		return []assets.Key{}
	}
	parts := strings.Split(s, "\n")
	keys := make([]assets.Key, len(parts))
	for i, p := range parts {
		keys[i] = assets.Key(p)
	}
	return keys
}

// partitionsJSON is the stored form of a partitions definition.
type partitionsJSON struct {
	Granularity string `json:"granularity"`
	Start       string `json:"start"`
	End         string `json:"end,omitempty"`
	Timezone    string `json:"timezone,omitempty"`
	EndOffset   int    `json:"end_offset,omitempty"`
}

// MarshalPartitions encodes a partitions definition for storage; nil encodes as nil
// (SQL NULL).
func MarshalPartitions(spec *assets.PartitionsSpec) []byte {
	if spec == nil {
		return nil
	}
	b, err := json.Marshal(partitionsJSON{
		Granularity: spec.Granularity.String(),
		Start:       spec.Start,
		End:         spec.End,
		Timezone:    spec.Timezone,
		EndOffset:   spec.EndOffset,
	})
	if err != nil {
		panic(err) // strings and ints always encode
	}
	return b
}

// UnmarshalPartitions decodes a stored partitions definition; empty input means
// unpartitioned (nil).
func UnmarshalPartitions(b []byte) (*assets.PartitionsSpec, error) {
	if len(b) == 0 {
		return nil, nil
	}
	var j partitionsJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return nil, fmt.Errorf("stored partitions definition %q: %w", b, err)
	}
	g, err := assets.ParseGranularity(j.Granularity)
	if err != nil {
		return nil, fmt.Errorf("stored partitions definition %q: %w", b, err)
	}
	return &assets.PartitionsSpec{Granularity: g, Start: j.Start, End: j.End, Timezone: j.Timezone, EndOffset: j.EndOffset}, nil
}

// SamePartitions reports whether two partitions definitions are the same.
func SamePartitions(a, b *assets.PartitionsSpec) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return *a == *b
}

type depJSON struct {
	Asset       assets.Key `json:"asset"`
	Mapping     string     `json:"mapping,omitempty"`
	StartOffset int        `json:"start_offset,omitempty"`
	EndOffset   int        `json:"end_offset,omitempty"`
}

type computeJSON struct {
	Kind       string   `json:"kind"`
	Command    []string `json:"command,omitempty"`
	EnvNames   []string `json:"env,omitempty"`
	Dir        string   `json:"dir,omitempty"`
	SQL        string   `json:"sql,omitempty"`
	Connection string   `json:"connection,omitempty"`
	URL        string   `json:"url,omitempty"`
	Headers    []string `json:"headers,omitempty"`
	Func       string   `json:"func,omitempty"`
}

type freshnessJSON struct {
	MaxLag   string `json:"max_lag,omitempty"`
	WarnLag  string `json:"warn_lag,omitempty"`
	Deadline *struct {
		Cron     string `json:"cron"`
		Timezone string `json:"timezone,omitempty"`
	} `json:"deadline,omitempty"`
}

type definitionJSONShape struct {
	Key         assets.Key      `json:"key"`
	Description string          `json:"description,omitempty"`
	Group       string          `json:"group,omitempty"`
	Owners      []string        `json:"owners,omitempty"`
	Tags        []string        `json:"tags,omitempty"`
	CodeVersion string          `json:"code_version"`
	Partitions  *partitionsJSON `json:"partitions,omitempty"`
	Deps        []depJSON       `json:"deps,omitempty"`
	Compute     *computeJSON    `json:"compute,omitempty"`
	Observe     *computeJSON    `json:"observe,omitempty"`
	Retries     *struct {
		Max        int    `json:"max"`
		Backoff    string `json:"backoff,omitempty"`
		MaxBackoff string `json:"max_backoff,omitempty"`
	} `json:"retries,omitempty"`
	Timeout     string         `json:"timeout,omitempty"`
	Freshness   *freshnessJSON `json:"freshness,omitempty"`
	BatchMax    int            `json:"batch_max_partitions,omitempty"`
	Concurrency int            `json:"concurrency,omitempty"`
	IsSource    bool           `json:"is_source"`
}

func definitionJSON(a *assets.Asset, spec *assets.PartitionsSpec) json.RawMessage {
	d := definitionJSONShape{
		Key: a.Key, Description: a.Description, Group: a.Group, Owners: a.Owners, Tags: a.Tags,
		CodeVersion: a.CodeVersion, BatchMax: a.Batch.MaxPartitions, Concurrency: a.Concurrency,
		IsSource: a.IsSource(),
	}
	if spec != nil {
		var p partitionsJSON
		_ = json.Unmarshal(MarshalPartitions(spec), &p)
		d.Partitions = &p
	}
	for _, dep := range a.Deps {
		d.Deps = append(d.Deps, depJSON{Asset: dep.Asset, Mapping: string(dep.Mapping), StartOffset: dep.StartOffset, EndOffset: dep.EndOffset})
	}
	d.Compute = computeOf(a.Compute)
	d.Observe = computeOf(a.Observe)
	if a.Retries != (assets.Retries{}) {
		d.Retries = &struct {
			Max        int    `json:"max"`
			Backoff    string `json:"backoff,omitempty"`
			MaxBackoff string `json:"max_backoff,omitempty"`
		}{Max: a.Retries.Max, Backoff: durationString(a.Retries.Backoff), MaxBackoff: durationString(a.Retries.MaxBackoff)}
	}
	d.Timeout = durationString(a.Timeout)
	if f := a.Freshness; f != nil {
		d.Freshness = &freshnessJSON{MaxLag: durationString(f.MaxLag), WarnLag: durationString(f.WarnLag)}
		if f.Deadline != nil {
			d.Freshness.Deadline = &struct {
				Cron     string `json:"cron"`
				Timezone string `json:"timezone,omitempty"`
			}{Cron: f.Deadline.Cron, Timezone: f.Deadline.Timezone}
		}
	}
	b, err := json.Marshal(d)
	if err != nil {
		panic(err) // plain values always encode
	}
	return b
}

func computeOf(c assets.Compute) *computeJSON {
	switch c := c.(type) {
	case nil:
		return nil
	case assets.CommandCompute:
		return &computeJSON{Kind: string(c.Kind()), Command: c.Argv, EnvNames: sortedNames(c.Env), Dir: c.Dir}
	case *assets.CommandCompute:
		return computeOf(*c)
	case assets.SQLCompute:
		return &computeJSON{Kind: string(c.Kind()), SQL: c.File, Connection: c.Connection}
	case *assets.SQLCompute:
		return computeOf(*c)
	case assets.HTTPCompute:
		return &computeJSON{Kind: string(c.Kind()), URL: c.URL, Headers: sortedNames(c.Headers)}
	case *assets.HTTPCompute:
		return computeOf(*c)
	case assets.FuncCompute:
		return &computeJSON{Kind: string(c.Kind()), Func: c.Name}
	case *assets.FuncCompute:
		return computeOf(*c)
	}
	return &computeJSON{Kind: string(c.Kind())}
}

func sortedNames[V any](m map[string]V) []string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

func durationString(d interface{ String() string }) string {
	s := d.String()
	if s == "0s" {
		return ""
	}
	return s
}

// ChangedFields lists which Field* constants differ between a stored record and a
// new one (empty when the fingerprints match).
func ChangedFields(old, new *AssetRecord) []string {
	if old.Fingerprint == new.Fingerprint && old.IsSource == new.IsSource {
		return nil
	}
	var fields []string
	if old.CodeVersion != new.CodeVersion {
		fields = append(fields, FieldCodeVersion)
	}
	if !slices.Equal(old.Deps, new.Deps) {
		fields = append(fields, FieldDeps)
	}
	if !SamePartitions(old.Partitions, new.Partitions) {
		fields = append(fields, FieldPartitions)
	}
	if len(fields) == 0 {
		fields = append(fields, FieldDefinition)
	}
	return fields
}
