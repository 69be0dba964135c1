package materialize

import (
	"fmt"

	"github.com/freshetdev/freshet/assets"
	"github.com/freshetdev/freshet/graph"
	"github.com/freshetdev/freshet/store"
)

// PartitionFlags are per-(asset, partition) facts recorded in the catalog; the
// store defines them, the planner reads them.
type PartitionFlags = store.PartitionFlags

// The recorded flags.
const (
	FlagMaterialized = store.FlagMaterialized
	FlagFailed       = store.FlagFailed
	FlagQueued       = store.FlagQueued
	FlagRunning      = store.FlagRunning
)

// State is the planner's immutable snapshot of the catalog: for every asset of a
// graph (indexed like its nodes), columnar arrays indexed by partition index.
type State struct {
	// Seq is the event-log watermark the snapshot reflects.
	Seq    int64
	Assets []AssetState
}

// AssetState holds one asset's recorded partition state as parallel arrays indexed
// by partition index (see store.AssetState). They may be shorter than the asset's
// current partition count (the partitions past their end are missing) or empty
// altogether (nothing recorded).
type AssetState = store.AssetState

// NewEmptyState returns a state for g in which nothing has been recorded.
func NewEmptyState(g *graph.Graph) *State {
	return &State{Assets: make([]AssetState, g.Len())}
}

func checkState(s *AssetState, key assets.Key) error {
	n := len(s.Flags)
	if len(s.InputSeq) != n || len(s.DataChangedSeq) != n || len(s.CodeVersion) != n || len(s.DepSet) != n {
		return fmt.Errorf("state of %s: arrays of different lengths (flags %d, input_seq %d, data_changed_seq %d, code_version %d, dep_set %d)",
			key, n, len(s.InputSeq), len(s.DataChangedSeq), len(s.CodeVersion), len(s.DepSet))
	}
	// Code version and dep set ids are not checked here, to spare a pass over every
	// partition: the planner treats an unknown id as a change, which rebuilds.
	return nil
}
