package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newVerifyCmd() *cobra.Command {
	var cf catalogFlags
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Check that the catalog's partition state agrees with its event log",
		Long: `Verify replays the whole event log and compares the result with the partition
state the catalog keeps, printing every disagreement; it exits 1 when there is any.
A healthy catalog has none: the state is written in the transaction that appends
the events it derives from. It reads no definitions: -f only locates the default
embedded catalog.`,
		Example: `  freshet verify -f examples/sales
  freshet verify --db postgres://freshet@db.internal/freshet`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir := definitionsDir(cf.path)
			st, err := openStore(cmd.Context(), cf.db, dir, true)
			if err != nil {
				return err
			}
			defer st.Close()
			bad, err := st.Verify(cmd.Context())
			if err != nil {
				return err
			}
			seq, err := st.Watermark(cmd.Context())
			if err != nil {
				return err
			}
			where := redact(catalogURL(cf.db, dir))
			for _, b := range bad {
				fmt.Fprintln(cmd.ErrOrStderr(), b)
			}
			if len(bad) > 0 {
				fmt.Fprintf(cmd.ErrOrStderr(), "freshet: %s: %s at seq %d\n", where, pluralize(len(bad), "inconsistency"), seq)
				return exitError{1}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: consistent at seq %d: the partition state agrees with the event log\n", where, seq)
			return nil
		},
	}
	cf.register(cmd)
	return cmd
}
