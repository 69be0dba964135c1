package cli

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"github.com/freshetdev/freshet/assets"
	"github.com/freshetdev/freshet/lineage"
	"github.com/freshetdev/freshet/materialize"
	"github.com/freshetdev/freshet/store"
)

func newObserveCmd() *cobra.Command {
	var (
		cf         catalogFlags
		selection  string
		partitions []string
	)
	cmd := &cobra.Command{
		Use:   "observe",
		Short: "Run the observe command of source assets and record what they report",
		Long: `Observe runs the 'observe' compute of each selected source asset and records an
observation with the data version it reports: the data_version of its FRESHET_OUTPUT
file, or else the last line it printed. When the version differs from the last one
recorded, everything downstream becomes stale (UPSTREAM_CHANGED).

A partitioned source is observed for each --partition given.`,
		Example: `  freshet observe -f examples/sales
  freshet observe -f examples/sales --select sales/exchange_rates`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := openProject(cmd, &cf)
			if err != nil {
				return err
			}
			defer p.store.Close()
			selected, err := lineage.Select(p.g, selection)
			if err != nil {
				return err
			}
			ex := &materialize.Executors{Connections: p.defs.Connections}
			defer ex.Close()
			out := cmd.OutOrStdout()
			observed := 0
			for a := range p.g.Len() {
				asset := p.g.Asset(a)
				if !selected[a] || !asset.IsSource() || asset.Observe == nil {
					continue
				}
				keys := []string{""}
				if asset.Partitions != nil {
					if len(partitions) == 0 {
						fmt.Fprintf(out, "%s: partitioned source, skipped (give --partition)\n", asset.Key)
						continue
					}
					keys = partitions
				}
				for _, key := range keys {
					ev, err := observe(cmd.Context(), ex, p.defs.Dir, asset, key)
					if err != nil {
						return fmt.Errorf("observe %s %s: %w", asset.Key, key, err)
					}
					recorded, err := p.store.Append(cmd.Context(), []store.Event{ev})
					if err != nil {
						return fmt.Errorf("record the observation of %s: %w", asset.Key, err)
					}
					changed := "unchanged"
					if recorded[0].DataChanged {
						changed = "changed"
					}
					fmt.Fprintf(out, "%s%s: data version %s (%s)\n", asset.Key, keySuffix(key), recorded[0].DataVersion, changed)
					observed++
				}
			}
			if observed == 0 {
				fmt.Fprintln(out, "No source with an observe command in the selection.")
			}
			return nil
		},
	}
	cf.register(cmd)
	cmd.Flags().StringVarP(&selection, "select", "s", "*", "which assets (see: freshet help selection)")
	cmd.Flags().StringSliceVar(&partitions, "partition", nil, "partitions of partitioned sources to observe")
	return cmd
}

func keySuffix(key string) string {
	if key == "" {
		return ""
	}
	return " " + key
}

// lastLine keeps the last non-empty line a command printed to stdout.
type lastLine struct {
	mu   sync.Mutex
	line string
}

func (l *lastLine) Line(stream store.LogStream, text string) {
	if stream != store.Stdout || strings.TrimSpace(text) == "" {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.line = strings.TrimSpace(text)
}

func observe(ctx context.Context, ex *materialize.Executors, dir string, asset *assets.Asset, key string) (store.Event, error) {
	e, err := ex.For(asset.Observe)
	if err != nil {
		return store.Event{}, err
	}
	inv := materialize.Invocation{Asset: asset, Partitions: []string{key}, RunID: uuid.Nil, StepID: uuid.New(), Attempt: 1, Dir: dir}
	if p := asset.Partitions; p != nil {
		i, err := p.Index(key)
		if err != nil {
			return store.Event{}, err
		}
		inv.Start, inv.End = p.Window(i)
	}
	if asset.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, asset.Timeout)
		defer cancel()
	}
	var last lastLine
	out, err := e.Execute(ctx, inv, &last)
	if err != nil {
		return store.Event{}, err
	}
	version := out.DataVersion
	if version == "" {
		version = last.line
	}
	if version == "" {
		return store.Event{}, fmt.Errorf("the observe command reported no data version (write it to $FRESHET_OUTPUT or print it)")
	}
	return store.Event{Kind: store.Observation, Asset: asset.Key, Partition: key, At: time.Now(), DataVersion: version, Metadata: out.Metadata}, nil
}
