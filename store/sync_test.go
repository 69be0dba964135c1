package store_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/freshetdev/freshet/assets"
	"github.com/freshetdev/freshet/store"
)

func TestPlanSync(t *testing.T) {
	daily := mustPartitions(t, assets.PartitionsSpec{Granularity: assets.Daily, Start: "2026-01-01"})
	earlier := mustPartitions(t, assets.PartitionsSpec{Granularity: assets.Daily, Start: "2025-12-01"})
	stored := func(as ...*assets.Asset) []store.AssetRecord {
		var recs []store.AssetRecord
		for i, a := range as {
			r := store.DefinitionOf(a)
			r.CreatedSeq, r.UpdatedSeq = int64(i+1), int64(i+1)
			recs = append(recs, r)
		}
		return recs
	}
	removed := func(recs []store.AssetRecord, key assets.Key) []store.AssetRecord {
		for i := range recs {
			if recs[i].Key == key {
				recs[i].RemovedSeq = 99
			}
		}
		return recs
	}
	defs := func(as ...*assets.Asset) *assets.Definitions { return &assets.Definitions{Assets: as} }
	bumped := func(a *assets.Asset) *assets.Asset { a.CodeVersion = "2"; return a }
	type action struct {
		change  store.ChangeKind
		key     assets.Key
		fields  []string
		reindex bool
	}
	all := []string{store.FieldCodeVersion, store.FieldDeps, store.FieldPartitions, store.FieldDefinition}
	cases := []struct {
		name   string
		stored []store.AssetRecord
		defs   *assets.Definitions
		want   []action
	}{
		{"first sync adds all, by key",
			nil,
			defs(built("z/last", daily), built("a/first", nil), built("m/mid", daily, "a/first")),
			[]action{{store.Added, "a/first", all, false}, {store.Added, "m/mid", all, false}, {store.Added, "z/last", all, false}}},
		{"unchanged",
			stored(built("a/a", daily), built("b/b", nil)),
			defs(built("b/b", nil), built("a/a", daily)),
			nil},
		{"code version bumped",
			stored(built("a/a", daily), built("b/b", nil)),
			defs(built("a/a", daily), bumped(built("b/b", nil))),
			[]action{{store.Changed, "b/b", []string{store.FieldCodeVersion}, false}}},
		{"partitions changed",
			stored(built("a/a", daily)),
			defs(built("a/a", earlier)),
			[]action{{store.Changed, "a/a", []string{store.FieldPartitions}, true}}},
		{"dropped",
			stored(built("a/a", daily), built("b/b", nil)),
			defs(built("a/a", daily)),
			[]action{{store.Removed, "b/b", nil, false}}},
		{"already removed stays removed",
			removed(stored(built("a/a", daily), built("b/b", nil)), "b/b"),
			defs(built("a/a", daily)),
			nil},
		{"re-added with the same partitions",
			removed(stored(built("a/a", daily)), "a/a"),
			defs(built("a/a", daily)),
			[]action{{store.Added, "a/a", all, false}}},
		{"re-added with other partitions",
			removed(stored(built("a/a", daily)), "a/a"),
			defs(built("a/a", earlier)),
			[]action{{store.Added, "a/a", all, true}}},
		{"everything at once, by key",
			stored(built("d/drop", nil), built("c/change", daily), built("k/keep", nil)),
			defs(built("k/keep", nil), built("c/change", earlier), built("a/add", nil)),
			[]action{{store.Added, "a/add", all, false}, {store.Changed, "c/change", []string{store.FieldPartitions}, true}, {store.Removed, "d/drop", nil, false}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := store.PlanSync(tc.stored, tc.defs)
			if len(got) != len(tc.want) {
				t.Fatalf("PlanSync: %d actions %v, want %d", len(got), describe(got), len(tc.want))
			}
			for i, w := range tc.want {
				g := got[i]
				if g.Change != w.change || g.Record.Key != w.key || g.Reindex != w.reindex ||
					(w.change != store.Removed && !slices.Equal(g.Fields, w.fields)) {
					t.Errorf("action %d = %s %s fields %q reindex %v; want %s %s fields %q reindex %v",
						i, g.Change, g.Record.Key, g.Fields, g.Reindex, w.change, w.key, w.fields, w.reindex)
				}
				if g.Change == store.Removed {
					var old store.AssetRecord
					for _, r := range tc.stored {
						if r.Key == w.key {
							old = r
						}
					}
					if g.Record.CreatedSeq != old.CreatedSeq || g.Record.Fingerprint != old.Fingerprint {
						t.Errorf("removal of %s carries %+v, want the stored record", w.key, g.Record)
					}
				} else if a := tc.defs.Asset(w.key); g.Record.Fingerprint != store.DefinitionOf(a).Fingerprint {
					t.Errorf("action %d: record of %s is not DefinitionOf the new definition", i, w.key)
				}
			}
		})
	}
}

func describe(actions []store.SyncAction) []string {
	var s []string
	for _, a := range actions {
		s = append(s, string(a.Change)+" "+string(a.Record.Key))
	}
	return s
}

func TestIndexer(t *testing.T) {
	weekly := &assets.PartitionsSpec{Granularity: assets.Weekly, Start: "2026-01-05"}
	cases := []struct {
		name string
		spec *assets.PartitionsSpec
		key  string
		want int // -1: not a partition
	}{
		{"unpartitioned, empty key", nil, "", 0},
		{"unpartitioned, a key", nil, "2026-01-05", -1},
		{"weekly, first Monday", weekly, "2026-01-05", 0},
		{"weekly, third Monday", weekly, "2026-01-19", 2},
		{"weekly, a Tuesday", weekly, "2026-01-06", -1},
		{"weekly, before start", weekly, "2025-12-29", -1},
		{"weekly, empty key", weekly, "", -1},
		{"weekly, garbage", weekly, "soon", -1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			x, err := store.NewIndexer(tc.spec)
			if err != nil {
				t.Fatalf("NewIndexer: %v", err)
			}
			if (x.Partitions() == nil) != (tc.spec == nil) {
				t.Errorf("Partitions() = %v for spec %v", x.Partitions(), tc.spec)
			}
			i, ok := x.Index(tc.key)
			if ok != (tc.want >= 0) || (ok && i != tc.want) {
				t.Errorf("Index(%q) = %d, %v; want %d", tc.key, i, ok, tc.want)
			}
		})
	}
	if _, err := store.NewIndexer(&assets.PartitionsSpec{Granularity: assets.Daily, Start: "2026-01-01", Timezone: "Mars/Olympus"}); err == nil {
		t.Error("NewIndexer(bad timezone): no error")
	}
}

func TestVerifyPartition(t *testing.T) {
	c := &store.Code{Version: "1"}
	ev := func(seq int64, kind store.EventKind, dv string) store.Event {
		e := store.Event{Seq: seq, Kind: kind, DataVersion: dv}
		if kind == store.Materialization {
			e.Code, e.InputSeq = c, seq-1
		}
		return e
	}
	// recorded returns the events as the log holds them (DataChanged set) and the
	// state replaying them gives.
	recorded := func(events ...store.Event) ([]store.Event, *store.PartitionRecord) {
		r := &store.PartitionRecord{Asset: "a/b", Partition: "p"}
		for i := range events {
			r.Apply(&events[i])
		}
		return events, r
	}
	history, state := recorded(ev(1, store.Materialization, "v1"), ev(2, store.Failure, ""), ev(3, store.Materialization, "v1"), ev(4, store.Planned, ""))
	plannedOnly, _ := recorded(ev(5, store.Planned, ""))
	cases := []struct {
		name   string
		events []store.Event
		stored func() *store.PartitionRecord
		say    string // "": consistent
	}{
		{"nothing at all", nil, func() *store.PartitionRecord { return nil }, ""},
		{"only planned events, no row", plannedOnly, func() *store.PartitionRecord { return nil }, ""},
		{"consistent", history, func() *store.PartitionRecord { r := *state; return &r }, ""},
		{"last seq and index not compared", history, func() *store.PartitionRecord { r := *state; r.LastSeq, r.Index = 1, -1; return &r }, ""},
		{"events but no row", history, func() *store.PartitionRecord { return nil }, "no row"},
		{"row but no events", nil, func() *store.PartitionRecord { r := *state; return &r }, "no event"},
		{"row but only planned events", plannedOnly, func() *store.PartitionRecord { r := *state; return &r }, "no event"},
		{"wrong data version", history, func() *store.PartitionRecord { r := *state; r.DataVersion = "v2"; return &r }, "data version"},
		{"wrong failed flag", history, func() *store.PartitionRecord { r := *state; r.Failed = true; return &r }, "failed"},
		{"wrong data_changed in the log", func() []store.Event {
			h := slices.Clone(history)
			h[2].DataChanged = true // v1 again: replay says false
			return h
		}(), func() *store.PartitionRecord { r := *state; return &r }, "data_changed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := store.VerifyPartition("a/b", "p", tc.events, tc.stored())
			if tc.say == "" {
				if len(got) != 0 {
					t.Errorf("VerifyPartition = %v, want consistent", got)
				}
				return
			}
			if len(got) == 0 {
				t.Fatalf("VerifyPartition found nothing, want a problem about %s", tc.say)
			}
			for _, inc := range got {
				if inc.Asset != "a/b" || inc.Partition != "p" {
					t.Errorf("inconsistency names %s %q, want a/b p", inc.Asset, inc.Partition)
				}
			}
			if !strings.Contains(got[0].Problem, tc.say) {
				t.Errorf("VerifyPartition = %v, want a problem about %s", got, tc.say)
			}
		})
	}
	// The caller's events are not modified by the replay.
	before := slices.Clone(history)
	store.VerifyPartition("a/b", "p", history, state)
	if !slices.EqualFunc(before, history, func(a, b store.Event) bool { return a.DataChanged == b.DataChanged && a.Seq == b.Seq }) {
		t.Error("VerifyPartition modified the events it was given")
	}
}
