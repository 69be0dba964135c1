package postgres

import (
	"errors"
	"slices"
	"testing"

	"github.com/freshetdev/freshet/assets"
	"github.com/freshetdev/freshet/store"
)

// A partitions change re-indexes the recorded partitions: keys keep their rows,
// indexes follow the new definition, keys outside it leave the snapshots, and
// incremental readers get the asset whole.
func TestSyncReindexes(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := openStore(t)
	syncDefs(t, s, daily(t, "a", "2024-01-01"), daily(t, "b", "2024-01-01"))
	var events []store.Event
	for i := range 10 {
		events = append(events, materialization("a", i, "v"), materialization("b", i, "v"))
	}
	appendEvents(t, s, events...)
	before := must(s.Watermark(ctx))(t)

	// a now starts two days later; b changes only its code version.
	b := daily(t, "b", "2024-01-01")
	b.CodeVersion = "2"
	res := syncDefs(t, s, daily(t, "a", "2024-01-03"), b)
	if !slices.Equal(res.Changed, []assets.Key{"a", "b"}) || !slices.Equal(res.Reindexed, []assets.Key{"a"}) ||
		res.Seq != before+2 {
		t.Errorf("sync result %+v; want a and b changed, a re-indexed, seq %d", res, before+2)
	}

	for _, c := range []struct {
		partition int
		index     int
	}{{0, -1}, {1, -1}, {2, 0}, {9, 7}} {
		rec := must(s.Partition(ctx, "a", dayKey(c.partition)))(t)
		if rec.Index != c.index {
			t.Errorf("partition %s of a has index %d; want %d", dayKey(c.partition), rec.Index, c.index)
		}
	}
	snap := must(s.ReadState(ctx, nil))(t)
	if a := snap.Assets["a"]; a.Len() != 8 || a.DataChangedSeq[0] == 0 {
		t.Errorf("a's state after re-indexing: %d partitions, first %+v; want 8 from 2024-01-03", a.Len(), a.DataChangedSeq[:1])
	}
	ch := must(s.ReadChanges(ctx, before))(t)
	if _, ok := ch.Reloaded["a"]; !ok || len(ch.Reloaded) != 1 || len(ch.Updated) != 0 {
		t.Errorf("changes after the sync: reloaded %v, updated %v; want a reloaded only", keysOf(ch.Reloaded), keysOf(ch.Updated))
	}

	// The history has both definitions of a, newest first.
	hist := must(s.DefinitionHistory(ctx, "a", 0))(t)
	if len(hist) != 2 || hist[0].Change != store.Changed || !slices.Equal(hist[0].Fields, []string{store.FieldPartitions}) ||
		hist[0].Partitions.Start != "2024-01-03" || hist[1].Change != store.Added {
		t.Errorf("history of a: %+v", hist)
	}
	if _, err := s.DefinitionHistory(ctx, "nope", 0); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("history of an unknown asset: %v; want ErrNotFound", err)
	}

	// Removed, b leaves the snapshots; added back it returns whole.
	res = syncDefs(t, s, daily(t, "a", "2024-01-03"))
	if !slices.Equal(res.Removed, []assets.Key{"b"}) {
		t.Errorf("sync without b: %+v", res)
	}
	if _, ok := must(s.ReadState(ctx, nil))(t).Assets["b"]; ok {
		t.Error("a removed asset is in the state snapshot")
	}
	if _, err := s.Append(ctx, []store.Event{materialization("b", 0, "v")}); err == nil {
		t.Error("append to a removed asset succeeded")
	}
	removedAt := must(s.Watermark(ctx))(t)
	res = syncDefs(t, s, daily(t, "a", "2024-01-03"), b)
	ch = must(s.ReadChanges(ctx, removedAt))(t)
	if st, ok := ch.Reloaded["b"]; !slices.Equal(res.Added, []assets.Key{"b"}) || !ok || st.Len() != 10 {
		t.Errorf("re-added b: sync %+v, reloaded %v", res, keysOf(ch.Reloaded))
	}
	recs := must(s.Assets(ctx))(t)
	if len(recs) != 2 || recs[1].Key != "b" || recs[1].Removed() || recs[1].CreatedSeq != res.Seq {
		t.Errorf("assets after re-adding b: %+v", recs)
	}
	verifyClean(t, s)
}

func keysOf[V any](m map[assets.Key]V) []assets.Key {
	var keys []assets.Key
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
