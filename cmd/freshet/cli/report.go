package cli

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/freshetdev/freshet/assets"
	"github.com/freshetdev/freshet/materialize"
	"github.com/freshetdev/freshet/store"
)

func newReportCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "report",
		Short: "Record materializations or observations made outside Freshet",
		Long: `Report records in the catalog that an asset was built (materialization) or that a
source asset was seen (observation) by something other than Freshet. A report reads
"now": its inputs are taken to be the catalog as it stands when it is recorded.`,
	}
	cmd.AddCommand(newReportKindCmd(store.Materialization), newReportKindCmd(store.Observation))
	return cmd
}

func newReportKindCmd(kind store.EventKind) *cobra.Command {
	var (
		cf                                     catalogFlags
		key, from, to, dataVersion, meta, when string
		partitions                             []string
	)
	what := map[store.EventKind]string{
		store.Materialization: "that an asset's partitions were built outside Freshet",
		store.Observation:     "a data version seen on a source asset's partitions",
	}[kind]
	cmd := &cobra.Command{
		Use:   string(kind) + " [ASSET]",
		Short: "Record " + what,
		Long: `Record ` + what + `. Name partitions with --partition (repeat it) or a
range of days with --from and --to (every partition whose window starts on those
days, up to the newest complete one); an unpartitioned asset needs neither. All
are recorded in one transaction: either every one is, or none.

The data version identifies the data: reporting the same version again does not
make anything downstream stale; a new one does. A materialization without one gets
a fresh unique version.`,
		Example: `  freshet report materialization -f examples/sales --asset sales/raw_orders --partition 2026-01-05 --data-version 9f1c2e
  freshet report materialization -f examples/sales --asset sales/raw_orders --from 2026-01-01 --to 2026-01-07
  freshet report observation -f examples/sales sales/exchange_rates --data-version 2026-01-08T04:00Z`,
		// The asset as an argument, as lineage and history take it, or --asset.
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) > 1 {
				return fmt.Errorf("one asset per report, not %d: %s", len(args), strings.Join(args, ", "))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				if key != "" && key != args[0] {
					return fmt.Errorf("two assets: %s and --asset %s (name one)", args[0], key)
				}
				key = args[0]
			}
			if key == "" {
				return fmt.Errorf("which asset? name it: freshet report %s ASSET (or --asset ASSET)", kind)
			}
			var metadata json.RawMessage
			if meta != "" {
				metadata = json.RawMessage(meta)
			}
			if kind == store.Observation && dataVersion == "" {
				return fmt.Errorf("an observation needs --data-version")
			}
			at, err := parseNow(when)
			if err != nil {
				return err
			}
			fromDay, err := materialize.ParseDay("--from", from)
			if err != nil {
				return err
			}
			toDay, err := materialize.ParseDay("--to", to)
			if err != nil {
				return err
			}
			p, err := openProject(cmd, &cf)
			if err != nil {
				return err
			}
			defer p.store.Close()
			asset := p.defs.Asset(assets.Key(key))
			if asset == nil {
				return fmt.Errorf("asset %s: no such asset in the definitions (%s)", key, cf.path)
			}
			keys, err := materialize.ReportKeys(asset, partitions, fromDay, toDay, at)
			if err != nil {
				return err
			}
			events := make([]store.Event, len(keys))
			for i, k := range keys {
				events[i] = store.Event{Kind: kind, Asset: asset.Key, Partition: k, At: at,
					DataVersion: dataVersion, InputSeq: store.AtAppend, Metadata: metadata}
			}
			recorded, err := p.store.Append(cmd.Context(), events)
			if err != nil {
				return fmt.Errorf("nothing was recorded:\n%w", err)
			}
			changed := 0
			for _, e := range recorded {
				if e.DataChanged {
					changed++
				}
			}
			first, last := recorded[0], recorded[len(recorded)-1]
			span := ""
			if asset.Partitions != nil {
				span = " " + first.Partition
				if len(recorded) > 1 {
					span += " … " + last.Partition
				}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "recorded %s of %s%s (seq %d", pluralize(len(recorded), string(kind)), asset.Key, span, first.Seq)
			if last.Seq != first.Seq {
				fmt.Fprintf(cmd.OutOrStdout(), "–%d", last.Seq)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "); the data version changed in %d\n", changed)
			return nil
		},
	}
	cf.register(cmd)
	cmd.Flags().StringVarP(&key, "asset", "a", "", "the asset's key")
	cmd.Flags().StringArrayVarP(&partitions, "partition", "p", nil, "a partition key (repeatable)")
	cmd.Flags().StringVar(&from, "from", "", "first day of a range of partitions, YYYY-MM-DD")
	cmd.Flags().StringVar(&to, "to", "", "last day of the range (inclusive), YYYY-MM-DD")
	cmd.Flags().StringVar(&dataVersion, "data-version", "", "identifies the data (a hash, a row count, a timestamp)")
	cmd.Flags().StringVar(&meta, "metadata", "", `a JSON object, such as '{"rows": 1200}'`)
	cmd.Flags().StringVar(&when, "at", "", "when it happened (RFC 3339); default now")
	return cmd
}
