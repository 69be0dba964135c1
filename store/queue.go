package store

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"

	"github.com/freshetdev/freshet/assets"
)

// Queue is the engine's persistence: runs, their steps and the attempts of each,
// step logs and backfills. Every state change is a small row write in one
// transaction, never a rewrite of a whole run; everything a step's end changes
// (its events in the log, the partition state, the step, its dependents, the run)
// commits together. Any number of workers in any number of processes may use one
// PostgreSQL store at once; a SQLite store serves one process.
//
// The guarantees the conformance suite checks:
//   - At most one step per (asset, partition) is queued or running across all runs:
//     a step holds an in-flight row per partition (a primary key in the store), and
//     a step of a new run whose partition is held by another step waits for that
//     step ("joins" it) instead of running beside it.
//   - A step holds the in-flight rows of all its partitions or of none, never some:
//     at CreateRun a step whose partitions are all free takes them all; otherwise
//     it takes none and joins every step holding any of them. At claim a step that
//     holds none takes them all at once, or, when any is held, takes none, joins
//     the holders and goes back to PENDING.
//   - A step is claimed by one worker at a time, under a lease the worker renews;
//     an expired lease puts the step back (the attempt counts) and the late worker's
//     report is refused with ErrLeaseLost, so no (asset, partition, run) is ever
//     recorded twice for one step.
//   - A success records one materialization per partition of the step, no more,
//     no fewer.
//
// Why joined steps never wait for each other forever. A step waits on a join
// only while it holds nothing: it joins, at creation or at a claim, exactly when
// it takes none of its partitions. The steps it joins are holders (they hold a
// partition it wants, so all of theirs), and a holder never waits on a join: one
// that took its partitions at creation joined nobody, one that took them at a
// claim had every join done (it was READY), and a retried or put-back step keeps
// them, so a claim never makes it join. So every join goes from a step holding
// nothing to one waiting on no join, and joins alone cannot close a cycle, as
// they could when a step held some partitions and waited for others: a step X of
// one run held day 19 and joined the holder of day 20; that holder ended, a step
// H of another run over days 19 and 20 joined X for day 19 and took day 20, and X,
// claimed, joined H. Now X, holding nothing, leaves both days to H, which runs;
// X runs after it.
//
// A holder may still wait on steps of its own run (run dependencies), which may
// wait on joins. Along any chain of waits, a run dependency leads to a step of an
// upstream asset (the planner makes them from the asset graph) and a join to a
// step of the same asset, so a cycle of waits would need a cycle in the asset
// graph, which the definitions forbid. (Runs planned from definitions that
// reversed a dependency in between could in principle meet; they are not
// protected against beyond this.)
type Queue interface {
	// CreateRun records a run and its steps, in one transaction. Steps whose
	// upstream steps are all done (none, usually, for the first level) are READY at
	// once, the others PENDING. A step whose partitions are all free holds them
	// all; a step any of whose partitions is held by a step of another run holds
	// none of them and joins every such holder (a "join" dependency) until it is
	// claimed. The returned run holds the steps as recorded.
	//
	// Nothing is written when the run is invalid; the error names the step (index,
	// asset and partition): an asset not in the catalog, removed or a source; no
	// partitions; partition keys that are not partitions of the asset under its
	// synced definition, not consecutive in index order, or not exactly [""] for an
	// unpartitioned asset; an (asset, partition) twice in the run; a dependency on
	// a step that is not an earlier one; MaxAttempts below 1.
	CreateRun(ctx context.Context, run NewRun) (*Run, error)
	// ClaimSteps claims up to req.Limit READY steps whose backoff has passed, oldest
	// run first and in plan order within a run, skipping steps of assets at their
	// concurrency cap and of runs at their MaxParallel. Each claimed step becomes
	// RUNNING under a lease held by req.Worker until now+req.Lease; it gets a new
	// attempt (numbered from 1) whose InputSeq is the catalog watermark at the claim.
	// A step that holds none of its partitions yet (it joined a step of another
	// run) takes them all at once; if any is held by another step it takes none,
	// joins every holder, goes back to PENDING and is not returned.
	ClaimSteps(ctx context.Context, req ClaimRequest) ([]ClaimedStep, error)
	// Heartbeat renews the leases of steps a worker runs, until now+extend. For
	// each lease it returns whether it is still held and whether a cancel was
	// requested for the step (or its run), in the order given.
	Heartbeat(ctx context.Context, worker string, leases []Lease, extend time.Duration) ([]LeaseState, error)
	// FinishStep records the end of a claimed step's attempt, in one transaction
	// with its events (materializations on success, failures on a final failure) and
	// every consequence: the step's status, its in-flight rows released unless it
	// will be retried, dependents made READY or UPSTREAM_FAILED, the run's status.
	// It returns ErrLeaseLost (wrapped) and writes nothing when the worker no longer
	// holds the step's lease for that attempt (for an unknown step it wraps
	// ErrNotFound as well). A success must carry exactly one materialization of the
	// step's asset per partition of the step: events of another kind, asset or
	// partition, or twice for one partition, make a *BadEventsError, and
	// partitions without one an error naming them; nothing is written either way.
	// With res.ClaimNext set it also claims steps, as ClaimSteps, in the same
	// transaction.
	FinishStep(ctx context.Context, res StepResult) (*FinishResult, error)
	// FinishSteps records the ends of several attempts, each as FinishStep would
	// (their ClaimNext is ignored), in as few transactions as it can: one when
	// every report is a success, a fresh skip or a retry, so that a busy worker
	// pays one commit (and, on PostgreSQL, one hold of each run's lock) for many
	// steps. With next set it then claims steps, as ClaimSteps, in the last
	// transaction. Each report is fenced on its own: one FinishStep would refuse
	// (lease lost, bad events, any error of its own) gets its error at its index
	// in Errors, nothing is written for it, and the others are recorded. Only an
	// error of the call as a whole (the database unreachable, the transaction
	// aborted) is returned; it may come after some reports were recorded, and
	// repeating the call as is is safe, since those are then refused with
	// ErrLeaseLost. Results[i] is what FinishStep would have returned had the
	// reports been recorded one after the other, in order.
	FinishSteps(ctx context.Context, results []StepResult, next *ClaimRequest) (*FinishedSteps, error)
	// ExpireLeases puts back every RUNNING step whose lease expired before now:
	// the attempt is recorded as LEASE_EXPIRED; the step becomes READY again, or
	// FAILED (with failure events and its dependents UPSTREAM_FAILED) when it has no
	// attempts left. It returns the steps it put back or failed.
	ExpireLeases(ctx context.Context) ([]ExpiredStep, error)

	// CancelRun cancels a run: its steps not started yet become CANCELED at once,
	// running ones get a cancel request their workers see on their next heartbeat.
	// It returns ErrNotFound for an unknown run; canceling a finished run does
	// nothing.
	CancelRun(ctx context.Context, id uuid.UUID) (*Run, error)
	// CancelStep cancels one step the same way, with its dependents in its run.
	CancelStep(ctx context.Context, id uuid.UUID) (*Step, error)

	// GetRun returns a run with its step counts (not its steps), or ErrNotFound.
	GetRun(ctx context.Context, id uuid.UUID) (*Run, error)
	// RunSteps returns a run's steps in plan order.
	RunSteps(ctx context.Context, runID uuid.UUID) ([]Step, error)
	// ListRuns returns a page of runs, newest first.
	ListRuns(ctx context.Context, q RunQuery) (*RunPage, error)
	// QueueDepth counts the runs not ended (QUEUED, RUNNING) and the steps not
	// ended (PENDING, READY, RUNNING), by status, across every run.
	QueueDepth(ctx context.Context) (*QueueDepth, error)
	// InFlight lists every partition a step not ended holds (see the rule on
	// in-flight partitions above), with that step and its status, ordered by
	// asset and partition key.
	InFlight(ctx context.Context) ([]InFlightPartition, error)
	// GetStep returns one step, or ErrNotFound.
	GetStep(ctx context.Context, id uuid.UUID) (*Step, error)
	// Attempts returns a step's attempts, first first.
	Attempts(ctx context.Context, stepID uuid.UUID) ([]Attempt, error)

	// AppendStepLog appends lines to a step's log. The log keeps at most
	// maxBytes of line text per step: when it would hold more, the oldest lines
	// are dropped and counted, so the tail survives and the reader is told what
	// was cut.
	AppendStepLog(ctx context.Context, stepID uuid.UUID, lines []LogLine, maxBytes int64) error
	// StepLog returns up to limit lines of a step's log after line number after
	// (0: from the first kept line), with what was dropped.
	StepLog(ctx context.Context, stepID uuid.UUID, after int64, limit int) (*LogPage, error)

	// CreateBackfill records a backfill and its run in one transaction.
	CreateBackfill(ctx context.Context, b NewBackfill) (*Backfill, error)
	// GetBackfill returns a backfill with its progress, or ErrNotFound.
	GetBackfill(ctx context.Context, id uuid.UUID) (*Backfill, error)
	// ListBackfills returns backfills, newest first, at most limit (0: 100).
	ListBackfills(ctx context.Context, limit int) ([]Backfill, error)
	// CancelBackfill cancels a backfill's runs (as CancelRun) and records when;
	// the backfill is CANCELED once its running steps have stopped.
	CancelBackfill(ctx context.Context, id uuid.UUID) (*Backfill, error)

	// ReadRanges reads the recorded state of ranges of partitions, in one
	// snapshot, for the check a step gets just before it starts. Result k covers
	// partitions [Lo, Hi) of ranges[k].Asset, re-indexed from 0 (its arrays have
	// length Hi-Lo) with the asset's complete CodeVersions and DepSets lists.
	ReadRanges(ctx context.Context, ranges []PartitionRange) ([]*AssetState, error)
	// Listen returns a channel that receives a value (coalesced, never blocking the
	// store) whenever steps may have become ready, from this process or, on
	// PostgreSQL, any other. The channel is closed when ctx ends. Workers also poll:
	// a notification is a hint, not a guarantee.
	Listen(ctx context.Context) (<-chan struct{}, error)
}

// ErrLeaseLost is returned (wrapped) when a worker reports on a step whose lease it
// no longer holds: the lease expired and the step was put back, or it was canceled
// and finished for it.
var ErrLeaseLost = errors.New("lease lost")

// RunStatus is the state of a run.
type RunStatus string

// The run states.
const (
	RunQueued    RunStatus = "QUEUED"
	RunRunning   RunStatus = "RUNNING"
	RunSucceeded RunStatus = "SUCCEEDED"
	RunFailed    RunStatus = "FAILED"
	RunCanceled  RunStatus = "CANCELED"
)

// Done reports whether the run has ended.
func (s RunStatus) Done() bool { return s == RunSucceeded || s == RunFailed || s == RunCanceled }

// StepStatus is the state of a step.
type StepStatus string

// The step states: PENDING → READY → RUNNING → one of the final ones.
const (
	StepPending        StepStatus = "PENDING"
	StepReady          StepStatus = "READY"
	StepRunning        StepStatus = "RUNNING"
	StepSucceeded      StepStatus = "SUCCEEDED"
	StepFailed         StepStatus = "FAILED"
	StepSkippedFresh   StepStatus = "SKIPPED_FRESH"
	StepUpstreamFailed StepStatus = "UPSTREAM_FAILED"
	StepCanceled       StepStatus = "CANCELED"
)

// Done reports whether the step has ended.
func (s StepStatus) Done() bool {
	switch s {
	case StepSucceeded, StepFailed, StepSkippedFresh, StepUpstreamFailed, StepCanceled:
		return true
	}
	return false
}

// StepStatuses lists every step state, in lifecycle order.
var StepStatuses = []StepStatus{StepPending, StepReady, StepRunning, StepSucceeded, StepFailed,
	StepSkippedFresh, StepUpstreamFailed, StepCanceled}

// Trigger says what created a run.
type Trigger string

// The run triggers.
const (
	TriggerManual   Trigger = "manual"
	TriggerAPI      Trigger = "api"
	TriggerSchedule Trigger = "schedule"
	TriggerBackfill Trigger = "backfill"
	TriggerRetry    Trigger = "retry"
)

// Triggers are the triggers a run may have: CreateRun refuses any other.
var Triggers = []Trigger{TriggerManual, TriggerAPI, TriggerSchedule, TriggerBackfill, TriggerRetry}

// NewRun is a run to record.
type NewRun struct {
	ID        uuid.UUID
	Trigger   Trigger
	Selection string
	// From and To are the plan's window as YYYY-MM-DD ("" when open).
	From, To string
	Force    bool
	// MaxParallel caps the run's steps running at once (0: no cap).
	MaxParallel  int
	BackfillID   uuid.UUID // uuid.Nil: none
	ScheduleName string
	ParentRunID  uuid.UUID // the run a retry repeats; uuid.Nil: none
	// PlannedSeq is the catalog watermark the plan was computed at.
	PlannedSeq int64
	Steps      []NewStep
}

// NewStep is a step of a new run.
type NewStep struct {
	ID    uuid.UUID
	Asset assets.Key
	// Partitions are the keys the step builds, consecutive partitions in order;
	// [""] for an unpartitioned asset.
	Partitions  []string
	MaxAttempts int
	// Deps are the indexes in NewRun.Steps of the steps this one needs; each is
	// smaller than this step's own index.
	Deps []int
}

// Run is a recorded run.
type Run struct {
	ID           uuid.UUID
	Status       RunStatus
	Trigger      Trigger
	Selection    string
	From, To     string
	Force        bool
	MaxParallel  int
	BackfillID   uuid.UUID
	ScheduleName string
	ParentRunID  uuid.UUID
	PlannedSeq   int64
	CreatedAt    time.Time
	StartedAt    time.Time // zero until a step started
	FinishedAt   time.Time // zero until the run ended
	CanceledAt   time.Time // zero unless a cancel was requested
	// Counts are the numbers of steps per status; Partitions the numbers of
	// partitions of those steps per status.
	Counts     map[StepStatus]int
	Partitions map[StepStatus]int
	// Steps are filled by CreateRun only; RunSteps reads them.
	Steps []Step
}

// Step is a recorded step.
type Step struct {
	ID    uuid.UUID
	RunID uuid.UUID
	Asset assets.Key
	// Partitions are the keys the step builds; [""] for an unpartitioned asset.
	Partitions []string
	Ordinal    int // position in the run's plan order
	Status     StepStatus
	// Attempt is the number of attempts started; MaxAttempts the most it may get.
	Attempt, MaxAttempts int
	// Deps are the steps of the same run it needs; Joined the in-flight steps of
	// other runs it waits for because they hold some of its partitions.
	Deps, Joined    []uuid.UUID
	NotBefore       time.Time // READY but not claimable before (retry backoff)
	LeaseOwner      string
	LeaseExpiresAt  time.Time
	CancelRequested bool
	CreatedAt       time.Time
	ReadyAt         time.Time
	StartedAt       time.Time // of the first attempt
	FinishedAt      time.Time
	Error           string // why it failed, was skipped upstream-failed or canceled
}

// ClaimRequest asks for ready steps.
type ClaimRequest struct {
	// Worker names the claiming worker (host, pid and a random part).
	Worker string
	Limit  int
	// Lease is how long the claim holds without a heartbeat.
	Lease time.Duration
	// Concurrency caps, per asset, how many of its steps run at once across all
	// workers; assets not listed have no cap.
	Concurrency map[assets.Key]int
}

// ClaimedStep is a step a worker now runs.
type ClaimedStep struct {
	Step
	// Step.Attempt is the attempt the worker runs, from 1. InputSeq is the
	// catalog watermark when it was claimed: every input the attempt reads is at
	// least that new, so its materializations record it.
	InputSeq int64
	// Force says the run rebuilds even fresh partitions: no pre-start check.
	Force bool
	// Materialized says a success (a materialization, or an observation of a
	// source) of at least one of the step's partitions was recorded at or before
	// InputSeq. A step none of whose
	// partitions was ever materialized cannot be fresh, so the worker skips the
	// pre-start check (a read) for it.
	Materialized bool
}

// Lease names one attempt a worker holds.
type Lease struct {
	StepID  uuid.UUID
	Attempt int
}

// LeaseState is a Heartbeat's answer for one lease.
type LeaseState struct {
	Held            bool
	CancelRequested bool
}

// StepOutcome is how an attempt ended.
type StepOutcome string

// The attempt outcomes a worker reports.
const (
	OutcomeSucceeded StepOutcome = "SUCCEEDED"
	// OutcomeSkippedFresh: the pre-start check found every partition fresh.
	OutcomeSkippedFresh StepOutcome = "SKIPPED"
	OutcomeFailed       StepOutcome = "FAILED"
	OutcomeTimedOut     StepOutcome = "TIMED_OUT"
	OutcomeCanceled     StepOutcome = "CANCELED"
)

// StepResult is the end of an attempt, as its worker reports it.
type StepResult struct {
	StepID  uuid.UUID
	Attempt int
	Worker  string
	Outcome StepOutcome
	// Events are appended with the outcome: on success exactly one
	// materialization per partition of the step (FinishStep refuses a success with
	// fewer, more or repeated ones); on a final failure the store records one
	// failure per partition itself and ignores Events. RunID and StepID are filled
	// in by the store when zero.
	Events   []Event
	ExitCode *int
	Error    string
	// Retry, for a failed or timed-out attempt, makes the step READY again and
	// claimable RetryAfter from now (the store's clock); without it the failure is
	// final. The worker decides from the asset's retry policy; the store refuses a
	// retry past MaxAttempts (the failure is then final).
	Retry      bool
	RetryAfter time.Duration
	// ClaimNext, when set, claims more steps in the same transaction.
	ClaimNext *ClaimRequest
	// Log are lines of the attempt's log not appended yet (their No is set by
	// the store; each keeps its Attempt). They are recorded in the report's transaction, after the lines
	// appended before, as AppendStepLog would with LogCap as its maxBytes (0: no
	// cap), so that a short step's log costs no write of its own. A refused
	// report records none of them.
	Log    []LogLine
	LogCap int64
}

// FinishedSteps is what FinishSteps did, report by report.
type FinishedSteps struct {
	// Results[i] is what recording results[i] did; nil where Errors[i] is set.
	Results []*FinishResult
	// Errors[i] is why results[i] was refused (ErrLeaseLost, a *BadEventsError,
	// …), nil when it was recorded.
	Errors []error
	// Claimed are the steps claimed for next.
	Claimed []ClaimedStep
}

// FinishResult is what FinishStep did.
type FinishResult struct {
	Step *Step
	// Events as recorded.
	Events []Event
	// Ready are the steps that became READY; Claimed the ones claimed for
	// ClaimNext.
	Ready   []uuid.UUID
	Claimed []ClaimedStep
	// RunStatus is the run's status after the step ended.
	RunStatus RunStatus
}

// ExpiredStep is a step whose lease lapsed.
type ExpiredStep struct {
	StepID  uuid.UUID
	RunID   uuid.UUID
	Attempt int
	Worker  string
	// Status is the step's status now: READY (another attempt), FAILED (none
	// left) or CANCELED (a cancel was requested).
	Status StepStatus
}

// AttemptStatus is the state of one attempt.
type AttemptStatus string

// The attempt states.
const (
	AttemptRunning      AttemptStatus = "RUNNING"
	AttemptSucceeded    AttemptStatus = "SUCCEEDED"
	AttemptSkipped      AttemptStatus = "SKIPPED"
	AttemptFailed       AttemptStatus = "FAILED"
	AttemptTimedOut     AttemptStatus = "TIMED_OUT"
	AttemptCanceled     AttemptStatus = "CANCELED"
	AttemptLeaseExpired AttemptStatus = "LEASE_EXPIRED"
)

// Attempt is one try at a step.
type Attempt struct {
	StepID     uuid.UUID
	Attempt    int
	Worker     string
	InputSeq   int64
	StartedAt  time.Time
	FinishedAt time.Time
	Status     AttemptStatus
	ExitCode   *int
	Error      string
}

// RunQuery selects a page of runs.
type RunQuery struct {
	// Statuses, when non-empty, keeps runs in those states.
	Statuses []RunStatus
	// Asset, when set, keeps runs with a step of that asset.
	Asset      assets.Key
	BackfillID uuid.UUID
	// Before pages backwards: runs created before that run (uuid.Nil: newest).
	Before uuid.UUID
	Limit  int // 0: 50; at most 1,000
}

// QueueDepth is the work in the queue: runs and steps not ended, by status.
type QueueDepth struct {
	Runs  map[RunStatus]int
	Steps map[StepStatus]int
}

// InFlightPartition is a partition held by a step that has not ended.
type InFlightPartition struct {
	Asset     assets.Key
	Partition string
	StepID    uuid.UUID
	Status    StepStatus // PENDING, READY or RUNNING
}

// RunPage is a page of runs, newest first, with counts.
type RunPage struct {
	Runs []Run
	// Next is the Before of the next page (uuid.Nil: this is the last).
	Next uuid.UUID
}

// LogStream says where a log line came from.
type LogStream string

// The log streams.
const (
	Stdout LogStream = "stdout"
	Stderr LogStream = "stderr"
	// System lines are Freshet's own: the command line, retries, timeouts, cuts.
	System LogStream = "system"
)

// LogLine is one line of a step's log.
type LogLine struct {
	// No numbers lines from 1 per step across attempts; set by the store.
	No      int64
	Attempt int
	Stream  LogStream
	At      time.Time
	Text    string
}

// LogPage is part of a step's log.
type LogPage struct {
	Lines []LogLine
	// Next is the After of the next page: the last line's number (after, when empty).
	Next int64
	// DroppedLines and DroppedBytes count the oldest lines cut to keep the log
	// within its cap; KeptBytes is the text kept.
	DroppedLines, DroppedBytes, KeptBytes int64
}

// BackfillMode says which partitions a backfill builds.
type BackfillMode string

// The backfill modes.
const (
	BackfillMissingAndStale BackfillMode = "missing_and_stale"
	BackfillAll             BackfillMode = "all"
)

// BackfillStatus is the state of a backfill.
type BackfillStatus string

// The backfill states.
const (
	BackfillRequested BackfillStatus = "REQUESTED"
	BackfillRunning   BackfillStatus = "RUNNING"
	BackfillSucceeded BackfillStatus = "SUCCEEDED"
	BackfillFailed    BackfillStatus = "FAILED"
	BackfillCanceled  BackfillStatus = "CANCELED"
)

// NewBackfill is a backfill to record with its run (whose BackfillID and Trigger
// the store sets).
type NewBackfill struct {
	ID          uuid.UUID
	Selection   string
	From, To    string // YYYY-MM-DD, inclusive; "" when open
	Mode        BackfillMode
	MaxParallel int
	Run         NewRun
}

// Backfill is a recorded backfill with its progress, counted in partitions.
type Backfill struct {
	ID          uuid.UUID
	Selection   string
	From, To    string
	Mode        BackfillMode
	MaxParallel int
	// Status is derived from its runs: RUNNING while one is not done.
	Status                      BackfillStatus
	CreatedAt, FinishedAt       time.Time
	CanceledAt                  time.Time
	RunIDs                      []uuid.UUID
	Targeted, Done, Failed      int // partitions: all, succeeded or skipped fresh, failed or upstream-failed
	InFlight, Canceled, Pending int // running; canceled; not started yet
}

// PartitionRange names partitions [Lo, Hi) of an asset by index.
type PartitionRange struct {
	Asset  assets.Key
	Lo, Hi int
}
