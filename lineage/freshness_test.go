package lineage

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/freshetdev/freshet/assets"
)

func partitionsOf(t testing.TB, g assets.Granularity, start, end, tz string) *assets.Partitions {
	t.Helper()
	p, err := assets.NewPartitions(assets.PartitionsSpec{Granularity: g, Start: start, End: end, Timezone: tz})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func at(t testing.TB, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// only reports the given partition indexes as materialized.
func only(idx ...int) func(int) bool {
	return func(i int) bool {
		for _, j := range idx {
			if i == j {
				return true
			}
		}
		return false
	}
}

// through reports partitions 0..n-1 as materialized.
func through(n int) func(int) bool { return func(i int) bool { return i < n } }

func TestEvaluateFreshness(t *testing.T) {
	t.Parallel()
	run := assets.CommandCompute{Argv: []string{"true"}}
	daily := partitionsOf(t, assets.Daily, "2026-01-01", "", "")
	dailyEnded := partitionsOf(t, assets.Daily, "2026-01-01", "2026-01-04", "")
	hourly := partitionsOf(t, assets.Hourly, "2026-01-01", "", "")
	berlinDaily := partitionsOf(t, assets.Daily, "2026-03-01", "", "Europe/Berlin")
	berlinHourly := partitionsOf(t, assets.Hourly, "2026-10-01", "", "Europe/Berlin")
	maxLag := func(max, warn time.Duration) *assets.FreshnessPolicy {
		return &assets.FreshnessPolicy{MaxLag: max, WarnLag: warn}
	}
	deadline := func(cron, tz string) *assets.FreshnessPolicy {
		return &assets.FreshnessPolicy{Deadline: &assets.Deadline{Cron: cron, Timezone: tz}}
	}
	asset := func(parts *assets.Partitions, policy *assets.FreshnessPolicy) *assets.Asset {
		return &assets.Asset{Key: "sales/orders_clean", Partitions: parts, Freshness: policy, Compute: run}
	}

	tests := []struct {
		name   string
		asset  *assets.Asset
		in     FreshnessInput
		now    string
		status FreshnessStatus
		policy string
		reason []string // distinctive parts of the reason
		data   string   // DataTime, RFC 3339; "" for zero
		lag    time.Duration
		due    string // Due, RFC 3339; "" for zero
	}{
		// No or invalid policy.
		{name: "no policy", asset: asset(daily, nil), now: "2026-01-06T02:00:00Z",
			status: FreshnessUnknown, reason: []string{"no freshness policy"}},
		{name: "nil asset", now: "2026-01-06T02:00:00Z",
			status: FreshnessUnknown, reason: []string{"no freshness policy"}},
		{name: "both policies", asset: asset(nil, &assets.FreshnessPolicy{MaxLag: time.Hour, Deadline: &assets.Deadline{Cron: "0 9 * * *"}}),
			now: "2026-01-06T02:00:00Z", status: FreshnessUnknown, policy: "deadline 0 9 * * * (UTC)", reason: []string{"not both"}},
		{name: "zero max_lag", asset: asset(nil, &assets.FreshnessPolicy{}), now: "2026-01-06T02:00:00Z",
			status: FreshnessUnknown, policy: "max_lag 0s", reason: []string{"max_lag must be positive"}},

		// max_lag, partitioned. At 2026-01-06 02:00 UTC the daily partitions 01-01..01-05 exist.
		{name: "max_lag partitioned pass", asset: asset(daily, maxLag(26*time.Hour, 0)),
			in: FreshnessInput{Count: 5, Materialized: through(5)}, now: "2026-01-06T02:00:00Z",
			status: FreshnessPass, policy: "max_lag 26h",
			reason: []string{"sales/orders_clean is 2h old, within max_lag 26h", "complete through 2026-01-06 00:00 UTC"},
			data:   "2026-01-06T00:00:00Z", lag: 2 * time.Hour},
		{name: "max_lag partitioned hole stops the data", asset: asset(daily, maxLag(26*time.Hour, 0)),
			in: FreshnessInput{Count: 5, Materialized: only(0, 1, 3, 4)}, now: "2026-01-06T02:00:00Z",
			status: FreshnessFail, policy: "max_lag 26h",
			reason: []string{"is 74h old, more than max_lag 26h", "complete through 2026-01-03 00:00 UTC", "partition 2026-01-03 is not materialized"},
			data:   "2026-01-03T00:00:00Z", lag: 74 * time.Hour},
		{name: "max_lag partitioned warn", asset: asset(daily, maxLag(26*time.Hour, time.Hour)),
			in: FreshnessInput{Count: 5, Materialized: through(5)}, now: "2026-01-06T02:00:00Z",
			status: FreshnessWarn, policy: "max_lag 26h, warn_lag 1h",
			reason: []string{"is 2h old, more than warn_lag 1h (max_lag 26h)"},
			data:   "2026-01-06T00:00:00Z", lag: 2 * time.Hour},
		{name: "max_lag partitioned pass under warn_lag", asset: asset(daily, maxLag(26*time.Hour, 3*time.Hour)),
			in: FreshnessInput{Count: 5, Materialized: through(5)}, now: "2026-01-06T02:00:00Z",
			status: FreshnessPass, policy: "max_lag 26h, warn_lag 3h",
			reason: []string{"is 2h old, within warn_lag 3h (max_lag 26h)"},
			data:   "2026-01-06T00:00:00Z", lag: 2 * time.Hour},
		{name: "max_lag lag equal to the bound passes", asset: asset(daily, maxLag(2*time.Hour, 0)),
			in: FreshnessInput{Count: 5, Materialized: through(5)}, now: "2026-01-06T02:00:00Z",
			status: FreshnessPass, policy: "max_lag 2h", reason: []string{"is 2h old, within max_lag 2h"},
			data: "2026-01-06T00:00:00Z", lag: 2 * time.Hour},
		{name: "max_lag partitioned never materialized", asset: asset(daily, maxLag(26*time.Hour, 0)),
			in: FreshnessInput{Count: 5, Materialized: only()}, now: "2026-01-06T02:00:00Z",
			status: FreshnessFail, policy: "max_lag 26h", reason: []string{"sales/orders_clean was never materialized (max_lag 26h)"}},
		{name: "max_lag partitioned nil Materialized", asset: asset(daily, maxLag(26*time.Hour, 0)),
			in: FreshnessInput{Count: 5}, now: "2026-01-06T02:00:00Z",
			status: FreshnessFail, policy: "max_lag 26h", reason: []string{"never materialized"}},
		{name: "max_lag partitioned first partition missing", asset: asset(daily, maxLag(26*time.Hour, 0)),
			in: FreshnessInput{Count: 5, Materialized: only(1, 2, 3, 4)}, now: "2026-01-06T02:00:00Z",
			status: FreshnessFail, policy: "max_lag 26h", reason: []string{"no complete data", "first partition 2026-01-01 is not materialized"}},
		{name: "max_lag no partition exists yet", asset: asset(daily, maxLag(26*time.Hour, 0)),
			in: FreshnessInput{Count: 0}, now: "2026-01-01T12:00:00Z",
			status: FreshnessUnknown, policy: "max_lag 26h", reason: []string{"no partition yet (the first will be 2026-01-01)"}},
		{name: "max_lag ended partitions, all materialized, is complete", asset: asset(dailyEnded, maxLag(26*time.Hour, 0)),
			in: FreshnessInput{Count: 3, Materialized: through(3)}, now: "2026-06-01T00:00:00Z",
			status: FreshnessPass, policy: "max_lag 26h", reason: []string{"is complete: all 3 partitions up to its end, 2026-01-04 00:00 UTC"},
			data: "2026-01-04T00:00:00Z", lag: 148 * 24 * time.Hour},
		{name: "max_lag ended partitions with a hole fail", asset: asset(dailyEnded, maxLag(26*time.Hour, 0)),
			in: FreshnessInput{Count: 3, Materialized: only(0, 2)}, now: "2026-01-05T00:00:00Z",
			status: FreshnessFail, policy: "max_lag 26h", reason: []string{"is 72h old", "partition 2026-01-02 is not materialized"},
			data: "2026-01-02T00:00:00Z", lag: 72 * time.Hour},
		{name: "issue: max_lag 1h, hourly data 2h old", asset: asset(hourly, maxLag(time.Hour, 0)),
			in: FreshnessInput{Count: 130, Materialized: through(128)}, now: "2026-01-06T10:00:00Z",
			status: FreshnessFail, policy: "max_lag 1h",
			reason: []string{"is 2h old, more than max_lag 1h", "partition 2026-01-06T08:00 is not materialized"},
			data:   "2026-01-06T08:00:00Z", lag: 2 * time.Hour},

		// max_lag, unpartitioned.
		{name: "issue: max_lag 1h, data 2h old", asset: asset(nil, maxLag(time.Hour, 0)),
			in: FreshnessInput{LastMaterializedAt: at(t, "2026-01-06T08:00:00Z")}, now: "2026-01-06T10:00:00Z",
			status: FreshnessFail, policy: "max_lag 1h",
			reason: []string{"sales/orders_clean is 2h old, more than max_lag 1h", "last materialized at 2026-01-06 08:00 UTC"},
			data:   "2026-01-06T08:00:00Z", lag: 2 * time.Hour},
		{name: "max_lag unpartitioned pass, lag rounded for people", asset: asset(nil, maxLag(time.Hour, 0)),
			in: FreshnessInput{LastMaterializedAt: at(t, "2026-01-06T09:40:00Z")}, now: "2026-01-06T10:00:07Z",
			status: FreshnessPass, policy: "max_lag 1h", reason: []string{"is 20m7s old, within max_lag 1h"},
			data: "2026-01-06T09:40:00Z", lag: 20*time.Minute + 7*time.Second},
		{name: "max_lag unpartitioned warn", asset: asset(nil, maxLag(26*time.Hour, 24*time.Hour)),
			in: FreshnessInput{LastMaterializedAt: at(t, "2026-01-05T08:30:00Z")}, now: "2026-01-06T10:00:00Z",
			status: FreshnessWarn, policy: "max_lag 26h, warn_lag 24h", reason: []string{"is 25h30m old, more than warn_lag 24h"},
			data: "2026-01-05T08:30:00Z", lag: 25*time.Hour + 30*time.Minute},
		{name: "max_lag unpartitioned never", asset: asset(nil, maxLag(time.Hour, 0)),
			now: "2026-01-06T10:00:00Z", status: FreshnessFail, policy: "max_lag 1h", reason: []string{"was never materialized"}},
		{name: "max_lag source never observed", asset: &assets.Asset{Key: "sales/exchange_rates", Freshness: maxLag(time.Hour, 0)},
			now: "2026-01-06T10:00:00Z", status: FreshnessFail, policy: "max_lag 1h", reason: []string{"sales/exchange_rates was never observed"}},
		{name: "max_lag materialized in the future (clock skew) is 0 old", asset: asset(nil, maxLag(time.Hour, 0)),
			in: FreshnessInput{LastMaterializedAt: at(t, "2026-01-06T10:05:00Z")}, now: "2026-01-06T10:00:00Z",
			status: FreshnessPass, policy: "max_lag 1h", reason: []string{"is 0s old"}, data: "2026-01-06T10:05:00Z"},

		// deadline, partitioned: 0 9 * * * UTC over daily partitions from 2026-01-01.
		{name: "deadline before any partition is due", asset: asset(daily, deadline("0 9 * * *", "")),
			in: FreshnessInput{Count: 0}, now: "2026-01-01T10:00:00Z",
			status: FreshnessUnknown, policy: "deadline 0 9 * * * (UTC)",
			reason: []string{"no partition was complete at the last tick", "2026-01-01 09:00 UTC", "none is due yet"},
			due:    "2026-01-01T09:00:00Z"},
		{name: "deadline due partition materialized", asset: asset(daily, deadline("0 9 * * *", "")),
			in: FreshnessInput{Count: 5, Materialized: only(0, 4)}, now: "2026-01-06T10:00:00Z",
			status: FreshnessPass, policy: "deadline 0 9 * * * (UTC)",
			reason: []string{"partition 2026-01-05, due at 2026-01-06 09:00 UTC, is materialized"},
			data:   "2026-01-02T00:00:00Z", due: "2026-01-06T09:00:00Z"},
		{name: "deadline due partition missing", asset: asset(daily, deadline("0 9 * * *", "")),
			in: FreshnessInput{Count: 5, Materialized: through(4)}, now: "2026-01-06T10:30:00Z",
			status: FreshnessFail, policy: "deadline 0 9 * * * (UTC)",
			reason: []string{"partition 2026-01-05 was due at 2026-01-06 09:00 UTC and is not materialized, 1h30m late"},
			data:   "2026-01-05T00:00:00Z", lag: 90 * time.Minute, due: "2026-01-06T09:00:00Z"},
		{name: "deadline: the newest partition is not due before the tick", asset: asset(daily, deadline("0 9 * * *", "")),
			in: FreshnessInput{Count: 5, Materialized: through(4)}, now: "2026-01-06T08:00:00Z",
			status: FreshnessPass, reason: []string{"partition 2026-01-04, due at 2026-01-05 09:00 UTC, is materialized"},
			policy: "deadline 0 9 * * * (UTC)", data: "2026-01-05T00:00:00Z", due: "2026-01-05T09:00:00Z"},
		{name: "deadline Count smaller than due (stale input) is not materialized", asset: asset(daily, deadline("0 9 * * *", "")),
			in: FreshnessInput{Count: 4, Materialized: through(4)}, now: "2026-01-06T10:00:00Z",
			status: FreshnessFail, policy: "deadline 0 9 * * * (UTC)", reason: []string{"partition 2026-01-05 was due"},
			data: "2026-01-05T00:00:00Z", lag: time.Hour, due: "2026-01-06T09:00:00Z"},
		{name: "deadline Berlin spring: 02:30 does not happen on 03-29, the day's deadline is when clocks jump to 03:00", asset: asset(berlinDaily, deadline("30 2 * * *", "Europe/Berlin")),
			in: FreshnessInput{Count: 28, Materialized: through(28)}, now: "2026-03-29T12:00:00+02:00",
			status: FreshnessPass, policy: "deadline 30 2 * * * (Europe/Berlin)",
			reason: []string{"partition 2026-03-28, due at 2026-03-29 03:00 CEST, is materialized"},
			data:   "2026-03-29T00:00:00+01:00", due: "2026-03-29T03:00:00+02:00"},
		{name: "deadline Berlin spring: the 03:00 deadline of 03-29 fails without the 03-28 partition", asset: asset(berlinDaily, deadline("30 2 * * *", "Europe/Berlin")),
			in: FreshnessInput{Count: 28, Materialized: through(27)}, now: "2026-03-29T12:00:00+02:00",
			status: FreshnessFail, policy: "deadline 30 2 * * * (Europe/Berlin)",
			reason: []string{"partition 2026-03-28 was due at 2026-03-29 03:00 CEST and is not materialized, 9h late"},
			data:   "2026-03-28T00:00:00+01:00", lag: 9 * time.Hour, due: "2026-03-29T03:00:00+02:00"},
		{name: "deadline Berlin autumn: the first 02:05, hourly partition before the repeated hour", asset: asset(berlinHourly, deadline("5 * * * *", "Europe/Berlin")),
			in: FreshnessInput{Count: 578, Materialized: through(578)}, now: "2026-10-25T02:10:00+02:00",
			status: FreshnessPass, policy: "deadline 5 * * * * (Europe/Berlin)",
			reason: []string{"partition 2026-10-25T01:00+02:00, due at 2026-10-25 02:05 CEST, is materialized"},
			data:   "2026-10-25T02:00:00+02:00", due: "2026-10-25T02:05:00+02:00"},
		{name: "deadline Berlin autumn: the second 02:05 wants the first 02:00 partition", asset: asset(berlinHourly, deadline("5 * * * *", "Europe/Berlin")),
			in: FreshnessInput{Count: 579, Materialized: through(578)}, now: "2026-10-25T02:10:00+01:00",
			status: FreshnessFail, policy: "deadline 5 * * * * (Europe/Berlin)",
			reason: []string{"partition 2026-10-25T02:00+02:00 was due at 2026-10-25 02:05 CET and is not materialized, 5m late"},
			data:   "2026-10-25T02:00:00+02:00", lag: 5 * time.Minute, due: "2026-10-25T02:05:00+01:00"},
		{name: "deadline bad cron", asset: asset(daily, deadline("0 25 * * *", "")),
			in: FreshnessInput{Count: 5, Materialized: through(5)}, now: "2026-01-06T10:00:00Z",
			status: FreshnessUnknown, policy: "deadline 0 25 * * * (UTC)", reason: []string{"cannot evaluate the deadline", `bad cron "0 25 * * *"`}},
		{name: "deadline unknown timezone", asset: asset(nil, deadline("0 9 * * *", "Europe/Atlantis")),
			now: "2026-01-06T10:00:00Z", status: FreshnessUnknown, policy: "deadline 0 9 * * * (Europe/Atlantis)",
			reason: []string{`unknown timezone "Europe/Atlantis"`}},
		{name: "deadline that never ticks", asset: asset(nil, deadline("0 0 30 2 *", "")),
			now: "2026-01-06T10:00:00Z", status: FreshnessUnknown, policy: "deadline 0 0 30 2 * (UTC)",
			reason: []string{"has not ticked in the five years before 2026-01-06 10:00 UTC"}},

		// deadline, unpartitioned: 0 9 * * * UTC; at 2026-01-06 10:00 the tick is 01-06 09:00, the one before 01-05 09:00.
		{name: "deadline unpartitioned pass", asset: asset(nil, deadline("0 9 * * *", "")),
			in: FreshnessInput{LastMaterializedAt: at(t, "2026-01-05T12:00:00Z")}, now: "2026-01-06T10:00:00Z",
			status: FreshnessPass, policy: "deadline 0 9 * * * (UTC)",
			reason: []string{"last materialized at 2026-01-05 12:00 UTC, in time for the tick due at 2026-01-06 09:00 UTC"},
			data:   "2026-01-05T12:00:00Z", due: "2026-01-06T09:00:00Z"},
		{name: "deadline unpartitioned at the previous tick passes", asset: asset(nil, deadline("0 9 * * *", "")),
			in: FreshnessInput{LastMaterializedAt: at(t, "2026-01-05T09:00:00Z")}, now: "2026-01-06T10:00:00Z",
			status: FreshnessPass, policy: "deadline 0 9 * * * (UTC)", reason: []string{"in time for the tick due at 2026-01-06 09:00 UTC"},
			data: "2026-01-05T09:00:00Z", due: "2026-01-06T09:00:00Z"},
		{name: "deadline unpartitioned fail", asset: asset(nil, deadline("0 9 * * *", "")),
			in: FreshnessInput{LastMaterializedAt: at(t, "2026-01-05T08:59:00Z")}, now: "2026-01-06T10:00:00Z",
			status: FreshnessFail, policy: "deadline 0 9 * * * (UTC)",
			reason: []string{"was due at 2026-01-06 09:00 UTC and was last materialized at 2026-01-05 08:59 UTC, before the previous tick at 2026-01-05 09:00 UTC, 1h late"},
			data:   "2026-01-05T08:59:00Z", lag: time.Hour, due: "2026-01-06T09:00:00Z"},
		{name: "deadline unpartitioned late but done passes", asset: asset(nil, deadline("0 9 * * *", "")),
			in: FreshnessInput{LastMaterializedAt: at(t, "2026-01-06T09:30:00Z")}, now: "2026-01-06T10:00:00Z",
			status: FreshnessPass, policy: "deadline 0 9 * * * (UTC)", reason: []string{"last materialized at 2026-01-06 09:30 UTC"},
			data: "2026-01-06T09:30:00Z", due: "2026-01-06T09:00:00Z"},
		{name: "deadline unpartitioned never", asset: asset(nil, deadline("0 9 * * *", "")),
			now: "2026-01-06T10:00:00Z", status: FreshnessFail, policy: "deadline 0 9 * * * (UTC)",
			reason: []string{"was due at 2026-01-06 09:00 UTC and was never materialized, 1h late"},
			lag:    time.Hour, due: "2026-01-06T09:00:00Z"},
		{name: "deadline unpartitioned Berlin autumn: 02:30 happens twice, the deadline is the first", asset: asset(nil, deadline("30 2 * * *", "Europe/Berlin")),
			in: FreshnessInput{LastMaterializedAt: at(t, "2026-10-24T12:00:00+02:00")}, now: "2026-10-25T02:45:00+01:00",
			status: FreshnessPass, policy: "deadline 30 2 * * * (Europe/Berlin)",
			reason: []string{"in time for the tick due at 2026-10-25 02:30 CEST"},
			data:   "2026-10-24T12:00:00+02:00", due: "2026-10-25T02:30:00+02:00"},
		{name: "deadline unpartitioned Berlin autumn: before the period fails", asset: asset(nil, deadline("30 2 * * *", "Europe/Berlin")),
			in: FreshnessInput{LastMaterializedAt: at(t, "2026-10-24T02:00:00+02:00")}, now: "2026-10-25T02:45:00+01:00",
			status: FreshnessFail, policy: "deadline 30 2 * * * (Europe/Berlin)",
			reason: []string{"before the previous tick at 2026-10-24 02:30 CEST, 1h15m late"},
			data:   "2026-10-24T02:00:00+02:00", lag: 75 * time.Minute, due: "2026-10-25T02:30:00+02:00"},
		{name: "deadline unpartitioned hourly, Berlin autumn: the repeated hour is a real hour and wants its own success", asset: asset(nil, deadline("5 * * * *", "Europe/Berlin")),
			in: FreshnessInput{LastMaterializedAt: at(t, "2026-10-25T01:30:00+02:00")}, now: "2026-10-25T02:10:00+01:00",
			status: FreshnessFail, policy: "deadline 5 * * * * (Europe/Berlin)",
			reason: []string{"before the previous tick at 2026-10-25 02:05 CEST, 5m late"},
			data:   "2026-10-25T01:30:00+02:00", lag: 5 * time.Minute, due: "2026-10-25T02:05:00+01:00"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := EvaluateFreshness(tc.asset, tc.in, at(t, tc.now))
			if got.Status != tc.status {
				t.Errorf("Status = %s, want %s (reason: %s)", got.Status, tc.status, got.Reason)
			}
			if got.Policy != tc.policy {
				t.Errorf("Policy = %q, want %q", got.Policy, tc.policy)
			}
			for _, r := range tc.reason {
				if !strings.Contains(got.Reason, r) {
					t.Errorf("Reason %q does not contain %q", got.Reason, r)
				}
			}
			checkTime(t, "DataTime", got.DataTime, tc.data)
			checkTime(t, "Due", got.Due, tc.due)
			if got.Lag != tc.lag {
				t.Errorf("Lag = %s, want %s", got.Lag, tc.lag)
			}
		})
	}
}

func checkTime(t *testing.T, field string, got time.Time, want string) {
	t.Helper()
	if want == "" {
		if !got.IsZero() {
			t.Errorf("%s = %s, want zero", field, got)
		}
		return
	}
	if w := at(t, want); !got.Equal(w) {
		t.Errorf("%s = %s, want %s", field, got, w)
	}
}

func TestFormatDuration(t *testing.T) {
	t.Parallel()
	for d, want := range map[time.Duration]string{
		0:                                     "0s",
		12 * time.Second:                      "12s",
		10 * time.Second:                      "10s",
		45 * time.Minute:                      "45m",
		20*time.Minute + 7*time.Second:        "20m7s",
		time.Hour:                             "1h",
		90 * time.Minute:                      "1h30m",
		26 * time.Hour:                        "26h",
		2*time.Hour + 29*time.Second:          "2h",
		2*time.Hour + 31*time.Second:          "2h1m",
		1500 * time.Millisecond:               "2s",
		10*time.Minute + 400*time.Millisecond: "10m",
	} {
		if got := formatDuration(d); got != want {
			t.Errorf("formatDuration(%v) = %q, want %q", time.Duration(d), got, want)
		}
	}
}

// hourlyAsset has n hourly partitions at the returned instant, all materialized by
// the returned input.
func hourlyAsset(tb testing.TB, n int, policy *assets.FreshnessPolicy) (*assets.Asset, FreshnessInput, time.Time) {
	parts := partitionsOf(tb, assets.Hourly, "2014-01-01", "", "")
	now := parts.WindowStart(n).Add(30 * time.Minute)
	if c := parts.Count(now); c != n {
		tb.Fatalf("Count = %d, want %d", c, n)
	}
	done := make([]bool, n)
	for i := range done {
		done[i] = true
	}
	a := &assets.Asset{Key: "events/clicks", Partitions: parts, Freshness: policy, Compute: assets.CommandCompute{Argv: []string{"true"}}}
	return a, FreshnessInput{Count: n, Materialized: func(i int) bool { return done[i] }}, now
}

// TestEvaluateFreshnessAllocations checks that the allocations do not grow with the
// number of partitions. Not parallel: AllocsPerRun refuses to run in parallel tests.
func TestEvaluateFreshnessAllocations(t *testing.T) {
	for _, policy := range []*assets.FreshnessPolicy{
		{MaxLag: time.Hour, WarnLag: 30 * time.Minute},
		{Deadline: &assets.Deadline{Cron: "0 * * * *"}},
	} {
		allocs := func(n int) float64 {
			a, in, now := hourlyAsset(t, n, policy)
			return testing.AllocsPerRun(5, func() {
				if f := EvaluateFreshness(a, in, now); f.Status != FreshnessPass {
					t.Fatalf("%d partitions: %s: %s", n, f.Status, f.Reason)
				}
			})
		}
		// A few allocations either way come from the texts of the two cases (their
		// dates differ); one per partition would add 100,000.
		small, big := allocs(10), allocs(100_000)
		if big > small+100 {
			t.Errorf("%s: %v allocations for 100000 partitions, %v for 10: allocating per partition", policyText(policy, nil), big, small)
		}
	}
}

func BenchmarkEvaluateFreshness(b *testing.B) {
	const n = 100_000
	for _, bc := range []struct {
		name   string
		policy *assets.FreshnessPolicy
	}{
		{"max_lag", &assets.FreshnessPolicy{MaxLag: time.Hour, WarnLag: 30 * time.Minute}},
		{"deadline", &assets.FreshnessPolicy{Deadline: &assets.Deadline{Cron: "0 * * * *", Timezone: "Europe/Berlin"}}},
	} {
		a, in, now := hourlyAsset(b, n, bc.policy)
		b.Run(fmt.Sprintf("%s/partitions=%d", bc.name, n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if f := EvaluateFreshness(a, in, now); f.Status != FreshnessPass {
					b.Fatal(f.Reason)
				}
			}
		})
	}
}
