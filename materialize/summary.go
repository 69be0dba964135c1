package materialize

import (
	"time"
)

// AssetSummary counts one asset's partitions (those that exist at the plan's Now)
// by status.
type AssetSummary struct {
	Total, Fresh, Stale, Missing int
	// Failed counts partitions whose latest attempt failed (whatever their status).
	Failed int
	// Newest is the index of the newest materialized partition, or -1.
	Newest int
	// Complete is how many partitions, from the first, are all materialized: the
	// asset's data is complete up to the end of partition Complete-1.
	Complete int
	// DataTime is the time the data is complete up to: the end of partition
	// Complete-1. It is zero when the first partition is missing, and for an
	// unpartitioned asset, whose data time is its last materialization (which the
	// store records).
	DataTime time.Time
}

// Summary summarizes asset a's partition statuses.
func (p *Plan) Summary(a int) AssetSummary {
	ap := &p.assets[a]
	flags := p.state.Assets[a].Flags
	s := AssetSummary{Total: ap.n, Newest: -1, Complete: -1}
	for i := 0; i < ap.n; i++ {
		switch statusOf(ap.status[i]) {
		case StatusFresh:
			s.Fresh++
		case StatusStale:
			s.Stale++
		default:
			s.Missing++
			if s.Complete < 0 {
				s.Complete = i
			}
		}
		if i < len(flags) {
			if flags[i]&FlagFailed != 0 {
				s.Failed++
			}
			if flags[i]&FlagMaterialized != 0 {
				s.Newest = i
			}
		}
	}
	if s.Complete < 0 {
		s.Complete = ap.n
	}
	if parts := p.g.Asset(a).Partitions; parts != nil && s.Complete > 0 {
		_, s.DataTime = parts.Window(s.Complete - 1)
	}
	return s
}
