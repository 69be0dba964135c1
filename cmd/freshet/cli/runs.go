package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"github.com/freshetdev/freshet/assets"
	"github.com/freshetdev/freshet/materialize"
	"github.com/freshetdev/freshet/store"
)

// openQueue opens the catalog of the definitions at cf (synced) and returns its
// queue; the caller closes it.
func openQueue(cmd *cobra.Command, cf *catalogFlags) (*project, materialize.QueueStore, error) {
	p, err := openProject(cmd, cf)
	if err != nil {
		return nil, nil, err
	}
	q, err := queueOf(p.store)
	if err != nil {
		p.store.Close()
		return nil, nil, err
	}
	return p, q, nil
}

func parseID(what, s string) (uuid.UUID, error) {
	id, err := uuid.Parse(s)
	if err != nil {
		return uuid.Nil, fmt.Errorf("%s %q is not an id (a UUID such as 0b0e7f5c-…)", what, s)
	}
	return id, nil
}

func newRunsCmd() *cobra.Command {
	var (
		cf       catalogFlags
		statuses []string
		asset    string
		limit    int
		asJSON   bool
	)
	cmd := &cobra.Command{
		Use:   "runs",
		Short: "List runs, newest first",
		Example: `  freshet runs -f examples/sales
  freshet runs -f examples/sales --status FAILED --asset sales/daily_report`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := store.RunQuery{Asset: assets.Key(asset), Limit: limit}
			for _, s := range statuses {
				st := store.RunStatus(strings.ToUpper(s))
				switch st {
				case store.RunQueued, store.RunRunning, store.RunSucceeded, store.RunFailed, store.RunCanceled:
				default:
					return fmt.Errorf("--status %q: want QUEUED, RUNNING, SUCCEEDED, FAILED or CANCELED", s)
				}
				q.Statuses = append(q.Statuses, st)
			}
			p, queue, err := openQueue(cmd, &cf)
			if err != nil {
				return err
			}
			defer p.store.Close()
			page, err := queue.ListRuns(cmd.Context(), q)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				return writeJSON(out, page.Runs)
			}
			if len(page.Runs) == 0 {
				fmt.Fprintln(out, "No runs.")
				return nil
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "RUN\tSTATUS\tTRIGGER\tCREATED\tTOOK\tSTEPS\tFAILED\tSELECTION")
			for _, r := range page.Runs {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\n", r.ID, r.Status, r.Trigger,
					r.CreatedAt.Local().Format("2006-01-02 15:04:05"), took(r.StartedAt, r.FinishedAt),
					sumCounts(r.Counts), r.Counts[store.StepFailed]+r.Counts[store.StepUpstreamFailed], r.Selection)
			}
			return tw.Flush()
		},
	}
	cf.register(cmd)
	cmd.Flags().StringSliceVar(&statuses, "status", nil, "only runs in these states (QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELED)")
	cmd.Flags().StringVar(&asset, "asset", "", "only runs with a step of this asset")
	cmd.Flags().IntVar(&limit, "limit", 20, "at most this many runs")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the runs as JSON")
	return cmd
}

func sumCounts(m map[store.StepStatus]int) int {
	n := 0
	for _, c := range m {
		n += c
	}
	return n
}

func took(start, end time.Time) string {
	switch {
	case start.IsZero():
		return "-"
	case end.IsZero():
		return time.Since(start).Round(time.Second).String() + "…"
	}
	return end.Sub(start).Round(time.Millisecond).String()
}

func newRunCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "run", Short: "Show or cancel one run"}
	var (
		cf     catalogFlags
		asJSON bool
	)
	show := &cobra.Command{
		Use:     "show RUN_ID",
		Short:   "Show a run with its steps and their attempts",
		Example: `  freshet run show 0b0e7f5c-3f7a-4c55-9d0e-2f1f6f0f9a11 -f examples/sales`,
		Args:    oneArg("run ids: freshet runs"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseID("run", args[0])
			if err != nil {
				return err
			}
			p, q, err := openQueue(cmd, &cf)
			if err != nil {
				return err
			}
			defer p.store.Close()
			run, err := q.GetRun(cmd.Context(), id)
			if err != nil {
				return err
			}
			steps, err := q.RunSteps(cmd.Context(), id)
			if err != nil {
				return err
			}
			if asJSON {
				run.Steps = steps
				return writeJSON(cmd.OutOrStdout(), run)
			}
			return writeRun(cmd.Context(), cmd.OutOrStdout(), q, run, steps)
		},
	}
	cf.register(show)
	show.Flags().BoolVar(&asJSON, "json", false, "print the run and its steps as JSON")

	var ccf catalogFlags
	cancel := &cobra.Command{
		Use:   "cancel RUN_ID",
		Short: "Cancel a run: steps not started are canceled, running ones are stopped",
		Args:  oneArg("run ids: freshet runs"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseID("run", args[0])
			if err != nil {
				return err
			}
			p, q, err := openQueue(cmd, &ccf)
			if err != nil {
				return err
			}
			defer p.store.Close()
			run, err := q.CancelRun(cmd.Context(), id)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "run %s: %s\n", run.ID, run.Status)
			return nil
		},
	}
	ccf.register(cancel)
	cmd.AddCommand(show, cancel)
	return cmd
}

func writeRun(ctx context.Context, w io.Writer, q store.Queue, run *store.Run, steps []store.Step) error {
	fmt.Fprintf(w, "run %s  %s  (%s", run.ID, run.Status, run.Trigger)
	if run.Selection != "" {
		fmt.Fprintf(w, ", select %q", run.Selection)
	}
	if run.From != "" || run.To != "" {
		fmt.Fprintf(w, ", %s to %s", orOpen(run.From), orOpen(run.To))
	}
	if run.Force {
		fmt.Fprint(w, ", forced")
	}
	fmt.Fprintf(w, ")\ncreated %s, took %s\n\n", run.CreatedAt.Local().Format(time.DateTime), took(run.StartedAt, run.FinishedAt))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STEP\tASSET\tPARTITIONS\tSTATUS\tATTEMPTS\tTOOK\tERROR")
	for _, s := range steps {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d/%d\t%s\t%s\n", s.ID, s.Asset, partitionSpan(s.Partitions), s.Status,
			s.Attempt, s.MaxAttempts, took(s.StartedAt, s.FinishedAt), oneLine(s.Error))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	// The attempts of steps that needed more than one, so retries are visible.
	for _, s := range steps {
		if s.Attempt < 2 {
			continue
		}
		attempts, err := q.Attempts(ctx, s.ID)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "\n%s %s:\n", s.Asset, partitionSpan(s.Partitions))
		for _, a := range attempts {
			code := ""
			if a.ExitCode != nil {
				code = fmt.Sprintf(" exit %d", *a.ExitCode)
			}
			fmt.Fprintf(w, "  attempt %d on %s: %s%s after %s %s\n", a.Attempt, a.Worker, a.Status, code,
				took(a.StartedAt, a.FinishedAt), oneLine(a.Error))
		}
	}
	return nil
}

func orOpen(day string) string {
	if day == "" {
		return "…"
	}
	return day
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func newLogsCmd() *cobra.Command {
	var (
		cf     catalogFlags
		follow bool
	)
	cmd := &cobra.Command{
		Use:   "logs STEP_ID",
		Short: "Print a step's log (stdout, stderr and Freshet's own lines)",
		Long: `Logs prints what a step's attempts wrote, line by line, with the stream and the
attempt. Only the tail of a very large log is kept; the first line says what was cut.
With --follow it keeps printing new lines until the step ends.`,
		Example: `  freshet logs 7d1c2f0e-… -f examples/sales --follow`,
		Args:    oneArg("step ids: freshet run show RUN_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseID("step", args[0])
			if err != nil {
				return err
			}
			p, q, err := openQueue(cmd, &cf)
			if err != nil {
				return err
			}
			defer p.store.Close()
			if _, err := q.GetStep(cmd.Context(), id); err != nil {
				return fmt.Errorf("step %s: %w", id, err)
			}
			return printLog(cmd.Context(), cmd.OutOrStdout(), q, id, follow)
		},
	}
	cf.register(cmd)
	cmd.Flags().BoolVarP(&follow, "follow", "F", false, "keep printing new lines until the step ends")
	return cmd
}

func printLog(ctx context.Context, w io.Writer, q store.Queue, id uuid.UUID, follow bool) error {
	var after int64
	toldCut := false
	for {
		page, err := q.StepLog(ctx, id, after, 1000)
		if err != nil {
			return err
		}
		if page.DroppedLines > 0 && !toldCut {
			fmt.Fprintf(w, "[freshet] the first %s (%d bytes) were cut to keep the log within its cap\n",
				pluralize(int(page.DroppedLines), "line"), page.DroppedBytes)
			toldCut = true
		}
		for _, l := range page.Lines {
			fmt.Fprintf(w, "%s #%d %-6s %s\n", l.At.Local().Format("15:04:05.000"), l.Attempt, l.Stream, l.Text)
		}
		after = page.Next
		if len(page.Lines) == 1000 {
			continue
		}
		if !follow {
			return nil
		}
		step, err := q.GetStep(ctx, id)
		if err != nil {
			return err
		}
		if step.Status.Done() {
			// One last read: lines written just before the step ended.
			page, err := q.StepLog(ctx, id, after, 10000)
			if err != nil {
				return err
			}
			for _, l := range page.Lines {
				fmt.Fprintf(w, "%s #%d %-6s %s\n", l.At.Local().Format("15:04:05.000"), l.Attempt, l.Stream, l.Text)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(300 * time.Millisecond):
		}
	}
}
