package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/freshetdev/freshet/materialize"
)

func newPlanCmd() *cobra.Command {
	var (
		cf                       catalogFlags
		selection, from, to, now string
		asJSON                   bool
	)
	cmd := &cobra.Command{
		Use:   "plan",
		Short: "Show what would be materialized to make a selection fresh",
		Long: `Plan lists, per asset, the partitions that are missing or stale in the selection
and window, with why, and every partition they need that is not fresh, in the order
they would run. Partitions that cannot be built are listed as blocked, with the reason.

The window (--from, --to, inclusive dates) bounds the targets: a partition is in it
when its window starts on one of those days in its asset's timezone. Without a window
every partition up to the newest complete one is a target.`,
		Example: `  freshet plan -f examples/sales
  freshet plan -f examples/sales --select '+sales/daily_report' --from 2026-01-01 --to 2026-01-07
  freshet plan -f examples/sales --select 'group:sales' --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			win, err := parseWindow(from, to, now)
			if err != nil {
				return err
			}
			engine, st, err := openEngine(cmd, &cf, func() time.Time { return win.now })
			if err != nil {
				return err
			}
			defer st.Close()
			plan, err := engine.Plan(cmd.Context(), materialize.PlanRequest{Selection: selection, From: from, To: to})
			if err != nil {
				return err
			}
			if asJSON {
				return plan.WriteJSON(cmd.OutOrStdout())
			}
			return plan.WriteText(cmd.OutOrStdout())
		},
	}
	cf.register(cmd)
	cmd.Flags().StringVarP(&selection, "select", "s", "*", "which assets: keys, group:, tag:, owner:, +key, key+ (see: freshet help selection)")
	cmd.Flags().StringVar(&from, "from", "", "first day of the window, YYYY-MM-DD")
	cmd.Flags().StringVar(&to, "to", "", "last day of the window, YYYY-MM-DD (inclusive)")
	cmd.Flags().StringVar(&now, "now", "", "plan as of this instant (RFC 3339) instead of now")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the plan as JSON")
	return cmd
}

// parseNow parses --now: an RFC 3339 instant, or the current time when empty.
func parseNow(s string) (time.Time, error) {
	if s == "" {
		return time.Now(), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("--now: %q is not an RFC 3339 time such as 2026-01-08T06:00:00Z", s)
	}
	return t, nil
}
