package store_test

import (
	"slices"
	"testing"

	"github.com/freshetdev/freshet/assets"
	"github.com/freshetdev/freshet/store"
)

func rg(lo, hi int, s store.RecordedState) store.Range { return store.Range{Lo: lo, Hi: hi, State: s} }

func TestRangeBuilder(t *testing.T) {
	const M, X, F, MF = store.Materialized, store.Missing, store.FailedOnly, store.MaterializedFailed
	type add struct {
		i int
		s store.RecordedState
	}
	cases := []struct {
		name   string
		lo, hi int
		adds   []add
		want   []store.Range
	}{
		{"nothing recorded", 0, 5, nil, []store.Range{rg(0, 5, X)}},
		{"empty interval", 3, 3, []add{{3, M}}, nil},
		{"one in the middle", 0, 5, []add{{2, M}}, []store.Range{rg(0, 2, X), rg(2, 3, M), rg(3, 5, X)}},
		{"adjacent equal states merge", 0, 4, []add{{0, M}, {1, M}, {2, M}, {3, M}}, []store.Range{rg(0, 4, M)}},
		{"every state", 0, 6, []add{{0, M}, {1, F}, {3, MF}, {4, MF}},
			[]store.Range{rg(0, 1, M), rg(1, 2, F), rg(2, 3, X), rg(3, 5, MF), rg(5, 6, X)}},
		{"outside the interval ignored", 10, 13, []add{{2, M}, {9, F}, {11, M}, {13, F}, {40, M}},
			[]store.Range{rg(10, 11, X), rg(11, 12, M), rg(12, 13, X)}},
		{"repeated or backwards index ignored", 0, 5, []add{{1, M}, {1, F}, {0, F}, {3, F}},
			[]store.Range{rg(0, 1, X), rg(1, 2, M), rg(2, 3, X), rg(3, 4, F), rg(4, 5, X)}},
		{"explicit missing merges with the gap", 0, 5, []add{{2, X}, {3, M}}, []store.Range{rg(0, 3, X), rg(3, 4, M), rg(4, 5, X)}},
		{"first and last", 5, 8, []add{{5, F}, {7, F}}, []store.Range{rg(5, 6, F), rg(6, 7, X), rg(7, 8, F)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := store.NewRangeBuilder(tc.lo, tc.hi)
			for _, a := range tc.adds {
				b.Add(a.i, a.s)
			}
			if got := b.Ranges(); !slices.Equal(got, tc.want) {
				t.Errorf("Ranges() = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestAssetStateGrow(t *testing.T) {
	s := &store.AssetState{
		Flags: []store.PartitionFlags{store.FlagMaterialized}, InputSeq: []int64{4}, DataChangedSeq: []int64{5},
		CodeVersion: []uint32{1}, DepSet: []uint32{2}, CodeVersions: []string{"a", "b"}, DepSets: [][]assets.Key{{}, {}, {"x/y"}},
	}
	s.Grow(3)
	if s.Len() != 3 || len(s.InputSeq) != 3 || len(s.DataChangedSeq) != 3 || len(s.CodeVersion) != 3 || len(s.DepSet) != 3 {
		t.Fatalf("Grow(3): lengths %d %d %d %d %d, want all 3", len(s.Flags), len(s.InputSeq), len(s.DataChangedSeq), len(s.CodeVersion), len(s.DepSet))
	}
	if s.Flags[0] != store.FlagMaterialized || s.InputSeq[0] != 4 || s.DataChangedSeq[0] != 5 || s.CodeVersion[0] != 1 || s.DepSet[0] != 2 {
		t.Errorf("Grow lost the existing partition: %+v", s)
	}
	if s.Flags[2] != 0 || s.InputSeq[2] != 0 || s.DataChangedSeq[2] != 0 || s.CodeVersion[2] != 0 || s.DepSet[2] != 0 {
		t.Errorf("Grow: new partitions hold values: %+v", s)
	}
	s.Grow(1)
	if s.Len() != 3 {
		t.Errorf("Grow(1) shrank the state to %d", s.Len())
	}
	var empty store.AssetState
	empty.Grow(2)
	if empty.Len() != 2 || len(empty.DepSet) != 2 {
		t.Errorf("Grow on an empty state: Len %d", empty.Len())
	}
}

func TestStrings(t *testing.T) {
	cases := []struct{ got, want string }{
		{store.Inconsistency{Asset: "a/b", Partition: "2026-01-01", Problem: "x"}.String(), "a/b partition 2026-01-01: x"},
		{store.Inconsistency{Asset: "a/b", Problem: "x"}.String(), "a/b (unpartitioned): x"},
		{store.Missing.String(), "MISSING"},
		{store.Materialized.String(), "MATERIALIZED"},
		{store.FailedOnly.String(), "FAILED"},
		{store.MaterializedFailed.String(), "MATERIALIZED_FAILED"},
		{store.RecordedState(9).String(), "RecordedState(?)"},
	}
	for _, tc := range cases {
		if tc.got != tc.want {
			t.Errorf("%q, want %q", tc.got, tc.want)
		}
	}
	if r := (store.AssetRecord{}); r.Removed() {
		t.Error("AssetRecord{}.Removed() = true")
	}
	if r := (store.AssetRecord{RemovedSeq: 4}); !r.Removed() {
		t.Error("AssetRecord{RemovedSeq: 4}.Removed() = false")
	}
}
