package store

// RangeBuilder builds run-length ranges over partitions [lo, hi) from the recorded
// partitions visited in ascending index order; partitions never visited are Missing.
type RangeBuilder struct {
	lo, hi, next int
	ranges       []Range
}

// NewRangeBuilder starts ranges over [lo, hi).
func NewRangeBuilder(lo, hi int) *RangeBuilder {
	return &RangeBuilder{lo: lo, hi: hi, next: lo}
}

// Add records that partition index is in state s. Indexes outside [lo, hi) or not
// above the previous one are ignored.
func (b *RangeBuilder) Add(index int, s RecordedState) {
	if index < b.next || index >= b.hi {
		return
	}
	if index > b.next {
		b.extend(b.next, index, Missing)
	}
	b.extend(index, index+1, s)
	b.next = index + 1
}

// Ranges closes the builder and returns the ranges covering [lo, hi).
func (b *RangeBuilder) Ranges() []Range {
	if b.next < b.hi {
		b.extend(b.next, b.hi, Missing)
		b.next = b.hi
	}
	return b.ranges
}

func (b *RangeBuilder) extend(lo, hi int, s RecordedState) {
	if n := len(b.ranges); n > 0 && b.ranges[n-1].State == s && b.ranges[n-1].Hi == lo {
		b.ranges[n-1].Hi = hi
		return
	}
	b.ranges = append(b.ranges, Range{Lo: lo, Hi: hi, State: s})
}
