package storetest

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/freshetdev/freshet/assets"
	"github.com/freshetdev/freshet/store"
)

func testAppendSeqs(t *testing.T, f *fixture) {
	f.sync(catalog())
	w0 := f.watermark()
	batch := []store.Event{
		mat(rawDaily, day(0)),
		failure(rawDaily, day(1), "exit status 1"),
		planned(rawDaily, day(2)),
		obs(srcDaily, day(0), "v1"),
		mat(summary, ""),
	}
	for round := range 3 {
		got := f.append(batch...)
		for i, e := range got {
			want := w0 + int64(round*len(batch)+i) + 1
			if e.Seq != want {
				t.Errorf("round %d, event %d: Seq = %d, want %d (consecutive from the watermark, in batch order)", round, i, e.Seq, want)
			}
			if e.Kind != batch[i].Kind || e.Asset != batch[i].Asset || e.Partition != batch[i].Partition {
				t.Errorf("round %d, event %d: returned %s %s %q, want %s %s %q (batch order)", round, i,
					e.Kind, e.Asset, e.Partition, batch[i].Kind, batch[i].Asset, batch[i].Partition)
			}
		}
		if w, want := f.watermark(), w0+int64((round+1)*len(batch)); w != want {
			t.Errorf("round %d: Watermark = %d, want %d", round, w, want)
		}
	}
}

func testAppendEmpty(t *testing.T, f *fixture) {
	f.sync(catalog())
	w := f.watermark()
	got, err := f.s.Append(f.ctx, nil)
	if err != nil {
		t.Fatalf("Append(no events): %v", err)
	}
	if len(got) != 0 {
		t.Errorf("Append(no events) returned %d events", len(got))
	}
	if after := f.watermark(); after != w {
		t.Errorf("Append(no events) moved the watermark from %d to %d", w, after)
	}
}

func testAppendDataVersion(t *testing.T, f *fixture) {
	f.sync(catalog())
	p := day(4)
	type step struct {
		events      []store.Event
		wantChanged []bool
	}
	// Each step appends one batch; wantChanged is DataChanged per event.
	steps := []step{
		{[]store.Event{mat(rawDaily, p)}, []bool{true}},                                               // first, no data version
		{[]store.Event{mat(rawDaily, p)}, []bool{true}},                                               // a fresh unique one
		{[]store.Event{matDV(rawDaily, p, "v1")}, []bool{true}},                                       // explicit
		{[]store.Event{matDV(rawDaily, p, "v1")}, []bool{false}},                                      // same again
		{[]store.Event{matDV(rawDaily, p, "v2")}, []bool{true}},                                       // new
		{[]store.Event{matDV(rawDaily, p, "v3"), matDV(rawDaily, p, "v3")}, []bool{true, false}},      // within one batch
		{[]store.Event{failure(rawDaily, p, "boom"), matDV(rawDaily, p, "v3")}, []bool{false, false}}, // a failure does not reset it
		{[]store.Event{obs(srcDaily, p, "h1"), obs(srcDaily, p, "h1"), obs(srcDaily, p, "h2")}, []bool{true, false, true}},
	}
	var all []store.Event
	lastChanged := map[assets.Key]int64{}
	lastSuccess := map[assets.Key]int64{}
	for n, st := range steps {
		got := f.append(st.events...)
		for i, e := range got {
			all = append(all, e)
			if e.Kind == store.Failure {
				continue
			}
			if e.DataVersion == "" {
				t.Errorf("step %d, event %d (%s): DataVersion empty; a materialization without one gets a unique one", n, i, e.Kind)
			}
			if want := st.events[i].DataVersion; want != "" && e.DataVersion != want {
				t.Errorf("step %d, event %d: DataVersion = %q, want %q", n, i, e.DataVersion, want)
			}
			if e.DataChanged != st.wantChanged[i] {
				t.Errorf("step %d, event %d (%s %s data version %q): DataChanged = %v, want %v", n, i, e.Kind, e.Asset, e.DataVersion, e.DataChanged, st.wantChanged[i])
			}
			lastSuccess[e.Asset] = e.Seq
			if e.DataChanged {
				lastChanged[e.Asset] = e.Seq
			}
		}
		if n == 1 && all[0].DataVersion == all[1].DataVersion {
			t.Errorf("two materializations without data version both got %q; each gets a unique one", all[0].DataVersion)
		}
	}
	for _, k := range []assets.Key{rawDaily, srcDaily} {
		r := f.partition(k, p)
		if r.DataChangedSeq != lastChanged[k] || r.SuccessSeq != lastSuccess[k] {
			t.Errorf("Partition(%s, %s): DataChangedSeq %d, SuccessSeq %d; want %d, %d", k, p, r.DataChangedSeq, r.SuccessSeq, lastChanged[k], lastSuccess[k])
		}
		if st := f.assetState(k); at(st.DataChangedSeq, 4) != lastChanged[k] {
			t.Errorf("ReadState %s: DataChangedSeq[4] = %d, want %d", k, at(st.DataChangedSeq, 4), lastChanged[k])
		}
	}
	// The log keeps DataChanged as returned.
	stored := f.allEvents(store.EventQuery{Asset: rawDaily, Partitions: []string{p}})
	checkEventsMatch(t, "Events(sales/raw)", stored, reversed(filterEvents(all, func(e store.Event) bool { return e.Asset == rawDaily })))

	// Many materializations without data version: all distinct.
	var batch []store.Event
	for i := range 50 {
		batch = append(batch, mat(rawDaily, day(10+i)))
	}
	seen := map[string]int64{}
	for _, e := range f.append(batch...) {
		if prev, dup := seen[e.DataVersion]; dup {
			t.Errorf("events %d and %d got the same generated data version %q", prev, e.Seq, e.DataVersion)
		}
		seen[e.DataVersion] = e.Seq
		if !e.DataChanged {
			t.Errorf("event %d, the first of its partition: DataChanged false", e.Seq)
		}
	}
	f.verifyClean()
}

func testAppendInputSeq(t *testing.T, f *fixture) {
	f.sync(catalog())
	f.append(mat(rawDaily, day(0)), mat(rawDaily, day(1)))
	w := f.watermark()
	explicit := mat(rawDaily, day(5))
	explicit.InputSeq = w - 1
	batch := []store.Event{
		mat(rawDaily, day(2)),
		failure(rawDaily, day(3), "timeout"),
		mat(rawDaily, day(4)),
		explicit,
		mat(summary, ""),
	}
	got := f.append(batch...)
	want := []int64{got[0].Seq - 1, 0, got[2].Seq - 1, w - 1, got[4].Seq - 1}
	for i, e := range got {
		if e.InputSeq != want[i] {
			t.Errorf("event %d (%s, input seq %d given): InputSeq = %d, want %d", i, e.Kind, batch[i].InputSeq, e.InputSeq, want[i])
		}
	}
	for _, i := range []int{0, 2, 3} {
		r := f.partition(rawDaily, batch[i].Partition)
		if r.InputSeq != want[i] {
			t.Errorf("Partition(%s, %s).InputSeq = %d, want %d", rawDaily, batch[i].Partition, r.InputSeq, want[i])
		}
	}
	st := f.assetState(rawDaily)
	for _, i := range []int{0, 2, 3} {
		if idx := i + 2; at(st.InputSeq, idx) != want[i] {
			t.Errorf("ReadState %s: InputSeq[%d] = %d, want %d", rawDaily, idx, at(st.InputSeq, idx), want[i])
		}
	}
	if r := f.partition(summary, ""); r.InputSeq != want[4] {
		t.Errorf("Partition(%s).InputSeq = %d, want %d", summary, r.InputSeq, want[4])
	}
	checkEventsMatch(t, "Events after input seqs", f.eventsFrom(got[0].Seq), reversed(got))
}

func testAppendCode(t *testing.T, f *fixture) {
	const (
		target assets.Key = "code/target"
		lone   assets.Key = "code/lone"
		upA    assets.Key = "code/up_a"
		upB    assets.Key = "code/up_b"
	)
	build := func(version string) *assets.Definitions {
		tg := computed(target, dailyFrom("2026-01-01"), upB, upA) // deps declared unsorted
		tg.CodeVersion = version
		return defsOf(computed(upA, dailyFrom("2026-01-01")), computed(upB, dailyFrom("2026-01-01")), tg, computed(lone, nil))
	}
	f.sync(build("7"))
	explicit := mat(target, day(1))
	explicit.Code = &store.Code{Version: "hotfix", Deps: []assets.Key{upB, upA}}
	batch := []store.Event{
		mat(target, day(0)),
		explicit,
		failure(target, day(2), "oops"),
		planned(target, day(3)),
		mat(lone, ""),
	}
	got := f.append(batch...)
	wantCode := []*store.Code{
		{Version: "7", Deps: []assets.Key{upA, upB}},
		{Version: "hotfix", Deps: []assets.Key{upA, upB}},
		nil,
		nil,
		{Version: "1", Deps: nil},
	}
	for i, e := range got {
		if !sameCode(e.Code, wantCode[i]) {
			t.Errorf("event %d (%s): Code = %s, want %s", i, e.Kind, codeString(e.Code), codeString(wantCode[i]))
		}
	}
	for i, p := range []string{day(0), day(1)} {
		if r := f.partition(target, p); !sameCode(r.Code, wantCode[i]) {
			t.Errorf("Partition(%s, %s).Code = %s, want %s", target, p, codeString(r.Code), codeString(wantCode[i]))
		}
	}
	if r := f.partition(target, day(2)); r.Code != nil {
		t.Errorf("Partition(%s, %s) (only failed) .Code = %s, want nil", target, day(2), codeString(r.Code))
	}
	if r := f.partition(lone, ""); !sameCode(r.Code, wantCode[4]) {
		t.Errorf("Partition(%s).Code = %s, want %s", lone, codeString(r.Code), codeString(wantCode[4]))
	}
	checkEventsMatch(t, "Events after code", f.eventsFrom(got[0].Seq), reversed(got))

	// After a code version bump, the default follows the definition.
	f.sync(build("8"))
	e := f.append1(mat(target, day(5)))
	if want := (&store.Code{Version: "8", Deps: []assets.Key{upA, upB}}); !sameCode(e.Code, want) {
		t.Errorf("after bumping the code version: Code = %s, want %s", codeString(e.Code), codeString(want))
	}
}

func sameCode(a, b *store.Code) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return a.Version == b.Version && slices.Equal(a.Deps, b.Deps)
}

func testAppendFailure(t *testing.T, f *fixture) {
	f.sync(catalog())
	p := day(2)
	type step struct {
		event     store.Event
		wantFlags store.PartitionFlags
	}
	steps := []step{
		{failure(rawDaily, p, "first try"), store.FlagFailed},
		{failure(rawDaily, p, "second try"), store.FlagFailed},
		{mat(rawDaily, p), store.FlagMaterialized},
		{failure(rawDaily, p, "rebuild failed"), store.FlagMaterialized | store.FlagFailed},
		{planned(rawDaily, p), store.FlagMaterialized | store.FlagFailed},
		{mat(rawDaily, p), store.FlagMaterialized},
	}
	var success, failed int64
	for n, st := range steps {
		e := f.append1(st.event)
		switch e.Kind {
		case store.Materialization:
			success = e.Seq
		case store.Failure:
			failed = e.Seq
		}
		r := f.partition(rawDaily, p)
		if r.Flags() != st.wantFlags {
			t.Errorf("step %d (%s): Partition flags %b (failed %v, success seq %d), want %b", n, e.Kind, r.Flags(), r.Failed, r.SuccessSeq, st.wantFlags)
		}
		if r.SuccessSeq != success || r.FailedSeq != failed {
			t.Errorf("step %d (%s): SuccessSeq %d, FailedSeq %d; want %d, %d", n, e.Kind, r.SuccessSeq, r.FailedSeq, success, failed)
		}
		if fl := at(f.assetState(rawDaily).Flags, 2); fl != st.wantFlags {
			t.Errorf("step %d (%s): ReadState flags[2] = %b, want %b", n, e.Kind, fl, st.wantFlags)
		}
	}
}

func testAppendPlanned(t *testing.T, f *fixture) {
	f.sync(catalog())
	m := f.append1(mat(rawDaily, day(0)))
	before := f.partition(rawDaily, day(0))
	snap := f.state()
	w := f.watermark()

	got := f.append(planned(rawDaily, day(0)), planned(rawDaily, day(5)), planned(summary, ""))
	if got[0].Seq != w+1 || f.watermark() != w+3 {
		t.Errorf("planned events: seqs %d.., watermark %d; want %d.., %d (planned events take seqs)", got[0].Seq, f.watermark(), w+1, w+3)
	}
	after := f.partition(rawDaily, day(0))
	for _, d := range store.Diff(before, after) {
		t.Errorf("a planned event changed the partition: %s", d)
	}
	if after.LastSeq != before.LastSeq || after.Index != before.Index {
		t.Errorf("a planned event changed the partition: last seq %d → %d, index %d → %d", before.LastSeq, after.LastSeq, before.Index, after.Index)
	}
	if after.SuccessSeq != m.Seq {
		t.Errorf("Partition.SuccessSeq = %d, want %d", after.SuccessSeq, m.Seq)
	}
	for _, pk := range []struct {
		k assets.Key
		p string
	}{{rawDaily, day(5)}, {summary, ""}} {
		if r, err := f.s.Partition(f.ctx, pk.k, pk.p); err == nil {
			t.Errorf("Partition(%s, %q) after only a planned event = %+v, want store.ErrNotFound (nothing recorded)", pk.k, pk.p, *r)
		}
	}
	for k, st := range f.state().Assets {
		for _, d := range diffCells(cellsOf(snap.Assets[k], true), cellsOf(st, true)) {
			t.Errorf("ReadState %s after planned events: %s", k, d)
		}
	}
	ch := f.changes(w)
	for k, u := range ch.Updated {
		if len(u.Index) > 0 {
			t.Errorf("ReadChanges(%d) after only planned events: %s updated at %v, want nothing", w, k, u.Index)
		}
	}
	if ch.Seq != w+3 {
		t.Errorf("ReadChanges(%d).Seq = %d, want the watermark %d", w, ch.Seq, w+3)
	}
	f.verifyClean()
}

func testAppendSources(t *testing.T, f *fixture) {
	f.sync(catalog())
	o := f.append1(obs(srcDaily, day(3), "etag-1"))
	r := f.partition(srcDaily, day(3))
	if r.SuccessSeq != o.Seq || r.DataVersion != "etag-1" || r.DataChangedSeq != o.Seq || r.Index != 3 {
		t.Errorf("observed source partition: %+v, want success seq %d, data version etag-1, data-changed seq %d, index 3", *r, o.Seq, o.Seq)
	}
	if r.Flags() != store.FlagMaterialized {
		t.Errorf("observed source partition: flags %b, want materialized", r.Flags())
	}
	if o.Code != nil || o.InputSeq != 0 {
		t.Errorf("observation returned Code %s, InputSeq %d; want nil, 0 (materializations only)", codeString(o.Code), o.InputSeq)
	}
	single := f.append1(obs(srcSingle, "", "2026-03-01T00:00:00Z"))
	if r := f.partition(srcSingle, ""); r.SuccessSeq != single.Seq {
		t.Errorf("observed unpartitioned source: SuccessSeq %d, want %d", r.SuccessSeq, single.Seq)
	}
	if st := f.assetState(srcDaily); at(st.Flags, 3) != store.FlagMaterialized || st.Len() != 4 {
		t.Errorf("ReadState %s: flags %v, want materialized at index 3 and Len 4", srcDaily, st.Flags)
	}
}

func testAppendDefaultAt(t *testing.T, f *fixture) {
	f.sync(catalog())
	start := time.Now()
	e := f.append1(mat(rawDaily, day(0)))
	end := time.Now()
	// Allow for a database clock a little off the test's.
	if e.At.Before(start.Add(-time.Minute)) || e.At.After(end.Add(time.Minute)) {
		t.Errorf("event without At: At = %s, want the append time (between %s and %s)", e.At, start, end)
	}
	if r := f.partition(rawDaily, day(0)); !r.MaterializedAt.Equal(e.At) {
		t.Errorf("Partition.MaterializedAt = %s, want the event's At %s", r.MaterializedAt, e.At)
	}
}

// badCase is one bad event: built from the watermark, and what its error must say.
type badCase struct {
	name  string
	event func(w int64) store.Event
	say   string // a word the message must hold (lower case)
}

func badCases() []badCase {
	withInput := func(e store.Event, seq int64) store.Event { e.InputSeq = seq; return e }
	withMeta := func(e store.Event, m string) store.Event { e.Metadata = []byte(m); return e }
	withKind := func(e store.Event, k store.EventKind) store.Event { e.Kind = k; return e }
	fixed := func(e store.Event) func(int64) store.Event { return func(int64) store.Event { return e } }
	return []badCase{
		{"daily key not a date", fixed(mat(rawDaily, "yesterday")), "yesterday"},
		{"daily key not canonical", fixed(mat(rawDaily, "2026-1-3")), "2026-1-3"},
		{"daily key before start", fixed(mat(rawDaily, "2025-12-31")), "before"},
		{"daily key with a time", fixed(mat(rawDaily, "2026-01-03T00:00")), "2026-01-03t00:00"},
		{"weekly key not a Monday", fixed(mat(weekly, "2026-01-06")), "2026-01-06"},
		{"weekly key before start", fixed(mat(weekly, "2025-12-29")), "before"},
		{"partitioned asset without key", fixed(mat(rawDaily, "")), "partition"},
		{"unpartitioned asset with key", fixed(mat(summary, "2026-01-01")), "not partitioned"},
		{"unknown asset", fixed(mat("no/such_asset", "")), "no such asset"},
		{"unknown kind", fixed(withKind(mat(rawDaily, day(1)), "materialised")), "kind"},
		{"empty kind", fixed(withKind(mat(rawDaily, day(1)), "")), "kind"},
		{"metadata array", fixed(withMeta(mat(rawDaily, day(1)), `[1, 2]`)), "metadata"},
		{"metadata string", fixed(withMeta(mat(rawDaily, day(1)), `"rows: 3"`)), "metadata"},
		{"metadata invalid JSON", fixed(withMeta(mat(rawDaily, day(1)), `{"rows": `)), "metadata"},
		{"metadata empty", fixed(withMeta(mat(rawDaily, day(1)), ` `)), "metadata"},
		{"metadata too large", fixed(withMeta(mat(rawDaily, day(1)), `{"x": "`+strings.Repeat("a", store.MaxMetadataBytes)+`"}`)), "metadata"},
		{"input seq ahead of the watermark", func(w int64) store.Event { return withInput(mat(rawDaily, day(1)), w+1000) }, "ahead"},
		{"input seq negative", fixed(withInput(mat(rawDaily, day(1)), -7)), "negative"},
		{"materialization of a source", fixed(mat(srcDaily, day(1))), "source"},
		{"observation of a non-source", fixed(obs(rawDaily, day(1), "v1")), "source"},
		{"observation without data version", fixed(obs(srcDaily, day(1), "")), "data version"},
		{"data version too long", fixed(matDV(rawDaily, day(1), strings.Repeat("v", store.MaxDataVersionLen+1))), "data version"},
	}
}

func testAppendBadEvents(t *testing.T, f *fixture) {
	f.sync(catalog())
	// Some history, so "nothing written" is checked against a non-empty catalog.
	f.append(mat(rawDaily, day(0)), obs(srcDaily, day(0), "v0"), failure(summary, "", "x"))
	for _, tc := range badCases() {
		t.Run(tc.name, func(t *testing.T) {
			f := f.on(t)
			before := f.snapshotAll()
			bad := tc.event(before.watermark)
			batch := []store.Event{mat(rawDaily, day(20)), bad, obs(srcDaily, day(21), "ok")}
			_, err := f.s.Append(f.ctx, batch)
			be := badEvents(t, "Append with a bad event", err)
			if len(be.Errors) != 1 {
				t.Fatalf("Append: %d errors %v, want exactly 1 (events 0 and 2 are good)", len(be.Errors), be.Errors)
			}
			ee := be.Errors[0]
			if ee.N != 1 || ee.Asset != bad.Asset || ee.Partition != bad.Partition {
				t.Errorf("EventError names event %d, asset %q, partition %q; want event 1, asset %q, partition %q", ee.N, ee.Asset, ee.Partition, bad.Asset, bad.Partition)
			}
			msg := err.Error()
			if !strings.Contains(msg, "event 2") {
				t.Errorf("error %q does not name the event (\"event 2\", counted from 1)", msg)
			}
			if bad.Asset != "" && !strings.Contains(msg, string(bad.Asset)) {
				t.Errorf("error %q does not name asset %s", msg, bad.Asset)
			}
			if !strings.Contains(strings.ToLower(ee.Msg), tc.say) {
				t.Errorf("error message %q does not say %q", ee.Msg, tc.say)
			}
			f.checkUnchanged("Append with a bad event", before)
			for _, pk := range []struct {
				k assets.Key
				p string
			}{{rawDaily, day(20)}, {srcDaily, day(21)}} {
				if r, err := f.s.Partition(f.ctx, pk.k, pk.p); err == nil {
					t.Errorf("Partition(%s, %s) = %+v after a refused batch; the good events of the batch must not be written", pk.k, pk.p, *r)
				}
			}
		})
	}
}

func testAppendAllBad(t *testing.T, f *fixture) {
	f.sync(catalog())
	before := f.snapshotAll()
	cases := badCases()
	var batch []store.Event
	var wantN []int
	for i, tc := range cases {
		batch = append(batch, mat(rawDaily, day(30+i)))
		wantN = append(wantN, len(batch))
		batch = append(batch, tc.event(before.watermark))
	}
	_, err := f.s.Append(f.ctx, batch)
	be := badEvents(t, "Append with many bad events", err)
	var gotN []int
	for _, e := range be.Errors {
		gotN = append(gotN, e.N)
	}
	reported := min(len(wantN), 20)
	if len(be.Errors) > 20 || !slices.Equal(gotN, wantN[:min(len(gotN), len(wantN))]) || len(gotN)+be.More != len(wantN) || len(gotN) < reported {
		t.Errorf("Append with %d bad events: reported events %v (+%d more), want %v (every bad one, in order)", len(wantN), gotN, be.More, wantN)
	}
	for _, e := range be.Errors {
		if e.N < len(batch) && (e.Asset != batch[e.N].Asset || e.Partition != batch[e.N].Partition) {
			t.Errorf("error for event %d names %s %q, want %s %q", e.N, e.Asset, e.Partition, batch[e.N].Asset, batch[e.N].Partition)
		}
	}
	for _, n := range wantN[:min(3, len(wantN))] {
		if s := fmt.Sprintf("event %d ", n+1); !strings.Contains(err.Error(), s) {
			t.Errorf("error text does not mention %q:\n%s", s, err)
		}
	}
	f.checkUnchanged("Append with many bad events", before)
}

func testAppendLastOfManyBad(t *testing.T, f *fixture) {
	f.sync(catalog())
	f.append(mat(rawDaily, day(0)))
	before := f.snapshotAll()
	var batch []store.Event
	for i := range 300 {
		batch = append(batch, mat(rawDaily, day(1+i)), failure(summary, "", "x"))
	}
	batch = append(batch, mat(rawDaily, "2026-13-01"))
	_, err := f.s.Append(f.ctx, batch)
	be := badEvents(t, "Append with the last of many events bad", err)
	if len(be.Errors) != 1 || be.Errors[0].N != len(batch)-1 {
		t.Errorf("errors %v, want one, for event %d", be.Errors, len(batch)-1)
	}
	f.checkUnchanged("Append with the last of many events bad", before)
	if r, err := f.s.Partition(f.ctx, summary, ""); err == nil {
		t.Errorf("Partition(%s) = %+v after a refused batch, want store.ErrNotFound", summary, *r)
	}
}

// checkEventsMatch compares events read back with the events as appended, in order.
func checkEventsMatch(t *testing.T, what string, got, want []store.Event) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d events, want %d (seqs %v, want %v)", what, len(got), len(want), seqsOf(got), seqsOf(want))
		return
	}
	for i := range got {
		for _, d := range eventDiff(want[i], got[i]) {
			t.Errorf("%s: event %d (seq %d): %s", what, i, want[i].Seq, d)
		}
	}
}

func seqsOf(events []store.Event) []int64 {
	s := make([]int64, len(events))
	for i, e := range events {
		s[i] = e.Seq
	}
	return s
}

func reversed(events []store.Event) []store.Event {
	r := slices.Clone(events)
	slices.Reverse(r)
	return r
}

func filterEvents(events []store.Event, keep func(store.Event) bool) []store.Event {
	var out []store.Event
	for _, e := range events {
		if keep(e) {
			out = append(out, e)
		}
	}
	return out
}

// eventsFrom returns the events with seq at or after seq, newest first.
func (f *fixture) eventsFrom(seq int64) []store.Event {
	f.t.Helper()
	return filterEvents(f.allEvents(store.EventQuery{Limit: 10_000}), func(e store.Event) bool { return e.Seq >= seq })
}
