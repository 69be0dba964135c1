package materialize

import (
	"context"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/freshetdev/freshet/assets"
	"github.com/freshetdev/freshet/graph"
	"github.com/freshetdev/freshet/store/sqlite"
)

type alwaysLeader struct{}

func (alwaysLeader) IsLeader() bool { return true }

// A nightly schedule at a time of day that clocks skip or repeat fires once on
// every day, DST days included, as the scheduler's clock walks across them.
func TestSchedulerFiresOncePerDayAcrossDST(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, from, to string
		want           []string // the ticks recorded, oldest first
	}{
		{"spring: 02:30 does not happen on 03-29, it fires when clocks jump to 03:00",
			"2026-03-27T12:00:00+01:00", "2026-03-30T12:00:00+02:00",
			[]string{"2026-03-28T02:30:00+01:00", "2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00"}},
		{"autumn: 02:30 happens twice on 10-25, it fires the first time only",
			"2026-10-24T12:00:00+02:00", "2026-10-26T12:00:00+01:00",
			[]string{"2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "catalog.db"))
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			defs := &assets.Definitions{
				Assets:    []*assets.Asset{{Key: "ext/copy", CodeVersion: "1", Compute: assets.CommandCompute{Argv: []string{"true"}}}},
				Schedules: []assets.Schedule{{Name: "nightly", Cron: "30 2 * * *", Timezone: "Europe/Berlin", Select: "ext/copy"}},
			}
			g, err := graph.New(defs)
			if err != nil {
				t.Fatal(err)
			}
			from, err := time.Parse(time.RFC3339, tc.from)
			if err != nil {
				t.Fatal(err)
			}
			to, err := time.Parse(time.RFC3339, tc.to)
			if err != nil {
				t.Fatal(err)
			}
			var clock atomic.Int64 // the engine may read it from other goroutines
			clock.Store(from.UnixNano())
			now := func() time.Time { return time.Unix(0, clock.Load()) }
			e, err := OpenEngine(ctx, st, "", defs, g, now)
			if err != nil {
				t.Fatal(err)
			}
			s := &Scheduler{Engine: e, Leader: alwaysLeader{}, Store: st, Logger: hclog.NewNullLogger(), firstSeen: map[string]time.Time{}}
			for at := from; !at.After(to); at = at.Add(10 * time.Minute) {
				clock.Store(at.UnixNano())
				if err := s.check(ctx); err != nil {
					t.Fatalf("check at %s: %v", at, err)
				}
			}
			ticks, err := st.Ticks(ctx, "nightly", 100)
			if err != nil {
				t.Fatal(err)
			}
			berlin, err := time.LoadLocation("Europe/Berlin")
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, tk := range slices.Backward(ticks) { // newest first
				got = append(got, tk.At.In(berlin).Format(time.RFC3339))
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("ticks fired:\n got %v\nwant %v", got, tc.want)
			}
		})
	}
}
