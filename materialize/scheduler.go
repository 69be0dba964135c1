package materialize

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/freshetdev/freshet/assets"
	"github.com/freshetdev/freshet/store"
)

// Scheduler fires the schedules of the served definitions: at each tick, on the
// leader only, it launches "materialize stale" of the schedule's selection, up
// to the newest complete partition.
//
// Each tick is recorded once, by (schedule, tick time), before anything is
// launched for it, so that two processes that both believe they lead (around a
// handover) fire it once between them. Ticks missed while no process led are
// evaluated once, on the first check after: the newest of them fires, the
// others are passed over (a run for the newest covers what they would have
// built). A schedule that has never ticked starts from when this process first
// saw it, so adding one does not fire a tick from the past.
type Scheduler struct {
	Engine *Engine
	Leader interface{ IsLeader() bool }
	Store  store.Coordination
	Poll   time.Duration // how often to check (0: 1s)
	Logger hclog.Logger  // nil: no logging

	firstSeen map[string]time.Time
}

// Run checks the schedules until ctx ends.
func (s *Scheduler) Run(ctx context.Context) error {
	if s.Poll <= 0 {
		s.Poll = time.Second
	}
	if s.Logger == nil {
		s.Logger = hclog.NewNullLogger()
	}
	s.firstSeen = map[string]time.Time{}
	tick := time.NewTicker(s.Poll)
	defer tick.Stop()
	for {
		if s.Leader.IsLeader() {
			if err := s.check(ctx); err != nil && ctx.Err() == nil {
				s.Logger.Warn("check schedules", "error", err)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// check fires every schedule whose newest due tick is not recorded yet.
func (s *Scheduler) check(ctx context.Context) error {
	p := s.Engine.Project()
	if len(p.Defs.Schedules) == 0 {
		return nil
	}
	now := s.Engine.Now()
	last, err := s.Store.LastTicks(ctx)
	if err != nil {
		return fmt.Errorf("read the last ticks: %w", err)
	}
	for _, sched := range p.Defs.Schedules {
		if _, ok := s.firstSeen[sched.Name]; !ok {
			s.firstSeen[sched.Name] = now
		}
		cron, err := sched.ParseCron()
		if err != nil {
			s.Logger.Error("schedule cannot run", "schedule", sched.Name, "error", err)
			continue
		}
		due, ok := cron.Latest(now)
		if !ok {
			continue
		}
		since := s.firstSeen[sched.Name]
		if t, ok := last[sched.Name]; ok {
			since = t.At
		}
		if !due.After(since) {
			continue // fired already, or no tick since the schedule was first seen
		}
		s.fire(ctx, sched, due)
	}
	return nil
}

// fire records the tick and, if this process recorded it first, launches the
// schedule's run and records what became of it.
func (s *Scheduler) fire(ctx context.Context, sched assets.Schedule, at time.Time) {
	log := s.Logger.With("schedule", sched.Name, "tick", at.UTC().Format(time.RFC3339))
	recorded, err := s.Store.RecordTick(ctx, store.Tick{Schedule: sched.Name, At: at, Status: store.TickStarted})
	if err != nil {
		log.Warn("record the tick", "error", err)
		return
	}
	if !recorded {
		return // another process fired it
	}
	sel := sched.Select
	if sel == "" {
		sel = "*"
	}
	t := store.Tick{Schedule: sched.Name, At: at}
	run, _, err := s.Engine.Launch(ctx, LaunchRequest{
		PlanRequest: PlanRequest{Selection: sel}, Trigger: store.TriggerSchedule, ScheduleName: sched.Name,
	})
	switch {
	case errors.Is(err, ErrNothingToDo):
		t.Status, t.Reason = store.TickSkipped, "nothing is missing or stale in "+sel
		log.Info("tick: nothing to do")
	case err != nil:
		t.Status, t.Reason = store.TickFailed, err.Error()
		log.Error("tick failed", "error", err)
	default:
		t.Status, t.RunID = store.TickLaunched, run.ID
		log.Info("tick: run launched", "run", run.ID, "steps", len(run.Steps))
	}
	if err := s.Store.UpdateTick(context.WithoutCancel(ctx), t); err != nil {
		log.Warn("record what the tick did", "error", err)
	}
}
