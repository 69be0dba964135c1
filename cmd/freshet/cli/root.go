// Package cli implements the freshet command line: one cobra command per file,
// each a thin layer that loads the definitions, calls the packages that do the work
// and prints their results for a person (or as JSON for a program).
package cli

import (
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"

	"github.com/freshetdev/freshet/assets"
	"github.com/freshetdev/freshet/graph"
)

// Version is the release version, set at build time with
// -ldflags "-X github.com/freshetdev/freshet/cmd/freshet/cli.Version=v1.2.3".
var Version = "dev"

// exitError carries an exit code for errors that were already reported in full.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// Main runs the command line with args and returns the process exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	root := newRoot(stdout, stderr)
	root.SetArgs(args)
	err := root.Execute()
	var exit exitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &exit):
		return exit.code
	default:
		fmt.Fprintf(stderr, "freshet: %v\n", err)
		return 1
	}
}

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "freshet",
		Short: "Freshet keeps a catalog of data assets and materializes what is missing or stale",
		Long: `Freshet keeps a catalog of your data assets (tables, files, models), works out
which date partitions are missing or stale, and materializes them in dependency order.

Definitions live in freshet.yaml (or a folder of *.yaml files): see examples/sales.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(
		newValidateCmd(),
		newLineageCmd(),
		newPlanCmd(),
		newMaterializeCmd(),
		newObserveCmd(),
		newBackfillCmd(),
		newRunsCmd(),
		newRunCmd(),
		newLogsCmd(),
		newWorkerCmd(),
		newServeCmd(),
		newSchedulesCmd(),
		newFreshnessCmd(),
		newStatusCmd(),
		newReportCmd(),
		newHistoryCmd(),
		newMigrateCmd(),
		newVerifyCmd(),
		newVersionCmd(),
		&cobra.Command{Use: "selection", Short: "How to select assets (--select)", Long: selectionHelp},
	)
	return root
}

// definitionsFlag adds the -f flag every command that reads definitions takes.
func definitionsFlag(cmd *cobra.Command, path *string) {
	cmd.Flags().StringVarP(path, "file", "f", ".", "definitions: a YAML file, or a folder of *.yaml files")
}

// loadGraph loads and validates the definitions at path and builds their graph.
// Definition errors are printed, one per line, to stderr, and reported as exit 1.
func loadGraph(cmd *cobra.Command, path string) (*assets.Definitions, *graph.Graph, error) {
	defs, err := assets.Load(path)
	if err != nil {
		var errs assets.Errors
		if errors.As(err, &errs) {
			fmt.Fprintln(cmd.ErrOrStderr(), errs.Error())
			fmt.Fprintf(cmd.ErrOrStderr(), "freshet: %s in %s\n", pluralize(len(errs), "error"), path)
			return nil, nil, exitError{1}
		}
		return nil, nil, err
	}
	g, err := graph.New(defs)
	if err != nil {
		return nil, nil, err
	}
	return defs, g, nil
}

// pluralize writes "1 asset", "2 assets", "2 dependencies".
func pluralize(n int, word string) string {
	switch {
	case n == 1:
		return "1 " + word
	case strings.HasSuffix(word, "y"):
		return fmt.Sprintf("%d %sies", n, strings.TrimSuffix(word, "y"))
	}
	return fmt.Sprintf("%d %ss", n, word)
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			goVersion := "unknown"
			if info, ok := debug.ReadBuildInfo(); ok {
				goVersion = info.GoVersion
			}
			fmt.Fprintf(cmd.OutOrStdout(), "freshet %s (%s)\n", Version, goVersion)
			return nil
		},
	}
}

const selectionHelp = `A selection names assets, as dbt users know it:

  *                     every asset
  sales/raw_orders      one asset by key; sales/* matches keys by pattern
  group:sales           assets of a group; also tag:pii, owner:team:data-eng
  +sales/daily_report   the asset and everything upstream of it; 2+key: two levels
  sales/raw_orders+     the asset and everything downstream of it; key+1: one level
  a b                   union (space)
  tag:pii,group:sales   intersection (comma, no spaces)

An exact key that matches nothing is an error; a group, tag, owner or pattern that
matches nothing selects nothing.`

// oneArg accepts exactly one argument and, when it is missing or there are more,
// says so with the command's usage line and where to find a value (hint).
func oneArg(hint string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		usage := strings.TrimSuffix(cmd.UseLine(), " [flags]")
		switch {
		case len(args) == 0:
			return fmt.Errorf("missing argument: %s (%s)", usage, hint)
		case len(args) > 1:
			return fmt.Errorf("one argument, not %d (%s): %s", len(args), strings.Join(args, " "), usage)
		}
		return nil
	}
}
