package store

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/google/uuid"

	"github.com/freshetdev/freshet/assets"
)

// Store is the catalog's persistence: asset definitions and their history, the
// append-only event log and the per-(asset, partition) state derived from it.
// store/postgres and store/sqlite implement it; store/storetest is the conformance
// suite both pass. Every method is safe for concurrent use.
type Store interface {
	// SyncDefinitions records defs as the catalog's current definitions: new assets
	// are added, changed ones updated, assets no longer defined are marked removed
	// (their history stays). Every change is kept in the definition history. An
	// asset whose partitions definition changed has its recorded partitions
	// re-indexed under the new definition; keys that no longer name a partition of
	// it are kept but left out of state snapshots.
	SyncDefinitions(ctx context.Context, defs *assets.Definitions) (*SyncResult, error)
	// Assets returns every asset the catalog knows, removed ones included, by key.
	Assets(ctx context.Context) ([]AssetRecord, error)
	// DefinitionHistory returns the definition changes of one asset, newest first,
	// at most limit of them (0: all).
	DefinitionHistory(ctx context.Context, key assets.Key, limit int) ([]DefinitionChange, error)

	// Append appends events to the log in one transaction and updates the
	// partition state they touch in the same transaction. It validates every event
	// first (known asset, partition key of its partitions definition, kind, data
	// version, metadata): on any error nothing is written. It returns the events as
	// recorded, with Seq, InputSeq, DataVersion, DataChanged and Code filled in.
	Append(ctx context.Context, events []Event) ([]Event, error)
	// Watermark returns the catalog's current seq: every event and definition change
	// at or below it is committed and visible.
	Watermark(ctx context.Context) (int64, error)
	// Events returns a page of the event log, newest first.
	Events(ctx context.Context, q EventQuery) (*EventPage, error)

	// ReadState reads the columnar state of the given assets (all when keys is
	// nil) in one consistent snapshot.
	ReadState(ctx context.Context, keys []assets.Key) (*Snapshot, error)
	// ReadChanges reads what changed after seq since, in one consistent snapshot:
	// the partitions whose state changed, and in full the assets whose partitions
	// definition changed (or that were added or re-added).
	ReadChanges(ctx context.Context, since int64) (*Changes, error)
	// Partition returns the recorded state of one partition, or ErrNotFound when
	// nothing was ever recorded for it.
	Partition(ctx context.Context, key assets.Key, partition string) (*PartitionRecord, error)
	// PartitionRanges returns the recorded state of partitions [lo, hi) of an
	// asset as run-length ranges, in index order, gaps reported as Missing.
	PartitionRanges(ctx context.Context, key assets.Key, lo, hi int) ([]Range, error)
	// Verify replays the event log and compares the result with the stored
	// partition state, returning every disagreement (none for a healthy catalog).
	Verify(ctx context.Context) ([]Inconsistency, error)

	// Migrate applies pending schema migrations and returns them. Opening a store
	// already does this; the method serves `freshet migrate`.
	Migrate(ctx context.Context) ([]Migration, error)
	// SchemaVersion returns the applied schema version and the number pending.
	SchemaVersion(ctx context.Context) (current int64, pending int, err error)
	// Close releases the store's connections.
	Close() error
}

// ErrNotFound is returned (wrapped) when a named asset or partition has no record.
var ErrNotFound = errors.New("not found")

// Migration is a schema migration applied by Migrate.
type Migration struct {
	Version int64
	Name    string
}

// EventKind is the kind of an event in the log.
type EventKind string

// The event kinds.
const (
	// Materialization: a successful build of one (asset, partition).
	Materialization EventKind = "materialization"
	// Observation: a data version seen on a source asset's partition.
	Observation EventKind = "observation"
	// Failure: a failed attempt to build one (asset, partition).
	Failure EventKind = "failure"
	// Planned: a run planned to build one (asset, partition). It changes no state.
	Planned EventKind = "planned"
)

// AtAppend as an Event's InputSeq means "the catalog's watermark when the event is
// appended": the event read everything recorded before it.
const AtAppend int64 = -1

// Event is one entry of the event log.
type Event struct {
	// Seq is the event's position in the log, assigned by Append.
	Seq  int64
	Kind EventKind
	// Asset and Partition name what the event is about; Partition is "" for an
	// unpartitioned asset.
	Asset     assets.Key
	Partition string
	// At is when it happened; zero means the time of Append.
	At time.Time
	// RunID and StepID link events produced by Freshet's own runs (uuid.Nil: none).
	RunID, StepID uuid.UUID
	// DataVersion identifies the data produced or observed. A materialization
	// without one gets a fresh unique value; an observation must have one.
	DataVersion string
	// DataChanged, set by Append, says the data version differs from the previous
	// one of the partition (always true for its first).
	DataChanged bool
	// InputSeq is the event-log watermark the build read its inputs at (taken when
	// it started); AtAppend means the watermark at append time. Materializations only.
	InputSeq int64
	// Code is the code version and dep set the build used; nil means the asset's
	// definition as last synced. Set by Append on materializations.
	Code *Code
	// Metadata is a JSON object the build reported (row counts, paths, …), or nil.
	Metadata json.RawMessage
	// Error says why a failure failed.
	Error string
}

// Code is what a materialization was built with.
type Code struct {
	Version string
	Deps    []assets.Key // upstream asset keys, sorted
}

// EventQuery selects a page of the event log.
type EventQuery struct {
	// Asset, when set, keeps only that asset's events; Partitions, when non-nil,
	// only those partitions' (of Asset).
	Asset      assets.Key
	Partitions []string
	// Kinds, when non-empty, keeps only events of those kinds.
	Kinds []EventKind
	// Before pages backwards: only events with Seq < Before (0: from the newest).
	Before int64
	// Limit caps the page (0: 100; at most 10,000).
	Limit int
}

// EventPage is a page of events, newest first.
type EventPage struct {
	Events []Event
	// Next is the Before of the next (older) page; 0 when this page is the last.
	Next int64
}

// AssetRecord is an asset as the catalog knows it.
type AssetRecord struct {
	Key         assets.Key
	CodeVersion string
	Deps        []assets.Key // sorted
	// Partitions is the partitions definition; nil for an unpartitioned asset.
	Partitions *assets.PartitionsSpec
	IsSource   bool
	// Definition is the whole definition as JSON (see DefinitionJSON).
	Definition  json.RawMessage
	Fingerprint string
	// CreatedSeq, UpdatedSeq and RemovedSeq are the seqs of the definition changes
	// that added, last changed and removed it (RemovedSeq 0: still defined).
	CreatedSeq, UpdatedSeq, RemovedSeq int64
	CreatedAt, UpdatedAt               time.Time
}

// Removed reports whether the asset left the definitions.
func (r *AssetRecord) Removed() bool { return r.RemovedSeq != 0 }

// ChangeKind says how a definition changed.
type ChangeKind string

// The definition change kinds.
const (
	Added   ChangeKind = "added"
	Changed ChangeKind = "changed"
	Removed ChangeKind = "removed"
)

// Definition fields that a change can touch, as listed in DefinitionChange.Fields.
const (
	FieldCodeVersion = "code_version"
	FieldDeps        = "deps"
	FieldPartitions  = "partitions"
	FieldDefinition  = "definition" // anything else: description, owners, compute, …
)

// DefinitionChange is one entry of an asset's definition history: the definition
// as it became.
type DefinitionChange struct {
	Seq         int64
	Asset       assets.Key
	At          time.Time
	Change      ChangeKind
	Fields      []string // for Changed: which of the Field* constants changed
	CodeVersion string
	Deps        []assets.Key
	Partitions  *assets.PartitionsSpec
	Definition  json.RawMessage
}

// SyncResult says what SyncDefinitions changed.
type SyncResult struct {
	Added, Changed, Removed []assets.Key
	// Reindexed lists the assets whose partitions definition changed.
	Reindexed []assets.Key
	// Seq is the watermark after the sync.
	Seq int64
}

// PartitionFlags are recorded per-(asset, partition) facts.
type PartitionFlags uint8

// The recorded flags.
const (
	// FlagMaterialized: the partition has a successful materialization (for a
	// source asset: an observation).
	FlagMaterialized PartitionFlags = 1 << iota
	// FlagFailed: the latest attempt failed.
	FlagFailed
	// FlagQueued and FlagRunning: a step for the partition is in flight.
	FlagQueued
	FlagRunning
)

// AssetState is one asset's recorded partition state as parallel arrays indexed by
// partition index under the asset's partitions definition. The arrays may be
// shorter than the asset's partition count: partitions past their end have nothing
// recorded.
type AssetState struct {
	Flags []PartitionFlags
	// InputSeq is the watermark the latest successful materialization read at.
	InputSeq []int64
	// DataChangedSeq is the seq of the latest materialization or observation whose
	// data version differed from the one before it (0: never).
	DataChangedSeq []int64
	// CodeVersion and DepSet index CodeVersions and DepSets: the code version and
	// the set of upstream assets recorded with the latest materialization.
	CodeVersion  []uint32
	DepSet       []uint32
	CodeVersions []string
	DepSets      [][]assets.Key // each sorted
}

// Len returns the number of partitions the arrays cover.
func (s *AssetState) Len() int { return len(s.Flags) }

// Grow extends the arrays to cover n partitions (nothing recorded in the new ones).
func (s *AssetState) Grow(n int) {
	if n <= len(s.Flags) {
		return
	}
	grow := n - len(s.Flags)
	s.Flags = append(s.Flags, make([]PartitionFlags, grow)...)
	s.InputSeq = append(s.InputSeq, make([]int64, grow)...)
	s.DataChangedSeq = append(s.DataChangedSeq, make([]int64, grow)...)
	s.CodeVersion = append(s.CodeVersion, make([]uint32, grow)...)
	s.DepSet = append(s.DepSet, make([]uint32, grow)...)
}

// Snapshot is the columnar state of some assets, consistent as of Seq.
type Snapshot struct {
	Seq    int64
	Assets map[assets.Key]*AssetState
}

// Changes is what changed in the catalog between two watermarks.
type Changes struct {
	Since, Seq int64
	// Reloaded holds, in full, the assets whose partitions definition changed or
	// that were added: their previous arrays no longer apply.
	Reloaded map[assets.Key]*AssetState
	// Updated holds, per asset, the partitions whose state changed.
	Updated map[assets.Key]*AssetUpdate
}

// AssetUpdate is the new state of some partitions of one asset. Index[k] is the
// partition index of the k-th entry of the other arrays; CodeVersions and DepSets
// are the asset's complete lists (ids only ever get added).
type AssetUpdate struct {
	Index []int
	AssetState
}

// PartitionRecord is the recorded state of one (asset, partition).
type PartitionRecord struct {
	Asset     assets.Key
	Partition string
	// Index is the partition's index under the asset's partitions definition, or
	// -1 when the key is no longer a partition of it.
	Index int
	// SuccessSeq is the latest materialization or observation (0: none).
	SuccessSeq     int64
	MaterializedAt time.Time
	DataVersion    string
	DataChangedSeq int64
	InputSeq       int64
	Code           *Code // nil before the first materialization
	Failed         bool
	FailedSeq      int64
	LastSeq        int64
}

// RecordedState is what the catalog recorded for a partition, before any staleness
// is derived.
type RecordedState uint8

// The recorded states of a partition range.
const (
	Missing RecordedState = iota
	Materialized
	// FailedOnly: never materialized, and the latest attempt failed.
	FailedOnly
	// MaterializedFailed: materialized, but the latest attempt failed.
	MaterializedFailed
)

func (s RecordedState) String() string {
	switch s {
	case Missing:
		return "MISSING"
	case Materialized:
		return "MATERIALIZED"
	case FailedOnly:
		return "FAILED"
	case MaterializedFailed:
		return "MATERIALIZED_FAILED"
	}
	return "RecordedState(?)"
}

// Range is a run of consecutive partitions [Lo, Hi) in the same recorded state.
type Range struct {
	Lo, Hi int
	State  RecordedState
}

// Inconsistency is a disagreement between the event log and the partition state
// found by Verify.
type Inconsistency struct {
	Asset     assets.Key
	Partition string
	Problem   string
}

func (i Inconsistency) String() string {
	return string(i.Asset) + " " + quotePartition(i.Partition) + ": " + i.Problem
}

func quotePartition(p string) string {
	if p == "" {
		return "(unpartitioned)"
	}
	return "partition " + p
}
