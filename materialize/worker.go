package materialize

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/hashicorp/go-hclog"

	"github.com/freshetdev/freshet/assets"
	"github.com/freshetdev/freshet/graph"
	"github.com/freshetdev/freshet/store"
)

// QueueStore is a store with the engine's queue: what workers need.
type QueueStore interface {
	store.Store
	store.Queue
}

// Worker defaults.
const (
	DefaultLease     = 30 * time.Second
	DefaultPoll      = time.Second
	DefaultLogCap    = 10 << 20
	DefaultLogFlush  = 250 * time.Millisecond
	stopReportBudget = 10 * time.Second
)

// Why a running attempt's context ends, besides its timeout.
var (
	errTimeout         = errors.New("timed out")
	errCancelRequested = errors.New("canceled on request")
	errLeaseLost       = errors.New("lease lost")
	errWorkerStopping  = errors.New("worker stopping")
)

// Worker runs ready steps from a store: it claims them under a lease it renews,
// checks each is still needed, runs it with its executor, records its log and
// reports its end, retrying failures as the asset's policy says. Any number of
// workers may share a PostgreSQL store; they are woken by the store's
// notifications and poll besides.
type Worker struct {
	Store QueueStore
	// Dir is the definitions' directory: commands run there.
	Dir       string
	Executors *Executors
	// Parallel is how many steps run at once (0: 1).
	Parallel int
	// Name identifies the worker in leases and attempts (default host:pid:random).
	Name   string
	Lease  time.Duration // how long a claim holds without a heartbeat (0: DefaultLease)
	Poll   time.Duration // how often to look for work without a notification (0: DefaultPoll)
	LogCap int64         // bytes of log kept per step (0: DefaultLogCap)
	Logger hclog.Logger  // nil: no logging
	// Now is the planning clock for the pre-start check (nil: time.Now).
	Now func() time.Time

	mu      sync.Mutex
	g       *graph.Graph
	running map[uuid.UUID]*attemptRun
}

// attemptRun is one attempt in progress.
type attemptRun struct {
	lease  store.Lease
	cancel context.CancelCauseFunc
}

// NewWorker returns a worker over s for the assets of g.
func NewWorker(s QueueStore, g *graph.Graph, dir string, ex *Executors) *Worker {
	return &Worker{Store: s, g: g, Dir: dir, Executors: ex}
}

// SetGraph switches the worker to new definitions; attempts in progress keep the
// ones they started with.
func (w *Worker) SetGraph(g *graph.Graph) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.g = g
}

func (w *Worker) graph() *graph.Graph {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.g
}

func (w *Worker) defaults() {
	if w.Parallel <= 0 {
		w.Parallel = 1
	}
	if w.Lease <= 0 {
		w.Lease = DefaultLease
	}
	if w.Poll <= 0 {
		w.Poll = DefaultPoll
	}
	if w.LogCap <= 0 {
		w.LogCap = DefaultLogCap
	}
	if w.Logger == nil {
		w.Logger = hclog.NewNullLogger()
	}
	if w.Name == "" {
		w.Name = DefaultWorkerName()
	}
	if w.Now == nil {
		w.Now = time.Now
	}
	w.running = map[uuid.UUID]*attemptRun{}
}

// DefaultWorkerName is host:pid:random, unique per process and run.
func DefaultWorkerName() string {
	host, _ := os.Hostname()
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%s:%d:%s", host, os.Getpid(), hex.EncodeToString(b))
}

// Run works until ctx ends. Then it stops the attempts in progress and reports
// them as failed with a retry, so that another worker takes them at once instead
// of after their lease; it returns nil after a clean stop.
func (w *Worker) Run(ctx context.Context) error {
	w.defaults()
	wake, err := w.Store.Listen(ctx)
	if err != nil {
		return fmt.Errorf("worker %s: listen for ready steps: %w", w.Name, err)
	}
	var wg sync.WaitGroup
	defer wg.Wait()

	wg.Add(1)
	go func() {
		defer wg.Done()
		w.maintain(ctx)
	}()

	slots := make(chan struct{}, w.Parallel) // a token per free slot
	for range w.Parallel {
		slots <- struct{}{}
	}
	freed := make(chan struct{}, 1)
	poll := time.NewTicker(w.Poll)
	defer poll.Stop()
	for {
		// Claim as many steps as there are free slots.
		free := len(slots)
		if free > 0 {
			claimed, err := w.Store.ClaimSteps(ctx, w.claimRequest(free))
			if err != nil && ctx.Err() == nil {
				w.Logger.Warn("claim steps", "error", err)
			}
			for _, c := range claimed {
				<-slots
				wg.Add(1)
				go func() {
					defer wg.Done()
					w.work(ctx, c)
					slots <- struct{}{}
					select {
					case freed <- struct{}{}:
					default:
					}
				}()
			}
			if len(claimed) == free && free > 0 {
				continue // there may be more
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-wake:
		case <-freed:
		case <-poll.C:
		}
	}
}

func (w *Worker) claimRequest(limit int) store.ClaimRequest {
	req := store.ClaimRequest{Worker: w.Name, Limit: limit, Lease: w.Lease}
	g := w.graph()
	for a := range g.Len() {
		if c := g.Asset(a).Concurrency; c > 0 {
			if req.Concurrency == nil {
				req.Concurrency = map[assets.Key]int{}
			}
			req.Concurrency[g.Asset(a).Key] = c
		}
	}
	return req
}

// maintain renews the leases of the attempts in progress, stops those whose lease
// was lost or whose cancel was requested, and puts back the steps of workers that
// died (expired leases).
func (w *Worker) maintain(ctx context.Context) {
	beat := time.NewTicker(w.Lease / 3)
	defer beat.Stop()
	reap := time.NewTicker(w.Lease / 2)
	defer reap.Stop()
	w.expire(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-beat.C:
			w.heartbeat(ctx)
		case <-reap.C:
			w.expire(ctx)
		}
	}
}

func (w *Worker) heartbeat(ctx context.Context) {
	w.mu.Lock()
	runs := make([]*attemptRun, 0, len(w.running))
	leases := make([]store.Lease, 0, len(w.running))
	for _, r := range w.running {
		runs = append(runs, r)
		leases = append(leases, r.lease)
	}
	w.mu.Unlock()
	if len(leases) == 0 {
		return
	}
	states, err := w.Store.Heartbeat(ctx, w.Name, leases, w.Lease)
	if err != nil {
		if ctx.Err() == nil {
			w.Logger.Warn("renew leases", "steps", len(leases), "error", err)
		}
		return
	}
	for i, st := range states {
		switch {
		case !st.Held:
			runs[i].cancel(errLeaseLost)
		case st.CancelRequested:
			runs[i].cancel(errCancelRequested)
		}
	}
}

func (w *Worker) expire(ctx context.Context) {
	expired, err := w.Store.ExpireLeases(ctx)
	if err != nil {
		if ctx.Err() == nil {
			w.Logger.Warn("expire leases", "error", err)
		}
		return
	}
	for _, e := range expired {
		w.Logger.Warn("lease expired", "step", e.StepID, "run", e.RunID, "attempt", e.Attempt, "worker", e.Worker, "now", e.Status)
	}
}

// work runs a claimed step and, while the worker runs, the steps claimed with its
// report, one after the other in this slot.
func (w *Worker) work(ctx context.Context, c store.ClaimedStep) {
	for {
		res, ok := w.attempt(ctx, c)
		if !ok {
			return
		}
		if ctx.Err() == nil {
			res.ClaimNext = ptr(w.claimRequest(1))
		}
		fin, err := w.finish(ctx, res)
		if err != nil {
			w.Logger.Error("report step end", "step", c.ID, "asset", c.Asset, "attempt", c.Attempt, "error", err)
			return
		}
		if len(fin.Claimed) == 0 {
			return
		}
		c = fin.Claimed[0]
	}
}

// finish reports res. A report that fails (the database restarting, the network)
// is tried again for up to a lease: the step's work is done and should not be
// redone for want of a write. That is safe because reports are fenced: if an
// earlier try did commit, the next one is refused with ErrLeaseLost. When the
// worker is stopping it still reports, with a context of its own, so that the step
// does not wait for its lease to expire.
func (w *Worker) finish(ctx context.Context, res store.StepResult) (*store.FinishResult, error) {
	budget := w.Lease
	if ctx.Err() != nil {
		budget = stopReportBudget
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), budget)
	defer cancel()
	wait := 50 * time.Millisecond
	for {
		fin, err := w.Store.FinishStep(rctx, res)
		if err == nil || errors.Is(err, store.ErrLeaseLost) || rctx.Err() != nil {
			return fin, err
		}
		var bad *store.BadEventsError
		if errors.As(err, &bad) {
			return nil, err
		}
		w.Logger.Warn("report step end: trying again", "step", res.StepID, "error", err, "in", wait)
		select {
		case <-rctx.Done():
			return nil, err
		case <-time.After(wait):
		}
		wait = min(2*wait, 2*time.Second)
		if ctx.Err() != nil {
			res.ClaimNext = nil
		}
	}
}

// attempt runs one claimed attempt and returns its result; ok is false when
// nothing may be reported (the lease was lost).
func (w *Worker) attempt(ctx context.Context, c store.ClaimedStep) (res store.StepResult, ok bool) {
	res = store.StepResult{StepID: c.ID, Attempt: c.Attempt, Worker: w.Name}
	g := w.graph()
	a, known := g.Index(c.Asset)
	if !known {
		res.Outcome, res.Error = store.OutcomeFailed, fmt.Sprintf("asset %s is no longer defined", c.Asset)
		return res, true
	}
	asset := g.Asset(a)
	if asset.IsSource() {
		res.Outcome, res.Error = store.OutcomeFailed, fmt.Sprintf("asset %s is a source now: Freshet cannot build it", c.Asset)
		return res, true
	}

	actx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	w.mu.Lock()
	w.running[c.ID] = &attemptRun{lease: store.Lease{StepID: c.ID, Attempt: c.Attempt}, cancel: cancel}
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		delete(w.running, c.ID)
		w.mu.Unlock()
	}()

	if !c.Force {
		fresh, err := stillFresh(actx, w.Store, g, a, c.Partitions, w.Now())
		if err != nil {
			w.Logger.Warn("pre-start check", "step", c.ID, "asset", c.Asset, "error", err)
		} else if fresh {
			res.Outcome = store.OutcomeSkippedFresh
			return res, true
		}
	}

	logs := newStepLog(w.Store, c.ID, c.Attempt, w.LogCap, w.Logger)
	defer logs.close()
	inv := Invocation{Asset: asset, Partitions: c.Partitions, RunID: c.RunID, StepID: c.ID, Attempt: c.Attempt, Dir: w.Dir}
	if p := asset.Partitions; p != nil {
		lo, hi, err := stepRanges(g, a, c.Partitions)
		if err != nil {
			res.Outcome, res.Error = store.OutcomeFailed, err.Error()
			return res, true
		}
		inv.Start, _ = p.Window(lo)
		_, inv.End = p.Window(hi - 1)
	}
	ex, err := w.Executors.For(asset.Compute)
	if err != nil {
		res.Outcome, res.Error = store.OutcomeFailed, err.Error()
		logs.Line(store.System, err.Error())
		return res, true
	}
	logs.Line(store.System, fmt.Sprintf("attempt %d of %d by %s", c.Attempt, c.MaxAttempts, w.Name))
	ectx := actx
	if asset.Timeout > 0 {
		var stop context.CancelFunc
		ectx, stop = context.WithTimeoutCause(actx, asset.Timeout, errTimeout)
		defer stop()
	}
	started := time.Now()
	out, err := ex.Execute(ectx, inv, logs)
	took := time.Since(started).Round(time.Millisecond)
	if err == nil {
		logs.Line(store.System, fmt.Sprintf("succeeded in %s", took))
		res.Outcome = store.OutcomeSucceeded
		for _, key := range c.Partitions {
			res.Events = append(res.Events, store.Event{
				Kind: store.Materialization, Asset: c.Asset, Partition: key,
				RunID: c.RunID, StepID: c.ID, DataVersion: out.DataVersion, Metadata: out.Metadata,
				InputSeq: c.InputSeq,
			})
		}
		return res, true
	}
	res.Error = err.Error()
	var exit *ExitError
	if errors.As(err, &exit) {
		res.ExitCode = &exit.Code
	}
	cause := context.Cause(ectx)
	switch {
	case errors.Is(cause, errLeaseLost):
		w.Logger.Warn("lease lost: stopped the attempt", "step", c.ID, "asset", c.Asset, "attempt", c.Attempt)
		return res, false
	case errors.Is(cause, errCancelRequested):
		logs.Line(store.System, "canceled on request")
		res.Outcome, res.Error = store.OutcomeCanceled, "canceled on request"
		return res, true
	case errors.Is(cause, errTimeout):
		res.Outcome = store.OutcomeTimedOut
		res.Error = fmt.Sprintf("timed out after %s", asset.Timeout)
	case ctx.Err() != nil:
		// The worker is stopping: the attempt did not fail on its own, so another
		// worker may take it at once.
		logs.Line(store.System, "worker stopping: attempt abandoned")
		res.Outcome, res.Error = store.OutcomeFailed, fmt.Sprintf("worker %s stopped during the attempt", w.Name)
		res.Retry = true
		return res, true
	default:
		res.Outcome = store.OutcomeFailed
	}
	if c.Attempt < c.MaxAttempts {
		res.Retry = true
		res.RetryAfter = backoff(asset.Retries, c.Attempt, nil)
		logs.Line(store.System, fmt.Sprintf("attempt %d failed after %s: %s; retrying in %s", c.Attempt, took, res.Error, res.RetryAfter.Round(time.Millisecond)))
	} else {
		logs.Line(store.System, fmt.Sprintf("attempt %d failed after %s: %s; no attempts left", c.Attempt, took, res.Error))
	}
	return res, true
}

func ptr[T any](v T) *T { return &v }
