package gql

import (
	"context"
	"time"

	"github.com/freshetdev/freshet/assets"
	"github.com/freshetdev/freshet/materialize"
	"github.com/freshetdev/freshet/store"
)

func (r *Resolver) Schedule() ScheduleResolver { return &scheduleResolver{r} }

type scheduleResolver struct{ *Resolver }

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
	board := make([]materialize.AssetFreshness, 0, len(all))
	for _, f := range all {
		board = append(board, f)
	}
	materialize.SortWorstFirst(board)
	out := make([]*FreshnessRow, len(board))
	for i, f := range board {
		out[i] = &FreshnessRow{Asset: &Asset{idx: f.Asset, def: g.Asset(f.Asset)}, Freshness: freshnessOut(f)}
	}
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
