package assets

import "time"

// TimeMapping maps a downstream partition to the contiguous range of upstream
// partitions its window overlaps. For downstream index i the window is
// [WindowStart(i+StartOffset), WindowStart(i+EndOffset+1)), so offsets count in the
// downstream's own windows: StartOffset -1 on a daily dep means "that day and the day
// before". Range is O(1); for the common cases it is integer arithmetic.
type TimeMapping struct {
	down, up               *Partitions
	startOffset, endOffset int
	kind                   mappingKind
	shift                  int // kindShift: upstream index = downstream index + shift
}

type mappingKind uint8

const (
	kindGeneric  mappingKind = iota // via instants (different timezones, hourly ↔ day-based)
	kindShift                       // same windows, shifted by a whole number of partitions
	kindCalendar                    // day-based on the same civil calendar and time of day
)

// NewTimeMapping returns the overlap mapping from down's partitions to up's.
// startOffset must not exceed endOffset.
func NewTimeMapping(down, up *Partitions, startOffset, endOffset int) TimeMapping {
	m := TimeMapping{down: down, up: up, startOffset: startOffset, endOffset: endOffset}
	sameCalendar := down.dayBased() && up.dayBased() && down.spec.Timezone == up.spec.Timezone && down.tod == up.tod
	switch {
	case down.spec.Granularity == Hourly && up.spec.Granularity == Hourly:
		if d := down.startUnix - up.startUnix; d%3600 == 0 {
			m.kind, m.shift = kindShift, int(d/3600)
		}
	case sameCalendar && down.spec.Granularity == up.spec.Granularity:
		m.kind = kindShift
		switch down.spec.Granularity {
		case Daily:
			m.shift = down.startDay - up.startDay
		case Weekly:
			m.shift = floorDiv(down.startDay-up.startDay, 7)
		case Monthly:
			m.shift = down.startMonth - up.startMonth
		}
	case sameCalendar:
		m.kind = kindCalendar
	}
	return m
}

// Shift reports whether the mapping is a pure index shift, and if so the upstream range
// for downstream index i is [i+lo, i+hi].
func (m TimeMapping) Shift() (lo, hi int, ok bool) {
	if m.kind != kindShift {
		return 0, 0, false
	}
	return m.shift + m.startOffset, m.shift + m.endOffset, true
}

// Range returns the inclusive upstream index range [lo, hi] that downstream partition
// i needs. It is not clipped to the partitions that exist.
func (m TimeMapping) Range(i int) (lo, hi int) {
	switch m.kind {
	case kindShift:
		return i + m.shift + m.startOffset, i + m.shift + m.endOffset
	case kindCalendar:
		first := m.down.startDayOf(i + m.startOffset)
		next := m.down.startDayOf(i + m.endOffset + 1)
		return m.up.indexOfDay(first), m.up.indexOfDay(next - 1)
	default:
		start := m.down.WindowStart(i + m.startOffset)
		end := m.down.WindowStart(i + m.endOffset + 1)
		return m.up.IndexAt(start), m.up.IndexAt(end.Add(-time.Nanosecond))
	}
}
