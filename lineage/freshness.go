package lineage

import (
	"fmt"
	"strings"
	"time"

	"github.com/freshetdev/freshet/assets"
)

// FreshnessStatus is the outcome of an asset's freshness SLA.
type FreshnessStatus string

// The freshness statuses.
const (
	// FreshnessPass: the policy is met.
	FreshnessPass FreshnessStatus = "PASS"
	// FreshnessWarn: a max_lag policy is met, but the data is older than warn_lag.
	FreshnessWarn FreshnessStatus = "WARN"
	// FreshnessFail: the policy is violated.
	FreshnessFail FreshnessStatus = "FAIL"
	// FreshnessUnknown: there is no policy, or nothing can be judged yet (no partition
	// exists, no deadline has ticked, the policy is invalid).
	FreshnessUnknown FreshnessStatus = "UNKNOWN"
)

// FreshnessInput is what is recorded about one asset, as of the evaluation.
type FreshnessInput struct {
	// Partitioned assets: Count is how many partitions exist at now
	// (asset.Partitions.Count(now)); Materialized(i), for 0 <= i < Count, reports whether
	// partition i has a success (a materialization or, for a source, an observation).
	// It is only called for such i; a nil Materialized means none has.
	Count        int
	Materialized func(i int) bool
	// LastMaterializedAt is when the newest success was recorded; zero: never. It
	// decides unpartitioned assets and is informative for partitioned ones.
	LastMaterializedAt time.Time
}

// Freshness is the evaluation of one asset's freshness policy at one instant.
type Freshness struct {
	Status FreshnessStatus
	// Policy is the policy in words: "max_lag 1h, warn_lag 30m", "deadline 0 9 * * * (UTC)".
	Policy string
	// DataTime is the time the asset's data is complete through: the end of the newest
	// partition with every partition before it materialized, or, unpartitioned, the last
	// materialization. Zero: no data.
	DataTime time.Time
	// Lag, for max_lag, is now - DataTime (0 when DataTime is zero or in the future).
	// For a failing deadline it is how late the asset is, now - Due; otherwise 0.
	Lag time.Duration
	// Due, for a deadline, is the tick evaluated: the newest one at or before now.
	Due time.Time
	// Reason is one sentence for an alert: what is late, by how much, against which
	// policy (or, when passing, why it passes).
	Reason string
}

// EvaluateFreshness evaluates a's freshness policy at now, from what in says is
// recorded. It is pure and never panics on a policy that Validate would refuse: such a
// policy, like a missing one, gives UNKNOWN with the reason. The cost is one call of
// in.Materialized per leading materialized partition and no allocation per partition.
//
// max_lag (with optional warn_lag): the data must be no older than max_lag. For a
// partitioned asset the data time is the end of the window of the newest partition p
// such that partitions 0..p are all materialized: a hole stops the data there, however
// much is materialized after it. For an unpartitioned asset it is LastMaterializedAt.
// lag = now - data time; lag > max_lag is FAIL, lag > warn_lag is WARN, otherwise PASS
// (a lag equal to the bound meets it). Nothing materialized is FAIL ("never
// materialized"), but a partitioned asset of which no partition exists yet is UNKNOWN.
// When partitions have an end and every one of them is materialized the asset is
// complete: PASS, however old, since no newer data can ever exist.
//
// deadline {cron, timezone}: at the newest tick t at or before now, the newest partition
// complete at t (index Count(t)-1) must be materialized. It is judged as it stands now:
// a partition materialized late makes the status PASS again (the checker records the
// FAIL while it lasted). Before the first partition is complete at a tick, the status
// is UNKNOWN. An unpartitioned asset passes when its last materialization is at or
// after the tick before t, so one success per period between ticks; if no tick before t
// lies within five years, any success passes. Where clocks change, the ticks are
// assets.Cron's: a deadline at a time of day is due once every day (at the instant
// clocks jump when its time does not happen, at the first of two when it happens
// twice), and an hourly one every real hour.
func EvaluateFreshness(a *assets.Asset, in FreshnessInput, now time.Time) Freshness {
	if a == nil || a.Freshness == nil {
		return Freshness{Status: FreshnessUnknown, Reason: "no freshness policy"}
	}
	p := a.Freshness
	switch {
	case p.Deadline != nil && (p.MaxLag != 0 || p.WarnLag != 0):
		return Freshness{Status: FreshnessUnknown, Policy: policyText(p, nil),
			Reason: fmt.Sprintf("%s: invalid freshness policy: give either max_lag or deadline, not both", a.Key)}
	case p.Deadline != nil:
		return evaluateDeadline(a, in, now)
	case p.MaxLag <= 0:
		return Freshness{Status: FreshnessUnknown, Policy: policyText(p, nil),
			Reason: fmt.Sprintf("%s: invalid freshness policy: max_lag must be positive", a.Key)}
	}
	return evaluateMaxLag(a, in, now)
}

func evaluateMaxLag(a *assets.Asset, in FreshnessInput, now time.Time) Freshness {
	p := a.Freshness
	f := Freshness{Policy: policyText(p, nil)}
	loc := time.UTC
	var hole string // the key of the partition that stops the data, if any
	if parts := a.Partitions; parts != nil {
		loc = parts.Location()
		if in.Count <= 0 {
			f.Status = FreshnessUnknown
			f.Reason = fmt.Sprintf("%s has no partition yet (the first will be %s), so there is no data to judge (%s)",
				a.Key, parts.Key(0), f.Policy)
			return f
		}
		n := leadingMaterialized(in)
		if n == 0 {
			f.Status = FreshnessFail
			if anyMaterialized(in) {
				f.Reason = fmt.Sprintf("%s has no complete data: its first partition %s is not %s (%s)",
					a.Key, parts.Key(0), successVerb(a), f.Policy)
			} else {
				f.Reason = fmt.Sprintf("%s was never %s (%s)", a.Key, successVerb(a), f.Policy)
			}
			return f
		}
		_, f.DataTime = parts.Window(n - 1)
		f.Lag = max(now.Sub(f.DataTime), 0)
		if n < in.Count {
			hole = parts.Key(n)
		} else if end := parts.EndCount(); end >= 0 && n >= end {
			f.Status = FreshnessPass
			f.Reason = fmt.Sprintf("%s is complete: all %d partitions up to its end, %s, are %s (%s)",
				a.Key, n, formatTime(f.DataTime, loc), successVerb(a), f.Policy)
			return f
		}
	} else {
		if in.LastMaterializedAt.IsZero() {
			f.Status = FreshnessFail
			f.Reason = fmt.Sprintf("%s was never %s (%s)", a.Key, successVerb(a), f.Policy)
			return f
		}
		f.DataTime = in.LastMaterializedAt
		f.Lag = max(now.Sub(f.DataTime), 0)
	}

	var verdict string
	switch {
	case f.Lag > p.MaxLag:
		f.Status = FreshnessFail
		verdict = "more than max_lag " + formatDuration(p.MaxLag)
	case p.WarnLag > 0 && f.Lag > p.WarnLag:
		f.Status = FreshnessWarn
		verdict = fmt.Sprintf("more than warn_lag %s (max_lag %s)", formatDuration(p.WarnLag), formatDuration(p.MaxLag))
	case p.WarnLag > 0:
		f.Status = FreshnessPass
		verdict = fmt.Sprintf("within warn_lag %s (max_lag %s)", formatDuration(p.WarnLag), formatDuration(p.MaxLag))
	default:
		f.Status = FreshnessPass
		verdict = "within max_lag " + formatDuration(p.MaxLag)
	}
	var data string
	switch {
	case a.Partitions == nil:
		data = fmt.Sprintf("it was last %s at %s", successVerb(a), formatTime(f.DataTime, loc))
	case hole != "":
		data = fmt.Sprintf("its data is complete through %s, and partition %s is not %s",
			formatTime(f.DataTime, loc), hole, successVerb(a))
	default:
		data = "its data is complete through " + formatTime(f.DataTime, loc)
	}
	f.Reason = fmt.Sprintf("%s is %s old, %s: %s", a.Key, formatDuration(f.Lag), verdict, data)
	return f
}

func evaluateDeadline(a *assets.Asset, in FreshnessInput, now time.Time) Freshness {
	d := a.Freshness.Deadline
	c, err := d.ParseCron()
	f := Freshness{Status: FreshnessUnknown, Policy: policyText(a.Freshness, c)}
	if err != nil {
		f.Reason = fmt.Sprintf("%s: cannot evaluate the deadline: %v", a.Key, err)
		return f
	}
	loc := c.Location()
	t, ok := c.Latest(now)
	if !ok {
		f.Reason = fmt.Sprintf("%s: the %s has not ticked in the five years before %s", a.Key, f.Policy, formatTime(now, loc))
		return f
	}
	f.Due = t

	if parts := a.Partitions; parts != nil {
		if n := leadingMaterialized(in); n > 0 {
			_, f.DataTime = parts.Window(n - 1)
		}
		k := parts.Count(t)
		if k == 0 {
			f.Reason = fmt.Sprintf("%s: no partition was complete at the last tick of the %s, %s, so none is due yet",
				a.Key, f.Policy, formatTime(t, loc))
			return f
		}
		due := k - 1
		if due < in.Count && in.Materialized != nil && in.Materialized(due) {
			f.Status = FreshnessPass
			f.Reason = fmt.Sprintf("%s: partition %s, due at %s, is %s (%s)",
				a.Key, parts.Key(due), formatTime(t, loc), successVerb(a), f.Policy)
			return f
		}
		f.Status = FreshnessFail
		f.Lag = max(now.Sub(t), 0)
		f.Reason = fmt.Sprintf("%s: partition %s was due at %s and is not %s, %s late (%s)",
			a.Key, parts.Key(due), formatTime(t, loc), successVerb(a), formatDuration(f.Lag), f.Policy)
		return f
	}

	// Unpartitioned: one success in the period (prev, t] (or after it) meets the tick.
	f.DataTime = in.LastMaterializedAt
	prev, hasPrev := c.Latest(t.Add(-time.Nanosecond))
	last := in.LastMaterializedAt
	switch {
	case !last.IsZero() && (!hasPrev || !last.Before(prev)):
		f.Status = FreshnessPass
		f.Reason = fmt.Sprintf("%s was last %s at %s, in time for the tick due at %s (%s)",
			a.Key, successVerb(a), formatTime(last, loc), formatTime(t, loc), f.Policy)
	case last.IsZero():
		f.Status = FreshnessFail
		f.Lag = max(now.Sub(t), 0)
		f.Reason = fmt.Sprintf("%s was due at %s and was never %s, %s late (%s)",
			a.Key, formatTime(t, loc), successVerb(a), formatDuration(f.Lag), f.Policy)
	default:
		f.Status = FreshnessFail
		f.Lag = max(now.Sub(t), 0)
		f.Reason = fmt.Sprintf("%s was due at %s and was last %s at %s, before the previous tick at %s, %s late (%s)",
			a.Key, formatTime(t, loc), successVerb(a), formatTime(last, loc), formatTime(prev, loc),
			formatDuration(f.Lag), f.Policy)
	}
	return f
}

// leadingMaterialized returns how many partitions from the first on are all
// materialized: the index of the first hole, or in.Count.
func leadingMaterialized(in FreshnessInput) int {
	if in.Materialized == nil {
		return 0
	}
	n := 0
	for n < in.Count && in.Materialized(n) {
		n++
	}
	return n
}

func anyMaterialized(in FreshnessInput) bool {
	if in.Materialized == nil {
		return false
	}
	for i := range in.Count {
		if in.Materialized(i) {
			return true
		}
	}
	return false
}

// successVerb is what a success of a is called: sources are observed, not built.
func successVerb(a *assets.Asset) string {
	if a.IsSource() {
		return "observed"
	}
	return "materialized"
}

// policyText renders a policy as in the definitions file; c, when parsed, names the
// deadline's zone.
func policyText(p *assets.FreshnessPolicy, c *assets.Cron) string {
	if p.Deadline != nil {
		if c != nil {
			return "deadline " + c.String()
		}
		tz := p.Deadline.Timezone
		if tz == "" {
			tz = "UTC"
		}
		return fmt.Sprintf("deadline %s (%s)", p.Deadline.Cron, tz)
	}
	s := "max_lag " + formatDuration(p.MaxLag)
	if p.WarnLag != 0 {
		s += ", warn_lag " + formatDuration(p.WarnLag)
	}
	return s
}

// formatDuration writes d as people write lags: "2h", "1h30m", "45m", "12s". Lags of
// an hour or more are rounded to the minute, shorter ones to the second.
func formatDuration(d time.Duration) string {
	if d >= time.Hour || d <= -time.Hour {
		d = d.Round(time.Minute)
	} else {
		d = d.Round(time.Second)
	}
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// formatTime writes t to the minute in loc, with the zone's abbreviation.
func formatTime(t time.Time, loc *time.Location) string {
	return t.In(loc).Format("2006-01-02 15:04 MST")
}
