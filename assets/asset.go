package assets

import (
	"context"
	"time"
)

// Definitions is everything a project declares: its assets, schedules, named
// connections and notifiers. The YAML loader and Go programs build the same values.
type Definitions struct {
	// Dir is the folder the definitions were loaded from; relative paths in compute
	// (scripts, SQL files) resolve against it and commands run in it.
	Dir         string
	Assets      []*Asset
	Schedules   []Schedule
	Connections map[string]Connection
	Notifiers   []Notifier
}

// Asset is a named, persistent data object and how to build it.
type Asset struct {
	Key         Key
	Description string
	Group       string
	Owners      []string
	Tags        []string
	// CodeVersion is a free string; bump it when the logic that builds the asset
	// changes, and every materialized partition becomes stale with CODE_CHANGED.
	CodeVersion string
	// Partitions is nil for an unpartitioned asset, which has exactly one partition.
	Partitions *Partitions
	Deps       []Dep
	// Compute is how to materialize the asset; nil makes it a source asset.
	Compute Compute
	// Observe, for a source asset, reports its current data version.
	Observe   Compute
	Retries   Retries
	Timeout   time.Duration
	Freshness *FreshnessPolicy
	Batch     Batch
	// Concurrency caps how many steps of this asset run at once; 0 means no cap.
	Concurrency int
}

// IsSource reports whether the asset is a source: Freshet observes it but cannot build it.
func (a *Asset) IsSource() bool { return a.Compute == nil }

// Mapping says which upstream partitions a downstream partition needs.
type Mapping string

// The partition mappings.
const (
	// MappingTime (the default between partitioned assets) needs every upstream
	// partition whose window overlaps the downstream window, widened by the offsets.
	MappingTime Mapping = "time"
	// MappingAll, for an unpartitioned downstream, needs every upstream partition.
	MappingAll Mapping = "all"
	// MappingLast, for an unpartitioned downstream, needs only the newest complete one.
	MappingLast Mapping = "last"
)

// Dep is one upstream of an asset.
type Dep struct {
	Asset Key
	// Mapping is MappingTime when both sides are partitioned; empty means the default
	// (time between partitioned assets, all for an unpartitioned downstream).
	Mapping Mapping
	// StartOffset and EndOffset widen a time mapping, in downstream windows.
	StartOffset int
	EndOffset   int
}

// EffectiveMapping returns the mapping in force for dep between up and down, filling
// in the default when none was declared.
func (d Dep) EffectiveMapping(down, up *Asset) Mapping {
	if d.Mapping != "" {
		return d.Mapping
	}
	if down.Partitions == nil && up.Partitions != nil {
		return MappingAll
	}
	return MappingTime
}

// ComputeKind names how an asset is built.
type ComputeKind string

// The compute kinds.
const (
	ComputeCommand ComputeKind = "command"
	ComputeSQL     ComputeKind = "sql"
	ComputeHTTP    ComputeKind = "http"
	ComputeFunc    ComputeKind = "func"
)

// Compute is one way of materializing (or observing) an asset.
type Compute interface {
	Kind() ComputeKind
}

// CommandCompute runs a program. Argv is never passed through a shell; the
// placeholders {asset} {partition} {start} {end} {run_id} are substituted inside
// each argument.
type CommandCompute struct {
	Argv []string
	Env  map[string]string
	Dir  string // working directory, relative to the definitions; default: there
}

// SQLCompute runs a SQL file in one transaction on a named connection, with the bind
// parameters @partition, @partition_start and @partition_end.
type SQLCompute struct {
	File       string
	Connection string
}

// HTTPCompute POSTs a JSON description of the step to URL; any 2xx is success.
type HTTPCompute struct {
	URL     string
	Headers map[string]string
}

// StepInput describes one step to a Go function.
type StepInput struct {
	Asset         Key
	PartitionKeys []string // empty for an unpartitioned asset
	Start, End    time.Time
	RunID         string
	StepID        string
	Attempt       int
}

// StepOutput is what a step reports. An empty DataVersion asks Freshet for a fresh one.
type StepOutput struct {
	DataVersion string
	Metadata    map[string]any
}

// FuncCompute materializes an asset with a Go function (library use).
type FuncCompute struct {
	Name string
	Fn   func(ctx context.Context, in StepInput) (StepOutput, error)
}

// Kind implements Compute.
func (CommandCompute) Kind() ComputeKind { return ComputeCommand }

// Kind implements Compute.
func (SQLCompute) Kind() ComputeKind { return ComputeSQL }

// Kind implements Compute.
func (HTTPCompute) Kind() ComputeKind { return ComputeHTTP }

// Kind implements Compute.
func (FuncCompute) Kind() ComputeKind { return ComputeFunc }

// Retries is the retry policy for failed attempts: exponential backoff with jitter,
// starting at Backoff and capped at MaxBackoff.
type Retries struct {
	Max        int
	Backoff    time.Duration
	MaxBackoff time.Duration
}

// Batch groups contiguous partitions into one step of at most MaxPartitions.
type Batch struct {
	MaxPartitions int
}

// FreshnessPolicy is an asset's freshness SLA: either MaxLag (with optional WarnLag)
// or Deadline.
type FreshnessPolicy struct {
	MaxLag   time.Duration
	WarnLag  time.Duration
	Deadline *Deadline
}

// Deadline requires, at each cron tick, the newest partition complete at the tick
// to be materialized.
type Deadline struct {
	Cron     string
	Timezone string
}

// Schedule materializes a selection on a cron.
type Schedule struct {
	Name     string
	Cron     string
	Timezone string
	Select   string
	// Action is what a tick does; "materialize_stale" (the default) materializes
	// what is missing or stale up to the newest complete partition.
	Action string
}

// Connection is a named database connection for SQL compute.
type Connection struct {
	Postgres *PostgresConnection
}

// PostgresConnection gives a URL directly or names the environment variable holding it.
type PostgresConnection struct {
	URL    string
	URLEnv string
}

// Notifier receives freshness status changes.
type Notifier struct {
	Log     bool
	Webhook *WebhookNotifier
	Slack   *WebhookNotifier
}

// WebhookNotifier posts JSON to a URL given directly or through an environment variable.
type WebhookNotifier struct {
	URL    string
	URLEnv string
}

// Asset returns the asset with key k, or nil.
func (d *Definitions) Asset(k Key) *Asset {
	for _, a := range d.Assets {
		if a.Key == k {
			return a
		}
	}
	return nil
}
