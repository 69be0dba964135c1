package cli

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"github.com/freshetdev/freshet/assets"
	"github.com/freshetdev/freshet/materialize"
	"github.com/freshetdev/freshet/store"
)

func newFreshnessCmd() *cobra.Command {
	var (
		cf     catalogFlags
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "freshness",
		Short: "Show every asset's freshness against its policy, worst first",
		Long: `Freshness evaluates every asset's freshness policy (max_lag, warn_lag or a
deadline) now, against the catalog, and lists the assets worst first: FAIL, WARN,
UNKNOWN, PASS, the most late first, with the last change the leader's checker
recorded. It exits 0 whatever the statuses: it reports, it does not judge.`,
		Example: `  freshet freshness -f examples/sales
  freshet freshness -f examples/sales --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, q, err := openQueue(cmd, &cf)
			if err != nil {
				return err
			}
			defer p.store.Close()
			cat, err := materialize.LoadCatalog(cmd.Context(), p.store, p.g)
			if err != nil {
				return err
			}
			evals, err := materialize.EvaluateFreshness(cmd.Context(), q, p.g, cat.State(), time.Now())
			if err != nil {
				return err
			}
			latest, err := q.LatestFreshness(cmd.Context())
			if err != nil {
				return err
			}
			materialize.SortWorstFirst(evals)
			type row struct {
				Asset              string     `json:"asset"`
				Status             string     `json:"status"`
				Policy             string     `json:"policy"`
				LagSeconds         *float64   `json:"lag_seconds,omitempty"`
				LastMaterializedAt *time.Time `json:"last_materialized_at,omitempty"`
				Reason             string     `json:"reason"`
				ChangedAt          *time.Time `json:"changed_at,omitempty"`
			}
			rows := make([]row, len(evals))
			for i, e := range evals {
				key := p.g.Asset(e.Asset).Key
				r := row{Asset: string(key), Status: string(e.Status), Policy: e.Policy, Reason: e.Reason}
				if e.Lag > 0 {
					lag := e.Lag.Seconds()
					r.LagSeconds = &lag
				}
				if !e.LastMaterializedAt.IsZero() {
					r.LastMaterializedAt = &e.LastMaterializedAt
				}
				if ch, ok := latest[key]; ok && ch.Status == r.Status {
					at := ch.At
					r.ChangedAt = &at
				}
				rows[i] = r
			}
			out := cmd.OutOrStdout()
			if asJSON {
				return writeJSON(out, rows)
			}
			if len(rows) == 0 {
				fmt.Fprintln(out, "No asset has a freshness policy (freshness: {max_lag: 26h} or {deadline: {cron: \"0 9 * * *\"}}).")
				return nil
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "STATUS\tASSET\tPOLICY\tSINCE\tREASON")
			for _, r := range rows {
				since := "-"
				if r.ChangedAt != nil {
					since = r.ChangedAt.UTC().Format("2006-01-02 15:04")
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Status, r.Asset, r.Policy, since, r.Reason)
			}
			return tw.Flush()
		},
	}
	cf.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the board as JSON")
	return cmd
}

func newSchedulesCmd() *cobra.Command {
	var cf catalogFlags
	cmd := &cobra.Command{
		Use:   "schedules",
		Short: "List the schedules with their last and next ticks",
		Long: `Schedules lists the schedules of the definitions: cron and timezone, selection,
the last tick the leader recorded (and what it did) and the next one. Ticks fire in
'freshet serve', on the one process that leads.`,
		Example: `  freshet schedules -f examples/sales`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, q, err := openQueue(cmd, &cf)
			if err != nil {
				return err
			}
			defer p.store.Close()
			last, err := q.LastTicks(cmd.Context())
			if err != nil {
				return err
			}
			return writeSchedules(cmd.OutOrStdout(), p.defs.Schedules, last, time.Now())
		},
	}
	cf.register(cmd)
	return cmd
}

func writeSchedules(w io.Writer, scheds []assets.Schedule, last map[string]store.Tick, now time.Time) error {
	if len(scheds) == 0 {
		fmt.Fprintln(w, "No schedules in the definitions.")
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tCRON\tSELECT\tLAST TICK\tNEXT TICK")
	for _, s := range scheds {
		cron, err := s.ParseCron()
		next := "-"
		if err != nil {
			next = "invalid: " + err.Error()
		} else if t := cron.Next(now); !t.IsZero() {
			next = t.In(cron.Location()).Format("2006-01-02 15:04 MST")
		}
		prev := "never"
		if t, ok := last[s.Name]; ok {
			prev = t.At.UTC().Format("2006-01-02 15:04 UTC") + " " + string(t.Status)
			switch {
			case t.RunID != uuid.Nil:
				prev += " run " + t.RunID.String()
			case t.Reason != "":
				prev += ": " + t.Reason
			}
		}
		expr := s.Cron
		if cron != nil {
			expr = cron.String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.Name, expr, s.Select, prev, next)
	}
	return tw.Flush()
}
