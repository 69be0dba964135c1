package cli

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"github.com/freshetdev/freshet/assets"
	"github.com/freshetdev/freshet/store"
)

// historyEvent is the JSON shape of one event in `freshet history --json`.
type historyEvent struct {
	Seq         int64           `json:"seq"`
	Kind        string          `json:"kind"`
	Partition   string          `json:"partition"`
	At          time.Time       `json:"at"`
	DataVersion string          `json:"data_version,omitempty"`
	DataChanged bool            `json:"data_changed"`
	InputSeq    int64           `json:"input_seq,omitempty"`
	CodeVersion *string         `json:"code_version,omitempty"`
	Deps        []assets.Key    `json:"deps,omitempty"`
	RunID       string          `json:"run_id,omitempty"`
	Metadata    json.RawMessage `json:"metadata,omitempty"`
	Error       string          `json:"error,omitempty"`
}

func newHistoryCmd() *cobra.Command {
	var (
		cf         catalogFlags
		partitions []string
		limit      int
		before     int64
		asJSON     bool
	)
	cmd := &cobra.Command{
		Use:   "history KEY",
		Short: "Show an asset's events, newest first: materializations, observations, failures",
		Long: `History lists the events the catalog recorded for one asset (or some of its
partitions), newest first. A "*" after the data version marks an event whose data
version differed from the one before it: those make downstream partitions stale.
Page back with --before SEQ, using the seq printed at the end.`,
		Example: `  freshet history sales/orders_clean -f examples/sales
  freshet history sales/orders_clean -f examples/sales --partition 2026-01-05 --json`,
		Args: oneArg("asset keys: freshet status"),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := openProject(cmd, &cf)
			if err != nil {
				return err
			}
			defer p.store.Close()
			key := assets.Key(args[0])
			if p.defs.Asset(key) == nil {
				if _, err := p.store.DefinitionHistory(cmd.Context(), key, 1); err != nil {
					return fmt.Errorf("%s: no such asset in %s or in the catalog", key, cf.path)
				}
			}
			page, err := p.store.Events(cmd.Context(), store.EventQuery{Asset: key, Partitions: partitions, Before: before, Limit: limit})
			if err != nil {
				return err
			}
			if asJSON {
				out := make([]historyEvent, len(page.Events))
				for i, e := range page.Events {
					out[i] = historyEvent{Seq: e.Seq, Kind: string(e.Kind), Partition: e.Partition, At: e.At.UTC(),
						DataVersion: e.DataVersion, DataChanged: e.DataChanged, InputSeq: e.InputSeq, Metadata: e.Metadata, Error: e.Error}
					if e.Code != nil {
						out[i].CodeVersion, out[i].Deps = &e.Code.Version, e.Code.Deps
					}
					if e.RunID != uuid.Nil {
						out[i].RunID = e.RunID.String()
					}
				}
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(struct {
					Asset  assets.Key     `json:"asset"`
					Events []historyEvent `json:"events"`
					Next   int64          `json:"next_before,omitempty"`
				}{key, out, page.Next})
			}
			if len(page.Events) == 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "%s: no events recorded\n", key)
				return nil
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "SEQ\tAT\tKIND\tPARTITION\tDATA VERSION\tCODE\tINPUT SEQ\tDETAIL")
			for _, e := range page.Events {
				dv := e.DataVersion
				if e.DataChanged {
					dv += " *"
				}
				code, input := "", ""
				if e.Code != nil {
					code = e.Code.Version
				}
				if e.Kind == store.Materialization {
					input = fmt.Sprint(e.InputSeq)
				}
				detail := e.Error
				if detail == "" && e.Metadata != nil {
					detail = string(e.Metadata)
				}
				part := e.Partition
				if part == "" {
					part = "-"
				}
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Seq, e.At.UTC().Format(time.RFC3339), e.Kind, part, dv, code, input, detail)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if page.Next != 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "older events: --before %d\n", page.Next)
			}
			return nil
		},
	}
	cf.register(cmd)
	cmd.Flags().StringArrayVarP(&partitions, "partition", "p", nil, "only this partition (repeatable)")
	cmd.Flags().IntVarP(&limit, "limit", "n", 50, "at most this many events")
	cmd.Flags().Int64Var(&before, "before", 0, "only events before this seq (to page back)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the events as JSON")
	return cmd
}
