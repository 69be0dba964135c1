package assets

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// Validate checks the definitions as a whole and returns every problem found, in
// definition order: bad keys, duplicate keys, unknown upstreams, cycles (with the
// cycle spelled out), incompatible mappings, bad policies, crons and timezones,
// and references to connections that do not exist. Positions are left empty; the
// loader fills them in.
func (d *Definitions) Validate() Errors {
	v := validator{defs: d, byKey: make(map[Key]int, len(d.Assets))}
	v.assets()
	v.cycles()
	v.schedules()
	v.connections()
	v.notifiers()
	return v.errs
}

type validator struct {
	defs  *Definitions
	byKey map[Key]int
	errs  Errors
}

func (v *validator) add(path string, asset Key, format string, args ...any) {
	v.errs = append(v.errs, &Error{Path: path, Asset: asset, Msg: fmt.Sprintf(format, args...)})
}

func (v *validator) assets() {
	for i, a := range v.defs.Assets {
		p := fmt.Sprintf("assets[%d]", i)
		if a == nil {
			v.add(p, "", "asset is nil")
			continue
		}
		if _, err := ParseKey(string(a.Key)); err != nil {
			v.add(p+".key", "", "%v", err)
			continue
		}
		if first, dup := v.byKey[a.Key]; dup {
			v.add(p+".key", a.Key, "duplicate asset key: already defined as assets[%d]", first)
			continue
		}
		v.byKey[a.Key] = i
	}
	for i, a := range v.defs.Assets {
		if a == nil || v.byKey[a.Key] != i {
			continue
		}
		v.asset(fmt.Sprintf("assets[%d]", i), a)
	}
}

func (v *validator) asset(p string, a *Asset) {
	k := a.Key
	seen := make(map[Key]bool, len(a.Deps))
	for j, dep := range a.Deps {
		dp := fmt.Sprintf("%s.deps[%d]", p, j)
		if dep.Asset == k {
			v.add(dp+".asset", k, "an asset cannot depend on itself")
			continue
		}
		if seen[dep.Asset] {
			v.add(dp+".asset", k, "duplicate dependency on %s", dep.Asset)
			continue
		}
		seen[dep.Asset] = true
		ui, ok := v.byKey[dep.Asset]
		if !ok {
			v.add(dp+".asset", k, "unknown upstream asset %q%s", dep.Asset, v.suggest(dep.Asset))
			continue
		}
		v.mapping(dp, a, v.defs.Assets[ui], dep)
	}

	if a.Compute == nil {
		if len(a.Deps) > 0 {
			v.add(p+".deps", k, "a source asset (no compute) cannot have deps: Freshet never builds it, so nothing upstream can make it stale; give it a compute, or drop the deps")
		}
		if a.Retries != (Retries{}) {
			v.add(p+".retries", k, "a source asset (no compute) is never run, so it cannot have retries")
		}
		if a.Batch.MaxPartitions != 0 {
			v.add(p+".batch", k, "a source asset (no compute) is never run, so it cannot be batched")
		}
	} else {
		v.compute(p+".compute", k, a.Compute)
		if a.Observe != nil {
			v.add(p+".observe", k, "only source assets (no compute) are observed; this asset is materialized")
		}
	}
	if a.Observe != nil {
		v.compute(p+".observe", k, a.Observe)
	}
	if a.Retries.Max < 0 {
		v.add(p+".retries.max", k, "must be 0 or more, got %d", a.Retries.Max)
	}
	if a.Retries.Backoff < 0 || a.Retries.MaxBackoff < 0 {
		v.add(p+".retries", k, "backoffs must not be negative")
	}
	if a.Retries.MaxBackoff != 0 && a.Retries.MaxBackoff < a.Retries.Backoff {
		v.add(p+".retries.max_backoff", k, "%s is less than backoff %s", a.Retries.MaxBackoff, a.Retries.Backoff)
	}
	if a.Timeout < 0 {
		v.add(p+".timeout", k, "must not be negative")
	}
	if a.Concurrency < 0 {
		v.add(p+".concurrency", k, "must be 0 (no limit) or more")
	}
	if a.Batch.MaxPartitions < 0 {
		v.add(p+".batch.max_partitions", k, "must be 1 or more")
	} else if a.Batch.MaxPartitions > 0 && a.Partitions == nil {
		v.add(p+".batch", k, "only partitioned assets can be batched")
	}
	if f := a.Freshness; f != nil {
		fp := p + ".freshness"
		switch {
		case f.Deadline != nil && (f.MaxLag != 0 || f.WarnLag != 0):
			v.add(fp, k, "give either max_lag (with optional warn_lag) or deadline, not both")
		case f.Deadline != nil:
			if err := parseCron(f.Deadline.Cron); err != nil {
				v.add(fp+".deadline.cron", k, "bad cron %q: %v", f.Deadline.Cron, err)
			}
			v.timezone(fp+".deadline.timezone", k, f.Deadline.Timezone)
		case f.MaxLag <= 0:
			v.add(fp+".max_lag", k, "must be a positive duration such as 26h")
		case f.WarnLag != 0 && (f.WarnLag < 0 || f.WarnLag >= f.MaxLag):
			v.add(fp+".warn_lag", k, "%s must be positive and less than max_lag %s", f.WarnLag, f.MaxLag)
		}
	}
}

// mapping checks that a dep's mapping fits the partitioning of both sides.
func (v *validator) mapping(dp string, down, up *Asset, dep Dep) {
	k := down.Key
	offsets := dep.StartOffset != 0 || dep.EndOffset != 0
	switch dep.Mapping {
	case "", MappingTime:
		switch {
		case offsets && (down.Partitions == nil || up.Partitions == nil):
			v.add(dp, k, "start_offset and end_offset need both %s and %s to be partitioned", k, up.Key)
		case dep.StartOffset > dep.EndOffset:
			v.add(dp+".start_offset", k, "start_offset %d is after end_offset %d", dep.StartOffset, dep.EndOffset)
		case dep.Mapping == MappingTime && down.Partitions == nil && up.Partitions != nil:
			v.add(dp+".mapping", k, "%s is unpartitioned, so it cannot map %s's partitions by time: use mapping: all or mapping: last", k, up.Key)
		}
	case MappingAll, MappingLast:
		switch {
		case up.Partitions == nil:
			v.add(dp+".mapping", k, "mapping %q needs a partitioned upstream, and %s is unpartitioned", dep.Mapping, up.Key)
		case down.Partitions != nil:
			v.add(dp+".mapping", k, "mapping %q is for an unpartitioned downstream, and %s is %s-partitioned: use the default time mapping", dep.Mapping, k, down.Partitions.Granularity())
		case offsets:
			v.add(dp, k, "start_offset and end_offset apply only to the time mapping")
		}
	default:
		v.add(dp+".mapping", k, "unknown mapping %q (want time, all or last)", dep.Mapping)
	}
}

func (v *validator) compute(p string, k Key, c Compute) {
	switch c := c.(type) {
	case CommandCompute:
		if len(c.Argv) == 0 || c.Argv[0] == "" {
			v.add(p+".command", k, "needs a program to run, as an argv list like [sh, script.sh, \"{partition}\"]")
		}
	case *CommandCompute:
		v.compute(p, k, *c)
	case SQLCompute:
		if c.File == "" {
			v.add(p+".sql", k, "needs a SQL file")
		}
		if c.Connection == "" {
			v.add(p+".connection", k, "needs a connection name")
		} else if _, ok := v.defs.Connections[c.Connection]; !ok {
			v.add(p+".connection", k, "unknown connection %q%s", c.Connection, listNames(v.defs.Connections))
		}
	case *SQLCompute:
		v.compute(p, k, *c)
	case HTTPCompute:
		if !strings.HasPrefix(c.URL, "http://") && !strings.HasPrefix(c.URL, "https://") {
			v.add(p+".http", k, "needs an http:// or https:// URL, got %q", c.URL)
		}
	case *HTTPCompute:
		v.compute(p, k, *c)
	case FuncCompute:
		if c.Fn == nil {
			v.add(p, k, "Go function %q is nil", c.Name)
		}
	case *FuncCompute:
		v.compute(p, k, *c)
	}
}

// parseCron checks a standard 5-field cron expression (or a descriptor like @daily).
// The timezone has its own field, so a TZ= or CRON_TZ= prefix is refused; robfig/cron
// v3.0.1 also panics on such a prefix not followed by a space.
func parseCron(s string) error {
	if strings.HasPrefix(s, "TZ=") || strings.HasPrefix(s, "CRON_TZ=") {
		return fmt.Errorf("put the timezone in the timezone field, not in the cron expression")
	}
	_, err := cron.ParseStandard(s)
	return err
}

func listNames[T any](m map[string]T) string {
	if len(m) == 0 {
		return " (no connections are defined)"
	}
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	return " (defined: " + strings.Join(names, ", ") + ")"
}

func (v *validator) timezone(p string, k Key, tz string) {
	if tz == "" {
		return
	}
	if _, err := time.LoadLocation(tz); err != nil || tz == "Local" {
		v.add(p, k, "unknown timezone %q: use an IANA name such as UTC or Europe/Berlin", tz)
	}
}

// suggest proposes a defined key close to an unknown one.
func (v *validator) suggest(unknown Key) string {
	best, bestDist := Key(""), 4
	for k := range v.byKey {
		if d := EditDistance(string(unknown), string(k)); d < bestDist || d == bestDist && k < best {
			best, bestDist = k, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// EditDistance is the Levenshtein distance between a and b, by bytes (asset keys are
// ASCII); it picks the did-you-mean suggestions for unknown keys.
func EditDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// cycles reports each dependency cycle once, spelled out, at the dep that closes it.
func (v *validator) cycles() {
	const (
		unvisited = iota
		onStack
		done
	)
	state := make([]uint8, len(v.defs.Assets))
	var stack []int
	var visit func(i int)
	visit = func(i int) {
		state[i] = onStack
		stack = append(stack, i)
		a := v.defs.Assets[i]
		for j, dep := range a.Deps {
			ui, ok := v.byKey[dep.Asset]
			if !ok || ui == i {
				continue
			}
			switch state[ui] {
			case unvisited:
				visit(ui)
			case onStack:
				var path []string
				for s := len(stack) - 1; s >= 0; s-- {
					path = append(path, string(v.defs.Assets[stack[s]].Key))
					if stack[s] == ui {
						break
					}
				}
				// path runs downstream → upstream; print it in dependency order.
				for l, r := 0, len(path)-1; l < r; l, r = l+1, r-1 {
					path[l], path[r] = path[r], path[l]
				}
				path = append(path, path[0])
				v.add(fmt.Sprintf("assets[%d].deps[%d].asset", i, j), a.Key,
					"dependency cycle: %s (each asset is built from the one before it)", strings.Join(path, " → "))
			}
		}
		stack = stack[:len(stack)-1]
		state[i] = done
	}
	for i, a := range v.defs.Assets {
		if a != nil && v.byKey[a.Key] == i && state[i] == unvisited {
			visit(i)
		}
	}
}

func (v *validator) schedules() {
	names := map[string]int{}
	for i, s := range v.defs.Schedules {
		p := fmt.Sprintf("schedules[%d]", i)
		if s.Name == "" {
			v.add(p+".name", "", "a schedule needs a name")
		} else if first, dup := names[s.Name]; dup {
			v.add(p+".name", "", "duplicate schedule name %q: already used by schedules[%d]", s.Name, first)
		} else {
			names[s.Name] = i
		}
		if err := parseCron(s.Cron); err != nil {
			v.add(p+".cron", "", "bad cron %q: %v", s.Cron, err)
		}
		v.timezone(p+".timezone", "", s.Timezone)
		if strings.TrimSpace(s.Select) == "" {
			v.add(p+".select", "", "a schedule needs a selection, such as \"*\"")
		}
		if s.Action != "" && s.Action != "materialize_stale" {
			v.add(p+".action", "", "unknown action %q (want materialize_stale)", s.Action)
		}
	}
}

func (v *validator) connections() {
	names := make([]string, 0, len(v.defs.Connections))
	for n := range v.defs.Connections {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		c := v.defs.Connections[n]
		p := "connections." + n
		if c.Postgres == nil {
			v.add(p, "", "needs a kind, such as postgres: {url_env: WAREHOUSE_URL}")
		} else if (c.Postgres.URL == "") == (c.Postgres.URLEnv == "") {
			v.add(p+".postgres", "", "give exactly one of url or url_env")
		}
	}
}

func (v *validator) notifiers() {
	for i, n := range v.defs.Notifiers {
		p := fmt.Sprintf("notifiers[%d]", i)
		kinds := 0
		for _, w := range []*WebhookNotifier{n.Webhook, n.Slack} {
			if w == nil {
				continue
			}
			kinds++
			if (w.URL == "") == (w.URLEnv == "") {
				v.add(p, "", "give exactly one of url or url_env")
			}
		}
		if n.Log {
			kinds++
		}
		if kinds != 1 {
			v.add(p, "", "a notifier is exactly one of log, webhook or slack")
		}
	}
}
