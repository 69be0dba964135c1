package storetest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/freshetdev/freshet/store"
)

func testEventsRoundTrip(t *testing.T, f *fixture) {
	f.sync(catalog())
	run, step := uuid.New(), uuid.New()
	plus5 := time.FixedZone("UTC+5", 5*3600)
	withAt := func(e store.Event, at time.Time) store.Event { e.At = at; return e }
	with := func(e store.Event, change func(e *store.Event)) store.Event { change(&e); return e }
	events := []store.Event{
		with(matDV(rawDaily, day(0), "sha256:ab12"), func(e *store.Event) {
			e.At = time.Date(2026, 3, 4, 5, 6, 7, 123456789, plus5)
			e.RunID, e.StepID = run, step
			e.Metadata = []byte(`{"rows": 120, "path": "s3://bucket/sales/2026-03-04.parquet",
				"nested": {"a": [1, 2.5, null, true, "x"], "empty": {}}, "unicode": "café ✓ \u00e9 \"q\""}`)
		}),
		with(failure(rawDaily, day(1), "exit status 2:\nTraceback … ünïcode"), func(e *store.Event) {
			e.At = time.Date(2026, 3, 4, 5, 6, 7, 999999999, time.UTC)
			e.RunID, e.StepID = run, uuid.New()
			e.Metadata = []byte(`{}`)
		}),
		withAt(obs(srcDaily, day(0), "etag-\"9\""), time.Date(1999, 12, 31, 23, 59, 59, 999999500, time.UTC)),
		with(planned(summary, ""), func(e *store.Event) { e.RunID = run }),
		withAt(mat(summary, ""), time.Date(2026, 10, 25, 2, 30, 0, 1000, mustLoad(t, "Europe/Berlin"))),
	}
	got := f.append(events...)
	for i, e := range got {
		if !events[i].At.IsZero() {
			want := events[i].At.UTC().Truncate(time.Microsecond)
			if !e.At.Equal(want) {
				t.Errorf("event %d: returned At = %s, want %s (microseconds, truncated)", i, e.At.Format(time.RFC3339Nano), want.Format(time.RFC3339Nano))
			}
		}
		if e.At.Location() != time.UTC {
			t.Errorf("event %d: returned At %s is in %s, want UTC", i, e.At, e.At.Location())
		}
		if e.RunID != events[i].RunID || e.StepID != events[i].StepID {
			t.Errorf("event %d: returned run/step %s/%s, want %s/%s", i, e.RunID, e.StepID, events[i].RunID, events[i].StepID)
		}
	}
	read := f.allEvents(store.EventQuery{})
	checkEventsMatch(t, "Events()", read, reversed(got))
	for _, e := range read {
		if e.At.Location() != time.UTC {
			t.Errorf("Events(): event %d At %s is in %s, want UTC", e.Seq, e.At, e.At.Location())
		}
	}
	if r := f.partition(rawDaily, day(0)); !r.MaterializedAt.Equal(got[0].At) || r.MaterializedAt.Location() != time.UTC {
		t.Errorf("Partition.MaterializedAt = %s (%s), want %s in UTC", r.MaterializedAt.Format(time.RFC3339Nano), r.MaterializedAt.Location(), got[0].At.Format(time.RFC3339Nano))
	}
	if r := f.partition(srcDaily, day(0)); !r.MaterializedAt.Equal(got[2].At) {
		t.Errorf("Partition(%s).MaterializedAt = %s, want %s", srcDaily, r.MaterializedAt.Format(time.RFC3339Nano), got[2].At.Format(time.RFC3339Nano))
	}
	f.verifyClean()
}

func mustLoad(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatalf("load timezone %s: %v", name, err)
	}
	return loc
}

// mixedEvents appends a deterministic mix of events over the standard catalog and
// returns them as recorded, oldest first.
func mixedEvents(f *fixture, n int) []store.Event {
	f.t.Helper()
	var all []store.Event
	var batch []store.Event
	for i := range n {
		var e store.Event
		switch i % 7 {
		case 0, 1:
			e = mat(rawDaily, day(i%5))
		case 2:
			e = failure(rawDaily, day(i%5), fmt.Sprintf("failure %d", i))
		case 3:
			e = obs(srcDaily, day(i%3), fmt.Sprintf("v%d", i%2))
		case 4:
			e = planned(rawDaily, day(i%5))
		case 5:
			e = matDV(summary, "", fmt.Sprintf("s%d", i%3))
		case 6:
			e = matDV(weekly, "2026-01-12", "w")
		}
		e.Metadata = []byte(fmt.Sprintf(`{"i": %d}`, i))
		batch = append(batch, e)
		if len(batch) == 1+i%4 || i == n-1 {
			all = append(all, f.append(batch...)...)
			batch = nil
		}
	}
	return all
}

func testEventsFilters(t *testing.T, f *fixture) {
	f.sync(catalog())
	all := mixedEvents(f, 60)
	mid := all[len(all)/2].Seq
	cases := []struct {
		name string
		q    store.EventQuery
		keep func(e store.Event) bool
	}{
		{"everything", store.EventQuery{}, func(store.Event) bool { return true }},
		{"asset", store.EventQuery{Asset: rawDaily},
			func(e store.Event) bool { return e.Asset == rawDaily }},
		{"asset and partitions", store.EventQuery{Asset: rawDaily, Partitions: []string{day(1), day(3)}},
			func(e store.Event) bool {
				return e.Asset == rawDaily && (e.Partition == day(1) || e.Partition == day(3))
			}},
		{"unpartitioned asset", store.EventQuery{Asset: summary, Partitions: []string{""}},
			func(e store.Event) bool { return e.Asset == summary }},
		{"one kind", store.EventQuery{Kinds: []store.EventKind{store.Failure}},
			func(e store.Event) bool { return e.Kind == store.Failure }},
		{"two kinds", store.EventQuery{Kinds: []store.EventKind{store.Materialization, store.Observation}},
			func(e store.Event) bool { return e.Kind == store.Materialization || e.Kind == store.Observation }},
		{"asset and kinds", store.EventQuery{Asset: rawDaily, Kinds: []store.EventKind{store.Planned, store.Failure}},
			func(e store.Event) bool {
				return e.Asset == rawDaily && (e.Kind == store.Planned || e.Kind == store.Failure)
			}},
		{"asset, partition and kind", store.EventQuery{Asset: rawDaily, Partitions: []string{day(2)}, Kinds: []store.EventKind{store.Materialization}},
			func(e store.Event) bool {
				return e.Asset == rawDaily && e.Partition == day(2) && e.Kind == store.Materialization
			}},
		{"before", store.EventQuery{Before: mid},
			func(e store.Event) bool { return e.Seq < mid }},
		{"asset before", store.EventQuery{Asset: srcDaily, Before: mid},
			func(e store.Event) bool { return e.Asset == srcDaily && e.Seq < mid }},
		{"asset without events", store.EventQuery{Asset: srcSingle},
			func(store.Event) bool { return false }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := f.on(t)
			want := reversed(filterEvents(all, tc.keep))
			page, err := f.s.Events(f.ctx, tc.q)
			if err != nil {
				t.Fatalf("Events(%+v): %v", tc.q, err)
			}
			if page.Next != 0 {
				t.Errorf("Events(%+v): Next = %d, want 0 (all %d events fit the default limit of 100)", tc.q, page.Next, len(want))
			}
			checkEventsMatch(t, fmt.Sprintf("Events(%+v)", tc.q), page.Events, want)
		})
	}
}

func testEventsPaging(t *testing.T, f *fixture) {
	f.sync(catalog())
	all := reversed(mixedEvents(f, 250))
	first, err := f.s.Events(f.ctx, store.EventQuery{})
	if err != nil {
		t.Fatalf("Events(): %v", err)
	}
	if len(first.Events) != 100 || first.Next == 0 {
		t.Errorf("Events() over %d events: a page of %d with Next %d, want 100 (the default limit) and a Next", len(all), len(first.Events), first.Next)
	}
	cases := []struct {
		name string
		q    store.EventQuery
		keep func(e store.Event) bool
	}{
		{"limit 1", store.EventQuery{Limit: 1}, nil},
		{"limit 7", store.EventQuery{Limit: 7}, nil},
		{"limit 50 (divides the total)", store.EventQuery{Limit: 50}, nil},
		{"default limit", store.EventQuery{}, nil},
		{"limit above the total", store.EventQuery{Limit: 10_000}, nil},
		{"limit above the cap", store.EventQuery{Limit: 50_000}, nil},
		{"asset, limit 9", store.EventQuery{Asset: rawDaily, Limit: 9}, func(e store.Event) bool { return e.Asset == rawDaily }},
		{"kind, limit 4", store.EventQuery{Kinds: []store.EventKind{store.Failure}, Limit: 4}, func(e store.Event) bool { return e.Kind == store.Failure }},
		{"from a seq, limit 13", store.EventQuery{Before: all[30].Seq, Limit: 13}, func(e store.Event) bool { return e.Seq < all[30].Seq }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := f.on(t)
			want := all
			if tc.keep != nil {
				want = filterEvents(all, tc.keep)
			}
			limit := min(tc.q.Limit, 10_000)
			if limit == 0 {
				limit = 100
			}
			// Page by hand: every page but the last is full.
			q := tc.q
			var got []store.Event
			for pages := 0; ; pages++ {
				if pages > len(want)+2 {
					t.Fatalf("paging does not end after %d pages", pages)
				}
				p, err := f.s.Events(f.ctx, q)
				if err != nil {
					t.Fatalf("Events(%+v): %v", q, err)
				}
				got = append(got, p.Events...)
				if p.Next == 0 {
					break
				}
				if len(p.Events) != limit {
					t.Errorf("Events(%+v): a page of %d events with Next %d; only the last page may be short of the limit %d", q, len(p.Events), p.Next, limit)
				}
				if len(p.Events) == 0 {
					t.Fatalf("Events(%+v): empty page with Next %d", q, p.Next)
				}
				q.Before = p.Next
			}
			if !slices.Equal(seqsOf(got), seqsOf(want)) {
				t.Errorf("paging %+v: seqs %v, want %v (every event exactly once, newest first)", tc.q, seqsOf(got), seqsOf(want))
			} else {
				checkEventsMatch(t, "paging", got, want)
			}
		})
	}
}
