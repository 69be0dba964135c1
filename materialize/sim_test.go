package materialize

import (
	"slices"
	"testing"
	"time"

	"github.com/freshetdev/freshet/assets"
	"github.com/freshetdev/freshet/graph"
)

// sim is an in-memory catalog for tests: it records materializations the way the
// store will (global seq, input_seq watermark, data-changed seq) into a State.
type sim struct {
	t   testing.TB
	g   *graph.Graph
	now time.Time
	seq int64
	st  *State
}

func newSim(t testing.TB, g *graph.Graph, now time.Time) *sim {
	return &sim{t: t, g: g, now: now, st: NewEmptyState(g)}
}

func (s *sim) grow(a, n int) *AssetState {
	as := &s.st.Assets[a]
	for len(as.Flags) < n {
		as.Flags = append(as.Flags, 0)
		as.InputSeq = append(as.InputSeq, 0)
		as.DataChangedSeq = append(as.DataChangedSeq, 0)
		as.CodeVersion = append(as.CodeVersion, 0)
		as.DepSet = append(as.DepSet, 0)
	}
	return as
}

// record appends one materialization (or observation, for a source) of partition i
// of asset a, read at watermark inputSeq; changed says whether its data version
// differs from the previous one.
func (s *sim) record(a, i int, inputSeq int64, changed bool) {
	asset := s.g.Asset(a)
	as := s.grow(a, i+1)
	s.seq++
	if as.Flags[i]&FlagMaterialized == 0 {
		changed = true // the first version is always a change
	}
	as.Flags[i] = FlagMaterialized
	as.InputSeq[i] = inputSeq
	if changed {
		as.DataChangedSeq[i] = s.seq
	}
	cv := slices.Index(as.CodeVersions, asset.CodeVersion)
	if cv < 0 {
		cv = len(as.CodeVersions)
		as.CodeVersions = append(as.CodeVersions, asset.CodeVersion)
	}
	as.CodeVersion[i] = uint32(cv)
	deps := currentDepSet(asset)
	ds := slices.IndexFunc(as.DepSets, func(d []assets.Key) bool { return slices.Equal(d, deps) })
	if ds < 0 {
		ds = len(as.DepSets)
		as.DepSets = append(as.DepSets, deps)
	}
	as.DepSet[i] = uint32(ds)
}

func (s *sim) key(a int, key string) int {
	s.t.Helper()
	p := s.g.Asset(a).Partitions
	if p == nil {
		return 0
	}
	i, err := p.Index(key)
	if err != nil {
		s.t.Fatal(err)
	}
	return i
}

// run executes a plan's steps in order, each step reading the catalog as it stands
// when it starts and producing a new data version.
func (s *sim) run(p *Plan) {
	for st := range p.Steps() {
		watermark := s.seq
		for i := st.Lo; i < st.Hi; i++ {
			s.record(int(st.Asset), int(i), watermark, true)
		}
	}
}

func (s *sim) plan(req Request) *Plan {
	s.t.Helper()
	if req.Now.IsZero() {
		req.Now = s.now
	}
	p, err := Compute(s.g, s.st, req)
	if err != nil {
		s.t.Fatal(err)
	}
	return p
}
