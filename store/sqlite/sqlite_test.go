package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/freshetdev/freshet/assets"
	"github.com/freshetdev/freshet/migrations"
	"github.com/freshetdev/freshet/store"
)

func TestMigrations(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "nested", "folder", "catalog.db")

	s, err := Open(ctx, path, WithoutMigrations())
	if err != nil {
		t.Fatal(err)
	}
	latest, err := migrations.Latest(migrations.SQLite)
	if err != nil {
		t.Fatal(err)
	}
	if v, pending, err := s.SchemaVersion(ctx); err != nil || v != 0 || pending != int(latest) {
		t.Fatalf("SchemaVersion of an empty file = %d, %d pending, %v; want 0, %d pending", v, pending, err, latest)
	}
	applied, err := s.Migrate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(applied) != int(latest) || applied[len(applied)-1].Version != latest {
		t.Fatalf("Migrate on an empty file applied %v; want versions 1..%d", applied, latest)
	}
	if again, err := s.Migrate(ctx); err != nil || len(again) != 0 {
		t.Fatalf("second Migrate = %v, %v; want nothing applied", again, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Opening a migrated file applies nothing.
	s, err = Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if applied, err := s.Migrate(ctx); err != nil || len(applied) != 0 {
		t.Fatalf("Migrate after reopen = %v, %v; want nothing applied", applied, err)
	}
	if v, pending, err := s.SchemaVersion(ctx); err != nil || v != latest || pending != 0 {
		t.Fatalf("SchemaVersion = %d, %d pending, %v; want %d, 0 pending", v, pending, err, latest)
	}
}

func TestOpenSettings(t *testing.T) {
	t.Parallel()
	s, path := openTemp(t)
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("the database file was not created: %v", err)
	}
	ctx := context.Background()
	for _, db := range []struct {
		name string
		db   *sql.DB
		want map[string]string
	}{
		{"writer", s.write, map[string]string{"journal_mode": "wal", "foreign_keys": "1", "busy_timeout": "10000", "synchronous": "1"}},
		{"reader", s.read, map[string]string{"journal_mode": "wal", "foreign_keys": "1", "busy_timeout": "10000", "query_only": "1"}},
	} {
		for pragma, want := range db.want {
			var got string
			if err := db.db.QueryRowContext(ctx, "PRAGMA "+pragma).Scan(&got); err != nil {
				t.Fatalf("%s: PRAGMA %s: %v", db.name, pragma, err)
			}
			if got != want {
				t.Errorf("%s: PRAGMA %s = %s; want %s", db.name, pragma, got, want)
			}
		}
	}
}

func TestOpenAnyFileName(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"plain.db", "with space.db", "query?mode=ro.db", "hash#frag.db", "percent%20.db", "ünïcode.db"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			path := filepath.Join(t.TempDir(), name)
			s, err := Open(ctx, path)
			if err != nil {
				t.Fatal(err)
			}
			mustSync(t, s, defsOf(built("a", nil)))
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(path); err != nil {
				t.Fatalf("the catalog is not at %q: %v", path, err)
			}
			s, err = Open(ctx, path)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if records, err := s.Assets(ctx); err != nil || len(records) != 1 {
				t.Errorf("Assets after reopening %q = %v, %v", name, records, err)
			}
		})
	}
}

func TestInMemory(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, err := Open(ctx, ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	mustSync(t, s, defsOf(built("a", nil)))
	mustAppend(t, s, materialization("a", "", "v1"))
	snap, err := s.ReadState(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st := snap.Assets["a"]; st == nil || st.Len() != 1 || st.Flags[0] != store.FlagMaterialized {
		t.Fatalf("state of a = %+v; want one materialized partition", st)
	}
}

func TestReopenKeepsData(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, path := openTemp(t)
	p := dailyFrom(t, "2026-01-01")
	mustSync(t, s, defsOf(built("sales/orders", p)))
	runID := uuid.New()
	in := materialization("sales/orders", "2026-01-03", "v1")
	in.RunID, in.Metadata = runID, json.RawMessage(`{"rows": 12}`)
	written := mustAppend(t, s, in)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s2, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if w, err := s2.Watermark(ctx); err != nil || w != written[0].Seq {
		t.Fatalf("Watermark after reopen = %d, %v; want %d", w, err, written[0].Seq)
	}
	page, err := s2.Events(ctx, store.EventQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Events) != 1 {
		t.Fatalf("events after reopen: %+v", page.Events)
	}
	got := page.Events[0]
	if got.RunID != runID || string(got.Metadata) != `{"rows": 12}` || !got.At.Equal(written[0].At) || got.DataVersion != "v1" {
		t.Errorf("event after reopen = %+v; want %+v", got, written[0])
	}
	rec, err := s2.Partition(ctx, "sales/orders", "2026-01-03")
	if err != nil {
		t.Fatal(err)
	}
	if rec.Index != 2 || rec.SuccessSeq != written[0].Seq || rec.Code == nil || rec.Code.Version != "1" {
		t.Errorf("partition after reopen = %+v", rec)
	}
	mustVerify(t, s2)
}

func TestAppendRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := openTemp(t)
	p := dailyFrom(t, "2026-01-01")
	mustSync(t, s, defsOf(
		source("raw/rates", nil),
		built("sales/orders", p, "raw/rates"),
	))
	at := time.Date(2026, 2, 1, 12, 30, 0, 123456789, time.FixedZone("x", 3600))
	runID, stepID := uuid.New(), uuid.New()
	in := []store.Event{
		{Kind: store.Observation, Asset: "raw/rates", DataVersion: "r1"},
		{Kind: store.Materialization, Asset: "sales/orders", Partition: "2026-01-01", InputSeq: store.AtAppend,
			At: at, RunID: runID, StepID: stepID, Metadata: json.RawMessage(`{"rows":3}`)},
		{Kind: store.Materialization, Asset: "sales/orders", Partition: "2026-01-01", DataVersion: "same", InputSeq: 1},
		{Kind: store.Materialization, Asset: "sales/orders", Partition: "2026-01-01", DataVersion: "same", InputSeq: 1,
			Code: &store.Code{Version: "2", Deps: []assets.Key{"raw/rates", "raw/rates"}}},
		{Kind: store.Failure, Asset: "sales/orders", Partition: "2026-01-02", Error: "exit status 1"},
		{Kind: store.Planned, Asset: "sales/orders", Partition: "2026-01-03"},
	}
	base, err := s.Watermark(ctx) // the definitions took the first seqs
	if err != nil {
		t.Fatal(err)
	}
	in[2].InputSeq, in[3].InputSeq = base, base
	out := mustAppend(t, s, in...)
	for i, e := range out {
		if e.Seq != base+int64(i+1) {
			t.Errorf("event %d: seq %d; want %d", i, e.Seq, base+int64(i+1))
		}
	}
	if out[1].DataVersion == "" || out[1].InputSeq != base+1 || !out[1].DataChanged || out[1].Code.Version != "1" {
		t.Errorf("materialization without data version = %+v", out[1])
	}
	if !out[1].At.Equal(at.Truncate(time.Microsecond)) || out[1].At.Location() != time.UTC || out[1].At.Nanosecond()%1000 != 0 {
		t.Errorf("At = %v; want %v in UTC, microseconds", out[1].At, at)
	}
	if !out[2].DataChanged || out[3].DataChanged {
		t.Errorf("DataChanged = %v, %v; want true (new version), false (same again)", out[2].DataChanged, out[3].DataChanged)
	}

	page, err := s.Events(ctx, store.EventQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Events) != len(out) || page.Next != 0 {
		t.Fatalf("Events: %d events, next %d; want %d, 0", len(page.Events), page.Next, len(out))
	}
	for i, got := range page.Events {
		want := out[len(out)-1-i]
		if msg := diffEvent(want, got); msg != "" {
			t.Errorf("event %d read back: %s", want.Seq, msg)
		}
	}

	rec, err := s.Partition(ctx, "sales/orders", "2026-01-01")
	if err != nil {
		t.Fatal(err)
	}
	want := &store.PartitionRecord{Asset: "sales/orders", Partition: "2026-01-01", Index: 0,
		SuccessSeq: out[3].Seq, MaterializedAt: out[3].At, DataVersion: "same", DataChangedSeq: out[2].Seq, InputSeq: base,
		Code: &store.Code{Version: "2", Deps: []assets.Key{"raw/rates"}}, LastSeq: out[3].Seq}
	if d := store.Diff(want, rec); len(d) > 0 || rec.LastSeq != out[3].Seq || rec.Index != 0 {
		t.Errorf("Partition = %+v: %v", rec, d)
	}
	failed, err := s.Partition(ctx, "sales/orders", "2026-01-02")
	if err != nil {
		t.Fatal(err)
	}
	if !failed.Failed || failed.FailedSeq != out[4].Seq || failed.SuccessSeq != 0 || failed.Code != nil || failed.Index != 1 {
		t.Errorf("failed partition = %+v", failed)
	}
	if _, err := s.Partition(ctx, "sales/orders", "2026-01-03"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a planned-only partition: err = %v; want ErrNotFound", err)
	}
	if _, err := s.Partition(ctx, "nope", ""); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("an unknown asset: err = %v; want ErrNotFound", err)
	}

	snap, err := s.ReadState(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	orders := snap.Assets["sales/orders"]
	if snap.Seq != out[5].Seq || orders == nil || orders.Len() != 2 {
		t.Fatalf("ReadState = seq %d, orders %+v", snap.Seq, orders)
	}
	if orders.Flags[0] != store.FlagMaterialized || orders.Flags[1] != store.FlagFailed {
		t.Errorf("flags = %v", orders.Flags)
	}
	if !slices.Equal(orders.CodeVersions, []string{"1", "2"}) || orders.CodeVersions[orders.CodeVersion[0]] != "2" {
		t.Errorf("code versions = %v, ids %v", orders.CodeVersions, orders.CodeVersion)
	}
	if len(orders.DepSets) != 1 || !slices.Equal(orders.DepSets[orders.DepSet[0]], []assets.Key{"raw/rates"}) {
		t.Errorf("dep sets = %v, ids %v", orders.DepSets, orders.DepSet)
	}
	if rates := snap.Assets["raw/rates"]; rates == nil || rates.Len() != 1 || rates.Flags[0] != store.FlagMaterialized || rates.DataChangedSeq[0] != out[0].Seq {
		t.Errorf("source state = %+v", rates)
	}
	mustVerify(t, s)
}

// diffEvent describes how an event read back differs from the one Append returned.
func diffEvent(want, got store.Event) string {
	switch {
	case want.Seq != got.Seq, want.Kind != got.Kind, want.Asset != got.Asset, want.Partition != got.Partition:
		return fmt.Sprintf("identity %d %s %s %q; want %d %s %s %q", got.Seq, got.Kind, got.Asset, got.Partition, want.Seq, want.Kind, want.Asset, want.Partition)
	case !want.At.Equal(got.At), got.At.Location() != time.UTC:
		return fmt.Sprintf("at %v; want %v", got.At, want.At)
	case want.RunID != got.RunID, want.StepID != got.StepID:
		return "run or step id differs"
	case want.DataVersion != got.DataVersion, want.DataChanged != got.DataChanged, want.InputSeq != got.InputSeq:
		return fmt.Sprintf("data %q %v %d; want %q %v %d", got.DataVersion, got.DataChanged, got.InputSeq, want.DataVersion, want.DataChanged, want.InputSeq)
	case string(want.Metadata) != string(got.Metadata), want.Error != got.Error:
		return fmt.Sprintf("metadata %s error %q; want %s %q", got.Metadata, got.Error, want.Metadata, want.Error)
	case (want.Code == nil) != (got.Code == nil):
		return fmt.Sprintf("code %v; want %v", got.Code, want.Code)
	case want.Code != nil && (want.Code.Version != got.Code.Version || store.JoinKeys(want.Code.Deps) != store.JoinKeys(got.Code.Deps)):
		return fmt.Sprintf("code %+v; want %+v", *got.Code, *want.Code)
	}
	return ""
}

func TestBadEventsWriteNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := openTemp(t)
	p := dailyFrom(t, "2026-01-01")
	mustSync(t, s, defsOf(built("a", p), source("src", nil)))
	mustAppend(t, s, materialization("a", "2026-01-01", "v1"))
	before, _ := s.Watermark(ctx)

	_, err := s.Append(ctx, []store.Event{
		materialization("a", "2026-01-02", "ok"),
		materialization("a", "not-a-date", "v"),
		materialization("missing", "", "v"),
		{Kind: store.Observation, Asset: "src"},
		{Kind: "exploded", Asset: "a", Partition: "2026-01-01"},
	})
	var bad *store.BadEventsError
	if !errors.As(err, &bad) {
		t.Fatalf("Append = %v; want a *store.BadEventsError", err)
	}
	if len(bad.Errors) != 4 {
		t.Errorf("bad events reported: %v; want 4", bad)
	}
	if after, _ := s.Watermark(ctx); after != before {
		t.Errorf("watermark moved from %d to %d on a rejected append", before, after)
	}
	if page, _ := s.Events(ctx, store.EventQuery{}); len(page.Events) != 1 {
		t.Errorf("events after a rejected append: %d; want 1", len(page.Events))
	}
	if _, err := s.Partition(ctx, "a", "2026-01-02"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a partition of a rejected append was written: %v", err)
	}
	// A good append still gets the next seq.
	if out := mustAppend(t, s, materialization("a", "2026-01-02", "v")); out[0].Seq != before+1 {
		t.Errorf("seq after a rejected append = %d; want %d", out[0].Seq, before+1)
	}
	mustVerify(t, s)
}

// An append that fails after interning a new code version must not leave its id
// in the cache: the next append would reference a row that was rolled back.
func TestRolledBackInternsAreForgotten(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := openTemp(t)
	p := dailyFrom(t, "2026-01-01")
	mustSync(t, s, defsOf(built("a", nil), built("b", p)))
	// Fail the transaction after Prepare and interning, when the state is written.
	if _, err := s.write.ExecContext(ctx, `CREATE TRIGGER fail_b BEFORE INSERT ON partition_state
		WHEN NEW.partition_key = '2026-01-05' BEGIN SELECT RAISE(ABORT, 'injected failure'); END`); err != nil {
		t.Fatal(err)
	}
	newCode := materialization("a", "", "v")
	newCode.Code = &store.Code{Version: "brand-new", Deps: []assets.Key{"b"}}
	if _, err := s.Append(ctx, []store.Event{newCode, materialization("b", "2026-01-05", "v")}); err == nil {
		t.Fatal("Append through the failing trigger succeeded")
	}
	if _, err := s.write.ExecContext(ctx, `DROP TRIGGER fail_b`); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, s, newCode)
	rec, err := s.Partition(ctx, "a", "")
	if err != nil {
		t.Fatal(err)
	}
	if rec.Code == nil || rec.Code.Version != "brand-new" || !slices.Equal(rec.Code.Deps, []assets.Key{"b"}) {
		t.Errorf("code after the retry = %+v; want brand-new built from b", rec.Code)
	}
	mustVerify(t, s)
}

func TestSyncDefinitions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := openTemp(t)
	day := dailyFrom(t, "2026-01-01")
	res := mustSync(t, s, defsOf(built("a", day), built("b", nil, "a")))
	if !slices.Equal(res.Added, []assets.Key{"a", "b"}) || res.Seq != 2 {
		t.Fatalf("first sync = %+v", res)
	}
	if again := mustSync(t, s, defsOf(built("a", day), built("b", nil, "a"))); len(again.Added)+len(again.Changed)+len(again.Removed) != 0 || again.Seq != 2 {
		t.Fatalf("unchanged re-sync = %+v; want nothing, seq 2", again)
	}
	mustAppend(t, s, materialization("a", "2026-01-01", "v"), materialization("a", "2026-01-05", "v"))

	// Start two days later: partition 2026-01-01 no longer exists, 2026-01-05 moves to index 2.
	later := dailyFrom(t, "2026-01-03")
	b2 := built("b", nil, "a")
	b2.CodeVersion = "2"
	res = mustSync(t, s, defsOf(built("a", later), b2))
	if !slices.Equal(res.Changed, []assets.Key{"a", "b"}) || !slices.Equal(res.Reindexed, []assets.Key{"a"}) || res.Seq != 6 {
		t.Fatalf("sync with new partitions = %+v", res)
	}
	gone, err := s.Partition(ctx, "a", "2026-01-01")
	if err != nil || gone.Index != -1 || gone.LastSeq != 5 {
		t.Errorf("partition left out by the new start = %+v, %v; want index -1, last seq 5", gone, err)
	}
	moved, err := s.Partition(ctx, "a", "2026-01-05")
	if err != nil || moved.Index != 2 {
		t.Errorf("re-indexed partition = %+v, %v; want index 2", moved, err)
	}
	snap, err := s.ReadState(ctx, []assets.Key{"a"})
	if err != nil {
		t.Fatal(err)
	}
	if a := snap.Assets["a"]; a == nil || a.Len() != 3 || a.Flags[2] != store.FlagMaterialized || countFlags(a, store.FlagMaterialized) != 1 {
		t.Errorf("state after re-index = %+v", snap.Assets["a"])
	}
	if _, ok := snap.Assets["b"]; ok {
		t.Errorf("ReadState([a]) returned b")
	}
	hist, err := s.DefinitionHistory(ctx, "b", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 2 || hist[0].Change != store.Changed || !slices.Equal(hist[0].Fields, []string{store.FieldCodeVersion}) || hist[1].Change != store.Added {
		t.Errorf("history of b = %+v", hist)
	}

	// Remove a, then bring it back: the history is kept, the state too.
	res = mustSync(t, s, defsOf(b2))
	if !slices.Equal(res.Removed, []assets.Key{"a"}) {
		t.Fatalf("removing sync = %+v", res)
	}
	if snap, _ := s.ReadState(ctx, nil); snap.Assets["a"] != nil {
		t.Error("a removed asset is in ReadState")
	}
	if _, err := s.Append(ctx, []store.Event{materialization("a", "2026-01-05", "v")}); err == nil {
		t.Error("Append to a removed asset succeeded")
	}
	records, err := s.Assets(ctx)
	if err != nil || len(records) != 2 || !records[0].Removed() || records[0].RemovedSeq != 7 {
		t.Fatalf("Assets = %+v, %v", records, err)
	}
	res = mustSync(t, s, defsOf(built("a", day), b2))
	if !slices.Equal(res.Added, []assets.Key{"a"}) || !slices.Equal(res.Reindexed, []assets.Key{"a"}) {
		t.Fatalf("re-adding sync = %+v", res)
	}
	back, err := s.Partition(ctx, "a", "2026-01-01")
	if err != nil || back.Index != 0 {
		t.Errorf("partition after re-add = %+v, %v; want index 0", back, err)
	}
	hist, err = s.DefinitionHistory(ctx, "a", 2)
	if err != nil || len(hist) != 2 || hist[0].Change != store.Added || hist[1].Change != store.Removed {
		t.Errorf("history of a (2 newest) = %+v, %v", hist, err)
	}
	if _, err := s.DefinitionHistory(ctx, "nope", 0); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("history of an unknown asset: %v; want ErrNotFound", err)
	}
	mustVerify(t, s)
}

func TestEventsPaging(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := openTemp(t)
	p := dailyFrom(t, "2026-01-01")
	mustSync(t, s, defsOf(built("a", p), built("b", nil)))
	var in []store.Event
	for i, key := range dayKeys(p, 0, 50) {
		in = append(in, materialization("a", key, "v"))
		if i%5 == 0 {
			in = append(in, ev(store.Failure, "b", ""))
		}
	}
	mustAppend(t, s, in...)

	tests := []struct {
		name  string
		query store.EventQuery
		want  int
	}{
		{"all", store.EventQuery{}, 60},
		{"one asset", store.EventQuery{Asset: "a"}, 50},
		{"some partitions", store.EventQuery{Asset: "a", Partitions: []string{"2026-01-01", "2026-01-10", "2025-01-01"}}, 2},
		{"no partitions", store.EventQuery{Asset: "a", Partitions: []string{}}, 0},
		{"kinds", store.EventQuery{Kinds: []store.EventKind{store.Failure}}, 10},
		{"unknown asset", store.EventQuery{Asset: "zzz"}, 0},
	}
	for _, tt := range tests {
		for _, limit := range []int{0, 1, 7, 100} {
			t.Run(fmt.Sprintf("%s/limit %d", tt.name, limit), func(t *testing.T) {
				t.Parallel()
				q := tt.query
				q.Limit = limit
				var seen []int64
				for pages := 0; ; pages++ {
					if pages > 100 {
						t.Fatal("paging does not end")
					}
					page, err := s.Events(ctx, q)
					if err != nil {
						t.Fatal(err)
					}
					if limit > 0 && len(page.Events) > limit {
						t.Fatalf("page of %d events; limit %d", len(page.Events), limit)
					}
					for _, e := range page.Events {
						if len(seen) > 0 && e.Seq >= seen[len(seen)-1] {
							t.Fatalf("seq %d after %d: not newest first", e.Seq, seen[len(seen)-1])
						}
						seen = append(seen, e.Seq)
					}
					if page.Next == 0 {
						break
					}
					q.Before = page.Next
				}
				if len(seen) != tt.want {
					t.Errorf("saw %d events; want %d", len(seen), tt.want)
				}
			})
		}
	}
}

func TestPartitionRanges(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := openTemp(t)
	p := dailyFrom(t, "2026-01-01")
	mustSync(t, s, defsOf(built("a", p)))
	keys := dayKeys(p, 0, 10)
	mustAppend(t, s,
		materialization("a", keys[2], "v"), materialization("a", keys[3], "v"),
		ev(store.Failure, "a", keys[3]), ev(store.Failure, "a", keys[5]), materialization("a", keys[6], "v"))
	got, err := s.PartitionRanges(ctx, "a", 1, 9)
	if err != nil {
		t.Fatal(err)
	}
	r := func(lo, hi int, state store.RecordedState) store.Range {
		return store.Range{Lo: lo, Hi: hi, State: state}
	}
	want := []store.Range{r(1, 2, store.Missing), r(2, 3, store.Materialized), r(3, 4, store.MaterializedFailed),
		r(4, 5, store.Missing), r(5, 6, store.FailedOnly), r(6, 7, store.Materialized), r(7, 9, store.Missing)}
	if !slices.Equal(got, want) {
		t.Errorf("PartitionRanges = %v; want %v", got, want)
	}
	if _, err := s.PartitionRanges(ctx, "zzz", 0, 3); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("ranges of an unknown asset: %v; want ErrNotFound", err)
	}
}

// Concurrent appenders all get distinct seqs; together they are gap-free, and no
// SQLITE_BUSY surfaces.
func TestConcurrentAppenders(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := openTemp(t)
	p := dailyFrom(t, "2020-01-01")
	mustSync(t, s, defsOf(built("a", p)))
	start, _ := s.Watermark(ctx)
	const writers, appends = 8, 25
	var (
		mu   sync.Mutex
		seqs []int64
		wg   sync.WaitGroup
	)
	for w := range writers {
		wg.Go(func() {
			var last int64
			for i := range appends {
				key := p.Key(w*appends + i)
				out, err := s.Append(ctx, []store.Event{materialization("a", key, "v"), ev(store.Failure, "a", key)})
				if err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
				if out[0].Seq <= last || out[1].Seq != out[0].Seq+1 {
					t.Errorf("writer %d: seqs %d, %d after %d", w, out[0].Seq, out[1].Seq, last)
				}
				last = out[1].Seq
				mu.Lock()
				seqs = append(seqs, out[0].Seq, out[1].Seq)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	slices.Sort(seqs)
	for i, seq := range seqs {
		if seq != start+int64(i)+1 {
			t.Fatalf("seqs are not distinct and gap-free: %d at position %d", seq, i)
		}
	}
	mustVerify(t, s)
}

// A reader that follows the log with ReadChanges, while writers append, ends with
// exactly the state ReadState reads at the end: it never misses an event.
func TestReadChangesNeverMisses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := openTemp(t)
	p := dailyFrom(t, "2020-01-01")
	mustSync(t, s, defsOf(built("a", p), built("b", p, "a")))

	snap, err := s.ReadState(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	mirror := map[assets.Key]map[int]store.PartitionFlags{"a": {}, "b": {}}
	dataChanged := map[assets.Key]map[int]int64{"a": {}, "b": {}}
	seq := snap.Seq
	follow := func() {
		ch, err := s.ReadChanges(ctx, seq)
		if err != nil {
			t.Error(err)
			return
		}
		if ch.Seq < seq {
			t.Errorf("ReadChanges went back from %d to %d", seq, ch.Seq)
		}
		for key, up := range ch.Updated {
			for k, i := range up.Index {
				mirror[key][i] = up.Flags[k]
				dataChanged[key][i] = up.DataChangedSeq[k]
			}
		}
		seq = ch.Seq
	}

	const writers, appends = 4, 40
	done := make(chan struct{})
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range appends {
				key := p.Key((w*appends + i) % 97)
				asset := assets.Key("a")
				if i%3 == 0 {
					asset = "b"
				}
				e := materialization(asset, key, fmt.Sprint(w, i))
				if i%7 == 0 {
					e = ev(store.Failure, asset, key)
				}
				if _, err := s.Append(ctx, []store.Event{e}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	go func() { wg.Wait(); close(done) }()
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
		}
		follow()
	}
	follow()

	final, err := s.ReadState(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if final.Seq != seq {
		t.Fatalf("follower at %d, ReadState at %d", seq, final.Seq)
	}
	for key, st := range final.Assets {
		for i := range st.Len() {
			if st.Flags[i] != mirror[key][i] || st.DataChangedSeq[i] != dataChanged[key][i] {
				t.Errorf("%s[%d]: follower has flags %v data-changed %d; ReadState %v %d",
					key, i, mirror[key][i], dataChanged[key][i], st.Flags[i], st.DataChangedSeq[i])
			}
		}
		for i := range mirror[key] {
			if i >= st.Len() {
				t.Errorf("%s[%d]: the follower has a partition ReadState does not", key, i)
			}
		}
	}
}

// A reader during a long write sees the state before or after it, never part of it.
func TestReaderSeesConsistentSnapshot(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := openTemp(t)
	p := partitions(t, assets.PartitionsSpec{Granularity: assets.Hourly, Start: "2000-01-01"})
	mustSync(t, s, defsOf(built("a", p)))
	base, _ := s.Watermark(ctx)

	const batches, batch = 4, 2500
	done := make(chan error, 1)
	go func() {
		for b := range batches {
			events := make([]store.Event, batch)
			for i := range events {
				events[i] = materialization("a", p.Key(b*batch+i), "v")
			}
			if _, err := s.Append(ctx, events); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	reads := 0
	for finished := false; !finished; reads++ {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			finished = true
		default:
		}
		snap, err := s.ReadState(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		materialized := 0
		if st := snap.Assets["a"]; st != nil {
			materialized = countFlags(st, store.FlagMaterialized)
		}
		if int64(materialized) != snap.Seq-base || materialized%batch != 0 {
			t.Fatalf("snapshot at seq %d holds %d materialized partitions; want whole batches, %d", snap.Seq, materialized, snap.Seq-base)
		}
	}
	t.Logf("%d consistent snapshots read during %d appends of %d events", reads, batches, batch)
}

func TestVerifyFindsTampering(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := openTemp(t)
	p := dailyFrom(t, "2026-01-01")
	mustSync(t, s, defsOf(built("a", p)))
	mustAppend(t, s, materialization("a", "2026-01-01", "v1"), materialization("a", "2026-01-02", "v1"), materialization("a", "2026-01-01", "v2"))
	mustVerify(t, s)

	for _, stmt := range []string{
		`UPDATE partition_state SET data_version = 'forged' WHERE partition_key = '2026-01-01'`,
		`DELETE FROM partition_state WHERE partition_key = '2026-01-02'`,
		`UPDATE catalog_clock SET seq = 0`,
	} {
		if _, err := s.write.ExecContext(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	found, err := s.Verify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(found) != 4 { // the clock twice: events and definition changes
		t.Errorf("Verify found %d problems; want 4:\n%v", len(found), found)
	}
	if _, err := s.write.ExecContext(ctx, `DELETE FROM events`); err == nil {
		t.Error("deleting from the event log succeeded")
	}
}
