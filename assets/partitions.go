package assets

import (
	"fmt"
	"strconv"
	"time"
)

// Granularity is the width of a partition's time window.
type Granularity uint8

// The supported partition granularities.
const (
	Hourly Granularity = iota + 1
	Daily
	Weekly // weeks start on Monday
	Monthly
)

var granularityNames = map[Granularity]string{Hourly: "hourly", Daily: "daily", Weekly: "weekly", Monthly: "monthly"}

func (g Granularity) String() string {
	if s, ok := granularityNames[g]; ok {
		return s
	}
	return fmt.Sprintf("Granularity(%d)", uint8(g))
}

// ParseGranularity parses "hourly", "daily", "weekly" or "monthly".
func ParseGranularity(s string) (Granularity, error) {
	for g, name := range granularityNames {
		if name == s {
			return g, nil
		}
	}
	return 0, fmt.Errorf("unknown partition granularity %q (want hourly, daily, weekly or monthly)", s)
}

// PartitionsSpec declares time-window partitions as written in a definitions file.
type PartitionsSpec struct {
	Granularity Granularity
	// Start is a date ("2026-01-01", meaning 00:00 in Timezone) or a local date-time
	// ("2026-01-01T06:00"). Day-based windows then start at that time of day; weekly
	// partitions must start on a Monday and monthly ones on the first of a month.
	Start string
	// End, optional, is exclusive: only windows that start before it exist.
	End string
	// Timezone is an IANA name; empty means UTC.
	Timezone string
	// EndOffset shifts the newest partition: 0 means the newest partition is the last
	// complete window, 1 includes the window in progress, -1 lags one window behind.
	EndOffset int
}

// SpecError is a problem with one field of a PartitionsSpec.
type SpecError struct {
	Field string // "start", "end", "timezone"
	Msg   string
}

func (e *SpecError) Error() string { return e.Field + ": " + e.Msg }

// Partitions is a validated, immutable partitions definition. All conversions between
// partition index, window and key are O(1).
type Partitions struct {
	spec PartitionsSpec
	loc  *time.Location
	utc  bool

	// Day-based granularities live on the civil calendar of loc.
	startDay   int // civil day number of the first window (daily, weekly)
	startMonth int // year*12 + month-1 of the first window (monthly)
	tod        int // minutes after local midnight at which windows start

	// Hourly windows are consecutive 60-minute spans of absolute time from startUnix.
	startUnix int64

	endCount int // number of partitions before End; -1 without End
}

// NewPartitions validates spec and returns the partitions it defines.
func NewPartitions(spec PartitionsSpec) (*Partitions, error) {
	p := &Partitions{spec: spec, endCount: -1}
	if _, ok := granularityNames[spec.Granularity]; !ok {
		return nil, &SpecError{"granularity", fmt.Sprintf("unknown granularity %d", spec.Granularity)}
	}
	tz := spec.Timezone
	if tz == "" {
		tz = "UTC"
		p.spec.Timezone = tz
	}
	loc, err := time.LoadLocation(tz)
	if err != nil || tz == "Local" {
		return nil, &SpecError{"timezone", fmt.Sprintf("unknown timezone %q: use an IANA name such as UTC or Europe/Berlin", spec.Timezone)}
	}
	p.loc = loc
	p.utc = tz == "UTC" || tz == "Etc/UTC"

	if spec.Start == "" {
		return nil, &SpecError{"start", "missing: give the first partition's date, e.g. 2026-01-01"}
	}
	y, m, d, hh, mm, err := parseLocalDateTime(spec.Start)
	if err != nil {
		return nil, &SpecError{"start", err.Error()}
	}
	day := daysFromCivil(y, m, d)
	switch spec.Granularity {
	case Hourly:
		if mm != 0 {
			return nil, &SpecError{"start", fmt.Sprintf("%q: hourly partitions start on the hour", spec.Start)}
		}
		p.startUnix = time.Date(y, time.Month(m), d, hh, 0, 0, 0, loc).Unix()
	case Daily:
		p.startDay = day
	case Weekly:
		if wd := weekdayOfDay(day); wd != 0 {
			my, mm2, md := civilFromDays(day - wd)
			return nil, &SpecError{"start", fmt.Sprintf("%q is a %s: weekly partitions start on a Monday (the Monday before is %04d-%02d-%02d)",
				spec.Start, time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC).Weekday(), my, mm2, md)}
		}
		p.startDay = day
	case Monthly:
		if d != 1 {
			return nil, &SpecError{"start", fmt.Sprintf("%q: monthly partitions start on the first day of a month", spec.Start)}
		}
		p.startMonth = y*12 + m - 1
	}
	if spec.Granularity != Hourly {
		p.tod = hh*60 + mm
	}

	if spec.End != "" {
		ey, em, ed, ehh, emm, err := parseLocalDateTime(spec.End)
		if err != nil {
			return nil, &SpecError{"end", err.Error()}
		}
		end := time.Date(ey, time.Month(em), ed, ehh, emm, 0, 0, loc)
		first, _ := p.Window(0)
		if !end.After(first) {
			return nil, &SpecError{"end", fmt.Sprintf("%q is not after start %q", spec.End, spec.Start)}
		}
		p.endCount = p.FirstStartingAtOrAfter(end)
	}
	return p, nil
}

// parseLocalDateTime accepts YYYY-MM-DD, YYYY-MM-DDTHH:MM and YYYY-MM-DDTHH:MM:00.
func parseLocalDateTime(s string) (y, m, d, hh, mm int, err error) {
	layouts := []string{"2006-01-02", "2006-01-02T15:04", "2006-01-02T15:04:05", "2006-01-02 15:04"}
	for _, layout := range layouts {
		t, perr := time.Parse(layout, s)
		if perr != nil {
			continue
		}
		if t.Second() != 0 {
			return 0, 0, 0, 0, 0, fmt.Errorf("%q: seconds are not supported", s)
		}
		return t.Year(), int(t.Month()), t.Day(), t.Hour(), t.Minute(), nil
	}
	return 0, 0, 0, 0, 0, fmt.Errorf("%q is not a date (YYYY-MM-DD) or local date-time (YYYY-MM-DDTHH:MM)", s)
}

// Spec returns the declaration the partitions were built from (Timezone filled in).
func (p *Partitions) Spec() PartitionsSpec { return p.spec }

// Granularity returns the window width.
func (p *Partitions) Granularity() Granularity { return p.spec.Granularity }

// Location returns the partitions' timezone.
func (p *Partitions) Location() *time.Location { return p.loc }

// EndCount returns the number of partitions that exist before End, or -1 without End.
func (p *Partitions) EndCount() int { return p.endCount }

// dayBased reports whether windows follow the civil calendar (daily, weekly, monthly).
func (p *Partitions) dayBased() bool { return p.spec.Granularity != Hourly }

// startDayOf returns the civil day on which window i starts (day-based only).
func (p *Partitions) startDayOf(i int) int {
	switch p.spec.Granularity {
	case Daily:
		return p.startDay + i
	case Weekly:
		return p.startDay + 7*i
	default: // Monthly
		mi := p.startMonth + i
		return daysFromCivil(floorDiv(mi, 12), floorMod(mi, 12)+1, 1)
	}
}

// indexOfDay returns the index of the window whose start day is the latest one at or
// before civil day z (day-based only). It ignores the time of day.
func (p *Partitions) indexOfDay(z int) int {
	switch p.spec.Granularity {
	case Daily:
		return z - p.startDay
	case Weekly:
		return floorDiv(z-p.startDay, 7)
	default: // Monthly
		y, m, _ := civilFromDays(z)
		return y*12 + m - 1 - p.startMonth
	}
}

// WindowStart returns the instant at which partition i starts. Any index is accepted,
// including negative ones and ones past the end: windows extend both ways.
func (p *Partitions) WindowStart(i int) time.Time {
	if !p.dayBased() {
		return time.Unix(p.startUnix+3600*int64(i), 0).In(p.loc)
	}
	y, m, d := civilFromDays(p.startDayOf(i))
	return time.Date(y, time.Month(m), d, p.tod/60, p.tod%60, 0, 0, p.loc)
}

// Window returns partition i's half-open window [start, end).
func (p *Partitions) Window(i int) (start, end time.Time) {
	return p.WindowStart(i), p.WindowStart(i + 1)
}

// IndexAt returns the index of the window containing t (possibly negative, or past
// the newest partition).
func (p *Partitions) IndexAt(t time.Time) int {
	if !p.dayBased() {
		return int(floorDiv64(t.Unix()-p.startUnix, 3600))
	}
	lt := t.In(p.loc)
	i := p.indexOfDay(daysFromCivil(lt.Year(), int(lt.Month()), lt.Day()))
	// The guess ignores the time of day (and DST); settle it against real instants.
	for p.WindowStart(i).After(t) {
		i--
	}
	for !p.WindowStart(i + 1).After(t) {
		i++
	}
	return i
}

// FirstStartingAtOrAfter returns the index of the first window that starts at or after t.
func (p *Partitions) FirstStartingAtOrAfter(t time.Time) int {
	i := p.IndexAt(t)
	if p.WindowStart(i).Before(t) {
		i++
	}
	return i
}

// Count returns how many partitions exist at now: every window from start up to the
// newest complete one, shifted by EndOffset, and none past End.
func (p *Partitions) Count(now time.Time) int {
	n := p.IndexAt(now) + p.spec.EndOffset
	if p.endCount >= 0 && n > p.endCount {
		n = p.endCount
	}
	if n < 0 {
		n = 0
	}
	return n
}

// Key returns partition i's key.
func (p *Partitions) Key(i int) string {
	return string(p.AppendKey(nil, i))
}

// AppendKey appends partition i's key to b; it allocates nothing for day-based keys.
func (p *Partitions) AppendKey(b []byte, i int) []byte {
	switch p.spec.Granularity {
	case Hourly:
		t := p.WindowStart(i)
		if p.utc {
			return t.AppendFormat(b, "2006-01-02T15:04")
		}
		return t.AppendFormat(b, "2006-01-02T15:04-07:00")
	case Monthly:
		mi := p.startMonth + i
		b = appendInt(b, floorDiv(mi, 12), 4)
		b = append(b, '-')
		return appendInt(b, floorMod(mi, 12)+1, 2)
	default:
		y, m, d := civilFromDays(p.startDayOf(i))
		b = appendInt(b, y, 4)
		b = append(b, '-')
		b = appendInt(b, m, 2)
		b = append(b, '-')
		return appendInt(b, d, 2)
	}
}

func appendInt(b []byte, v, width int) []byte {
	if v < 0 {
		b = append(b, '-')
		v = -v
	}
	s := strconv.Itoa(v)
	for i := len(s); i < width; i++ {
		b = append(b, '0')
	}
	return append(b, s...)
}

// Index parses and validates a partition key and returns its index. The key must be in
// canonical form, aligned to a window, and inside [start, end).
func (p *Partitions) Index(key string) (int, error) {
	i, err := p.parseKey(key)
	if err != nil {
		return 0, fmt.Errorf("partition key %q: %w", key, err)
	}
	if i < 0 {
		return 0, fmt.Errorf("partition key %q is before the first partition %q", key, p.Key(0))
	}
	if p.endCount >= 0 && i >= p.endCount {
		return 0, fmt.Errorf("partition key %q is at or after the partitions' end %q", key, p.spec.End)
	}
	return i, nil
}

func (p *Partitions) parseKey(key string) (int, error) {
	switch p.spec.Granularity {
	case Hourly:
		var t time.Time
		var err error
		if p.utc {
			t, err = time.Parse("2006-01-02T15:04", key)
			if err != nil {
				return 0, fmt.Errorf("not an hourly key: want YYYY-MM-DDTHH:00 (UTC)")
			}
		} else {
			t, err = time.Parse("2006-01-02T15:04Z07:00", key)
			if err != nil {
				return 0, fmt.Errorf("not an hourly key: want YYYY-MM-DDTHH:00±HH:MM, with %s's UTC offset at that hour", p.spec.Timezone)
			}
		}
		delta := t.Unix() - p.startUnix
		if floorMod64(delta, 3600) != 0 {
			return 0, fmt.Errorf("not on an hour boundary of these partitions")
		}
		i := int(floorDiv64(delta, 3600))
		if canonical := p.Key(i); canonical != key {
			return 0, fmt.Errorf("not in canonical form for %s partitions: that hour is %q", p.spec.Timezone, canonical)
		}
		return i, nil
	case Monthly:
		if len(key) != 7 || key[4] != '-' {
			return 0, fmt.Errorf("not a monthly key: want YYYY-MM")
		}
		y, ok1 := atoiDigits(key[0:4])
		m, ok2 := atoiDigits(key[5:7])
		if !ok1 || !ok2 || m < 1 || m > 12 {
			return 0, fmt.Errorf("not a monthly key: want YYYY-MM")
		}
		return y*12 + m - 1 - p.startMonth, nil
	default:
		if len(key) != 10 || key[4] != '-' || key[7] != '-' {
			return 0, fmt.Errorf("not a %s key: want YYYY-MM-DD", p.spec.Granularity)
		}
		y, ok1 := atoiDigits(key[0:4])
		m, ok2 := atoiDigits(key[5:7])
		d, ok3 := atoiDigits(key[8:10])
		if !ok1 || !ok2 || !ok3 || m < 1 || m > 12 || d < 1 || d > 31 {
			return 0, fmt.Errorf("not a %s key: want YYYY-MM-DD", p.spec.Granularity)
		}
		z := daysFromCivil(y, m, d)
		if cy, cm, cd := civilFromDays(z); cy != y || cm != m || cd != d {
			return 0, fmt.Errorf("no such date")
		}
		if p.spec.Granularity == Weekly {
			if wd := weekdayOfDay(z); wd != 0 {
				return 0, fmt.Errorf("weekly partitions are keyed by their Monday; that week's is %q", p.Key(p.indexOfDay(z)))
			}
			return floorDiv(z-p.startDay, 7), nil
		}
		return z - p.startDay, nil
	}
}

func atoiDigits(s string) (int, bool) {
	v := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int(c-'0')
	}
	return v, true
}

func floorDiv64(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

func floorMod64(a, b int64) int64 { return a - floorDiv64(a, b)*b }
