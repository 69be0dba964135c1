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
// Ticks are local wall-clock times in the Cron's location. Where clocks change, a
// Cron does what cron daemons do (Vixie cron, and so what data engineers expect of a
// nightly job), not what robfig/cron alone would do (skip the day, or run twice):
//
//   - An expression with a fixed hour ("30 2 * * *", "0 2-4 * * *", "@daily") is a
//     job at a time of day, and runs once on every day it names:
//   - When clocks go forward over its time, it ticks at the instant they change:
//     "30 2 * * *" in Europe/Berlin ticks on 2026-03-29 at 03:00+02:00 (02:00 CET
//     jumps to 03:00 CEST, so 02:30 never happens that day).
//   - When clocks go back over its time, it ticks the first time only: on
//     2026-10-25 at 02:30+02:00, not again at 02:30+01:00.
//   - An expression whose hour is "*" ("0 * * * *", "*/15 * * * *") is a job at an
//     interval, and follows the clock: an hour that does not happen has no tick
//     (01:00+01:00 then 03:00+02:00, one real hour apart) and an hour that happens
//     twice ticks in both (02:00+02:00 and 02:00+01:00, one real hour apart).
//
// Crons in UTC, or outside the hours that clocks skip or repeat, see neither rule.
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
	// timeOfDay says the hour field is not "*": the daylight saving rules for a
	// job at a time of day apply. wall is spec evaluated in UTC, which has no
	// daylight saving: it says whether a local wall-clock time matches.
	timeOfDay bool
	wall      *cron.SpecSchedule
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
		c.timeOfDay = s.Hour&starBit == 0
		wall := *s
		wall.Location = time.UTC
		c.wall = &wall
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
	t := c.specNext(after)
	if t.IsZero() {
		return t
	}
	return t.In(c.loc)
}

// starBit is the bit robfig/cron sets in a field written "*" (or "?").
const starBit = 1 << 63

// specNext is robfig's Next with the daylight saving rules of a job at a time of
// day (see the type's doc): the first tick strictly after after, or the zero time.
func (c *Cron) specNext(after time.Time) time.Time {
	for {
		t := c.spec.Next(after)
		if !c.timeOfDay || t.IsZero() {
			return t
		}
		if g, ok := c.skippedTick(after, t); ok {
			return g
		}
		if !repeatedWallTime(t.In(c.loc)) {
			return t
		}
		after = t // its time of day happened already, in the offset before
	}
}

// skippedTick returns the first instant in (after, before) at which clocks go
// forward over a local time the expression names: its tick for that day.
func (c *Cron) skippedTick(after, before time.Time) (time.Time, bool) {
	x := after.In(c.loc)
	for {
		_, end := x.ZoneBounds()
		if end.IsZero() || !end.Before(before) {
			return time.Time{}, false
		}
		_, offBefore := x.Zone()
		_, offAfter := end.Zone()
		if gap := time.Duration(offAfter-offBefore) * time.Second; gap > 0 {
			// The local times [wallEnd-gap, wallEnd) did not happen.
			wallEnd := wallClock(end)
			if m := c.wall.Next(wallEnd.Add(-gap - time.Second)); !m.IsZero() && m.Before(wallEnd) {
				return end, true
			}
		}
		x = end
	}
}

// repeatedWallTime reports whether t's local time happened already, in the offset
// before clocks last went back.
func repeatedWallTime(t time.Time) bool {
	start, _ := t.ZoneBounds()
	if start.IsZero() {
		return false
	}
	_, offNow := t.Zone()
	_, offBefore := start.Add(-time.Nanosecond).Zone()
	back := time.Duration(offBefore-offNow) * time.Second
	return back > 0 && t.Sub(start) < back
}

// wallClock returns t's local date and time of day as the same figures in UTC.
func wallClock(t time.Time) time.Time {
	return time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.UTC)
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
		n := c.specNext(x)
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
	t := c.specNext(lo)
	for range 8 {
		n := c.specNext(t)
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
	return c.specNext(lo).In(c.loc), true
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
