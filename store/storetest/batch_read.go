package storetest

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"

	"github.com/google/uuid"

	"github.com/freshetdev/freshet/assets"
	"github.com/freshetdev/freshet/store"
)

// RunBatchReads runs the conformance suite of store.BatchReader against the
// stores open returns: each batch read must give, key by key, what the single
// read gives (Partition, RunSteps, Attempts), absent or nil where that finds
// nothing. As for Run, open must return a fresh, empty, migrated store on every
// call and register its cleanup with t; it is called from parallel subtests.
// Every test syncs the queue catalog first (see RunQueue).
func RunBatchReads(t *testing.T, open func(t *testing.T) CoordinationStore) {
	t.Helper()
	runCGroups(t, open, []cgroup{
		{"BatchReads", []ctest{
			{"PartitionRecords", testBatchPartitionRecords},
			{"StepsOfRuns", testBatchStepsOfRuns},
			{"AttemptsOf", testBatchAttemptsOf},
			{"EventPages", testBatchEventPages},
			{"Empty", testBatchEmpty},
		}},
	})
}

// recordString describes every field of a partition record.
func recordString(r *store.PartitionRecord) string {
	if r == nil {
		return "<nil>"
	}
	return fmt.Sprintf("{%s %q index %d success_seq %d materialized %s data_version %q data_changed_seq %d input_seq %d code %s failed %v failed_seq %d last_seq %d}",
		r.Asset, r.Partition, r.Index, r.SuccessSeq, ts(r.MaterializedAt), r.DataVersion, r.DataChangedSeq, r.InputSeq,
		codeString(r.Code), r.Failed, r.FailedSeq, r.LastSeq)
}

// testBatchPartitionRecords: PartitionRecords gives, in input order, what
// Partition gives one by one: the record, or nil where Partition finds none
// (an unknown asset, a partition never recorded, a key that is no partition).
func testBatchPartitionRecords(t *testing.T, f *cfixture) {
	f.append(
		matDV(rawDaily, day(0), "v0"), matDV(rawDaily, day(1), "v1"), matDV(rawDaily, day(2), "v2"),
		failure(rawDaily, day(2), "disk full"), failure(rawDaily, day(3), "never built"),
		obs(srcDaily, day(1), "h1"), mat(summary, ""), failure(weekly, firstWeek, "boom"),
		matDV(rawDaily, day(0), "v0 again"),
	)
	keys := []store.PartitionKey{
		pk(rawDaily, day(0)),           // materialized twice
		pk(rawDaily, day(9)),           // never recorded: nil
		pk("no/such_asset", day(0)),    // unknown asset: nil
		pk(summary, ""),                // unpartitioned, materialized
		pk(rawDaily, day(2)),           // materialized, then failed
		pk(rawDaily, day(3)),           // failed only
		pk(weekly, firstWeek),          // failed only
		pk(srcDaily, day(1)),           // observed source
		pk(rawDaily, day(0)),           // again: each position gets its record
		pk(rawDaily, "garbage"),        // not a partition key: nil
		pk(metrics, day(0)),            // asset without any record: nil
		pk(srcSingle, ""),              // unpartitioned, never observed: nil
		pk(summary, day(0)),            // a key an unpartitioned asset never has: nil
		pk(rawDaily, "2026-01-01\x00"), // a key no database holds: nil
	}
	for i := range 300 { // a larger batch, mostly unrecorded
		keys = append(keys, pk(rawDaily, day(i)))
	}
	got, err := f.c.PartitionRecords(f.ctx, keys)
	if err != nil {
		t.Fatalf("PartitionRecords(%d keys): %v", len(keys), err)
	}
	if len(got) != len(keys) {
		t.Fatalf("PartitionRecords(%d keys) returned %d records", len(keys), len(got))
	}
	found := 0
	for i, k := range keys {
		var want *store.PartitionRecord
		r, err := f.s.Partition(f.ctx, k.Asset, k.Partition)
		switch {
		case err == nil:
			want = r
			found++
		case !errors.Is(err, store.ErrNotFound) && k.Partition != "2026-01-01\x00":
			// (PostgreSQL cannot even look up a key with a NUL byte: Partition fails.)
			t.Fatalf("Partition(%s, %q): %v", k.Asset, k.Partition, err)
		}
		if recordString(got[i]) != recordString(want) {
			t.Errorf("PartitionRecords[%d] (%s %q) =\n  %s\nwant (as Partition)\n  %s", i, k.Asset, k.Partition, recordString(got[i]), recordString(want))
		}
	}
	if found != 11 {
		t.Errorf("test setup: Partition found %d of the keys, want 11 (7 of the first 14, and days 0 to 3 of the 300)", found)
	}
	if got[0] != nil && got[0] == got[8] {
		t.Errorf("PartitionRecords returned one record for two positions: changing one would change the other")
	}
}

// testBatchStepsOfRuns: StepsOfRuns gives each run's steps as RunSteps gives
// them, in plan order with deps and joins; runs unknown (or asked twice) are
// absent (or once).
func testBatchStepsOfRuns(t *testing.T, f *cfixture) {
	ids := sortedIDs(4)
	nr := newRun(ns(rawDaily, days(0, 2)), ns(metrics, days(0, 1)), ns(cleanDaily, days(0, 2), 0), ns(summary, unpart, 0, 1))
	for i := range nr.Steps {
		nr.Steps[i].ID = ids[len(ids)-1-i] // descending: id order is not plan order
	}
	r1 := f.createRun(nr)
	r2 := f.createRun(newRun(ns(rawDaily, days(1, 3)), ns(metrics, days(5, 6)))) // joins r1's first step
	if len(r2.Steps[0].Joined) == 0 {
		t.Fatalf("test setup: the second run's step joined nothing: %s", stepString(r2.Steps[0]))
	}
	// Move some steps on, so that their fields differ.
	f.succeed(f.claimOne("w1"))
	f.claimOne("w2")
	r3 := f.createRun(newRun(ns(metrics, days(9, 10))))
	f.fail(f.claimOne("w3"), "boom")
	ghost := uuid.New()

	ask := []uuid.UUID{r2.ID, ghost, r1.ID, r3.ID, r1.ID}
	got, err := f.c.StepsOfRuns(f.ctx, ask)
	if err != nil {
		t.Fatalf("StepsOfRuns: %v", err)
	}
	for _, id := range []uuid.UUID{r1.ID, r2.ID, r3.ID} {
		want := f.runSteps(id)
		if g, w := stepStrings(got[id]), stepStrings(want); !slices.Equal(g, w) {
			t.Errorf("StepsOfRuns[%s] =\n  %v\nwant (as RunSteps)\n  %v", id, g, w)
		}
	}
	if _, ok := got[ghost]; ok {
		t.Errorf("StepsOfRuns has an entry for an unknown run: %v", got[ghost])
	}
	if len(got) != 3 {
		t.Errorf("StepsOfRuns has %d runs, want 3", len(got))
	}
	// Many runs at once.
	var many []uuid.UUID
	for i := range 30 {
		many = append(many, f.createRun(newRun(ns(metrics, days(20+i, 21+i)))).ID)
	}
	got, err = f.c.StepsOfRuns(f.ctx, append(many, r1.ID))
	if err != nil {
		t.Fatalf("StepsOfRuns(%d runs): %v", len(many)+1, err)
	}
	for _, id := range append(many, r1.ID) {
		if g, w := stepStrings(got[id]), stepStrings(f.runSteps(id)); !slices.Equal(g, w) {
			t.Errorf("StepsOfRuns(%d runs)[%s] =\n  %v\nwant (as RunSteps)\n  %v", len(many)+1, id, g, w)
		}
	}
}

func stepStrings(steps []store.Step) []string {
	out := make([]string, len(steps))
	for i, s := range steps {
		out[i] = stepString(s)
	}
	return out
}

func attemptStrings(as []store.Attempt) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = attemptString(a)
	}
	return out
}

// testBatchAttemptsOf: AttemptsOf gives each step's attempts as Attempts gives
// them, first first; steps without attempts, and unknown ones, are absent.
func testBatchAttemptsOf(t *testing.T, f *cfixture) {
	r := f.createRun(newRun(
		tries(3, ns(rawDaily, days(0, 1))), // retried, then succeeds: 2 attempts
		ns(metrics, days(0, 1)),            // fails for good, exit code 3
		ns(weekly, []string{firstWeek}),    // running
		ns(cleanDaily, days(0, 1), 0),      // not claimed yet (waits for step 0)
	))
	byStep := map[uuid.UUID]store.ClaimedStep{}
	for _, c := range f.claim("w1", 3) {
		byStep[c.ID] = c
	}
	if len(byStep) != 3 {
		t.Fatalf("test setup: claimed %d steps, want 3", len(byStep))
	}
	f.retry(byStep[r.Steps[0].ID], "flaky", 0)
	res := result(byStep[r.Steps[1].ID], store.OutcomeFailed)
	exit := 3
	res.ExitCode, res.Error = &exit, "exit status 3"
	f.finish(res)
	again := f.claimOne("w2")
	if again.ID != r.Steps[0].ID || again.Attempt != 2 {
		t.Fatalf("test setup: claimed step %s attempt %d, want step 0 %s attempt 2", again.ID, again.Attempt, r.Steps[0].ID)
	}
	f.succeed(again)
	ghost := uuid.New()

	ids := []uuid.UUID{r.Steps[3].ID, ghost, r.Steps[0].ID, r.Steps[1].ID, r.Steps[2].ID, r.Steps[0].ID}
	got, err := f.c.AttemptsOf(f.ctx, ids)
	if err != nil {
		t.Fatalf("AttemptsOf: %v", err)
	}
	for i, st := range r.Steps {
		want := f.attempts(st.ID)
		if len(want) == 0 {
			if g, ok := got[st.ID]; ok {
				t.Errorf("AttemptsOf has an entry for step %d, which has no attempts: %v", i, attemptStrings(g))
			}
			continue
		}
		if g, w := attemptStrings(got[st.ID]), attemptStrings(want); !slices.Equal(g, w) {
			t.Errorf("AttemptsOf[step %d] =\n  %v\nwant (as Attempts)\n  %v", i, g, w)
		}
	}
	if _, ok := got[ghost]; ok {
		t.Errorf("AttemptsOf has an entry for an unknown step: %v", got[ghost])
	}
	if len(got) != 3 || len(got[r.Steps[0].ID]) != 2 {
		t.Errorf("AttemptsOf has %d steps (step 0: %d attempts); want 3 steps, step 0 with 2 attempts", len(got), len(got[r.Steps[0].ID]))
	}
}

// testBatchEmpty: nothing asked, nothing read.
func testBatchEmpty(t *testing.T, f *cfixture) {
	if got, err := f.c.PartitionRecords(f.ctx, nil); err != nil || len(got) != 0 {
		t.Errorf("PartitionRecords(nil) = %v, %v; want none", got, err)
	}
	if got, err := f.c.StepsOfRuns(f.ctx, nil); err != nil || len(got) != 0 {
		t.Errorf("StepsOfRuns(nil) = %v, %v; want none", got, err)
	}
	if got, err := f.c.AttemptsOf(f.ctx, []uuid.UUID{}); err != nil || len(got) != 0 {
		t.Errorf("AttemptsOf([]) = %v, %v; want none", got, err)
	}
	if got, err := f.c.PartitionRecords(f.ctx, []store.PartitionKey{{Asset: "no/such_asset"}}); err != nil || len(got) != 1 || got[0] != nil {
		t.Errorf("PartitionRecords(an unknown asset) = %v, %v; want [nil]", got, err)
	}
}

func pk(asset assets.Key, partition string) store.PartitionKey {
	return store.PartitionKey{Asset: asset, Partition: partition}
}

// testBatchEventPages: EventPages gives, in input order, the page Events gives for
// each query: by asset, one partition, several, kinds, a cursor, an unknown
// asset, no filter.
func testBatchEventPages(t *testing.T, f *cfixture) {
	f.append(
		matDV(rawDaily, day(0), "v0"), matDV(rawDaily, day(1), "v1"), matDV(rawDaily, day(2), "v2"),
		failure(rawDaily, day(2), "disk full"), obs(srcDaily, day(1), "h1"), mat(summary, ""),
		matDV(rawDaily, day(0), "v0 again"), matDV(rawDaily, day(1), "v1 again"),
	)
	qs := []store.EventQuery{
		{Asset: rawDaily},
		{Asset: rawDaily, Limit: 2},
		{Asset: rawDaily, Partitions: []string{day(0)}},
		{Asset: rawDaily, Partitions: []string{day(1), day(2)}, Limit: 1},
		{Asset: rawDaily, Kinds: []store.EventKind{store.Failure}},
		{Asset: rawDaily, Kinds: []store.EventKind{store.Materialization, store.Observation}, Limit: 1},
		{Asset: "no/such_asset"},
		{Asset: summary, Partitions: []string{""}},
		{Limit: 3},
		{Asset: rawDaily, Partitions: []string{}},
	}
	first, err := f.c.Events(f.ctx, qs[1])
	if err != nil {
		t.Fatal(err)
	}
	qs = append(qs, store.EventQuery{Asset: rawDaily, Limit: 2, Before: first.Next}) // page 2
	got, err := f.c.EventPages(f.ctx, qs)
	if err != nil {
		t.Fatalf("EventPages: %v", err)
	}
	if len(got) != len(qs) {
		t.Fatalf("EventPages: %d pages for %d queries", len(got), len(qs))
	}
	for i, q := range qs {
		want, err := f.c.Events(f.ctx, q)
		if err != nil {
			t.Fatalf("Events(%+v): %v", q, err)
		}
		if !reflect.DeepEqual(got[i], want) {
			t.Errorf("query %d %+v:\n EventPages %+v\n Events     %+v", i, q, *got[i], *want)
		}
	}
	if n := len(got[0].Events); n != 6 {
		t.Errorf("test setup: %d events of %s, want 6", n, rawDaily)
	}
	if none, err := f.c.EventPages(f.ctx, nil); err != nil || len(none) != 0 {
		t.Errorf("EventPages(nil) = %v, %v; want no pages", none, err)
	}
}
