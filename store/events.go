package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/freshetdev/freshet/assets"
)

// Limits on what an event may carry.
const (
	MaxDataVersionLen = 1024
	MaxMetadataBytes  = 64 << 10
	MaxErrorLen       = 16 << 10
	// MaxEventsPerAppend bounds one Append; bulk loads split into several.
	MaxEventsPerAppend = 1_000_000
)

// SyncedAsset is what a driver knows of an asset when it appends events: its
// catalog id and its definition as last synced.
type SyncedAsset struct {
	ID         int64
	Key        assets.Key
	Partitions *assets.Partitions // nil: unpartitioned
	Code       Code
	IsSource   bool
	Removed    bool
}

// PreparedEvent is a validated event with its seq assigned, ready to be written.
type PreparedEvent struct {
	Event
	AssetID int64
	// Index is the partition's index under the asset's partitions definition.
	Index int
}

// EventError is one bad event of an Append.
type EventError struct {
	N         int // position in the batch, from 0
	Asset     assets.Key
	Partition string
	Msg       string
}

func (e *EventError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "event %d", e.N+1)
	if e.Asset != "" {
		fmt.Fprintf(&b, " (asset %s", e.Asset)
		if e.Partition != "" {
			fmt.Fprintf(&b, ", partition %q", e.Partition)
		}
		b.WriteString(")")
	}
	return b.String() + ": " + e.Msg
}

// BadEventsError lists every bad event of an Append (up to a cap); nothing was written.
type BadEventsError struct {
	Errors []*EventError
	// More counts bad events past the cap.
	More int
}

func (e *BadEventsError) Error() string {
	lines := make([]string, 0, len(e.Errors)+1)
	for _, err := range e.Errors {
		lines = append(lines, err.Error())
	}
	if e.More > 0 {
		lines = append(lines, fmt.Sprintf("… and %d more bad events", e.More))
	}
	return strings.Join(lines, "\n")
}

const maxReportedErrors = 20

// Prepare validates events and completes them for appending after watermark: it
// assigns seqs watermark+1, watermark+2, …, resolves AtAppend input seqs (each
// event read everything before it), fills At, the data version of a
// materialization that has none, and the code it was built with. lookup returns the
// synced asset for a key, or nil when the catalog has none. Every bad event is
// reported, in one *BadEventsError.
func Prepare(events []Event, lookup func(assets.Key) *SyncedAsset, watermark int64, now time.Time) ([]PreparedEvent, error) {
	if len(events) > MaxEventsPerAppend {
		return nil, fmt.Errorf("append %d events: at most %d at once", len(events), MaxEventsPerAppend)
	}
	out := make([]PreparedEvent, len(events))
	bad := &BadEventsError{}
	fail := func(n int, e *Event, format string, args ...any) {
		if len(bad.Errors) < maxReportedErrors {
			bad.Errors = append(bad.Errors, &EventError{N: n, Asset: e.Asset, Partition: e.Partition, Msg: fmt.Sprintf(format, args...)})
		} else {
			bad.More++
		}
	}
	for n := range events {
		e := events[n]
		p := &out[n]
		seq := watermark + int64(n) + 1
		switch e.Kind {
		case Materialization, Observation, Failure, Planned:
		default:
			fail(n, &e, "unknown event kind %q (want materialization, observation, failure or planned)", e.Kind)
			continue
		}
		a := lookup(e.Asset)
		switch {
		case a == nil:
			fail(n, &e, "no such asset in the catalog (are the definitions synced?)")
			continue
		case a.Removed:
			fail(n, &e, "the asset was removed from the definitions")
			continue
		}
		index, err := partitionIndex(a, e.Partition)
		if err != nil {
			fail(n, &e, "%v", err)
			continue
		}
		switch {
		case e.Kind == Materialization && a.IsSource:
			fail(n, &e, "%s is a source asset: Freshet does not build it; report an observation instead", a.Key)
			continue
		case e.Kind == Observation && !a.IsSource:
			fail(n, &e, "%s is not a source asset: report a materialization instead", a.Key)
			continue
		case e.Kind == Observation && e.DataVersion == "":
			fail(n, &e, "an observation needs a data version")
			continue
		case len(e.DataVersion) > MaxDataVersionLen:
			fail(n, &e, "data version is %d bytes long; at most %d", len(e.DataVersion), MaxDataVersionLen)
			continue
		case !utf8.ValidString(e.DataVersion) || strings.IndexByte(e.DataVersion, 0) >= 0:
			fail(n, &e, "data version %q is not printable text (invalid UTF-8 or a NUL byte)", e.DataVersion)
			continue
		}
		// An error text is whatever a failing build printed: keep it, readable, in
		// every database (PostgreSQL text refuses NUL and invalid UTF-8).
		e.Error = strings.ReplaceAll(strings.ToValidUTF8(e.Error, "\uFFFD"), "\x00", "\uFFFD")
		if len(e.Error) > MaxErrorLen {
			// Cut at a character boundary: half a character is invalid UTF-8.
			cut := MaxErrorLen
			for cut > 0 && !utf8.RuneStart(e.Error[cut]) {
				cut--
			}
			e.Error = e.Error[:cut] + "… (cut)"
		}
		if e.Metadata != nil {
			if err := checkMetadata(e.Metadata); err != nil {
				fail(n, &e, "%v", err)
				continue
			}
		}
		switch {
		case e.Kind != Materialization:
			e.InputSeq = 0
		case e.InputSeq == AtAppend:
			e.InputSeq = seq - 1
		case e.InputSeq < 0:
			fail(n, &e, "input seq %d is negative", e.InputSeq)
			continue
		case e.InputSeq > watermark:
			fail(n, &e, "input seq %d is ahead of the catalog (its watermark is %d)", e.InputSeq, watermark)
			continue
		}
		e.Seq = seq
		if e.At.IsZero() {
			e.At = now
		}
		e.At = e.At.UTC().Truncate(time.Microsecond)
		if e.Kind == Materialization {
			if e.DataVersion == "" {
				e.DataVersion = uuid.NewString()
			}
			code := a.Code
			if e.Code != nil {
				code = Code{Version: e.Code.Version, Deps: slices.Compact(slices.Sorted(slices.Values(e.Code.Deps)))}
			}
			e.Code = &code
		} else {
			e.Code = nil
		}
		e.DataChanged = false
		p.Event, p.AssetID, p.Index = e, a.ID, index
	}
	if len(bad.Errors) > 0 {
		return nil, bad
	}
	return out, nil
}

func partitionIndex(a *SyncedAsset, key string) (int, error) {
	if a.Partitions == nil {
		if key != "" {
			return 0, fmt.Errorf("%s is not partitioned: leave the partition empty", a.Key)
		}
		return 0, nil
	}
	if key == "" {
		return 0, fmt.Errorf("%s is partitioned (%s): name a partition, such as %q", a.Key, a.Partitions.Granularity(), a.Partitions.Key(0))
	}
	i, err := a.Partitions.Index(key)
	if err != nil {
		return 0, fmt.Errorf("not a partition of %s: %w", a.Key, err)
	}
	return i, nil
}

func checkMetadata(m json.RawMessage) error {
	if len(m) > MaxMetadataBytes {
		return fmt.Errorf("metadata is %d bytes; at most %d", len(m), MaxMetadataBytes)
	}
	trimmed := bytes.TrimSpace(m)
	if len(trimmed) == 0 || trimmed[0] != '{' || !json.Valid(trimmed) {
		return fmt.Errorf("metadata must be a JSON object, such as {\"rows\": 120}")
	}
	// PostgreSQL's jsonb cannot hold a NUL character; refuse it on every store alike.
	if bytes.Contains(trimmed, []byte(`\u0000`)) {
		return fmt.Errorf("metadata contains a NUL character (\\u0000), which the catalog cannot store")
	}
	return nil
}

// Apply folds event e into the recorded state r of its partition, as every driver
// derives partition state from the log, and sets e.DataChanged. Planned events
// change nothing.
func (r *PartitionRecord) Apply(e *Event) {
	switch e.Kind {
	case Materialization, Observation:
		e.DataChanged = r.SuccessSeq == 0 || r.DataVersion != e.DataVersion
		r.SuccessSeq = e.Seq
		r.MaterializedAt = e.At
		r.DataVersion = e.DataVersion
		if e.DataChanged {
			r.DataChangedSeq = e.Seq
		}
		r.InputSeq = e.InputSeq
		r.Code = e.Code
		r.Failed = false
		r.LastSeq = e.Seq
	case Failure:
		r.Failed = true
		r.FailedSeq = e.Seq
		r.LastSeq = e.Seq
	}
}

// Touches reports whether an event of kind k changes partition state.
func (k EventKind) Touches() bool { return k != Planned }

// Flags returns the recorded flags of r.
func (r *PartitionRecord) Flags() PartitionFlags {
	var f PartitionFlags
	if r.SuccessSeq != 0 {
		f |= FlagMaterialized
	}
	if r.Failed {
		f |= FlagFailed
	}
	return f
}

// Recorded returns the recorded state of r for run-length ranges.
func (r *PartitionRecord) Recorded() RecordedState {
	return RecordedOf(r.Flags())
}

// RecordedOf maps flags to a recorded state.
func RecordedOf(f PartitionFlags) RecordedState {
	switch {
	case f&FlagMaterialized != 0 && f&FlagFailed != 0:
		return MaterializedFailed
	case f&FlagMaterialized != 0:
		return Materialized
	case f&FlagFailed != 0:
		return FailedOnly
	}
	return Missing
}

// Diff compares the state replayed from the log (want) with the stored one (got)
// and describes every difference; empty when they agree. LastSeq and Index are not
// compared (re-indexing touches them without an event).
func Diff(want, got *PartitionRecord) []string {
	var d []string
	cmp := func(field string, w, g any) {
		if w != g {
			d = append(d, fmt.Sprintf("%s is %v in the state but %v in the event log", field, g, w))
		}
	}
	cmp("success seq", want.SuccessSeq, got.SuccessSeq)
	cmp("data version", want.DataVersion, got.DataVersion)
	cmp("data-changed seq", want.DataChangedSeq, got.DataChangedSeq)
	cmp("input seq", want.InputSeq, got.InputSeq)
	cmp("failed", want.Failed, got.Failed)
	cmp("failed seq", want.FailedSeq, got.FailedSeq)
	if want.SuccessSeq != 0 {
		cmp("materialized at", want.MaterializedAt.UTC().Truncate(time.Microsecond), got.MaterializedAt.UTC().Truncate(time.Microsecond))
		wc, gc := want.Code, got.Code
		switch {
		case (wc == nil) != (gc == nil):
			d = append(d, "code version recorded in only one of state and event log")
		case wc != nil:
			cmp("code version", wc.Version, gc.Version)
			cmp("dep set", JoinKeys(wc.Deps), JoinKeys(gc.Deps))
		}
	}
	return d
}
