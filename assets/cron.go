package assets

import (
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// Cron is a parsed cron expression evaluated in a time zone. It accepts exactly what
// Validate accepts: a standard 5-field expression (minute hour day-of-month month
// day-of-week) or a descriptor such as @daily or @every 1h, parsed by robfig/cron's
// standard parser, with the time zone given separately (never as a TZ= prefix).
// A Cron is immutable and safe for concurrent use.
//
// # Daylight saving time
//
// Ticks are local wall-clock times in the Cron's location, found by robfig/cron,
// which behaves as follows (and Cron keeps that behaviour, so the scheduler and the
// freshness checker agree with robfig about every tick):
//
//   - A local time that does not exist because clocks go forward is skipped: "30 2 * * *"
//     in Europe/Berlin has no tick on 2026-03-29 (02:00 CET jumps to 03:00 CEST); the
//     ticks are 03-28 02:30+01:00 and then 03-30 02:30+02:00. An hourly "0 * * * *"
//     ticks at 01:00+01:00 then 03:00+02:00, one real hour apart: no hour is lost,
//     since the 02:00 hour never happens.
//   - A local time that happens twice because clocks go back ticks twice, once in each
//     offset: "30 2 * * *" in Europe/Berlin ticks on 2026-10-25 at 02:30+02:00 (00:30
//     UTC) and again at 02:30+01:00 (01:30 UTC); "0 * * * *" ticks at 02:00+02:00 and
//     02:00+01:00, one real hour apart.
//
// So a daily job placed in the hour that clocks skip or repeat (02:00-03:00 in most
// of Europe, 01:00-03:00 in the US) misses one day a year and runs twice on another.
// Crons outside that hour, or in UTC, have neither effect.
//
// # @every
//
// robfig/cron runs "@every d" d after whenever it is asked, which gives no fixed tick
// times to record or look back at. Cron anchors it instead: its ticks are the instants
// that are a whole multiple of d after the Unix epoch (1970-01-01T00:00:00Z), with d
// rounded down to whole seconds (at least one second, as robfig does), whatever the
// location.
type Cron struct {
	expr  string
	loc   *time.Location
	spec  *cron.SpecSchedule // nil for @every
	every int64              // @every period in seconds, when spec is nil
}

// ParseCron parses a cron expression to be evaluated in timezone, an IANA name; the
// empty timezone means UTC. The error names the expression or the timezone at fault.
func ParseCron(expr, timezone string) (*Cron, error) {
	loc := time.UTC
	if timezone != "" {
		l, err := time.LoadLocation(timezone)
		if err != nil || timezone == "Local" { // Local would depend on the machine
			return nil, fmt.Errorf("unknown timezone %q: use an IANA name such as UTC or Europe/Berlin", timezone)
		}
		loc = l
	}
	// parseCron is Validate's check (it refuses TZ= prefixes, on which robfig panics);
	// then parse again to keep the schedule.
	if err := parseCron(expr); err != nil {
		return nil, fmt.Errorf("bad cron %q: %v", expr, err)
	}
	sched, err := cron.ParseStandard(expr)
	if err != nil {
		return nil, fmt.Errorf("bad cron %q: %v", expr, err)
	}
	c := &Cron{expr: strings.TrimSpace(expr), loc: loc}
	switch s := sched.(type) {
	case *cron.SpecSchedule:
		// The standard parser leaves Location at time.Local, which robfig reads as
		// "the zone of the time passed to Next"; pin it to ours. s is a fresh value.
		s.Location = loc
		c.spec = s
	case cron.ConstantDelaySchedule:
		c.every = max(int64(s.Delay/time.Second), 1)
	default:
		return nil, fmt.Errorf("bad cron %q: unsupported schedule type %T", expr, sched)
	}
	return c, nil
}

// ParseCron parses the schedule's cron expression in its timezone.
func (s Schedule) ParseCron() (*Cron, error) {
	c, err := ParseCron(s.Cron, s.Timezone)
	if err != nil {
		return nil, fmt.Errorf("schedule %q: %w", s.Name, err)
	}
	return c, nil
}

// ParseCron parses the deadline's cron expression in its timezone.
func (d Deadline) ParseCron() (*Cron, error) { return ParseCron(d.Cron, d.Timezone) }

// Location returns the time zone the expression is evaluated in.
func (c *Cron) Location() *time.Location { return c.loc }

// String returns the expression and its zone, like "0 9 * * * (Europe/Berlin)".
func (c *Cron) String() string { return c.expr + " (" + c.loc.String() + ")" }

// Next returns the first tick strictly after after, in c's location, or the zero time
// if there is none within five years (robfig's bound; an expression such as
// "0 0 30 2 *" never ticks).
func (c *Cron) Next(after time.Time) time.Time {
	if c.spec == nil {
		k := floorDiv64(after.Unix(), c.every) + 1 // Unix() floors, so this is strictly after
		return time.Unix(k*c.every, 0).In(c.loc)
	}
	t := c.spec.Next(after)
	if t.IsZero() {
		return t
	}
	return t.In(c.loc)
}

// latestBound is how far back Latest looks: five years, like robfig's forward bound.
// Every expression that ticks at all ticks at least once in any five years, except
// "February 29" across 2100, which is not a leap year (2096, then 2104).
const latestBound = 5 * 366 * 24 * time.Hour

// lookback is the sequence of windows Latest tries, each ending at the time asked
// about. They grow so that a frequent expression is answered from a short window and a
// rare one (yearly) costs a handful of Next calls, not a scan.
var lookback = [...]time.Duration{
	time.Minute, time.Hour, 24 * time.Hour, 7 * 24 * time.Hour, 32 * 24 * time.Hour,
	366 * 24 * time.Hour, latestBound,
}

// Latest returns the newest tick at or before at, in c's location, and false if there
// is none within latestBound (five years) before at.
//
// robfig/cron only looks forward, so Latest finds the shortest window [at-w, at] in
// lookback that contains a tick (Next(at-w) <= at), then steps through the window's
// ticks with Next. If a window holds many ticks (say "* * 1 * *", every minute on the
// 1st, looked up from the 20th), it bisects instead: Next(x) <= at holds exactly for x
// before the answer, and ticks are whole seconds apart, so about 30 Next calls settle
// it at any density.
func (c *Cron) Latest(at time.Time) (time.Time, bool) {
	if c.spec == nil {
		return time.Unix(floorDiv64(at.Unix(), c.every)*c.every, 0).In(c.loc), true
	}
	// ticksBy reports whether some tick lies in (x, at].
	ticksBy := func(x time.Time) bool {
		n := c.spec.Next(x)
		return !n.IsZero() && !n.After(at)
	}
	var lo time.Time
	found := false
	for _, w := range lookback {
		if lo = at.Add(-w); ticksBy(lo) {
			found = true
			break
		}
	}
	if !found {
		return time.Time{}, false
	}
	// The few ticks of a well-chosen window: walk them, keeping ticksBy(lo).
	t := c.spec.Next(lo)
	for range 8 {
		n := c.spec.Next(t)
		if n.IsZero() || n.After(at) {
			return t.In(c.loc), true
		}
		lo, t = t, n
	}
	// Many ticks: bisect. Invariant: ticksBy(lo) && !ticksBy(hi).
	hi := at
	for hi.Sub(lo) > time.Second {
		mid := lo.Add(hi.Sub(lo) / 2)
		if ticksBy(mid) {
			lo = mid
		} else {
			hi = mid
		}
	}
	return c.spec.Next(lo).In(c.loc), true
}

// Between returns the ticks in (after, upTo], oldest first, at most limit of them (the
// oldest limit); limit <= 0 returns none. A scheduler catching up after downtime uses
// it with a limit so that a long outage cannot produce an unbounded list.
func (c *Cron) Between(after, upTo time.Time, limit int) []time.Time {
	var ticks []time.Time
	for t := c.Next(after); len(ticks) < limit && !t.IsZero() && !t.After(upTo); t = c.Next(t) {
		ticks = append(ticks, t)
	}
	return ticks
}
