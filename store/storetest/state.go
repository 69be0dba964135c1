package storetest

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/freshetdev/freshet/assets"
	"github.com/freshetdev/freshet/store"
)

func testStateSparse(t *testing.T, f *fixture) {
	f.sync(catalog())
	e := f.append1(mat(rawDaily, "2026-01-03"))
	snap := f.state(rawDaily)
	if w := f.watermark(); snap.Seq != w {
		t.Errorf("ReadState.Seq = %d, want the watermark %d", snap.Seq, w)
	}
	st := snap.Assets[rawDaily]
	if st == nil {
		t.Fatalf("ReadState(%s): asset missing", rawDaily)
	}
	if st.Len() != 3 {
		t.Errorf("ReadState %s after materializing only 2026-01-03 (index 2): Len = %d, want 3", rawDaily, st.Len())
	}
	if want := []store.PartitionFlags{0, 0, store.FlagMaterialized}; !slices.Equal(st.Flags, want) {
		t.Errorf("ReadState %s: Flags = %v, want %v", rawDaily, st.Flags, want)
	}
	checkCells(t, "ReadState "+string(rawDaily), st, map[int]cell{
		2: {Flags: store.FlagMaterialized, InputSeq: e.Seq - 1, DataChangedSeq: e.Seq, Code: "1", Deps: string(srcDaily)},
	}, true)
}

func testStateCodeAndDeps(t *testing.T, f *fixture) {
	const (
		target assets.Key = "code/target"
		upA    assets.Key = "code/up_a"
		upB    assets.Key = "code/up_b"
	)
	build := func(version string, deps ...assets.Key) *assets.Definitions {
		tg := computed(target, dailyFrom("2026-01-01"), deps...)
		tg.CodeVersion = version
		return defsOf(computed(upA, dailyFrom("2026-01-01")), computed(upB, dailyFrom("2026-01-01")), tg)
	}
	withCode := func(e store.Event, version string, deps ...assets.Key) store.Event {
		e.Code = &store.Code{Version: version, Deps: deps}
		return e
	}
	a, ab := string(upA), store.JoinKeys([]assets.Key{upA, upB})
	want := map[int]cell{}
	record := func(i int, e store.Event, code, deps string) {
		want[i] = cell{Flags: store.FlagMaterialized, InputSeq: e.Seq - 1, DataChangedSeq: e.Seq, Code: code, Deps: deps}
	}

	f.sync(build("1", upA))
	record(0, f.append1(mat(target, day(0))), "1", a)
	f.sync(build("2", upA))
	record(1, f.append1(mat(target, day(1))), "2", a)
	f.sync(build("2", upA, upB))
	record(2, f.append1(mat(target, day(2))), "2", ab)
	record(3, f.append1(withCode(mat(target, day(3)), "1", upA)), "1", a)
	record(4, f.append1(withCode(mat(target, day(4)), "hotfix")), "hotfix", "")
	record(5, f.append1(mat(target, day(5))), "2", ab)

	st := f.assetState(target)
	checkCells(t, "ReadState "+string(target), st, want, true)
	if !sameStrings(st.CodeVersions, []string{"1", "2", "hotfix"}) {
		t.Errorf("ReadState %s: CodeVersions = %q, want the versions materialized: 1, 2, hotfix", target, st.CodeVersions)
	}
	var sets []string
	for _, ds := range st.DepSets {
		sets = append(sets, store.JoinKeys(ds))
	}
	if !sameStrings(sets, []string{a, ab, ""}) {
		t.Errorf("ReadState %s: DepSets = %v, want the dep sets materialized: [%s], [%s %s], []", target, st.DepSets, upA, upA, upB)
	}
	if len(st.CodeVersion) > 3 && st.CodeVersion[0] != st.CodeVersion[3] {
		t.Errorf("ReadState %s: partitions built with the same code version have ids %d and %d", target, st.CodeVersion[0], st.CodeVersion[3])
	}
	if len(st.DepSet) > 5 && st.DepSet[2] != st.DepSet[5] {
		t.Errorf("ReadState %s: partitions built with the same dep set have ids %d and %d", target, st.DepSet[2], st.DepSet[5])
	}

	// Rebuilding partition 0 under the current definition moves it to the new ids.
	record(0, f.append1(mat(target, day(0))), "2", ab)
	checkCells(t, "ReadState "+string(target)+" after a rebuild", f.assetState(target), want, true)
	f.verifyClean()
}

func testStateFlags(t *testing.T, f *fixture) {
	f.sync(catalog())
	f.append(
		failure(rawDaily, day(0), "a"),
		mat(rawDaily, day(1)),
		mat(rawDaily, day(2)), failure(rawDaily, day(2), "b"),
		failure(rawDaily, day(3), "c"), mat(rawDaily, day(3)),
	)
	st := f.assetState(rawDaily)
	want := []store.PartitionFlags{store.FlagFailed, store.FlagMaterialized, store.FlagMaterialized | store.FlagFailed, store.FlagMaterialized}
	if !slices.Equal(st.Flags, want) {
		t.Errorf("ReadState %s: Flags = %v, want %v (failed only, materialized, materialized then failed, failed then materialized)", rawDaily, st.Flags, want)
	}
	if st.Len() == len(want) && (st.InputSeq[0] != 0 || st.DataChangedSeq[0] != 0) {
		t.Errorf("ReadState %s: a partition that only failed has input seq %d, data-changed seq %d; want 0, 0", rawDaily, st.InputSeq[0], st.DataChangedSeq[0])
	}
}

func testStateUnpartitioned(t *testing.T, f *fixture) {
	f.sync(catalog())
	m := f.append1(mat(summary, ""))
	o := f.append1(obs(srcSingle, "", "v1"))
	snap := f.state()
	for _, c := range []struct {
		k    assets.Key
		want cell
		code bool
	}{
		{summary, cell{Flags: store.FlagMaterialized, InputSeq: m.Seq - 1, DataChangedSeq: m.Seq, Code: "1", Deps: store.JoinKeys([]assets.Key{srcSingle, rawDaily})}, true},
		{srcSingle, cell{Flags: store.FlagMaterialized, DataChangedSeq: o.Seq}, false},
	} {
		st := snap.Assets[c.k]
		if st == nil {
			t.Errorf("ReadState: %s missing", c.k)
			continue
		}
		if st.Len() != 1 {
			t.Errorf("ReadState %s (unpartitioned): Len = %d, want 1", c.k, st.Len())
		}
		checkCells(t, "ReadState "+string(c.k), st, map[int]cell{0: c.want}, c.code)
	}
}

func testStateSelected(t *testing.T, f *fixture) {
	defs := catalog()
	f.sync(defs)
	f.append(mat(rawDaily, day(0)), mat(summary, ""))
	all := f.state()
	for _, a := range defs.Assets {
		if _, ok := all.Assets[a.Key]; !ok {
			t.Errorf("ReadState(all): defined asset %s missing (with or without recorded partitions, every asset is in the snapshot)", a.Key)
		}
	}
	if len(all.Assets) != len(defs.Assets) {
		t.Errorf("ReadState(all): %d assets, want %d", len(all.Assets), len(defs.Assets))
	}
	one := f.state(rawDaily, weekly)
	if len(one.Assets) != 2 || one.Assets[rawDaily] == nil || one.Assets[weekly] == nil {
		t.Errorf("ReadState(%s, %s): assets %v, want exactly those two", rawDaily, weekly, keysOf(one.Assets))
	}
	for _, d := range diffCells(cellsOf(all.Assets[rawDaily], true), cellsOf(one.Assets[rawDaily], true)) {
		t.Errorf("ReadState(%s) differs from ReadState(all): %s", rawDaily, d)
	}
}

func keysOf[V any](m map[assets.Key]V) []assets.Key {
	keys := make([]assets.Key, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// ---- ReadChanges -------------------------------------------------------------

func testChangesTouched(t *testing.T, f *fixture) {
	f.sync(catalog())
	var first []store.Event
	for i := range 5 {
		first = append(first, mat(rawDaily, day(i)))
	}
	f.append(append(first, obs(srcDaily, day(0), "v1"), mat(summary, ""))...)
	snap := f.state()

	got := f.append(
		matDV(rawDaily, day(1), "new"),
		failure(rawDaily, day(3), "boom"),
		matDV(summary, "", "s2"),
		planned(rawDaily, day(4)),
		obs(srcSingle, "", "r1"),
		mat(rawDaily, day(7)),
	)
	w := f.watermark()
	ch := f.changes(snap.Seq)
	if ch.Seq != w {
		t.Errorf("ReadChanges(%d).Seq = %d, want the watermark %d", snap.Seq, ch.Seq, w)
	}
	if len(ch.Reloaded) != 0 {
		t.Errorf("ReadChanges(%d).Reloaded = %v, want none (no definition changed)", snap.Seq, keysOf(ch.Reloaded))
	}
	r3 := f.partition(rawDaily, day(3))
	wantUpdates := map[assets.Key]map[int]cell{
		rawDaily: {
			1: {Flags: store.FlagMaterialized, InputSeq: got[0].Seq - 1, DataChangedSeq: got[0].Seq, Code: "1", Deps: string(srcDaily)},
			3: {Flags: store.FlagMaterialized | store.FlagFailed, InputSeq: r3.InputSeq, DataChangedSeq: r3.DataChangedSeq, Code: "1", Deps: string(srcDaily)},
			7: {Flags: store.FlagMaterialized, InputSeq: got[5].Seq - 1, DataChangedSeq: got[5].Seq, Code: "1", Deps: string(srcDaily)},
		},
		summary: {
			0: {Flags: store.FlagMaterialized, InputSeq: got[2].Seq - 1, DataChangedSeq: got[2].Seq, Code: "1", Deps: store.JoinKeys([]assets.Key{srcSingle, rawDaily})},
		},
		srcSingle: {
			0: {Flags: store.FlagMaterialized, DataChangedSeq: got[4].Seq},
		},
	}
	for k, u := range ch.Updated {
		if _, ok := wantUpdates[k]; !ok && len(u.Index) > 0 {
			t.Errorf("ReadChanges(%d): %s updated at %v, but none of its partitions changed", snap.Seq, k, u.Index)
		}
	}
	for k, want := range wantUpdates {
		u := ch.Updated[k]
		if u == nil {
			t.Errorf("ReadChanges(%d): no update for %s, want partitions %v", snap.Seq, k, slices.Sorted(maps.Keys(want)))
			continue
		}
		code := k != srcSingle
		gotCells := updateCells(u, code)
		if !code {
			for i, c := range gotCells {
				c.Code, c.Deps = "", ""
				gotCells[i] = c
			}
		}
		for _, d := range diffCells(want, gotCells) {
			t.Errorf("ReadChanges(%d) update of %s: %s", snap.Seq, k, d)
		}
	}

	kept := map[assets.Key]*store.AssetState{}
	for k, st := range snap.Assets {
		kept[k] = cloneState(st)
	}
	applyChanges(kept, ch)
	checkSameState(t, kept, f.state())
}

func testChangesNothing(t *testing.T, f *fixture) {
	f.sync(catalog())
	f.append(mat(rawDaily, day(0)), obs(srcDaily, day(0), "v"), failure(summary, "", "x"))
	w := f.watermark()
	ch := f.changes(w)
	if ch.Seq != w {
		t.Errorf("ReadChanges(watermark %d).Seq = %d, want %d", w, ch.Seq, w)
	}
	if len(ch.Reloaded) != 0 {
		t.Errorf("ReadChanges(watermark): Reloaded %v, want none", keysOf(ch.Reloaded))
	}
	for k, u := range ch.Updated {
		if len(u.Index) > 0 {
			t.Errorf("ReadChanges(watermark): %s updated at %v, want nothing", k, u.Index)
		}
	}

	// From 0, everything comes back: a reader can start from nothing.
	kept := map[assets.Key]*store.AssetState{}
	applyChanges(kept, f.changes(0))
	checkSameState(t, kept, f.state())
}

func testChangesReloaded(t *testing.T, f *fixture) {
	const added assets.Key = "sales/added"
	f.sync(catalog())
	f.append(mat(rawDaily, day(0)), mat(rawDaily, day(2)), mat(weekly, "2026-01-12"))
	snap := f.state()
	kept := map[assets.Key]*store.AssetState{}
	for k, st := range snap.Assets {
		kept[k] = cloneState(st)
	}

	// Add an asset.
	defs := catalog()
	defs.Assets = append(defs.Assets, computed(added, dailyFrom("2026-01-01"), rawDaily))
	f.sync(defs)
	ch := f.changes(snap.Seq)
	if ch.Reloaded[added] == nil {
		t.Errorf("ReadChanges(%d) after adding %s: not in Reloaded (%v)", snap.Seq, added, keysOf(ch.Reloaded))
	}
	applyChanges(kept, ch)
	last := ch.Seq

	// Move the start of sales/raw two days earlier: its indexes shift by 2.
	defs = catalog()
	defs.Assets[1].Partitions = dailyFrom("2025-12-30")
	defs.Assets = append(defs.Assets, computed(added, dailyFrom("2026-01-01"), rawDaily))
	f.sync(defs)
	f.append(mat(added, day(1)))
	ch = f.changes(last)
	re := ch.Reloaded[rawDaily]
	if re == nil {
		t.Fatalf("ReadChanges(%d) after changing the partitions of %s: not in Reloaded (%v)", last, rawDaily, keysOf(ch.Reloaded))
	}
	if re.Len() != 5 || re.Flags[2] != store.FlagMaterialized || re.Flags[4] != store.FlagMaterialized {
		t.Errorf("Reloaded %s: flags %v, want materialized at 2 and 4 (2026-01-01 and 2026-01-03 under a start of 2025-12-30)", rawDaily, re.Flags)
	}
	if u := ch.Updated[added]; u == nil || !slices.Equal(u.Index, []int{1}) {
		t.Errorf("ReadChanges(%d): update of %s = %+v, want index [1]", last, added, u)
	}
	applyChanges(kept, ch)
	checkSameState(t, kept, f.state())
}

// ---- Partition and PartitionRanges --------------------------------------------

func testPartitionRecord(t *testing.T, f *fixture) {
	f.sync(catalog())
	replay := &store.PartitionRecord{Asset: rawDaily, Partition: day(2)}
	steps := []store.Event{
		matDV(rawDaily, day(2), "d1"),
		failure(rawDaily, day(2), "disk full"),
		planned(rawDaily, day(2)),
		matDV(rawDaily, day(2), "d1"),
		failure(rawDaily, day(2), "again"),
	}
	var lastTouch int64
	for n, e := range steps {
		got := f.append1(e)
		replay.Apply(&got)
		if got.Kind.Touches() {
			lastTouch = got.Seq
		}
		r := f.partition(rawDaily, day(2))
		for _, d := range store.Diff(replay, r) {
			t.Errorf("after step %d (%s): %s", n, e.Kind, d)
		}
		if r.Index != 2 {
			t.Errorf("after step %d: Index = %d, want 2", n, r.Index)
		}
		if r.LastSeq != lastTouch {
			t.Errorf("after step %d (%s): LastSeq = %d, want %d (the newest event that changed it)", n, e.Kind, r.LastSeq, lastTouch)
		}
	}
	r := f.partition(rawDaily, day(2))
	if !r.Failed || r.DataVersion != "d1" || r.SuccessSeq == 0 || r.Code == nil || r.Code.Version != "1" {
		t.Errorf("final record %+v: want failed, data version d1, materialized with code version 1", *r)
	}
}

func testPartitionNotFound(t *testing.T, f *fixture) {
	f.sync(catalog())
	f.append(mat(rawDaily, day(0)))
	cases := []struct {
		name string
		k    assets.Key
		p    string
	}{
		{"unknown asset", "no/such_asset", day(0)},
		{"unknown asset, unpartitioned", "no/such_asset", ""},
		{"partition never recorded", rawDaily, day(1)},
		{"unpartitioned asset never recorded", summary, ""},
		{"not a partition key", rawDaily, "garbage"},
	}
	for _, tc := range cases {
		r, err := f.s.Partition(f.ctx, tc.k, tc.p)
		if !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s: Partition(%s, %q) = %v, error %v; want store.ErrNotFound", tc.name, tc.k, tc.p, r, err)
		}
	}
	if rs, err := f.s.PartitionRanges(f.ctx, "no/such_asset", 0, 10); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("PartitionRanges(no/such_asset) = %v, error %v; want store.ErrNotFound", rs, err)
	}
}

func testPartitionRanges(t *testing.T, f *fixture) {
	f.sync(catalog())
	// index: 0 1 materialized, 2 missing, 3 failed only, 4 materialized then failed,
	// 5 6 materialized, 7 planned only, 8.. missing.
	f.append(
		mat(rawDaily, day(0)), mat(rawDaily, day(1)),
		failure(rawDaily, day(3), "x"),
		mat(rawDaily, day(4)), failure(rawDaily, day(4), "y"),
		failure(rawDaily, day(5), "z"), mat(rawDaily, day(5)), mat(rawDaily, day(6)),
		planned(rawDaily, day(7)),
		mat(summary, ""),
	)
	M, X, F, MF := store.Materialized, store.Missing, store.FailedOnly, store.MaterializedFailed
	cases := []struct {
		lo, hi int
		want   []store.Range
	}{
		{0, 10, []store.Range{rg(0, 2, M), rg(2, 3, X), rg(3, 4, F), rg(4, 5, MF), rg(5, 7, M), rg(7, 10, X)}},
		{1, 6, []store.Range{rg(1, 2, M), rg(2, 3, X), rg(3, 4, F), rg(4, 5, MF), rg(5, 6, M)}},
		{2, 3, []store.Range{rg(2, 3, X)}},
		{4, 5, []store.Range{rg(4, 5, MF)}},
		{6, 400, []store.Range{rg(6, 7, M), rg(7, 400, X)}},
		{50, 60, []store.Range{rg(50, 60, X)}},
		{5, 5, nil},
	}
	for _, tc := range cases {
		got := f.ranges(rawDaily, tc.lo, tc.hi)
		if !slices.Equal(got, tc.want) {
			t.Errorf("PartitionRanges(%s, %d, %d) = %s, want %s", rawDaily, tc.lo, tc.hi, rangesString(got), rangesString(tc.want))
		}
	}
	if got, want := f.ranges(summary, 0, 1), []store.Range{rg(0, 1, M)}; !slices.Equal(got, want) {
		t.Errorf("PartitionRanges(%s, 0, 1) = %s, want %s", summary, rangesString(got), rangesString(want))
	}
	if got, want := f.ranges(weekly, 0, 3), []store.Range{rg(0, 3, X)}; !slices.Equal(got, want) {
		t.Errorf("PartitionRanges(%s, 0, 3) (nothing recorded) = %s, want %s", weekly, rangesString(got), rangesString(want))
	}

	// An interval that cannot be covered exactly is refused, not silently clipped.
	for _, bad := range [][2]int{{-3, 4}, {-1, 0}, {5, 2}} {
		if rs, err := f.s.PartitionRanges(f.ctx, rawDaily, bad[0], bad[1]); err == nil {
			t.Errorf("PartitionRanges(%s, %d, %d) = %s, no error; want an error (partition indexes start at 0 and lo <= hi)", rawDaily, bad[0], bad[1], rangesString(rs))
		}
	}

	// The ranges agree with ReadState.
	st := f.assetState(rawDaily)
	got := expandRanges(f.ranges(rawDaily, 0, st.Len()+1), 0, st.Len()+1)
	for i, s := range got {
		if want := store.RecordedOf(at(st.Flags, i)); s != want {
			t.Errorf("PartitionRanges index %d = %s, ReadState flags give %s", i, s, want)
		}
	}
}

func rangesString(rs []store.Range) string {
	s := "["
	for i, r := range rs {
		if i > 0 {
			s += " "
		}
		s += fmt.Sprintf("[%d,%d)%s", r.Lo, r.Hi, r.State)
	}
	return s + "]"
}

func rg(lo, hi int, s store.RecordedState) store.Range {
	return store.Range{Lo: lo, Hi: hi, State: s}
}
