package cli

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
)

func newMigrateCmd() *cobra.Command {
	var cf catalogFlags
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Bring the catalog database's schema up to date",
		Long: `Migrate applies the catalog schema's pending migrations and prints them. Every
command does this when it opens the catalog; run it on its own to upgrade a shared
PostgreSQL catalog before starting new versions of Freshet. Several processes may
migrate at once: one applies, the others wait and find nothing left to do.

It reads no definitions: -f only locates the default embedded catalog.`,
		Example: `  freshet migrate --db postgres://freshet@db.internal/freshet
  freshet migrate -f examples/sales`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir := definitionsDir(cf.path)
			st, err := openStore(cmd.Context(), cf.db, dir, false)
			if err != nil {
				return err
			}
			defer st.Close()
			applied, err := st.Migrate(cmd.Context())
			if err != nil {
				return err
			}
			for _, m := range applied {
				fmt.Fprintf(cmd.OutOrStdout(), "applied %d %s\n", m.Version, m.Name)
			}
			current, _, err := st.SchemaVersion(cmd.Context())
			if err != nil {
				return err
			}
			where := redact(catalogURL(cf.db, dir))
			if len(applied) == 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "%s: schema is up to date (version %d)\n", where, current)
			} else {
				fmt.Fprintf(cmd.OutOrStdout(), "%s: schema now at version %d\n", where, current)
			}
			return nil
		},
	}
	cf.register(cmd)
	return cmd
}

// definitionsDir returns the folder of the definitions at path (a file or a folder)
// without reading them: where the default embedded catalog lives.
func definitionsDir(path string) string {
	if info, err := os.Stat(path); err == nil && !info.IsDir() {
		return filepath.Dir(path)
	}
	return path
}
