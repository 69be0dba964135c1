package cli

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/freshetdev/freshet/lineage"
	"github.com/freshetdev/freshet/materialize"
	"github.com/freshetdev/freshet/store"
)

// assetStatus is one line of `freshet status`, and its JSON shape.
type assetStatus struct {
	Asset       string `json:"asset"`
	Partitioned bool   `json:"partitioned"`
	Partitions  int    `json:"partitions"`
	Fresh       int    `json:"fresh"`
	Stale       int    `json:"stale"`
	Missing     int    `json:"missing"`
	Failed      int    `json:"failed"`
	// NewestMaterialized is the newest materialized partition's key ("" for an
	// unpartitioned asset), or null when none is.
	NewestMaterialized *string `json:"newest_materialized"`
	// DataTime is when the data is complete up to: the end of the newest partition
	// such that every partition before it is materialized, or, unpartitioned, the
	// time of the last materialization. Null when there is none.
	DataTime *time.Time `json:"data_time"`
}

func newStatusCmd() *cobra.Command {
	var (
		cf             catalogFlags
		selection, now string
		asJSON         bool
	)
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show each asset's partitions by status: fresh, stale, missing, failed",
		Long: `Status counts, for every selected asset, its partitions (up to the newest complete
one) that are fresh, stale or missing, and those whose latest attempt failed; it
shows the newest materialized partition and the data time: the end of the newest
partition such that every partition before it is materialized (for an unpartitioned
asset, when it was last materialized).`,
		Example: `  freshet status -f examples/sales
  freshet status -f examples/sales --select 'group:sales' --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			at, err := parseNow(now)
			if err != nil {
				return err
			}
			p, err := openProject(cmd, &cf)
			if err != nil {
				return err
			}
			defer p.store.Close()
			selected, err := lineage.Select(p.g, selection)
			if err != nil {
				return err
			}
			cat, err := materialize.LoadCatalog(cmd.Context(), p.store, p.g)
			if err != nil {
				return err
			}
			// Statuses come from the planner: a plan of everything computes them all.
			plan, err := materialize.Compute(p.g, cat.State(), materialize.Request{Now: at})
			if err != nil {
				return err
			}
			var (
				lines []assetStatus
				// The unpartitioned assets' data time is when they were last
				// materialized: read for all of them at once, after the loop.
				whenKeys []store.PartitionKey
				whenLine []int
			)
			for _, a := range p.g.Topo() {
				if !selected[a] {
					continue
				}
				asset := p.g.Asset(a)
				s := plan.Summary(a)
				line := assetStatus{
					Asset: string(asset.Key), Partitioned: asset.Partitions != nil, Partitions: s.Total,
					Fresh: s.Fresh, Stale: s.Stale, Missing: s.Missing, Failed: s.Failed,
				}
				if s.Newest >= 0 {
					key := ""
					if asset.Partitions != nil {
						key = asset.Partitions.Key(s.Newest)
					}
					line.NewestMaterialized = &key
				}
				switch {
				case asset.Partitions != nil && !s.DataTime.IsZero():
					t := s.DataTime.UTC()
					line.DataTime = &t
				case asset.Partitions == nil && s.Newest == 0:
					whenKeys = append(whenKeys, store.PartitionKey{Asset: asset.Key})
					whenLine = append(whenLine, len(lines))
				}
				lines = append(lines, line)
			}
			if len(whenKeys) > 0 {
				q, err := queueOf(p.store)
				if err != nil {
					return err
				}
				recs, err := q.PartitionRecords(cmd.Context(), whenKeys)
				if err != nil {
					return fmt.Errorf("read when the unpartitioned assets were materialized: %w", err)
				}
				for k, rec := range recs {
					if rec != nil && !rec.MaterializedAt.IsZero() {
						t := rec.MaterializedAt.UTC()
						lines[whenLine[k]].DataTime = &t
					}
				}
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(struct {
					Seq    int64         `json:"seq"`
					Now    time.Time     `json:"now"`
					Assets []assetStatus `json:"assets"`
				}{cat.State().Seq, at.UTC(), lines})
			}
			return writeStatus(cmd, lines)
		},
	}
	cf.register(cmd)
	cmd.Flags().StringVarP(&selection, "select", "s", "*", "which assets (see: freshet help selection)")
	cmd.Flags().StringVar(&now, "now", "", "status as of this instant (RFC 3339) instead of now")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the status as JSON")
	return cmd
}

func writeStatus(cmd *cobra.Command, lines []assetStatus) error {
	tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ASSET\tPARTITIONS\tFRESH\tSTALE\tMISSING\tFAILED\tNEWEST\tDATA TIME")
	for _, l := range lines {
		newest := "-"
		if l.NewestMaterialized != nil {
			newest = *l.NewestMaterialized
			if !l.Partitioned {
				newest = "(materialized)"
			}
		}
		dataTime := "-"
		if l.DataTime != nil {
			dataTime = l.DataTime.Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%s\t%s\n", l.Asset, l.Partitions, l.Fresh, l.Stale, l.Missing, l.Failed, newest, dataTime)
	}
	return tw.Flush()
}
