package materialize

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/freshetdev/freshet/assets"
	"github.com/freshetdev/freshet/graph"
)

// Cause names one reason a partition is stale. For UPSTREAM_* causes Asset and
// Partition name the upstream partition responsible; for CODE_CHANGED and
// DEPS_CHANGED, Asset is the stale asset itself and Partition is empty.
type Cause struct {
	Kind      CauseKind
	Asset     assets.Key
	Partition string
}

// Graph returns the graph the plan was computed on.
func (p *Plan) Graph() *graph.Graph { return p.g }

// Count returns how many partitions asset a has at the plan's Now.
func (p *Plan) Count(a int) int { return p.assets[a].n }

// Status returns the status of partition i of asset a.
func (p *Plan) Status(a, i int) Status { return statusOf(p.assets[a].status[i]) }

// CauseBits returns the set of causes of partition i of asset a, as CauseKind bits.
func (p *Plan) CauseBits(a, i int) CauseKind {
	return CauseKind(p.assets[a].status[i] & staleMask)
}

// Causes explains why partition i of asset a is stale, naming for each upstream
// cause the responsible upstream partition (the newest change, the first missing or
// stale one). It is computed on demand, so planning itself allocates nothing per cause.
func (p *Plan) Causes(a, i int) []Cause {
	b := p.assets[a].status[i]
	if b&bitMissing != 0 || b&staleMask == 0 {
		return nil
	}
	key := p.g.Asset(a).Key
	var causes []Cause
	if b&uint8(CauseCodeChanged) != 0 {
		causes = append(causes, Cause{Kind: CauseCodeChanged, Asset: key})
	}
	if b&uint8(CauseDepsChanged) != 0 {
		causes = append(causes, Cause{Kind: CauseDepsChanged, Asset: key})
	}
	inputSeq := p.state.Assets[a].InputSeq[i]
	for _, id := range p.g.In(a) {
		e := p.g.Edge(id)
		up := &p.assets[e.From]
		upAsset := p.g.Asset(e.From)
		dcs := p.state.Assets[e.From].DataChangedSeq
		lo, hi := e.Range(i, up.n)
		lo, hi = max(lo, 0), min(hi, up.n-1)
		changed, missing, stale := -1, -1, -1
		var best int64
		for j := lo; j <= hi; j++ {
			if j < len(dcs) && dcs[j] > inputSeq && dcs[j] > best {
				changed, best = j, dcs[j]
			}
			switch ub := up.status[j]; {
			case ub&bitMissing != 0:
				if missing < 0 {
					missing = j
				}
			case ub&staleMask != 0:
				if stale < 0 {
					stale = j
				}
			}
		}
		for _, c := range []struct {
			kind CauseKind
			j    int
		}{{CauseUpstreamChanged, changed}, {CauseUpstreamMissing, missing}, {CauseUpstreamStale, stale}} {
			if c.j >= 0 && b&uint8(c.kind) != 0 {
				causes = append(causes, Cause{Kind: c.kind, Asset: upAsset.Key, Partition: partitionKey(upAsset, c.j)})
			}
		}
	}
	return causes
}

// StepCauses returns the causes of every partition of step s, without repeats.
func (p *Plan) StepCauses(s Step) []Cause {
	var out []Cause
	seen := map[Cause]bool{}
	for i := s.Lo; i < s.Hi; i++ {
		for _, c := range p.Causes(int(s.Asset), int(i)) {
			if !seen[c] {
				seen[c] = true
				out = append(out, c)
			}
		}
	}
	return out
}

// PartitionKeys returns the keys of step s's partitions (none for an unpartitioned asset).
func (p *Plan) PartitionKeys(s Step) []string {
	a := p.g.Asset(int(s.Asset))
	if a.Partitions == nil {
		return []string{}
	}
	keys := make([]string, 0, s.Hi-s.Lo)
	for i := s.Lo; i < s.Hi; i++ {
		keys = append(keys, a.Partitions.Key(int(i)))
	}
	return keys
}

func partitionKey(a *assets.Asset, i int) string {
	if a.Partitions == nil {
		return ""
	}
	return a.Partitions.Key(i)
}

// Reason says in words why b is blocked.
func (p *Plan) Reason(b Blocked) string {
	return p.reason(b, int(b.UpstreamPartition), int(b.UpstreamPartition)+1)
}

// reason explains b for upstream partitions [upLo, upHi), so that a run of blocked
// partitions can be explained in one line.
func (p *Plan) reason(b Blocked, upLo, upHi int) string {
	up := p.g.Asset(int(b.Upstream))
	where := up.Key.String()
	if up.Partitions != nil {
		where += " " + keyRange(up, upLo, upHi)
	}
	is := "is"
	if upHi-upLo > 1 {
		is = "are"
	}
	switch b.Kind {
	case BlockWaitingWindow:
		return fmt.Sprintf("waiting for upstream window: %s %s not complete yet", where, is)
	case BlockUpstreamMissing:
		upPlan := &p.assets[b.Upstream]
		switch {
		case up.IsSource():
			return fmt.Sprintf("upstream source %s has no observation (observe it or report one)", where)
		case upPlan.plan[b.UpstreamPartition]&pBlocked != 0:
			return fmt.Sprintf("upstream %s %s missing and blocked itself", where, is)
		default:
			return fmt.Sprintf("upstream %s %s missing and not selected (select +%s to build it)", where, is, p.g.Asset(int(b.Asset)).Key)
		}
	case BlockUpstreamStale:
		return fmt.Sprintf("stale only because upstream %s %s stale, and this plan does not rebuild it (select +%s)", where, is, p.g.Asset(int(b.Asset)).Key)
	}
	return "blocked"
}

// BlockedKey returns the key of b's partition ("" when unpartitioned).
func (p *Plan) BlockedKey(b Blocked) string {
	return partitionKey(p.g.Asset(int(b.Asset)), int(b.Partition))
}

type jsonCause struct {
	Kind      string `json:"kind"`
	Asset     string `json:"asset"`
	Partition string `json:"partition"`
}

type jsonStep struct {
	Asset      string      `json:"asset"`
	Partitions []string    `json:"partitions"`
	Status     string      `json:"status"`
	Causes     []jsonCause `json:"causes"`
}

type jsonBlocked struct {
	Asset     string `json:"asset"`
	Partition string `json:"partition"`
	Reason    string `json:"reason"`
}

// WriteJSON writes the plan as
//
//	{"steps": [{"asset", "partitions", "status", "causes": [{"kind", "asset", "partition"}]}],
//	 "blocked": [{"asset", "partition", "reason"}]}
//
// streaming one step at a time, so a plan of millions of steps needs no more memory.
func (p *Plan) WriteJSON(w io.Writer) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	enc := func(v any) error {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		_, err = bw.Write(b)
		return err
	}
	bw.WriteString(`{"steps": [`)
	n := 0
	for s := range p.Steps() {
		if n++; n > 1 {
			bw.WriteString(",")
		}
		bw.WriteString("\n  ")
		causes := []jsonCause{}
		for _, c := range p.StepCauses(s) {
			causes = append(causes, jsonCause{Kind: c.Kind.String(), Asset: string(c.Asset), Partition: c.Partition})
		}
		if err := enc(jsonStep{Asset: string(p.g.Asset(int(s.Asset)).Key), Partitions: p.PartitionKeys(s), Status: s.Status.String(), Causes: causes}); err != nil {
			return err
		}
	}
	bw.WriteString("\n], \"blocked\": [")
	for n, b := range p.Blocked {
		if n > 0 {
			bw.WriteString(",")
		}
		bw.WriteString("\n  ")
		if err := enc(jsonBlocked{Asset: string(p.g.Asset(int(b.Asset)).Key), Partition: p.BlockedKey(b), Reason: p.Reason(b)}); err != nil {
			return err
		}
	}
	bw.WriteString("\n]}\n")
	return bw.Flush()
}

// WriteText writes the plan for a person: per asset, runs of consecutive partitions
// with the same status and causes, then the blocked partitions with their reasons.
func (p *Plan) WriteText(w io.Writer) error {
	bw := bufio.NewWriter(w)
	assetsInPlan := 0
	for i, r := range p.Runs {
		if i == 0 || r.Asset != p.Runs[i-1].Asset {
			assetsInPlan++
		}
	}
	if len(p.Runs) == 0 {
		fmt.Fprintln(bw, "Nothing to materialize: every selected partition is fresh or blocked.")
	} else {
		fmt.Fprintf(bw, "Plan: %s in %s over %s.\n", plural(p.NumSteps(), "step"), plural(p.NumPartitions(), "partition"), plural(assetsInPlan, "asset"))
	}
	for start := 0; start < len(p.Runs); {
		a := p.Runs[start].Asset
		end, n, steps := start, 0, 0
		batch := max(p.g.Asset(int(a)).Batch.MaxPartitions, 1)
		for end < len(p.Runs) && p.Runs[end].Asset == a {
			n += int(p.Runs[end].Hi - p.Runs[end].Lo)
			steps += (int(p.Runs[end].Hi-p.Runs[end].Lo) + batch - 1) / batch
			end++
		}
		asset := p.g.Asset(int(a))
		kind := "unpartitioned"
		if asset.Partitions != nil {
			kind = asset.Partitions.Granularity().String()
		}
		fmt.Fprintf(bw, "\n%s (%s): %s in %s\n", asset.Key, kind, plural(n, "partition"), plural(steps, "step"))
		p.writeRuns(bw, p.Runs[start:end])
		start = end
	}
	if len(p.Blocked) > 0 {
		fmt.Fprintf(bw, "\nBlocked: %s\n", plural(len(p.Blocked), "partition"))
		// One line per run of consecutive partitions blocked the same way by
		// consecutive upstream partitions.
		for start := 0; start < len(p.Blocked); {
			b := p.Blocked[start]
			end := start + 1
			for end < len(p.Blocked) {
				prev, next := p.Blocked[end-1], p.Blocked[end]
				if next.Asset != b.Asset || next.Partition != prev.Partition+1 || next.Kind != b.Kind || next.Upstream != b.Upstream ||
					next.UpstreamPartition < prev.UpstreamPartition || next.UpstreamPartition > prev.UpstreamPartition+1 ||
					p.Reason(next) != p.reason(prev, int(next.UpstreamPartition), int(next.UpstreamPartition)+1) {
					break
				}
				end++
			}
			asset := p.g.Asset(int(b.Asset))
			reason := p.reason(b, int(b.UpstreamPartition), int(p.Blocked[end-1].UpstreamPartition)+1)
			fmt.Fprintf(bw, "  %s %s: %s\n", asset.Key, keyRange(asset, int(b.Partition), int(p.Blocked[end-1].Partition)+1), reason)
			start = end
		}
	}
	return bw.Flush()
}

// writeRuns prints one line per run of consecutive planned partitions that share
// status and causes.
func (p *Plan) writeRuns(w io.Writer, runs []Run) {
	a := int(runs[0].Asset)
	asset := p.g.Asset(a)
	type run struct {
		lo, hi int
		status Status
		causes string
	}
	var cur *run
	flush := func() {
		if cur == nil {
			return
		}
		line := fmt.Sprintf("  %-8s %s", cur.status, keyRange(asset, cur.lo, cur.hi))
		if cur.causes != "" {
			line += "  " + cur.causes
		}
		fmt.Fprintln(w, line)
	}
	for _, s := range runs {
		for i := int(s.Lo); i < int(s.Hi); i++ {
			var parts []string
			for _, c := range p.Causes(a, i) {
				if c.Kind == CauseCodeChanged || c.Kind == CauseDepsChanged {
					parts = append(parts, c.Kind.String())
				} else {
					parts = append(parts, fmt.Sprintf("%s %s %s", c.Kind, c.Asset, c.Partition))
				}
			}
			causes := strings.TrimSpace(strings.Join(parts, ", "))
			if cur != nil && cur.hi == i && cur.status == s.Status && cur.causes == causes {
				cur.hi++
				continue
			}
			flush()
			cur = &run{lo: i, hi: i + 1, status: s.Status, causes: causes}
		}
	}
	flush()
}

// keyRange prints partitions [lo, hi) of a as "first … last (n)".
func keyRange(a *assets.Asset, lo, hi int) string {
	if a.Partitions == nil {
		return "(unpartitioned)"
	}
	if hi-lo == 1 {
		return a.Partitions.Key(lo)
	}
	return fmt.Sprintf("%s … %s (%d)", a.Partitions.Key(lo), a.Partitions.Key(hi-1), hi-lo)
}

func plural(n int, word string) string {
	if n == 1 {
		return fmt.Sprintf("1 %s", word)
	}
	return fmt.Sprintf("%d %ss", n, word)
}
