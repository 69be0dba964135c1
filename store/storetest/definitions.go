package storetest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/freshetdev/freshet/assets"
	"github.com/freshetdev/freshet/store"
)

// checkRecord compares a stored asset record with the record of definition a.
func checkRecord(t *testing.T, rec store.AssetRecord, a *assets.Asset) {
	t.Helper()
	want := store.DefinitionOf(a)
	if rec.Key != want.Key {
		t.Errorf("asset %s: Key = %q", want.Key, rec.Key)
	}
	if rec.CodeVersion != want.CodeVersion {
		t.Errorf("asset %s: CodeVersion = %q, want %q", want.Key, rec.CodeVersion, want.CodeVersion)
	}
	if !slices.Equal(rec.Deps, want.Deps) {
		t.Errorf("asset %s: Deps = %v, want %v (sorted)", want.Key, rec.Deps, want.Deps)
	}
	if !store.SamePartitions(rec.Partitions, want.Partitions) {
		t.Errorf("asset %s: Partitions = %+v, want %+v", want.Key, rec.Partitions, want.Partitions)
	}
	if rec.IsSource != want.IsSource {
		t.Errorf("asset %s: IsSource = %v, want %v", want.Key, rec.IsSource, want.IsSource)
	}
	if rec.Fingerprint != want.Fingerprint {
		t.Errorf("asset %s: Fingerprint = %q, want %q (store.DefinitionOf)", want.Key, rec.Fingerprint, want.Fingerprint)
	}
	if !jsonEqual(rec.Definition, want.Definition) {
		t.Errorf("asset %s: Definition = %s, want %s", want.Key, rec.Definition, want.Definition)
	}
}

// checkChange compares a definition history entry with definition a.
func checkChange(t *testing.T, c store.DefinitionChange, kind store.ChangeKind, a *assets.Asset) {
	t.Helper()
	want := store.DefinitionOf(a)
	if c.Change != kind {
		t.Errorf("history of %s, seq %d: Change = %q, want %q", a.Key, c.Seq, c.Change, kind)
	}
	if c.CodeVersion != want.CodeVersion {
		t.Errorf("history of %s, seq %d: CodeVersion = %q, want %q", a.Key, c.Seq, c.CodeVersion, want.CodeVersion)
	}
	if !slices.Equal(c.Deps, want.Deps) {
		t.Errorf("history of %s, seq %d: Deps = %v, want %v", a.Key, c.Seq, c.Deps, want.Deps)
	}
	if !store.SamePartitions(c.Partitions, want.Partitions) {
		t.Errorf("history of %s, seq %d: Partitions = %+v, want %+v", a.Key, c.Seq, c.Partitions, want.Partitions)
	}
	if !jsonEqual(c.Definition, want.Definition) {
		t.Errorf("history of %s, seq %d: Definition = %s, want %s", a.Key, c.Seq, c.Definition, want.Definition)
	}
	if c.At.IsZero() {
		t.Errorf("history of %s, seq %d: At is zero", a.Key, c.Seq)
	}
}

func testFirstSyncAddsAll(t *testing.T, f *fixture) {
	if w := f.watermark(); w != 0 {
		t.Fatalf("fresh store: Watermark = %d, want 0", w)
	}
	defs := catalog()
	res := f.sync(defs)
	var keys []assets.Key
	for _, a := range defs.Assets {
		keys = append(keys, a.Key)
	}
	checkKeys(t, "SyncResult.Added", res.Added, keys)
	checkKeys(t, "SyncResult.Changed", res.Changed, nil)
	checkKeys(t, "SyncResult.Removed", res.Removed, nil)
	checkKeys(t, "SyncResult.Reindexed (new assets have nothing to re-index)", res.Reindexed, nil)
	if want := int64(len(defs.Assets)); res.Seq != want {
		t.Errorf("SyncResult.Seq = %d, want %d (one seq per added asset)", res.Seq, want)
	}
	if w := f.watermark(); w != res.Seq {
		t.Errorf("Watermark = %d after sync, want SyncResult.Seq %d", w, res.Seq)
	}

	recs := f.assets()
	if len(recs) != len(defs.Assets) {
		t.Errorf("Assets: %d records, want %d", len(recs), len(defs.Assets))
	}
	seqs := make(map[int64]assets.Key)
	for _, a := range defs.Assets {
		rec, ok := recs[a.Key]
		if !ok {
			t.Errorf("Assets: %s missing", a.Key)
			continue
		}
		checkRecord(t, rec, a)
		if rec.CreatedSeq <= 0 || rec.CreatedSeq > res.Seq {
			t.Errorf("asset %s: CreatedSeq = %d, want in [1, %d]", a.Key, rec.CreatedSeq, res.Seq)
		}
		if other, dup := seqs[rec.CreatedSeq]; dup {
			t.Errorf("assets %s and %s were both added at seq %d; each change takes its own seq", other, a.Key, rec.CreatedSeq)
		}
		seqs[rec.CreatedSeq] = a.Key
		if rec.UpdatedSeq != rec.CreatedSeq {
			t.Errorf("asset %s: UpdatedSeq = %d, want CreatedSeq %d", a.Key, rec.UpdatedSeq, rec.CreatedSeq)
		}
		if rec.RemovedSeq != 0 || rec.Removed() {
			t.Errorf("asset %s: RemovedSeq = %d, want 0", a.Key, rec.RemovedSeq)
		}
		if rec.CreatedAt.IsZero() || rec.UpdatedAt.IsZero() {
			t.Errorf("asset %s: CreatedAt %v, UpdatedAt %v: want both set", a.Key, rec.CreatedAt, rec.UpdatedAt)
		}
		h := f.history(a.Key, 0)
		if len(h) != 1 {
			t.Errorf("DefinitionHistory(%s): %d entries, want 1", a.Key, len(h))
			continue
		}
		checkChange(t, h[0], store.Added, a)
		if h[0].Seq != rec.CreatedSeq {
			t.Errorf("DefinitionHistory(%s): Seq = %d, want CreatedSeq %d", a.Key, h[0].Seq, rec.CreatedSeq)
		}
	}
}

func testResyncUnchanged(t *testing.T, f *fixture) {
	first := f.sync(catalog())
	before := f.assets()
	f.append(mat(rawDaily, day(0)), obs(srcDaily, day(0), "v1"))
	w := f.watermark()

	// The same definitions, built anew and listed in another order.
	defs := catalog()
	slices.Reverse(defs.Assets)
	res := f.sync(defs)
	checkKeys(t, "re-sync: Added", res.Added, nil)
	checkKeys(t, "re-sync: Changed", res.Changed, nil)
	checkKeys(t, "re-sync: Removed", res.Removed, nil)
	checkKeys(t, "re-sync: Reindexed", res.Reindexed, nil)
	if res.Seq != w {
		t.Errorf("re-sync: SyncResult.Seq = %d, want the unchanged watermark %d", res.Seq, w)
	}
	if got := f.watermark(); got != w {
		t.Errorf("re-sync: Watermark moved from %d to %d; unchanged definitions take no seq", w, got)
	}
	if first.Seq >= w {
		t.Errorf("watermark %d after appends is not past the first sync's seq %d", w, first.Seq)
	}
	after := f.assets()
	for k, b := range before {
		a := after[k]
		if a.UpdatedSeq != b.UpdatedSeq || a.Fingerprint != b.Fingerprint {
			t.Errorf("re-sync: asset %s went from updated seq %d (fingerprint %s) to %d (%s), want unchanged",
				k, b.UpdatedSeq, b.Fingerprint, a.UpdatedSeq, a.Fingerprint)
		}
		if h := f.history(k, 0); len(h) != 1 {
			t.Errorf("re-sync: DefinitionHistory(%s) has %d entries, want 1", k, len(h))
		}
	}
	if p := f.partition(rawDaily, day(0)); p.SuccessSeq == 0 {
		t.Errorf("re-sync lost the materialization of %s %s", rawDaily, day(0))
	}
}

func testChangedFields(t *testing.T, f *fixture) {
	const target assets.Key = "mart/target"
	const up1, up2 assets.Key = "mart/up_one", "mart/up_two"
	build := func(change func(a *assets.Asset)) (*assets.Definitions, *assets.Asset) {
		a := computed(target, dailyFrom("2026-01-01"), up1)
		a.Description = "the target"
		if change != nil {
			change(a)
		}
		return defsOf(computed(up1, dailyFrom("2026-01-01")), computed(up2, dailyFrom("2026-01-01")), a), a
	}
	cases := []struct {
		name    string
		change  func(a *assets.Asset)
		fields  []string
		reindex bool
	}{
		{"code_version", func(a *assets.Asset) { a.CodeVersion = "2" }, []string{store.FieldCodeVersion}, false},
		{"deps", func(a *assets.Asset) { a.Deps = []assets.Dep{{Asset: up2}, {Asset: up1}} }, []string{store.FieldDeps}, false},
		{"partitions", func(a *assets.Asset) { a.Partitions = dailyFrom("2025-12-30") }, []string{store.FieldPartitions}, true},
		{"description", func(a *assets.Asset) { a.Description = "the target, cleaned" }, []string{store.FieldDefinition}, false},
		{"compute", func(a *assets.Asset) { a.Compute = assets.CommandCompute{Argv: []string{"make", "target"}} }, []string{store.FieldDefinition}, false},
		{"code_version_and_deps", func(a *assets.Asset) {
			a.CodeVersion = "3"
			a.Deps = nil
		}, []string{store.FieldCodeVersion, store.FieldDeps}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := f.fresh(t)
			defs, base := build(nil)
			key := base.Key
			f.sync(defs)
			created := f.asset(key)

			w := f.watermark()
			defs2, changed := build(tc.change)
			res := f.sync(defs2)
			checkKeys(t, "SyncResult.Changed", res.Changed, []assets.Key{key})
			checkKeys(t, "SyncResult.Added", res.Added, nil)
			checkKeys(t, "SyncResult.Removed", res.Removed, nil)
			wantReindexed := []assets.Key(nil)
			if tc.reindex {
				wantReindexed = []assets.Key{key}
			}
			checkKeys(t, "SyncResult.Reindexed", res.Reindexed, wantReindexed)
			if res.Seq != w+1 {
				t.Errorf("SyncResult.Seq = %d, want %d (one change after watermark %d)", res.Seq, w+1, w)
			}
			if got := f.watermark(); got != w+1 {
				t.Errorf("Watermark = %d, want %d", got, w+1)
			}

			rec := f.asset(key)
			checkRecord(t, rec, changed)
			if rec.UpdatedSeq != w+1 {
				t.Errorf("asset %s: UpdatedSeq = %d, want %d", key, rec.UpdatedSeq, w+1)
			}
			if rec.CreatedSeq != created.CreatedSeq {
				t.Errorf("asset %s: CreatedSeq went from %d to %d on a change", key, created.CreatedSeq, rec.CreatedSeq)
			}

			h := f.history(key, 0)
			if len(h) != 2 {
				t.Fatalf("DefinitionHistory(%s): %d entries, want 2 (changed, added)", key, len(h))
			}
			checkChange(t, h[0], store.Changed, changed)
			if h[0].Seq != w+1 {
				t.Errorf("DefinitionHistory(%s)[0].Seq = %d, want %d", key, h[0].Seq, w+1)
			}
			if !sameStrings(h[0].Fields, tc.fields) {
				t.Errorf("DefinitionHistory(%s)[0].Fields = %q, want %q", key, h[0].Fields, tc.fields)
			}
			checkChange(t, h[1], store.Added, base)
			if h[0].At.Before(h[1].At) {
				t.Errorf("DefinitionHistory(%s): the change at %s is older than the addition at %s", key, h[0].At, h[1].At)
			}
			if lim := f.history(key, 1); len(lim) != 1 || lim[0].Seq != w+1 {
				t.Errorf("DefinitionHistory(%s, limit 1) = %d entries (first seq %d), want only the newest, seq %d",
					key, len(lim), firstSeq(lim), w+1)
			}
			// The other assets of the definitions are untouched.
			for _, other := range []assets.Key{up1, up2} {
				if h := f.history(other, 0); len(h) != 1 {
					t.Errorf("DefinitionHistory(%s): %d entries, want 1 (only %s changed)", other, len(h), key)
				}
			}
		})
	}
}

func firstSeq(h []store.DefinitionChange) int64 {
	if len(h) == 0 {
		return 0
	}
	return h[0].Seq
}

func testReindex(t *testing.T, f *fixture) {
	const key assets.Key = "re/asset"
	const other assets.Key = "re/other"
	weeklyFrom := func(start string) *assets.Partitions {
		return partitionsOf(assets.PartitionsSpec{Granularity: assets.Weekly, Start: start})
	}
	cases := []struct {
		name     string
		from, to *assets.Partitions
		record   []string       // materialized under from
		want     map[string]int // index under to (-1: no longer a partition)
		newKey   string         // a key of to that can be appended after the change
		newIndex int
	}{
		{
			name: "daily_start_earlier", from: dailyFrom("2026-01-01"), to: dailyFrom("2025-12-30"),
			record: []string{"2026-01-01", "2026-01-03"},
			want:   map[string]int{"2026-01-01": 2, "2026-01-03": 4},
			newKey: "2025-12-30", newIndex: 0,
		},
		{
			name: "daily_start_later", from: dailyFrom("2026-01-01"), to: dailyFrom("2026-01-03"),
			record: []string{"2026-01-01", "2026-01-05"},
			want:   map[string]int{"2026-01-01": -1, "2026-01-05": 2},
			newKey: "2026-01-04", newIndex: 1,
		},
		{
			name: "daily_to_weekly", from: dailyFrom("2026-01-05"), to: weeklyFrom("2026-01-05"),
			record: []string{"2026-01-05", "2026-01-06", "2026-01-12"},
			want:   map[string]int{"2026-01-05": 0, "2026-01-06": -1, "2026-01-12": 1},
			newKey: "2026-01-19", newIndex: 2,
		},
		{
			name: "end_added", from: dailyFrom("2026-01-01"),
			to:     partitionsOf(assets.PartitionsSpec{Granularity: assets.Daily, Start: "2026-01-01", End: "2026-01-03"}),
			record: []string{"2026-01-01", "2026-01-04"},
			want:   map[string]int{"2026-01-01": 0, "2026-01-04": -1},
			newKey: "2026-01-02", newIndex: 1,
		},
		{
			name: "daily_to_monthly", from: dailyFrom("2026-01-01"),
			to:     partitionsOf(assets.PartitionsSpec{Granularity: assets.Monthly, Start: "2026-01-01"}),
			record: []string{"2026-01-01", "2026-02-01"},
			want:   map[string]int{"2026-01-01": -1, "2026-02-01": -1},
			newKey: "2026-02", newIndex: 1,
		},
		{
			name: "partitioned_to_unpartitioned", from: dailyFrom("2026-01-01"), to: nil,
			record: []string{"2026-01-02"},
			want:   map[string]int{"2026-01-02": -1},
			newKey: "", newIndex: 0,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := f.fresh(t)
			k, o := key, other
			f.sync(defsOf(computed(k, tc.from), computed(o, dailyFrom("2026-01-01"))))
			for _, p := range tc.record {
				f.append(mat(k, p))
			}
			f.append(mat(o, day(1)))
			before := f.watermark()
			beforeIdx := make(map[string]int)
			for _, p := range tc.record {
				beforeIdx[p] = f.partition(k, p).Index
			}

			res := f.sync(defsOf(computed(k, tc.to), computed(o, dailyFrom("2026-01-01"))))
			checkKeys(t, "SyncResult.Changed", res.Changed, []assets.Key{k})
			checkKeys(t, "SyncResult.Reindexed", res.Reindexed, []assets.Key{k})
			if h := f.history(k, 1); len(h) != 1 || !slices.Contains(h[0].Fields, store.FieldPartitions) {
				t.Errorf("DefinitionHistory(%s, 1) = %+v, want a change listing %q", k, h, store.FieldPartitions)
			}

			// Partition keeps every recorded key, with its new index.
			wantCells := make(map[int]cell)
			maxIdx := -1
			for p, wi := range tc.want {
				r := f.partition(k, p)
				if r.Index != wi {
					t.Errorf("Partition(%s, %q).Index = %d after the change, want %d", k, p, r.Index, wi)
				}
				if r.SuccessSeq == 0 {
					t.Errorf("Partition(%s, %q): the materialization was lost in the re-index", k, p)
				}
				if wi >= 0 {
					wantCells[wi] = cell{Flags: store.FlagMaterialized, InputSeq: r.InputSeq, DataChangedSeq: r.DataChangedSeq}
					maxIdx = max(maxIdx, wi)
				}
			}
			st := f.assetState(k)
			checkCells(t, "ReadState "+string(k)+" after re-index", st, wantCells, false)
			if st.Len() != maxIdx+1 {
				t.Errorf("ReadState %s: Len = %d, want %d (up to the last recorded partition)", k, st.Len(), maxIdx+1)
			}
			hi := maxIdx + 3
			for i, s := range expandRanges(f.ranges(k, 0, hi), 0, hi) {
				want := store.Missing
				if _, ok := wantCells[i]; ok {
					want = store.Materialized
				}
				if s != want {
					t.Errorf("PartitionRanges(%s): index %d is %s, want %s", k, i, s, want)
				}
			}

			// ReadChanges since before the change brings the asset back in full.
			ch := f.changes(before)
			if re, ok := ch.Reloaded[k]; !ok {
				t.Errorf("ReadChanges(%d): %s not in Reloaded after its partitions changed", before, k)
			} else {
				checkCells(t, "ReadChanges Reloaded "+string(k), re, cellsOf(st, true), true)
			}
			if _, ok := ch.Reloaded[o]; ok {
				t.Errorf("ReadChanges(%d): %s in Reloaded, but its partitions did not change", before, o)
			}
			if u, ok := ch.Updated[o]; ok && len(u.Index) > 0 {
				t.Errorf("ReadChanges(%d): %s has updates %v, but nothing of it changed", before, o, u.Index)
			}

			// Keys that left the definition are refused; new ones are accepted.
			for p, wi := range tc.want {
				if wi >= 0 {
					continue
				}
				_, err := f.s.Append(f.ctx, []store.Event{mat(k, p)})
				bad := badEvents(t, "Append for "+p+", no longer a partition", err)
				if len(bad.Errors) != 1 || bad.Errors[0].Partition != p {
					t.Errorf("Append for %q: errors %v, want one naming the partition", p, bad.Errors)
				}
			}
			got := f.append1(mat(k, tc.newKey))
			if r := f.partition(k, tc.newKey); r.Index != tc.newIndex || r.SuccessSeq != got.Seq {
				t.Errorf("Partition(%s, %q) = index %d, success seq %d; want index %d, seq %d", k, tc.newKey, r.Index, r.SuccessSeq, tc.newIndex, got.Seq)
			}
			f.verifyClean()

			// Going back to the first definition restores the first indexes.
			f.sync(defsOf(computed(k, tc.from), computed(o, dailyFrom("2026-01-01"))))
			for p, wi := range beforeIdx {
				if r := f.partition(k, p); r.Index != wi {
					t.Errorf("after restoring the first definition: Partition(%s, %q).Index = %d, want %d", k, p, r.Index, wi)
				}
			}
			f.verifyClean()
		})
	}
}

func testRemoveAndReAdd(t *testing.T, f *fixture) {
	f.sync(catalog())
	m := f.append1(mat(weekly, "2026-01-05"))
	w := f.watermark()

	// Drop sales/weekly.
	defs := catalog()
	defs.Assets = slices.DeleteFunc(defs.Assets, func(a *assets.Asset) bool { return a.Key == weekly })
	res := f.sync(defs)
	checkKeys(t, "SyncResult.Removed", res.Removed, []assets.Key{weekly})
	checkKeys(t, "SyncResult.Added", res.Added, nil)
	checkKeys(t, "SyncResult.Changed", res.Changed, nil)
	if res.Seq != w+1 {
		t.Errorf("SyncResult.Seq = %d, want %d", res.Seq, w+1)
	}
	rec, ok := f.assets()[weekly]
	switch {
	case !ok:
		t.Fatalf("Assets: removed asset %s is gone; removed assets stay, marked removed", weekly)
	case rec.RemovedSeq != w+1 || !rec.Removed():
		t.Errorf("Assets: %s RemovedSeq = %d, want %d", weekly, rec.RemovedSeq, w+1)
	}
	h := f.history(weekly, 0)
	if len(h) != 2 || h[0].Change != store.Removed || h[1].Change != store.Added || h[0].Seq != w+1 {
		t.Errorf("DefinitionHistory(%s) = %s, want [removed at %d, added]", weekly, historyString(h), w+1)
	}
	if _, ok := f.state().Assets[weekly]; ok {
		t.Errorf("ReadState(all): removed asset %s is in the snapshot", weekly)
	}

	// Appending for it is refused with a clear error.
	before := f.snapshotAll()
	_, err := f.s.Append(f.ctx, []store.Event{mat(rawDaily, day(3)), mat(weekly, "2026-01-12")})
	bad := badEvents(t, "Append for a removed asset", err)
	if len(bad.Errors) != 1 || bad.Errors[0].N != 1 || bad.Errors[0].Asset != weekly {
		t.Errorf("Append for a removed asset: errors %v, want one for event 1 naming %s", bad.Errors, weekly)
	} else if !strings.Contains(err.Error(), "removed") {
		t.Errorf("Append for a removed asset: error %q does not say the asset was removed", err)
	}
	f.checkUnchanged("Append for a removed asset", before)

	// Re-adding it brings it back, with its recorded partitions.
	w = f.watermark()
	res = f.sync(catalog())
	checkKeys(t, "re-add: SyncResult.Added", res.Added, []assets.Key{weekly})
	checkKeys(t, "re-add: SyncResult.Removed", res.Removed, nil)
	if rec := f.asset(weekly); rec.Removed() {
		t.Errorf("re-add: %s still has RemovedSeq %d", weekly, rec.RemovedSeq)
	}
	h = f.history(weekly, 0)
	if len(h) != 3 || h[0].Change != store.Added || h[1].Change != store.Removed || h[2].Change != store.Added {
		t.Errorf("re-add: DefinitionHistory(%s) = %s, want [added, removed, added]", weekly, historyString(h))
	}
	if r := f.partition(weekly, "2026-01-05"); r.SuccessSeq != m.Seq {
		t.Errorf("re-add: Partition(%s, 2026-01-05).SuccessSeq = %d, want %d (kept from before the removal)", weekly, r.SuccessSeq, m.Seq)
	}
	if st, ok := f.state().Assets[weekly]; !ok {
		t.Errorf("re-add: %s missing from ReadState", weekly)
	} else if st.Len() < 1 || st.Flags[0] != store.FlagMaterialized {
		t.Errorf("re-add: ReadState %s flags = %v, want [materialized]", weekly, st.Flags)
	}
	if ch := f.changes(w); ch.Reloaded[weekly] == nil {
		t.Errorf("re-add: ReadChanges(%d) has no %s in Reloaded; a re-added asset comes back in full", w, weekly)
	}
	e := f.append1(mat(weekly, "2026-01-12"))
	if r := f.partition(weekly, "2026-01-12"); r.SuccessSeq != e.Seq || r.Index != 1 {
		t.Errorf("re-add: Partition(%s, 2026-01-12) = success seq %d, index %d; want %d, 1", weekly, r.SuccessSeq, r.Index, e.Seq)
	}
	f.verifyClean()
}

func historyString(h []store.DefinitionChange) string {
	parts := make([]string, len(h))
	for i, c := range h {
		parts[i] = fmt.Sprintf("%s at %d", c.Change, c.Seq)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

func testSecretsNotStored(t *testing.T, f *fixture) {
	const cmd, call assets.Key = "sec/command", "sec/http"
	const envSecret, headerSecret = "s3cr3t-env-value-7f3a", "Bearer hunter2-header-9c1d"
	defs := defsOf(
		&assets.Asset{Key: cmd, CodeVersion: "1", Compute: assets.CommandCompute{
			Argv: []string{"python3", "load.py"},
			Env:  map[string]string{"API_TOKEN": envSecret, "REGION": "eu-west-1-region-value"},
		}},
		&assets.Asset{Key: call, CodeVersion: "1", Compute: assets.HTTPCompute{
			URL:     "https://example.com/build",
			Headers: map[string]string{"Authorization": headerSecret},
		}},
	)
	f.sync(defs)
	check := func(what string, def []byte, names []string) {
		t.Helper()
		s := string(def)
		for _, secret := range []string{envSecret, headerSecret, "eu-west-1-region-value", "hunter2"} {
			if strings.Contains(s, secret) {
				t.Errorf("%s holds the value %q: %s", what, secret, s)
			}
		}
		for _, n := range names {
			if !strings.Contains(s, n) {
				t.Errorf("%s does not name %q: %s", what, n, s)
			}
		}
	}
	recs := f.assets()
	check("stored definition of "+string(cmd), recs[cmd].Definition, []string{"API_TOKEN", "REGION"})
	check("stored definition of "+string(call), recs[call].Definition, []string{"Authorization"})
	for _, k := range []assets.Key{cmd, call} {
		for _, c := range f.history(k, 0) {
			check("definition history of "+string(k), c.Definition, nil)
		}
	}
}

func testDefinitionsUnknownAsset(t *testing.T, f *fixture) {
	f.sync(catalog())
	h, err := f.s.DefinitionHistory(f.ctx, "no/such_asset", 0)
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("DefinitionHistory(no/such_asset) = %d entries, error %v; want store.ErrNotFound", len(h), err)
	}
}
