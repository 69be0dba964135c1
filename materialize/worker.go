package materialize

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/hashicorp/go-hclog"

	"github.com/freshetdev/freshet/assets"
	"github.com/freshetdev/freshet/graph"
	"github.com/freshetdev/freshet/store"
)

// QueueStore is a store with the engine's queue, the coordination between the
// processes serving the catalog and the batched reads: what workers, the
// scheduler and the API need. Both drivers implement it.
type QueueStore interface {
	store.Store
	store.Queue
	store.Coordination
	store.BatchReader
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
	// Drain is how long the attempts in progress get to finish, once Run's
	// context ends, before they are stopped and handed back (0: stopped at
	// once). No step is claimed meanwhile.
	Drain time.Duration
	// Metrics counts the attempts (nil: not counted).
	Metrics *Metrics

	mu     sync.Mutex
	g      *graph.Graph
	caps   map[assets.Key]int // the concurrency caps of capsOf
	capsOf *graph.Graph
	// attempting counts the slots running an attempt (not waiting on a report).
	attempting atomic.Int32
	running    map[uuid.UUID]*attemptRun
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

// Run works until ctx ends. Then it claims nothing more, gives the attempts in
// progress up to Drain to finish (their leases are still renewed), stops those
// still running and reports them as failed with a retry, so that another worker
// takes them at once instead of after their lease; it returns nil after a clean
// stop.
func (w *Worker) Run(ctx context.Context) error {
	w.defaults()
	wake, err := w.Store.Listen(ctx)
	if err != nil {
		return fmt.Errorf("worker %s: listen for ready steps: %w", w.Name, err)
	}
	// The attempts (and the heartbeats that keep their leases) run under a
	// context of their own, which ends once ctx has and the drain is over.
	attemptsCtx, stopAttempts := context.WithCancel(context.WithoutCancel(ctx))
	defer stopAttempts()
	drained := make(chan struct{})
	go func() {
		defer stopAttempts()
		select {
		case <-ctx.Done():
		case <-drained:
			return
		}
		w.drain()
	}()
	defer close(drained)
	// Slots hand their reports to one completer, which records them in batches;
	// it ends after the last slot (deferred calls run last first).
	reports := make(chan report)
	var completer sync.WaitGroup
	completer.Go(func() { w.complete(ctx, reports) })
	defer completer.Wait()
	defer close(reports)
	var wg sync.WaitGroup
	defer wg.Wait()

	wg.Go(func() { w.maintain(attemptsCtx) })

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
				wg.Go(func() {
					w.work(attemptsCtx, c, reports)
					slots <- struct{}{}
					select {
					case freed <- struct{}{}:
					default:
					}
				})
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
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.capsOf != w.g {
		// Once per definitions: a claim comes with every report batch.
		w.caps, w.capsOf = nil, w.g
		for a := range w.g.Len() {
			if c := w.g.Asset(a).Concurrency; c > 0 {
				if w.caps == nil {
					w.caps = map[assets.Key]int{}
				}
				w.caps[w.g.Asset(a).Key] = c
			}
		}
	}
	// The store only reads the map, so the claims share it.
	return store.ClaimRequest{Worker: w.Name, Limit: limit, Lease: w.Lease, Concurrency: w.caps}
}

// drain waits up to Drain for the attempts in progress to end by themselves.
func (w *Worker) drain() {
	if w.Drain <= 0 || w.attempting.Load() == 0 {
		return
	}
	w.Logger.Info("stopping: letting the steps in progress finish", "steps", w.attempting.Load(), "for at most", w.Drain)
	deadline := time.NewTimer(w.Drain)
	defer deadline.Stop()
	poll := time.NewTicker(50 * time.Millisecond)
	defer poll.Stop()
	for w.attempting.Load() > 0 {
		select {
		case <-deadline.C:
			w.Logger.Warn("stopping: steps still running after the drain: stopping them and handing them back", "steps", w.attempting.Load())
			return
		case <-poll.C:
		}
	}
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

// report is a slot's attempt result on its way to the completer, which answers
// on next with a step claimed for the slot, or nil.
type report struct {
	res  store.StepResult
	next chan *store.ClaimedStep
}

// maxReportBatch bounds how many reports one store call records; reportGather
// is how long the completer waits for more reports, while attempts are still in
// progress, before it records those it has.
const (
	maxReportBatch = 256
	reportGather   = time.Millisecond
)

// work runs a claimed step and, while the worker runs, the steps claimed with its
// report, one after the other in this slot.
func (w *Worker) work(ctx context.Context, c store.ClaimedStep, reports chan<- report) {
	for {
		w.attempting.Add(1)
		started := time.Now()
		res, ok := w.attempt(ctx, c)
		w.attempting.Add(-1)
		if !ok {
			return
		}
		w.Metrics.stepEnded(res.Outcome, time.Since(started))
		next := make(chan *store.ClaimedStep, 1)
		reports <- report{res: res, next: next}
		claimed := <-next
		if claimed == nil {
			return
		}
		c = *claimed
	}
}

// complete records the slots' reports. It takes every report that is waiting,
// and, while other attempts are in progress, those that arrive within
// reportGather, records them with one FinishSteps call (one transaction, in the
// common case) that also claims a step for each slot they free, and hands those
// out. Reports that arrive while a call is in flight make the next batch. A busy
// worker thus records many steps per commit, and one whose other slots are idle
// (a chain of steps) reports each step at once.
func (w *Worker) complete(ctx context.Context, reports <-chan report) {
	gather := time.NewTimer(reportGather)
	gather.Stop() // since Go 1.23 a stopped or reset timer delivers no stale tick
	for first := range reports {
		batch := []report{first}
		gather.Reset(reportGather)
	collect:
		for len(batch) < maxReportBatch {
			select {
			case r, ok := <-reports:
				if !ok {
					break collect
				}
				batch = append(batch, r)
				continue
			default:
			}
			if w.attempting.Load() == 0 {
				break collect // every other slot waits on this batch, or is free
			}
			select {
			case r, ok := <-reports:
				if !ok {
					break collect
				}
				batch = append(batch, r)
			case <-gather.C:
				break collect
			}
		}
		gather.Stop()
		claimed := w.finish(ctx, batch)
		for i, r := range batch {
			if i < len(claimed) {
				r.next <- &claimed[i]
			} else {
				r.next <- nil
			}
		}
	}
}

// finish records a batch of reports and returns the steps claimed for the slots
// they free (none once the worker is stopping). A call that fails (the database
// restarting, the network) is tried again for up to a lease: the steps' work is
// done and should not be redone for want of a write. That is safe because
// reports are fenced: those an earlier try did record are refused with
// ErrLeaseLost the next time. When the worker is stopping it still reports, with
// a context of its own, so that the steps do not wait for their leases to expire.
func (w *Worker) finish(ctx context.Context, batch []report) []store.ClaimedStep {
	results := make([]store.StepResult, len(batch))
	for i, r := range batch {
		results[i] = r.res
	}
	var next *store.ClaimRequest
	if ctx.Err() == nil {
		next = ptr(w.claimRequest(len(batch)))
	}
	budget := w.Lease
	if ctx.Err() != nil {
		budget = stopReportBudget
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), budget)
	defer cancel()
	wait := 50 * time.Millisecond
	for {
		done, err := w.Store.FinishSteps(rctx, results, next)
		if err == nil {
			for i, err := range done.Errors {
				if err != nil {
					w.refused(rctx, results[i], err)
				}
			}
			return done.Claimed
		}
		if rctx.Err() != nil {
			for _, res := range results {
				w.Logger.Error("report step end", "step", res.StepID, "attempt", res.Attempt, "error", err)
			}
			return nil
		}
		w.Logger.Warn("report step ends: trying again", "steps", len(results), "error", err, "in", wait)
		select {
		case <-rctx.Done():
		case <-time.After(wait):
		}
		wait = min(2*wait, 2*time.Second)
		if ctx.Err() != nil {
			next = nil
		}
	}
}

// refused logs a report the store did not record and keeps the log lines it
// carried, which say what the attempt did.
func (w *Worker) refused(ctx context.Context, res store.StepResult, err error) {
	if errors.Is(err, store.ErrLeaseLost) {
		w.Logger.Warn("report step end: refused", "step", res.StepID, "attempt", res.Attempt, "error", err)
	} else {
		w.Logger.Error("report step end", "step", res.StepID, "attempt", res.Attempt, "error", err)
	}
	if len(res.Log) > 0 {
		lines := append(res.Log, store.LogLine{Attempt: res.Attempt, Stream: store.System, At: time.Now(),
			Text: fmt.Sprintf("the end of attempt %d was not recorded: %v", res.Attempt, err)})
		if err := w.Store.AppendStepLog(ctx, res.StepID, lines, w.LogCap); err != nil {
			w.Logger.Warn("write step log", "step", res.StepID, "error", err)
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

	if !c.Force && c.Materialized {
		fresh, err := stillFresh(actx, w.Store, g, a, c.Partitions, w.Now())
		if err != nil {
			w.Logger.Warn("pre-start check", "step", c.ID, "asset", c.Asset, "error", err)
		} else if fresh {
			res.Outcome = store.OutcomeSkippedFresh
			return res, true
		}
	}

	logs := newStepLog(w.Store, c.ID, c.Attempt, w.LogCap, w.Logger)
	defer func() {
		if ok {
			res.Log, res.LogCap = logs.handOver(), w.LogCap
		} else {
			logs.close()
		}
	}()
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
