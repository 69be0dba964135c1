package gql

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/freshetdev/freshet/lineage"
	"github.com/freshetdev/freshet/store"
)

// Subscriptions poll the store: a run's steps, or the event log's watermark, a
// few times a second. The store is the one source of truth for every process
// serving the catalog (workers may run elsewhere), polling costs one indexed
// read per subscription per tick, and a subscriber that falls behind misses no
// change: each poll compares with what it last sent.
const subscriptionPoll = 200 * time.Millisecond

func (r *Resolver) Subscription() SubscriptionResolver { return &subscriptionResolver{r} }

type subscriptionResolver struct{ *Resolver }

// stepState is what a runEvents subscriber has seen of a step.
type stepState struct {
	status  store.StepStatus
	attempt int
}

func (r *subscriptionResolver) RunEvents(ctx context.Context, runID string) (<-chan *RunEvent, error) {
	id, err := parseUUID("run", runID)
	if err != nil {
		return nil, err
	}
	q := r.Engine.Store()
	if _, err := q.GetRun(ctx, id); err != nil {
		return nil, err
	}
	out := make(chan *RunEvent, 64)
	go func() {
		defer close(out)
		seen := map[uuid.UUID]stepState{}
		tick := time.NewTicker(subscriptionPoll)
		defer tick.Stop()
		for {
			run, err := q.GetRun(ctx, id)
			if err == nil {
				var steps []store.Step
				if steps, err = q.RunSteps(ctx, id); err == nil {
					if !r.sendSteps(ctx, out, run, steps, seen) {
						return
					}
					if run.Status.Done() {
						select {
						case out <- &RunEvent{RunID: runID, RunStatus: RunStatus(run.Status), At: time.Now()}:
						case <-ctx.Done():
						}
						return
					}
				}
			}
			if err != nil && ctx.Err() == nil {
				r.logger().Warn("runEvents: read the run", "run", runID, "error", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return out, nil
}

// sendSteps sends an event per step whose status or attempt changed since the
// last poll; false when the subscriber is gone.
func (r *subscriptionResolver) sendSteps(ctx context.Context, out chan<- *RunEvent, run *store.Run, steps []store.Step, seen map[uuid.UUID]stepState) bool {
	for i := range steps {
		st := &steps[i]
		now := stepState{st.Status, st.Attempt}
		if prev, ok := seen[st.ID]; ok && prev == now {
			continue
		}
		seen[st.ID] = now
		select {
		case out <- &RunEvent{RunID: run.ID.String(), RunStatus: RunStatus(run.Status), Step: &Step{s: st}, At: time.Now()}:
		case <-ctx.Done():
			return false
		}
	}
	return true
}

func (r *subscriptionResolver) AssetEvents(ctx context.Context, selection, after *string) (<-chan *MaterializationEvent, error) {
	sel := deref(selection)
	if sel == "" {
		sel = "*"
	}
	parsed, err := lineage.Parse(sel)
	if err != nil {
		return nil, err
	}
	q := r.Engine.Store()
	var last int64
	if after != nil {
		if last, err = strconv.ParseInt(*after, 10, 64); err != nil || last < 0 {
			return nil, fmt.Errorf("after: %q is not an event seq", *after)
		}
	} else if last, err = q.Watermark(ctx); err != nil {
		return nil, err
	}
	out := make(chan *MaterializationEvent, 64)
	go func() {
		defer close(out)
		tick := time.NewTicker(subscriptionPoll)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			events, head, err := r.eventsSince(ctx, q, last)
			if err != nil {
				if ctx.Err() == nil {
					r.logger().Warn("assetEvents: read the event log", "error", err)
				}
				continue
			}
			// The selection is resolved against the definitions served now, so
			// that a reload adds or drops assets from it.
			g := r.Engine.Project().Graph
			selected, err := parsed.Resolve(g)
			if err != nil && !errors.As(err, new(*lineage.UnknownAssetError)) {
				r.logger().Warn("assetEvents: selection", "selection", sel, "error", err)
			}
			for i := range events {
				e := &events[i]
				if a, ok := g.Index(e.Asset); !ok || selected == nil || !selected[a] {
					continue
				}
				select {
				case out <- &MaterializationEvent{e: e}:
				case <-ctx.Done():
					return
				}
			}
			last = head
		}
	}()
	return out, nil
}

// eventsSince returns the materializations, observations and failures recorded
// after seq, oldest first, and the newest seq read.
func (r *subscriptionResolver) eventsSince(ctx context.Context, q store.Store, seq int64) ([]store.Event, int64, error) {
	head, err := q.Watermark(ctx)
	if err != nil || head <= seq {
		return nil, seq, err
	}
	var newer []store.Event
	before := int64(0)
	for {
		page, err := q.Events(ctx, store.EventQuery{Before: before, Limit: 1000,
			Kinds: []store.EventKind{store.Materialization, store.Observation, store.Failure}})
		if err != nil {
			return nil, seq, fmt.Errorf("read events after %d: %w", seq, err)
		}
		done := false
		for _, e := range page.Events {
			if e.Seq <= seq {
				done = true
				break
			}
			if e.Seq <= head {
				newer = append(newer, e)
			}
		}
		if done || page.Next == 0 {
			break
		}
		before = page.Next
	}
	for i, j := 0, len(newer)-1; i < j; i, j = i+1, j-1 {
		newer[i], newer[j] = newer[j], newer[i]
	}
	return newer, head, nil
}
