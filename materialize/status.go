package materialize

// Status is the derived status of one (asset, partition).
type Status uint8

// The statuses.
const (
	StatusFresh Status = iota
	StatusMissing
	StatusStale
)

func (s Status) String() string {
	switch s {
	case StatusFresh:
		return "FRESH"
	case StatusMissing:
		return "MISSING"
	case StatusStale:
		return "STALE"
	}
	return "UNKNOWN"
}

// CauseKind says why a partition is stale.
type CauseKind uint8

// The causes of staleness. Their values are the bits of the planner's per-partition
// status byte.
const (
	CauseCodeChanged     CauseKind = 1 << (iota + 1) // the asset's code_version changed
	CauseUpstreamChanged                             // an upstream partition's data changed after this one read it
	CauseUpstreamStale                               // an upstream partition in range is itself stale
	CauseUpstreamMissing                             // an upstream partition in range is missing
	CauseDepsChanged                                 // the set of upstream assets changed
)

// The status byte: bitMissing, or any of the cause bits for a stale partition.
const (
	bitMissing = 1
	staleMask  = uint8(CauseCodeChanged | CauseUpstreamChanged | CauseUpstreamStale | CauseUpstreamMissing | CauseDepsChanged)
	// directMask are the causes that rebuilding the partition itself fixes; the others
	// (UPSTREAM_STALE, UPSTREAM_MISSING) are fixed only by rebuilding the upstream first.
	directMask = uint8(CauseCodeChanged | CauseUpstreamChanged | CauseDepsChanged)
)

var causeNames = []struct {
	kind CauseKind
	name string
}{
	{CauseCodeChanged, "CODE_CHANGED"},
	{CauseDepsChanged, "DEPS_CHANGED"},
	{CauseUpstreamChanged, "UPSTREAM_CHANGED"},
	{CauseUpstreamMissing, "UPSTREAM_MISSING"},
	{CauseUpstreamStale, "UPSTREAM_STALE"},
}

func (k CauseKind) String() string {
	for _, c := range causeNames {
		if c.kind == k {
			return c.name
		}
	}
	return "UNKNOWN"
}

func statusOf(b uint8) Status {
	switch {
	case b&bitMissing != 0:
		return StatusMissing
	case b&staleMask != 0:
		return StatusStale
	}
	return StatusFresh
}
