package materialize

import (
	"fmt"

	"github.com/freshetdev/freshet/assets"
	"github.com/freshetdev/freshet/graph"
)

// PartitionFlags are per-(asset, partition) facts recorded in the catalog.
type PartitionFlags uint8

// The recorded flags.
const (
	// FlagMaterialized: the partition has a successful materialization (for a source
	// asset: an observation).
	FlagMaterialized PartitionFlags = 1 << iota
	// FlagFailed: the latest attempt failed.
	FlagFailed
	// FlagQueued and FlagRunning: a step for the partition is in flight.
	FlagQueued
	FlagRunning
)

// State is the planner's immutable snapshot of the catalog: for every asset of a
// graph (indexed like its nodes), columnar arrays indexed by partition index.
type State struct {
	// Seq is the event-log watermark the snapshot reflects.
	Seq    int64
	Assets []AssetState
}

// AssetState holds one asset's recorded partition state as parallel arrays. They may
// be shorter than the asset's current partition count (the partitions past their end
// are missing) or empty altogether (nothing recorded).
type AssetState struct {
	Flags []PartitionFlags
	// InputSeq is the event-log watermark taken when the latest successful
	// materialization started: every input it read was at or after that state.
	InputSeq []int64
	// DataChangedSeq is the seq of the latest materialization or observation whose
	// data version differed from the one before it (0: never).
	DataChangedSeq []int64
	// CodeVersion and DepSet index CodeVersions and DepSets: the code version and the
	// set of upstream assets in force when the partition was last materialized.
	CodeVersion  []uint32
	DepSet       []uint32
	CodeVersions []string
	DepSets      [][]assets.Key // each sorted
}

// NewEmptyState returns a state for g in which nothing has been recorded.
func NewEmptyState(g *graph.Graph) *State {
	return &State{Assets: make([]AssetState, g.Len())}
}

// Len returns the number of partitions recorded (the length of the arrays).
func (s *AssetState) Len() int { return len(s.Flags) }

func (s *AssetState) check(key assets.Key) error {
	n := len(s.Flags)
	if len(s.InputSeq) != n || len(s.DataChangedSeq) != n || len(s.CodeVersion) != n || len(s.DepSet) != n {
		return fmt.Errorf("state of %s: arrays of different lengths (flags %d, input_seq %d, data_changed_seq %d, code_version %d, dep_set %d)",
			key, n, len(s.InputSeq), len(s.DataChangedSeq), len(s.CodeVersion), len(s.DepSet))
	}
	// Code version and dep set ids are not checked here, to spare a pass over every
	// partition: the planner treats an unknown id as a change, which rebuilds.
	return nil
}
