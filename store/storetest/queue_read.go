package storetest

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/freshetdev/freshet/store"
)

// ---- runs and steps -----------------------------------------------------------

// testGetRunCounts: GetRun and ListRuns count a run's steps and their partitions
// per status.
func testGetRunCounts(t *testing.T, f *qfixture) {
	r := f.createRun(newRun(
		ns(weekly, []string{firstWeek}), // 0: FAILED
		ns(cleanDaily, days(0, 3), 0),   // 1: UPSTREAM_FAILED
		ns(rawDaily, days(0, 2)),        // 2: SUCCEEDED
		ns(metrics, days(5, 6)),         // 3: SKIPPED_FRESH
		ns(metrics, days(0, 1)),         // 4: RUNNING
		ns(metrics, days(1, 3)),         // 5: READY
		ns(summary, unpart, 2, 4),       // 6: PENDING
		ns(metrics, days(9, 10)),        // 7: CANCELED
	))
	f.fail(f.claimOne("w1"), "boom")
	f.succeed(f.claimOne("w1"))
	f.finish(result(f.claimOne("w1"), store.OutcomeSkippedFresh))
	if c := f.claimOne("w1"); c.ID != r.Steps[4].ID {
		t.Fatalf("test setup: claimed %s, want step 4 %s", c.ID, r.Steps[4].ID)
	}
	if _, err := f.q.CancelStep(f.ctx, r.Steps[7].ID); err != nil {
		t.Fatalf("CancelStep: %v", err)
	}
	counts := map[store.StepStatus]int{store.StepFailed: 1, store.StepUpstreamFailed: 1, store.StepSucceeded: 1, store.StepSkippedFresh: 1,
		store.StepRunning: 1, store.StepReady: 1, store.StepPending: 1, store.StepCanceled: 1}
	partitions := map[store.StepStatus]int{store.StepFailed: 1, store.StepUpstreamFailed: 3, store.StepSucceeded: 2, store.StepSkippedFresh: 1,
		store.StepRunning: 1, store.StepReady: 2, store.StepPending: 1, store.StepCanceled: 1}
	g := f.wantRun("run with a running step", r.ID, store.RunRunning)
	if g.StartedAt.IsZero() {
		t.Errorf("GetRun: a RUNNING run has no StartedAt")
	}
	checkCounts(t, "GetRun.Counts", g.Counts, counts)
	depth, err := f.q.QueueDepth(f.ctx)
	if err != nil {
		t.Fatalf("QueueDepth: %v", err)
	}
	checkCounts(t, "QueueDepth.Steps", depth.Steps, map[store.StepStatus]int{store.StepRunning: 1, store.StepReady: 1, store.StepPending: 1})
	if fmt.Sprint(depth.Runs) != "map[RUNNING:1]" {
		t.Errorf("QueueDepth.Runs: %v, want map[RUNNING:1]", depth.Runs)
	}
	inflight, err := f.q.InFlight(f.ctx)
	if err != nil {
		t.Fatalf("InFlight: %v", err)
	}
	var held []string
	for _, p := range inflight {
		held = append(held, fmt.Sprintf("%s %q %s %v", p.Asset, p.Partition, p.Status, p.StepID == r.Steps[map[store.StepStatus]int{
			store.StepRunning: 4, store.StepReady: 5, store.StepPending: 6}[p.Status]].ID))
	}
	want := []string{
		fmt.Sprintf("%s %q RUNNING true", metrics, day(0)),
		fmt.Sprintf("%s %q READY true", metrics, day(1)),
		fmt.Sprintf("%s %q READY true", metrics, day(2)),
		fmt.Sprintf("%s %q PENDING true", summary, ""),
	}
	if strings.Join(held, "; ") != strings.Join(want, "; ") {
		t.Errorf("InFlight:\n  %s\nwant (the open steps' partitions, by asset and key):\n  %s", strings.Join(held, "\n  "), strings.Join(want, "\n  "))
	}
	checkCounts(t, "GetRun.Partitions", g.Partitions, partitions)
	page, err := f.q.ListRuns(f.ctx, store.RunQuery{})
	if err != nil {
		t.Fatalf("ListRuns: %v", err)
	}
	if len(page.Runs) != 1 {
		t.Fatalf("ListRuns: %d runs, want 1", len(page.Runs))
	}
	checkCounts(t, "ListRuns.Counts", page.Runs[0].Counts, counts)
	checkCounts(t, "ListRuns.Partitions", page.Runs[0].Partitions, partitions)
	if got, want := runRecordString(page.Runs[0]), runRecordString(*g); got != want {
		t.Errorf("ListRuns\n got %s\nwant %s (as GetRun)", got, want)
	}
}

// testRunStepsOrder: RunSteps lists a run's steps in plan order, whatever their
// ids, with their deps.
func testRunStepsOrder(t *testing.T, f *qfixture) {
	ids := sortedIDs(4)
	nr := newRun(ns(rawDaily, days(0, 1)), ns(metrics, days(0, 1)), ns(cleanDaily, days(0, 1), 0), ns(summary, unpart, 0, 1))
	for i := range nr.Steps {
		nr.Steps[i].ID = ids[len(ids)-1-i] // descending: id order is not plan order
	}
	r := f.createRun(nr)
	got := f.runSteps(r.ID)
	if len(got) != 4 {
		t.Fatalf("RunSteps: %d steps, want 4", len(got))
	}
	for i, s := range got {
		if s.ID != nr.Steps[i].ID || stepString(s) != stepString(r.Steps[i]) {
			t.Errorf("RunSteps[%d]\n got %s\nwant %s", i, stepString(s), stepString(r.Steps[i]))
		}
	}
	if !sameIDs(got[3].Deps, []uuid.UUID{ids[3], ids[2]}) {
		t.Errorf("RunSteps[3].Deps = %v, want %s", got[3].Deps, idsString([]uuid.UUID{ids[3], ids[2]}))
	}
}

// listRuns reads one page, checking it.
func (f *qfixture) listRuns(q store.RunQuery) *store.RunPage {
	f.t.Helper()
	p, err := f.q.ListRuns(f.ctx, q)
	if err != nil {
		f.t.Fatalf("ListRuns(%+v): %v", q, err)
	}
	if p == nil {
		f.t.Fatalf("ListRuns(%+v): nil page", q)
	}
	limit := q.Limit
	if limit == 0 {
		limit = 50
	}
	if len(p.Runs) > limit {
		f.t.Errorf("ListRuns(%+v): %d runs, more than the limit %d", q, len(p.Runs), limit)
	}
	return p
}

func runIDs(runs []store.Run) []uuid.UUID {
	ids := make([]uuid.UUID, len(runs))
	for i, r := range runs {
		ids[i] = r.ID
	}
	return ids
}

func testListRuns(t *testing.T, f *qfixture) {
	ids := sortedIDs(5)
	r0 := f.createRun(withID(ids[0], newRun(ns(rawDaily, days(0, 1)))))
	r1 := f.createRun(withID(ids[1], newRun(ns(metrics, days(0, 1)))))
	r2 := f.createRun(withID(ids[2], newRun(ns(metrics, days(1, 2)))))
	if _, err := f.q.CancelRun(f.ctx, r2.ID); err != nil {
		t.Fatalf("CancelRun: %v", err)
	}
	b, err := f.q.CreateBackfill(f.ctx, store.NewBackfill{ID: uuid.New(), Selection: string(cleanDaily), Mode: store.BackfillAll, MaxParallel: 1,
		Run: withID(ids[3], newRun(ns(cleanDaily, days(5, 6))))})
	if err != nil {
		t.Fatalf("CreateBackfill: %v", err)
	}
	r3 := ids[3]
	r4 := f.createRun(withID(ids[4], newRun(ns(rawDaily, days(1, 2)), ns(cleanDaily, days(1, 2), 0))))

	cases := []struct {
		name string
		q    store.RunQuery
		want []uuid.UUID
	}{
		{"all", store.RunQuery{}, []uuid.UUID{r4.ID, r3, r2.ID, r1.ID, r0.ID}},
		{"canceled", store.RunQuery{Statuses: []store.RunStatus{store.RunCanceled}}, []uuid.UUID{r2.ID}},
		{"queued", store.RunQuery{Statuses: []store.RunStatus{store.RunQueued}}, []uuid.UUID{r4.ID, r3, r1.ID, r0.ID}},
		{"queued or canceled", store.RunQuery{Statuses: []store.RunStatus{store.RunQueued, store.RunCanceled}}, []uuid.UUID{r4.ID, r3, r2.ID, r1.ID, r0.ID}},
		{"running", store.RunQuery{Statuses: []store.RunStatus{store.RunRunning}}, nil},
		{"asset", store.RunQuery{Asset: rawDaily}, []uuid.UUID{r4.ID, r0.ID}},
		{"asset of a dependent step", store.RunQuery{Asset: cleanDaily}, []uuid.UUID{r4.ID, r3}},
		{"backfill", store.RunQuery{BackfillID: b.ID}, []uuid.UUID{r3}},
		{"asset and status", store.RunQuery{Asset: rawDaily, Statuses: []store.RunStatus{store.RunCanceled}}, nil},
		{"asset, before", store.RunQuery{Asset: rawDaily, Before: r4.ID}, []uuid.UUID{r0.ID}},
		{"before", store.RunQuery{Before: r2.ID}, []uuid.UUID{r1.ID, r0.ID}},
		{"before the oldest", store.RunQuery{Before: r0.ID}, nil},
	}
	for _, tc := range cases {
		p := f.listRuns(tc.q)
		if got := runIDs(p.Runs); fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("ListRuns(%s) = %v, want %v (newest first)", tc.name, got, tc.want)
		}
		if p.Next != uuid.Nil {
			t.Errorf("ListRuns(%s): Next = %s on a page holding everything left, want uuid.Nil", tc.name, p.Next)
		}
	}
	// Paging.
	want := [][]uuid.UUID{{r4.ID, r3}, {r2.ID, r1.ID}, {r0.ID}}
	q := store.RunQuery{Limit: 2}
	for i, w := range want {
		p := f.listRuns(q)
		if got := runIDs(p.Runs); fmt.Sprint(got) != fmt.Sprint(w) {
			t.Errorf("ListRuns page %d (limit 2) = %v, want %v", i+1, got, w)
		}
		wantNext := uuid.Nil
		if i < len(want)-1 {
			wantNext = w[len(w)-1]
		}
		if p.Next != wantNext {
			t.Fatalf("ListRuns page %d: Next = %s, want %s", i+1, p.Next, wantNext)
		}
		q.Before = p.Next
	}
	p := f.listRuns(store.RunQuery{Asset: cleanDaily})
	for _, r := range p.Runs {
		if got, want := runRecordString(r), runRecordString(*f.getRun(r.ID)); got != want {
			t.Errorf("ListRuns\n got %s\nwant %s (as GetRun, counts filled)", got, want)
		}
	}
}

func testListRunsDefaultLimit(t *testing.T, f *qfixture) {
	ids := sortedIDs(52)
	for i, id := range ids {
		f.createRun(withID(id, newRun(ns(metrics, days(i, i+1)))))
	}
	p := f.listRuns(store.RunQuery{})
	if len(p.Runs) != 50 || p.Next != ids[2] {
		t.Fatalf("ListRuns(limit 0) = %d runs, next %s; want 50, next %s (the 50th newest)", len(p.Runs), p.Next, ids[2])
	}
	p = f.listRuns(store.RunQuery{Before: p.Next})
	if got := runIDs(p.Runs); fmt.Sprint(got) != fmt.Sprint([]uuid.UUID{ids[1], ids[0]}) || p.Next != uuid.Nil {
		t.Errorf("ListRuns second page = %v, next %s; want %v, none", got, p.Next, []uuid.UUID{ids[1], ids[0]})
	}
}

// ---- logs ---------------------------------------------------------------------

func (f *qfixture) appendLog(step uuid.UUID, lines []store.LogLine, maxBytes int64) {
	f.t.Helper()
	if err := f.q.AppendStepLog(f.ctx, step, lines, maxBytes); err != nil {
		f.t.Fatalf("AppendStepLog(%d lines, max %d bytes): %v", len(lines), maxBytes, err)
	}
}

func (f *qfixture) stepLog(step uuid.UUID, after int64, limit int) *store.LogPage {
	f.t.Helper()
	p, err := f.q.StepLog(f.ctx, step, after, limit)
	if err != nil {
		f.t.Fatalf("StepLog(after %d, limit %d): %v", after, limit, err)
	}
	if p == nil {
		f.t.Fatalf("StepLog(after %d, limit %d): nil page", after, limit)
	}
	for i, l := range p.Lines {
		if l.No <= after || (i > 0 && l.No != p.Lines[i-1].No+1) {
			f.t.Errorf("StepLog(after %d): line %d has number %d; want consecutive numbers after %d", after, i, l.No, after)
		}
	}
	want := after
	if n := len(p.Lines); n > 0 {
		want = p.Lines[n-1].No
	}
	if p.Next != want {
		f.t.Errorf("StepLog(after %d, limit %d): Next = %d, want %d", after, limit, p.Next, want)
	}
	return p
}

func logTexts(p *store.LogPage) []string {
	var s []string
	for _, l := range p.Lines {
		s = append(s, l.Text)
	}
	return s
}

func lineNos(p *store.LogPage) []int64 {
	var s []int64
	for _, l := range p.Lines {
		s = append(s, l.No)
	}
	return s
}

func testLogNumbering(t *testing.T, f *qfixture) {
	r := f.createRun(newRun(ns(rawDaily, days(0, 1)), ns(metrics, days(0, 1))))
	id := r.Steps[0].ID
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 123456789, time.FixedZone("UTC+1", 3600))
	in := []store.LogLine{
		{No: 99, Attempt: 1, Stream: store.System, At: t0, Text: "$ build --day 2026-01-01"},
		{Attempt: 1, Stream: store.Stdout, At: t0.Add(time.Second), Text: "hello"},
		{Attempt: 1, Stream: store.Stderr, At: t0.Add(2 * time.Second), Text: "warning: café ✓"},
	}
	f.appendLog(id, in, 1<<20)
	in2 := []store.LogLine{
		{Attempt: 2, Stream: store.Stdout, At: t0.Add(3 * time.Second), Text: "again"},
		{Attempt: 2, Stream: store.Stdout, At: t0.Add(4 * time.Second), Text: ""},
	}
	f.appendLog(id, in2, 1<<20)
	all := append(in, in2...)
	p := f.stepLog(id, 0, 0)
	if len(p.Lines) != len(all) {
		t.Fatalf("StepLog: %d lines, want %d", len(p.Lines), len(all))
	}
	var bytes int64
	for i, l := range p.Lines {
		w := all[i]
		wantAt := w.At.UTC().Truncate(time.Microsecond)
		if l.No != int64(i+1) || l.Attempt != w.Attempt || l.Stream != w.Stream || l.Text != w.Text || !l.At.Equal(wantAt) {
			t.Errorf("StepLog line %d = %+v; want number %d (from 1, across calls and attempts), attempt %d, %s, %q at %s",
				i, l, i+1, w.Attempt, w.Stream, w.Text, wantAt.Format(time.RFC3339Nano))
		}
		bytes += int64(len(w.Text))
	}
	if p.KeptBytes != bytes || p.DroppedLines != 0 || p.DroppedBytes != 0 {
		t.Errorf("StepLog: kept %d bytes, dropped %d lines, %d bytes; want %d, 0, 0", p.KeptBytes, p.DroppedLines, p.DroppedBytes, bytes)
	}
	if p := f.stepLog(id, 2, 2); fmt.Sprint(lineNos(p)) != "[3 4]" {
		t.Errorf("StepLog(after 2, limit 2): lines %v, want [3 4]", lineNos(p))
	}
	if p := f.stepLog(id, 4, 0); fmt.Sprint(lineNos(p)) != "[5]" {
		t.Errorf("StepLog(after 4): lines %v, want [5]", lineNos(p))
	}
	if p := f.stepLog(id, 5, 10); len(p.Lines) != 0 {
		t.Errorf("StepLog(after the last): lines %v, want none", lineNos(p))
	}
	// Each step numbers its own lines.
	other := r.Steps[1].ID
	f.appendLog(other, []store.LogLine{{Attempt: 1, Stream: store.Stdout, At: t0, Text: "x"}}, 1<<20)
	if p := f.stepLog(other, 0, 0); fmt.Sprint(lineNos(p)) != "[1]" || fmt.Sprint(logTexts(p)) != "[x]" {
		t.Errorf("StepLog of another step: lines %v %q, want [1] [x]", lineNos(p), logTexts(p))
	}
}

func testLogDefaultLimit(t *testing.T, f *qfixture) {
	r := f.createRun(newRun(ns(rawDaily, days(0, 1))))
	id := r.Steps[0].ID
	const n = 10_005
	lines := make([]store.LogLine, n)
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	for i := range lines {
		lines[i] = store.LogLine{Attempt: 1, Stream: store.Stdout, At: t0, Text: fmt.Sprint("line ", i+1)}
	}
	f.appendLog(id, lines, 1<<30)
	if p := f.stepLog(id, 0, 0); len(p.Lines) != 1000 || p.Next != 1000 {
		t.Errorf("StepLog(limit 0): %d lines, next %d; want 1000, 1000", len(p.Lines), p.Next)
	}
	if p := f.stepLog(id, 0, 50_000); len(p.Lines) != 10_000 {
		t.Errorf("StepLog(limit 50,000): %d lines, want at most 10,000", len(p.Lines))
	}
	if p := f.stepLog(id, 10_000, 0); len(p.Lines) != 5 || p.Lines[4].Text != fmt.Sprint("line ", n) {
		t.Errorf("StepLog(after 10,000): %d lines, want the last 5", len(p.Lines))
	}
}

// testLogCap: the log keeps the newest lines within maxBytes and counts what it
// dropped.
func testLogCap(t *testing.T, f *qfixture) {
	r := f.createRun(newRun(ns(rawDaily, days(0, 1)), ns(metrics, days(0, 1))))
	id := r.Steps[0].ID
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	line := func(i int) store.LogLine { // 30 bytes
		return store.LogLine{Attempt: 1, Stream: store.Stdout, At: t0, Text: fmt.Sprintf("line %02d %s", i, strings.Repeat("x", 22))}
	}
	var batch []store.LogLine
	for i := 1; i <= 10; i++ {
		batch = append(batch, line(i))
	}
	f.appendLog(id, batch, 100)
	p := f.stepLog(id, 0, 0)
	if fmt.Sprint(lineNos(p)) != "[8 9 10]" || p.KeptBytes != 90 || p.DroppedLines != 7 || p.DroppedBytes != 210 {
		t.Errorf("10 lines of 30 bytes, cap 100: lines %v, kept %d bytes, dropped %d lines, %d bytes; want [8 9 10], 90, 7, 210",
			lineNos(p), p.KeptBytes, p.DroppedLines, p.DroppedBytes)
	}
	if len(p.Lines) == 3 && p.Lines[0].Text != line(8).Text {
		t.Errorf("line 8 = %q, want %q", p.Lines[0].Text, line(8).Text)
	}
	f.appendLog(id, []store.LogLine{line(11), line(12)}, 100)
	p = f.stepLog(id, 0, 0)
	if fmt.Sprint(lineNos(p)) != "[10 11 12]" || p.KeptBytes != 90 || p.DroppedLines != 9 || p.DroppedBytes != 270 {
		t.Errorf("2 more lines: lines %v, kept %d bytes, dropped %d lines, %d bytes; want [10 11 12], 90, 9, 270",
			lineNos(p), p.KeptBytes, p.DroppedLines, p.DroppedBytes)
	}
	if p := f.stepLog(id, 3, 0); fmt.Sprint(lineNos(p)) != "[10 11 12]" {
		t.Errorf("StepLog(after a dropped line): lines %v, want [10 11 12]", lineNos(p))
	}
	// Exactly at the cap: nothing dropped.
	other := r.Steps[1].ID
	f.appendLog(other, []store.LogLine{line(1), line(2)}, 60)
	if p := f.stepLog(other, 0, 0); len(p.Lines) != 2 || p.DroppedLines != 0 || p.KeptBytes != 60 {
		t.Errorf("60 bytes under a 60-byte cap: lines %v, dropped %d, kept %d; want both, 0, 60", lineNos(p), p.DroppedLines, p.KeptBytes)
	}
}

// testLogLongLine: a line longer than the cap keeps its last maxBytes bytes, cut
// at a character boundary.
func testLogLongLine(t *testing.T, f *qfixture) {
	r := f.createRun(newRun(ns(rawDaily, days(0, 1)), ns(metrics, days(0, 1))))
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	id := r.Steps[0].ID
	f.appendLog(id, []store.LogLine{{Attempt: 1, Stream: store.Stdout, At: t0, Text: "before"}}, 10)
	f.appendLog(id, []store.LogLine{{Attempt: 1, Stream: store.Stderr, At: t0, Text: "0123456789abcdefghijklmnopqrstuvwxyz"}}, 10)
	p := f.stepLog(id, 0, 0)
	if fmt.Sprint(lineNos(p)) != "[2]" || fmt.Sprint(logTexts(p)) != "[qrstuvwxyz]" || p.KeptBytes != 10 || p.DroppedLines < 1 {
		t.Errorf("a 36-byte line under a 10-byte cap: lines %v %q, kept %d, dropped %d lines; want [2] [qrstuvwxyz], 10, at least 1 (the line before)",
			lineNos(p), logTexts(p), p.KeptBytes, p.DroppedLines)
	}
	id = r.Steps[1].ID
	f.appendLog(id, []store.LogLine{{Attempt: 1, Stream: store.Stdout, At: t0, Text: "ab" + strings.Repeat("é", 10)}}, 11)
	p = f.stepLog(id, 0, 0)
	if len(p.Lines) != 1 {
		t.Fatalf("a 22-byte line under an 11-byte cap: %d lines kept, want 1", len(p.Lines))
	}
	if got := p.Lines[0].Text; got != strings.Repeat("é", 5) || !utf8.ValidString(got) {
		t.Errorf("a 22-byte line of 2-byte characters under an 11-byte cap kept %q, want %q (its tail, cut at a character boundary)", got, strings.Repeat("é", 5))
	}
}

// testLogSanitize: whatever bytes a process printed, the log stores valid UTF-8.
func testLogSanitize(t *testing.T, f *qfixture) {
	r := f.createRun(newRun(ns(rawDaily, days(0, 1))))
	id := r.Steps[0].ID
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	f.appendLog(id, []store.LogLine{
		{Attempt: 1, Stream: store.Stdout, At: t0, Text: "ok\x00nul \xff\xfe bad"},
		{Attempt: 1, Stream: store.Stdout, At: t0, Text: "\x00"},
		{Attempt: 1, Stream: store.Stderr, At: t0, Text: "fine ✓"},
	}, 1<<20)
	p := f.stepLog(id, 0, 0)
	if len(p.Lines) != 3 {
		t.Fatalf("StepLog: %d lines, want 3", len(p.Lines))
	}
	if got := p.Lines[0].Text; !regexp.MustCompile(`^ok\x{FFFD}nul \x{FFFD}+ bad$`).MatchString(got) {
		t.Errorf("line with NUL and invalid bytes stored as %q, want %q (each replaced by U+FFFD)", got, "ok\uFFFDnul \uFFFD\uFFFD bad")
	}
	if got := p.Lines[1].Text; got != "\uFFFD" {
		t.Errorf("a NUL line stored as %q, want %q", got, "\uFFFD")
	}
	if got := p.Lines[2].Text; got != "fine ✓" {
		t.Errorf("a valid line stored as %q, want %q", got, "fine ✓")
	}
}

// ---- backfills ----------------------------------------------------------------

type progress struct{ Targeted, Done, Failed, InFlight, Canceled, Pending int }

func progressOf(b *store.Backfill) progress {
	return progress{b.Targeted, b.Done, b.Failed, b.InFlight, b.Canceled, b.Pending}
}

func (f *qfixture) getBackfill(id uuid.UUID) *store.Backfill {
	f.t.Helper()
	b, err := f.q.GetBackfill(f.ctx, id)
	if err != nil {
		f.t.Fatalf("GetBackfill(%s): %v", id, err)
	}
	if b == nil || b.ID != id {
		f.t.Fatalf("GetBackfill(%s) = %v", id, b)
	}
	return b
}

func (f *qfixture) wantProgress(what string, id uuid.UUID, want progress, status store.BackfillStatus) *store.Backfill {
	f.t.Helper()
	b := f.getBackfill(id)
	if got := progressOf(b); got != want {
		f.t.Errorf("%s: backfill progress %+v, want %+v", what, got, want)
	}
	if b.Status != status {
		f.t.Errorf("%s: backfill %s, want %s", what, b.Status, status)
	}
	done := status == store.BackfillSucceeded || status == store.BackfillFailed || status == store.BackfillCanceled
	if done == b.FinishedAt.IsZero() {
		f.t.Errorf("%s: backfill %s with FinishedAt %s", what, b.Status, ts(b.FinishedAt))
	}
	return b
}

func (f *qfixture) createBackfill(nb store.NewBackfill) *store.Backfill {
	f.t.Helper()
	b, err := f.q.CreateBackfill(f.ctx, nb)
	if err != nil {
		f.t.Fatalf("CreateBackfill: %v", err)
	}
	if b == nil || b.ID == uuid.Nil || (nb.ID != uuid.Nil && b.ID != nb.ID) || len(b.RunIDs) != 1 {
		f.t.Fatalf("CreateBackfill = %+v; want it with its id and one run", b)
	}
	return b
}

func testBackfillProgress(t *testing.T, f *qfixture) {
	nb := store.NewBackfill{Selection: "sales/*", From: day(0), To: day(2), Mode: store.BackfillAll, MaxParallel: 2,
		Run: store.NewRun{Trigger: store.TriggerManual, Selection: "sales/*", From: day(0), To: day(2), Steps: []store.NewStep{
			ns(rawDaily, days(0, 2)), ns(rawDaily, days(2, 3)), ns(cleanDaily, days(0, 2), 0), ns(metrics, days(0, 1)),
		}}}
	b := f.createBackfill(nb)
	if b.Selection != nb.Selection || b.From != nb.From || b.To != nb.To || b.Mode != nb.Mode || b.MaxParallel != 2 || b.Status != store.BackfillRunning ||
		b.CreatedAt.IsZero() || !b.FinishedAt.IsZero() || !b.CanceledAt.IsZero() || progressOf(b) != (progress{Targeted: 6, Pending: 6}) {
		t.Errorf("CreateBackfill = %+v; want the fields given, RUNNING, 6 partitions targeted and pending", *b)
	}
	run := f.getRun(b.RunIDs[0])
	if run.Trigger != store.TriggerBackfill || run.BackfillID != b.ID || run.MaxParallel != 2 || run.Status != store.RunQueued {
		t.Errorf("backfill's run = %s; want trigger backfill, backfill %s, max parallel 2, QUEUED", runRecordString(*run), b.ID)
	}
	if got := f.getBackfill(b.ID); fmt.Sprint(got.RunIDs) != fmt.Sprint(b.RunIDs) {
		t.Errorf("GetBackfill.RunIDs = %v, want %v", got.RunIDs, b.RunIDs)
	}
	steps := f.runSteps(run.ID)
	cs := f.claim("w1", 10)
	if !sameIDs(claimIDs(cs), []uuid.UUID{steps[0].ID, steps[1].ID}) {
		t.Fatalf("claimed %s, want the first two steps (MaxParallel 2)", idsString(claimIDs(cs)))
	}
	f.wantProgress("two steps running", b.ID, progress{Targeted: 6, InFlight: 3, Pending: 3}, store.BackfillRunning)
	f.fail(byID(t, cs, steps[0].ID), "boom")
	f.wantProgress("a step failed", b.ID, progress{Targeted: 6, Failed: 4, InFlight: 1, Pending: 1}, store.BackfillRunning)
	f.succeed(byID(t, cs, steps[1].ID))
	f.wantProgress("a step succeeded", b.ID, progress{Targeted: 6, Done: 1, Failed: 4, Pending: 1}, store.BackfillRunning)
	f.finish(result(f.claimOne("w1"), store.OutcomeSkippedFresh))
	f.wantProgress("the last step skipped", b.ID, progress{Targeted: 6, Done: 2, Failed: 4}, store.BackfillFailed)
}

func testBackfillList(t *testing.T, f *qfixture) {
	ids := sortedIDs(2)
	b1 := f.createBackfill(store.NewBackfill{ID: ids[0], Selection: string(metrics), Mode: store.BackfillMissingAndStale, MaxParallel: 1,
		Run: newRun(ns(metrics, days(0, 1)), ns(metrics, days(1, 2)))})
	f.drain("w1")
	f.wantProgress("all succeeded", b1.ID, progress{Targeted: 2, Done: 2}, store.BackfillSucceeded)
	f.wantRun("backfill's run", b1.RunIDs[0], store.RunSucceeded)
	b2 := f.createBackfill(store.NewBackfill{ID: ids[1], Selection: string(metrics), Mode: store.BackfillMissingAndStale, MaxParallel: 1,
		Run: newRun()})
	if b2.Status != store.BackfillSucceeded {
		t.Errorf("CreateBackfill with nothing to run: %s, want SUCCEEDED at once", b2.Status)
	}
	f.wantProgress("nothing to run", b2.ID, progress{}, store.BackfillSucceeded)
	list := func(limit int) []uuid.UUID {
		bs, err := f.q.ListBackfills(f.ctx, limit)
		if err != nil {
			t.Fatalf("ListBackfills(%d): %v", limit, err)
		}
		var got []uuid.UUID
		for _, b := range bs {
			got = append(got, b.ID)
			if b.ID == b1.ID && progressOf(&b) != (progress{Targeted: 2, Done: 2}) {
				t.Errorf("ListBackfills: progress %+v, want %+v", progressOf(&b), progress{Targeted: 2, Done: 2})
			}
		}
		return got
	}
	if got := list(0); fmt.Sprint(got) != fmt.Sprint([]uuid.UUID{b2.ID, b1.ID}) {
		t.Errorf("ListBackfills(0) = %v, want %v (newest first)", got, []uuid.UUID{b2.ID, b1.ID})
	}
	if got := list(1); fmt.Sprint(got) != fmt.Sprint([]uuid.UUID{b2.ID}) {
		t.Errorf("ListBackfills(1) = %v, want %v", got, []uuid.UUID{b2.ID})
	}
}

func testBackfillCancel(t *testing.T, f *qfixture) {
	b := f.createBackfill(store.NewBackfill{Selection: string(metrics), Mode: store.BackfillAll, MaxParallel: 1,
		Run: newRun(ns(metrics, days(0, 1)), ns(metrics, days(1, 2)), ns(metrics, days(2, 4)))})
	c := f.claimOne("w1")
	got, err := f.q.CancelBackfill(f.ctx, b.ID)
	if err != nil {
		t.Fatalf("CancelBackfill: %v", err)
	}
	if got.CanceledAt.IsZero() || progressOf(got) != (progress{Targeted: 4, InFlight: 1, Canceled: 3}) {
		t.Errorf("CancelBackfill = %+v; want canceled at a time, 1 partition in flight, 3 canceled", *got)
	}
	if cs := f.claim("w1", 10); len(cs) != 0 {
		t.Errorf("claimed %s from a canceled backfill", idsString(claimIDs(cs)))
	}
	if hb := f.heartbeat("w1", []store.Lease{{StepID: c.ID, Attempt: c.Attempt}}, testLease); !hb[0].CancelRequested {
		t.Errorf("Heartbeat of the running step of a canceled backfill: no cancel requested")
	}
	f.finish(result(c, store.OutcomeCanceled))
	f.wantProgress("canceled", b.ID, progress{Targeted: 4, Canceled: 4}, store.BackfillCanceled)
	f.wantRun("run of a canceled backfill", b.RunIDs[0], store.RunCanceled)
}

// ---- ReadRanges ---------------------------------------------------------------

func testReadRanges(t *testing.T, f *qfixture) {
	f.append(mat(rawDaily, day(2)), failure(rawDaily, day(5), "x"), mat(metrics, day(0)), mat(summary, ""))
	defs := queueCatalog()
	defs.Assets[1].CodeVersion = "2" // sales/raw
	defs.Assets[1].Deps = nil
	f.sync(defs)
	f.append(mat(rawDaily, day(3)), mat(rawDaily, day(7)), failure(rawDaily, day(2), "y"))
	full := f.state()
	ranges := []store.PartitionRange{
		{Asset: rawDaily, Lo: 2, Hi: 6},
		{Asset: rawDaily, Lo: 0, Hi: 2},
		{Asset: metrics, Lo: 0, Hi: 3},
		{Asset: rawDaily, Lo: 10, Hi: 10},
		{Asset: summary, Lo: 0, Hi: 1},
		{Asset: rawDaily, Lo: 100, Hi: 103},
		{Asset: rawDaily, Lo: 3, Hi: 4},
		{Asset: cleanDaily, Lo: 0, Hi: 2},
	}
	got, err := f.q.ReadRanges(f.ctx, ranges)
	if err != nil {
		t.Fatalf("ReadRanges: %v", err)
	}
	if len(got) != len(ranges) {
		t.Fatalf("ReadRanges(%d ranges): %d states", len(ranges), len(got))
	}
	for k, rg := range ranges {
		what := fmt.Sprintf("ReadRanges range %d (%s [%d, %d))", k, rg.Asset, rg.Lo, rg.Hi)
		st := got[k]
		checkShape(t, what, st)
		if st == nil {
			continue
		}
		if st.Len() != rg.Hi-rg.Lo {
			t.Errorf("%s: Len = %d, want %d", what, st.Len(), rg.Hi-rg.Lo)
		}
		whole := full.Assets[rg.Asset]
		want := map[int]cell{}
		for i, c := range cellsOf(whole, true) {
			if i >= rg.Lo && i < rg.Hi {
				want[i-rg.Lo] = c
			}
		}
		checkCells(t, what, st, want, true)
		if !sameStrings(st.CodeVersions, whole.CodeVersions) {
			t.Errorf("%s: CodeVersions = %q, want the asset's complete list %q", what, st.CodeVersions, whole.CodeVersions)
		}
		if len(st.DepSets) != len(whole.DepSets) {
			t.Errorf("%s: DepSets = %v, want the asset's complete list %v", what, st.DepSets, whole.DepSets)
		}
	}
	// The range over partition 3 alone still lists code version "1" (partition 2's).
	if st := got[6]; st != nil && !sameStrings(st.CodeVersions, []string{"1", "2"}) {
		t.Errorf("ReadRanges(%s [3, 4)).CodeVersions = %q, want [1 2]", rawDaily, st.CodeVersions)
	}
	if empty, err := f.q.ReadRanges(f.ctx, nil); err != nil || len(empty) != 0 {
		t.Errorf("ReadRanges(none) = %v, %v; want nothing", empty, err)
	}
}

// ---- Listen -------------------------------------------------------------------

func testListen(t *testing.T, f *qfixture) {
	ctx, cancel := context.WithCancel(f.ctx)
	defer cancel()
	ch, err := f.q.Listen(ctx)
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	ch2, err := f.q.Listen(ctx)
	if err != nil {
		t.Fatalf("Listen (second listener): %v", err)
	}
	wake := func(what string, ch <-chan struct{}) {
		t.Helper()
		select {
		case _, ok := <-ch:
			if !ok {
				t.Fatalf("%s: the channel was closed, want a wake-up", what)
			}
		case <-time.After(patience):
			t.Fatalf("%s: no wake-up after %s", what, patience)
		}
	}
	drain := func(ch <-chan struct{}) {
		for {
			select {
			case <-ch:
			default:
				return
			}
		}
	}
	f.createRun(newRun(ns(rawDaily, days(0, 1)), ns(cleanDaily, days(0, 1), 0)))
	wake("after CreateRun", ch)
	wake("after CreateRun, second listener", ch2)
	c := f.claimOne("w1")
	drain(ch)
	drain(ch2)
	f.succeed(c) // makes the dependent READY
	wake("after a FinishStep that made a step ready", ch)
	wake("after a FinishStep that made a step ready, second listener", ch2)
	cancel()
	for _, ch := range []<-chan struct{}{ch, ch2} {
		deadline := time.After(patience)
	closed:
		for {
			select {
			case _, ok := <-ch:
				if !ok {
					break closed
				}
			case <-deadline:
				t.Fatalf("Listen: the channel is still open %s after its context ended", patience)
			}
		}
	}
}
