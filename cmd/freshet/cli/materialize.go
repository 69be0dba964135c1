package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/spf13/cobra"

	"github.com/freshetdev/freshet/assets"
	"github.com/freshetdev/freshet/materialize"
	"github.com/freshetdev/freshet/store"
)

func newMaterializeCmd() *cobra.Command {
	var (
		cf                       catalogFlags
		selection, from, to, now string
		force                    bool
		parallel                 int
	)
	cmd := &cobra.Command{
		Use:   "materialize",
		Short: "Build what is missing or stale in a selection, and wait for it",
		Long: `Materialize plans the selection and window as 'freshet plan' does, records the
plan as a run and works it with --parallel steps at once in this process, showing
progress. Workers started with 'freshet worker' on the same PostgreSQL catalog help.

It prints a summary with every failed step and where to read its log, and exits
non-zero when anything failed. Ctrl-C cancels the run (its running steps are
stopped); a second Ctrl-C leaves at once, and the steps' leases expire.`,
		Example: `  freshet materialize -f examples/sales --from 2026-01-01 --to 2026-01-07
  freshet materialize -f examples/sales --select '+sales/daily_report' --parallel 8
  freshet materialize -f examples/sales --select sales/raw_orders --from 2026-01-03 --to 2026-01-03 --force`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			win, err := parseWindow(from, to, now)
			if err != nil {
				return err
			}
			if parallel < 1 {
				return fmt.Errorf("--parallel %d: must be 1 or more", parallel)
			}
			engine, st, err := openEngine(cmd, &cf, func() time.Time { return win.now })
			if err != nil {
				return err
			}
			defer st.Close()
			q := engine.Store()
			run, plan, err := engine.Launch(cmd.Context(), materialize.LaunchRequest{
				PlanRequest: materialize.PlanRequest{Selection: selection, From: from, To: to},
				Force:       force, Trigger: store.TriggerManual,
			})
			out := cmd.OutOrStdout()
			if plan != nil {
				writeBlocked(out, plan)
			}
			if errors.Is(err, materialize.ErrNothingToDo) {
				fmt.Fprintln(out, "Nothing to materialize: every target is fresh.")
				return nil
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "run %s: %s over %s of %s\n", run.ID, pluralize(len(run.Steps), "step"),
				pluralize(countPartitions(run.Steps), "partition"), pluralize(countAssets(run.Steps), "asset"))

			p := engine.Project()
			w := materialize.NewWorker(q, p.Graph, p.Defs.Dir, &materialize.Executors{Connections: p.Defs.Connections})
			defer w.Executors.Close()
			w.Parallel = parallel
			w.Logger = hclog.New(&hclog.LoggerOptions{Name: "worker", Output: cmd.ErrOrStderr(), Level: hclog.Warn})
			final, err := workRun(cmd.Context(), q, w, run, out, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			steps, err := q.RunSteps(context.WithoutCancel(cmd.Context()), run.ID)
			if err != nil {
				return fmt.Errorf("read the run's steps: %w", err)
			}
			writeSummary(out, final, steps)
			if final.Status != store.RunSucceeded {
				return exitError{code: 1}
			}
			return nil
		},
	}
	cf.register(cmd)
	cmd.Flags().StringVarP(&selection, "select", "s", "*", "which assets: keys, group:, tag:, owner:, +key, key+ (see: freshet help selection)")
	cmd.Flags().StringVar(&from, "from", "", "first day of the window, YYYY-MM-DD")
	cmd.Flags().StringVar(&to, "to", "", "last day of the window, YYYY-MM-DD (inclusive)")
	cmd.Flags().StringVar(&now, "now", "", "plan as of this instant (RFC 3339) instead of now")
	cmd.Flags().BoolVar(&force, "force", false, "rebuild the targets even when they are fresh")
	cmd.Flags().IntVarP(&parallel, "parallel", "j", 4, "steps to run at once in this process")
	return cmd
}

// window is a parsed --from/--to/--now.
type window struct{ from, to, now time.Time }

func parseWindow(from, to, now string) (window, error) {
	var w window
	var err error
	if w.from, err = materialize.ParseDay("--from", from); err != nil {
		return w, err
	}
	if w.to, err = materialize.ParseDay("--to", to); err != nil {
		return w, err
	}
	if !w.from.IsZero() && !w.to.IsZero() && w.to.Before(w.from) {
		return w, fmt.Errorf("--to %s is before --from %s", to, from)
	}
	w.now, err = parseNow(now)
	return w, err
}

// queueOf returns the store's engine queue.
func queueOf(s store.Store) (materialize.QueueStore, error) {
	q, ok := s.(materialize.QueueStore)
	if !ok {
		return nil, errors.New("this catalog store cannot run steps")
	}
	return q, nil
}

func countPartitions(steps []store.Step) int {
	n := 0
	for _, s := range steps {
		n += len(s.Partitions)
	}
	return n
}

func countAssets(steps []store.Step) int {
	seen := map[assets.Key]bool{}
	for _, s := range steps {
		seen[s.Asset] = true
	}
	return len(seen)
}

func writeBlocked(w io.Writer, plan *materialize.Plan) {
	if len(plan.Blocked) == 0 {
		return
	}
	fmt.Fprintf(w, "blocked: %s cannot be built:\n", pluralize(len(plan.Blocked), "partition"))
	for i, b := range plan.Blocked {
		if i == 5 {
			fmt.Fprintf(w, "  … and %d more (see freshet plan)\n", len(plan.Blocked)-5)
			break
		}
		key := plan.BlockedKey(b)
		if key == "" {
			key = "(unpartitioned)"
		}
		fmt.Fprintf(w, "  %s %s: %s\n", plan.Graph().Asset(int(b.Asset)).Key, key, plan.Reason(b))
	}
}

// workRun works the run in this process until it ends, showing progress. The
// first interrupt cancels the run and waits for its steps to stop; a second one
// returns at once.
func workRun(ctx context.Context, q materialize.QueueStore, w *materialize.Worker, run *store.Run, out, errOut io.Writer) (*store.Run, error) {
	wctx, stopWorker := context.WithCancel(ctx)
	workerDone := make(chan error, 1)
	go func() { workerDone <- w.Run(wctx) }()
	defer func() {
		stopWorker()
		<-workerDone
	}()

	interrupts := make(chan os.Signal, 2)
	signal.Notify(interrupts, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(interrupts)

	progress := newProgress(out, run)
	tick := time.NewTicker(progress.interval())
	defer tick.Stop()
	canceled := false
	for {
		cur, err := q.GetRun(context.WithoutCancel(ctx), run.ID)
		if err != nil {
			return nil, fmt.Errorf("read run %s: %w", run.ID, err)
		}
		progress.show(ctx, q, cur)
		if cur.Status.Done() {
			return cur, nil
		}
		select {
		case err := <-workerDone:
			workerDone <- err
			if err != nil {
				return nil, err
			}
			return nil, fmt.Errorf("the worker stopped before run %s ended", run.ID)
		case <-interrupts:
			if canceled {
				fmt.Fprintf(errOut, "\nleaving; run %s goes on with other workers or is picked up later (freshet run show %s)\n", run.ID, run.ID)
				return nil, exitError{code: 130}
			}
			canceled = true
			fmt.Fprintf(errOut, "\ncanceling run %s (Ctrl-C again to leave at once)\n", run.ID)
			if _, err := q.CancelRun(context.WithoutCancel(ctx), run.ID); err != nil {
				return nil, fmt.Errorf("cancel run %s: %w", run.ID, err)
			}
		case <-tick.C:
		}
	}
}

// progress shows a run's progress: a bar and per-asset counts redrawn in place on
// a terminal, a plain line per change elsewhere (logs, CI).
type progress struct {
	out      io.Writer
	tty      bool
	total    int
	last     string
	lines    int // lines drawn last time, to redraw in place
	lastPer  time.Time
	perAsset []string
}

func newProgress(out io.Writer, run *store.Run) *progress {
	return &progress{out: out, tty: isTerminal(out), total: len(run.Steps)}
}

func (p *progress) interval() time.Duration {
	if p.tty {
		return 100 * time.Millisecond
	}
	return 50 * time.Millisecond
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func (p *progress) show(ctx context.Context, q store.Queue, run *store.Run) {
	c := run.Counts
	done := c[store.StepSucceeded] + c[store.StepSkippedFresh] + c[store.StepFailed] + c[store.StepUpstreamFailed] + c[store.StepCanceled]
	line := fmt.Sprintf("%d/%d steps done: %d succeeded, %d skipped fresh, %d failed, %d upstream failed, %d running, %d waiting",
		done, p.total, c[store.StepSucceeded], c[store.StepSkippedFresh], c[store.StepFailed], c[store.StepUpstreamFailed],
		c[store.StepRunning], c[store.StepReady]+c[store.StepPending])
	if c[store.StepCanceled] > 0 {
		line += fmt.Sprintf(", %d canceled", c[store.StepCanceled])
	}
	if !p.tty {
		if line != p.last {
			fmt.Fprintln(p.out, line)
			p.last = line
		}
		return
	}
	// Per-asset counts cost a read of every step: once a second is plenty.
	if time.Since(p.lastPer) > time.Second || run.Status.Done() {
		p.lastPer = time.Now()
		if steps, err := q.RunSteps(context.WithoutCancel(ctx), run.ID); err == nil {
			p.perAsset = perAssetLines(steps)
		}
	}
	var b strings.Builder
	if p.lines > 0 {
		fmt.Fprintf(&b, "\x1b[%dA", p.lines) // back to the first line drawn
	}
	const width = 40
	filled := 0
	if p.total > 0 {
		filled = done * width / p.total
	}
	fmt.Fprintf(&b, "\x1b[2K[%s%s] %s\n", strings.Repeat("#", filled), strings.Repeat(".", width-filled), line)
	for _, l := range p.perAsset {
		fmt.Fprintf(&b, "\x1b[2K  %s\n", l)
	}
	fmt.Fprint(p.out, b.String())
	p.lines = 1 + len(p.perAsset)
}

// perAssetLines summarizes steps per asset, at most 12 assets (busiest first).
func perAssetLines(steps []store.Step) []string {
	type counts struct {
		key                           assets.Key
		done, failed, running, queued int
	}
	byAsset := map[assets.Key]*counts{}
	var order []*counts
	for _, s := range steps {
		c := byAsset[s.Asset]
		if c == nil {
			c = &counts{key: s.Asset}
			byAsset[s.Asset] = c
			order = append(order, c)
		}
		switch s.Status {
		case store.StepSucceeded, store.StepSkippedFresh:
			c.done++
		case store.StepFailed, store.StepUpstreamFailed, store.StepCanceled:
			c.failed++
		case store.StepRunning:
			c.running++
		default:
			c.queued++
		}
	}
	sort.SliceStable(order, func(i, j int) bool { return order[i].running > order[j].running })
	var lines []string
	for i, c := range order {
		if i == 12 {
			lines = append(lines, fmt.Sprintf("… and %d more assets", len(order)-12))
			break
		}
		lines = append(lines, fmt.Sprintf("%-40s %4d done %4d failed %4d running %4d queued", c.key, c.done, c.failed, c.running, c.queued))
	}
	return lines
}

// writeSummary prints how the run ended, every failed step and where its log is.
func writeSummary(w io.Writer, run *store.Run, steps []store.Step) {
	took := ""
	if !run.StartedAt.IsZero() && !run.FinishedAt.IsZero() {
		took = " in " + run.FinishedAt.Sub(run.StartedAt).Round(time.Millisecond).String()
	}
	fmt.Fprintf(w, "\nrun %s %s%s: %d succeeded, %d skipped fresh, %d failed, %d upstream failed, %d canceled\n",
		run.ID, run.Status, took, run.Counts[store.StepSucceeded], run.Counts[store.StepSkippedFresh],
		run.Counts[store.StepFailed], run.Counts[store.StepUpstreamFailed], run.Counts[store.StepCanceled])
	failed := 0
	for _, s := range steps {
		if s.Status != store.StepFailed {
			continue
		}
		if failed == 0 {
			fmt.Fprintln(w, "failed steps:")
		}
		failed++
		fmt.Fprintf(w, "  %s %s after %s: %s\n    log: freshet logs %s\n",
			s.Asset, partitionSpan(s.Partitions), pluralize(s.Attempt, "attempt"), oneLine(s.Error), s.ID)
	}
	upstream := 0
	for _, s := range steps {
		if s.Status == store.StepUpstreamFailed {
			upstream++
		}
	}
	if upstream > 0 {
		fmt.Fprintf(w, "%s not run because an upstream step failed (freshet run show %s)\n", pluralize(upstream, "step"), run.ID)
	}
}

func partitionSpan(keys []string) string {
	switch {
	case len(keys) == 0 || (len(keys) == 1 && keys[0] == ""):
		return "(unpartitioned)"
	case len(keys) == 1:
		return keys[0]
	}
	return keys[0] + "…" + keys[len(keys)-1]
}

// oneLine fits an error on one line of a table or a summary: its first line and
// its last, where a command's stderr tail usually says what went wrong
// ("command exited with status 3; stderr ends with: … KeyError: 'amount'"),
// with " … " for the lines left out.
func oneLine(s string) string {
	var lines []string
	for l := range strings.Lines(s) {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	switch len(lines) {
	case 0:
		return ""
	case 1:
		return lines[0]
	case 2:
		return lines[0] + " " + lines[1]
	}
	return lines[0] + " … " + lines[len(lines)-1]
}
