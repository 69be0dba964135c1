package gql

import (
	"context"
	"sort"
	"time"

	"github.com/freshetdev/freshet/assets"
	"github.com/freshetdev/freshet/lineage"
	"github.com/freshetdev/freshet/store"
)

func (r *Resolver) Schedule() ScheduleResolver { return &scheduleResolver{r} }

type scheduleResolver struct{ *Resolver }

// statusRank orders the board: the worst first.
var statusRank = map[lineage.FreshnessStatus]int{lineage.FreshnessFail: 0, lineage.FreshnessWarn: 1, lineage.FreshnessUnknown: 2, lineage.FreshnessPass: 3}

func (r *queryResolver) FreshnessBoard(ctx context.Context) ([]*FreshnessRow, error) {
	v := r.viewOf(ctx)
	g, _, err := v.state(ctx)
	if err != nil {
		return nil, err
	}
	all, err := v.freshness(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]*FreshnessRow, 0, len(all))
	for a, f := range all {
		out = append(out, &FreshnessRow{Asset: &Asset{idx: a, def: g.Asset(a)}, Freshness: freshnessOut(f)})
	}
	sort.Slice(out, func(i, j int) bool {
		fi, fj := all[out[i].Asset.idx], all[out[j].Asset.idx]
		if ri, rj := statusRank[fi.Status], statusRank[fj.Status]; ri != rj {
			return ri < rj
		}
		if fi.Lag != fj.Lag {
			return fi.Lag > fj.Lag
		}
		return fi.Asset < fj.Asset
	})
	return out, nil
}

func (r *queryResolver) FreshnessEvents(ctx context.Context, since *time.Time, asset *string, first *int) ([]*FreshnessEvent, error) {
	n, err := pageSize("first", first, 100, store.MaxFreshnessLimit)
	if err != nil {
		return nil, err
	}
	q := store.FreshnessQuery{Asset: assets.Key(deref(asset)), Limit: n}
	if since != nil {
		q.Since = *since
	}
	list, err := r.Engine.Store().FreshnessEvents(ctx, q)
	if err != nil {
		return nil, err
	}
	out := make([]*FreshnessEvent, len(list))
	for i, c := range list {
		out[i] = freshnessEventOut(c)
	}
	return out, nil
}

func (r *queryResolver) Schedules(ctx context.Context) ([]*Schedule, error) {
	last, err := r.Engine.Store().LastTicks(ctx)
	if err != nil {
		return nil, err
	}
	now := r.Engine.Now()
	scheds := r.Engine.Project().Defs.Schedules
	out := make([]*Schedule, len(scheds))
	for i, s := range scheds {
		out[i] = &Schedule{s: s}
		if c, err := s.ParseCron(); err == nil {
			if next := c.Next(now); !next.IsZero() {
				out[i].next = &next
			}
		}
		if t, ok := last[s.Name]; ok {
			out[i].last = tickOut(t)
		}
	}
	return out, nil
}

func (r *scheduleResolver) Ticks(ctx context.Context, obj *Schedule, first *int) ([]*ScheduleTick, error) {
	n, err := pageSize("first", first, 10, store.MaxTickLimit)
	if err != nil {
		return nil, err
	}
	ticks, err := r.Engine.Store().Ticks(ctx, obj.s.Name, n)
	if err != nil {
		return nil, err
	}
	out := make([]*ScheduleTick, len(ticks))
	for i, t := range ticks {
		out[i] = tickOut(t)
	}
	return out, nil
}
