package postgres

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/freshetdev/freshet/assets"
	"github.com/freshetdev/freshet/store"
	"github.com/freshetdev/freshet/store/postgres/pgtest"
)

func TestMigrations(t *testing.T) {
	t.Parallel()
	latest := mustLatest(t)
	ctx := t.Context()

	url := pgtest.URL(t)
	s, err := Open(ctx, url, WithoutMigrations())
	if err != nil {
		t.Fatalf("open without migrations: %v", err)
	}
	defer s.Close()
	current, pending := 0, 0
	if c, p, err := s.SchemaVersion(ctx); err != nil {
		t.Fatalf("schema version of an empty schema: %v", err)
	} else {
		current, pending = int(c), p
	}
	if current != 0 || int64(pending) != latest {
		t.Errorf("empty schema: version %d, %d pending; want 0, %d", current, pending, latest)
	}

	applied, err := s.Migrate(ctx)
	if err != nil {
		t.Fatalf("migrate from empty: %v", err)
	}
	if len(applied) != int(latest) || applied[len(applied)-1].Version != latest || applied[0].Name != "00001_catalog.sql" {
		t.Errorf("migrate from empty applied %+v; want versions 1…%d", applied, latest)
	}
	if again, err := s.Migrate(ctx); err != nil || len(again) != 0 {
		t.Errorf("migrate again: applied %+v, err %v; want nothing", again, err)
	}
	if c, p, err := s.SchemaVersion(ctx); err != nil || c != latest || p != 0 {
		t.Errorf("after migrate: version %d, %d pending, err %v; want %d, 0", c, p, err, latest)
	}

	// Opening an up-to-date schema applies nothing and works.
	s2, err := Open(ctx, url)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	s2.Close()
}

// Two processes starting on the same fresh schema at once: the migration lock
// makes one apply everything and the other find nothing left.
func TestConcurrentMigrate(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	latest := mustLatest(t)
	url := pgtest.URL(t)
	const processes = 2
	stores := make([]*Store, processes)
	for i := range stores {
		stores[i] = must(Open(ctx, url, WithoutMigrations()))(t)
		defer stores[i].Close()
	}
	applied := make([][]store.Migration, processes)
	errs := make([]error, processes)
	var wg sync.WaitGroup
	for i, s := range stores {
		wg.Go(func() { applied[i], errs[i] = s.Migrate(ctx) })
	}
	wg.Wait()
	var versions []int64
	for i := range stores {
		if errs[i] != nil {
			t.Errorf("migrate %d: %v", i, errs[i])
		}
		for _, m := range applied[i] {
			versions = append(versions, m.Version)
		}
	}
	slices.Sort(versions)
	if len(versions) != int(latest) || versions[0] != 1 || versions[len(versions)-1] != latest {
		t.Errorf("migrations applied between both: %v; want each of 1…%d once", versions, latest)
	}
	var rows int
	if err := stores[0].pool.QueryRow(ctx, `SELECT count(*) FROM goose_db_version WHERE version_id > 0`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != int(latest) {
		t.Errorf("goose_db_version has %d applied rows; want %d", rows, latest)
	}
}

// The URL pgtest returns puts every connection in the test's own schema.
func TestSchemaFromURL(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	s := must(Open(t.Context(), url))(t)
	defer s.Close()
	var schema string
	var tables int
	err := s.pool.QueryRow(t.Context(), `SELECT current_schema(),
		(SELECT count(*) FROM pg_tables WHERE schemaname = current_schema() AND tablename IN ('events', 'catalog_clock'))`,
	).Scan(&schema, &tables)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(schema, "freshet_test_") || !strings.Contains(url, "search_path="+schema) || tables != 2 {
		t.Errorf("current schema %q with %d catalog tables, URL %s; want the URL's freshet_test_ schema holding the tables", schema, tables, url)
	}
}

func TestOpenRejectsBadURLs(t *testing.T) {
	t.Parallel()
	for _, url := range []string{"", "host=localhost dbname=x", "mysql://localhost/x", "postgres://%zz"} {
		if s, err := Open(t.Context(), url); err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded; want an error", url)
		}
	}
}

func TestAppendRoundTrip(t *testing.T) {
	t.Parallel()
	// Each size takes another write path: a few events go in one batch of
	// statements; more are copied, their state rows updated by a batch of
	// UPDATEs, or through a staging table from stagingThreshold rows on. All
	// must record the same.
	for _, n := range []int{3, smallAppend + 36, stagingThreshold + 44} {
		t.Run(fmt.Sprintf("partitions=%d", n), func(t *testing.T) {
			t.Parallel()
			testAppendRoundTrip(t, n)
		})
	}
}

func testAppendRoundTrip(t *testing.T, n int) {
	ctx := t.Context()
	at := time.Date(2026, 4, 8, 13, 14, 15, 123456789, time.FixedZone("CEST", 2*3600))
	s := openStore(t, WithClock(func() time.Time { return at }))
	syncDefs(t, s, daily(t, "sales/orders", "2024-01-01", "raw/rates"), unpartitioned("raw/rates", true))
	base := must(s.Watermark(ctx))(t)

	runID, stepID := uuid.New(), uuid.New()
	var events []store.Event
	for i := range n {
		e := materialization("sales/orders", i, fmt.Sprintf("v%d", i))
		e.RunID, e.StepID = runID, stepID
		e.Metadata = json.RawMessage(fmt.Sprintf(`{"rows": %d, "path": "s3://b/%d"}`, i, i))
		events = append(events, e)
	}
	first := appendEvents(t, s, events...)

	// Rebuild them all: the odd ones with new data, the even ones with the same.
	events = events[:0]
	for i := range n {
		v := fmt.Sprintf("v%d", i)
		if i%2 == 1 {
			v = fmt.Sprintf("w%d", i)
		}
		events = append(events, materialization("sales/orders", i, v))
	}
	events = append(events,
		store.Event{Kind: store.Failure, Asset: "sales/orders", Partition: dayKey(0), Error: "boom"},
		store.Event{Kind: store.Observation, Asset: "raw/rates", DataVersion: "h1", At: at.Add(-time.Hour)},
		store.Event{Kind: store.Planned, Asset: "sales/orders", Partition: dayKey(n + 5)},
	)
	second := appendEvents(t, s, events...)
	got := append(slices.Clone(first), second...)
	for i, e := range got {
		if e.Seq != base+int64(i)+1 {
			t.Fatalf("event %d has seq %d; want %d", i, e.Seq, base+int64(i)+1)
		}
	}
	for i, e := range second[:n] {
		if e.DataChanged != (i%2 == 1) || e.InputSeq != e.Seq-1 || e.Code == nil || e.Code.Version != "1" ||
			!slices.Equal(e.Code.Deps, []assets.Key{"raw/rates"}) {
			t.Errorf("rebuild of partition %d recorded as %+v (code %+v); want data changed %v, input seq %d, code 1 [raw/rates]",
				i, e, e.Code, i%2 == 1, e.Seq-1)
		}
	}
	if w := must(s.Watermark(ctx))(t); w != base+int64(len(got)) {
		t.Errorf("watermark %d; want %d", w, base+int64(len(got)))
	}

	// The log reads back as appended, newest first.
	page := must(s.Events(ctx, store.EventQuery{Limit: len(got)}))(t)
	if len(page.Events) != len(got) || page.Next != 0 {
		t.Fatalf("events page has %d events, next %d; want %d, 0", len(page.Events), page.Next, len(got))
	}
	for i, e := range page.Events {
		want := got[len(got)-1-i]
		if !sameEvent(e, want) {
			t.Errorf("event %d reads back as\n%+v\nwant\n%+v", want.Seq, e, want)
		}
	}

	// Partition 0: rebuilt with the same data, then failed.
	failure := second[n]
	rec := must(s.Partition(ctx, "sales/orders", dayKey(0)))(t)
	if rec.SuccessSeq != second[0].Seq || !rec.Failed || rec.FailedSeq != failure.Seq || rec.DataVersion != "v0" ||
		rec.DataChangedSeq != first[0].Seq || rec.Index != 0 || rec.Code == nil || rec.Code.Version != "1" ||
		!rec.MaterializedAt.Equal(at.Truncate(time.Microsecond)) || rec.MaterializedAt.Location() != time.UTC ||
		rec.LastSeq != failure.Seq {
		t.Errorf("partition 0 recorded as %+v", rec)
	}
	rec = must(s.Partition(ctx, "raw/rates", ""))(t)
	if rec.SuccessSeq != second[n+1].Seq || rec.DataVersion != "h1" || rec.Code != nil || rec.DataChangedSeq != rec.SuccessSeq ||
		!rec.MaterializedAt.Equal(at.Add(-time.Hour).Truncate(time.Microsecond)) {
		t.Errorf("observed source recorded as %+v", rec)
	}
	if _, err := s.Partition(ctx, "sales/orders", dayKey(n+5)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("partition with only a planned event: err %v; want ErrNotFound", err)
	}

	snap := must(s.ReadState(ctx, nil))(t)
	st := snap.Assets["sales/orders"]
	if snap.Seq != base+int64(len(got)) || st == nil || st.Len() != n {
		t.Fatalf("state: seq %d, orders %+v", snap.Seq, st)
	}
	last := second[n-1]
	if st.Flags[0] != store.FlagMaterialized|store.FlagFailed || st.Flags[n-1] != store.FlagMaterialized ||
		st.DataChangedSeq[1] != second[1].Seq || st.DataChangedSeq[2] != first[2].Seq || st.InputSeq[n-1] != last.InputSeq ||
		!slices.Equal(st.CodeVersions, []string{"1"}) || len(st.DepSets) != 1 || !slices.Equal(st.DepSets[0], []assets.Key{"raw/rates"}) {
		t.Errorf("orders state: flags %v…, data-changed %v…, code versions %v, dep sets %v",
			st.Flags[:2], st.DataChangedSeq[:3], st.CodeVersions, st.DepSets)
	}
	verifyClean(t, s)
}

func sameEvent(a, b store.Event) bool {
	codes := (a.Code == nil) == (b.Code == nil) &&
		(a.Code == nil || a.Code.Version == b.Code.Version && slices.Equal(a.Code.Deps, b.Code.Deps))
	meta := (a.Metadata == nil) == (b.Metadata == nil) && (a.Metadata == nil || jsonEqual(a.Metadata, b.Metadata))
	a.Code, b.Code, a.Metadata, b.Metadata = nil, nil, nil, nil
	return codes && meta && a.At.Equal(b.At) && a.At.Location() == time.UTC && func() bool {
		a.At, b.At = time.Time{}, time.Time{}
		return a.Seq == b.Seq && a.Kind == b.Kind && a.Asset == b.Asset && a.Partition == b.Partition &&
			a.RunID == b.RunID && a.StepID == b.StepID && a.DataVersion == b.DataVersion &&
			a.DataChanged == b.DataChanged && a.InputSeq == b.InputSeq && a.Error == b.Error
	}()
}

func jsonEqual(a, b json.RawMessage) bool {
	var x, y any
	return json.Unmarshal(a, &x) == nil && json.Unmarshal(b, &y) == nil && fmt.Sprint(x) == fmt.Sprint(y)
}

// A bad event fails the whole Append: nothing is written, the clock does not move
// and the error lists every bad event.
func TestAppendBadEventsWriteNothing(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := openStore(t)
	syncDefs(t, s, daily(t, "a", "2024-01-01"))
	before := must(s.Watermark(ctx))(t)
	_, err := s.Append(ctx, []store.Event{
		materialization("a", 0, "v"),
		{Kind: store.Materialization, Asset: "a", Partition: "not-a-day"},
		{Kind: store.Materialization, Asset: "nope", Partition: dayKey(0)},
	})
	var bad *store.BadEventsError
	if !errors.As(err, &bad) || len(bad.Errors) != 2 || bad.Errors[0].N != 1 || bad.Errors[1].N != 2 {
		t.Fatalf("append with bad events: %v; want a BadEventsError naming events 2 and 3", err)
	}
	if w := must(s.Watermark(ctx))(t); w != before {
		t.Errorf("watermark moved from %d to %d", before, w)
	}
	if page := must(s.Events(ctx, store.EventQuery{}))(t); len(page.Events) != 0 {
		t.Errorf("the log has %d events; want none", len(page.Events))
	}
	// The next good append gets the next seq.
	if got := appendEvents(t, s, materialization("a", 0, "v")); got[0].Seq != before+1 {
		t.Errorf("next append got seq %d; want %d", got[0].Seq, before+1)
	}
}

// Code versions and dep sets get per-asset ids from 0; two stores on one catalog
// (two processes) agree on them, whatever each has cached.
func TestCodeInterning(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	url := pgtest.URL(t)
	s1 := must(Open(ctx, url))(t)
	defer s1.Close()
	s2 := must(Open(ctx, url))(t)
	defer s2.Close()
	syncDefs(t, s1, daily(t, "a", "2024-01-01", "x"), daily(t, "b", "2024-01-01"), unpartitioned("x", true))

	code := func(v string, deps ...assets.Key) *store.Code { return &store.Code{Version: v, Deps: deps} }
	withCode := func(asset string, i int, c *store.Code) store.Event {
		e := materialization(asset, i, "d")
		e.Code = c
		return e
	}
	appendEvents(t, s1, withCode("a", 0, nil), withCode("b", 0, nil))       // a: 1 [x]; b: 1 []
	appendEvents(t, s2, withCode("a", 1, code("2", "x")))                   // a: 2 [x]
	appendEvents(t, s1, withCode("a", 2, code("2")), withCode("a", 3, nil)) // a: 2 []; 1 [x] cached
	// A rolled-back append must leave no trace in the cache.
	if _, err := s1.Append(ctx, []store.Event{withCode("a", 4, code("3", "y")), {Kind: "bogus", Asset: "a"}}); err == nil {
		t.Fatal("append with a bad event succeeded")
	}
	appendEvents(t, s2, withCode("a", 5, code("3", "y")))
	appendEvents(t, s1, withCode("a", 6, code("3", "y")))

	snap := must(s1.ReadState(ctx, []assets.Key{"a", "b"}))(t)
	a, b := snap.Assets["a"], snap.Assets["b"]
	if !slices.Equal(a.CodeVersions, []string{"1", "2", "3"}) || fmt.Sprint(a.DepSets) != "[[x] [] [y]]" {
		t.Errorf("a: code versions %q, dep sets %v; want [1 2 3], [[x] [] [y]]", a.CodeVersions, a.DepSets)
	}
	if !slices.Equal(a.CodeVersion, []uint32{0, 1, 1, 0, 0, 2, 2}) || !slices.Equal(a.DepSet, []uint32{0, 0, 1, 0, 0, 2, 2}) {
		t.Errorf("a: code version ids %v, dep set ids %v", a.CodeVersion, a.DepSet)
	}
	if !slices.Equal(b.CodeVersions, []string{"1"}) || fmt.Sprint(b.DepSets) != "[[]]" {
		t.Errorf("b: code versions %q, dep sets %v", b.CodeVersions, b.DepSets)
	}
	verifyClean(t, s1)
}

// Writers from many goroutines get distinct seqs, in commit order: a reader
// following ReadChanges never misses a change, even one whose transaction began
// before a later one committed.
func TestConcurrentAppends(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := openStore(t)
	const writers, batches, perBatch = 4, 20, 5
	syncDefs(t, s, daily(t, "a", "2024-01-01"))

	// The reader follows the catalog with ReadChanges, as a planner does, keeping
	// each partition's data-changed seq.
	seen := map[int]int64{}
	done := make(chan struct{})
	readerErr := make(chan error, 1)
	go func() {
		since := int64(0)
		read := func() error {
			ch, err := s.ReadChanges(ctx, since)
			if err != nil {
				return err
			}
			if ch.Seq < since || ch.Since != since {
				return fmt.Errorf("changes since %d report since %d, seq %d", since, ch.Since, ch.Seq)
			}
			for _, st := range ch.Reloaded {
				clear(seen)
				for i := range st.Len() {
					if st.Flags[i] != 0 {
						seen[i] = st.DataChangedSeq[i]
					}
				}
			}
			for _, u := range ch.Updated {
				for k, i := range u.Index {
					seen[i] = u.DataChangedSeq[k]
				}
			}
			since = ch.Seq
			return nil
		}
		for {
			select {
			case <-done:
				readerErr <- read() // catch up once after the last commit
				return
			default:
			}
			if err := read(); err != nil {
				readerErr <- err
				return
			}
		}
	}()

	seqs := make([][]int64, writers)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for b := range batches {
				var events []store.Event
				for k := range perBatch {
					// Every event its own partition: a missed change stays missed.
					events = append(events, materialization("a", (w*batches+b)*perBatch+k, "v"))
				}
				got, err := s.Append(ctx, events)
				if err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
				for _, e := range got {
					seqs[w] = append(seqs[w], e.Seq)
				}
			}
		})
	}
	wg.Wait()
	close(done)
	if err := <-readerErr; err != nil {
		t.Fatalf("reader: %v", err)
	}

	var all []int64
	for w := range writers {
		if !slices.IsSorted(seqs[w]) {
			t.Errorf("writer %d got seqs out of order: %v", w, seqs[w])
		}
		all = append(all, seqs[w]...)
	}
	slices.Sort(all)
	if n := len(slices.Compact(slices.Clone(all))); n != writers*batches*perBatch {
		t.Errorf("%d distinct seqs for %d events", n, writers*batches*perBatch)
	}
	wm := must(s.Watermark(ctx))(t)
	if all[len(all)-1] != wm || all[0] != wm-int64(len(all))+1 {
		t.Errorf("seqs span %d…%d; want the %d seqs up to the watermark %d", all[0], all[len(all)-1], len(all), wm)
	}

	// Caught up, the reader's view is the whole state: it missed nothing.
	state := must(s.ReadState(ctx, nil))(t).Assets["a"]
	want := map[int]int64{}
	for i := range state.Len() {
		if state.Flags[i] != 0 {
			want[i] = state.DataChangedSeq[i]
		}
	}
	if len(want) != len(all) || fmt.Sprint(seen) != fmt.Sprint(want) {
		t.Errorf("the reader saw %d partitions, the state has %d (of %d events); they differ: %v",
			len(seen), len(want), len(all), fmt.Sprint(seen) != fmt.Sprint(want))
	}
	verifyClean(t, s)
}
