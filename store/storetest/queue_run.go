package storetest

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/freshetdev/freshet/assets"
	"github.com/freshetdev/freshet/store"
)

// ---- CreateRun ----------------------------------------------------------------

func testCreateRunStatuses(t *testing.T, f *qfixture) {
	parent := f.createRun(newRun(ns(metrics, days(20, 21))))
	runID, s0 := uuid.New(), uuid.New()
	nr := store.NewRun{
		ID: runID, Trigger: store.TriggerSchedule, Selection: "sales/*", From: day(0), To: day(1), Force: true, MaxParallel: 3,
		ScheduleName: "nightly", ParentRunID: parent.ID, PlannedSeq: f.watermark(),
		Steps: []store.NewStep{
			{ID: s0, Asset: rawDaily, Partitions: days(0, 2), MaxAttempts: 3},
			{Asset: cleanDaily, Partitions: days(0, 2), MaxAttempts: 1, Deps: []int{0}},
			{Asset: summary, Partitions: unpart, MaxAttempts: 2, Deps: []int{0}},
			{Asset: metrics, Partitions: days(0, 1), MaxAttempts: 1},
			{Asset: weekly, Partitions: []string{firstWeek}, MaxAttempts: 1, Deps: []int{0, 1}},
		},
	}
	r := f.createRun(nr)

	if r.Status != store.RunQueued || r.Trigger != nr.Trigger || r.Selection != nr.Selection || r.From != nr.From || r.To != nr.To ||
		r.Force != nr.Force || r.MaxParallel != nr.MaxParallel || r.BackfillID != uuid.Nil || r.ScheduleName != nr.ScheduleName ||
		r.ParentRunID != nr.ParentRunID || r.PlannedSeq != nr.PlannedSeq {
		t.Errorf("CreateRun returned run %s; want QUEUED with the fields of %+v", runRecordString(*r), nr)
	}
	if r.CreatedAt.IsZero() || !r.StartedAt.IsZero() || !r.FinishedAt.IsZero() || !r.CanceledAt.IsZero() {
		t.Errorf("CreateRun: run times created %s started %s finished %s canceled %s; want only created set",
			ts(r.CreatedAt), ts(r.StartedAt), ts(r.FinishedAt), ts(r.CanceledAt))
	}
	if r.CreatedAt.Location() != time.UTC || !r.CreatedAt.Equal(r.CreatedAt.Truncate(time.Microsecond)) {
		t.Errorf("CreateRun: CreatedAt %s (%s); want UTC, microseconds", r.CreatedAt.Format(time.RFC3339Nano), r.CreatedAt.Location())
	}

	wantStatus := []store.StepStatus{store.StepReady, store.StepPending, store.StepPending, store.StepReady, store.StepPending}
	ids := map[uuid.UUID]bool{}
	for i, s := range r.Steps {
		if s.ID == uuid.Nil || ids[s.ID] {
			t.Errorf("CreateRun: step %d has id %s (nil or repeated)", i, s.ID)
		}
		ids[s.ID] = true
		var wantDeps []uuid.UUID
		for _, d := range nr.Steps[i].Deps {
			wantDeps = append(wantDeps, r.Steps[d].ID)
		}
		if s.Status != wantStatus[i] || s.MaxAttempts != nr.Steps[i].MaxAttempts || s.Attempt != 0 || !sameIDs(s.Deps, wantDeps) ||
			len(s.Joined) != 0 || s.LeaseOwner != "" || !s.LeaseExpiresAt.IsZero() || !s.NotBefore.IsZero() || s.CancelRequested ||
			s.CreatedAt.IsZero() || !s.StartedAt.IsZero() || !s.FinishedAt.IsZero() || s.Error != "" {
			t.Errorf("CreateRun: step %d is %s; want %s, max attempts %d, attempt 0, deps %s, no join, no lease, created, not started",
				i, stepString(s), wantStatus[i], nr.Steps[i].MaxAttempts, idsString(wantDeps))
		}
		if (s.Status == store.StepReady) == s.ReadyAt.IsZero() {
			t.Errorf("CreateRun: step %d is %s with ReadyAt %s; want ReadyAt set exactly when READY", i, s.Status, ts(s.ReadyAt))
		}
	}
	if r.Steps[0].ID != s0 {
		t.Errorf("CreateRun: step 0 got id %s, want the one given, %s", r.Steps[0].ID, s0)
	}

	// The steps read back as returned.
	read := f.runSteps(r.ID)
	if len(read) != len(r.Steps) {
		t.Fatalf("RunSteps: %d steps, want %d", len(read), len(r.Steps))
	}
	for i := range read {
		if got, want := stepString(read[i]), stepString(r.Steps[i]); got != want {
			t.Errorf("RunSteps: step %d\n got %s\nwant %s (as CreateRun returned it)", i, got, want)
		}
		if got, want := stepString(*f.getStep(r.Steps[i].ID)), stepString(r.Steps[i]); got != want {
			t.Errorf("GetStep(step %d)\n got %s\nwant %s (as CreateRun returned it)", i, got, want)
		}
	}
	g := f.getRun(r.ID)
	gs, rs := *g, *r
	gs.Counts, gs.Partitions, rs.Counts, rs.Partitions = nil, nil, nil, nil
	if runRecordString(gs) != runRecordString(rs) {
		t.Errorf("GetRun\n got %s\nwant %s (as CreateRun returned it)", runRecordString(gs), runRecordString(rs))
	}
	checkCounts(t, "GetRun.Counts", g.Counts, map[store.StepStatus]int{store.StepReady: 2, store.StepPending: 3})
	checkCounts(t, "GetRun.Partitions", g.Partitions, map[store.StepStatus]int{store.StepReady: 3, store.StepPending: 4})
	if p := f.getRun(parent.ID); p.Status != store.RunQueued {
		t.Errorf("the parent run is %s, want QUEUED (untouched)", p.Status)
	}
}

// testCreateRunValidation: every invalid run is refused with an error naming the
// step (index, asset, partition) and nothing is written.
func testCreateRunValidation(t *testing.T, f *qfixture) {
	// A removed asset: defined, then left out.
	defs := queueCatalog()
	defs.Assets = append(defs.Assets, computed(goneAsset, dailyFrom("2026-01-01")))
	f.sync(defs)
	if res := f.sync(queueCatalog()); !slices.Contains(res.Removed, goneAsset) {
		t.Fatalf("test setup: resync did not remove %s: %+v", goneAsset, res)
	}

	good := func() []store.NewStep {
		return []store.NewStep{ns(rawDaily, days(0, 2)), ns(metrics, days(0, 1), 0)}
	}
	with := func(bad ...store.NewStep) []store.NewStep { return append(good(), bad...) }
	cases := []struct {
		name      string
		steps     []store.NewStep
		index     int // of the bad step
		asset     assets.Key
		partition string // named in the error, when one is at fault
	}{
		{"unknown asset", with(ns("nope/never", days(0, 1))), 2, "nope/never", ""},
		{"removed asset", with(ns(goneAsset, days(0, 1))), 2, goneAsset, ""},
		{"source asset", with(ns(srcDaily, days(0, 1))), 2, srcDaily, ""},
		{"unpartitioned source asset", with(ns(srcSingle, unpart)), 2, srcSingle, ""},
		{"nil partitions", with(ns(cleanDaily, nil, 0)), 2, cleanDaily, ""},
		{"empty partitions", with(ns(summary, []string{})), 2, summary, ""},
		{"dep on itself", with(ns(cleanDaily, days(0, 1), 2)), 2, cleanDaily, ""},
		{"dep on a later step", with(ns(cleanDaily, days(0, 1), 3), ns(weekly, []string{firstWeek})), 2, cleanDaily, ""},
		{"negative dep", with(ns(cleanDaily, days(0, 1), -1)), 2, cleanDaily, ""},
		{"zero max attempts", with(tries(0, ns(cleanDaily, days(0, 1)))), 2, cleanDaily, ""},
		{"negative max attempts", with(tries(-1, ns(cleanDaily, days(0, 1)))), 2, cleanDaily, ""},
		{"partition twice in the run", with(ns(rawDaily, days(1, 3))), 2, rawDaily, day(1)},
		{"partition twice in a step", with(ns(cleanDaily, []string{day(4), day(4)})), 2, cleanDaily, day(4)},
		// Partition keys: partitions of the asset under its synced definition,
		// consecutive in index order; [""] exactly for an unpartitioned asset.
		{"key before the first partition", with(ns(cleanDaily, []string{"2025-12-31"})), 2, cleanDaily, "2025-12-31"},
		{"key not a date", with(ns(cleanDaily, []string{"yesterday"})), 2, cleanDaily, "yesterday"},
		{"key not canonical", with(ns(cleanDaily, []string{"2026-1-05"})), 2, cleanDaily, "2026-1-05"},
		{"hourly key of a daily asset", with(ns(cleanDaily, []string{"2026-01-05T00:00"})), 2, cleanDaily, "2026-01-05T00:00"},
		{"key not on a window of the asset", with(ns(weekly, []string{"2026-01-06"})), 2, weekly, "2026-01-06"},
		{"bad key after good ones", with(ns(cleanDaily, []string{day(3), day(4), "2026-02-30"})), 2, cleanDaily, "2026-02-30"},
		{"empty key of a partitioned asset", with(ns(cleanDaily, unpart)), 2, cleanDaily, ""},
		{"empty key among others", with(ns(cleanDaily, []string{day(3), ""})), 2, cleanDaily, ""},
		{"gap between keys", with(ns(cleanDaily, []string{day(3), day(5)})), 2, cleanDaily, day(5)},
		{"keys out of order", with(ns(cleanDaily, []string{day(4), day(3)})), 2, cleanDaily, day(3)},
		{"weekly keys a week apart skipped", with(ns(weekly, []string{firstWeek, "2026-01-19"})), 2, weekly, "2026-01-19"},
		{"key of an unpartitioned asset", with(ns(summary, []string{day(0)})), 2, summary, day(0)},
		{"unpartitioned asset, empty key twice", with(ns(summary, []string{"", ""})), 2, summary, ""},
		{"bad key in the first step", []store.NewStep{ns(rawDaily, []string{day(0), "2026-01-03"}), ns(metrics, days(0, 1), 0)}, 0, rawDaily, "2026-01-03"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := f.on(t)
			runID, stepID := uuid.New(), uuid.New()
			nr := newRun(tc.steps...)
			nr.ID = runID
			nr.Steps[0].ID = stepID
			before := f.snapshotAll()
			r, err := f.q.CreateRun(f.ctx, nr)
			if err == nil {
				t.Fatalf("CreateRun(%s) = run %v, want an error", runString(nr), r)
			}
			msg := err.Error()
			if !strings.Contains(msg, string(tc.asset)) {
				t.Errorf("CreateRun: error %q does not name the asset %s", msg, tc.asset)
			}
			if tc.partition != "" && !strings.Contains(msg, tc.partition) {
				t.Errorf("CreateRun: error %q does not name the partition %s", msg, tc.partition)
			}
			// The step's index, counted from 0 or from 1.
			re := regexp.MustCompile(fmt.Sprintf(`(?i)step\D{0,4}(%d|%d)\b`, tc.index, tc.index+1))
			if !re.MatchString(msg) {
				t.Errorf("CreateRun: error %q does not name the step by its index (%d, or %d counting from 1)", msg, tc.index, tc.index+1)
			}
			if _, err := f.q.GetRun(f.ctx, runID); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("GetRun of the refused run: error %v, want store.ErrNotFound", err)
			}
			if _, err := f.q.GetStep(f.ctx, stepID); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("GetStep of a step of the refused run: error %v, want store.ErrNotFound", err)
			}
			f.checkUnchanged("refused CreateRun", before)
		})
	}
	page, err := f.q.ListRuns(f.ctx, store.RunQuery{})
	if err != nil {
		t.Fatalf("ListRuns: %v", err)
	}
	if len(page.Runs) != 0 {
		t.Errorf("ListRuns after refused runs: %d runs, want none", len(page.Runs))
	}
	// No refused run left a partition held: a valid run over them all joins nothing.
	r := f.createRun(newRun(ns(rawDaily, days(0, 3)), ns(metrics, days(0, 1), 0), ns(cleanDaily, days(0, 5), 0), ns(summary, unpart), ns(weekly, []string{firstWeek})))
	for i, s := range r.Steps {
		if len(s.Joined) != 0 {
			t.Errorf("a valid run after the refused ones: step %d (%s) joined %v; a refused run must hold no partition", i, s.Asset, s.Joined)
		}
	}
	// Unpartitioned assets take [""].
	if s := r.Steps[3]; s.Status != store.StepReady || !slices.Equal(s.Partitions, unpart) {
		t.Errorf("step of unpartitioned %s: %s, want READY over [\"\"]", summary, stepString(s))
	}
}

// ---- no duplicates: joins -----------------------------------------------------

// testJoinHolderSucceeds: a step over partitions another run's step holds joins
// it and holds none of its partitions, not even the free ones (a step holds all
// its partitions or none); it becomes READY when the holder succeeds, takes all
// its partitions when claimed, or, when another step took one meanwhile, joins
// that step too and waits again.
func testJoinHolderSucceeds(t *testing.T, f *qfixture) {
	a := f.createRun(newRun(ns(rawDaily, days(0, 2))))                                // a0 holds d0, d1
	b := f.createRun(newRun(ns(rawDaily, days(1, 3)), ns(cleanDaily, days(1, 2), 0))) // b0 joins a0 (d1), holds nothing
	a0, b0, b1 := a.Steps[0], b.Steps[0], b.Steps[1]
	if b0.Status != store.StepPending || !sameIDs(b0.Joined, []uuid.UUID{a0.ID}) || len(b0.Deps) != 0 {
		t.Errorf("step over %s %q of a second run: %s; want PENDING, joined to %s, no run deps", rawDaily, b0.Partitions, stepString(b0), a0.ID)
	}
	if b1.Status != store.StepPending || !sameIDs(b1.Deps, []uuid.UUID{b0.ID}) || len(b1.Joined) != 0 {
		t.Errorf("its dependent: %s; want PENDING on %s, no join", stepString(b1), b0.ID)
	}
	if got := f.runSteps(b.ID); len(got) == 2 && stepString(got[0]) != stepString(b0) {
		t.Errorf("RunSteps: joined step\n got %s\nwant %s (Joined filled)", stepString(got[0]), stepString(b0))
	}
	// d2 is free: the joiner did not take it.
	c := f.checkJoins("d2, which the joiner does not hold", rawDaily, days(2, 3))
	d := f.checkJoins("d0, held by the first run", rawDaily, days(0, 1), a0.ID)
	c0, d0 := c.Steps[0], d.Steps[0]

	cs := f.claim("w1", 10)
	if !sameIDs(claimIDs(cs), []uuid.UUID{a0.ID, c0.ID}) {
		t.Fatalf("ClaimSteps claimed %v, want the holders %s (the joiners wait)", claimIDs(cs), idsString([]uuid.UUID{a0.ID, c0.ID}))
	}
	res := f.succeed(byID(t, cs, a0.ID))
	if !sameIDs(res.Ready, []uuid.UUID{b0.ID, d0.ID}) {
		t.Errorf("FinishStep(holder succeeded).Ready = %v, want its joiners %s", idsString(res.Ready), idsString([]uuid.UUID{b0.ID, d0.ID}))
	}
	f.wantStep("joiner after the holder succeeded", b0.ID, store.StepReady)
	f.wantStep("joiner after the holder succeeded", d0.ID, store.StepReady)

	// Claimed, b0 finds d2 taken by c0: it takes neither d1 nor d2, joins c0 and
	// waits; d0 is free for d0's joiner.
	cs2 := f.claim("w1", 10)
	if !sameIDs(claimIDs(cs2), []uuid.UUID{d0.ID}) {
		t.Fatalf("ClaimSteps claimed %v, want only %s (%s must join %s, which holds d2)", claimIDs(cs2), d0.ID, b0.ID, c0.ID)
	}
	s := f.wantStep("joiner whose partition another step took", b0.ID, store.StepPending)
	if !sameIDs(s.Joined, []uuid.UUID{a0.ID, c0.ID}) || s.Attempt != 0 {
		t.Errorf("its Joined = %v, attempt %d; want %s, 0", s.Joined, s.Attempt, idsString([]uuid.UUID{a0.ID, c0.ID}))
	}
	w := f.checkJoins("d1, which the waiting joiner does not hold", rawDaily, days(1, 2)) // w0 holds d1 now
	res = f.succeed(byID(t, cs, c0.ID))
	if !sameIDs(res.Ready, []uuid.UUID{b0.ID}) {
		t.Errorf("FinishStep(second holder succeeded).Ready = %v, want the joiner %s", idsString(res.Ready), b0.ID)
	}
	f.succeed(byID(t, cs2, d0.ID))
	f.drain("w2")
	for _, r := range []*store.Run{a, b, c, d, w} {
		f.wantRun("after every step ran", r.ID, store.RunSucceeded)
	}
	if s := f.getStep(b0.ID); !sameIDs(s.Joined, []uuid.UUID{a0.ID, c0.ID, w.Steps[0].ID}) {
		t.Errorf("the joiner's Joined = %v at the end, want %s", s.Joined, idsString([]uuid.UUID{a0.ID, c0.ID, w.Steps[0].ID}))
	}
	f.checkMaterialized("joins", a.ID, map[assets.Key][]string{rawDaily: days(0, 2)})
	f.checkMaterialized("joins", b.ID, map[assets.Key][]string{rawDaily: days(1, 3), cleanDaily: days(1, 2)})
	f.checkMaterialized("joins", c.ID, map[assets.Key][]string{rawDaily: days(2, 3)})
	f.checkMaterialized("joins", d.ID, map[assets.Key][]string{rawDaily: days(0, 1)})
	if got := f.attempts(b0.ID); len(got) != 1 {
		t.Errorf("the joiner has %d attempts, want 1 (the claim that joined is no attempt)", len(got))
	}

	// Once claimed, the joiner holds all its partitions: a new run over any joins it.
	e := f.createRun(newRun(ns(metrics, days(0, 1)))) // e0 holds d0
	g := f.createRun(newRun(ns(metrics, days(0, 2)))) // g0 joins e0, holds nothing
	f.succeed(f.claimOne("w1"))                       // e0
	g0 := f.claimOne("w1")                            // g0 takes d0 and d1
	if g0.ID != g.Steps[0].ID {
		t.Fatalf("claimed %s, want the joiner %s", g0.ID, g.Steps[0].ID)
	}
	h := f.checkJoins("d1 once its joiner is claimed", metrics, days(1, 2), g0.ID)
	k := f.checkJoins("d0 once its joiner is claimed", metrics, days(0, 1), g0.ID)
	if res := f.succeed(g0); !sameIDs(res.Ready, []uuid.UUID{h.Steps[0].ID, k.Steps[0].ID}) {
		t.Errorf("FinishStep(claimed joiner succeeded).Ready = %v, want its joiners %s", idsString(res.Ready), idsString([]uuid.UUID{h.Steps[0].ID, k.Steps[0].ID}))
	}
	f.drain("w2")
	for _, r := range []*store.Run{e, g, h, k} {
		f.wantRun("after every step ran", r.ID, store.RunSucceeded)
	}
	f.verifyClean()
}

// testJoinHoldsNothingWhileWaiting: a step that overlaps another run's step in
// part holds none of its partitions while it waits, at creation and after a claim
// that made it join: a new run over its free partitions does not join it, and
// everything still ends.
func testJoinHoldsNothingWhileWaiting(t *testing.T, f *qfixture) {
	a := f.createRun(newRun(ns(rawDaily, days(0, 1)))) // a0 holds d0
	b := f.createRun(newRun(ns(rawDaily, days(0, 2)))) // b0 joins a0, holds nothing
	a0, b0 := a.Steps[0], b.Steps[0]
	if b0.Status != store.StepPending || !sameIDs(b0.Joined, []uuid.UUID{a0.ID}) {
		t.Fatalf("test setup: %s; want PENDING, joined to %s", stepString(b0), a0.ID)
	}
	// At creation: d1, which only the waiting step wants, is free.
	c := f.checkJoins("d1, the free partition of a step waiting on a join", rawDaily, days(1, 2))
	c0 := c.Steps[0]
	cs := f.claim("w1", 10)
	if !sameIDs(claimIDs(cs), []uuid.UUID{a0.ID, c0.ID}) {
		t.Fatalf("claimed %s, want the holders %s", idsString(claimIDs(cs)), idsString([]uuid.UUID{a0.ID, c0.ID}))
	}
	f.succeed(byID(t, cs, a0.ID))
	f.wantStep("joiner whose holder succeeded", b0.ID, store.StepReady)

	// At claim: d0 is free but d1 is held by c0, so b0 takes neither and joins c0.
	if more := f.claim("w1", 10); len(more) != 0 {
		t.Fatalf("claimed %s, want none: %s must join %s, which holds d1", idsString(claimIDs(more)), b0.ID, c0.ID)
	}
	s := f.wantStep("joiner of a running step", b0.ID, store.StepPending)
	if !sameIDs(s.Joined, []uuid.UUID{a0.ID, c0.ID}) {
		t.Errorf("its Joined = %v, want %s", s.Joined, idsString([]uuid.UUID{a0.ID, c0.ID}))
	}
	d := f.checkJoins("d0, the free partition of a step that joined at its claim", rawDaily, days(0, 1))
	d0 := d.Steps[0]

	// c0 ends: b0 is READY, but d0's step (READY, holding d0) is in its way.
	if res := f.succeed(byID(t, cs, c0.ID)); !sameIDs(res.Ready, []uuid.UUID{b0.ID}) {
		t.Errorf("FinishStep(holder of d1).Ready = %v, want the joiner %s", idsString(res.Ready), b0.ID)
	}
	more := f.claim("w1", 10)
	if !sameIDs(claimIDs(more), []uuid.UUID{d0.ID}) {
		t.Fatalf("claimed %s, want only %s (%s must join it)", idsString(claimIDs(more)), d0.ID, b0.ID)
	}
	if s := f.wantStep("joiner of a third step", b0.ID, store.StepPending); !sameIDs(s.Joined, []uuid.UUID{a0.ID, c0.ID, d0.ID}) {
		t.Errorf("its Joined = %v, want %s", s.Joined, idsString([]uuid.UUID{a0.ID, c0.ID, d0.ID}))
	}
	f.succeed(more[0])
	f.drain("w2")
	for _, r := range []*store.Run{a, b, c, d} {
		f.wantRun("end", r.ID, store.RunSucceeded)
	}
	f.checkMaterialized("joiner", b.ID, map[assets.Key][]string{rawDaily: days(0, 2)})
	if got := f.attempts(b0.ID); len(got) != 1 {
		t.Errorf("the joiner has %d attempts, want 1", len(got))
	}
	f.verifyClean()
}

// testJoinCrossRunNoDeadlock: two batch steps of different runs over the same two
// days, where the first, X, joined a third run's step holding one of them when it
// was created, and the second, H, was created once that step had ended. Were X
// to keep the day it could take (day 19) while it waited for the other (day 20),
// H would join X for day 19 and take day 20, and X, claimed, would join H: both
// would wait forever. X holds nothing while it waits, so H takes both days, and
// a loop of claims and finishes ends every run.
func testJoinCrossRunNoDeadlock(t *testing.T, f *qfixture) {
	ids := sortedIDs(3)
	third := f.createRun(withID(ids[0], newRun(ns(rawDaily, days(20, 22))))) // holds days 20 and 21
	x := f.createRun(withID(ids[1], newRun(ns(rawDaily, days(19, 21)))))     // days 19 and 20
	x0 := x.Steps[0]
	if x0.Status != store.StepPending || !sameIDs(x0.Joined, []uuid.UUID{third.Steps[0].ID}) {
		t.Fatalf("X: %s; want PENDING, joined to %s (day 20)", stepString(x0), third.Steps[0].ID)
	}
	if fr := f.succeed(f.claimOne("w1")); !sameIDs(fr.Ready, []uuid.UUID{x0.ID}) {
		t.Fatalf("FinishStep(holder of day 20).Ready = %v, want X %s", fr.Ready, x0.ID)
	}
	h := f.createRun(withID(ids[2], newRun(ns(rawDaily, days(19, 21))))) // days 19 and 20 again
	h0 := h.Steps[0]
	if h0.Status != store.StepReady || len(h0.Joined) != 0 {
		t.Errorf("H, created while X waits to be claimed: %s; want READY, joined to nothing (X holds no partition)", stepString(h0))
	}

	// Work it to the end, as workers do.
	for round := 0; ; round++ {
		if round > 100 {
			t.Fatalf("claims and finishes go on after %d rounds", round)
		}
		cs := f.claim("w1", 10)
		if len(cs) == 0 {
			break
		}
		for _, c := range cs {
			f.succeed(c)
		}
	}
	for _, r := range []*store.Run{third, x, h} {
		f.wantRun("after claiming and finishing until nothing was left", r.ID, store.RunSucceeded)
	}
	f.checkMaterialized("X", x.ID, map[assets.Key][]string{rawDaily: days(19, 21)})
	f.checkMaterialized("H", h.ID, map[assets.Key][]string{rawDaily: days(19, 21)})
	if s := f.getStep(x0.ID); !containsID(s.Joined, h0.ID) {
		t.Errorf("X's Joined = %v; want it to include H %s (H took both days first)", s.Joined, h0.ID)
	}
	f.verifyClean()
}

// checkMaterialized checks that the log holds exactly one materialization per
// (asset, partition) of want for run, each linked to a step of the run.
func (f *qfixture) checkMaterialized(what string, run uuid.UUID, want map[assets.Key][]string) {
	f.t.Helper()
	steps := map[uuid.UUID]bool{}
	for _, s := range f.runSteps(run) {
		steps[s.ID] = true
	}
	got := map[assets.Key][]string{}
	for _, e := range f.runEvents(run, store.Materialization) {
		got[e.Asset] = append(got[e.Asset], e.Partition)
		if !steps[e.StepID] {
			f.t.Errorf("%s: materialization %d of run %s names step %s, not a step of the run", what, e.Seq, run, e.StepID)
		}
	}
	for k := range got {
		slices.Sort(got[k])
	}
	for k, ps := range want {
		ps = slices.Clone(ps)
		slices.Sort(ps)
		if !slices.Equal(got[k], ps) {
			f.t.Errorf("%s: run %s materialized %s %q, want %q once each", what, run, k, got[k], ps)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			f.t.Errorf("%s: run %s materialized %s %q, want nothing of it", what, run, k, got[k])
		}
	}
}

// testJoinHolderFails: when the holder fails for good, its joiners and everything
// depending on them, over run and join deps, become UPSTREAM_FAILED; an
// independent step of a joiner's run goes on.
func testJoinHolderFails(t *testing.T, f *qfixture) {
	a := f.createRun(newRun(ns(rawDaily, days(0, 1))))
	b := f.createRun(newRun(ns(rawDaily, days(0, 2)), ns(cleanDaily, days(0, 1), 0), ns(metrics, days(0, 1))))
	c := f.createRun(newRun(ns(cleanDaily, days(0, 1)))) // joins b1 (clean d0), which waits on b0, which joined a0
	a0, b0, b1, b2, c0 := a.Steps[0], b.Steps[0], b.Steps[1], b.Steps[2], c.Steps[0]
	if !sameIDs(b0.Joined, []uuid.UUID{a0.ID}) || !sameIDs(c0.Joined, []uuid.UUID{b1.ID}) {
		t.Fatalf("test setup: %s joined %v, want %s; %s joined %v, want %s", b0.ID, b0.Joined, a0.ID, c0.ID, c0.Joined, b1.ID)
	}
	cs := f.claim("w1", 10)
	if !sameIDs(claimIDs(cs), []uuid.UUID{a0.ID, b2.ID}) {
		t.Fatalf("ClaimSteps claimed %v, want the holder %s and the independent %s", claimIDs(cs), a0.ID, b2.ID)
	}
	res := f.fail(byID(t, cs, a0.ID), "disk full")
	if res.RunStatus != store.RunFailed {
		t.Errorf("FinishStep(the only step failed).RunStatus = %s, want FAILED", res.RunStatus)
	}
	if len(res.Ready) != 0 {
		t.Errorf("FinishStep(failed).Ready = %v, want none", res.Ready)
	}
	for _, s := range []store.Step{b0, b1, c0} {
		got := f.wantStep("after the holder failed", s.ID, store.StepUpstreamFailed)
		if got.FinishedAt.IsZero() {
			t.Errorf("UPSTREAM_FAILED step %s has no FinishedAt", s.ID)
		}
	}
	if e := f.getStep(b0.ID).Error; !strings.Contains(e, a0.ID.String()) || !strings.Contains(e, string(rawDaily)) || !strings.Contains(e, day(0)) {
		t.Errorf("joiner's error %q; want it to name the joined step %s, %s and %s", e, a0.ID, rawDaily, day(0))
	}
	if e := f.getStep(c0.ID).Error; !strings.Contains(e, b1.ID.String()) {
		t.Errorf("error of the joiner of an upstream-failed step: %q; want it to name the joined step %s", e, b1.ID)
	}
	f.wantRun("run whose steps all upstream-failed", c.ID, store.RunFailed)
	f.wantRun("run with a step still running", b.ID, store.RunRunning)
	// Only the failed step records failures: one per partition.
	fails := f.allEvents(store.EventQuery{Kinds: []store.EventKind{store.Failure}})
	if len(fails) != 1 || fails[0].Partition != day(0) || fails[0].RunID != a.ID || fails[0].StepID != a0.ID || fails[0].Error != "disk full" {
		t.Errorf("failure events %v, want one, for %s %s of run %s step %s, error %q", fails, rawDaily, day(0), a.ID, a0.ID, "disk full")
	}
	// Every in-flight row of the failed steps is gone.
	f.checkJoins("after the failures", rawDaily, days(0, 2))
	f.checkJoins("after the failures", cleanDaily, days(0, 1))
	res = f.succeed(byID(t, cs, b2.ID))
	if res.RunStatus != store.RunFailed {
		t.Errorf("FinishStep(last step of a run with upstream-failed steps).RunStatus = %s, want FAILED", res.RunStatus)
	}
	f.wantRun("after its last step", b.ID, store.RunFailed)
}

// testJoinHolderCanceled: a canceled holder counts as done for its joiners.
func testJoinHolderCanceled(t *testing.T, f *qfixture) {
	t.Run("not started", func(t *testing.T) {
		f := f.on(t)
		a := f.createRun(newRun(ns(rawDaily, days(0, 1))))
		b := f.createRun(newRun(ns(rawDaily, days(0, 1)), ns(cleanDaily, days(0, 1), 0)))
		if _, err := f.q.CancelRun(f.ctx, a.ID); err != nil {
			t.Fatalf("CancelRun: %v", err)
		}
		f.wantStep("holder of a canceled run", a.Steps[0].ID, store.StepCanceled)
		if s := f.wantStep("joiner of a canceled holder", b.Steps[0].ID, store.StepReady); s.ReadyAt.IsZero() {
			t.Errorf("READY joiner has no ReadyAt")
		}
		f.wantStep("dependent of the joiner", b.Steps[1].ID, store.StepPending)
		f.wantRun("canceled run", a.ID, store.RunCanceled)
		f.drain("w1")
		f.wantRun("the joiner's run", b.ID, store.RunSucceeded)
		f.checkMaterialized("after the cancel", b.ID, map[assets.Key][]string{rawDaily: days(0, 1), cleanDaily: days(0, 1)})
	})
	t.Run("running", func(t *testing.T) {
		f := f.on(t)
		a := f.createRun(newRun(ns(rawDaily, days(1, 2))))
		c := f.claimOne("w1")
		b := f.createRun(newRun(ns(rawDaily, days(1, 2))))
		if _, err := f.q.CancelRun(f.ctx, a.ID); err != nil {
			t.Fatalf("CancelRun: %v", err)
		}
		f.wantStep("joiner of a holder asked to cancel, still running", b.Steps[0].ID, store.StepPending)
		res := f.finish(result(c, store.OutcomeCanceled))
		if !sameIDs(res.Ready, []uuid.UUID{b.Steps[0].ID}) {
			t.Errorf("FinishStep(canceled).Ready = %v, want the joiner %s", res.Ready, b.Steps[0].ID)
		}
		if res.RunStatus != store.RunCanceled {
			t.Errorf("FinishStep(canceled).RunStatus = %s, want CANCELED", res.RunStatus)
		}
		f.wantStep("joiner of a canceled holder", b.Steps[0].ID, store.StepReady)
	})
}

// testJoinAtClaim: a joiner made READY does not hold its partitions yet; when
// another run took one in between, claiming joins that run's step instead of
// running beside it.
func testJoinAtClaim(t *testing.T, f *qfixture) {
	ids := sortedIDs(3)
	a := f.createRun(withID(ids[0], newRun(ns(rawDaily, days(0, 1)))))
	b := f.createRun(withID(ids[1], newRun(ns(rawDaily, days(0, 1)))))
	b0 := b.Steps[0]
	f.succeed(f.claimOne("w1"))
	f.wantStep("joiner", b0.ID, store.StepReady)
	// d0 is free now: a third run takes it.
	c := f.checkJoins("d0 between the holder's end and the joiner's claim", rawDaily, days(0, 1))
	c0 := c.Steps[0]
	cs := f.claim("w1", 10)
	if !sameIDs(claimIDs(cs), []uuid.UUID{c0.ID}) {
		t.Fatalf("ClaimSteps claimed %v, want only %s: the older run's step %s must join it, not run beside it", claimIDs(cs), c0.ID, b0.ID)
	}
	s := f.wantStep("joiner whose partition was taken before its claim", b0.ID, store.StepPending)
	if !containsID(s.Joined, c0.ID) {
		t.Errorf("its Joined = %v, want it to include %s", s.Joined, c0.ID)
	}
	if s.Attempt != 0 {
		t.Errorf("it has Attempt %d, want 0 (never claimed)", s.Attempt)
	}
	res := f.succeed(cs[0])
	if !containsID(res.Ready, b0.ID) {
		t.Errorf("FinishStep.Ready = %v, want the joiner %s", res.Ready, b0.ID)
	}
	f.drain("w2")
	for _, r := range []*store.Run{a, b, c} {
		f.wantRun("end", r.ID, store.RunSucceeded)
		f.checkMaterialized("join at claim", r.ID, map[assets.Key][]string{rawDaily: days(0, 1)})
	}
	if got := f.attempts(b0.ID); len(got) != 1 {
		t.Errorf("the joiner has %d attempts, want 1 (the claim that joined is no attempt)", len(got))
	}
}

// testJoinTwoHolders: a step whose partitions two other steps hold joins both and
// waits for both: READY when both are done (skipped fresh counts as done),
// UPSTREAM_FAILED when either fails. (It holds none of its partitions meanwhile,
// not even the one no one holds: testJoinHoldsNothingWhileWaiting.)
func testJoinTwoHolders(t *testing.T, f *qfixture) {
	a := f.createRun(newRun(ns(rawDaily, days(0, 1))))
	b := f.createRun(newRun(ns(rawDaily, days(1, 2))))
	c := f.createRun(newRun(ns(rawDaily, days(0, 3))))
	a0, b0, c0 := a.Steps[0], b.Steps[0], c.Steps[0]
	if c0.Status != store.StepPending || !sameIDs(c0.Joined, []uuid.UUID{a0.ID, b0.ID}) {
		t.Fatalf("step over partitions held by two steps: %s; want PENDING, joined to both %s", stepString(c0), idsString([]uuid.UUID{a0.ID, b0.ID}))
	}
	cs := f.claim("w1", 10)
	if !sameIDs(claimIDs(cs), []uuid.UUID{a0.ID, b0.ID}) {
		t.Fatalf("claimed %s, want the two holders", idsString(claimIDs(cs)))
	}
	if fr := f.finish(result(byID(t, cs, a0.ID), store.OutcomeSkippedFresh)); containsID(fr.Ready, c0.ID) {
		t.Errorf("FinishStep(one holder skipped).Ready = %v; the joiner still waits for the other", fr.Ready)
	}
	f.wantStep("joiner with one holder left", c0.ID, store.StepPending)
	if fr := f.succeed(byID(t, cs, b0.ID)); !sameIDs(fr.Ready, []uuid.UUID{c0.ID}) {
		t.Errorf("FinishStep(the other holder succeeded).Ready = %v, want the joiner %s", fr.Ready, c0.ID)
	}
	f.drain("w1")
	f.wantRun("joiner's run", c.ID, store.RunSucceeded)
	f.checkMaterialized("two holders", c.ID, map[assets.Key][]string{rawDaily: days(0, 3)})

	// One of two holders fails.
	d := f.createRun(newRun(ns(metrics, days(0, 1))))
	e := f.createRun(newRun(ns(metrics, days(1, 2))))
	g := f.createRun(newRun(ns(metrics, days(0, 2))))
	cs = f.claim("w1", 10)
	if !sameIDs(claimIDs(cs), []uuid.UUID{d.Steps[0].ID, e.Steps[0].ID}) {
		t.Fatalf("claimed %s, want the two holders", idsString(claimIDs(cs)))
	}
	f.succeed(byID(t, cs, d.Steps[0].ID))
	f.wantStep("joiner with one holder left", g.Steps[0].ID, store.StepPending)
	f.fail(byID(t, cs, e.Steps[0].ID), "boom")
	f.wantStep("joiner of a failed holder", g.Steps[0].ID, store.StepUpstreamFailed)
	f.wantRun("joiner's run", g.ID, store.RunFailed)
}

// testJoinCanceledJoiner: a joiner canceled before its holder ends stays
// CANCELED whatever the holder does.
func testJoinCanceledJoiner(t *testing.T, f *qfixture) {
	a := f.createRun(newRun(ns(rawDaily, days(0, 1)), ns(cleanDaily, days(0, 1), 0), ns(metrics, days(0, 1))))
	b := f.createRun(newRun(ns(rawDaily, days(0, 1)), ns(cleanDaily, days(0, 1), 0), ns(metrics, days(0, 1))))
	if _, err := f.q.CancelRun(f.ctx, b.ID); err != nil {
		t.Fatalf("CancelRun: %v", err)
	}
	f.wantRun("canceled joiners' run", b.ID, store.RunCanceled)
	cs := f.claim("w1", 10)
	if !sameIDs(claimIDs(cs), []uuid.UUID{a.Steps[0].ID, a.Steps[2].ID}) {
		t.Fatalf("claimed %s, want the holder's run's ready steps", idsString(claimIDs(cs)))
	}
	if fr := f.succeed(byID(t, cs, a.Steps[0].ID)); !sameIDs(fr.Ready, []uuid.UUID{a.Steps[1].ID}) {
		t.Errorf("FinishStep(holder succeeded).Ready = %v, want only its own dependent %s (its joiner was canceled)", fr.Ready, a.Steps[1].ID)
	}
	f.fail(byID(t, cs, a.Steps[2].ID), "boom")
	f.drain("w1")
	for _, s := range b.Steps {
		f.wantStep("canceled joiner after its holder ended", s.ID, store.StepCanceled)
	}
	f.wantRun("canceled joiners' run", b.ID, store.RunCanceled)
	f.wantRun("holders' run", a.ID, store.RunFailed)
	if evs := f.runEvents(b.ID); len(evs) != 0 {
		t.Errorf("events %v recorded for a canceled run", evs)
	}
}

// testCreateRunChoices: what CreateRun does where the contract leaves a choice,
// the same in every store: a run of no steps is SUCCEEDED at once; an empty
// trigger is manual; a MaxParallel of 0 or less is no cap (recorded as 0); an
// unknown parent run or backfill is ErrNotFound; two steps with one id are
// refused. Nothing is written when CreateRun fails.
func testCreateRunChoices(t *testing.T, f *qfixture) {
	empty := f.createRun(newRun())
	if empty.Status != store.RunSucceeded || empty.FinishedAt.IsZero() || len(empty.Steps) != 0 {
		t.Errorf("CreateRun(no steps) = %s; want SUCCEEDED, finished, no steps", runRecordString(*empty))
	}
	f.wantRun("run of no steps", empty.ID, store.RunSucceeded)

	nr := newRun(ns(metrics, days(0, 1)), ns(metrics, days(1, 2)), ns(metrics, days(2, 3)))
	nr.Trigger, nr.MaxParallel = "", -1
	r := f.createRun(nr)
	if r.Trigger != store.TriggerManual || r.MaxParallel != 0 {
		t.Errorf("CreateRun(trigger \"\", max parallel -1): trigger %q, max parallel %d; want manual, 0 (no cap)", r.Trigger, r.MaxParallel)
	}
	if g := f.getRun(r.ID); g.Trigger != store.TriggerManual || g.MaxParallel != 0 {
		t.Errorf("GetRun: trigger %q, max parallel %d; want manual, 0", g.Trigger, g.MaxParallel)
	}
	if cs := f.claim("w1", 10); len(cs) != 3 {
		t.Errorf("claimed %d steps of a run with MaxParallel -1, want all 3 (no cap)", len(cs))
	}

	id := uuid.New()
	cases := []struct {
		name     string
		nr       store.NewRun
		notFound bool
	}{
		{"unknown parent run", func() store.NewRun { nr := newRun(ns(metrics, days(5, 6))); nr.ParentRunID = uuid.New(); return nr }(), true},
		{"unknown backfill", func() store.NewRun { nr := newRun(ns(metrics, days(5, 6))); nr.BackfillID = uuid.New(); return nr }(), true},
		{"unknown trigger", func() store.NewRun { nr := newRun(ns(metrics, days(5, 6))); nr.Trigger = "cron"; return nr }(), false},
		{"two steps with one id", func() store.NewRun {
			nr := newRun(ns(metrics, days(5, 6)), ns(metrics, days(6, 7)))
			nr.Steps[0].ID, nr.Steps[1].ID = id, id
			return nr
		}(), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := f.on(t)
			tc.nr.ID = uuid.New()
			before := f.snapshotAll()
			r, err := f.q.CreateRun(f.ctx, tc.nr)
			if err == nil {
				t.Fatalf("CreateRun(%s) = %v, want an error", tc.name, r)
			}
			if tc.notFound && !errors.Is(err, store.ErrNotFound) {
				t.Errorf("CreateRun(%s): error %v, want one wrapping store.ErrNotFound", tc.name, err)
			}
			if _, err := f.q.GetRun(f.ctx, tc.nr.ID); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("GetRun of the refused run: error %v, want store.ErrNotFound", err)
			}
			f.checkUnchanged("refused CreateRun", before)
		})
	}
	// Nothing refused holds a partition.
	f.checkJoins("partitions of the refused runs", metrics, days(5, 7))
}
