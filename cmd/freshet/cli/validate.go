package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/freshetdev/freshet/lineage"
)

func newValidateCmd() *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "validate",
		Short: "Check definitions and report every problem at once",
		Long: `Validate loads the definitions and reports every problem found, one per line,
as FILE:LINE:COL: message. It exits 1 when there is any.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			defs, g, err := loadGraph(cmd, path)
			if err != nil {
				return err
			}
			// Schedules name selections; check them against the graph too.
			bad := 0
			for i, s := range defs.Schedules {
				if _, err := lineage.Select(g, s.Select); err != nil {
					fmt.Fprintf(cmd.ErrOrStderr(), "%s: schedules[%d].select: %v\n", path, i, err)
					bad++
				}
			}
			if bad > 0 {
				return exitError{1}
			}
			sources := 0
			for _, a := range defs.Assets {
				if a.IsSource() {
					sources++
				}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: valid: %s (%d built, %s), %s, %s\n", path,
				pluralize(len(defs.Assets), "asset"), len(defs.Assets)-sources, pluralize(sources, "source"),
				pluralize(g.NumEdges(), "dependency"), pluralize(len(defs.Schedules), "schedule"))
			return nil
		},
	}
	definitionsFlag(cmd, &path)
	return cmd
}
