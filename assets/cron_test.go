package assets

import (
	"strings"
	"testing"
	"time"
)

func mustCron(t testing.TB, expr, tz string) *Cron {
	t.Helper()
	c, err := ParseCron(expr, tz)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mustTime(t testing.TB, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func formatTicks(ts []time.Time) string {
	s := make([]string, len(ts))
	for i, t := range ts {
		s[i] = t.Format(time.RFC3339)
	}
	return strings.Join(s, " ")
}

func TestCronNext(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, expr, tz, after string
		want                  string // the next ticks, space-separated RFC 3339 in the cron's zone
	}{
		{"utc daily, strictly after a tick", "0 9 * * *", "", "2026-01-05T09:00:00Z",
			"2026-01-06T09:00:00Z 2026-01-07T09:00:00Z"},
		{"sub-second before a tick", "0 9 * * *", "UTC", "2026-01-05T08:59:59.5Z",
			"2026-01-05T09:00:00Z 2026-01-06T09:00:00Z"},
		{"Berlin spring: 02:30 does not happen on 03-29, so it ticks when clocks jump to 03:00", "30 2 * * *", "Europe/Berlin", "2026-03-27T12:00:00Z",
			"2026-03-28T02:30:00+01:00 2026-03-29T03:00:00+02:00 2026-03-30T02:30:00+02:00"},
		{"Berlin autumn: 02:30 happens twice on 10-25, it ticks the first time only", "30 2 * * *", "Europe/Berlin", "2026-10-23T12:00:00Z",
			"2026-10-24T02:30:00+02:00 2026-10-25T02:30:00+02:00 2026-10-26T02:30:00+01:00"},
		{"Berlin spring, hours 2-4: the skipped 02:00 and 03:00 are one tick", "0 2-4 * * *", "Europe/Berlin", "2026-03-28T12:00:00Z",
			"2026-03-29T03:00:00+02:00 2026-03-29T04:00:00+02:00 2026-03-30T02:00:00+02:00"},
		{"Berlin autumn, hours 2-4: the repeated 02:00 once", "0 2-4 * * *", "Europe/Berlin", "2026-10-24T12:00:00Z",
			"2026-10-25T02:00:00+02:00 2026-10-25T03:00:00+01:00 2026-10-25T04:00:00+01:00 2026-10-26T02:00:00+01:00"},
		{"Berlin spring, every 20 minutes in hours 1-3: the skipped hour is one tick", "*/20 1-3 * * *", "Europe/Berlin", "2026-03-29T00:30:00Z",
			"2026-03-29T01:40:00+01:00 2026-03-29T03:00:00+02:00 2026-03-29T03:20:00+02:00"},
		{"Havana spring: midnight does not happen on 03-08, @daily ticks at 01:00", "@daily", "America/Havana", "2026-03-07T12:00:00Z",
			"2026-03-08T01:00:00-04:00 2026-03-09T00:00:00-04:00"},
		{"Berlin spring hourly: 01:00 then 03:00, one hour apart", "0 * * * *", "Europe/Berlin", "2026-03-28T23:30:00Z",
			"2026-03-29T01:00:00+01:00 2026-03-29T03:00:00+02:00 2026-03-29T04:00:00+02:00"},
		{"Berlin autumn hourly: 02:00 twice", "0 * * * *", "Europe/Berlin", "2026-10-24T23:30:00Z",
			"2026-10-25T02:00:00+02:00 2026-10-25T02:00:00+01:00 2026-10-25T03:00:00+01:00"},
		{"New York spring: 02:30 does not happen on 03-08, it ticks at 03:00", "30 2 * * *", "America/New_York", "2026-03-07T12:00:00Z",
			"2026-03-08T03:00:00-04:00 2026-03-09T02:30:00-04:00"},
		{"New York autumn: 01:30 happens twice on 11-01, it ticks once", "30 1 * * *", "America/New_York", "2026-10-31T12:00:00Z",
			"2026-11-01T01:30:00-04:00 2026-11-02T01:30:00-05:00"},
		{"descriptor in a zone", "@daily", "Europe/Berlin", "2026-03-28T12:00:00Z",
			"2026-03-29T00:00:00+01:00 2026-03-30T00:00:00+02:00"},
		{"weekdays at 9", "0 9 * * 1-5", "UTC", "2026-01-09T10:00:00Z", // a Friday
			"2026-01-12T09:00:00Z 2026-01-13T09:00:00Z"},
		{"@every is anchored at the Unix epoch", "@every 90m", "UTC", "2026-01-01T00:10:00Z",
			"2026-01-01T01:30:00Z 2026-01-01T03:00:00Z"},
		{"@every rounds down to seconds and ticks in the location", "@every 1h0m0.9s", "Europe/Berlin", "2026-01-01T00:10:00Z",
			"2026-01-01T02:00:00+01:00 2026-01-01T03:00:00+01:00"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := mustCron(t, tc.expr, tc.tz)
			n := len(strings.Fields(tc.want))
			var got []time.Time
			for at := mustTime(t, tc.after); len(got) < n; {
				at = c.Next(at)
				got = append(got, at)
			}
			if s := formatTicks(got); s != tc.want {
				t.Errorf("Next from %s:\n got %s\nwant %s", tc.after, s, tc.want)
			}
			if got[0].Location() != c.Location() {
				t.Errorf("tick in %v, want %v", got[0].Location(), c.Location())
			}
		})
	}
}

func TestCronNextNever(t *testing.T) {
	t.Parallel()
	c := mustCron(t, "0 0 30 2 *", "") // February 30
	if got := c.Next(mustTime(t, "2026-01-01T00:00:00Z")); !got.IsZero() {
		t.Errorf("Next = %v, want the zero time", got)
	}
	if got, ok := c.Latest(mustTime(t, "2026-01-01T00:00:00Z")); ok {
		t.Errorf("Latest = %v, true; want false", got)
	}
}

func TestCronLatest(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, expr, tz, at string
		want               string
	}{
		{"at a tick is that tick", "0 9 * * *", "", "2026-01-06T09:00:00Z", "2026-01-06T09:00:00Z"},
		{"just before a tick", "0 9 * * *", "", "2026-01-06T08:59:59.999Z", "2026-01-05T09:00:00Z"},
		{"every minute", "* * * * *", "", "2026-01-06T08:59:59Z", "2026-01-06T08:59:00Z"},
		{"Berlin spring day has no 02:30: the tick when clocks jumped", "30 2 * * *", "Europe/Berlin", "2026-03-29T12:00:00+02:00",
			"2026-03-29T03:00:00+02:00"},
		{"Berlin spring day, just before clocks jump: the day before's", "30 2 * * *", "Europe/Berlin", "2026-03-29T01:59:59+01:00",
			"2026-03-28T02:30:00+01:00"},
		{"Berlin autumn, between the two 02:30s", "30 2 * * *", "Europe/Berlin", "2026-10-25T02:45:00+02:00",
			"2026-10-25T02:30:00+02:00"},
		{"Berlin autumn, after the second 02:30: still the first", "30 2 * * *", "Europe/Berlin", "2026-10-25T02:45:00+01:00",
			"2026-10-25T02:30:00+02:00"},
		{"Berlin spring hourly across the gap", "0 * * * *", "Europe/Berlin", "2026-03-29T03:30:00+02:00",
			"2026-03-29T03:00:00+02:00"},
		{"Berlin spring hourly just before the gap", "0 * * * *", "Europe/Berlin", "2026-03-29T01:59:00+01:00",
			"2026-03-29T01:00:00+01:00"},
		{"Berlin autumn hourly in the repeated hour", "0 * * * *", "Europe/Berlin", "2026-10-25T02:10:00+01:00",
			"2026-10-25T02:00:00+01:00"},
		{"New York autumn, first 01:30", "30 1 * * *", "America/New_York", "2026-11-01T01:40:00-04:00",
			"2026-11-01T01:30:00-04:00"},
		{"New York spring, 02:30 skipped: 03:00", "30 2 * * *", "America/New_York", "2026-03-08T12:00:00-04:00",
			"2026-03-08T03:00:00-04:00"},
		{"result in the cron's zone", "0 9 * * *", "Europe/Berlin", "2026-01-06T12:00:00Z", "2026-01-06T09:00:00+01:00"},
		{"yearly", "0 0 1 1 *", "", "2026-06-15T00:00:00Z", "2026-01-01T00:00:00Z"},
		{"nine ticks in the window: walk, then bisect", "*/20 1-3 * * *", "", "2026-01-01T12:00:00Z", "2026-01-01T03:40:00Z"},
		{"dense ticks in a far window (bisection)", "* * 1 * *", "", "2026-05-20T00:00:00Z", "2026-05-01T23:59:00Z"},
		{"leap day, two years back", "0 0 29 2 *", "", "2026-06-01T00:00:00Z", "2024-02-29T00:00:00Z"},
		{"@every", "@every 90m", "", "2026-01-01T02:59:59Z", "2026-01-01T01:30:00Z"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := mustCron(t, tc.expr, tc.tz)
			got, ok := c.Latest(mustTime(t, tc.at))
			if !ok || got.Format(time.RFC3339) != tc.want {
				t.Errorf("Latest(%s) = %s, %v; want %s", tc.at, got.Format(time.RFC3339), ok, tc.want)
			}
		})
	}
}

// TestCronLatestAgreesWithNext checks Latest against its definition at many instants,
// across both Berlin switch days: the answer is a tick (Next of the second before it),
// at or before the instant, and the next tick is after the instant.
func TestCronLatestAgreesWithNext(t *testing.T) {
	t.Parallel()
	exprs := []string{"30 2 * * *", "0 * * * *", "*/20 1-3 * * *", "0 2-4 * * *", "0 9 * * 1-5", "* * 1 * *", "@every 7m", "0 0 1 */3 *"}
	windows := [][2]string{
		{"2026-03-28T20:00:00Z", "2026-03-29T06:00:00Z"},
		{"2026-10-24T20:00:00Z", "2026-10-25T06:00:00Z"},
	}
	for _, expr := range exprs {
		t.Run(expr, func(t *testing.T) {
			t.Parallel()
			c := mustCron(t, expr, "Europe/Berlin")
			for _, w := range windows {
				for at, end := mustTime(t, w[0]), mustTime(t, w[1]); at.Before(end); at = at.Add(7*time.Minute + 13*time.Second) {
					l, ok := c.Latest(at)
					if !ok {
						t.Fatalf("Latest(%s): none", at)
					}
					if l.After(at) || !c.Next(l).After(at) || !c.Next(l.Add(-time.Second)).Equal(l) {
						t.Fatalf("Latest(%s) = %s: Next(it) = %s, Next(it-1s) = %s", at, l, c.Next(l), c.Next(l.Add(-time.Second)))
					}
				}
			}
		})
	}
}

func TestCronBetween(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, expr, tz, after, upTo string
		limit                       int
		want                        string
	}{
		{"(after, upTo]", "0 * * * *", "", "2026-01-01T00:00:00Z", "2026-01-01T03:00:00Z", 10,
			"2026-01-01T01:00:00Z 2026-01-01T02:00:00Z 2026-01-01T03:00:00Z"},
		{"limit keeps the oldest", "0 * * * *", "", "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z", 2,
			"2026-01-01T01:00:00Z 2026-01-01T02:00:00Z"},
		{"zero limit", "0 * * * *", "", "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z", 0, ""},
		{"empty range", "0 9 * * *", "", "2026-01-01T10:00:00Z", "2026-01-02T08:00:00Z", 10, ""},
		{"Berlin autumn: the repeated 02:00 twice", "0 * * * *", "Europe/Berlin", "2026-10-25T00:30:00+02:00", "2026-10-25T03:00:00+01:00", 10,
			"2026-10-25T01:00:00+02:00 2026-10-25T02:00:00+02:00 2026-10-25T02:00:00+01:00 2026-10-25T03:00:00+01:00"},
		{"Berlin spring: a tick every day, at 03:00 when 02:30 does not happen", "30 2 * * *", "Europe/Berlin", "2026-03-27T00:00:00Z", "2026-03-31T00:00:00Z", 10,
			"2026-03-27T02:30:00+01:00 2026-03-28T02:30:00+01:00 2026-03-29T03:00:00+02:00 2026-03-30T02:30:00+02:00"},
		{"Berlin autumn: one tick on the day 02:30 happens twice", "30 2 * * *", "Europe/Berlin", "2026-10-24T00:00:00Z", "2026-10-27T00:00:00Z", 10,
			"2026-10-24T02:30:00+02:00 2026-10-25T02:30:00+02:00 2026-10-26T02:30:00+01:00"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := mustCron(t, tc.expr, tc.tz)
			got := c.Between(mustTime(t, tc.after), mustTime(t, tc.upTo), tc.limit)
			if s := formatTicks(got); s != tc.want {
				t.Errorf("Between:\n got %s\nwant %s", s, tc.want)
			}
		})
	}
}

func TestParseCronErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, expr, tz string
		want           []string // substrings of the error
	}{
		{"out of range", "61 * * * *", "", []string{`bad cron "61 * * * *"`, "61"}},
		{"too few fields", "0 9 * *", "UTC", []string{`bad cron "0 9 * *"`}},
		{"empty", "", "", []string{`bad cron ""`}},
		{"unknown descriptor", "@fortnightly", "", []string{`bad cron "@fortnightly"`}},
		{"timezone prefix", "TZ=Europe/Berlin 0 9 * * *", "", []string{`bad cron "TZ=Europe/Berlin 0 9 * * *"`, "timezone field"}},
		{"timezone prefix without a space", "CRON_TZ=UTC", "", []string{`bad cron "CRON_TZ=UTC"`, "timezone field"}},
		{"unknown zone", "0 9 * * *", "Mars/Olympus_Mons", []string{`unknown timezone "Mars/Olympus_Mons"`, "IANA"}},
		{"machine-local zone", "0 9 * * *", "Local", []string{`unknown timezone "Local"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := ParseCron(tc.expr, tc.tz)
			if err == nil {
				t.Fatalf("ParseCron(%q, %q) = %v, want an error", tc.expr, tc.tz, c)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			// What ParseCron refuses for its expression, Validate refuses too, and vice versa.
			if tc.tz == "" && parseCron(tc.expr) == nil {
				t.Errorf("Validate accepts %q, which ParseCron refuses", tc.expr)
			}
		})
	}
}

func TestScheduleAndDeadlineParseCron(t *testing.T) {
	t.Parallel()
	c, err := Schedule{Name: "nightly", Cron: "0 2 * * *", Timezone: "Europe/Berlin"}.ParseCron()
	if err != nil || c.String() != "0 2 * * * (Europe/Berlin)" || c.Location().String() != "Europe/Berlin" {
		t.Errorf("Schedule.ParseCron = %v, %v", c, err)
	}
	if _, err := (Schedule{Name: "nightly", Cron: "0 25 * * *"}).ParseCron(); err == nil ||
		!strings.Contains(err.Error(), `schedule "nightly"`) || !strings.Contains(err.Error(), `"0 25 * * *"`) {
		t.Errorf("bad schedule: error %v does not name the schedule and expression", err)
	}
	c, err = Deadline{Cron: " 0 9 * * * "}.ParseCron()
	if err != nil || c.String() != "0 9 * * * (UTC)" || c.Location() != time.UTC {
		t.Errorf("Deadline.ParseCron = %v, %v", c, err)
	}
	if _, err := (Deadline{Cron: "0 9 * * *", Timezone: "Europe/Berlinn"}).ParseCron(); err == nil ||
		!strings.Contains(err.Error(), `"Europe/Berlinn"`) {
		t.Errorf("bad deadline zone: error %v does not name it", err)
	}
}

func BenchmarkCronLatest(b *testing.B) {
	for _, expr := range []string{"0 9 * * *", "0 0 1 1 *", "* * 1 * *"} {
		c := mustCron(b, expr, "Europe/Berlin")
		at := mustTime(b, "2026-05-20T12:34:56Z")
		b.Run(expr, func(b *testing.B) {
			for b.Loop() {
				if _, ok := c.Latest(at); !ok {
					b.Fatal("no tick")
				}
			}
		})
	}
}
