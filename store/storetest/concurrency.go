package storetest

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/freshetdev/freshet/assets"
	"github.com/freshetdev/freshet/migrations"
	"github.com/freshetdev/freshet/store"
)

// randomEvent returns a random valid event over the standard catalog: repeats,
// failures, planned builds, same and new data versions.
func randomEvent(rng *rand.Rand, days int) store.Event {
	p := day(rng.IntN(days))
	dv := func() string {
		if rng.IntN(2) == 0 {
			return "" // a fresh unique one
		}
		return fmt.Sprintf("dv%d", rng.IntN(3))
	}
	switch rng.IntN(10) {
	case 0, 1, 2:
		return matDV(rawDaily, p, dv())
	case 3:
		return failure(rawDaily, p, "random failure")
	case 4:
		return planned(rawDaily, p)
	case 5:
		return obs(srcDaily, p, fmt.Sprintf("etag%d", rng.IntN(3)))
	case 6:
		return matDV(weekly, day(4+7*rng.IntN(days/7+1)), dv()) // a Monday from 2026-01-05
	case 7:
		return matDV(summary, "", dv())
	case 8:
		return failure(summary, "", "random failure")
	default:
		return obs(srcSingle, "", fmt.Sprintf("r%d", rng.IntN(2)))
	}
}

func testVerifyHealthy(t *testing.T, f *fixture) {
	f.verifyClean() // an empty catalog
	f.sync(catalog())
	f.verifyClean()
	rng := rand.New(rand.NewPCG(7, 11))
	total := 0
	for round := range 40 {
		switch round {
		case 15: // a code version bump
			defs := catalog()
			defs.Assets[1].CodeVersion = "2"
			f.sync(defs)
		case 30: // a re-index of sales/raw
			defs := catalog()
			defs.Assets[1].CodeVersion = "2"
			defs.Assets[1].Partitions = dailyFrom("2025-12-25")
			f.sync(defs)
		}
		batch := make([]store.Event, 1+rng.IntN(10))
		for i := range batch {
			batch[i] = randomEvent(rng, 28)
		}
		f.append(batch...)
		total += len(batch)
	}
	if n := len(f.allEvents(store.EventQuery{Limit: 1000})); n != total {
		t.Errorf("Events: %d events, want the %d appended", n, total)
	}
	f.verifyClean()
}

func testMigrate(t *testing.T, f *fixture) {
	check := func(when string) {
		t.Helper()
		applied, err := f.s.Migrate(f.ctx)
		if err != nil {
			t.Fatalf("%s: Migrate: %v", when, err)
		}
		if len(applied) != 0 {
			t.Errorf("%s: Migrate applied %v on a migrated store, want nothing", when, applied)
		}
		current, pending, err := f.s.SchemaVersion(f.ctx)
		if err != nil {
			t.Fatalf("%s: SchemaVersion: %v", when, err)
		}
		pg, err1 := migrations.Latest(migrations.Postgres)
		lite, err2 := migrations.Latest(migrations.SQLite)
		if err1 != nil || err2 != nil {
			t.Fatalf("migrations.Latest: %v, %v", err1, err2)
		}
		if pending != 0 {
			t.Errorf("%s: SchemaVersion pending = %d, want 0", when, pending)
		}
		// The suite does not know the driver's dialect; both are held to their own latest.
		if current != pg && current != lite {
			t.Errorf("%s: SchemaVersion current = %d, want the latest migration (postgres %d, sqlite %d)", when, current, pg, lite)
		}
	}
	check("fresh store")
	f.sync(catalog())
	e := f.append1(mat(rawDaily, day(0)))
	w := f.watermark()
	check("store with data")
	if got := f.watermark(); got != w {
		t.Errorf("Migrate moved the watermark from %d to %d", w, got)
	}
	if r := f.partition(rawDaily, day(0)); r.SuccessSeq != e.Seq {
		t.Errorf("after Migrate: Partition.SuccessSeq = %d, want %d", r.SuccessSeq, e.Seq)
	}
}

func testConcurrentAppends(t *testing.T, f *fixture) {
	f.sync(catalog())
	const writers, batches = 6, 15
	var (
		mu        sync.Mutex
		eventSeqs []int64
		wg        sync.WaitGroup
	)
	for w := range writers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 99))
			for b := range batches {
				batch := make([]store.Event, 1+rng.IntN(4))
				for i := range batch {
					batch[i] = randomEvent(rng, 10) // few partitions: writers contend on rows
				}
				got, err := f.s.Append(f.ctx, batch)
				if err != nil {
					t.Errorf("writer %d, batch %d: Append: %v", w, b, err)
					return
				}
				for i := range got {
					if i > 0 && got[i].Seq != got[i-1].Seq+1 {
						t.Errorf("writer %d, batch %d: seqs %v not consecutive within the batch", w, b, seqsOf(got))
						break
					}
				}
				mu.Lock()
				eventSeqs = append(eventSeqs, seqsOf(got)...)
				mu.Unlock()
			}
		})
	}
	// Definition changes take seqs from the same clock, concurrently.
	wg.Go(func() {
		for i := range 6 {
			defs := catalog()
			defs.Assets[1].CodeVersion = fmt.Sprint(2 + i)
			if _, err := f.s.SyncDefinitions(f.ctx, defs); err != nil {
				t.Errorf("concurrent SyncDefinitions %d: %v", i, err)
				return
			}
		}
	})
	wg.Wait()
	if t.Failed() {
		return
	}

	w := f.watermark()
	owner := make(map[int64]string)
	claim := func(seq int64, what string) {
		if prev, dup := owner[seq]; dup {
			t.Errorf("seq %d given to both %s and %s", seq, prev, what)
		}
		owner[seq] = what
	}
	for _, s := range eventSeqs {
		claim(s, "an event")
	}
	for _, k := range keysOf(f.assets()) {
		for _, c := range f.history(k, 0) {
			claim(c.Seq, fmt.Sprintf("a definition change of %s", k))
		}
	}
	var missing []int64
	for s := int64(1); s <= w; s++ {
		if _, ok := owner[s]; !ok {
			missing = append(missing, s)
		}
	}
	if len(missing) > 0 {
		t.Errorf("seqs %v of 1..%d (the watermark) belong to no event and no definition change", missing, w)
	}
	for s := range owner {
		if s < 1 || s > w {
			t.Errorf("seq %d is outside 1..%d (the watermark)", s, w)
		}
	}
	logged := seqsOf(f.allEvents(store.EventQuery{Limit: 1000}))
	slices.Sort(logged)
	slices.Sort(eventSeqs)
	if !slices.Equal(logged, eventSeqs) {
		t.Errorf("the event log holds %d events, Append returned %d (logged %v, returned %v)", len(logged), len(eventSeqs), logged, eventSeqs)
	}
	f.verifyClean()
}

func testChangesWhileAppending(t *testing.T, f *fixture) {
	cases := []struct {
		name    string
		reindex bool // a concurrent sync moves the start of sales/raw earlier, day by day
	}{
		{"appends", false},
		{"appends and re-indexing", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			changesWhileAppending(t, f.fresh(t), tc.reindex)
		})
	}
}

// changesWhileAppending keeps a copy of the state current with ReadChanges, from a
// ReadState taken while writers append, and checks it ends equal to a fresh
// ReadState: a snapshot whose Seq does not match its rows, or a ReadChanges that
// misses a row committed late, leaves a difference, as every partition of
// sales/raw is written once.
func changesWhileAppending(t *testing.T, f *fixture, reindex bool) {
	f.sync(catalog())
	w0 := f.watermark()

	const writers, batches = 4, 30
	done := make(chan struct{})
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for b := range batches {
				n := 1 + rng.IntN(3)
				batch := make([]store.Event, 0, n+1)
				for j := range n {
					p := day(w*200 + b*3 + j)
					if rng.IntN(4) == 0 {
						batch = append(batch, failure(rawDaily, p, "x"))
					} else {
						batch = append(batch, mat(rawDaily, p))
					}
				}
				if w == 0 {
					batch = append(batch, mat(summary, ""))
				}
				if _, err := f.s.Append(f.ctx, batch); err != nil {
					t.Errorf("writer %d, batch %d: Append: %v", w, b, err)
					return
				}
			}
		})
	}
	if reindex {
		wg.Go(func() {
			for i := range 5 {
				defs := catalog()
				defs.Assets[1].Partitions = dailyFrom(day(-1 - i))
				if _, err := f.s.SyncDefinitions(f.ctx, defs); err != nil {
					t.Errorf("concurrent SyncDefinitions %d: %v", i, err)
					return
				}
			}
		})
	}
	go func() { wg.Wait(); close(done) }()
	defer func() { <-done }()

	// Start reading once the writers are under way.
	for {
		w, err := f.s.Watermark(f.ctx)
		if err != nil {
			t.Errorf("Watermark: %v", err)
			return
		}
		select {
		case <-done:
		default:
			if w < w0+20 {
				continue
			}
		}
		break
	}
	snap, err := f.s.ReadState(f.ctx, nil)
	if err != nil {
		t.Errorf("ReadState: %v", err)
		return
	}
	kept := map[assets.Key]*store.AssetState{}
	for k, st := range snap.Assets {
		kept[k] = cloneState(st)
	}
	since := snap.Seq
	read := func() bool {
		ch, err := f.s.ReadChanges(f.ctx, since)
		if err != nil {
			t.Errorf("ReadChanges(%d): %v", since, err)
			return false
		}
		if ch.Since != since || ch.Seq < since {
			t.Errorf("ReadChanges(%d): Since %d, Seq %d", since, ch.Since, ch.Seq)
			return false
		}
		for k, u := range ch.Updated {
			checkUpdateShape(t, "ReadChanges Updated "+string(k), u)
		}
		applyChanges(kept, ch)
		since = ch.Seq
		return true
	}
	reads := 0
	for running := true; running; reads++ {
		select {
		case <-done:
			running = false
		default:
		}
		if !read() {
			return
		}
	}
	read() // everything after the writers finished
	if t.Failed() {
		return
	}
	fresh := f.state()
	if fresh.Seq != since {
		t.Errorf("ReadState.Seq = %d, but the last ReadChanges reached %d with nothing appended since", fresh.Seq, since)
	}
	checkSameState(t, kept, fresh)
	t.Logf("started at seq %d (watermark before the writers: %d); %d ReadChanges calls", snap.Seq, w0, reads)
}

// testConcurrentSyncs syncs definitions from several goroutines at once, as
// servers and workers starting together do: the same definitions are added once,
// and competing changes leave each asset's record equal to its newest history entry.
func testConcurrentSyncs(t *testing.T, f *fixture) {
	const syncers = 4
	var wg sync.WaitGroup
	results := make([]*store.SyncResult, syncers)
	for i := range syncers {
		wg.Go(func() {
			res, err := f.s.SyncDefinitions(f.ctx, catalog())
			if err != nil {
				t.Errorf("syncer %d: SyncDefinitions of the same definitions: %v", i, err)
				return
			}
			results[i] = res
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	defs := catalog()
	added := map[assets.Key]int{}
	for _, r := range results {
		for _, k := range r.Added {
			added[k]++
		}
		if len(r.Changed) > 0 || len(r.Removed) > 0 {
			t.Errorf("a concurrent sync of the same definitions changed %v, removed %v; want only additions", r.Changed, r.Removed)
		}
	}
	for _, a := range defs.Assets {
		if added[a.Key] != 1 {
			t.Errorf("asset %s added by %d of %d concurrent syncs, want exactly 1", a.Key, added[a.Key], syncers)
		}
		if h := f.history(a.Key, 0); len(h) != 1 {
			t.Errorf("DefinitionHistory(%s) = %s, want one addition", a.Key, historyString(h))
		}
	}

	// Competing changes: the record ends as the newest history entry says.
	for i := range syncers {
		wg.Go(func() {
			for j := range 3 {
				d := catalog()
				d.Assets[1].CodeVersion = fmt.Sprintf("s%d-%d", i, j)
				d.Assets[2].Description = fmt.Sprintf("by syncer %d", i)
				if _, err := f.s.SyncDefinitions(f.ctx, d); err != nil {
					t.Errorf("syncer %d: SyncDefinitions: %v", i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	recs := f.assets()
	for _, a := range defs.Assets {
		h := f.history(a.Key, 0)
		rec := recs[a.Key]
		if len(h) == 0 {
			continue
		}
		if rec.UpdatedSeq != h[0].Seq || rec.CodeVersion != h[0].CodeVersion || !jsonEqual(rec.Definition, h[0].Definition) {
			t.Errorf("asset %s: record (updated seq %d, code version %q) is not its newest history entry (seq %d, code version %q)",
				a.Key, rec.UpdatedSeq, rec.CodeVersion, h[0].Seq, h[0].CodeVersion)
		}
	}
	if w := f.watermark(); w < int64(len(defs.Assets)) {
		t.Errorf("Watermark = %d after the syncs", w)
	}
}
