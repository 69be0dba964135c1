package gql

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/google/uuid"

	"github.com/freshetdev/freshet/assets"
	"github.com/freshetdev/freshet/store"
)

// The types below back the schema's object types that need more than their
// fields (gqlgen binds them by name; a field without a method or field here is a
// resolver in resolvers.go). The others are generated in models_gen.go.

// JSON is the JSON scalar: any JSON value, passed through as is.
type JSON json.RawMessage

// MarshalGQL writes the value.
func (j JSON) MarshalGQL(w io.Writer) {
	if len(j) == 0 {
		io.WriteString(w, "null")
		return
	}
	w.Write(j)
}

// UnmarshalGQL takes any value a client sent.
func (j *JSON) UnmarshalGQL(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("JSON: %w", err)
	}
	*j = b
	return nil
}

// Asset is one asset of the definitions served to the request.
type Asset struct {
	idx int
	def *assets.Asset
}

func (a *Asset) Key() string         { return string(a.def.Key) }
func (a *Asset) Group() string       { return a.def.Group }
func (a *Asset) Description() string { return a.def.Description }
func (a *Asset) Owners() []string    { return nonNil(a.def.Owners) }
func (a *Asset) Tags() []string      { return nonNil(a.def.Tags) }
func (a *Asset) CodeVersion() string { return a.def.CodeVersion }
func (a *Asset) IsSource() bool      { return a.def.IsSource() }

// Status counts the asset's partitions by status, from the table the request
// computes once for every asset (view.assetStatuses). A method of the model, not
// a resolver: gqlgen runs resolvers each in a goroutine of its own, which for
// the status of every node of a large graph costs more than the counting.
func (a *Asset) Status(ctx context.Context) (*AssetStatus, error) {
	v := viewFrom(ctx)
	if v == nil {
		return nil, errors.New("asset status: the request has no catalog view (serve the API with NewHandler)")
	}
	table, err := v.assetStatuses(ctx)
	if err != nil {
		return nil, err
	}
	return &table[a.idx], nil
}

// ComputeKind names how the asset is built: command, sql, http, go, or none.
func (a *Asset) ComputeKind() string {
	if a.def.Compute == nil {
		return "none"
	}
	return string(a.def.Compute.Kind())
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// Run is a recorded run.
type Run struct{ r *store.Run }

func (r *Run) ID() string        { return r.r.ID.String() }
func (r *Run) Status() RunStatus { return RunStatus(r.r.Status) }
func (r *Run) CreatedAt() time.Time {
	return r.r.CreatedAt
}
func (r *Run) StartedAt() *time.Time  { return timeOrNil(r.r.StartedAt) }
func (r *Run) FinishedAt() *time.Time { return timeOrNil(r.r.FinishedAt) }
func (r *Run) Trigger() string        { return string(r.r.Trigger) }
func (r *Run) Selection() string      { return r.r.Selection }
func (r *Run) From() *string          { return stringOrNil(r.r.From) }
func (r *Run) To() *string            { return stringOrNil(r.r.To) }
func (r *Run) Force() bool            { return r.r.Force }
func (r *Run) BackfillID() *string    { return idOrNil(r.r.BackfillID) }
func (r *Run) ParentRunID() *string   { return idOrNil(r.r.ParentRunID) }

// Counts counts the run's steps per status.
func (r *Run) Counts() *StepCounts {
	c := r.r.Counts
	n := 0
	for _, v := range c {
		n += v
	}
	return &StepCounts{
		Pending: c[store.StepPending], Ready: c[store.StepReady], Running: c[store.StepRunning],
		Succeeded: c[store.StepSucceeded], Failed: c[store.StepFailed], SkippedFresh: c[store.StepSkippedFresh],
		UpstreamFailed: c[store.StepUpstreamFailed], Canceled: c[store.StepCanceled], Total: n,
	}
}

// Step is a recorded step.
type Step struct{ s *store.Step }

func (s *Step) ID() string             { return s.s.ID.String() }
func (s *Step) Asset() string          { return string(s.s.Asset) }
func (s *Step) Partitions() []string   { return nonNil(s.s.Partitions) }
func (s *Step) Status() string         { return string(s.s.Status) }
func (s *Step) Attempt() int           { return s.s.Attempt }
func (s *Step) MaxAttempts() int       { return s.s.MaxAttempts }
func (s *Step) StartedAt() *time.Time  { return timeOrNil(s.s.StartedAt) }
func (s *Step) FinishedAt() *time.Time { return timeOrNil(s.s.FinishedAt) }
func (s *Step) Error() *string         { return stringOrNil(s.s.Error) }

// Backfill is a recorded backfill with its progress.
type Backfill struct{ b *store.Backfill }

func (b *Backfill) ID() string             { return b.b.ID.String() }
func (b *Backfill) Selection() string      { return b.b.Selection }
func (b *Backfill) From() *string          { return stringOrNil(b.b.From) }
func (b *Backfill) To() *string            { return stringOrNil(b.b.To) }
func (b *Backfill) Mode() string           { return string(b.b.Mode) }
func (b *Backfill) MaxParallel() int       { return b.b.MaxParallel }
func (b *Backfill) Status() string         { return string(b.b.Status) }
func (b *Backfill) CreatedAt() time.Time   { return b.b.CreatedAt }
func (b *Backfill) FinishedAt() *time.Time { return timeOrNil(b.b.FinishedAt) }
func (b *Backfill) Targeted() int          { return b.b.Targeted }
func (b *Backfill) Done() int              { return b.b.Done }
func (b *Backfill) Failed() int            { return b.b.Failed }
func (b *Backfill) InFlight() int          { return b.b.InFlight }
func (b *Backfill) Canceled() int          { return b.b.Canceled }
func (b *Backfill) Pending() int           { return b.b.Pending }

// Partition is one partition of an asset with its derived status.
type Partition struct {
	asset  *Asset
	index  int // under the asset's partitions definition; 0 when unpartitioned
	key    string
	status PartitionStatus
	causes []*Cause
	rec    *store.PartitionRecord // nil: nothing recorded
}

func (p *Partition) Key() string             { return p.key }
func (p *Partition) Status() PartitionStatus { return p.status }
func (p *Partition) Causes() []*Cause        { return p.causes }
func (p *Partition) DataVersion() *string {
	if p.rec == nil || p.rec.SuccessSeq == 0 {
		return nil
	}
	return &p.rec.DataVersion
}

// MaterializationEvent is a recorded event of an asset's partition.
type MaterializationEvent struct{ e *store.Event }

func (m *MaterializationEvent) Seq() string       { return fmt.Sprint(m.e.Seq) }
func (m *MaterializationEvent) Kind() string      { return string(m.e.Kind) }
func (m *MaterializationEvent) Asset() string     { return string(m.e.Asset) }
func (m *MaterializationEvent) Partition() string { return m.e.Partition }
func (m *MaterializationEvent) At() time.Time     { return m.e.At }
func (m *MaterializationEvent) RunID() *string    { return idOrNil(m.e.RunID) }
func (m *MaterializationEvent) StepID() *string   { return idOrNil(m.e.StepID) }
func (m *MaterializationEvent) DataVersion() string {
	return m.e.DataVersion
}
func (m *MaterializationEvent) DataChanged() bool { return m.e.DataChanged }
func (m *MaterializationEvent) CodeVersion() *string {
	if m.e.Code == nil {
		return nil
	}
	return &m.e.Code.Version
}
func (m *MaterializationEvent) Metadata() JSON { return JSON(m.e.Metadata) }
func (m *MaterializationEvent) Error() *string { return stringOrNil(m.e.Error) }

func timeOrNil(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func stringOrNil(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func idOrNil(id uuid.UUID) *string {
	if id == uuid.Nil {
		return nil
	}
	s := id.String()
	return &s
}

// RunIds lists the backfill's runs.
func (b *Backfill) RunIds() []string {
	ids := make([]string, len(b.b.RunIDs))
	for i, id := range b.b.RunIDs {
		ids[i] = id.String()
	}
	return ids
}

// Schedule is a schedule of the definitions served.
type Schedule struct {
	s    assets.Schedule
	next *time.Time
	last *ScheduleTick
}

func (s *Schedule) Name() string      { return s.s.Name }
func (s *Schedule) Cron() string      { return s.s.Cron }
func (s *Schedule) Selection() string { return s.s.Select }
func (s *Schedule) Timezone() string {
	if s.s.Timezone == "" {
		return "UTC"
	}
	return s.s.Timezone
}
func (s *Schedule) NextTick() *time.Time    { return s.next }
func (s *Schedule) LastTick() *ScheduleTick { return s.last }

func tickOut(t store.Tick) *ScheduleTick {
	return &ScheduleTick{At: t.At, Status: string(t.Status), RunID: idOrNil(t.RunID), Reason: stringOrNil(t.Reason)}
}

func freshnessEventOut(c store.FreshnessChange) *FreshnessEvent {
	return &FreshnessEvent{ID: fmt.Sprint(c.ID), Asset: string(c.Asset), At: c.At, Status: c.Status, Previous: stringOrNil(c.Previous),
		LagSeconds: c.LagSeconds, Reason: c.Reason, NotifiedAt: timeOrNil(c.NotifiedAt)}
}
