package cli

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/spf13/cobra"

	"github.com/freshetdev/freshet/materialize"
)

func newWorkerCmd() *cobra.Command {
	var (
		cf        catalogFlags
		parallel  int
		name      string
		lease     time.Duration
		drain     time.Duration
		logFormat string
	)
	cmd := &cobra.Command{
		Use:   "worker",
		Short: "Run steps of any run from the catalog until stopped",
		Long: `Worker claims ready steps from the catalog and runs them, --parallel at a time,
until it gets SIGINT or SIGTERM. Start any number of workers, on any machines, on
one PostgreSQL catalog: each step runs on one of them, under a lease its worker
renews; if a worker dies, its steps go back to the others when their lease expires.
On stop (SIGINT, SIGTERM) a worker claims nothing more, gives its running steps
--drain to finish (0: none), then stops those still running and hands them back
at once.`,
		Example: `  freshet worker -f examples/sales --db postgres://freshet@db.internal/freshet --parallel 8`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if parallel < 1 {
				return fmt.Errorf("--parallel %d: must be 1 or more", parallel)
			}
			logger, err := newLogger(cmd, "worker", logFormat)
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
			w := materialize.NewWorker(q, p.g, p.defs.Dir, &materialize.Executors{Connections: p.defs.Connections})
			defer w.Executors.Close()
			w.Parallel, w.Lease, w.Drain, w.Logger = parallel, lease, drain, logger
			if name != "" {
				w.Name = name
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			logger.Info("worker started", "parallel", parallel, "catalog", redact(catalogURL(cf.db, p.defs.Dir)))
			if err := w.Run(ctx); err != nil && ctx.Err() == nil {
				return err
			}
			logger.Info("worker stopped")
			return nil
		},
	}
	cf.register(cmd)
	cmd.Flags().IntVarP(&parallel, "parallel", "j", 4, "steps to run at once")
	cmd.Flags().StringVar(&name, "name", "", "worker name in leases and attempts (default host:pid:random)")
	cmd.Flags().DurationVar(&lease, "lease", materialize.DefaultLease, "how long a claimed step stays this worker's without a heartbeat")
	cmd.Flags().DurationVar(&drain, "drain", 0, "how long running steps get to finish on stop before they are handed back")
	cmd.Flags().StringVar(&logFormat, "log-format", "text", "log format: text or json")
	return cmd
}

func newLogger(cmd *cobra.Command, name, format string) (hclog.Logger, error) {
	var json bool
	switch format {
	case "text":
	case "json":
		json = true
	default:
		return nil, fmt.Errorf("--log-format %q: want text or json", format)
	}
	return hclog.New(&hclog.LoggerOptions{Name: name, Output: cmd.ErrOrStderr(), JSONFormat: json, Level: hclog.Info}), nil
}
