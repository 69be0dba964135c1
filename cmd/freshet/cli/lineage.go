package cli

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/freshetdev/freshet/assets"
	"github.com/freshetdev/freshet/lineage"
)

func newLineageCmd() *cobra.Command {
	var (
		path                 string
		upstream, downstream bool
		depth                int
		asJSON               bool
	)
	cmd := &cobra.Command{
		Use:   "lineage KEY",
		Short: "Show what an asset is built from and what is built from it",
		Args:  oneArg("asset keys: freshet status"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if upstream && downstream {
				return fmt.Errorf("--upstream and --downstream exclude each other; give neither for both directions")
			}
			_, g, err := loadGraph(cmd, path)
			if err != nil {
				return err
			}
			dir := lineage.Both
			if upstream {
				dir = lineage.Upstream
			} else if downstream {
				dir = lineage.Downstream
			}
			l, err := lineage.Traverse(g, assets.Key(args[0]), dir, depth)
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(l)
			}
			return l.WriteText(cmd.OutOrStdout())
		},
	}
	definitionsFlag(cmd, &path)
	cmd.Flags().BoolVar(&upstream, "upstream", false, "only what KEY is built from")
	cmd.Flags().BoolVar(&downstream, "downstream", false, "only what is built from KEY")
	cmd.Flags().IntVar(&depth, "depth", -1, "how many dependency levels to follow (-1: all)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
