package store_test

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/freshetdev/freshet/assets"
	"github.com/freshetdev/freshet/store"
)

func mustPartitions(t *testing.T, spec assets.PartitionsSpec) *assets.Partitions {
	t.Helper()
	p, err := assets.NewPartitions(spec)
	if err != nil {
		t.Fatalf("NewPartitions(%+v): %v", spec, err)
	}
	return p
}

// catalog is the lookup Prepare is given in these tests.
func catalog(t *testing.T) func(assets.Key) *store.SyncedAsset {
	t.Helper()
	daily := mustPartitions(t, assets.PartitionsSpec{Granularity: assets.Daily, Start: "2026-01-01"})
	weekly := mustPartitions(t, assets.PartitionsSpec{Granularity: assets.Weekly, Start: "2026-01-05"})
	byKey := map[assets.Key]*store.SyncedAsset{}
	for _, a := range []*store.SyncedAsset{
		{ID: 1, Key: "sales/raw", Partitions: daily, Code: store.Code{Version: "7", Deps: []assets.Key{"src/a", "src/b"}}},
		{ID: 2, Key: "src/events", Partitions: daily, IsSource: true},
		{ID: 3, Key: "sales/weekly", Partitions: weekly, Code: store.Code{Version: "1", Deps: []assets.Key{"sales/raw"}}},
		{ID: 4, Key: "sales/summary", Code: store.Code{Version: "2"}},
		{ID: 5, Key: "old/gone", Removed: true},
		{ID: 6, Key: "src/single", IsSource: true},
	} {
		byKey[a.Key] = a
	}
	return func(k assets.Key) *store.SyncedAsset { return byKey[k] }
}

var now = time.Date(2026, 4, 8, 13, 14, 15, 123456789, time.UTC)

func mat(k assets.Key, p string) store.Event {
	return store.Event{Kind: store.Materialization, Asset: k, Partition: p, InputSeq: store.AtAppend}
}

func TestPrepareRejects(t *testing.T) {
	const watermark = 40
	with := func(e store.Event, change func(e *store.Event)) store.Event { change(&e); return e }
	cases := []struct {
		name  string
		event store.Event
		say   string
	}{
		{"unknown kind", with(mat("sales/raw", "2026-01-02"), func(e *store.Event) { e.Kind = "materialised" }), "unknown event kind"},
		{"empty kind", with(mat("sales/raw", "2026-01-02"), func(e *store.Event) { e.Kind = "" }), "unknown event kind"},
		{"unknown asset", mat("no/such", ""), "no such asset"},
		{"removed asset", mat("old/gone", ""), "removed"},
		{"daily key not a date", mat("sales/raw", "yesterday"), "not a daily key"},
		{"daily key before start", mat("sales/raw", "2025-12-31"), "before the first partition"},
		{"daily key not canonical", mat("sales/raw", "2026-1-2"), "not a daily key"},
		{"weekly key not a Monday", mat("sales/weekly", "2026-01-06"), "2026-01-06"},
		{"partitioned asset without key", mat("sales/raw", ""), "name a partition"},
		{"unpartitioned asset with key", mat("sales/summary", "2026-01-01"), "not partitioned"},
		{"materialization of a source", mat("src/events", "2026-01-01"), "source asset"},
		{"observation of a non-source", store.Event{Kind: store.Observation, Asset: "sales/raw", Partition: "2026-01-01", DataVersion: "v"}, "not a source asset"},
		{"observation without data version", store.Event{Kind: store.Observation, Asset: "src/single"}, "needs a data version"},
		{"data version too long", with(mat("sales/summary", ""), func(e *store.Event) { e.DataVersion = strings.Repeat("x", store.MaxDataVersionLen+1) }), "data version"},
		{"metadata array", with(mat("sales/summary", ""), func(e *store.Event) { e.Metadata = []byte(`[1]`) }), "json object"},
		{"metadata number", with(mat("sales/summary", ""), func(e *store.Event) { e.Metadata = []byte(`12`) }), "json object"},
		{"metadata invalid", with(mat("sales/summary", ""), func(e *store.Event) { e.Metadata = []byte(`{"a":`) }), "json object"},
		{"metadata blank", with(mat("sales/summary", ""), func(e *store.Event) { e.Metadata = []byte("  \n") }), "json object"},
		{"metadata too large", with(mat("sales/summary", ""), func(e *store.Event) {
			e.Metadata = []byte(`{"a":"` + strings.Repeat("x", store.MaxMetadataBytes) + `"}`)
		}), "at most"},
		{"input seq ahead", with(mat("sales/summary", ""), func(e *store.Event) { e.InputSeq = watermark + 1 }), "ahead of the catalog"},
		{"input seq negative", with(mat("sales/summary", ""), func(e *store.Event) { e.InputSeq = -2 }), "negative"},
	}
	lookup := catalog(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			events := []store.Event{mat("sales/raw", "2026-01-01"), tc.event, mat("sales/summary", "")}
			prepared, err := store.Prepare(events, lookup, watermark, now)
			if prepared != nil {
				t.Errorf("Prepare returned %d prepared events along with the error; want none", len(prepared))
			}
			var bad *store.BadEventsError
			if !errors.As(err, &bad) {
				t.Fatalf("Prepare error = %v (%T), want a *store.BadEventsError", err, err)
			}
			if len(bad.Errors) != 1 || bad.More != 0 {
				t.Fatalf("Prepare reported %v (+%d more), want exactly the bad event", bad.Errors, bad.More)
			}
			e := bad.Errors[0]
			if e.N != 1 || e.Asset != tc.event.Asset || e.Partition != tc.event.Partition {
				t.Errorf("EventError names event %d, %q %q; want event 1, %q %q", e.N, e.Asset, e.Partition, tc.event.Asset, tc.event.Partition)
			}
			if !strings.Contains(strings.ToLower(e.Msg), strings.ToLower(tc.say)) {
				t.Errorf("message %q does not say %q", e.Msg, tc.say)
			}
			if !strings.HasPrefix(err.Error(), "event 2 ") {
				t.Errorf("error %q does not start with the event's number counted from 1 (\"event 2 \")", err)
			}
		})
	}
}

func TestPrepareReportsEveryBadEvent(t *testing.T) {
	var events []store.Event
	var wantN []int
	for i := range 30 {
		events = append(events, mat("sales/raw", fmt.Sprintf("2026-02-%02d", 1+i%28)))
		if i%5 != 0 {
			wantN = append(wantN, len(events))
			events = append(events, mat("sales/raw", "not-a-day"))
		}
	}
	_, err := store.Prepare(events, catalog(t), 0, now)
	var bad *store.BadEventsError
	if !errors.As(err, &bad) {
		t.Fatalf("Prepare error = %v, want a *store.BadEventsError", err)
	}
	var gotN []int
	for _, e := range bad.Errors {
		gotN = append(gotN, e.N)
	}
	if !slices.Equal(gotN, wantN[:20]) || bad.More != len(wantN)-20 {
		t.Errorf("reported events %v and %d more; want the first 20 of %v and %d more", gotN, bad.More, wantN, len(wantN)-20)
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != 21 || lines[20] != fmt.Sprintf("… and %d more bad events", len(wantN)-20) {
		t.Errorf("error text has %d lines, last %q; want 21, the last counting the rest", len(lines), lines[len(lines)-1])
	}
}

func TestPrepareCompletes(t *testing.T) {
	const watermark = 40
	run := uuid.New()
	plus2 := time.FixedZone("UTC+2", 2*3600)
	longErr := strings.Repeat("e", store.MaxErrorLen+10)
	meta := []byte(` {"rows": 3} `)
	in := []store.Event{
		mat("sales/raw", "2026-01-03"), // 0: defaults
		{Kind: store.Materialization, Asset: "sales/raw", Partition: "2026-01-04", InputSeq: 12, DataVersion: "v1", DataChanged: true,
			At: time.Date(2026, 3, 1, 10, 0, 0, 999_999_999, plus2), RunID: run, Metadata: meta}, // 1: explicit
		{Kind: store.Materialization, Asset: "sales/summary", InputSeq: watermark,
			Code: &store.Code{Version: "hot", Deps: []assets.Key{"z/z", "a/a", "z/z"}}}, // 2: explicit code
		{Kind: store.Failure, Asset: "sales/weekly", Partition: "2026-01-19", InputSeq: 5, Error: longErr,
			Code: &store.Code{Version: "x"}, DataVersion: "kept"}, // 3
		{Kind: store.Observation, Asset: "src/events", Partition: "2026-01-01", DataVersion: "etag", InputSeq: store.AtAppend}, // 4
		{Kind: store.Planned, Asset: "sales/summary"}, // 5
		mat("sales/raw", "2026-01-05"),                // 6: another generated data version
	}
	orig := make([]store.Event, len(in))
	copy(orig, in)
	origCode := *in[2].Code
	origDeps := slices.Clone(in[2].Code.Deps)

	out, err := store.Prepare(in, catalog(t), watermark, now)
	if err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	if len(out) != len(in) {
		t.Fatalf("Prepare returned %d events, want %d", len(out), len(in))
	}
	nowUTC := now.Truncate(time.Microsecond)
	type want struct {
		assetID  int64
		index    int
		inputSeq int64
		at       time.Time
		dv       string // "*": generated
		code     *store.Code
		errText  string
	}
	wants := []want{
		{1, 2, watermark, nowUTC, "*", &store.Code{Version: "7", Deps: []assets.Key{"src/a", "src/b"}}, ""},
		{1, 3, 12, time.Date(2026, 3, 1, 8, 0, 0, 999_999_000, time.UTC), "v1", &store.Code{Version: "7", Deps: []assets.Key{"src/a", "src/b"}}, ""},
		{4, 0, watermark, nowUTC, "*", &store.Code{Version: "hot", Deps: []assets.Key{"a/a", "z/z"}}, ""},
		{3, 2, 0, nowUTC, "kept", nil, longErr[:store.MaxErrorLen] + "… (cut)"},
		{2, 0, 0, nowUTC, "etag", nil, ""},
		{4, 0, 0, nowUTC, "", nil, ""},
		{1, 4, watermark + 6, nowUTC, "*", &store.Code{Version: "7", Deps: []assets.Key{"src/a", "src/b"}}, ""},
	}
	for i, p := range out {
		w := wants[i]
		if p.Seq != watermark+int64(i)+1 {
			t.Errorf("event %d: Seq = %d, want %d", i, p.Seq, watermark+int64(i)+1)
		}
		if p.AssetID != w.assetID || p.Index != w.index {
			t.Errorf("event %d: asset id %d, index %d; want %d, %d", i, p.AssetID, p.Index, w.assetID, w.index)
		}
		if p.InputSeq != w.inputSeq {
			t.Errorf("event %d: InputSeq = %d, want %d", i, p.InputSeq, w.inputSeq)
		}
		if !p.At.Equal(w.at) || p.At.Location() != time.UTC {
			t.Errorf("event %d: At = %s, want %s in UTC", i, p.At.Format(time.RFC3339Nano), w.at.Format(time.RFC3339Nano))
		}
		switch {
		case w.dv == "*" && p.DataVersion == "":
			t.Errorf("event %d: no data version generated", i)
		case w.dv != "*" && p.DataVersion != w.dv:
			t.Errorf("event %d: DataVersion = %q, want %q", i, p.DataVersion, w.dv)
		}
		if !reflect.DeepEqual(p.Code, w.code) {
			t.Errorf("event %d: Code = %+v, want %+v", i, p.Code, w.code)
		}
		if p.DataChanged {
			t.Errorf("event %d: DataChanged = true; Prepare leaves it to Apply", i)
		}
		if p.Error != w.errText {
			t.Errorf("event %d: Error is %d bytes, want %d", i, len(p.Error), len(w.errText))
		}
	}
	if out[0].DataVersion == out[6].DataVersion || out[0].DataVersion == out[2].DataVersion {
		t.Errorf("generated data versions repeat: %q, %q, %q", out[0].DataVersion, out[2].DataVersion, out[6].DataVersion)
	}
	if out[1].RunID != run || string(out[1].Metadata) != string(meta) {
		t.Errorf("event 1: run id %s, metadata %q; want them kept", out[1].RunID, out[1].Metadata)
	}
	// The caller's events are left alone.
	if !reflect.DeepEqual(in, orig) || !reflect.DeepEqual(*in[2].Code, origCode) || !slices.Equal(in[2].Code.Deps, origDeps) {
		t.Errorf("Prepare modified the events it was given")
	}
}

func TestPrepareEmpty(t *testing.T) {
	out, err := store.Prepare(nil, catalog(t), 9, now)
	if err != nil || len(out) != 0 {
		t.Errorf("Prepare(nil) = %d events, %v; want none, no error", len(out), err)
	}
}

func TestEventErrorText(t *testing.T) {
	cases := []struct {
		err  store.EventError
		want string
	}{
		{store.EventError{N: 0, Asset: "a/b", Partition: "2026-01-01", Msg: "bad"}, `event 1 (asset a/b, partition "2026-01-01"): bad`},
		{store.EventError{N: 2, Asset: "a/b", Msg: "bad"}, `event 3 (asset a/b): bad`},
		{store.EventError{N: 1, Msg: "bad"}, `event 2: bad`},
	}
	for _, tc := range cases {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("Error() = %q, want %q", got, tc.want)
		}
	}
}

func TestApply(t *testing.T) {
	at := func(s int) time.Time { return time.Date(2026, 1, 1, 0, 0, s, 0, time.UTC) }
	c1 := &store.Code{Version: "1"}
	c2 := &store.Code{Version: "2", Deps: []assets.Key{"a/a"}}
	type step struct {
		e           store.Event
		wantChanged bool
		want        store.PartitionRecord // Asset, Partition, Index untouched
	}
	steps := []step{
		{store.Event{Seq: 3, Kind: store.Planned}, false, store.PartitionRecord{}},
		{store.Event{Seq: 5, Kind: store.Failure, At: at(5)}, false,
			store.PartitionRecord{Failed: true, FailedSeq: 5, LastSeq: 5}},
		{store.Event{Seq: 7, Kind: store.Materialization, At: at(7), DataVersion: "v1", InputSeq: 6, Code: c1}, true,
			store.PartitionRecord{SuccessSeq: 7, MaterializedAt: at(7), DataVersion: "v1", DataChangedSeq: 7, InputSeq: 6, Code: c1, FailedSeq: 5, LastSeq: 7}},
		{store.Event{Seq: 9, Kind: store.Materialization, At: at(9), DataVersion: "v1", InputSeq: 8, Code: c2}, false,
			store.PartitionRecord{SuccessSeq: 9, MaterializedAt: at(9), DataVersion: "v1", DataChangedSeq: 7, InputSeq: 8, Code: c2, FailedSeq: 5, LastSeq: 9}},
		{store.Event{Seq: 10, Kind: store.Failure, At: at(10)}, false,
			store.PartitionRecord{SuccessSeq: 9, MaterializedAt: at(9), DataVersion: "v1", DataChangedSeq: 7, InputSeq: 8, Code: c2, Failed: true, FailedSeq: 10, LastSeq: 10}},
		{store.Event{Seq: 11, Kind: store.Planned, At: at(11)}, false,
			store.PartitionRecord{SuccessSeq: 9, MaterializedAt: at(9), DataVersion: "v1", DataChangedSeq: 7, InputSeq: 8, Code: c2, Failed: true, FailedSeq: 10, LastSeq: 10}},
		{store.Event{Seq: 12, Kind: store.Materialization, At: at(12), DataVersion: "v2", InputSeq: 11, Code: c2}, true,
			store.PartitionRecord{SuccessSeq: 12, MaterializedAt: at(12), DataVersion: "v2", DataChangedSeq: 12, InputSeq: 11, Code: c2, FailedSeq: 10, LastSeq: 12}},
		{store.Event{Seq: 13, Kind: store.Observation, At: at(13), DataVersion: "v2"}, false,
			store.PartitionRecord{SuccessSeq: 13, MaterializedAt: at(13), DataVersion: "v2", DataChangedSeq: 12, FailedSeq: 10, LastSeq: 13}},
	}
	r := &store.PartitionRecord{Asset: "a/b", Partition: "p", Index: 4}
	for i, s := range steps {
		e := s.e
		e.DataChanged = !s.wantChanged // Apply must overwrite it for successes
		if e.Kind == store.Planned || e.Kind == store.Failure {
			e.DataChanged = false
		}
		r.Apply(&e)
		if e.DataChanged != s.wantChanged {
			t.Errorf("step %d (%s): DataChanged = %v, want %v", i, e.Kind, e.DataChanged, s.wantChanged)
		}
		want := s.want
		want.Asset, want.Partition, want.Index = "a/b", "p", 4
		if !reflect.DeepEqual(*r, want) {
			t.Errorf("step %d (%s):\n got  %+v\n want %+v", i, e.Kind, *r, want)
		}
	}
}

func TestApplyFirstSuccessAlwaysChanged(t *testing.T) {
	for _, kind := range []store.EventKind{store.Materialization, store.Observation} {
		r := &store.PartitionRecord{}
		e := store.Event{Seq: 1, Kind: kind} // even an empty data version
		r.Apply(&e)
		if !e.DataChanged || r.DataChangedSeq != 1 {
			t.Errorf("first %s: DataChanged %v, data-changed seq %d; want true, 1", kind, e.DataChanged, r.DataChangedSeq)
		}
	}
}

func TestFlagsAndRecorded(t *testing.T) {
	cases := []struct {
		r     store.PartitionRecord
		flags store.PartitionFlags
		state store.RecordedState
	}{
		{store.PartitionRecord{}, 0, store.Missing},
		{store.PartitionRecord{SuccessSeq: 3}, store.FlagMaterialized, store.Materialized},
		{store.PartitionRecord{Failed: true, FailedSeq: 2}, store.FlagFailed, store.FailedOnly},
		{store.PartitionRecord{SuccessSeq: 3, Failed: true, FailedSeq: 4}, store.FlagMaterialized | store.FlagFailed, store.MaterializedFailed},
	}
	for _, tc := range cases {
		if got := tc.r.Flags(); got != tc.flags {
			t.Errorf("%+v: Flags = %b, want %b", tc.r, got, tc.flags)
		}
		if got := tc.r.Recorded(); got != tc.state {
			t.Errorf("%+v: Recorded = %s, want %s", tc.r, got, tc.state)
		}
	}
	// The in-flight flags do not change the recorded state.
	for f, want := range map[store.PartitionFlags]store.RecordedState{
		store.FlagQueued: store.Missing,
		store.FlagRunning | store.FlagMaterialized:                    store.Materialized,
		store.FlagQueued | store.FlagFailed:                           store.FailedOnly,
		store.FlagRunning | store.FlagFailed | store.FlagMaterialized: store.MaterializedFailed,
	} {
		if got := store.RecordedOf(f); got != want {
			t.Errorf("RecordedOf(%b) = %s, want %s", f, got, want)
		}
	}
	for k, want := range map[store.EventKind]bool{store.Materialization: true, store.Observation: true, store.Failure: true, store.Planned: false} {
		if got := k.Touches(); got != want {
			t.Errorf("%s.Touches() = %v, want %v", k, got, want)
		}
	}
}

func TestDiff(t *testing.T) {
	at := time.Date(2026, 1, 1, 10, 0, 0, 123456000, time.UTC)
	base := store.PartitionRecord{Asset: "a/b", Partition: "p", Index: 3, SuccessSeq: 9, MaterializedAt: at, DataVersion: "v",
		DataChangedSeq: 7, InputSeq: 8, Code: &store.Code{Version: "1", Deps: []assets.Key{"x/y"}}, Failed: true, FailedSeq: 10, LastSeq: 10}
	cases := []struct {
		name   string
		change func(r *store.PartitionRecord)
		say    string // "": no difference
	}{
		{"same", func(*store.PartitionRecord) {}, ""},
		{"time below a microsecond and in another zone", func(r *store.PartitionRecord) {
			r.MaterializedAt = at.Add(999).In(time.FixedZone("X", 3600))
		}, ""},
		{"last seq and index are not compared", func(r *store.PartitionRecord) { r.LastSeq, r.Index = 99, -1 }, ""},
		{"equal code, other pointer", func(r *store.PartitionRecord) { r.Code = &store.Code{Version: "1", Deps: []assets.Key{"x/y"}} }, ""},
		{"success seq", func(r *store.PartitionRecord) { r.SuccessSeq = 8 }, "success seq"},
		{"data version", func(r *store.PartitionRecord) { r.DataVersion = "w" }, "data version"},
		{"data-changed seq", func(r *store.PartitionRecord) { r.DataChangedSeq = 9 }, "data-changed seq"},
		{"input seq", func(r *store.PartitionRecord) { r.InputSeq = 1 }, "input seq"},
		{"failed", func(r *store.PartitionRecord) { r.Failed = false }, "failed"},
		{"failed seq", func(r *store.PartitionRecord) { r.FailedSeq = 2 }, "failed seq"},
		{"materialized at", func(r *store.PartitionRecord) { r.MaterializedAt = at.Add(time.Microsecond) }, "materialized at"},
		{"code missing", func(r *store.PartitionRecord) { r.Code = nil }, "code version"},
		{"code version", func(r *store.PartitionRecord) { r.Code = &store.Code{Version: "2", Deps: []assets.Key{"x/y"}} }, "code version"},
		{"dep set", func(r *store.PartitionRecord) { r.Code = &store.Code{Version: "1"} }, "dep set"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			want, got := base, base
			tc.change(&got)
			d := store.Diff(&want, &got)
			switch {
			case tc.say == "" && len(d) != 0:
				t.Errorf("Diff = %q, want no difference", d)
			case tc.say != "" && len(d) != 1:
				t.Errorf("Diff = %q, want one difference about %s", d, tc.say)
			case tc.say != "" && !strings.HasPrefix(d[0], tc.say):
				t.Errorf("Diff = %q, want it about %s", d, tc.say)
			}
		})
	}
	// Without a success, time and code are not compared.
	a := store.PartitionRecord{Failed: true, FailedSeq: 2}
	b := a
	b.MaterializedAt, b.Code = at, &store.Code{Version: "9"}
	if d := store.Diff(&a, &b); len(d) != 0 {
		t.Errorf("Diff of never-materialized records = %q, want none", d)
	}
}
