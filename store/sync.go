package store

import (
	"fmt"
	"slices"

	"github.com/freshetdev/freshet/assets"
)

// SyncAction is one change SyncDefinitions must write.
type SyncAction struct {
	Change ChangeKind
	// Record is the asset's new record (for Removed: the stored one).
	Record AssetRecord
	// Fields lists what changed (Field* constants); for Added, every field.
	Fields []string
	// Reindex: the partitions definition differs from the stored one, so the
	// asset's recorded partitions need new indexes.
	Reindex bool
}

// PlanSync compares the stored asset records with defs and returns the changes to
// write, in a stable order (by key). Driver-independent, so both drivers sync alike.
func PlanSync(stored []AssetRecord, defs *assets.Definitions) []SyncAction {
	byKey := make(map[assets.Key]*AssetRecord, len(stored))
	for i := range stored {
		byKey[stored[i].Key] = &stored[i]
	}
	var actions []SyncAction
	defined := make(map[assets.Key]bool, len(defs.Assets))
	for _, a := range defs.Assets {
		defined[a.Key] = true
		rec := DefinitionOf(a)
		old, ok := byKey[a.Key]
		switch {
		case !ok:
			actions = append(actions, SyncAction{Change: Added, Record: rec, Fields: allFields})
		case old.Removed():
			actions = append(actions, SyncAction{Change: Added, Record: rec, Fields: allFields,
				Reindex: !SamePartitions(old.Partitions, rec.Partitions)})
		default:
			if fields := ChangedFields(old, &rec); len(fields) > 0 {
				actions = append(actions, SyncAction{Change: Changed, Record: rec, Fields: fields,
					Reindex: slices.Contains(fields, FieldPartitions)})
			}
		}
	}
	for i := range stored {
		if old := &stored[i]; !defined[old.Key] && !old.Removed() {
			actions = append(actions, SyncAction{Change: Removed, Record: *old})
		}
	}
	slices.SortFunc(actions, func(a, b SyncAction) int {
		switch {
		case a.Record.Key < b.Record.Key:
			return -1
		case a.Record.Key > b.Record.Key:
			return 1
		}
		return 0
	})
	return actions
}

var allFields = []string{FieldCodeVersion, FieldDeps, FieldPartitions, FieldDefinition}

// Indexer maps a recorded partition key to its index under a partitions definition.
type Indexer struct {
	p *assets.Partitions
}

// NewIndexer returns an indexer for spec (nil: unpartitioned).
func NewIndexer(spec *assets.PartitionsSpec) (*Indexer, error) {
	if spec == nil {
		return &Indexer{}, nil
	}
	p, err := assets.NewPartitions(*spec)
	if err != nil {
		return nil, fmt.Errorf("partitions definition: %w", err)
	}
	return &Indexer{p: p}, nil
}

// Partitions returns the definition (nil: unpartitioned).
func (x *Indexer) Partitions() *assets.Partitions { return x.p }

// Index returns the index of key, or false when key is not a partition.
func (x *Indexer) Index(key string) (int, bool) {
	if x.p == nil {
		return 0, key == ""
	}
	i, err := x.p.Index(key)
	return i, err == nil
}

// VerifyPartition replays the events of one partition (in seq order) and compares
// the result with its stored state (nil when there is none).
func VerifyPartition(asset assets.Key, partition string, events []Event, stored *PartitionRecord) []Inconsistency {
	want := &PartitionRecord{Asset: asset, Partition: partition}
	touched := false
	for i := range events {
		e := events[i]
		if e.Kind.Touches() {
			touched = true
		}
		want.Apply(&e)
		if e.Kind.Touches() && e.DataChanged != events[i].DataChanged {
			return []Inconsistency{{asset, partition, fmt.Sprintf("event %d is recorded with data_changed %v, but replaying the log gives %v", e.Seq, events[i].DataChanged, e.DataChanged)}}
		}
	}
	switch {
	case stored == nil && touched:
		return []Inconsistency{{asset, partition, "the event log has events for it but the state has no row"}}
	case stored == nil:
		return nil
	case !touched:
		return []Inconsistency{{asset, partition, "the state has a row but the event log has no event for it"}}
	}
	var out []Inconsistency
	for _, d := range Diff(want, stored) {
		out = append(out, Inconsistency{asset, partition, d})
	}
	return out
}
