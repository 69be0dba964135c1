package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	rungroup "github.com/oklog/run"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/freshetdev/freshet/gql"
	"github.com/freshetdev/freshet/materialize"
	"github.com/freshetdev/freshet/ui"
)

// authTokenEnv names the environment variable that sets --auth-token.
const authTokenEnv = "FRESHET_AUTH_TOKEN"

func newServeCmd() *cobra.Command {
	var (
		cf              catalogFlags
		addr, token     string
		parallel        int
		logFormat       string
		noIntrospection bool
		shutdownGrace   time.Duration
		drain           time.Duration
		freshEvery      time.Duration
		leaderTTL       time.Duration
		schedulePoll    time.Duration
	)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the GraphQL API over the catalog and run steps",
		Long: `Serve loads the definitions, syncs them into the catalog and serves the web UI
at /, the GraphQL API at /graphql (POST with a JSON body; GET for queries only),
/healthz, /readyz and /metrics. It also runs --parallel steps at a time, like 'freshet
worker', so a run launched through the API (materializeStale, launchBackfill)
progresses without any other process.

It binds 127.0.0.1 by default. With --auth-token (or $FRESHET_AUTH_TOKEN) every
API request needs "Authorization: Bearer <token>"; binding any other address
without a token is refused. SIGHUP loads the definitions again (as the
reloadDefinitions mutation does); SIGINT or SIGTERM stops it: the API first, then
the worker, whose steps in progress get --drain to finish before they are stopped
and handed back for another worker.`,
		Example: `  freshet serve -f examples/sales
  FRESHET_AUTH_TOKEN=s3cret freshet serve -f examples/sales --db postgres://freshet@db/freshet --addr 0.0.0.0:3000`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if parallel < 1 {
				return fmt.Errorf("--parallel %d: must be 1 or more", parallel)
			}
			if token == "" {
				token = os.Getenv(authTokenEnv)
			}
			if err := checkBind(addr, token); err != nil {
				return err
			}
			logger, err := newLogger(cmd, "serve", logFormat)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			engine, st, err := openEngine(cmd, &cf, nil)
			if err != nil {
				return err
			}
			defer st.Close()
			q := engine.Store()
			proj := engine.Project()
			dir := proj.Defs.Dir

			w := materialize.NewWorker(q, proj.Graph, proj.Defs.Dir, &materialize.Executors{Connections: proj.Defs.Connections})
			defer w.Executors.Close()
			w.Name = materialize.DefaultWorkerName() // the leader lease names this process too
			w.Parallel, w.Drain, w.Logger = parallel, drain, logger.Named("worker")
			engine.OnReload(func(p *materialize.Project) {
				w.SetGraph(p.Graph)
				w.Executors.SetConnections(p.Defs.Connections)
			})
			// The leader (one of the processes serving the catalog) runs the
			// schedules and the freshness checks.
			leader := &materialize.Leader{Store: q, Holder: w.Name, TTL: leaderTTL, Logger: logger.Named("leader")}
			scheduler := &materialize.Scheduler{Engine: engine, Leader: leader, Store: q, Poll: schedulePoll, Logger: logger.Named("scheduler")}
			checker := &materialize.FreshnessChecker{Engine: engine, Leader: leader, Interval: freshEvery, Logger: logger.Named("freshness")}

			reg := prometheus.NewRegistry()
			reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
			engine.Metrics = materialize.NewMetrics(reg, q)
			w.Metrics = engine.Metrics
			resolver := &gql.Resolver{Engine: engine, Logger: logger.Named("api")}
			handler := gql.NewHandler(resolver, gql.Options{
				AuthToken:       token,
				NoIntrospection: noIntrospection,
				Metrics:         promhttp.HandlerFor(reg, promhttp.HandlerOpts{}),
				UI:              ui.Handler(),
				Ready: func(ctx context.Context) error {
					_, _, err := st.SchemaVersion(ctx)
					return err
				},
			})
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return fmt.Errorf("listen on %s: %w", addr, err)
			}
			httpServer := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}

			// The components, started together and stopped in reverse order of
			// need: when one ends (a signal, a failure), the API stops taking
			// requests first, then the worker hands back its steps.
			var g rungroup.Group
			{
				sigs := make(chan os.Signal, 2)
				signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
				done := make(chan struct{})
				g.Add(func() error {
					for {
						select {
						case s := <-sigs:
							if s == syscall.SIGHUP {
								if p, err := engine.Reload(ctx); err != nil {
									logger.Error("reload definitions (SIGHUP): the served ones stay", "error", err)
								} else {
									logger.Info("definitions reloaded (SIGHUP)", "assets", p.Graph.Len())
								}
								continue
							}
							logger.Info("stopping", "signal", s.String())
							return nil
						case <-done:
							return nil
						}
					}
				}, func(error) {
					signal.Stop(sigs)
					close(done)
				})
			}
			{
				g.Add(func() error {
					logger.Info("serving", "addr", ln.Addr().String(), "graphql", "http://"+ln.Addr().String()+"/graphql",
						"catalog", redact(catalogURL(cf.db, dir)), "auth", token != "")
					if err := httpServer.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
						return fmt.Errorf("serve http: %w", err)
					}
					return nil
				}, func(error) {
					sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
					defer cancel()
					if err := httpServer.Shutdown(sctx); err != nil {
						logger.Warn("http shutdown", "error", err)
						httpServer.Close()
					}
				})
			}
			for _, c := range []struct {
				name string
				run  func(context.Context) error
			}{{"worker", w.Run}, {"leader election", leader.Run}, {"scheduler", scheduler.Run}, {"freshness checker", checker.Run}} {
				cctx, stop := context.WithCancel(context.WithoutCancel(ctx))
				g.Add(func() error {
					if err := c.run(cctx); err != nil && cctx.Err() == nil {
						return fmt.Errorf("%s: %w", c.name, err)
					}
					return nil
				}, func(error) { stop() })
			}
			err = g.Run()
			logger.Info("stopped")
			return err
		},
	}
	cf.register(cmd)
	cmd.Flags().StringVar(&addr, "addr", "127.0.0.1:3000", "address to listen on (host:port)")
	cmd.Flags().StringVar(&token, "auth-token", "", "require Authorization: Bearer TOKEN on every API request (default $"+authTokenEnv+")")
	cmd.Flags().IntVarP(&parallel, "parallel", "j", 4, "steps to run at once in this process")
	cmd.Flags().StringVar(&logFormat, "log-format", "text", "log format: text or json")
	cmd.Flags().BoolVar(&noIntrospection, "no-introspection", false, "turn GraphQL introspection off")
	cmd.Flags().DurationVar(&shutdownGrace, "shutdown-grace", 10*time.Second, "how long requests in progress get to finish on stop")
	cmd.Flags().DurationVar(&drain, "drain", 30*time.Second, "how long steps in progress get to finish on stop before they are handed back")
	cmd.Flags().DurationVar(&freshEvery, "freshness-interval", materialize.DefaultFreshnessInterval, "how often the leader checks the freshness policies")
	cmd.Flags().DurationVar(&leaderTTL, "leader-lease", materialize.DefaultLeaderTTL, "how long the leader's lease lasts unrenewed: the longest a takeover waits")
	cmd.Flags().DurationVar(&schedulePoll, "schedule-poll", time.Second, "how often the leader looks for due schedule ticks")
	return cmd
}

// checkBind refuses to serve the API on an address other machines can reach
// without a token.
func checkBind(addr, token string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--addr %q: want host:port, such as 127.0.0.1:3000 (%v)", addr, err)
	}
	if token != "" || host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	if host == "" {
		host = "every interface"
	}
	return fmt.Errorf("--addr %s binds %s, which other machines can reach: set --auth-token (or $%s) to require a token, or bind 127.0.0.1", addr, host, authTokenEnv)
}
