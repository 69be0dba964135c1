package materialize

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/freshetdev/freshet/assets"
	"github.com/freshetdev/freshet/graph"
)

var propertyNow = time.Date(2026, 3, 15, 10, 30, 0, 0, time.UTC)

// randomGraph builds a random DAG of up to maxAssets assets with mixed granularities,
// timezones, starts, ends, end offsets, mappings and batches.
func randomGraph(t *testing.T, r *rand.Rand, maxAssets int) *graph.Graph {
	t.Helper()
	zones := []string{"UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata"}
	n := 1 + r.IntN(maxAssets)
	defs := &assets.Definitions{}
	for i := 0; i < n; i++ {
		a := &assets.Asset{Key: assets.Key(fmt.Sprintf("a%02d", i)), CodeVersion: "1",
			Compute: assets.CommandCompute{Argv: []string{"true"}}}
		if r.IntN(12) == 0 {
			a.Compute = nil // a source
		}
		if r.IntN(8) != 0 {
			a.Partitions = randomPartitions(t, r, zones[r.IntN(len(zones))])
			if a.Compute != nil && r.IntN(3) == 0 {
				a.Batch.MaxPartitions = 1 + r.IntN(10)
			}
		}
		deps := min(i, r.IntN(4))
		if a.Compute == nil {
			deps = 0
		}
		for _, j := range r.Perm(i)[:deps] {
			up := defs.Assets[j]
			dep := assets.Dep{Asset: up.Key}
			switch {
			case up.Partitions != nil && a.Partitions == nil:
				dep.Mapping = []assets.Mapping{assets.MappingAll, assets.MappingLast}[r.IntN(2)]
			case up.Partitions != nil && r.IntN(3) == 0:
				dep.StartOffset = -r.IntN(4)
				dep.EndOffset = dep.StartOffset + r.IntN(2-dep.StartOffset)
			}
			a.Deps = append(a.Deps, dep)
		}
		defs.Assets = append(defs.Assets, a)
	}
	if errs := defs.Validate(); len(errs) > 0 {
		t.Fatal(errs)
	}
	g, err := graph.New(defs)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func randomPartitions(t *testing.T, r *rand.Rand, zone string) *assets.Partitions {
	t.Helper()
	loc, _ := time.LoadLocation(zone)
	local := propertyNow.In(loc)
	y, m, d := local.Date()
	spec := assets.PartitionsSpec{Timezone: zone}
	var start time.Time
	switch r.IntN(4) {
	case 0:
		spec.Granularity = assets.Hourly
		start = time.Date(y, m, d-2-r.IntN(8), r.IntN(24), 0, 0, 0, time.UTC)
		spec.Start = start.Format("2006-01-02T15:04")
	case 1:
		spec.Granularity = assets.Daily
		start = time.Date(y, m, d-10-r.IntN(110), 0, 0, 0, 0, time.UTC)
		spec.Start = start.Format("2006-01-02")
	case 2:
		spec.Granularity = assets.Weekly
		start = time.Date(y, m, d-7*(2+r.IntN(50)), 0, 0, 0, 0, time.UTC)
		start = start.AddDate(0, 0, -((int(start.Weekday()) + 6) % 7)) // back to Monday
		spec.Start = start.Format("2006-01-02")
	default:
		spec.Granularity = assets.Monthly
		start = time.Date(y, m-time.Month(2+r.IntN(30)), 1, 0, 0, 0, 0, time.UTC)
		spec.Start = start.Format("2006-01-02")
	}
	switch r.IntN(10) {
	case 0:
		spec.EndOffset = 1
	case 1:
		spec.EndOffset = -1
	case 2:
		spec.End = local.AddDate(0, 0, -r.IntN(5)).Format("2006-01-02")
		if spec.End <= start.Format("2006-01-02") {
			spec.End = ""
		}
	}
	p, err := assets.NewPartitions(spec)
	if err != nil {
		t.Fatalf("%+v: %v", spec, err)
	}
	return p
}

// observeSources records an observation of every partition of every source asset.
func observeSources(s *sim) {
	for a := 0; a < s.g.Len(); a++ {
		if asset := s.g.Asset(a); asset.IsSource() {
			n := 1
			if asset.Partitions != nil {
				n = asset.Partitions.Count(s.now)
			}
			for i := 0; i < n; i++ {
				s.record(a, i, s.seq, true)
			}
		}
	}
}

// runChecked runs a plan like sim.run, and checks that every step starts only after
// every upstream partition it needs (that exists) has been materialized.
func runChecked(t *testing.T, s *sim, p *Plan) {
	t.Helper()
	for st := range p.Steps() {
		a := int(st.Asset)
		watermark := s.seq
		for i := st.Lo; i < st.Hi; i++ {
			for _, id := range s.g.In(a) {
				e := s.g.Edge(id)
				up := p.Count(e.From)
				lo, hi := e.Range(int(i), up)
				for j := max(lo, 0); j <= min(hi, up-1); j++ {
					if f := s.st.Assets[e.From].Flags; j >= len(f) || f[j]&FlagMaterialized == 0 {
						t.Fatalf("step %s %d runs before its upstream %s partition %d exists",
							s.g.Asset(a).Key, i, s.g.Asset(e.From).Key, j)
					}
				}
			}
		}
		for i := st.Lo; i < st.Hi; i++ {
			s.record(a, int(i), watermark, true)
		}
	}
}

// nonFresh returns the set of (asset, partition) with the given status.
func withStatus(p *Plan, want Status) map[[2]int]bool {
	out := map[[2]int]bool{}
	for a := 0; a < p.g.Len(); a++ {
		for i := 0; i < p.Count(a); i++ {
			if p.Status(a, i) == want {
				out[[2]int{a, i}] = true
			}
		}
	}
	return out
}

// downstreamClosure computes, by brute force over every downstream partition, the
// partitions that transitively read partition j of asset u.
func downstreamClosure(p *Plan, u, j int) map[[2]int]bool {
	g := p.g
	seen := map[[2]int]bool{}
	queue := [][2]int{{u, j}}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		for _, id := range g.Out(cur[0]) {
			e := g.Edge(id)
			upCount := p.Count(cur[0])
			for i := 0; i < p.Count(e.To); i++ {
				lo, hi := e.Range(i, upCount)
				if max(lo, 0) <= cur[1] && cur[1] <= min(hi, upCount-1) {
					k := [2]int{e.To, i}
					if !seen[k] {
						seen[k] = true
						queue = append(queue, k)
					}
				}
			}
		}
	}
	return seen
}

func TestPlanProperties(t *testing.T) {
	t.Parallel()
	for seed := uint64(1); seed <= 250; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			t.Parallel()
			r := rand.New(rand.NewPCG(seed, 42))
			g := randomGraph(t, r, 50)
			s := newSim(t, g, propertyNow)
			observeSources(s)

			// 1. Materialize the whole plan; the re-plan is empty and nothing is stale.
			runChecked(t, s, s.plan(Request{}))
			after := s.plan(Request{})
			if after.NumSteps() != 0 {
				t.Fatalf("re-plan after a full run has %d steps:\n%v", after.NumSteps(), describe(after))
			}
			if stale := withStatus(after, StatusStale); len(stale) != 0 {
				t.Fatalf("stale after a full run: %v", stale)
			}
			missingBefore := withStatus(after, StatusMissing)

			// 2. Pick a materialized partition of a built asset.
			var u, j int = -1, -1
			for _, a := range r.Perm(g.Len()) {
				if g.Asset(a).IsSource() {
					continue
				}
				var built []int
				for i := 0; i < after.Count(a); i++ {
					if after.Status(a, i) == StatusFresh {
						built = append(built, i)
					}
				}
				if len(built) > 0 {
					u, j = a, built[r.IntN(len(built))]
					break
				}
			}
			if u < 0 {
				return
			}

			// 3. The same data version again: nothing becomes stale.
			s.record(u, j, s.seq, false)
			same := s.plan(Request{})
			if same.NumSteps() != 0 || len(withStatus(same, StatusStale)) != 0 {
				t.Fatalf("same data version made something stale:\n%v", describe(same))
			}

			// 4. A new data version: exactly its downstream closure is stale.
			s.record(u, j, s.seq, true)
			changed := s.plan(Request{})
			want := downstreamClosure(changed, u, j)
			for k := range want {
				if missingBefore[k] {
					delete(want, k) // never built: still missing, not stale
				}
			}
			got := withStatus(changed, StatusStale)
			for k := range want {
				if !got[k] {
					t.Errorf("%s %d reads the changed %s %d but is not stale", g.Asset(k[0]).Key, k[1], g.Asset(u).Key, j)
				}
			}
			for k := range got {
				if !want[k] {
					t.Errorf("%s %d is stale but does not read the changed %s %d (causes %v)", g.Asset(k[0]).Key, k[1], g.Asset(u).Key, j, changed.Causes(k[0], k[1]))
				}
			}
			if missing := withStatus(changed, StatusMissing); len(missing) != len(missingBefore) {
				t.Errorf("missing partitions went from %d to %d", len(missingBefore), len(missing))
			}
			planned := map[[2]int]bool{}
			for st := range changed.Steps() {
				for i := st.Lo; i < st.Hi; i++ {
					planned[[2]int{int(st.Asset), int(i)}] = true
				}
			}
			if len(planned) != len(got) {
				t.Errorf("plan covers %d partitions, %d are stale", len(planned), len(got))
			}
			runChecked(t, s, changed)
			if again := s.plan(Request{}); again.NumSteps() != 0 {
				t.Fatalf("re-plan after rebuilding the stale closure:\n%v", describe(again))
			}

			// 5. An upstream-closed selection over a random window, from scratch.
			w := newSim(t, g, propertyNow)
			observeSources(w)
			target := r.IntN(g.Len())
			dist := g.Closure([]int{target}, graph.Upstream, -1)
			sel := make([]bool, g.Len())
			for a, d := range dist {
				sel[a] = d >= 0
			}
			from := propertyNow.AddDate(0, 0, -r.IntN(60))
			req := Request{Selected: sel, From: from, To: from.AddDate(0, 0, r.IntN(20))}
			runChecked(t, w, w.plan(req))
			if again := w.plan(req); again.NumSteps() != 0 {
				t.Fatalf("re-plan of a window after running it:\n%v", describe(again))
			}
		})
	}
}
