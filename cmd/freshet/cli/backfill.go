package cli

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/spf13/cobra"

	"github.com/freshetdev/freshet/assets"
	"github.com/freshetdev/freshet/graph"
	"github.com/freshetdev/freshet/materialize"
	"github.com/freshetdev/freshet/store"
)

func newBackfillCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "backfill",
		Short: "Start, follow, resume and cancel backfills",
		Long: `A backfill materializes a selection over a date range, either what is missing or
stale there (--mode missing_and_stale, the default) or everything (--mode all). It is
recorded in the catalog with its progress, survives restarts and never runs a
partition that another run has in flight: it waits for that run instead.`,
	}
	cmd.AddCommand(newBackfillStartCmd(), newBackfillStatusCmd(), newBackfillResumeCmd(), newBackfillCancelCmd())
	return cmd
}

func newBackfillStartCmd() *cobra.Command {
	var (
		cf                       catalogFlags
		selection, from, to, now string
		mode                     string
		maxParallel, parallel    int
		detach                   bool
	)
	cmd := &cobra.Command{
		Use:   "start",
		Short: "Plan a backfill, record it and work it here (or leave it to workers with --detach)",
		Example: `  freshet backfill start -f examples/sales --select 'group:sales' --from 2026-01-01 --to 2026-01-31
  freshet backfill start -f examples/sales --from 2026-01-01 --to 2026-03-31 --mode all --max-parallel 4 --detach`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			win, err := parseWindow(from, to, now)
			if err != nil {
				return err
			}
			bmode := store.BackfillMode(mode)
			if bmode != store.BackfillMissingAndStale && bmode != store.BackfillAll {
				return fmt.Errorf("--mode %q: want missing_and_stale or all", mode)
			}
			if maxParallel < 1 || parallel < 1 {
				return fmt.Errorf("--max-parallel and --parallel must be 1 or more")
			}
			engine, st, err := openEngine(cmd, &cf, func() time.Time { return win.now })
			if err != nil {
				return err
			}
			defer st.Close()
			b, plan, err := engine.LaunchBackfill(cmd.Context(), materialize.BackfillRequest{
				PlanRequest: materialize.PlanRequest{Selection: selection, From: from, To: to},
				Mode:        bmode, MaxParallel: maxParallel,
			})
			out := cmd.OutOrStdout()
			if plan != nil {
				writeBlocked(out, plan)
			}
			if err != nil {
				return err
			}
			steps := 0
			for _, id := range b.RunIDs {
				run, err := engine.Store().GetRun(cmd.Context(), id)
				if err != nil {
					return err
				}
				for _, n := range run.Counts {
					steps += n
				}
			}
			fmt.Fprintf(out, "backfill %s: %s to build in %s\n", b.ID, pluralize(b.Targeted, "partition"), pluralize(steps, "step"))
			if steps == 0 || detach {
				if detach && steps > 0 {
					fmt.Fprintf(out, "workers will run it; follow it with: freshet backfill status %s\n", b.ID)
				}
				return nil
			}
			p := engine.Project()
			return workBackfill(cmd, engine.Store(), p.Graph, p.Defs, b, parallel)
		},
	}
	cf.register(cmd)
	cmd.Flags().StringVarP(&selection, "select", "s", "*", "which assets (see: freshet help selection)")
	cmd.Flags().StringVar(&from, "from", "", "first day, YYYY-MM-DD")
	cmd.Flags().StringVar(&to, "to", "", "last day, YYYY-MM-DD (inclusive)")
	cmd.Flags().StringVar(&now, "now", "", "plan as of this instant (RFC 3339) instead of now")
	cmd.Flags().StringVar(&mode, "mode", string(store.BackfillMissingAndStale), "missing_and_stale or all (rebuild everything)")
	cmd.Flags().IntVar(&maxParallel, "max-parallel", 4, "the backfill's steps running at once, across all workers")
	cmd.Flags().IntVarP(&parallel, "parallel", "j", 4, "steps this process runs at once")
	cmd.Flags().BoolVar(&detach, "detach", false, "only record the backfill; workers (freshet worker, freshet serve) run it")
	return cmd
}

// workBackfill works a backfill's runs in this process, one after the other.
func workBackfill(cmd *cobra.Command, q materialize.QueueStore, g *graph.Graph, defs *assets.Definitions, b *store.Backfill, parallel int) error {
	out := cmd.OutOrStdout()
	w := materialize.NewWorker(q, g, defs.Dir, &materialize.Executors{Connections: defs.Connections})
	defer w.Executors.Close()
	w.Parallel = parallel
	w.Logger = hclog.New(&hclog.LoggerOptions{Name: "worker", Output: cmd.ErrOrStderr(), Level: hclog.Warn})
	failed := false
	for _, id := range b.RunIDs {
		run, err := q.GetRun(cmd.Context(), id)
		if err != nil {
			return err
		}
		if !run.Status.Done() {
			steps, err := q.RunSteps(cmd.Context(), id)
			if err != nil {
				return err
			}
			run.Steps = steps
			if run, err = workRun(cmd.Context(), q, w, run, out, cmd.ErrOrStderr()); err != nil {
				return err
			}
		}
		failed = failed || run.Status != store.RunSucceeded
	}
	b, err := q.GetBackfill(cmd.Context(), b.ID)
	if err != nil {
		return err
	}
	writeBackfill(out, b)
	if failed {
		return exitError{code: 1}
	}
	return nil
}

func newBackfillStatusCmd() *cobra.Command {
	var (
		cf     catalogFlags
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "status [BACKFILL_ID]",
		Short: "Show one backfill's progress, or list the recent ones",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, q, err := openQueue(cmd, &cf)
			if err != nil {
				return err
			}
			defer p.store.Close()
			out := cmd.OutOrStdout()
			if len(args) == 1 {
				id, err := parseID("backfill", args[0])
				if err != nil {
					return err
				}
				b, err := q.GetBackfill(cmd.Context(), id)
				if err != nil {
					return err
				}
				if asJSON {
					return writeJSON(out, b)
				}
				writeBackfill(out, b)
				return nil
			}
			list, err := q.ListBackfills(cmd.Context(), 20)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(out, list)
			}
			if len(list) == 0 {
				fmt.Fprintln(out, "No backfills.")
				return nil
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "BACKFILL\tSTATUS\tCREATED\tWINDOW\tMODE\tDONE\tFAILED\tSELECTION")
			for _, b := range list {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s to %s\t%s\t%d/%d\t%d\t%s\n", b.ID, b.Status, b.CreatedAt.Local().Format(time.DateTime),
					orOpen(b.From), orOpen(b.To), b.Mode, b.Done, b.Targeted, b.Failed, b.Selection)
			}
			return tw.Flush()
		},
	}
	cf.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return cmd
}

func writeBackfill(w io.Writer, b *store.Backfill) {
	pct := 100.0
	if b.Targeted > 0 {
		pct = float64(b.Done) * 100 / float64(b.Targeted)
	}
	fmt.Fprintf(w, "backfill %s %s: %.0f%% — %d of %d partitions done, %d failed, %d in flight, %d waiting",
		b.ID, b.Status, pct, b.Done, b.Targeted, b.Failed, b.InFlight, b.Pending)
	if b.Canceled > 0 {
		fmt.Fprintf(w, ", %d canceled", b.Canceled)
	}
	fmt.Fprintf(w, "\n  select %q, %s to %s, mode %s, at most %d at once\n", b.Selection, orOpen(b.From), orOpen(b.To), b.Mode, b.MaxParallel)
	for _, id := range b.RunIDs {
		fmt.Fprintf(w, "  run %s (freshet run show %s)\n", id, id)
	}
}

func newBackfillResumeCmd() *cobra.Command {
	var (
		cf       catalogFlags
		parallel int
	)
	cmd := &cobra.Command{
		Use:   "resume BACKFILL_ID",
		Short: "Work an unfinished backfill in this process (after a restart, without workers)",
		Args:  oneArg("backfill ids: freshet backfill status"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseID("backfill", args[0])
			if err != nil {
				return err
			}
			p, err := openProject(cmd, &cf)
			if err != nil {
				return err
			}
			defer p.store.Close()
			q, err := queueOf(p.store)
			if err != nil {
				return err
			}
			b, err := q.GetBackfill(cmd.Context(), id)
			if err != nil {
				return err
			}
			return workBackfill(cmd, q, p.g, p.defs, b, parallel)
		},
	}
	cf.register(cmd)
	cmd.Flags().IntVarP(&parallel, "parallel", "j", 4, "steps this process runs at once")
	return cmd
}

func newBackfillCancelCmd() *cobra.Command {
	var cf catalogFlags
	cmd := &cobra.Command{
		Use:   "cancel BACKFILL_ID",
		Short: "Cancel a backfill: its steps not started are canceled, running ones stopped",
		Args:  oneArg("backfill ids: freshet backfill status"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseID("backfill", args[0])
			if err != nil {
				return err
			}
			p, q, err := openQueue(cmd, &cf)
			if err != nil {
				return err
			}
			defer p.store.Close()
			b, err := q.CancelBackfill(cmd.Context(), id)
			if err != nil {
				return err
			}
			writeBackfill(cmd.OutOrStdout(), b)
			return nil
		},
	}
	cf.register(cmd)
	return cmd
}
