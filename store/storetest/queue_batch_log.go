package storetest

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/freshetdev/freshet/store"
)

// finishPath is a way to record reports: one FinishStep each, or one FinishSteps.
type finishPath struct {
	name   string
	finish func(f *qfixture, results []store.StepResult) ([]*store.FinishResult, []error)
}

var finishPaths = []finishPath{
	{"FinishStep", func(f *qfixture, results []store.StepResult) ([]*store.FinishResult, []error) {
		var frs []*store.FinishResult
		var errs []error
		for _, res := range results {
			fr, err := f.q.FinishStep(f.ctx, res)
			if err == nil && (fr == nil || fr.Step == nil || fr.Step.ID != res.StepID) {
				f.t.Fatalf("FinishStep(step %s, %s) = %+v, want the step's result", res.StepID, res.Outcome, fr)
			}
			frs, errs = append(frs, fr), append(errs, err)
		}
		return frs, errs
	}},
	{"FinishSteps", func(f *qfixture, results []store.StepResult) ([]*store.FinishResult, []error) {
		fs := f.finishSteps(results, nil)
		return fs.Results, fs.Errors
	}},
}

// checkLogLines checks that page holds exactly want (their texts, attempts,
// streams and times, kept to the microsecond in UTC), numbered from first on.
func checkLogLines(t *testing.T, what string, p *store.LogPage, first int64, want []store.LogLine) {
	t.Helper()
	if len(p.Lines) != len(want) {
		t.Errorf("%s: lines %v %q, want %d lines from number %d", what, lineNos(p), logTexts(p), len(want), first)
		return
	}
	for i, l := range p.Lines {
		w := want[i]
		wantAt := w.At.UTC().Truncate(time.Microsecond)
		if l.No != first+int64(i) || l.Attempt != w.Attempt || l.Stream != w.Stream || l.Text != w.Text || !l.At.Equal(wantAt) {
			t.Errorf("%s: line %d = %+v; want number %d, attempt %d, %s, %q at %s", what, i, l, first+int64(i), w.Attempt, w.Stream, w.Text, wantAt.Format(time.RFC3339Nano))
		}
	}
}

// testLogInReport: a report's log lines are recorded with it, after the lines
// appended before (numbering goes on, across attempts), as given; a refused
// report's lines are not, and take no numbers. Through FinishStep and
// FinishSteps alike.
func testLogInReport(t *testing.T, f *qfixture) {
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 123456789, time.FixedZone("UTC+1", 3600))
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	for _, path := range finishPaths {
		t.Run(path.name, func(t *testing.T) {
			f := f.fresh(t)
			r := f.createRun(newRun(
				tries(2, ns(rawDaily, days(0, 1))), // 0: retried, then succeeds
				ns(metrics, days(0, 1)),            // 1: succeeds
				ns(metrics, days(1, 2)),            // 2: reported by a worker without the lease first
				ns(metrics, days(2, 3)),            // 3: reported with a bad event first
				ns(metrics, days(3, 4)),            // 4: fails for good
			))
			cs := f.claim("w1", 10)
			if len(cs) != 5 {
				t.Fatalf("test setup: claimed %d steps, want 5", len(cs))
			}
			cl := func(i int) store.ClaimedStep { return byID(t, cs, r.Steps[i].ID) }
			pre0 := []store.LogLine{
				{Attempt: 1, Stream: store.System, At: at(0), Text: "$ build --day " + day(0)},
				{Attempt: 1, Stream: store.Stdout, At: at(1), Text: "working"},
			}
			f.appendLog(r.Steps[0].ID, pre0, 1<<20)
			pre2 := []store.LogLine{{Attempt: 1, Stream: store.Stdout, At: at(0), Text: "streamed"}}
			f.appendLog(r.Steps[2].ID, pre2, 1<<20)

			log0 := []store.LogLine{
				{No: 42, Attempt: 1, Stream: store.Stderr, At: at(2), Text: "warning: café ✓"}, // No is the store's to set
				{Attempt: 1, Stream: store.System, At: at(3), Text: "exit status 1; retrying"},
				{Attempt: 1, Stream: store.Stdout, At: at(4), Text: ""},
			}
			retry := result(cl(0), store.OutcomeFailed)
			retry.Error, retry.Retry, retry.Log = "exit status 1", true, log0
			log1 := []store.LogLine{{Attempt: 1, Stream: store.Stdout, At: at(5), Text: "done"}, {Attempt: 1, Stream: store.Stderr, At: at(6), Text: "bye"}}
			ok := success(cl(1))
			ok.Log = log1
			late := success(cl(2))
			late.Worker, late.Log = "w-late", []store.LogLine{{Attempt: 1, Stream: store.Stdout, At: at(7), Text: "late line"}}
			bad := success(cl(3))
			bad.Events[0].Partition = day(9)
			bad.Log = []store.LogLine{{Attempt: 1, Stream: store.Stdout, At: at(8), Text: "bad line"}}
			log4 := []store.LogLine{{Attempt: 1, Stream: store.Stderr, At: at(9), Text: "Traceback: boom"}}
			fail := result(cl(4), store.OutcomeFailed)
			fail.Error, fail.Log = "boom", log4

			_, errs := path.finish(f, []store.StepResult{retry, ok, late, bad, fail})
			for _, i := range []int{0, 1, 4} {
				if errs[i] != nil {
					t.Fatalf("%s: report %d: %v", path.name, i, errs[i])
				}
			}
			wantErrIs(t, path.name+"(a worker without the lease)", errs[2], store.ErrLeaseLost)
			if errs[3] == nil {
				t.Errorf("%s(a bad event): no error", path.name)
			}
			p := f.stepLog(r.Steps[0].ID, 0, 0)
			checkLogLines(t, "log of a retried step with lines appended before", p, 1, append(pre0[:2:2], log0...))
			var bytes int64
			for _, l := range append(pre0[:2:2], log0...) {
				bytes += int64(len(l.Text))
			}
			if p.KeptBytes != bytes || p.DroppedLines != 0 || p.DroppedBytes != 0 {
				t.Errorf("log of the retried step: kept %d bytes, dropped %d lines, %d bytes; want %d, 0, 0 (LogCap 0: no cap)", p.KeptBytes, p.DroppedLines, p.DroppedBytes, bytes)
			}
			checkLogLines(t, "log of a success", f.stepLog(r.Steps[1].ID, 0, 0), 1, log1)
			checkLogLines(t, "log of a refused report (lease lost)", f.stepLog(r.Steps[2].ID, 0, 0), 1, pre2)
			checkLogLines(t, "log of a refused report (bad event)", f.stepLog(r.Steps[3].ID, 0, 0), 1, nil)
			checkLogLines(t, "log of a final failure", f.stepLog(r.Steps[4].ID, 0, 0), 1, log4)

			// The next attempt's lines follow; the refused reports, made right, record theirs after what was kept.
			c := f.claimOne("w1")
			if c.ID != r.Steps[0].ID || c.Attempt != 2 {
				t.Fatalf("claimed %s attempt %d, want %s attempt 2", c.ID, c.Attempt, r.Steps[0].ID)
			}
			log0b := []store.LogLine{{Attempt: 2, Stream: store.Stdout, At: at(10), Text: "second try"}}
			ok0 := success(c)
			ok0.Log = log0b
			log2 := []store.LogLine{{Attempt: 1, Stream: store.Stdout, At: at(11), Text: "on time"}, {Attempt: 1, Stream: store.System, At: at(12), Text: "exit 0"}}
			ok2 := success(cl(2))
			ok2.Log = log2
			log3 := []store.LogLine{{Attempt: 1, Stream: store.Stdout, At: at(13), Text: "good line"}}
			ok3 := success(cl(3))
			ok3.Log = log3
			_, errs = path.finish(f, []store.StepResult{ok0, ok2, ok3})
			for i, err := range errs {
				if err != nil {
					t.Fatalf("%s: report %d of the second round: %v", path.name, i, err)
				}
			}
			checkLogLines(t, "log of the retried step after its second attempt", f.stepLog(r.Steps[0].ID, 0, 0), 1, append(append(pre0[:2:2], log0...), log0b...))
			checkLogLines(t, "log of a step whose first report was refused (lease lost)", f.stepLog(r.Steps[2].ID, 0, 0), 1, append(pre2[:1:1], log2...))
			checkLogLines(t, "log of a step whose first report was refused (bad event)", f.stepLog(r.Steps[3].ID, 0, 0), 1, log3)
			f.wantRun("end", r.ID, store.RunFailed)
		})
	}
}

// testLogInReportCap: a report's LogCap caps the log as AppendStepLog's maxBytes
// does (the oldest lines dropped and counted, a line longer than the cap cut to
// its tail); 0 is no cap; a refused report drops nothing.
func testLogInReportCap(t *testing.T, f *qfixture) {
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	line := func(i int) store.LogLine { // 30 bytes
		return store.LogLine{Attempt: 1, Stream: store.Stdout, At: t0.Add(time.Duration(i) * time.Second), Text: fmt.Sprintf("line %02d %s", i, strings.Repeat("x", 22))}
	}
	lines := func(lo, hi int) []store.LogLine {
		var ls []store.LogLine
		for i := lo; i <= hi; i++ {
			ls = append(ls, line(i))
		}
		return ls
	}
	long := store.LogLine{Attempt: 1, Stream: store.Stderr, At: t0, Text: "0123456789abcdefghijklmnopqrstuvwxyz"}
	short := store.LogLine{Attempt: 1, Stream: store.Stdout, At: t0, Text: "before"}
	for _, path := range finishPaths {
		t.Run(path.name, func(t *testing.T) {
			f := f.fresh(t)
			r := f.createRun(newRun(
				ns(metrics, days(0, 1)), // 0: lines in its report, capped
				ns(metrics, days(1, 2)), // 1: the same lines appended with AppendStepLog
				ns(metrics, days(2, 3)), // 2: a refused report with a small cap
				ns(metrics, days(3, 4)), // 3: LogCap 0
				ns(metrics, days(4, 5)), // 4: a line longer than the cap in its report
				ns(metrics, days(5, 6)), // 5: the same with AppendStepLog
			))
			cs := f.claim("w1", 10)
			if len(cs) != 6 {
				t.Fatalf("test setup: claimed %d steps, want 6", len(cs))
			}
			cl := func(i int) store.ClaimedStep { return byID(t, cs, r.Steps[i].ID) }
			for _, i := range []int{0, 1} {
				f.appendLog(r.Steps[i].ID, lines(1, 4), 100)
			}
			f.appendLog(r.Steps[1].ID, lines(5, 7), 100)
			f.appendLog(r.Steps[2].ID, lines(1, 3), 100)
			f.appendLog(r.Steps[3].ID, lines(1, 2), 1<<20)
			for _, i := range []int{4, 5} {
				f.appendLog(r.Steps[i].ID, []store.LogLine{short}, 10)
			}
			f.appendLog(r.Steps[5].ID, []store.LogLine{long}, 10)

			capped := success(cl(0))
			capped.Log, capped.LogCap = lines(5, 7), 100
			late := success(cl(2))
			late.Worker, late.Log, late.LogCap = "w-late", lines(4, 6), 30
			uncapped := success(cl(3))
			uncapped.Log = lines(3, 12)
			longRes := success(cl(4))
			longRes.Log, longRes.LogCap = []store.LogLine{long}, 10
			_, errs := path.finish(f, []store.StepResult{capped, success(cl(1)), late, uncapped, longRes, success(cl(5))})
			for i, err := range errs {
				if i == 2 {
					wantErrIs(t, path.name+"(a worker without the lease)", err, store.ErrLeaseLost)
				} else if err != nil {
					t.Fatalf("%s: report %d: %v", path.name, i, err)
				}
			}
			p := f.stepLog(r.Steps[0].ID, 0, 0)
			if fmtNos(p) != "[5 6 7]" || p.KeptBytes != 90 || p.DroppedLines != 4 || p.DroppedBytes != 120 {
				t.Errorf("4 lines of 30 bytes appended under a 100-byte cap, then 3 in the report with LogCap 100: lines %v, kept %d bytes, dropped %d lines, %d bytes; want [5 6 7], 90, 4, 120",
					lineNos(p), p.KeptBytes, p.DroppedLines, p.DroppedBytes)
			}
			checkLogLines(t, "the capped log", p, 5, lines(5, 7))
			if got, want := logShape(p), logShape(f.stepLog(r.Steps[1].ID, 0, 0)); got != want {
				t.Errorf("log with lines in a report under LogCap 100:\n%s\nwant it as AppendStepLog with maxBytes 100 leaves it:\n%s", got, want)
			}
			p = f.stepLog(r.Steps[2].ID, 0, 0)
			checkLogLines(t, "log of a refused report with a small LogCap", p, 1, lines(1, 3))
			if p.DroppedLines != 0 || p.KeptBytes != 90 {
				t.Errorf("log of a refused report with a small LogCap: dropped %d lines, kept %d bytes; want 0, 90 (nothing cut)", p.DroppedLines, p.KeptBytes)
			}
			p = f.stepLog(r.Steps[3].ID, 0, 0)
			checkLogLines(t, "log of a report with LogCap 0", p, 1, lines(1, 12))
			if p.DroppedLines != 0 || p.KeptBytes != 12*30 {
				t.Errorf("log of a report with LogCap 0: dropped %d lines, kept %d bytes; want 0, %d (no cap)", p.DroppedLines, p.KeptBytes, 12*30)
			}
			p = f.stepLog(r.Steps[4].ID, 0, 0)
			if fmtNos(p) != "[2]" || fmt.Sprint(logTexts(p)) != "[qrstuvwxyz]" || p.KeptBytes != 10 || p.DroppedLines < 1 {
				t.Errorf("a 36-byte line in a report with LogCap 10: lines %v %q, kept %d, dropped %d lines; want [2] [qrstuvwxyz], 10, at least 1",
					lineNos(p), logTexts(p), p.KeptBytes, p.DroppedLines)
			}
			if got, want := logShape(p), logShape(f.stepLog(r.Steps[5].ID, 0, 0)); got != want {
				t.Errorf("log with a long line in a report under LogCap 10:\n%s\nwant it as AppendStepLog with maxBytes 10 leaves it:\n%s", got, want)
			}
		})
	}
}

func fmtNos(p *store.LogPage) string { return fmt.Sprint(lineNos(p)) }
