package materialize

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/freshetdev/freshet/assets"
	"github.com/freshetdev/freshet/store"
)

// describeRun renders a new run's steps with their deps, by asset and first key.
func describeRun(run store.NewRun) []string {
	name := func(s store.NewStep) string {
		k := s.Partitions[0]
		if len(s.Partitions) > 1 {
			k += ".." + s.Partitions[len(s.Partitions)-1]
		}
		return fmt.Sprintf("%s@%s", s.Asset, k)
	}
	var out []string
	for _, s := range run.Steps {
		var deps []string
		for _, d := range s.Deps {
			deps = append(deps, name(run.Steps[d]))
		}
		out = append(out, fmt.Sprintf("%s x%d <- [%s]", name(s), s.MaxAttempts, strings.Join(deps, " ")))
	}
	return out
}

func TestNewRunStepsAndDeps(t *testing.T) {
	t.Parallel()
	daily := parts(t, assets.Daily, "2026-01-01")
	weekly := parts(t, assets.Weekly, "2026-01-05")
	up := built("up", daily)
	up.Retries.Max = 2
	wk := built("wk", weekly, on("up"))
	lag := built("lag", daily, assets.Dep{Asset: "up", StartOffset: -1})
	lag.Batch.MaxPartitions = 2
	total := built("total", nil, on("wk"))
	g := mustGraph(t, up, wk, lag, total)
	now := time.Date(2026, 1, 13, 6, 0, 0, 0, time.UTC) // 12 complete days, one complete week
	p, err := Compute(g, NewEmptyState(g), Request{Now: now, From: time.Date(2026, 1, 4, 0, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	run := p.NewRun(RunOptions{Trigger: store.TriggerManual})
	got := describeRun(run)
	want := map[string]string{
		"up@2026-01-03":              "up@2026-01-03 x3 <- []",
		"up@2026-01-04":              "up@2026-01-04 x3 <- []",
		"wk@2026-01-05":              "wk@2026-01-05 x1 <- [up@2026-01-05 up@2026-01-06 up@2026-01-07 up@2026-01-08 up@2026-01-09 up@2026-01-10 up@2026-01-11]",
		"lag@2026-01-04..2026-01-05": "lag@2026-01-04..2026-01-05 x1 <- [up@2026-01-03 up@2026-01-04 up@2026-01-05]",
		"lag@2026-01-12":             "lag@2026-01-12 x1 <- [up@2026-01-11 up@2026-01-12]",
		"total@":                     "total@ x1 <- [wk@2026-01-05]",
	}
	seen := map[string]bool{}
	for _, line := range got {
		head := strings.SplitN(line, " ", 2)[0]
		seen[head] = true
		if w, ok := want[head]; ok && w != line {
			t.Errorf("step %s:\n got %s\nwant %s", head, line, w)
		}
	}
	for head := range want {
		if !seen[head] {
			t.Errorf("no step %s in\n%s", head, strings.Join(got, "\n"))
		}
	}
	// Every dep comes earlier, and the run has one step per planned step.
	if len(run.Steps) != p.NumSteps() {
		t.Errorf("%d steps; the plan has %d", len(run.Steps), p.NumSteps())
	}
	for k, s := range run.Steps {
		for _, d := range s.Deps {
			if d >= k {
				t.Errorf("step %d depends on later step %d", k, d)
			}
		}
	}
}

func TestForcedStepsRebuildFreshTargets(t *testing.T) {
	t.Parallel()
	daily := parts(t, assets.Daily, "2026-01-01")
	up := built("up", daily)
	down := built("down", daily, on("up"))
	down.Batch.MaxPartitions = 10
	g := mustGraph(t, up, down)
	now := time.Date(2026, 1, 6, 0, 0, 0, 0, time.UTC) // 5 complete days
	st := NewEmptyState(g)
	// Everything fresh: both assets materialized on every day, down after up.
	for a := range st.Assets {
		s := &st.Assets[a]
		s.Grow(5)
		s.CodeVersions = []string{"1"}
		s.DepSets = [][]assets.Key{{}}
		if a == node(t, g, "down") {
			s.DepSets = [][]assets.Key{{"up"}}
		}
		for i := range 5 {
			s.Flags[i] = FlagMaterialized
			s.DataChangedSeq[i] = int64(10 + a*10 + i)
			s.InputSeq[i] = int64(a*100 + 50)
		}
	}
	sel := selectKeys(g, "down")
	p, err := Compute(g, st, Request{Now: now, Selected: sel, From: time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 1, 4, 0, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	if n := p.NumSteps(); n != 0 {
		t.Fatalf("fresh catalog planned %d steps: %v", n, describe(p))
	}
	got := describeRun(p.NewRun(RunOptions{Force: true}))
	want := []string{"down@2026-01-02..2026-01-04 x1 <- []"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("forced run:\n got %v\nwant %v", got, want)
	}
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	r := assets.Retries{Max: 5, Backoff: time.Second, MaxBackoff: 5 * time.Second}
	cases := []struct {
		attempt  int
		rng      float64
		want     time.Duration
		policy   assets.Retries
		scenario string
	}{
		{1, 0, 500 * time.Millisecond, r, "first retry, low jitter: half the base"},
		{1, 1, time.Second, r, "first retry, high jitter: the base"},
		{2, 1, 2 * time.Second, r, "doubles"},
		{3, 1, 4 * time.Second, r, "doubles again"},
		{4, 1, 5 * time.Second, r, "capped at max_backoff"},
		{40, 0.5, 3750 * time.Millisecond, r, "no overflow far past the cap"},
		{1, 1, DefaultBackoff, assets.Retries{Max: 1}, "default backoff"},
		{30, 1, DefaultMaxBackoff, assets.Retries{Max: 40}, "default cap"},
	}
	for _, c := range cases {
		if got := backoff(c.policy, c.attempt, func() float64 { return c.rng }); got != c.want {
			t.Errorf("%s: backoff(attempt %d, jitter %.1f) = %s, want %s", c.scenario, c.attempt, c.rng, got, c.want)
		}
	}
}
