package store

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/freshetdev/freshet/assets"
)

// Coordination is what the processes serving one catalog agree on: which one
// leads (runs the scheduler and the freshness checker), which schedule ticks were
// handled, and the freshness status changes of the assets.
type Coordination interface {
	// AcquireLease takes the lease `name` for holder until now+ttl when it is free
	// or expired, or renews it when holder already holds it. It returns the lease
	// as it stands afterwards; Held says whether holder has it. Expiry is judged
	// on the database's clock for PostgreSQL (many machines), the process clock for SQLite.
	AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (LeaseInfo, error)
	// ReleaseLease gives the lease up if holder holds it (so another takes over at once); otherwise it does nothing.
	ReleaseLease(ctx context.Context, name, holder string) error
	// GetLease returns the lease (ErrNotFound if it was never taken).
	GetLease(ctx context.Context, name string) (*LeaseInfo, error)

	// RecordTick records a schedule's tick once: false (and nothing written) when
	// that (schedule, tick time) is already recorded, by any process.
	RecordTick(ctx context.Context, t Tick) (bool, error)
	// UpdateTick sets a recorded tick's status, run and reason (ErrNotFound if not recorded).
	UpdateTick(ctx context.Context, t Tick) error
	// LastTicks returns each schedule's newest recorded tick.
	LastTicks(ctx context.Context) (map[string]Tick, error)
	// Ticks lists one schedule's ticks, newest first (limit 0: 50; at most 1,000).
	Ticks(ctx context.Context, schedule string, limit int) ([]Tick, error)

	// RecordFreshness appends freshness status changes, all or none, and returns them with their IDs.
	// An unknown asset key is an error naming it (nothing recorded).
	RecordFreshness(ctx context.Context, changes []FreshnessChange) ([]FreshnessChange, error)
	// LatestFreshness returns each asset's newest change.
	LatestFreshness(ctx context.Context) (map[assets.Key]FreshnessChange, error)
	// FreshnessEvents lists changes, newest first, filtered by q.
	FreshnessEvents(ctx context.Context, q FreshnessQuery) ([]FreshnessChange, error)
	// MarkNotified records that changes ids were sent to the notifiers at `at`.
	MarkNotified(ctx context.Context, ids []int64, at time.Time) error
}

// LeaseInfo is a lease as it stands.
//
// Held, in AcquireLease's answer, says whether the caller (its holder argument)
// now holds the lease: when it does not, Holder names the one that does. In
// GetLease's answer it says whether Holder holds it still (neither expired nor
// released). A released lease keeps its last Holder, with ExpiresAt the time of
// the release.
type LeaseInfo struct {
	Name, Holder string
	// AcquiredAt is when Holder took the lease (renewals keep it); RenewedAt when
	// it last took or renewed it; ExpiresAt when it lapses unless renewed.
	AcquiredAt, RenewedAt, ExpiresAt time.Time
	Held                             bool
}

// TickStatus is what became of a schedule's tick.
type TickStatus string

// The tick statuses (those the schedule_ticks table admits).
const (
	// TickStarted: recorded, being evaluated.
	TickStarted TickStatus = "STARTED"
	// TickLaunched: a run was launched (Tick.RunID).
	TickLaunched TickStatus = "LAUNCHED"
	// TickSkipped: nothing to do (Tick.Reason says why).
	TickSkipped TickStatus = "SKIPPED"
	// TickFailed: the evaluation failed (Tick.Reason says why).
	TickFailed TickStatus = "FAILED"
)

// TickStatuses lists every tick status.
var TickStatuses = []TickStatus{TickStarted, TickLaunched, TickSkipped, TickFailed}

// Tick is one tick of a schedule: the cron time it fired for and what became of it.
type Tick struct {
	Schedule string
	// At is the tick's time, as the cron expression gives it (stored to the
	// microsecond, returned in UTC). (Schedule, At) identifies the tick.
	At     time.Time
	Status TickStatus
	// RunID is the run the tick launched (uuid.Nil: none); it must name a
	// recorded run.
	RunID  uuid.UUID
	Reason string
	// CreatedAt is when the tick was recorded, set by the store.
	CreatedAt time.Time
}

// The freshness statuses of an asset (FreshnessChange.Status and Previous).
const (
	FreshnessPass    = "PASS"
	FreshnessWarn    = "WARN"
	FreshnessFail    = "FAIL"
	FreshnessUnknown = "UNKNOWN"
)

// FreshnessStatuses lists every freshness status.
var FreshnessStatuses = []string{FreshnessPass, FreshnessWarn, FreshnessFail, FreshnessUnknown}

// FreshnessChange is a change of an asset's freshness status.
type FreshnessChange struct {
	// ID is assigned by RecordFreshness, increasing.
	ID    int64
	Asset assets.Key
	// At is when the check saw the change (zero: the time it is recorded).
	At     time.Time
	Status string // PASS WARN FAIL UNKNOWN
	// Previous is the status before ("" for the asset's first).
	Previous string
	// LagSeconds is how old the asset's data was, when known.
	LagSeconds *float64
	Reason     string
	NotifiedAt time.Time // zero: not sent yet
}

// FreshnessQuery selects freshness changes.
type FreshnessQuery struct {
	// Asset keeps one asset's changes ("": all assets).
	Asset assets.Key
	// Since keeps changes at or after it (zero: all).
	Since time.Time
	// Limit caps the list (0: 100; at most 10,000).
	Limit int
}

// BatchReader reads many records in one query each, for the API's per-request
// loaders (no N+1).
type BatchReader interface {
	// PartitionRecords returns the record of each (asset, partition), nil where none, in input order.
	PartitionRecords(ctx context.Context, keys []PartitionKey) ([]*PartitionRecord, error)
	// StepsOfRuns returns the steps of each run, in plan order (runs without steps or unknown: absent).
	StepsOfRuns(ctx context.Context, runIDs []uuid.UUID) (map[uuid.UUID][]Step, error)
	// AttemptsOf returns the attempts of each step, oldest first (steps without
	// attempts or unknown: absent).
	AttemptsOf(ctx context.Context, stepIDs []uuid.UUID) (map[uuid.UUID][]Attempt, error)
	// EventPages returns, in input order, the page Events gives for each query.
	EventPages(ctx context.Context, qs []EventQuery) ([]*EventPage, error)
}

// PartitionKey names one (asset, partition); Partition is "" for an unpartitioned asset.
type PartitionKey struct {
	Asset     assets.Key
	Partition string
}

// Limits and defaults of the coordination records.
const (
	// MaxNameLen bounds lease names, holders and schedule names, in bytes.
	MaxNameLen = 1024
	// MaxReasonLen bounds a tick's or a freshness change's reason, in bytes;
	// longer ones are cut.
	MaxReasonLen = MaxErrorLen

	DefaultTickLimit      = 50
	MaxTickLimit          = 1_000
	DefaultFreshnessLimit = 100
	MaxFreshnessLimit     = 10_000
)

// TickLimit returns the number of ticks Ticks returns for limit.
func TickLimit(limit int) int { return clampLimit(limit, DefaultTickLimit, MaxTickLimit) }

// FreshnessLimit returns the number of changes FreshnessEvents returns for limit.
func FreshnessLimit(limit int) int {
	return clampLimit(limit, DefaultFreshnessLimit, MaxFreshnessLimit)
}

func clampLimit(limit, def, most int) int {
	switch {
	case limit <= 0:
		return def
	case limit > most:
		return most
	}
	return limit
}

// CheckName checks a lease name, holder or schedule name: what says what it is
// in the error ("lease name", "holder", …).
func CheckName(what, name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%s is empty", what)
	case len(name) > MaxNameLen:
		return fmt.Errorf("%s is %d bytes long; at most %d", what, len(name), MaxNameLen)
	case !utf8.ValidString(name) || strings.IndexByte(name, 0) >= 0:
		return fmt.Errorf("%s %q is not printable text (invalid UTF-8 or a NUL byte)", what, name)
	}
	return nil
}

// CheckLease checks AcquireLease's arguments and returns ttl in whole
// microseconds, the databases' precision (at least 1).
func CheckLease(name, holder string, ttl time.Duration) (int64, error) {
	if err := CheckName("lease name", name); err != nil {
		return 0, err
	}
	if err := CheckName("holder", holder); err != nil {
		return 0, fmt.Errorf("lease %s: %w", name, err)
	}
	if ttl <= 0 {
		return 0, fmt.Errorf("lease %s: ttl %s: want a positive duration", name, ttl)
	}
	return max(ttl.Microseconds(), 1), nil
}

// PrepareTick checks a tick for RecordTick and UpdateTick and returns it as it is
// stored: At in UTC to the microsecond, the reason made printable and cut to
// MaxReasonLen. CreatedAt is left to the store.
func PrepareTick(t Tick) (Tick, error) {
	if err := CheckName("schedule name", t.Schedule); err != nil {
		return t, err
	}
	if t.At.IsZero() {
		return t, fmt.Errorf("tick of schedule %s: the tick time (At) is zero", t.Schedule)
	}
	t.At = t.At.UTC().Truncate(time.Microsecond)
	if !slices.Contains(TickStatuses, t.Status) {
		return t, fmt.Errorf("tick of schedule %s at %s: status %q: want STARTED, LAUNCHED, SKIPPED or FAILED",
			t.Schedule, t.At.Format(time.RFC3339Nano), t.Status)
	}
	t.Reason = CleanText(t.Reason, MaxReasonLen)
	return t, nil
}

// TickText names a tick in messages.
func TickText(t Tick) string {
	return fmt.Sprintf("tick of schedule %s at %s", t.Schedule, t.At.UTC().Format(time.RFC3339Nano))
}

// PrepareFreshness checks changes for RecordFreshness and returns them as they are
// stored: At (now when zero) and NotifiedAt in UTC to the microsecond, reasons
// made printable and cut to MaxReasonLen, ID zero. Every bad change is reported,
// in one error. Whether the assets exist is the store's to check (UnknownAssets).
func PrepareFreshness(changes []FreshnessChange, now time.Time) ([]FreshnessChange, error) {
	if len(changes) > MaxFreshnessLimit {
		return nil, fmt.Errorf("record %d freshness changes: at most %d at once", len(changes), MaxFreshnessLimit)
	}
	out := make([]FreshnessChange, len(changes))
	var problems []string
	bad := func(n int, c *FreshnessChange, format string, args ...any) {
		if len(problems) == maxReportedErrors {
			problems = append(problems, "…")
		}
		if len(problems) < maxReportedErrors {
			problems = append(problems, fmt.Sprintf("change %d (asset %q): ", n+1, c.Asset)+fmt.Sprintf(format, args...))
		}
	}
	now = now.UTC().Truncate(time.Microsecond)
	for n, c := range changes {
		switch {
		case c.Asset == "":
			bad(n, &c, "no asset")
			continue
		case !slices.Contains(FreshnessStatuses, c.Status):
			bad(n, &c, "status %q: want PASS, WARN, FAIL or UNKNOWN", c.Status)
			continue
		case c.Previous != "" && !slices.Contains(FreshnessStatuses, c.Previous):
			bad(n, &c, "previous status %q: want PASS, WARN, FAIL, UNKNOWN or \"\" (the first)", c.Previous)
			continue
		case c.LagSeconds != nil && (math.IsNaN(*c.LagSeconds) || math.IsInf(*c.LagSeconds, 0)):
			bad(n, &c, "lag %v seconds: want a finite number (or nil when unknown)", *c.LagSeconds)
			continue
		}
		if c.LagSeconds != nil {
			lag := *c.LagSeconds // the caller's pointer stays the caller's
			c.LagSeconds = &lag
		}
		c.ID = 0
		if c.At.IsZero() {
			c.At = now
		}
		c.At = c.At.UTC().Truncate(time.Microsecond)
		if !c.NotifiedAt.IsZero() {
			c.NotifiedAt = c.NotifiedAt.UTC().Truncate(time.Microsecond)
		}
		c.Reason = CleanText(c.Reason, MaxReasonLen)
		out[n] = c
	}
	if len(problems) > 0 {
		return nil, errors.New("record freshness: " + strings.Join(problems, "; "))
	}
	return out, nil
}

// UnknownAssetsError returns the error of RecordFreshness for the changes' assets
// that known (the keys the catalog has) lacks, or nil when it has them all. It
// names every unknown key and wraps ErrNotFound.
func UnknownAssetsError(changes []FreshnessChange, known func(assets.Key) bool) error {
	var unknown []string
	for _, c := range changes {
		if !known(c.Asset) {
			unknown = append(unknown, string(c.Asset))
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	slices.Sort(unknown)
	unknown = slices.Compact(unknown)
	return fmt.Errorf("record freshness: no such asset in the catalog: %s (nothing recorded): %w",
		strings.Join(unknown, ", "), ErrNotFound)
}

// FreshnessAssets returns the distinct asset keys of changes.
func FreshnessAssets(changes []FreshnessChange) []string {
	keys := make([]string, 0, len(changes))
	for _, c := range changes {
		keys = append(keys, string(c.Asset))
	}
	slices.Sort(keys)
	return slices.Compact(keys)
}

// UniqueIDs returns ids without repeats, in first-seen order.
func UniqueIDs[T comparable](ids []T) []T {
	seen := make(map[T]bool, len(ids))
	out := make([]T, 0, len(ids))
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

// UnknownIDsError returns the error of MarkNotified for the ids that found
// lacks, or nil: it names them and wraps ErrNotFound.
func UnknownIDsError(ids []int64, found map[int64]bool) error {
	var missing []string
	for _, id := range ids {
		if !found[id] {
			missing = append(missing, fmt.Sprint(id))
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return fmt.Errorf("mark notified: no freshness change with id %s (nothing marked): %w", strings.Join(missing, ", "), ErrNotFound)
}

// CleanText makes text storable as it is in every database (PostgreSQL text
// refuses NUL and invalid UTF-8: both become U+FFFD), and cuts it to at most
// limit bytes at a character boundary, saying so.
func CleanText(text string, limit int) string {
	text = strings.ReplaceAll(strings.ToValidUTF8(text, "\uFFFD"), "\x00", "\uFFFD")
	if len(text) > limit {
		cut := limit
		for cut > 0 && !utf8.RuneStart(text[cut]) {
			cut--
		}
		text = text[:cut] + "… (cut)"
	}
	return text
}
