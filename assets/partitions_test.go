package assets

import (
	"strings"
	"testing"
	"time"
)

func partitionsFor(t testing.TB, spec PartitionsSpec) *Partitions {
	t.Helper()
	p, err := NewPartitions(spec)
	if err != nil {
		t.Fatalf("%+v: %v", spec, err)
	}
	return p
}

// partitionsStartingOn counts the partitions whose window starts on local date day.
func partitionsStartingOn(p *Partitions, day string) int {
	d, _ := time.ParseInLocation("2006-01-02", day, p.Location())
	next := d.AddDate(0, 0, 1)
	return p.FirstStartingAtOrAfter(next) - p.FirstStartingAtOrAfter(d)
}

func TestHourlyDST(t *testing.T) {
	t.Parallel()
	p := partitionsFor(t, PartitionsSpec{Granularity: Hourly, Start: "2026-01-01", Timezone: "Europe/Berlin"})
	for day, want := range map[string]int{"2026-03-29": 23, "2026-10-25": 25, "2026-06-01": 24} {
		if got := partitionsStartingOn(p, day); got != want {
			t.Errorf("%s: %d hourly partitions, want %d", day, got, want)
		}
	}
	// The hour repeated when clocks go back has two keys, one index apart.
	first, err := p.Index("2026-10-25T02:00+02:00")
	if err != nil {
		t.Fatal(err)
	}
	second, err := p.Index("2026-10-25T02:00+01:00")
	if err != nil {
		t.Fatal(err)
	}
	if second != first+1 {
		t.Errorf("repeated hour: indices %d and %d, want consecutive", first, second)
	}
	// The hour skipped when clocks go forward has no key.
	if _, err := p.Index("2026-03-29T02:00+01:00"); err == nil {
		t.Error("2026-03-29T02:00+01:00 does not exist in Europe/Berlin but was accepted")
	}
	utc := partitionsFor(t, PartitionsSpec{Granularity: Hourly, Start: "2026-01-01"})
	if got := utc.Key(24*97 + 13); got != "2026-04-08T13:00" {
		t.Errorf("UTC hourly key %q, want 2026-04-08T13:00", got)
	}
}

func TestDailyDSTWindows(t *testing.T) {
	t.Parallel()
	p := partitionsFor(t, PartitionsSpec{Granularity: Daily, Start: "2026-01-01", Timezone: "Europe/Berlin"})
	for key, want := range map[string]time.Duration{"2026-03-29": 23 * time.Hour, "2026-10-25": 25 * time.Hour, "2026-07-01": 24 * time.Hour} {
		i, err := p.Index(key)
		if err != nil {
			t.Fatal(err)
		}
		s, e := p.Window(i)
		if e.Sub(s) != want {
			t.Errorf("%s lasts %s, want %s", key, e.Sub(s), want)
		}
		if got := s.Format("15:04"); got != "00:00" {
			t.Errorf("%s starts at %s local, want 00:00", key, got)
		}
	}
}

func TestRoundTrips(t *testing.T) {
	t.Parallel()
	specs := []PartitionsSpec{
		{Granularity: Hourly, Start: "2025-10-20T05:00", Timezone: "Europe/Berlin"},
		{Granularity: Hourly, Start: "2026-01-01", Timezone: "Asia/Kolkata"},
		{Granularity: Hourly, Start: "2026-01-01", Timezone: "America/New_York"},
		{Granularity: Daily, Start: "2024-01-01"},
		{Granularity: Daily, Start: "2025-03-01T06:00", Timezone: "America/Sao_Paulo"},
		{Granularity: Daily, Start: "2025-01-01", Timezone: "Australia/Lord_Howe"},
		{Granularity: Weekly, Start: "2024-12-30", Timezone: "Europe/London"},
		{Granularity: Monthly, Start: "2020-02-01", Timezone: "Pacific/Auckland"},
	}
	for _, spec := range specs {
		p := partitionsFor(t, spec)
		n := 3000
		if spec.Granularity == Monthly {
			n = 400
		}
		for i := 0; i < n; i++ {
			key := p.Key(i)
			if got, err := p.Index(key); err != nil || got != i {
				t.Fatalf("%+v: Index(Key(%d) = %q) = %d, %v", spec, i, key, got, err)
			}
			s, e := p.Window(i)
			if !e.After(s) {
				t.Fatalf("%+v: window %d [%s, %s) is empty", spec, i, s, e)
			}
			if got := p.IndexAt(s); got != i {
				t.Fatalf("%+v: IndexAt(start of %d) = %d", spec, i, got)
			}
			if got := p.IndexAt(e.Add(-time.Nanosecond)); got != i {
				t.Fatalf("%+v: IndexAt(end of %d - 1ns) = %d", spec, i, got)
			}
		}
	}
}

func TestKeysAndWindows(t *testing.T) {
	t.Parallel()
	weekly := partitionsFor(t, PartitionsSpec{Granularity: Weekly, Start: "2026-01-05"})
	monthly := partitionsFor(t, PartitionsSpec{Granularity: Monthly, Start: "2026-01-01"})
	daily6 := partitionsFor(t, PartitionsSpec{Granularity: Daily, Start: "2026-01-01T06:00"})
	for _, tc := range []struct {
		p          *Partitions
		key        string
		index      int
		start, end string
	}{
		{weekly, "2026-01-12", 1, "2026-01-12T00:00:00Z", "2026-01-19T00:00:00Z"},
		{monthly, "2026-02", 1, "2026-02-01T00:00:00Z", "2026-03-01T00:00:00Z"},
		{monthly, "2027-01", 12, "2027-01-01T00:00:00Z", "2027-02-01T00:00:00Z"},
		{daily6, "2026-01-02", 1, "2026-01-02T06:00:00Z", "2026-01-03T06:00:00Z"},
	} {
		i, err := tc.p.Index(tc.key)
		if err != nil || i != tc.index {
			t.Errorf("Index(%q) = %d, %v; want %d", tc.key, i, err, tc.index)
			continue
		}
		s, e := tc.p.Window(i)
		if s.UTC().Format(time.RFC3339) != tc.start || e.UTC().Format(time.RFC3339) != tc.end {
			t.Errorf("%s: window [%s, %s), want [%s, %s)", tc.key, s.UTC().Format(time.RFC3339), e.UTC().Format(time.RFC3339), tc.start, tc.end)
		}
	}
	// Windows that start at 06:00: 05:59 on Jan 2 still belongs to Jan 1.
	if got := daily6.IndexAt(time.Date(2026, 1, 2, 5, 59, 0, 0, time.UTC)); got != 0 {
		t.Errorf("IndexAt(2026-01-02 05:59) = %d, want 0", got)
	}
}

func TestCount(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 10, 12, 0, 0, 0, time.UTC) // Jan 1..9 complete
	for _, tc := range []struct {
		spec PartitionsSpec
		want int
	}{
		{PartitionsSpec{Granularity: Daily, Start: "2026-01-01"}, 9},
		{PartitionsSpec{Granularity: Daily, Start: "2026-01-01", EndOffset: 1}, 10},
		{PartitionsSpec{Granularity: Daily, Start: "2026-01-01", EndOffset: -2}, 7},
		{PartitionsSpec{Granularity: Daily, Start: "2026-01-01", End: "2026-01-05"}, 4},
		{PartitionsSpec{Granularity: Daily, Start: "2026-02-01"}, 0},
		{PartitionsSpec{Granularity: Weekly, Start: "2025-12-29"}, 1},
		{PartitionsSpec{Granularity: Hourly, Start: "2026-01-10"}, 12},
		{PartitionsSpec{Granularity: Daily, Start: "2026-01-01", Timezone: "Pacific/Kiritimati"}, 10}, // UTC+14: Jan 11 has begun there
	} {
		if got := partitionsFor(t, tc.spec).Count(now); got != tc.want {
			t.Errorf("%+v: Count = %d, want %d", tc.spec, got, tc.want)
		}
	}
}

func TestBadKeys(t *testing.T) {
	t.Parallel()
	daily := partitionsFor(t, PartitionsSpec{Granularity: Daily, Start: "2026-01-01", End: "2027-01-01"})
	weekly := partitionsFor(t, PartitionsSpec{Granularity: Weekly, Start: "2026-01-05"})
	hourly := partitionsFor(t, PartitionsSpec{Granularity: Hourly, Start: "2026-01-01", Timezone: "Europe/Berlin"})
	monthly := partitionsFor(t, PartitionsSpec{Granularity: Monthly, Start: "2026-01-01"})
	for _, tc := range []struct {
		p    *Partitions
		key  string
		want string
	}{
		{daily, "2025-12-31", "before the first partition"},
		{daily, "2027-01-01", "at or after the partitions' end"},
		{daily, "2026-02-30", "no such date"},
		{daily, "2026-1-05", "want YYYY-MM-DD"},
		{daily, "", "want YYYY-MM-DD"},
		{weekly, "2026-01-07", `keyed by their Monday; that week's is "2026-01-05"`},
		{hourly, "2026-04-08T13:00", "UTC offset"},
		{hourly, "2026-04-08T13:00+01:00", `canonical form for Europe/Berlin partitions: that hour is "2026-04-08T14:00+02:00"`},
		{hourly, "2026-04-08T13:30+02:00", "not on an hour boundary"},
		{monthly, "2026-13", "want YYYY-MM"},
	} {
		_, err := tc.p.Index(tc.key)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Index(%q) error %v, want one containing %q", tc.key, err, tc.want)
		}
	}
}

func TestBadSpecs(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		spec        PartitionsSpec
		field, want string
	}{
		{PartitionsSpec{Granularity: Daily, Start: "2026-01-01", Timezone: "Europe/Berln"}, "timezone", "unknown timezone"},
		{PartitionsSpec{Granularity: Daily, Start: "01/01/2026"}, "start", "is not a date"},
		{PartitionsSpec{Granularity: Daily}, "start", "missing"},
		{PartitionsSpec{Granularity: Weekly, Start: "2026-01-01"}, "start", "is a Thursday"},
		{PartitionsSpec{Granularity: Monthly, Start: "2026-01-15"}, "start", "first day of a month"},
		{PartitionsSpec{Granularity: Hourly, Start: "2026-01-01T10:30"}, "start", "on the hour"},
		{PartitionsSpec{Granularity: Daily, Start: "2026-01-01", End: "2025-01-01"}, "end", "not after start"},
	} {
		_, err := NewPartitions(tc.spec)
		se, ok := err.(*SpecError)
		if !ok || se.Field != tc.field || !strings.Contains(se.Msg, tc.want) {
			t.Errorf("%+v: error %v, want field %s containing %q", tc.spec, err, tc.field, tc.want)
		}
	}
}

func TestTimeMapping(t *testing.T) {
	t.Parallel()
	daily := partitionsFor(t, PartitionsSpec{Granularity: Daily, Start: "2026-01-01"})
	weekly := partitionsFor(t, PartitionsSpec{Granularity: Weekly, Start: "2026-01-05"})
	monthly := partitionsFor(t, PartitionsSpec{Granularity: Monthly, Start: "2026-01-01"})
	hourlyBerlin := partitionsFor(t, PartitionsSpec{Granularity: Hourly, Start: "2026-01-01", Timezone: "Europe/Berlin"})
	dailyBerlin := partitionsFor(t, PartitionsSpec{Granularity: Daily, Start: "2026-01-01", Timezone: "Europe/Berlin"})
	dailyNY := partitionsFor(t, PartitionsSpec{Granularity: Daily, Start: "2026-01-01", Timezone: "America/New_York"})
	keys := func(p *Partitions, lo, hi int) string { return p.Key(lo) + ".." + p.Key(hi) }
	for _, tc := range []struct {
		name     string
		down, up *Partitions
		so, eo   int
		downKey  string
		want     string
		shift    bool
	}{
		{"weekly needs its 7 days", weekly, daily, 0, 0, "2026-01-12", "2026-01-12..2026-01-18", false},
		{"daily needs its week", daily, weekly, 0, 0, "2026-01-14", "2026-01-12..2026-01-12", false},
		{"rolling 7 days", daily, daily, -6, 0, "2026-01-10", "2026-01-04..2026-01-10", true},
		{"monthly needs its days", monthly, daily, 0, 0, "2026-02", "2026-02-01..2026-02-28", false},
		{"daily Berlin needs 23 hours on spring-forward day", dailyBerlin, hourlyBerlin, 0, 0, "2026-03-29",
			"2026-03-29T00:00+01:00..2026-03-29T23:00+02:00", false},
		{"daily New York overlaps two UTC days", dailyNY, daily, 0, 0, "2026-01-10", "2026-01-10..2026-01-11", false},
	} {
		m := NewTimeMapping(tc.down, tc.up, tc.so, tc.eo)
		i, err := tc.down.Index(tc.downKey)
		if err != nil {
			t.Fatal(err)
		}
		lo, hi := m.Range(i)
		if got := keys(tc.up, lo, hi); got != tc.want {
			t.Errorf("%s: %s → %s, want %s", tc.name, tc.downKey, got, tc.want)
		}
		if _, _, ok := m.Shift(); ok != tc.shift {
			t.Errorf("%s: Shift ok = %v, want %v", tc.name, ok, tc.shift)
		}
	}
	// Hours of the 25-hour day all map to it.
	m := NewTimeMapping(dailyBerlin, hourlyBerlin, 0, 0)
	i, _ := dailyBerlin.Index("2026-10-25")
	if lo, hi := m.Range(i); hi-lo+1 != 25 {
		t.Errorf("2026-10-25 in Berlin needs %d hours, want 25", hi-lo+1)
	}
}

func TestCivilRoundTrip(t *testing.T) {
	t.Parallel()
	for z := -800_000; z <= 800_000; z += 7 {
		y, m, d := civilFromDays(z)
		if daysFromCivil(y, m, d) != z {
			t.Fatalf("day %d → %d-%d-%d does not round-trip", z, y, m, d)
		}
		if want := time.Date(1970, 1, 1+z, 0, 0, 0, 0, time.UTC); want.Year() != y || int(want.Month()) != m || want.Day() != d {
			t.Fatalf("day %d: %d-%02d-%02d, time package says %s", z, y, m, d, want.Format("2006-01-02"))
		}
	}
}
